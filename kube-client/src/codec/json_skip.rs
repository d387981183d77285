//! Decoding JSON without `metadata.managedFields`.
//!
//! A protobuf answer's `managedFields` are stepped over on the wire when an
//! [`Api`](crate::Api) is told to
//! [skip them](crate::Api::skip_managed_fields); this module does the same
//! for JSON answers — custom resources, which the API server serves only as
//! JSON, and every kind on a client with protobuf off. JSON cannot be
//! skipped by length: the text is still read to find where the field ends,
//! but nothing of it is built. `managedFields` is a list of nested maps,
//! each decoded into `serde_json::Value` trees, so on small objects it is
//! most of the allocations a decode makes.
//!
//! How: [`from_slice`] runs `T`'s own `Deserialize` impl over a
//! deserializer that passes everything through but watches the keys of the
//! maps it hands out. In a map that is the value of a `metadata` key, the
//! entry `managedFields` is read as [`IgnoredAny`] and never shown to
//! `T`, which then sees the field as absent (`None`). Everything else — an
//! object, a list's items, a watch event's object — decodes exactly as with
//! `serde_json::from_slice`, errors included.
//!
//! Guarantees:
//! - only `managedFields` directly inside a `metadata` map is left out; a
//!   key of that name anywhere else (a ConfigMap's data, a custom
//!   resource's spec) is decoded as usual;
//! - the input is still checked as JSON: a malformed skipped value is an
//!   error, as is trailing data.

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};

/// `serde_json::from_slice`, with every `metadata.managedFields` left out
/// (see the module docs).
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(Skipping {
        inner: &mut json,
        metadata: false,
    })?;
    json.end()?;
    Ok(value)
}

/// A deserializer of one value; `metadata` when it is the value of a
/// `metadata` key.
struct Skipping<D> {
    inner: D,
    metadata: bool,
}

/// The visitor of a [`Skipping`] value: hands maps and lists on wrapped.
struct Visit<V> {
    inner: V,
    metadata: bool,
}

/// A map's entries; `metadata` when the map is a `metadata` value.
struct Entries<A> {
    inner: A,
    metadata: bool,
    /// The last key read was `metadata`.
    value_is_metadata: bool,
}

/// A list's items.
struct Items<A> {
    inner: A,
}

