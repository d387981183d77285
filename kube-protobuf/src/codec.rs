//! [`Codec`]: the protobuf codec of one top-level kind, found at run time.
//!
//! Generic code (`Api<K>`) cannot ask the compiler whether `K` has a
//! protobuf encoding (that would need specialization), so [`codec`] asks a
//! table at run time: every top-level k8s-openapi kind the API server serves
//! as protobuf — every built-in kind, CustomResourceDefinition and
//! APIService included — has one [`Codec`] keyed by its `TypeId`. Custom
//! resources, `DynamicObject` and anything else have none (the API server
//! serves custom resources only as JSON), so `codec::<K>()` is `None` and
//! the caller uses JSON. The lookup is a hash of the `TypeId` in a table
//! built once.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::OnceLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;

use crate::error::DecodeError;
use crate::field::Repeated;
use crate::message::Message;
use crate::wire::Reader;

/// A decoded list: its ListMeta and its items.
pub type DecodedList<K> = (ListMeta, Vec<K>);

/// The protobuf codec of the kind `K`.
pub struct Codec<K> {
    /// The kind's `apiVersion` (`apps/v1`).
    pub api_version: &'static str,
    /// The kind (`Deployment`).
    pub kind: &'static str,
    /// Decodes an object from its message (an envelope's `raw`).
    pub decode: fn(&[u8]) -> Result<K, DecodeError>,
    /// Decodes a list of the kind (`DeploymentList`, an envelope's `raw`):
    /// its ListMeta (field 1) and its items (field 2).
    pub decode_list: fn(&[u8]) -> Result<DecodedList<K>, DecodeError>,
    /// Encodes an object as its message (to be sealed in an envelope).
    pub encode: fn(&K) -> Vec<u8>,
}

impl<K> std::fmt::Debug for Codec<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<K: Message + k8s_openapi::Resource> Codec<K> {
    /// The codec of a kind with a generated [`Message`] impl.
    pub const fn of() -> Self {
        Codec {
            api_version: K::API_VERSION,
            kind: K::KIND,
            decode: K::decode,
            decode_list: decode_list::<K>,
            encode: K::encode,
        }
    }
}

const LIST: &str = "k8s.io list (ListMeta = 1, items = 2)";

/// Decodes any Kubernetes list message: ListMeta is field 1, the items
/// field 2 (the shape of every `…List` message). The items vector is
/// allocated at its exact length.
pub fn decode_list<K: Message>(bytes: &[u8]) -> Result<DecodedList<K>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let count = reader.count_field(2).map_err(|e| e.within(LIST, 0))?;
    let mut metadata = ListMeta::default();
    let mut items = Vec::with_capacity(count);
    while let Some((field, wire)) = reader.read_key().map_err(|e| e.within(LIST, 0))? {
        match field {
            1 => reader.merge_message(wire, &mut metadata),
            2 => K::read_into(&mut items, wire, &mut reader),
            _ => reader.skip(wire),
        }
        .map_err(|e| e.within(LIST, field))?;
    }
    Ok((metadata, items))
}

type Table = HashMap<TypeId, &'static (dyn Any + Send + Sync)>;

/// The protobuf codec of `K`, or None when the API server does not serve `K`
/// as protobuf (custom resources, dynamic objects, anything not built in).
pub fn codec<K: 'static>() -> Option<&'static Codec<K>> {
    static TABLE: OnceLock<Table> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        crate::generated::CODECS
            .iter()
            .map(|entry| entry())
            .collect()
    });
    table.get(&TypeId::of::<K>())?.downcast_ref::<Codec<K>>()
}

/// One entry of the generated table: the kind's `TypeId` and its codec.
pub(crate) type Entry = fn() -> (TypeId, &'static (dyn Any + Send + Sync));

/// The table entry of `K` (the generated table lists `entry::<K>` per kind).
pub(crate) fn entry<K: Message + k8s_openapi::Resource + 'static>()
-> (TypeId, &'static (dyn Any + Send + Sync)) {
    let codec: &'static Codec<K> = const { &Codec::<K>::of() };
    (TypeId::of::<K>(), codec)
}
