//! The Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! decoded directly into the k8s-openapi types.
//!
//! The API server serves every built-in kind as protobuf as well as JSON.
//! Protobuf is smaller on the wire and far cheaper to decode: no text to
//! scan, no field names to match, strings copied once at their exact
//! length. This crate decodes it straight into the k8s-openapi structs users
//! already hold — there are no intermediate protobuf structs to convert from
//! — and encodes them back for request bodies.
//!
//! - [`open_envelope`] / [`seal_envelope`]: the `k8s\0` envelope around every
//!   protobuf body ([`envelope`]).
//! - [`decode_watch_event`]: one frame of a protobuf watch stream.
//! - [`codec`]`::<K>()`: the [`Codec`] of a top-level kind (decode, decode a
//!   list, encode), or None when the server serves `K` only as JSON (custom
//!   resources).
//! - [`Message`]: the trait every k8s-openapi struct with a protobuf message
//!   implements; [`DecodeError`] is the typed error of malformed input.
//!
//! What the Go encoder writes but its JSON encoder omits — an empty
//! `omitempty` string or a false `omitempty` bool of a non-pointer field, the
//! zero time — decodes to `None`, so an object decodes to the same value
//! from protobuf as from JSON (checked against a real API server for every
//! built-in kind it returns, see `tests/json_vs_protobuf.rs`). One
//! difference remains by nature: protobuf cannot tell an empty list or map
//! from an absent one, so both decode to `None`.
//!
//! # Regenerating
//!
//! The impls in [`generated`] come from the upstream `generated.proto` files
//! of k8s.io/api, k8s.io/apimachinery, k8s.io/apiextensions-apiserver and
//! k8s.io/kube-aggregator v0.37.2, the Go struct tags next to them, and the
//! field names of k8s-openapi 0.29 (`v1_37`):
//!
//! ```text
//! cargo xtask protogen
//! ```

pub mod codec;
pub mod envelope;
pub mod error;
pub mod field;
pub mod generated;
pub mod message;
pub mod special;
pub mod wire;

pub use codec::{Codec, DecodedList, codec, decode_list};
pub use envelope::{
    Envelope, MAGIC, WatchEventFrame, decode_watch_event, open_envelope, seal_envelope,
};
pub use error::{DecodeError, DecodeErrorKind, WireType};
pub use message::Message;
