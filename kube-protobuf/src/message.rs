//! [`Message`]: a type with a protobuf encoding.
//!
//! Every k8s-openapi struct that has a protobuf message upstream implements
//! `Message` (the impls are generated, see [`crate::generated`]); the few
//! whose protobuf shape differs from their Rust shape (Time, Quantity,
//! IntOrString, the JSON-carrying types…) are written by hand in
//! [`crate::special`]. Decoding merges fields into an empty value ([`Message::empty`]), so a
//! field absent on the wire keeps its default (`None`, empty).

use crate::error::DecodeError;
use crate::error::WireType;
use crate::wire::{Reader, Writer};

/// A type with a protobuf encoding, decoded in place from the wire format.
pub trait Message: Sized {
    /// The fully qualified protobuf message type, for errors
    /// (`k8s.io.api.core.v1.Pod`).
    const PROTO_NAME: &'static str;

    /// The value before any field is merged: what an empty message decodes
    /// to (`Default::default()` for the types that have it, else every field
    /// empty — `None`, `""`, `0`, the Unix epoch for a required time).
    fn empty() -> Self;

    /// Merges one field (number `field`, wire type `wire`) read from
    /// `reader` into `self`; unknown fields are skipped.
    fn merge_field(
        &mut self,
        field: u32,
        wire: WireType,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError>;

    /// Writes every field of `self` that has a value.
    fn encode_fields(&self, writer: &mut Writer);

    /// Called once all fields are merged: turns values the Go encoder writes
    /// but its JSON encoder omits (an empty `omitempty` string, the zero
    /// time) into `None`, so protobuf and JSON decode to equal values.
    fn finish(&mut self) {}

    /// Decodes a whole message (no envelope: the bytes of a `raw`).
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut message = Self::empty();
        Reader::new(bytes).merge_fields(&mut message)?;
        Ok(message)
    }

    /// Encodes `self` as a whole message (no envelope).
    fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        self.encode_fields(&mut writer);
        writer.into_bytes()
    }
}