macro_rules! forward_wrapped {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.inner.$method(Visit { inner: visitor, metadata: self.metadata })
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Skipping<D> {
    type Error = D::Error;

    forward_wrapped! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_unit_struct(
            name,
            Visit {
                inner: visitor,
                metadata: self.metadata,
            },
        )
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_newtype_struct(
            name,
            Visit {
                inner: visitor,
                metadata: self.metadata,
            },
        )
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_tuple(
            len,
            Visit {
                inner: visitor,
                metadata: self.metadata,
            },
        )
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_tuple_struct(
            name,
            len,
            Visit {
                inner: visitor,
                metadata: self.metadata,
            },
        )
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_struct(
            name,
            fields,
            Visit {
                inner: visitor,
                metadata: self.metadata,
            },
        )
    }

    // an enum's content holds no `metadata` map in any Kubernetes type
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visits {
    ($($method:ident($ty:ty))*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.expecting(f)
    }

    forward_visits! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Skipping {
            inner: deserializer,
            metadata: self.metadata,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Skipping {
            inner: deserializer,
            metadata: self.metadata,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Items { inner: seq })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Entries {
            inner: map,
            metadata: self.metadata,
            value_is_metadata: false,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

/// A map key as read: borrowed from the input when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v))
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key_seed(KeySeed)? else {
                return Ok(None);
            };
            if self.metadata && key.as_str() == "managedFields" {
                self.inner.next_value::<IgnoredAny>()?;
                continue;
            }
            self.value_is_metadata = key.as_str() == "metadata";
            return match key {
                Key::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
                Key::Owned(s) => seed.deserialize(StringDeserializer::new(s)),
            }
            .map(Some);
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let metadata = std::mem::take(&mut self.value_is_metadata);
        self.inner.next_value_seed(Seed {
            inner: seed,
            metadata,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Items<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.inner.next_element_seed(Seed {
            inner: seed,
            metadata: false,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A seed that deserializes through [`Skipping`].
struct Seed<S> {
    inner: S,
    metadata: bool,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Skipping {
            inner: deserializer,
            metadata: self.metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjectList;
    use crate::WatchEvent;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use serde_json::json;

    fn cm_json(name: &str) -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": name, "namespace": "ns", "resourceVersion": "5",
                "labels": {"managedFields": "a label, kept"},
                "managedFields": [{
                    "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                    "time": "2026-11-25T10:00:00Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {"f:managedFields": {}}}
                }]
            },
            "data": {"managedFields": "data, kept", "k\u{e9}y\"": "escaped key"}
        })
    }

    #[test]
    fn managed_fields_go_and_everything_else_stays() {
        let text = serde_json::to_vec(&cm_json("a")).unwrap();
        let skipped: ConfigMap = from_slice(&text).unwrap();
        let mut whole: ConfigMap = serde_json::from_slice(&text).unwrap();
        assert!(whole.metadata.managed_fields.is_some());
        assert!(skipped.metadata.managed_fields.is_none());
        whole.metadata.managed_fields = None;
        assert_eq!(skipped, whole);
        let data = skipped.data.unwrap();
        assert_eq!(data["managedFields"], "data, kept");
        assert_eq!(data["k\u{e9}y\""], "escaped key");
    }

    #[test]
    fn list_items_and_watch_events_lose_them_too() {
        let list = json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "9"},
            "items": [cm_json("a"), cm_json("b")]
        });
        let list: ObjectList<ConfigMap> = from_slice(&serde_json::to_vec(&list).unwrap()).unwrap();
        assert_eq!(list.items.len(), 2);
        assert!(
            list.items
                .iter()
                .all(|c| c.metadata.managed_fields.is_none())
        );
        assert_eq!(list.items[1].metadata.name.as_deref(), Some("b"));

        let event = json!({"type": "MODIFIED", "object": cm_json("c")});
        match from_slice::<WatchEvent<ConfigMap>>(&serde_json::to_vec(&event).unwrap()).unwrap() {
            WatchEvent::Modified(c) => {
                assert!(c.metadata.managed_fields.is_none());
                assert_eq!(c.data.unwrap().len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pod_decodes_equal_but_for_managed_fields() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "managedFields": [{"manager": "m", "fieldsV1": {}}],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "rs", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "i",
                       "resources": {"limits": {"cpu": "1"}},
                       "ports": [{"containerPort": 80}],
                       "livenessProbe": {"httpGet": {"path": "/", "port": "http"}}}],
                     "nodeSelector": {"a": "b"}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}
        });
        let text = serde_json::to_vec(&pod).unwrap();
        let skipped: Pod = from_slice(&text).unwrap();
        let mut whole: Pod = serde_json::from_slice(&text).unwrap();
        whole.metadata.managed_fields = None;
        assert_eq!(skipped, whole);
    }

    #[test]
    fn broken_json_is_still_an_error() {
        // malformed inside the skipped field, and trailing data
        let bad = br#"{"metadata":{"name":"a","managedFields":[{"manager": }]}}"#;
        assert!(from_slice::<ConfigMap>(bad).is_err());
        let trailing = br#"{"metadata":{"name":"a"}} x"#;
        assert!(from_slice::<ConfigMap>(trailing).is_err());
        // and a wrong type is the same error serde_json gives
        let wrong = br#"{"metadata":{"name":7}}"#;
        assert_eq!(
            from_slice::<ConfigMap>(wrong).unwrap_err().to_string(),
            serde_json::from_slice::<ConfigMap>(wrong)
                .unwrap_err()
                .to_string()
        );
    }
}
