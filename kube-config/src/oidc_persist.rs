//! Writing refreshed `oidc` tokens back to the kubeconfig file the user was
//! read from, as client-go's `oidc` plugin does (through its persister), so
//! that the next process starts with a valid ID token instead of refreshing
//! again — with a refresh token the issuer may already have rotated away.
//!
//! A kubeconfig is YAML written by people and by tools. Writing it back
//! means: read the file again (another process may have changed it since it
//! was loaded), change two values of one user, and replace the file whole.
//!
//! Guarantees:
//!
//! - Only `users[name].user.auth-provider.config.id-token` and, when the
//!   issuer handed out a new one, `refresh-token` of the one user change.
//!   Every other key — other users, clusters, contexts, `preferences`,
//!   extensions, keys this crate does not know — is kept with its value and
//!   in its order. Comments and the file's formatting are not: the file is
//!   written back as YAML by `serde_yaml_ng` (a JSON kubeconfig becomes
//!   YAML), as client-go's rewrite also drops comments.
//! - The file is replaced atomically: the new text goes to a temporary file
//!   in the same directory (created readable by its owner only), is synced
//!   to disk, gets the permissions of the old file (kubeconfigs are often
//!   `0600`) and is renamed over it. A reader — another process, another
//!   `kubectl` — sees the old file or the new one, never a mix or a
//!   truncated file; of two processes writing at once, one wins whole.
//!   A symbolic link is followed: the file it points to is replaced, the
//!   link stays.
//! - A file that no longer defines the user, or where the user is no longer
//!   an `oidc` auth-provider, is left byte for byte as it is
//!   ([`OidcTokensPersisted::UserGone`], [`OidcTokensPersisted::NotOidc`]);
//!   so is a file that cannot be read or parsed, or that this process may
//!   not write ([`OidcTokensPersisted::Failed`]).
//! - Failing to persist never fails the refresh: the new tokens are used
//!   from memory. [`OidcAuth::persist_refreshed`] logs the failure as a
//!   warning naming the file and the error (client-go instead fails the
//!   request). No log line or error contains a token.
//! - Users of a kubeconfig parsed from a string, and in-cluster
//!   configurations, have no file and are not persisted; nor is anything
//!   after [`OidcAuth::with_token_persisting(false)`](OidcAuth::with_token_persisting)
//!   (or [`Config::with_oidc_token_persisting`](crate::Config::with_oidc_token_persisting)).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_yaml_ng::{Mapping, Value};

use crate::{Error, OidcAuth, SecretString};

/// What [`OidcAuth::persist_refreshed`] did with the kubeconfig file.
#[derive(Debug)]
#[non_exhaustive]
pub enum OidcTokensPersisted {
    /// The file now holds the new tokens.
    Written(PathBuf),
    /// Nothing to do: persisting is switched off, or the user was not read
    /// from a file.
    Off,
    /// The file no longer defines the user; it was left unchanged.
    UserGone(PathBuf),
    /// The user in the file no longer has `auth-provider: oidc`; the file
    /// was left unchanged.
    NotOidc(PathBuf),
    /// Reading, parsing or writing the file failed (and was logged as a
    /// warning); the file was left unchanged.
    Failed(Error),
}

impl OidcAuth {
    /// Writes a refresh's new `id_token`, and `refresh_token` if the issuer
    /// rotated it, into the kubeconfig file the user was read from
    /// ([`persist_file`](Self::persist_file)), as client-go's persister
    /// does. Blocks on file I/O (a small file): call it from a blocking
    /// context. Never fails: what went wrong is logged and returned.
    ///
    /// - The file is read again, and only the user's
    ///   `auth-provider.config` keys `id-token` and `refresh-token` change;
    ///   every other key and entry is kept, in its order. Comments and
    ///   formatting are lost: the file is written back as YAML (as
    ///   client-go's rewrite also loses them).
    /// - The file is replaced atomically (a temporary file in its
    ///   directory, synced, renamed over it) and keeps its permissions; a
    ///   symbolic link is followed and stays a link. A file this process
    ///   may not write is left alone.
    /// - A file that no longer has the user, or no longer as `oidc`, is
    ///   left unchanged (logged at debug level); a read, parse or write
    ///   failure is logged as a warning naming the file and the error.
    ///   Neither ever shows a token.
    pub fn persist_refreshed(
        &self,
        id_token: &SecretString,
        refresh_token: Option<&SecretString>,
    ) -> OidcTokensPersisted {
        let Some(path) = self.persist_file() else {
            return OidcTokensPersisted::Off;
        };
        let refresh_token = refresh_token.filter(|t| !t.is_empty());
        let outcome = match write_tokens(path, self.user(), id_token, refresh_token) {
            Ok(outcome) => outcome,
            Err(error) => OidcTokensPersisted::Failed(error),
        };
        let (user, file) = (self.user(), path.display());
        match &outcome {
            OidcTokensPersisted::Written(_) => {
                tracing::debug!(user, %file, "wrote the refreshed oidc tokens to the kubeconfig");
            }
            OidcTokensPersisted::UserGone(_) => tracing::debug!(
                user,
                %file,
                "the kubeconfig no longer defines the user; refreshed oidc tokens not written"
            ),
            OidcTokensPersisted::NotOidc(_) => tracing::debug!(
                user,
                %file,
                "the user in the kubeconfig is no longer an oidc auth-provider; refreshed oidc tokens not written"
            ),
            OidcTokensPersisted::Failed(error) => tracing::warn!(
                user,
                %file,
                %error,
                "could not write the refreshed oidc tokens back to the kubeconfig; they are used from memory only"
            ),
            OidcTokensPersisted::Off => {}
        }
        outcome
    }
}

