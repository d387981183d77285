//! Hand-written encodings of the types whose Rust shape differs from their
//! protobuf message.
//!
//! | type | protobuf message | Rust |
//! |---|---|---|
//! | meta/v1 `Time`, `MicroTime` | `{seconds int64 = 1, nanos int32 = 2}` | `jiff::Timestamp`; an empty message (Go's zero time, which JSON writes as `null`) is `None` |
//! | api/resource `Quantity` | `{string = 1}` | `Quantity(String)` |
//! | util/intstr `IntOrString` | `{type int64 = 1, intVal int32 = 2, strVal = 3}` | `enum IntOrString` |
//! | runtime `RawExtension`, apiextensions `JSON`, meta/v1 `FieldsV1` | `{raw bytes = 1}` holding JSON | `serde_json::Value` |
//! | apiextensions `JSONSchemaPropsOrBool` | `{allows bool = 1, schema = 2}` | `enum` (a schema wins over the bool) |
//! | apiextensions `JSONSchemaPropsOrArray` | `{schema = 1, jSONSchemas = 2 (repeated)}` | `enum` (a non-empty array wins) |
//! | apiextensions `JSONSchemaPropsOrStringArray` | `{schema = 1, property = 2 (repeated string)}` | `enum` (a non-empty list wins) |
//!
//! The precedence rules are those of the Go types' JSON encoders, so a value
//! decodes to what the same object's JSON decodes to. Bytes that carry JSON
//! are parsed with serde_json; a payload that is not JSON is
//! [`DecodeErrorKind::InvalidJson`].

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    JSONSchemaPropsOrStringArray,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, MicroTime, Time};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::error::{DecodeError, DecodeErrorKind, WireType};
use crate::field::{Field, MapValue, Repeated, Scalar, invalid};
use crate::message::Message;
use crate::wire::{Reader, Writer};

// ---- Time and MicroTime ---------------------------------------------------------

/// Reads a `{seconds, nanos}` message; None for the empty message (Go's zero time).
fn read_timestamp(
    wire: WireType,
    reader: &mut Reader<'_>,
    message: &'static str,
) -> Result<Option<Timestamp>, DecodeError> {
    reader
        .nested(wire, |inner| {
            let mut seconds: Option<i64> = None;
            let mut nanos: i32 = 0;
            while let Some((field, wire)) = inner.read_key()? {
                match field {
                    1 => seconds = Some(field_scalar(wire, inner)?),
                    2 => nanos = field_scalar(wire, inner)?,
                    _ => inner.skip(wire)?,
                }
            }
            match seconds {
                None if nanos == 0 => Ok(None),
                _ => Timestamp::new(seconds.unwrap_or(0), nanos)
                    .map(Some)
                    .map_err(|_| invalid(inner, "timestamp out of range")),
            }
        })
        .map_err(|e| e.within(message, 0))
}

fn field_scalar<S: Scalar>(wire: WireType, reader: &mut Reader<'_>) -> Result<S, DecodeError> {
    reader.expect(wire, S::WIRE)?;
    S::read(reader)
}

fn write_timestamp(timestamp: &Timestamp, field: u32, writer: &mut Writer) {
    writer.put_nested(field, |inner| {
        inner.put_varint_field(1, timestamp.as_second() as u64);
        let nanos = timestamp.subsec_nanosecond();
        if nanos != 0 {
            inner.put_varint_field(2, i64::from(nanos) as u64);
        }
    });
}

macro_rules! time_fields {
    ($($ty:ident => $name:literal),*) => {$(
        impl Field for Option<$ty> {
            fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
                *self = read_timestamp(wire, reader, $name)?.map($ty);
                Ok(())
            }
            fn encode_as(&self, field: u32, writer: &mut Writer) {
                if let Some(value) = self {
                    write_timestamp(&value.0, field, writer);
                }
            }
        }
        impl Field for $ty {
            fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
                // A required time that is Go's zero time: the zero of Rust's clock.
                *self = $ty(read_timestamp(wire, reader, $name)?.unwrap_or(Timestamp::UNIX_EPOCH));
                Ok(())
            }
            fn encode_as(&self, field: u32, writer: &mut Writer) {
                write_timestamp(&self.0, field, writer);
            }
        }
    )*};
}
impl crate::field::Empty for Time {
    fn empty() -> Self {
        Time(Timestamp::UNIX_EPOCH)
    }
}

impl crate::field::Empty for MicroTime {
    fn empty() -> Self {
        MicroTime(Timestamp::UNIX_EPOCH)
    }
}

impl crate::field::Empty for IntOrString {
    fn empty() -> Self {
        IntOrString::Int(0)
    }
}

time_fields!(Time => "k8s.io.apimachinery.pkg.apis.meta.v1.Time",
             MicroTime => "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime");

