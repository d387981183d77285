//! Bearer tokens, static or from a file that is re-read when it changes.
//!
//! Guarantees:
//!
//! - A [`TokenFile`] is read once when it is created, so a missing or empty
//!   file is reported at load time, naming the file.
//! - Each [`TokenFile::token`] call costs one `stat`: the file is read again
//!   when its modification time, length or (on Unix) inode changed (bound
//!   service-account tokens are rotated by swapping a symlink, which changes
//!   the inode), and in any case when the cached value is older than
//!   [`TokenFile::MAX_AGE`] (one minute, client-go's re-read period), or after
//!   [`invalidate`](TokenFile::invalidate).
//! - The token is trimmed of surrounding whitespace; an empty token is an
//!   error.
//! - If a re-read fails after a successful read, the last token is kept and a
//!   warning logged (as client-go does), so a rotation in progress does not
//!   fail requests.
//! - Clones share one cache (an `Arc<Mutex<..>>`); the type is `Send + Sync`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::{Error, SecretString};

/// Where a bearer token comes from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// A fixed token (`token` in a kubeconfig).
    Static(SecretString),
    /// A file re-read when it changes (`tokenFile`, or the in-cluster
    /// service-account token).
    File(TokenFile),
}

impl TokenSource {
    /// The current token.
    pub fn token(&self) -> Result<SecretString, Error> {
        match self {
            TokenSource::Static(t) => Ok(t.clone()),
            TokenSource::File(f) => f.token(),
        }
    }

    /// Forces a re-read of a token file on the next call (no-op for a static
    /// token).
    pub fn invalidate(&self) {
        if let TokenSource::File(f) = self {
            f.invalidate();
        }
    }
}

impl From<SecretString> for TokenSource {
    fn from(token: SecretString) -> Self {
        TokenSource::Static(token)
    }
}

/// A token file with a change-detecting cache. Cheap to clone.
#[derive(Clone)]
pub struct TokenFile {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    cache: Mutex<Cache>,
}

struct Cache {
    token: SecretString,
    stamp: Option<Stamp>,
    read_at: Instant,
    stale: bool,
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let md = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&md);
    #[cfg(not(unix))]
    let ino = 0;
    Some(Stamp {
        modified: md.modified().ok(),
        len: md.len(),
        ino,
    })
}

fn read_token(path: &Path) -> Result<SecretString, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::ReadFile {
        what: "token file".to_owned(),
        path: path.to_path_buf(),
        error,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::TokenFile {
            path: path.to_path_buf(),
            reason: "the file is empty".to_owned(),
        });
    }
    Ok(SecretString::new(token))
}

impl TokenFile {
    /// The longest a token is served from cache without a re-read, even if
    /// the file looks unchanged.
    pub const MAX_AGE: Duration = Duration::from_secs(60);

    /// Reads the token file once (failing if it is missing or empty) and
    /// returns a source that re-reads it when it changes.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let stamp = stamp(&path);
        let token = read_token(&path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                cache: Mutex::new(Cache {
                    token,
                    stamp,
                    read_at: Instant::now(),
                    stale: false,
                }),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The current token: cached, or re-read if the file changed, the cache
    /// is older than [`MAX_AGE`](Self::MAX_AGE), or it was invalidated.
    pub fn token(&self) -> Result<SecretString, Error> {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        let now_stamp = stamp(&self.inner.path);
        let fresh = !cache.stale
            && now_stamp.is_some()
            && now_stamp == cache.stamp
            && cache.read_at.elapsed() < Self::MAX_AGE;
        if fresh {
            return Ok(cache.token.clone());
        }
        match read_token(&self.inner.path) {
            Ok(token) => {
                cache.token = token;
                cache.stamp = now_stamp;
                cache.read_at = Instant::now();
                cache.stale = false;
                Ok(cache.token.clone())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read token file; using the previous token");
                Ok(cache.token.clone())
            }
        }
    }

    /// Forces a re-read on the next [`token`](Self::token) call.
    pub fn invalidate(&self) {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.stale = true;
    }
}

impl fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.inner.path)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads_when_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").expect("write");
        let src = TokenSource::File(TokenFile::new(&path).expect("new"));
        let clone = src.clone();
        assert_eq!(src.token().expect("token").expose(), "first");

        std::fs::write(&path, "second-longer").expect("write");
        assert_eq!(clone.token().expect("token").expose(), "second-longer");

        // Same length, and the mtime moved explicitly: still detected.
        std::fs::write(&path, "third-xlonger").expect("write");
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .expect("set mtime");
        assert_eq!(src.token().expect("token").expose(), "third-xlonger");

        // Removed: the last good token is kept.
        std::fs::remove_file(&path).expect("rm");
        assert_eq!(src.token().expect("token").expose(), "third-xlonger");
        src.invalidate();
        assert_eq!(src.token().expect("token").expose(), "third-xlonger");

        let dbg = format!("{src:?}");
        assert!(!dbg.contains("third"), "{dbg}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        let err = TokenFile::new(&path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read token file {}: ", path.display())),
            "{err}"
        );
        std::fs::write(&path, " \n").expect("write");
        let err = TokenFile::new(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("token file {}: the file is empty", path.display())
        );
    }

    #[test]
    fn static_token() {
        let src = TokenSource::from(SecretString::new("abc"));
        src.invalidate();
        assert_eq!(src.token().expect("token").expose(), "abc");
    }
}