/// Reads `path`, sets the tokens of `user` and replaces the file.
fn write_tokens(
    path: &Path,
    user: &str,
    id_token: &SecretString,
    refresh_token: Option<&SecretString>,
) -> Result<OidcTokensPersisted, Error> {
    let read_failed = |error| Error::ReadFile {
        what: format!("kubeconfig (to write back the oidc tokens of user `{user}`)"),
        path: path.to_path_buf(),
        error,
    };
    // The file a link points to: that is the one to replace.
    let target = std::fs::canonicalize(path).map_err(read_failed)?;
    let text = std::fs::read_to_string(&target).map_err(read_failed)?;
    let mut doc: Value = serde_yaml_ng::from_str(&text).map_err(|error| Error::Yaml {
        path: Some(path.to_path_buf()),
        error,
    })?;
    let Some(config) = oidc_config_of(&mut doc, user) else {
        return Ok(OidcTokensPersisted::UserGone(path.to_path_buf()));
    };
    let Some(config) = config else {
        return Ok(OidcTokensPersisted::NotOidc(path.to_path_buf()));
    };
    config.insert("id-token".into(), id_token.expose().into());
    if let Some(rt) = refresh_token {
        config.insert("refresh-token".into(), rt.expose().into());
    }
    let write_failed = |error| Error::OidcPersist {
        user: user.to_owned(),
        path: path.to_path_buf(),
        error,
    };
    let new_text = serde_yaml_ng::to_string(&doc)
        .map_err(|e| write_failed(std::io::Error::other(e.to_string())))?;
    replace_file(&target, new_text.as_bytes()).map_err(write_failed)?;
    Ok(OidcTokensPersisted::Written(path.to_path_buf()))
}

/// The `auth-provider.config` mapping of `user` in a kubeconfig document:
/// `None` when no user of that name is listed, `Some(None)` when it is not
/// an `oidc` auth-provider (or its config is not a mapping). A missing or
/// `null` config becomes an empty mapping.
fn oidc_config_of<'a>(doc: &'a mut Value, user: &str) -> Option<Option<&'a mut Mapping>> {
    let entry = doc
        .get_mut("users")?
        .as_sequence_mut()?
        .iter_mut()
        .find(|u| u.get("name").and_then(Value::as_str) == Some(user))?;
    let provider = entry
        .get_mut("user")
        .and_then(|u| u.get_mut("auth-provider"))
        .and_then(Value::as_mapping_mut)
        .filter(|p| p.get("name").and_then(Value::as_str) == Some("oidc"));
    let Some(provider) = provider else {
        return Some(None);
    };
    let config = provider
        .entry("config".into())
        .or_insert(Value::Mapping(Mapping::new()));
    if config.is_null() {
        *config = Value::Mapping(Mapping::new());
    }
    Some(config.as_mapping_mut())
}

/// Replaces `target` with `contents` atomically, keeping its permissions:
/// a temporary file in the same directory, synced, then renamed over it.
fn replace_file(target: &Path, contents: &[u8]) -> std::io::Result<()> {
    let permissions = std::fs::metadata(target)?.permissions();
    // Refuse what this process may not write (as client-go, which opens the
    // file for writing, would): a read-only kubeconfig stays as it is.
    drop(OpenOptions::new().write(true).open(target)?);
    let dir = target.parent().unwrap_or(Path::new("."));
    let (tmp, mut file) = create_temp_beside(target, dir)?;
    let written = (|| {
        file.write_all(contents)?;
        file.set_permissions(permissions)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // Make the rename itself durable (best effort: not every platform can
    // open a directory).
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A new file next to `target`, readable by its owner only until it gets
/// the target's permissions.
fn create_temp_beside(target: &Path, dir: &Path) -> std::io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(64).collect::<String>())
        .unwrap_or_default();
    let mut attempt = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[path = "oidc_persist_tests.rs"]
mod tests;
