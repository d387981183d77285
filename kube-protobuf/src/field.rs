//! [`Field`]: how a Rust field type is read from and written to the wire.
//!
//! The generated code knows only "protobuf field 3 is Rust field
//! `resource_version`"; the field's Rust type picks its encoding through
//! this trait: `String` and `Option<String>` are length-delimited UTF-8,
//! integers and `bool` varints, `f64` eight bytes, `ByteString` bytes, a
//! [`Message`] a nested message, `Vec<T>` a repeated field (packed or not
//! for scalars), `BTreeMap<String, V>` a map (repeated entries with key 1
//! and value 2).
//!
//! Guarantees: strings are validated as UTF-8 and allocated at their exact
//! length; a repeated field decodes into a `Vec` grown as entries arrive; a
//! value on the wire with a wire type other than its field's is an error
//! (except that repeated scalars accept both packed and unpacked form, as
//! protobuf requires). `None` and empty collections are not written.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;

use crate::error::{DecodeError, DecodeErrorKind, WireType};
use crate::message::Message;
use crate::wire::{Reader, Writer};

/// A Rust field type with a protobuf encoding (see the module doc).
pub trait Field {
    /// Merges one occurrence of the field (wire type `wire`) into `self`.
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError>;
    /// Writes `self` as field number `field` (nothing for `None` or empty).
    fn encode_as(&self, field: u32, writer: &mut Writer);
}

/// A type that can be the element of a repeated field (`Vec<T>`).
pub trait Repeated: Sized {
    /// Reads one or (packed) several elements into `into`.
    fn read_into(
        into: &mut Vec<Self>,
        wire: WireType,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError>;
    /// Writes all elements of `items` as field `field`.
    fn write_all(items: &[Self], field: u32, writer: &mut Writer);
}

/// A type that can be the value of a map field (`BTreeMap<String, V>`).
pub trait MapValue: Sized {
    /// The value of an entry that has none on the wire.
    fn missing() -> Self;
    /// Reads the value (field 2 of a map entry).
    fn read_value(wire: WireType, reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Writes the value as field 2 of a map entry.
    fn write_value(&self, writer: &mut Writer);
}

// ---- scalars -------------------------------------------------------------

/// A protobuf scalar: its wire type and how one value is read and written.
pub trait Scalar: Sized + Default {
    /// The wire type of one value.
    const WIRE: WireType;
    /// Reads one value.
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Writes one value (without key).
    fn write(&self, writer: &mut Writer);
}

impl Scalar for bool {
    const WIRE: WireType = WireType::Varint;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(reader.read_varint()? != 0)
    }
    fn write(&self, writer: &mut Writer) {
        writer.put_varint(u64::from(*self));
    }
}

impl Scalar for i32 {
    const WIRE: WireType = WireType::Varint;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // int32: negative values are sign-extended to 64 bits on the wire.
        Ok(reader.read_varint()? as i32)
    }
    fn write(&self, writer: &mut Writer) {
        writer.put_varint(i64::from(*self) as u64);
    }
}

impl Scalar for i64 {
    const WIRE: WireType = WireType::Varint;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(reader.read_varint()? as i64)
    }
    fn write(&self, writer: &mut Writer) {
        writer.put_varint(*self as u64);
    }
}

impl Scalar for f64 {
    const WIRE: WireType = WireType::Fixed64;
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(f64::from_bits(reader.read_fixed64()?))
    }
    fn write(&self, writer: &mut Writer) {
        writer.put_raw(&self.to_bits().to_le_bytes());
    }
}

fn merge_scalar<S: Scalar>(wire: WireType, reader: &mut Reader<'_>) -> Result<S, DecodeError> {
    reader.expect(wire, S::WIRE)?;
    S::read(reader)
}

fn write_scalar<S: Scalar>(value: &S, field: u32, writer: &mut Writer) {
    writer.put_key(field, S::WIRE);
    value.write(writer);
}

macro_rules! scalar_fields {
    ($($ty:ty),*) => {$(
        impl Field for $ty {
            fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
                *self = merge_scalar(wire, reader)?;
                Ok(())
            }
            fn encode_as(&self, field: u32, writer: &mut Writer) {
                write_scalar(self, field, writer);
            }
        }
        impl Field for Option<$ty> {
            fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
                *self = Some(merge_scalar(wire, reader)?);
                Ok(())
            }
            fn encode_as(&self, field: u32, writer: &mut Writer) {
                if let Some(value) = self {
                    write_scalar(value, field, writer);
                }
            }
        }
        impl Repeated for $ty {
            fn read_into(into: &mut Vec<Self>, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
                if wire == WireType::Len {
                    // packed: a run of values in one length-delimited field
                    reader.nested(wire, |packed| {
                        while !packed.is_done() {
                            into.push(<$ty as Scalar>::read(packed)?);
                        }
                        Ok(())
                    })
                } else {
                    into.push(merge_scalar(wire, reader)?);
                    Ok(())
                }
            }
            fn write_all(items: &[Self], field: u32, writer: &mut Writer) {
                // unpacked, as the Go encoder of Kubernetes (proto2) writes them
                for item in items {
                    write_scalar(item, field, writer);
                }
            }
        }
    )*};
}
scalar_fields!(bool, i32, i64, f64);

