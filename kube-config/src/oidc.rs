//! The legacy `auth-provider: oidc` of a kubeconfig user: an OpenID Connect
//! ID token sent as the bearer token, refreshed with a refresh token when it
//! expires.
//!
//! An ID token is a JWT: three base64url parts joined by dots, the middle
//! one a JSON object of claims. Its `exp` claim (seconds since the Unix
//! epoch) says until when the API server accepts it. As client-go's `oidc`
//! plugin does, this module reads `exp` **without verifying the signature**
//! (the API server verifies it; the client only needs to know whether the
//! token is worth sending) and treats a token as expired
//! [`OIDC_EXPIRY_MARGIN`] before its `exp`, so that clock skew and the time a
//! request takes do not make the server see an expired token. A token
//! without `exp` counts as expired (client-go reads it as the zero time).
//!
//! Guarantees:
//!
//! - A user needs an `id-token`, or what refreshing needs: `refresh-token`,
//!   `client-id` and `idp-issuer-url` (else resolving the user fails, naming
//!   it). `idp-certificate-authority` / `idp-certificate-authority-data`
//!   are read and parsed when the user is resolved, into
//!   [`OidcProvider::issuer_root_certs`].
//! - [`OidcAuth::valid_id_token`] hands out the current ID token while it is
//!   valid; when it is expired or missing it answers `None` if the token can
//!   be refreshed, else a typed error. A token that is not a JWT with a
//!   readable `exp` is an [`Error::OidcIdToken`] naming the problem
//!   ([`JwtError`]) — never a panic, and never quoting the token.
//! - This crate does no HTTP: the refresh itself (discovery, token endpoint)
//!   is done by kube-client's `Client`, which stores the answer with
//!   [`OidcAuth::store_refreshed`]. Clones of an [`OidcAuth`] share their
//!   tokens, so every clone of a `Config` sees a refresh.
//! - Refreshed tokens are written back to the kubeconfig file the user was
//!   read from ([`OidcAuth::persist_refreshed`], which kube-client's
//!   `Client` calls after each refresh), as client-go's persister does, so a
//!   process that starts again finds a valid ID token and the refresh token
//!   the issuer rotated to. Only the user's `id-token` and `refresh-token`
//!   change; comments in the file are lost (see
//!   [`OidcAuth::persist_refreshed`] for how the file is replaced).
//!   Persisting is on by default; switch it off with
//!   [`OidcAuth::with_token_persisting`] or
//!   [`Config::with_oidc_token_persisting`](crate::Config::with_oidc_token_persisting).
//!   A user not read from a file (a kubeconfig string, in-cluster) keeps
//!   its tokens in memory only.
//! - Tokens and the client secret appear in no `Debug` output or error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use base64::Engine;

use crate::{Error, FileList, SecretString};

/// How long before its `exp` an ID token counts as expired (client-go's
/// `expiryDelta`).
pub const OIDC_EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// The settings of an `oidc` auth-provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OidcProvider {
    /// `client-id`.
    pub client_id: Option<String>,
    /// `client-secret`.
    pub client_secret: Option<SecretString>,
    /// `idp-issuer-url`.
    pub issuer_url: Option<String>,
    /// `refresh-token`, as the kubeconfig has it (see
    /// [`OidcAuth::refresh_token`] for the current one).
    pub refresh_token: Option<SecretString>,
    /// The certificates (DER) of `idp-certificate-authority` or
    /// `idp-certificate-authority-data`: the issuer is verified against
    /// them, and only them, when set; else against the platform's roots.
    pub issuer_root_certs: Option<Vec<Vec<u8>>>,
    /// Every other setting (e.g. `extra-scopes`), values hidden from
    /// `Debug`.
    pub other: BTreeMap<String, SecretString>,
}

/// Why an ID token's expiry could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three dot-separated parts.
    #[error("not a JWT (expected 3 dot-separated parts, found {parts})")]
    NotThreeParts {
        /// How many parts there were.
        parts: usize,
    },
    /// The claims part is not base64url.
    #[error("the JWT claims are not base64url")]
    ClaimsNotBase64,
    /// The claims part is not a JSON object.
    #[error("the JWT claims are not a JSON object")]
    ClaimsNotJson,
    /// `exp` is there but not a number of seconds.
    #[error("the JWT `exp` claim is not a number")]
    ExpNotNumber,
    /// `exp` is a number too large to be a time.
    #[error("the JWT `exp` claim is out of range")]
    ExpOutOfRange,
}

