//! Reading whole answer bodies under a limit.
//!
//! A body is read into memory to be decoded, so what the server (or
//! anything between it and us) sends decides how much memory the client
//! takes. Each read is therefore capped: a body that announces more than the
//! limit (`Content-Length`) is refused before any of it is read, and one
//! that turns out larger (chunked, or larger once gunzipped) stops being
//! read as soon as it passes the limit. Either way the answer is an
//! [`Error::TooLarge`] naming the URL, the limit and the setting that sets
//! it; memory never holds more than the limit plus one network chunk.
//!
//! Limits (see also [`ClientBuilder`](super::ClientBuilder)):
//! - a successful answer: [`DEFAULT_MAX_BODY_BYTES`] (1 GiB, room for an
//!   unpaged list of a very large cluster; a single object is at most
//!   ~1.5 MiB in etcd), [`ClientBuilder::max_body_bytes`](super::ClientBuilder::max_body_bytes);
//! - an error answer: [`MAX_ERROR_BODY_BYTES`] (1 MiB; a `Status` is small)
//!   or the body limit if that is smaller. A larger error body is not a
//!   `Status`: it becomes an [`Error::HttpStatus`] that keeps the answer's
//!   code and says the body was over the limit.

use bytes::{Bytes, BytesMut};

use super::pipeline::transport_error;
use crate::error::{Error, Result};

/// Default limit of a whole (non-streamed) answer body: 1 GiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 30;

/// Limit of an error answer's body: 1 MiB.
pub const MAX_ERROR_BODY_BYTES: usize = 1 << 20;

/// Where a limit comes from, for the error message.
pub(crate) const BODY_SETTING: &str = "ClientBuilder::max_body_bytes";

/// Reads `resp`'s whole body, refusing more than `limit` bytes (see the
/// module docs). `what` names the body in the error.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    method: &str,
    url: &str,
    limit: usize,
    what: &'static str,
) -> Result<Bytes> {
    let too_large = || Error::TooLarge {
        url: url.to_string(),
        what,
        limit,
        setting: BODY_SETTING,
    };
    if resp.content_length().is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(method, url, &e))?
    {
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(too_large());
        }
        chunks.push(chunk);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut whole = BytesMut::with_capacity(total);
            for chunk in chunks {
                whole.extend_from_slice(&chunk);
            }
            whole.freeze()
        }
    })
}