// ---- strings and bytes ------------------------------------------------------

fn read_string(wire: WireType, reader: &mut Reader<'_>) -> Result<String, DecodeError> {
    reader.expect(wire, WireType::Len)?;
    // `String::from(&str)` allocates exactly the string's length.
    Ok(String::from(reader.read_str()?))
}

fn read_byte_string(wire: WireType, reader: &mut Reader<'_>) -> Result<ByteString, DecodeError> {
    reader.expect(wire, WireType::Len)?;
    Ok(ByteString(reader.read_bytes()?.to_vec()))
}

impl Field for String {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        *self = read_string(wire, reader)?;
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        writer.put_bytes_field(field, self.as_bytes());
    }
}

impl Field for Option<String> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        *self = Some(read_string(wire, reader)?);
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        if let Some(value) = self {
            writer.put_bytes_field(field, value.as_bytes());
        }
    }
}

impl Repeated for String {
    fn read_into(
        into: &mut Vec<Self>,
        wire: WireType,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError> {
        into.push(read_string(wire, reader)?);
        Ok(())
    }
    fn write_all(items: &[Self], field: u32, writer: &mut Writer) {
        for item in items {
            writer.put_bytes_field(field, item.as_bytes());
        }
    }
}

impl MapValue for String {
    fn missing() -> Self {
        String::new()
    }
    fn read_value(wire: WireType, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_string(wire, reader)
    }
    fn write_value(&self, writer: &mut Writer) {
        writer.put_bytes_field(2, self.as_bytes());
    }
}

impl Field for ByteString {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        *self = read_byte_string(wire, reader)?;
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        writer.put_bytes_field(field, &self.0);
    }
}

impl Field for Option<ByteString> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        *self = Some(read_byte_string(wire, reader)?);
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        if let Some(value) = self {
            writer.put_bytes_field(field, &value.0);
        }
    }
}

impl Repeated for ByteString {
    fn read_into(
        into: &mut Vec<Self>,
        wire: WireType,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError> {
        into.push(read_byte_string(wire, reader)?);
        Ok(())
    }
    fn write_all(items: &[Self], field: u32, writer: &mut Writer) {
        for item in items {
            writer.put_bytes_field(field, &item.0);
        }
    }
}

impl MapValue for ByteString {
    fn missing() -> Self {
        ByteString(Vec::new())
    }
    fn read_value(wire: WireType, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_byte_string(wire, reader)
    }
    fn write_value(&self, writer: &mut Writer) {
        writer.put_bytes_field(2, &self.0);
    }
}

/// A list of strings as a map value: Kubernetes wraps it in a message with
/// one repeated string field 1 (`ExtraValue` of UserInfo.extra and friends).
impl MapValue for Vec<String> {
    fn missing() -> Self {
        Vec::new()
    }
    fn read_value(wire: WireType, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.nested(wire, |inner| {
            let mut items = Vec::new();
            while let Some((field, wire)) = inner.read_key()? {
                if field == 1 {
                    String::read_into(&mut items, wire, inner)?;
                } else {
                    inner.skip(wire)?;
                }
            }
            Ok(items)
        })
    }
    fn write_value(&self, writer: &mut Writer) {
        writer.put_nested(2, |inner| String::write_all(self, 1, inner));
    }
}

// ---- messages ----------------------------------------------------------------

impl<M: Message> Field for M {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        reader.merge_message(wire, self)
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        writer.put_message(field, self);
    }
}

impl<M: Message> Field for Option<M> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        reader.merge_message(wire, self.get_or_insert_with(M::empty))
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        if let Some(value) = self {
            writer.put_message(field, value);
        }
    }
}