/// When a JWT expires: its `exp` claim, read without verifying the
/// signature. `Ok(None)` when it has no `exp`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// // {"alg":"none"} . {"exp":1700000000} . (no signature)
/// let token = "eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.";
/// let exp = kube_config::jwt_expiry(token).unwrap();
/// assert_eq!(exp, Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
/// assert!(kube_config::jwt_expiry("not-a-jwt").is_err());
/// ```
pub fn jwt_expiry(token: &str) -> Result<Option<SystemTime>, JwtError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(JwtError::NotThreeParts { parts: parts.len() });
    }
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| JwtError::ClaimsNotBase64)?;
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&claims).map_err(|_| JwtError::ClaimsNotJson)?;
    let Some(exp) = claims.get("exp") else {
        return Ok(None);
    };
    let exp = exp.as_f64().ok_or(JwtError::ExpNotNumber)?;
    if exp <= 0.0 {
        return Ok(Some(SystemTime::UNIX_EPOCH));
    }
    let since_epoch = Duration::try_from_secs_f64(exp).map_err(|_| JwtError::ExpOutOfRange)?;
    SystemTime::UNIX_EPOCH
        .checked_add(since_epoch)
        .map(Some)
        .ok_or(JwtError::ExpOutOfRange)
}

/// An `oidc` auth-provider in use: its settings and its current tokens,
/// shared by every clone.
#[derive(Clone, Debug)]
pub struct OidcAuth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    user: String,
    file: FileList,
    /// The file that defined the user (absolute), when it was one file.
    source_file: Option<PathBuf>,
    /// Whether refreshed tokens are written back to `source_file`.
    persist: bool,
    provider: OidcProvider,
    tokens: Mutex<Tokens>,
}

#[derive(Debug)]
struct Tokens {
    id_token: Option<SecretString>,
    refresh_token: Option<SecretString>,
}

impl OidcAuth {
    /// The provider of user `user` (from `file`) with ID token `id_token`,
    /// if it has one. The refresh token starts as `provider.refresh_token`.
    /// When `file` names exactly one file, refreshed tokens are written
    /// back to it (see [`persist_refreshed`](Self::persist_refreshed)); a
    /// relative path is made absolute now, against the working directory.
    pub fn new(
        user: impl Into<String>,
        file: FileList,
        provider: OidcProvider,
        id_token: Option<SecretString>,
    ) -> Self {
        let tokens = Tokens {
            id_token: id_token.filter(|t| !t.is_empty()),
            refresh_token: provider.refresh_token.clone().filter(|t| !t.is_empty()),
        };
        let source_file = match file.0.as_slice() {
            [one] => Some(std::path::absolute(one).unwrap_or_else(|_| one.clone())),
            _ => None,
        };
        Self {
            inner: Arc::new(Inner {
                user: user.into(),
                file,
                source_file,
                persist: true,
                provider,
                tokens: Mutex::new(tokens),
            }),
        }
    }

    /// This provider with persisting refreshed tokens switched on (the
    /// default, when the user was read from a file) or off. The result
    /// starts with the current tokens but no longer shares them with
    /// `self` and its clones.
    pub fn with_token_persisting(&self, persist: bool) -> Self {
        let tokens = self.tokens();
        Self {
            inner: Arc::new(Inner {
                user: self.inner.user.clone(),
                file: self.inner.file.clone(),
                source_file: self.inner.source_file.clone(),
                persist,
                provider: self.inner.provider.clone(),
                tokens: Mutex::new(Tokens {
                    id_token: tokens.id_token.clone(),
                    refresh_token: tokens.refresh_token.clone(),
                }),
            }),
        }
    }

    /// The kubeconfig file refreshed tokens are written back to: `None`
    /// when persisting is switched off or the user was not read from a
    /// file.
    pub fn persist_file(&self) -> Option<&Path> {
        let inner = &self.inner;
        inner.source_file.as_deref().filter(|_| inner.persist)
    }

    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The kubeconfig user's name.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// The provider's settings.
    pub fn provider(&self) -> &OidcProvider {
        &self.inner.provider
    }