impl MapValue for Time {
    fn missing() -> Self {
        Time(Timestamp::UNIX_EPOCH)
    }
    fn read_value(wire: WireType, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let time = read_timestamp(wire, reader, "k8s.io.apimachinery.pkg.apis.meta.v1.Time")?;
        Ok(Time(time.unwrap_or(Timestamp::UNIX_EPOCH)))
    }
    fn write_value(&self, writer: &mut Writer) {
        write_timestamp(&self.0, 2, writer);
    }
}

// ---- Quantity ------------------------------------------------------------------------

impl Message for Quantity {
    const PROTO_NAME: &'static str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
    fn empty() -> Self {
        Quantity::default()
    }
    fn merge_field(
        &mut self,
        field: u32,
        wire: WireType,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError> {
        match field {
            1 => self.0.merge_from(wire, reader),
            _ => reader.skip(wire),
        }
    }
    fn encode_fields(&self, writer: &mut Writer) {
        self.0.encode_as(1, writer);
    }
}

// ---- IntOrString ----------------------------------------------------------------------

const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";

fn read_int_or_string(wire: WireType, reader: &mut Reader<'_>) -> Result<IntOrString, DecodeError> {
    reader
        .nested(wire, |inner| {
            let (mut kind, mut int, mut string) = (0i64, 0i32, None::<String>);
            while let Some((field, wire)) = inner.read_key()? {
                match field {
                    1 => kind = field_scalar(wire, inner)?,
                    2 => int = field_scalar(wire, inner)?,
                    3 => {
                        let mut value = String::new();
                        value.merge_from(wire, inner)?;
                        string = Some(value);
                    }
                    _ => inner.skip(wire)?,
                }
            }
            match kind {
                0 => Ok(IntOrString::Int(int)),
                1 => Ok(IntOrString::String(string.unwrap_or_default())),
                _ => Err(invalid(
                    inner,
                    "IntOrString type is neither 0 (int) nor 1 (string)",
                )),
            }
        })
        .map_err(|e| e.within(INT_OR_STRING, 0))
}

fn write_int_or_string(value: &IntOrString, field: u32, writer: &mut Writer) {
    writer.put_nested(field, |inner| match value {
        IntOrString::Int(int) => {
            inner.put_varint_field(1, 0);
            inner.put_varint_field(2, i64::from(*int) as u64);
        }
        IntOrString::String(string) => {
            inner.put_varint_field(1, 1);
            inner.put_bytes_field(3, string.as_bytes());
        }
    });
}

impl Field for IntOrString {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        *self = read_int_or_string(wire, reader)?;
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        write_int_or_string(self, field, writer);
    }
}

impl Field for Option<IntOrString> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        *self = Some(read_int_or_string(wire, reader)?);
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        if let Some(value) = self {
            write_int_or_string(value, field, writer);
        }
    }
}

// ---- JSON in bytes --------------------------------------------------------------------

/// Parses the JSON in a `raw` bytes field; empty bytes are JSON `null`.
fn read_json(wire: WireType, reader: &mut Reader<'_>) -> Result<serde_json::Value, DecodeError> {
    reader.expect(wire, WireType::Len)?;
    let start = reader.offset();
    let bytes = reader.read_bytes()?;
    if bytes.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    if bytes.starts_with(crate::envelope::MAGIC) {
        return Err(invalid(
            reader,
            "an embedded protobuf object where JSON was expected",
        ));
    }
    serde_json::from_slice(bytes).map_err(|_| DecodeError::new(DecodeErrorKind::InvalidJson, start))
}

fn write_json(value: &serde_json::Value, field: u32, writer: &mut Writer) {
    // Serializing a `Value` cannot fail (its map keys are strings).
    writer.put_bytes_field(field, &serde_json::to_vec(value).unwrap_or_default());
}

macro_rules! json_messages {
    ($($ty:ident => $name:literal),*) => {$(
        impl Message for $ty {
            const PROTO_NAME: &'static str = $name;
            fn empty() -> Self {
                $ty::default()
            }
            fn merge_field(&mut self, field: u32, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
                match field {
                    1 => {
                        self.0 = read_json(wire, reader)?;
                        Ok(())
                    }
                    _ => reader.skip(wire),
                }
            }
            fn encode_fields(&self, writer: &mut Writer) {
                if !self.0.is_null() {
                    write_json(&self.0, 1, writer);
                }
            }
        }
    )*};
}
json_messages!(
    RawExtension => "k8s.io.apimachinery.pkg.runtime.RawExtension",
    JSON => "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON",
    FieldsV1 => "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"
);

// ---- the JSONSchemaPropsOr… unions --------------------------------------------------------

const OR_BOOL: &str =
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool";
const OR_ARRAY: &str =
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray";
const OR_STRINGS: &str =
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray";

