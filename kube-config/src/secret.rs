//! Redacting wrappers for credentials.
//!
//! [`SecretString`] and [`SecretBytes`] hold tokens, passwords, private keys
//! and exec-plugin output. Their guarantees:
//!
//! - `Debug` always prints `[redacted]`, so a derived `Debug` on any struct
//!   that contains them (the kubeconfig model, [`Config`](crate::Config),
//!   [`Auth`](crate::Auth), errors) never shows the secret.
//! - They do not implement `Display`, so a secret can't end up in an error
//!   message or a log line by accident; reading the value takes an explicit
//!   [`expose`](SecretString::expose) call.
//! - They serialize and deserialize transparently (as the plain string or
//!   byte sequence), so a kubeconfig round-trips unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

const REDACTED: &str = "[redacted]";

/// A string that must not be shown: `Debug` prints `[redacted]`.
///
/// ```
/// use kube_config::SecretString;
/// let token = SecretString::new("s3cr3t");
/// assert_eq!(format!("{token:?}"), "[redacted]");
/// assert_eq!(token.expose(), "s3cr3t");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call this only where the value is sent or stored.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Bytes that must not be shown (a private key): `Debug` prints `[redacted]`.
///
/// ```
/// use kube_config::SecretBytes;
/// let key = SecretBytes::new(b"-----BEGIN PRIVATE KEY-----".to_vec());
/// assert_eq!(format!("{key:?}"), "[redacted]");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The secret bytes. Call this only where the value is used.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Unwraps the secret bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(value: Vec<u8>) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_nested_debug_too() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: SecretString,
            key: Option<SecretBytes>,
        }
        let h = Holder {
            token: "tok-123".into(),
            key: Some(SecretBytes::new(b"key-456".to_vec())),
        };
        let shown = format!("{h:?} {h:#?}");
        assert!(!shown.contains("tok-123"), "{shown}");
        assert!(!shown.contains("key-456"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn serde_is_transparent() {
        let s: SecretString = serde_json::from_str("\"abc\"").expect("parse");
        assert_eq!(s.expose(), "abc");
        assert_eq!(serde_json::to_string(&s).expect("ser"), "\"abc\"");
        assert!(!s.is_empty());
        assert_eq!(s.into_inner(), "abc");
        let b = SecretBytes::from(vec![1, 2]);
        assert_eq!(b.expose(), &[1, 2]);
        assert!(!b.is_empty());
        assert_eq!(b.into_inner(), vec![1, 2]);
    }
}