    /// The current ID token (from the kubeconfig or the last refresh),
    /// expired or not.
    pub fn id_token(&self) -> Option<SecretString> {
        self.tokens().id_token.clone()
    }

    /// The current refresh token (the issuer may have rotated the one of
    /// the kubeconfig).
    pub fn refresh_token(&self) -> Option<SecretString> {
        self.tokens().refresh_token.clone()
    }

    /// Whether a refresh is possible: a refresh token, `client-id` and
    /// `idp-issuer-url` are all set.
    pub fn can_refresh(&self) -> bool {
        let p = &self.inner.provider;
        self.tokens().refresh_token.is_some()
            && p.client_id.as_deref().is_some_and(|s| !s.is_empty())
            && p.issuer_url.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// The ID token to send at `now`: `Some` while it is valid (its `exp`
    /// more than [`OIDC_EXPIRY_MARGIN`] away), `None` when it is expired or
    /// missing and [`can_refresh`](Self::can_refresh). Errors: a token whose
    /// expiry cannot be read ([`Error::OidcIdToken`]); an expired or
    /// missing token that cannot be refreshed ([`Error::OidcExpired`]).
    pub fn valid_id_token(&self, now: SystemTime) -> Result<Option<SecretString>, Error> {
        let current = self.id_token();
        if let Some(token) = current {
            let expiry = jwt_expiry(token.expose()).map_err(|problem| Error::OidcIdToken {
                user: self.inner.user.clone(),
                file: self.inner.file.clone(),
                problem,
            })?;
            if expiry.is_some_and(|exp| now + OIDC_EXPIRY_MARGIN < exp) {
                return Ok(Some(token));
            }
        }
        if self.can_refresh() {
            Ok(None)
        } else {
            Err(self.expired_error(
                "there is no refresh-token, client-id and idp-issuer-url to refresh it with",
            ))
        }
    }

    /// The error for an expired or missing ID token, saying why no refresh
    /// is possible (`reason`).
    pub fn expired_error(&self, reason: &'static str) -> Error {
        Error::OidcExpired {
            user: self.inner.user.clone(),
            file: self.inner.file.clone(),
            reason,
        }
    }

    /// Stores what a refresh answered: a new ID token, and a new refresh
    /// token if the issuer rotated it.
    pub fn store_refreshed(&self, id_token: SecretString, refresh_token: Option<SecretString>) {
        let mut tokens = self.tokens();
        tokens.id_token = Some(id_token);
        if let Some(rt) = refresh_token.filter(|t| !t.is_empty()) {
            tokens.refresh_token = Some(rt);
        }
    }

    /// Drops the ID token after the server rejected `rejected` (the token a
    /// request sent; `None`: whatever the current one is), so that the next
    /// request refreshes — unless another caller already replaced it, or
    /// no refresh is possible (then the token is kept: dropping it would
    /// only turn the server's 401 into a local error).
    pub fn invalidate_rejected(&self, rejected: Option<&SecretString>) {
        if !self.can_refresh() {
            return;
        }
        let mut tokens = self.tokens();
        if rejected.is_none() || tokens.id_token.as_ref() == rejected {
            tokens.id_token = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn jwt(claims: &str) -> String {
        format!("{}.{}.c2ln", b64(r#"{"alg":"ES256"}"#), b64(claims))
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn exp_is_read_without_the_signature() {
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":1000}"#)), Ok(Some(at(1000))));
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1000.5,"sub":"a"}"#)),
            Ok(Some(at(1000) + Duration::from_millis(500)))
        );
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"a"}"#)), Ok(None));
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":-5}"#)),
            Ok(Some(SystemTime::UNIX_EPOCH))
        );
        // Padding and surrounding blanks are tolerated.
        let padded = format!(
            "x.{}=.y",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":7}"#)
        );
        assert_eq!(jwt_expiry(&format!(" {padded}\n")), Ok(Some(at(7))));
    }

    #[test]
    fn garbage_tokens_are_typed_errors() {
        let cases: Vec<(String, JwtError)> = vec![
            ("".into(), JwtError::NotThreeParts { parts: 1 }),
            ("secret-token".into(), JwtError::NotThreeParts { parts: 1 }),
            ("a.b.c.d".into(), JwtError::NotThreeParts { parts: 4 }),
            ("a.!!!.c".into(), JwtError::ClaimsNotBase64),
            (format!("a.{}.c", b64("not json")), JwtError::ClaimsNotJson),
            (format!("a.{}.c", b64("[1,2]")), JwtError::ClaimsNotJson),
            (jwt(r#"{"exp":"tomorrow"}"#), JwtError::ExpNotNumber),
            (jwt(r#"{"exp":null}"#), JwtError::ExpNotNumber),
            (jwt(r#"{"exp":1e300}"#), JwtError::ExpOutOfRange),
        ];
        for (token, expected) in cases {
            assert_eq!(jwt_expiry(&token), Err(expected), "{token}");
        }
        // Arbitrary bytes never panic.
        for seed in 0..500u32 {
            let mut rng = fastrand::Rng::with_seed(u64::from(seed));
            let len = rng.usize(0..64);
            let s: String = (0..len)
                .map(|_| {
                    rng.choice(b"ab.=-_{}\"e:x9 ".iter())
                        .map_or('a', |b| *b as char)
                })
                .collect();
            let _ = jwt_expiry(&s);
            let _ = jwt_expiry(&format!("a.{}.c", b64(&s)));
        }
    }

    fn provider(refresh: bool) -> OidcProvider {
        OidcProvider {
            client_id: Some("kube".into()),
            issuer_url: Some("https://issuer".into()),
            refresh_token: refresh.then(|| SecretString::new("rt-SECRET")),
            ..OidcProvider::default()
        }
    }

    #[test]
    fn a_valid_token_is_used_until_the_margin_then_refreshed() {
        let token = jwt(r#"{"exp":1000}"#);
        let auth = OidcAuth::new(
            "u",
            FileList::default(),
            provider(true),
            Some(SecretString::new(token.as_str())),
        );
        let got = auth.valid_id_token(at(900)).unwrap();
        assert_eq!(got.as_ref().map(|t| t.expose()), Some(token.as_str()));
        // Inside the margin: counts as expired.
        assert_eq!(auth.valid_id_token(at(995)).unwrap(), None);
        assert_eq!(auth.valid_id_token(at(2000)).unwrap(), None);

        let fresh = jwt(r#"{"exp":5000}"#);
        auth.store_refreshed(
            SecretString::new(fresh.as_str()),
            Some(SecretString::new("rt2")),
        );
        let clone = auth.clone();
        assert_eq!(
            clone
                .valid_id_token(at(2000))
                .unwrap()
                .map(|t| t.into_inner()),
            Some(fresh.clone())
        );
        assert_eq!(clone.refresh_token().unwrap().expose(), "rt2");

        // A 401 for an older token keeps the fresh one; for the current
        // one it drops it.
        auth.invalidate_rejected(Some(&SecretString::new(token.as_str())));
        assert!(auth.id_token().is_some());
        auth.invalidate_rejected(Some(&SecretString::new(fresh.as_str())));
        assert!(auth.id_token().is_none());
        assert_eq!(auth.valid_id_token(at(2000)).unwrap(), None);
    }

    #[test]
    fn without_refresh_settings_an_expired_token_is_an_error() {
        let token = jwt(r#"{"exp":1000}"#);
        let auth = OidcAuth::new(
            "u",
            FileList::default(),
            provider(false),
            Some(SecretString::new(token.as_str())),
        );
        assert!(auth.valid_id_token(at(10)).unwrap().is_some());
        let err = auth.valid_id_token(at(2000)).unwrap_err();
        assert!(matches!(err, Error::OidcExpired { .. }), "{err:?}");
        assert!(err.to_string().contains("no refresh-token"), "{err}");
        // No refresh possible: a 401 does not drop the token.
        auth.invalidate_rejected(None);
        assert!(auth.id_token().is_some());

        let garbage = OidcAuth::new(
            "u",
            FileList::default(),
            provider(true),
            Some(SecretString::new("SECRET-garbage")),
        );
        let err = garbage.valid_id_token(at(10)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OidcIdToken {
                    problem: JwtError::NotThreeParts { parts: 1 },
                    ..
                }
            ),
            "{err:?}"
        );
        let shown = format!("{err} {err:?} {garbage:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(!format!("{auth:?}").contains("rt-SECRET"));
    }
}