fn read_schema(
    wire: WireType,
    reader: &mut Reader<'_>,
) -> Result<Box<JSONSchemaProps>, DecodeError> {
    let mut schema = Box::<JSONSchemaProps>::default();
    reader.merge_message(wire, &mut *schema)?;
    Ok(schema)
}

/// A boxed schema (`JSONSchemaProps.not`) is encoded as the schema.
impl Message for Box<JSONSchemaProps> {
    const PROTO_NAME: &'static str = <JSONSchemaProps as Message>::PROTO_NAME;
    fn empty() -> Self {
        Box::default()
    }
    fn merge_field(
        &mut self,
        field: u32,
        wire: WireType,
        reader: &mut Reader<'_>,
    ) -> Result<(), DecodeError> {
        (**self).merge_field(field, wire, reader)
    }
    fn encode_fields(&self, writer: &mut Writer) {
        (**self).encode_fields(writer)
    }
    fn finish(&mut self) {
        (**self).finish()
    }
}

impl Field for Option<JSONSchemaPropsOrBool> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        let value = reader
            .nested(wire, |inner| {
                let (mut allows, mut schema) = (false, None);
                while let Some((field, wire)) = inner.read_key()? {
                    match field {
                        1 => allows = field_scalar(wire, inner)?,
                        2 => schema = Some(read_schema(wire, inner)?),
                        _ => inner.skip(wire)?,
                    }
                }
                Ok(match schema {
                    Some(schema) => JSONSchemaPropsOrBool::Schema(schema),
                    None => JSONSchemaPropsOrBool::Bool(allows),
                })
            })
            .map_err(|e| e.within(OR_BOOL, 0))?;
        *self = Some(value);
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        match self {
            None => {}
            Some(JSONSchemaPropsOrBool::Bool(allows)) => {
                writer.put_nested(field, |inner| inner.put_varint_field(1, u64::from(*allows)))
            }
            Some(JSONSchemaPropsOrBool::Schema(schema)) => writer.put_nested(field, |inner| {
                inner.put_varint_field(1, 1);
                inner.put_message(2, &**schema);
            }),
        }
    }
}

impl Field for Option<JSONSchemaPropsOrArray> {
    fn merge_from(&mut self, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {
        let value = reader
            .nested(wire, |inner| {
                let (mut schema, mut schemas) = (None, Vec::new());
                while let Some((field, wire)) = inner.read_key()? {
                    match field {
                        1 => schema = Some(read_schema(wire, inner)?),
                        2 => JSONSchemaProps::read_into(&mut schemas, wire, inner)?,
                        _ => inner.skip(wire)?,
                    }
                }
                Ok(match schema {
                    Some(schema) if schemas.is_empty() => {
                        Some(JSONSchemaPropsOrArray::Schema(schema))
                    }
                    _ if !schemas.is_empty() => Some(JSONSchemaPropsOrArray::Schemas(schemas)),
                    _ => None,
                })
            })
            .map_err(|e| e.within(OR_ARRAY, 0))?;
        *self = value;
        Ok(())
    }
    fn encode_as(&self, field: u32, writer: &mut Writer) {
        match self {
            None => {}
            Some(JSONSchemaPropsOrArray::Schema(schema)) => {
                writer.put_nested(field, |inner| inner.put_message(1, &**schema))
            }
            Some(JSONSchemaPropsOrArray::Schemas(schemas)) => {
                writer.put_nested(field, |inner| JSONSchemaProps::write_all(schemas, 2, inner))
            }
        }
    }
}

impl MapValue for JSONSchemaPropsOrStringArray {
    fn missing() -> Self {
        JSONSchemaPropsOrStringArray::Strings(Vec::new())
    }
    fn read_value(wire: WireType, reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader
            .nested(wire, |inner| {
                let (mut schema, mut strings) = (None, Vec::new());
                while let Some((field, wire)) = inner.read_key()? {
                    match field {
                        1 => schema = Some(read_schema(wire, inner)?),
                        2 => String::read_into(&mut strings, wire, inner)?,
                        _ => inner.skip(wire)?,
                    }
                }
                Ok(match schema {
                    Some(schema) if strings.is_empty() => {
                        JSONSchemaPropsOrStringArray::Schema(schema)
                    }
                    _ => JSONSchemaPropsOrStringArray::Strings(strings),
                })
            })
            .map_err(|e| e.within(OR_STRINGS, 0))
    }
    fn write_value(&self, writer: &mut Writer) {
        match self {
            JSONSchemaPropsOrStringArray::Schema(schema) => {
                writer.put_nested(2, |inner| inner.put_message(1, &**schema))
            }
            JSONSchemaPropsOrStringArray::Strings(strings) => {
                writer.put_nested(2, |inner| String::write_all(strings, 2, inner))
            }
        }
    }
}
