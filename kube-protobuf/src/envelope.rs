//! The protobuf envelope and watch event frames.
//!
//! A Kubernetes protobuf body is not a bare message: it is the four bytes
//! `k8s\0` followed by a `runtime.Unknown` message — `typeMeta` (field 1:
//! `apiVersion` 1, `kind` 2), `raw` (2: the object's own message),
//! `contentEncoding` (3) and `contentType` (4). [`open_envelope`] reads it
//! in place (every field borrows from the body); [`seal_envelope`] writes
//! one for a request body.
//!
//! A protobuf watch stream is a sequence of frames, each a 4-byte
//! big-endian length and that many bytes (the framing is the caller's);
//! [`decode_watch_event`] reads one frame's bytes: a meta/v1 `WatchEvent`
//! (`type` 1, `object` 2, a RawExtension whose `raw` is the object's own
//! envelope). kube-apiserver 1.37 writes the WatchEvent bare (checked by the
//! tests against it); an enveloped one (kind `WatchEvent`) is accepted too.

use crate::error::{DecodeError, DecodeErrorKind, WireType};
use crate::wire::{Reader, Writer};

/// The four bytes every protobuf body of the API server starts with.
pub const MAGIC: &[u8] = b"k8s\0";

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";
const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";

/// An opened protobuf envelope (`runtime.Unknown`), borrowing from the body.
///
/// Its `Debug` shows the length of `raw`, never its bytes (they may be a Secret).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Envelope<'a> {
    /// The object's `apiVersion` (`v1`, `apps/v1`).
    pub api_version: &'a str,
    /// The object's `kind` (`Pod`, `PodList`, `Status`).
    pub kind: &'a str,
    /// The object's own protobuf message.
    pub raw: &'a [u8],
    /// The encoding of `raw` (empty: none).
    pub content_encoding: &'a str,
    /// The content type of `raw` (empty: protobuf).
    pub content_type: &'a str,
}

/// One decoded frame of a protobuf watch stream, borrowing from the frame.
///
/// Its `Debug` shows the length of `object`, never its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WatchEventFrame<'a> {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub event_type: &'a str,
    /// The object: its own envelope (open it with [`open_envelope`]); for
    /// `ERROR`, a `Status`.
    pub object: &'a [u8],
}

impl std::fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("raw", &format_args!("<{} bytes>", self.raw.len()))
            .field("content_encoding", &self.content_encoding)
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl std::fmt::Debug for WatchEventFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchEventFrame")
            .field("event_type", &self.event_type)
            .field("object", &format_args!("<{} bytes>", self.object.len()))
            .finish()
    }
}

/// Opens the envelope of a protobuf body: checks the `k8s\0` magic and
/// reads the `runtime.Unknown` in place.
pub fn open_envelope(body: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    if !body.starts_with(MAGIC) {
        return Err(DecodeError::new(DecodeErrorKind::MissingMagic, 0));
    }
    // Offsets in errors count from the body's start, magic included.
    let mut reader = Reader::new(body);
    reader.advance_to(MAGIC.len())?;
    read_unknown(&mut reader).map_err(|e| e.within(UNKNOWN, 0))
}

fn read_unknown<'a>(reader: &mut Reader<'a>) -> Result<Envelope<'a>, DecodeError> {
    let mut envelope = Envelope::default();
    while let Some((field, wire)) = reader.read_key()? {
        let placed = |e: DecodeError| e.within(UNKNOWN, field);
        match field {
            1 => reader
                .nested(wire, |type_meta| {
                    while let Some((field, wire)) = type_meta.read_key()? {
                        let placed = |e: DecodeError| e.within(TYPE_META, field);
                        match field {
                            1 => {
                                envelope.api_version = read_str(wire, type_meta).map_err(placed)?
                            }
                            2 => envelope.kind = read_str(wire, type_meta).map_err(placed)?,
                            _ => type_meta.skip(wire)?,
                        }
                    }
                    Ok(())
                })
                .map_err(placed)?,
            2 => envelope.raw = read_bytes(wire, reader).map_err(placed)?,
            3 => envelope.content_encoding = read_str(wire, reader).map_err(placed)?,
            4 => envelope.content_type = read_str(wire, reader).map_err(placed)?,
            _ => reader.skip(wire)?,
        }
    }
    Ok(envelope)
}

fn read_str<'a>(wire: WireType, reader: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    reader.expect(wire, WireType::Len)?;
    reader.read_str()
}

fn read_bytes<'a>(wire: WireType, reader: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    reader.expect(wire, WireType::Len)?;
    reader.read_bytes()
}

/// Wraps the protobuf message `raw` of an object of `api_version`/`kind` in
/// an envelope, as a request body.
pub fn seal_envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.put_raw(MAGIC);
    writer.put_nested(1, |type_meta| {
        type_meta.put_bytes_field(1, api_version.as_bytes());
        type_meta.put_bytes_field(2, kind.as_bytes());
    });
    writer.put_bytes_field(2, raw);
    // contentEncoding and contentType empty, as the Go encoder writes them
    writer.put_bytes_field(3, b"");
    writer.put_bytes_field(4, b"");
    writer.into_bytes()
}

/// Decodes one frame of a protobuf watch stream (the bytes after its
/// length prefix).
pub fn decode_watch_event(frame: &[u8]) -> Result<WatchEventFrame<'_>, DecodeError> {
    let (message, offset) = if frame.starts_with(MAGIC) {
        let envelope = open_envelope(frame)?;
        // A `raw` read from the frame is a sub-slice of it: its offset keeps
        // error offsets frame-relative. An envelope without `raw` holds an
        // empty slice that need not point into the frame at all.
        let offset = if envelope.raw.is_empty() {
            frame.len()
        } else {
            (envelope.raw.as_ptr() as usize).saturating_sub(frame.as_ptr() as usize)
        };
        (envelope.raw, offset)
    } else {
        (frame, 0)
    };
    let mut reader = Reader::new(&frame[..offset + message.len()]);
    reader.advance_to(offset)?;
    let mut event = WatchEventFrame {
        event_type: "",
        object: &[],
    };
    while let Some((field, wire)) = reader.read_key().map_err(|e| e.within(WATCH_EVENT, 0))? {
        let placed = |e: DecodeError| e.within(WATCH_EVENT, field);
        match field {
            1 => event.event_type = read_str(wire, &mut reader).map_err(placed)?,
            2 => {
                event.object = reader
                    .nested(wire, |raw_extension| {
                        let mut raw: &[u8] = &[];
                        while let Some((field, wire)) = raw_extension.read_key()? {
                            match field {
                                1 => {
                                    raw = read_bytes(wire, raw_extension)
                                        .map_err(|e| e.within(RAW_EXTENSION, 1))?
                                }
                                _ => raw_extension.skip(wire)?,
                            }
                        }
                        Ok(raw)
                    })
                    .map_err(placed)?
            }
            _ => reader.skip(wire).map_err(placed)?,
        }
    }
    Ok(event)
}
