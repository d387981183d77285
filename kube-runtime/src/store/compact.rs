//! The representation of a compact store (see
//! [compact stores](crate::store#compact-stores) for what it is for).
//!
//! Each object is one [`Packed`]: a single shared allocation holding the
//! object's resourceVersion, then its encoding — protobuf for every kind
//! `kube_protobuf::codec` knows (with the default `protobuf` feature), JSON
//! (serde_json) for the rest. The resourceVersion is kept apart so that a
//! write tells `Modified` from unchanged without decoding anything. An
//! event queued in a reflector's own queue shares the `Packed` of the
//! version it announces.
//!
//! Guarantees:
//! - what a read hands out equals what a default store would hand out,
//!   for every kind whose encoding round-trips (every built-in kind; a
//!   custom resource type whose `Serialize` and `Deserialize` agree);
//! - decoding never panics: bytes that do not decode (which the store never
//!   writes) are logged at `error` with the object's key and what was
//!   wrong — never the bytes or a value from them, which may be a Secret's
//!   data (a JSON error is described as kube-client's errors describe one,
//!   by [`safe_json_error`]) — and the object is treated as absent;
//! - an object that cannot be encoded (a custom `Serialize` that fails) is
//!   kept decoded, with a warning: never lost;
//! - `Debug` of a compact store shows its size and format, never its bytes.

use std::fmt::Debug;
use std::sync::Arc;

use dashmap::DashMap;
use kube_client::Resource;
use kube_client::error::safe_json_error;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::queue::{Change, EventQueue, Queued, WatchEvent};

/// How a compact store encodes its kind.
pub(crate) enum Codec<K> {
    /// The kind's protobuf message (built-in kinds).
    #[cfg(feature = "protobuf")]
    Protobuf {
        encode: fn(&K) -> Vec<u8>,
        decode: fn(&[u8]) -> Result<K, kube_protobuf::DecodeError>,
    },
    /// serde_json, for kinds without a protobuf codec.
    Json {
        encode: fn(&K) -> serde_json::Result<Vec<u8>>,
        decode: fn(&[u8]) -> serde_json::Result<K>,
    },
}

impl<K> Clone for Codec<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Codec<K> {}

impl<K> Codec<K> {
    /// Protobuf if `K` has a codec, JSON otherwise.
    pub(crate) fn of() -> Self
    where
        K: Serialize + DeserializeOwned + 'static,
    {
        #[cfg(feature = "protobuf")]
        if let Some(codec) = kube_protobuf::codec::codec::<K>() {
            return Codec::Protobuf {
                encode: codec.encode,
                decode: codec.decode,
            };
        }
        Codec::Json {
            encode: |obj| serde_json::to_vec(obj),
            decode: |bytes| serde_json::from_slice(bytes),
        }
    }

    /// "protobuf" or "json".
    pub(crate) fn format(&self) -> &'static str {
        match self {
            #[cfg(feature = "protobuf")]
            Codec::Protobuf { .. } => "protobuf",
            Codec::Json { .. } => "json",
        }
    }

    /// The encoding of `obj`, or why there is none (without any of its
    /// content).
    fn encode(&self, obj: &K) -> Result<Vec<u8>, String> {
        match self {
            #[cfg(feature = "protobuf")]
            Codec::Protobuf { encode, .. } => Ok(encode(obj)),
            Codec::Json { encode, .. } => encode(obj).map_err(|e| safe_json_error(&e)),
        }
    }

    /// The object of an event queued encoded; `None` (logged, without any
    /// of its content) if it does not decode.
    pub(crate) fn decode_queued(&self, packed: &Packed) -> Option<K> {
        match self.decode(packed.encoded()) {
            Ok(obj) => Some(obj),
            Err(reason) => {
                tracing::error!(
                    format = self.format(),
                    reason,
                    "compact store: a queued event's object does not decode; dropping the event"
                );
                None
            }
        }
    }

    /// The object `bytes` encode, or what was wrong with them (without
    /// any of their content).
    fn decode(&self, bytes: &[u8]) -> Result<K, String> {
        match self {
            // A protobuf DecodeError's text names the message, field,
            // offset and a static reason, never a value.
            #[cfg(feature = "protobuf")]
            Codec::Protobuf { decode, .. } => decode(bytes).map_err(|e| e.to_string()),
            Codec::Json { decode, .. } => decode(bytes).map_err(|e| safe_json_error(&e)),
        }
    }
}

