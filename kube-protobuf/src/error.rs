//! The one error of decoding: [`DecodeError`].
//!
//! Every malformed input — a truncated buffer, a varint longer than ten
//! bytes, a length beyond the end, a wire type the field cannot hold, a
//! nesting deeper than [`MAX_DEPTH`](crate::wire::MAX_DEPTH), a string that
//! is not UTF-8, a JSON payload that does not parse — becomes a
//! `DecodeError` that says *what* was wrong and *where*: the protobuf message
//! type and field number being decoded and the byte offset in the input.
//! It never quotes the input's bytes (they may be Secret data).

use std::fmt;

/// What was wrong with the input (see [`DecodeError::kind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended inside a key, varint, fixed-width value or length-delimited field.
    Truncated,
    /// A varint longer than ten bytes (or one that overflows 64 bits).
    VarintOverflow,
    /// A length prefix pointing past the end of the enclosing message.
    LengthOutOfBounds {
        /// The length the prefix declared.
        declared: u64,
        /// The bytes that were left.
        remaining: usize,
    },
    /// A field number 0 or a wire type that does not exist (6, 7).
    InvalidKey,
    /// The deprecated group wire types (3, 4), which Kubernetes never uses.
    GroupUnsupported,
    /// A wire type other than the one the field's type is encoded with.
    WrongWireType {
        /// The wire type the field needs.
        expected: WireType,
        /// The wire type the input had.
        found: WireType,
    },
    /// Messages nested deeper than [`MAX_DEPTH`](crate::wire::MAX_DEPTH).
    TooDeep,
    /// A string field that is not UTF-8.
    InvalidUtf8,
    /// A JSON payload (RawExtension, JSON, FieldsV1) that is not valid JSON.
    InvalidJson,
    /// A value outside what the field allows (the text says which).
    InvalidValue(&'static str),
    /// The body does not start with the `k8s\0` magic of a protobuf envelope.
    MissingMagic,
}

/// The wire types of the protobuf encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    /// 0: a base-128 varint.
    Varint,
    /// 1: eight little-endian bytes.
    Fixed64,
    /// 2: a varint length, then that many bytes.
    Len,
    /// 3: start of a group (unsupported).
    StartGroup,
    /// 4: end of a group (unsupported).
    EndGroup,
    /// 5: four little-endian bytes.
    Fixed32,
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "length-delimited",
            WireType::StartGroup => "start-group",
            WireType::EndGroup => "end-group",
            WireType::Fixed32 => "fixed32",
        })
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Truncated => f.write_str("input truncated"),
            DecodeErrorKind::VarintOverflow => f.write_str("varint longer than 64 bits"),
            DecodeErrorKind::LengthOutOfBounds {
                declared,
                remaining,
            } => {
                write!(f, "length {declared} exceeds the {remaining} bytes left")
            }
            DecodeErrorKind::InvalidKey => {
                f.write_str("invalid field key (field 0 or wire type 6/7)")
            }
            DecodeErrorKind::GroupUnsupported => f.write_str("group wire type is not supported"),
            DecodeErrorKind::WrongWireType { expected, found } => {
                write!(f, "wire type {found} where {expected} was expected")
            }
            DecodeErrorKind::TooDeep => {
                write!(f, "messages nested deeper than {}", crate::wire::MAX_DEPTH)
            }
            DecodeErrorKind::InvalidUtf8 => f.write_str("string is not UTF-8"),
            DecodeErrorKind::InvalidJson => f.write_str("embedded JSON does not parse"),
            DecodeErrorKind::InvalidValue(what) => write!(f, "invalid value: {what}"),
            DecodeErrorKind::MissingMagic => {
                f.write_str("body does not start with the protobuf envelope magic k8s\\0")
            }
        }
    }
}

/// Malformed protobuf input: what was wrong, in which message type and
/// field, at which byte offset (never the bytes themselves).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    message: Option<&'static str>,
    field: u32,
    offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protobuf decoding failed: {}", self.kind)?;
        if let Some(message) = self.message {
            if self.field == 0 {
                write!(f, " in {message}")?;
            } else {
                write!(f, " in field {} of {message}", self.field)?;
            }
        }
        write!(f, " at byte {}", self.offset)
    }
}

impl DecodeError {
    /// An error of `kind` at byte `offset` of the input, not yet placed in a message.
    pub fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError {
            kind,
            message: None,
            field: 0,
            offset,
        }
    }

    /// Places the error in field `field` of protobuf message `message`,
    /// unless an inner message already claimed it (the innermost wins).
    pub fn within(mut self, message: &'static str, field: u32) -> Self {
        if self.message.is_none() {
            self.message = Some(message);
            self.field = field;
        }
        self
    }

    /// What was wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// The fully qualified protobuf message type being decoded, e.g.
    /// `k8s.io.api.core.v1.PodSpec` (None for errors outside any message,
    /// such as a missing envelope magic).
    pub fn message_type(&self) -> Option<&'static str> {
        self.message
    }

    /// The field number being decoded (0 when the error is in a field key
    /// or outside any field).
    pub fn field(&self) -> u32 {
        self.field
    }

    /// The byte offset in the input where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }
}