impl<M: Message> Repeated for M {
    fn read_into(
        into: &mut Vec<Self>,
        wire: WireType,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError> {
        let mut item = M::empty();
        reader.merge_message(wire, &mut item)?;
        into.push(item);
        Ok(())
    }
    fn write_all(items: &[Self], field: u32, writer: &mut Writer) {
        for item in items {
            writer.put_message(field, item);
        }
    }
}

impl<M: Message> MapValue for M {
    fn missing() -> Self {
        M::empty()
    }
    fn read_value(wire: WireType, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut value = M::empty();
        reader.merge_message(wire, &mut value)?;
        Ok(value)
    }
    fn write_value(&self, writer: &mut Writer) {
        writer.put_message(2, self);
    }
}

// ---- collections ---------------------------------------------------------------

impl<T: Repeated> Field for Vec<T> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        T::read_into(self, wire, reader)
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        T::write_all(self, field, writer);
    }
}

impl<T: Repeated> Field for Option<Vec<T>> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        T::read_into(self.get_or_insert_with(Vec::new), wire, reader)
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        if let Some(items) = self {
            T::write_all(items, field, writer);
        }
    }
}

fn read_entry<V: MapValue>(
    map: &mut BTreeMap<String, V>,
    wire: WireType,
    reader: &mut Reader<'_>,
) -> Result<(), DecodeError> {
    let (key, value) = reader.nested(wire, |entry| {
        let mut key = String::new();
        let mut value = None;
        while let Some((field, wire)) = entry.read_key()? {
            match field {
                1 => key = read_string(wire, entry)?,
                2 => value = Some(V::read_value(wire, entry)?),
                _ => entry.skip(wire)?,
            }
        }
        Ok((key, value.unwrap_or_else(V::missing)))
    })?;
    map.insert(key, value);
    Ok(())
}

fn write_entries<V: MapValue>(map: &BTreeMap<String, V>, field: u32, writer: &mut Writer) {
    for (key, value) in map {
        writer.put_nested(field, |entry| {
            entry.put_bytes_field(1, key.as_bytes());
            value.write_value(entry);
        });
    }
}

impl<V: MapValue> Field for BTreeMap<String, V> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        read_entry(self, wire, reader)
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        write_entries(self, field, writer);
    }
}

impl<V: MapValue> Field for Option<BTreeMap<String, V>> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        read_entry(self.get_or_insert_with(BTreeMap::new), wire, reader)
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        if let Some(map) = self {
            write_entries(map, field, writer);
        }
    }
}

// ---- what Go's JSON encoder omits ---------------------------------------------

/// A field whose zero value Go's JSON encoder omits (`omitempty` on a
/// non-pointer field) while its protobuf encoder writes it: the generated
/// [`Message::finish`] turns the zero value into `None`.
pub trait OmitEmpty {
    /// Replaces a present zero value with `None`.
    fn omit_empty(&mut self);
}

macro_rules! omit_empty {
    ($($ty:ty => $zero:expr),*) => {$(
        impl OmitEmpty for Option<$ty> {
            fn omit_empty(&mut self) {
                #[allow(clippy::redundant_closure_call)]
                if self.as_ref().is_some_and($zero) {
                    *self = None;
                }
            }
        }
    )*};
}
omit_empty!(
    String => |v: &String| v.is_empty(),
    bool => |v: &bool| !*v,
    i32 => |v: &i32| *v == 0,
    i64 => |v: &i64| *v == 0,
    f64 => |v: &f64| *v == 0.0,
    ByteString => |v: &ByteString| v.0.is_empty()
);

impl<T> OmitEmpty for Option<Vec<T>> {
    fn omit_empty(&mut self) {
        if self.as_ref().is_some_and(Vec::is_empty) {
            *self = None;
        }
    }
}

impl<V> OmitEmpty for Option<BTreeMap<String, V>> {
    fn omit_empty(&mut self) {
        if self.as_ref().is_some_and(BTreeMap::is_empty) {
            *self = None;
        }
    }
}

/// The value of a field before decoding (for the structs without `Default`).
pub trait Empty {
    /// `None`, `""`, `0`, an empty collection, an empty message.
    fn empty() -> Self;
}

macro_rules! empty_default {
    ($($ty:ty),*) => {$(
        impl Empty for $ty {
            fn empty() -> Self {
                <$ty>::default()
            }
        }
    )*};
}
empty_default!(String, bool, i32, i64, f64, ByteString);

impl<T> Empty for Option<T> {
    fn empty() -> Self {
        None
    }
}

impl<T> Empty for Vec<T> {
    fn empty() -> Self {
        Vec::new()
    }
}

impl<K, V> Empty for BTreeMap<K, V> {
    fn empty() -> Self {
        BTreeMap::new()
    }
}

impl<M: Message> Empty for M {
    fn empty() -> Self {
        M::empty()
    }
}

/// Fails with "invalid value" at the reader's position.
pub(crate) fn invalid(reader: &Reader<'_>, what: &'static str) -> DecodeError {
    DecodeError::new(DecodeErrorKind::InvalidValue(what), reader.offset())
}