/// One object encoded: its resourceVersion, then its encoding, in one
/// allocation, shared by the store and the events queued for its object.
#[derive(Clone)]
pub(crate) struct Packed {
    bytes: Arc<[u8]>,
    /// The length of the resourceVersion at the start of `bytes`; `None`
    /// when the object had none.
    version_len: Option<u32>,
}

impl Packed {
    fn new(resource_version: Option<&str>, encoded: &[u8]) -> Self {
        let version = resource_version.unwrap_or_default();
        let mut bytes = Vec::with_capacity(version.len() + encoded.len());
        bytes.extend_from_slice(version.as_bytes());
        bytes.extend_from_slice(encoded);
        Self {
            bytes: bytes.into(),
            version_len: resource_version.map(|v| v.len() as u32),
        }
    }

    fn resource_version(&self) -> Option<&[u8]> {
        self.version_len.map(|n| &self.bytes[..n as usize])
    }

    /// Where its bytes are (for tests that an object was not re-encoded).
    #[cfg(test)]
    pub(crate) fn address(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    fn encoded(&self) -> &[u8] {
        &self.bytes[self.version_len.unwrap_or(0) as usize..]
    }
}

/// What a compact store holds of one object.
pub(crate) enum Slot<K> {
    /// Its encoding (always, unless encoding failed).
    Packed(Packed),
    /// The object itself, when it could not be encoded.
    Whole(Arc<K>),
}

impl<K: kube_client::Resource> Slot<K> {
    /// The stored object's resourceVersion, without decoding it.
    pub(crate) fn resource_version(&self) -> Option<&[u8]> {
        match self {
            Slot::Packed(p) => p.resource_version(),
            Slot::Whole(obj) => obj.meta().resource_version.as_deref().map(str::as_bytes),
        }
    }
}

/// The objects of a compact store, keyed as a default store's are.
pub(crate) struct CompactObjects<K> {
    codec: Codec<K>,
    pub(crate) map: DashMap<String, Slot<K>>,
}

impl<K> Debug for CompactObjects<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactObjects")
            .field("format", &self.codec.format())
            .field("len", &self.map.len())
            .finish()
    }
}

impl<K> CompactObjects<K> {
    pub(crate) fn new(codec: Codec<K>) -> Self {
        Self {
            codec,
            map: DashMap::new(),
        }
    }

