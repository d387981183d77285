//! The protobuf wire format: a bounds-checked [`Reader`] and a [`Writer`].
//!
//! A protobuf message is a sequence of fields, each a *key* (field number
//! and wire type, as a varint) and a value: a varint, eight or four
//! little-endian bytes, or a varint length followed by that many bytes (a
//! string, bytes, a nested message, a packed repeated scalar or a map
//! entry). Field order is free and a field may repeat (for a message field
//! the occurrences merge).
//!
//! Guarantees of the [`Reader`]: it never reads outside its input and never
//! panics on any input; every problem is a [`DecodeError`] with the byte
//! offset. Nested messages are read in place (no copy), within the bounds
//! of their length prefix, and no deeper than [`MAX_DEPTH`]. Fields the
//! target type does not know are skipped, so a newer server's additions do
//! not break an older client. Memory use is bounded by the input: a length
//! prefix larger than what is left is an error before anything is allocated.

use crate::error::{DecodeError, DecodeErrorKind, WireType};
use crate::message::Message;

/// The deepest nesting of messages the [`Reader`] accepts.
///
/// Kubernetes objects nest about 15 deep (a Pod's container's probe's
/// handler…); a CRD's OpenAPI schema nests two messages per schema level.
/// 100 leaves room for a 40-level schema and stops hostile input long before
/// the stack is at risk.
pub const MAX_DEPTH: u32 = 100;

/// Reads protobuf fields from a byte slice, in place.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, one message at depth 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
            depth: 0,
        }
    }

    /// The offset of the next byte, from the start of the input.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Whether the current message has no more bytes.
    pub fn is_done(&self) -> bool {
        self.pos >= self.end
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, self.pos)
    }

    /// Reads a base-128 varint.
    pub fn read_varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf[..self.end].get(self.pos) else {
                return Err(self.error(DecodeErrorKind::Truncated));
            };
            if i == 9 && byte > 1 {
                return Err(self.error(DecodeErrorKind::VarintOverflow));
            }
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(self.error(DecodeErrorKind::VarintOverflow))
    }

    /// Reads the next field key, or None at the end of the current message.
    pub fn read_key(&mut self) -> Result<Option<(u32, WireType)>, DecodeError> {
        if self.is_done() {
            return Ok(None);
        }
        let start = self.pos;
        let key = self.read_varint()?;
        let wire = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 | 4 => return Err(DecodeError::new(DecodeErrorKind::GroupUnsupported, start)),
            5 => WireType::Fixed32,
            _ => return Err(DecodeError::new(DecodeErrorKind::InvalidKey, start)),
        };
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(DecodeError::new(DecodeErrorKind::InvalidKey, start));
        }
        Ok(Some((field as u32, wire)))
    }

    /// Fails unless `found` is `expected` (the value's wire type is the one
    /// its field's type is encoded with).
    pub fn expect(&self, found: WireType, expected: WireType) -> Result<(), DecodeError> {
        if found == expected {
            Ok(())
        } else {
            Err(self.error(DecodeErrorKind::WrongWireType { expected, found }))
        }
    }

    /// Moves to absolute offset `offset` (forward only, within the current message).
    pub fn advance_to(&mut self, offset: usize) -> Result<(), DecodeError> {
        if offset < self.pos || offset > self.end {
            return Err(self.error(DecodeErrorKind::Truncated));
        }
        self.pos = offset;
        Ok(())
    }

    /// Reads eight little-endian bytes.
    pub fn read_fixed64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// Reads four little-endian bytes.
    pub fn read_fixed32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        let mut array = [0u8; 4];
        array.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(array))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.end - self.pos < n {
            return Err(self.error(DecodeErrorKind::Truncated));
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// Reads a length prefix and checks it against what is left.
    fn read_len(&mut self) -> Result<usize, DecodeError> {
        let start = self.pos;
        let declared = self.read_varint()?;
        let remaining = self.end - self.pos;
        if declared > remaining as u64 {
            return Err(DecodeError::new(
                DecodeErrorKind::LengthOutOfBounds {
                    declared,
                    remaining,
                },
                start,
            ));
        }
        Ok(declared as usize)
    }

    /// Reads a length-delimited value (bytes, string, packed scalars) in place.
    pub fn read_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.read_len()?;
        self.take(len)
    }

    /// Reads a length-delimited UTF-8 string in place.
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let bytes = self.read_bytes()?;
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError::new(DecodeErrorKind::InvalidUtf8, start))
    }

    /// Skips a value of wire type `wire`.
    pub fn skip(&mut self, wire: WireType) -> Result<(), DecodeError> {
        match wire {
            WireType::Varint => self.read_varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
            WireType::Len => self.read_bytes().map(drop),
            WireType::StartGroup | WireType::EndGroup => {
                Err(self.error(DecodeErrorKind::GroupUnsupported))
            }
        }
    }

    /// Runs `body` over the length-delimited value that follows, as a nested
    /// message one level deeper; `body` must consume exactly that value.
    pub fn nested<T>(
        &mut self,
        wire: WireType,
        body: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        self.expect(wire, WireType::Len)?;
        if self.depth >= MAX_DEPTH {
            return Err(self.error(DecodeErrorKind::TooDeep));
        }
        let len = self.read_len()?;
        let outer_end = self.end;
        self.end = self.pos + len;
        self.depth += 1;
        let result = body(self);
        self.depth -= 1;
        self.end = outer_end;
        result
    }

    /// Merges the fields of the current message (up to its end) into `message`.
    pub fn merge_fields<M: Message>(&mut self, message: &mut M) -> Result<(), DecodeError> {
        while let Some((field, wire)) = self.read_key().map_err(|e| e.within(M::PROTO_NAME, 0))? {
            message
                .merge_field(field, wire, self)
                .map_err(|e| e.within(M::PROTO_NAME, field))?;
        }
        message.finish();
        Ok(())
    }

    /// Merges the length-delimited nested message that follows into `message`.
    pub fn merge_message<M: Message>(
        &mut self,
        wire: WireType,
        message: &mut M,
    ) -> Result<(), DecodeError> {
        self.nested(wire, |reader| reader.merge_fields(message))
    }

    /// Counts the occurrences of field `field` in the rest of the current
    /// message without decoding them (to allocate a list's exact capacity).
    pub fn count_field(&self, field: u32) -> Result<usize, DecodeError> {
        let mut probe = Reader {
            buf: self.buf,
            pos: self.pos,
            end: self.end,
            depth: self.depth,
        };
        let mut count = 0;
        while let Some((number, wire)) = probe.read_key()? {
            if number == field {
                count += 1;
            }
            probe.skip(wire)?;
        }
        Ok(count)
    }
}