    /// "protobuf" or "json".
    pub(crate) fn format(&self) -> &'static str {
        self.codec.format()
    }

    /// What to store of `obj` (which is kept whole only if it cannot be
    /// encoded).
    pub(crate) fn pack(&self, key: &str, obj: &Arc<K>) -> Slot<K>
    where
        K: kube_client::Resource,
    {
        match self.codec.encode(obj) {
            Ok(encoded) => Slot::Packed(Packed::new(
                obj.meta().resource_version.as_deref(),
                &encoded,
            )),
            Err(reason) => {
                tracing::warn!(
                    key,
                    format = self.codec.format(),
                    reason,
                    "compact store: cannot encode the object; keeping it decoded"
                );
                Slot::Whole(obj.clone())
            }
        }
    }

    /// The object in `slot`, decoded; `None` (logged) if it does not decode.
    pub(crate) fn unpack(&self, key: &str, slot: &Slot<K>) -> Option<Arc<K>> {
        match slot {
            Slot::Whole(obj) => Some(obj.clone()),
            Slot::Packed(packed) => match self.codec.decode(packed.encoded()) {
                Ok(obj) => Some(Arc::new(obj)),
                Err(reason) => {
                    tracing::error!(
                        key,
                        format = self.codec.format(),
                        reason,
                        "compact store: a stored object does not decode; treating it as absent"
                    );
                    None
                }
            },
        }
    }

    /// The object stored under `key`, decoded.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<K>> {
        let slot = self.map.get(key)?;
        self.unpack(key, &slot)
    }

    /// What events queued encoded are decoded with.
    pub(crate) fn codec(&self) -> Codec<K> {
        self.codec
    }

    /// How a queue of this store's events holds `event`: the object of an
    /// `Added` or `Modified` of the version the store holds shares the
    /// store's bytes; any other (a `Deleted`, a version since replaced) is
    /// encoded now; one that cannot be encoded, an error or a marker is
    /// held as it is.
    pub(crate) fn queued(&self, event: WatchEvent<K>) -> Queued<K>
    where
        K: Resource,
    {
        let (change, obj) = match event {
            WatchEvent::Added(obj) => (Change::Added, obj),
            WatchEvent::Modified(obj) => (Change::Modified, obj),
            WatchEvent::Deleted(obj) => (Change::Deleted, obj),
            other => return Queued::Event(other),
        };
        let key = crate::store::object_key(&*obj);
        let version = obj.meta().resource_version.as_deref();
        if let Some(version) = version.filter(|v| !v.is_empty())
            && let Some(slot) = self.map.get(&key)
            && let Slot::Packed(packed) = &*slot
            && packed.resource_version() == Some(version.as_bytes())
        {
            return Queued::Encoded(change, packed.clone());
        }
        match self.pack(&key, &obj) {
            Slot::Packed(packed) => Queued::Encoded(change, packed),
            Slot::Whole(obj) => Queued::Event(change.event(obj)),
        }
    }

    /// Queues an `Added` for every object held, encoded (the store's
    /// bytes, shared), and makes `queue` decode them. True if there was
    /// any.
    pub(crate) fn queue_added(&self, queue: &EventQueue<K>) -> bool {
        queue.decoding_with(self.codec);
        let mut any = false;
        for entry in self.map.iter() {
            any = true;
            match entry.value() {
                Slot::Packed(packed) => queue.push_encoded(Change::Added, packed.clone()),
                Slot::Whole(obj) => queue.push(WatchEvent::Added(obj.clone())),
            }
        }
        any
    }

    /// Every object that decodes, with its key.
    pub(crate) fn entries(&self) -> Vec<(String, Arc<K>)> {
        self.map
            .iter()
            .filter_map(|e| Some((e.key().clone(), self.unpack(e.key(), e.value())?)))
            .collect()
    }

    /// Every object that decodes.
    pub(crate) fn objects(&self) -> Vec<Arc<K>> {
        self.map
            .iter()
            .filter_map(|e| self.unpack(e.key(), e.value()))
            .collect()
    }

    /// Overwrites the bytes stored under `key` (for tests of corruption).
    #[cfg(test)]
    pub(crate) fn corrupt(&self, key: &str, bytes: &[u8])
    where
        K: kube_client::Resource,
    {
        if let Some(mut slot) = self.map.get_mut(key) {
            let version = slot.resource_version().map(<[u8]>::to_vec);
            let version = version.map(|v| String::from_utf8(v).unwrap());
            *slot = Slot::Packed(Packed::new(version.as_deref(), bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_object_keeps_its_version_apart_from_its_encoding() {
        let p = Packed::new(Some("42"), b"\x0a\x01x");
        assert_eq!(p.resource_version(), Some(&b"42"[..]));
        assert_eq!(p.encoded(), b"\x0a\x01x");
        let none = Packed::new(None, b"{}");
        assert_eq!(none.resource_version(), None);
        assert_eq!(none.encoded(), b"{}");
        let empty = Packed::new(Some(""), b"{}");
        assert_eq!(empty.resource_version(), Some(&b""[..]));
    }

    #[test]
    fn built_in_kinds_use_protobuf_and_others_json() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let expected = if cfg!(feature = "protobuf") {
            "protobuf"
        } else {
            "json"
        };
        assert_eq!(Codec::<ConfigMap>::of().format(), expected);
        assert_eq!(Codec::<kube_client::DynamicObject>::of().format(), "json");
    }
}