/// Writes protobuf fields into a growing buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes (a magic, a pre-encoded message).
    pub fn put_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes a base-128 varint.
    pub fn put_varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    /// Writes the key of field `field` with wire type `wire`.
    pub fn put_key(&mut self, field: u32, wire: WireType) {
        let wire = match wire {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::StartGroup => 3,
            WireType::EndGroup => 4,
            WireType::Fixed32 => 5,
        };
        self.put_varint((u64::from(field) << 3) | wire);
    }

    /// Writes field `field` as a varint.
    pub fn put_varint_field(&mut self, field: u32, value: u64) {
        self.put_key(field, WireType::Varint);
        self.put_varint(value);
    }

    /// Writes field `field` as eight little-endian bytes.
    pub fn put_fixed64_field(&mut self, field: u32, value: u64) {
        self.put_key(field, WireType::Fixed64);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// Writes field `field` as length-delimited bytes.
    pub fn put_bytes_field(&mut self, field: u32, bytes: &[u8]) {
        self.put_key(field, WireType::Len);
        self.put_varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// Writes field `field` as a length-delimited value whose content
    /// `body` writes (a nested message, a map entry, packed scalars).
    pub fn put_nested(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        self.put_key(field, WireType::Len);
        // One byte for the length; most nested values are under 128 bytes.
        let len_at = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - len_at - 1;
        if len < 0x80 {
            self.buf[len_at] = len as u8;
        } else {
            let mut prefix = Writer::new();
            prefix.put_varint(len as u64);
            self.buf.splice(len_at..=len_at, prefix.buf);
        }
    }

    /// Writes `message` as field `field`.
    pub fn put_message<M: Message>(&mut self, field: u32, message: &M) {
        self.put_nested(field, |writer| message.encode_fields(writer));
    }
}
