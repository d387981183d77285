//! How requests authenticate: a kubeconfig user resolved into [`Auth`], a
//! client identity and impersonation, and the per-request [`Credential`].
//!
//! Guarantees (following client-go's `validateAuthInfo` and transport):
//!
//! - A user is validated when it is selected: a token (`token` or
//!   `tokenFile`) together with basic auth, a certificate without its key
//!   (or the reverse), a `*-data` field together with its file field, `exec`
//!   together with `auth-provider`, a `password` without `username`, or
//!   `as-uid`/`as-groups`/`as-user-extra` without `as` are errors naming the
//!   user and file.
//! - Precedence: `token` > `tokenFile` > `username`/`password` > client
//!   certificate alone > `exec` > `auth-provider`. As in client-go, an exec
//!   plugin is not run when the user already has a token, basic auth or a
//!   client certificate.
//! - `auth-provider: oidc` uses its `id-token` as the bearer token while it
//!   is valid and keeps what refreshing it needs (see [`crate::OidcAuth`];
//!   kube-client's `Client` does the refresh); a user with no `id-token`
//!   needs `refresh-token`, `client-id` and `idp-issuer-url`. Every other
//!   provider is an error.
//! - [`Auth::current_credential`] (or, in async code,
//!   [`Auth::current_credential_async`]) is the one call a client makes per
//!   request; it re-reads token files and runs or re-uses exec plugins.
//!   [`Auth::invalidate`] forces fresh credentials (call it after a 401);
//!   [`Auth::invalidate_rejected`] does so unless another caller already
//!   replaced the rejected credential.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use base64::Engine;

use crate::exec::ExecProvider;
use crate::kubeconfig::NamedAuthInfo;
use crate::oidc::{OidcAuth, OidcProvider};
use crate::pem::{ClientIdentity, parse_cert_bundle};
use crate::token::{TokenFile, TokenSource};
use crate::{Error, FileList, SecretString};

/// How requests authenticate, besides a TLS client certificate from the
/// kubeconfig (see [`Config::identity`](crate::Config::identity)).
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No credential (anonymous, or a client certificate alone).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// A bearer token, static or from a file.
    Bearer(TokenSource),
    /// A client-go credential plugin.
    Exec(ExecProvider),
    /// The legacy `oidc` auth-provider: its ID token is the bearer token,
    /// refreshed when it expires (see [`OidcAuth`]).
    Oidc(OidcAuth),
}

/// Basic authentication credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: SecretString,
}

/// The credential to use for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credential {
    /// A bearer token to send.
    pub token: Option<SecretString>,
    /// Basic credentials to send.
    pub basic: Option<BasicAuth>,
    /// A TLS client identity to present (from an exec plugin; it may change
    /// when the plugin is re-run).
    pub identity: Option<ClientIdentity>,
    /// When the credential expires, if the source said so.
    pub expires_at: Option<SystemTime>,
}

impl Credential {
    /// The `Authorization` header value: `Bearer <token>` or
    /// `Basic <base64(user:password)>`, or `None` if neither is set.
    pub fn authorization_header(&self) -> Option<SecretString> {
        if let Some(t) = &self.token {
            return Some(SecretString::new(format!("Bearer {}", t.expose())));
        }
        self.basic.as_ref().map(|b| {
            let raw = format!("{}:{}", b.username, b.password.expose());
            let enc = base64::engine::general_purpose::STANDARD.encode(raw);
            SecretString::new(format!("Basic {enc}"))
        })
    }
}

impl Auth {
    /// The credential for the next request: `None` for [`Auth::None`].
    ///
    /// Cheap when cached; re-reads a changed token file; runs the exec plugin
    /// when it has no unexpired credential, blocking the thread until it is
    /// done (so in async code use
    /// [`current_credential_async`](Self::current_credential_async)). An
    /// `oidc` ID token that is expired or missing is an
    /// [`Error::OidcExpired`] here: refreshing it takes HTTP, which
    /// kube-client's `Client` does.
    pub fn current_credential(&self) -> Result<Option<Credential>, Error> {
        match self {
            Auth::Exec(provider) => Ok(Some(provider.credential()?)),
            other => other.immediate_credential(),
        }
    }

    /// Like [`current_credential`](Self::current_credential), but waits for
    /// an exec plugin without blocking the thread; concurrent callers share
    /// one plugin run (see [`ExecProvider`]). Works on any executor.
    pub async fn current_credential_async(&self) -> Result<Option<Credential>, Error> {
        match self {
            Auth::Exec(provider) => Ok(Some(provider.credential_async().await?)),
            other => other.immediate_credential(),
        }
    }

    /// The credential of every kind that needs no plugin run.
    fn immediate_credential(&self) -> Result<Option<Credential>, Error> {
        Ok(match self {
            Auth::None => None,
            Auth::Basic { username, password } => Some(Credential {
                basic: Some(BasicAuth {
                    username: username.clone(),
                    password: password.clone(),
                }),
                ..Credential::default()
            }),
            Auth::Bearer(source) => Some(Credential {
                token: Some(source.token()?),
                ..Credential::default()
            }),
            Auth::Exec(provider) => Some(provider.credential()?),
            Auth::Oidc(oidc) => match oidc.valid_id_token(SystemTime::now())? {
                Some(token) => Some(Credential {
                    expires_at: crate::oidc::jwt_expiry(token.expose()).ok().flatten(),
                    token: Some(token),
                    ..Credential::default()
                }),
                None => {
                    return Err(oidc.expired_error(
                        "refreshing it takes HTTP, which kube-config does not do (kube-client's Client does)",
                    ));
                }
            },
        })
    }

    /// Drops cached credentials so the next call fetches new ones (re-reads a
    /// token file, re-runs an exec plugin, refreshes an `oidc` ID token when
    /// it can be refreshed). Call after a 401.
    pub fn invalidate(&self) {
        match self {
            Auth::Bearer(source) => source.invalidate(),
            Auth::Exec(provider) => provider.invalidate(),
            Auth::Oidc(oidc) => oidc.invalidate_rejected(None),
            Auth::None | Auth::Basic { .. } => {}
        }
    }

    /// Like [`invalidate`](Self::invalidate) after the server rejected
    /// `rejected` (the credential a request used), but keeps an exec
    /// credential that is no longer the one rejected: when many requests get
    /// a 401 at once, the first drops the credential and later ones do not
    /// throw away the fresh one its retry fetched, so the plugin runs once
    /// (and an `oidc` ID token is refreshed once).
    pub fn invalidate_rejected(&self, rejected: Option<&Credential>) {
        match (self, rejected) {
            (Auth::Exec(provider), Some(rejected)) => provider.invalidate_if_cached(rejected),
            (Auth::Oidc(oidc), Some(rejected)) => oidc.invalidate_rejected(rejected.token.as_ref()),
            _ => self.invalidate(),
        }
    }

    /// A short name of the kind: `none`, `basic`, `token`, `token-file`,
    /// `exec` or `oidc`.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Basic { .. } => "basic",
            Auth::Bearer(TokenSource::Static(_)) => "token",
            Auth::Bearer(TokenSource::File(_)) => "token-file",
            Auth::Exec(_) => "exec",
            Auth::Oidc(_) => "oidc",
        }
    }
}

/// The `as*` fields of a user: whom to impersonate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `as`: the user name (`Impersonate-User`).
    pub user: String,
    /// `as-uid` (`Impersonate-Uid`).
    pub uid: Option<String>,
    /// `as-groups` (`Impersonate-Group`, repeated).
    pub groups: Vec<String>,
    /// `as-user-extra` (`Impersonate-Extra-<key>`).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A user resolved into what a [`Config`](crate::Config) needs.
pub(crate) struct ResolvedUser {
    pub(crate) auth: Auth,
    pub(crate) identity: Option<ClientIdentity>,
    pub(crate) impersonate: Option<Impersonation>,
}

fn set(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

/// Decodes a base64 `*-data` field, tolerating line breaks.
pub(crate) fn decode_data(data: &str, field: &'static str, owner: &str) -> Result<Vec<u8>, Error> {
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|error| Error::Base64 {
            field,
            owner: owner.to_owned(),
            error,
        })
}

/// Reads a file named by a field (`what`, e.g. "client-key of user `u` in F").
pub(crate) fn read_named_file(path: &str, what: String) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|error| Error::ReadFile {
        what,
        path: Path::new(path).to_path_buf(),
        error,
    })
}

/// Resolves a kubeconfig user. `exec_cluster` builds the `spec.cluster` of
/// `KUBERNETES_EXEC_INFO` when the plugin asks for it.
pub(crate) fn resolve_user(
    named: &NamedAuthInfo,
    exec_cluster: impl FnOnce() -> serde_json::Value,
) -> Result<ResolvedUser, Error> {
    let u = &named.user;
    let name = named.name.as_str();
    let file = FileList::one(named.source.as_deref());
    let owner = format!("user `{name}` in {file}");
    let invalid = |reason: &str| Error::InvalidUser {
        user: name.to_owned(),
        file: file.clone(),
        reason: reason.to_owned(),
    };

    let has_token = u.token.as_ref().is_some_and(|t| !t.is_empty()) || set(&u.token_file);
    let has_basic = set(&u.username) || u.password.as_ref().is_some_and(|p| !p.is_empty());
    if has_token && has_basic {
        return Err(invalid(
            "more than one authentication method found (token and basic auth); only one is allowed",
        ));
    }
    if has_basic && !set(&u.username) {
        return Err(invalid("password is set without username"));
    }
    if set(&u.client_certificate) && set(&u.client_certificate_data) {
        return Err(invalid(
            "both client-certificate and client-certificate-data are set",
        ));
    }
    let has_key_data = u.client_key_data.as_ref().is_some_and(|k| !k.is_empty());
    if set(&u.client_key) && has_key_data {
        return Err(invalid("both client-key and client-key-data are set"));
    }
    let has_cert = set(&u.client_certificate) || set(&u.client_certificate_data);
    let has_key = set(&u.client_key) || has_key_data;
    if has_cert != has_key {
        return Err(invalid(if has_cert {
            "client-certificate(-data) is set without client-key(-data)"
        } else {
            "client-key(-data) is set without client-certificate(-data)"
        }));
    }
    if u.exec.is_some() && u.auth_provider.is_some() {
        return Err(invalid("exec and auth-provider cannot both be set"));
    }
    let has_impersonate_details = set(&u.impersonate_uid)
        || u.impersonate_groups.as_ref().is_some_and(|g| !g.is_empty())
        || u.impersonate_user_extra
            .as_ref()
            .is_some_and(|e| !e.is_empty());
    if has_impersonate_details && !set(&u.impersonate) {
        return Err(invalid(
            "as-uid, as-groups or as-user-extra is set without as",
        ));
    }

    let identity = if has_cert {
        let (cert, cert_origin) = match (&u.client_certificate_data, &u.client_certificate) {
            (Some(d), _) if !d.is_empty() => (
                decode_data(d, "client-certificate-data", &owner)?,
                format!("client-certificate-data of {owner}"),
            ),
            (_, Some(p)) => (
                read_named_file(p, format!("client-certificate of {owner}"))?,
                format!("file {p} (client-certificate of {owner})"),
            ),
            _ => return Err(invalid("client certificate is empty")),
        };
        let (key, key_origin) = match (&u.client_key_data, &u.client_key) {
            (Some(d), _) if !d.is_empty() => (
                decode_data(d.expose(), "client-key-data", &owner)?,
                format!("client-key-data of {owner}"),
            ),
            (_, Some(p)) => (
                read_named_file(p, format!("client-key of {owner}"))?,
                format!("file {p} (client-key of {owner})"),
            ),
            _ => return Err(invalid("client key is empty")),
        };
        Some(ClientIdentity::from_pem_with_origin(
            cert,
            &cert_origin,
            key,
            &key_origin,
        )?)
    } else {
        None
    };

    let auth = if let Some(token) = u.token.as_ref().filter(|t| !t.is_empty()) {
        Auth::Bearer(TokenSource::Static(token.clone()))
    } else if let Some(path) = u.token_file.as_deref().filter(|p| !p.is_empty()) {
        let file = TokenFile::new(path).map_err(|e| match e {
            Error::ReadFile { path, error, .. } => Error::ReadFile {
                what: format!("tokenFile of {owner}"),
                path,
                error,
            },
            other => other,
        })?;
        Auth::Bearer(TokenSource::File(file))
    } else if let Some(username) = u.username.as_ref().filter(|n| !n.is_empty()) {
        Auth::Basic {
            username: username.clone(),
            password: u.password.clone().unwrap_or_default(),
        }
    } else if identity.is_some() {
        if u.exec.is_some() {
            tracing::debug!(
                user = name,
                "user has a client certificate; its exec plugin is not used"
            );
        }
        Auth::None
    } else if let Some(exec) = &u.exec {
        let cluster = exec.provide_cluster_info.then(exec_cluster);
        Auth::Exec(ExecProvider::new(name, exec, cluster).map_err(|r| invalid(&r))?)
    } else if let Some(provider) = &u.auth_provider {
        if provider.name != "oidc" {
            return Err(Error::UnsupportedAuthProvider {
                user: name.to_owned(),
                file,
                provider: provider.name.clone(),
            });
        }
        oidc(name, &file, &owner, &provider.config)?
    } else {
        Auth::None
    };

    let impersonate = u
        .impersonate
        .as_ref()
        .filter(|a| !a.is_empty())
        .map(|user| Impersonation {
            user: user.clone(),
            uid: u.impersonate_uid.clone().filter(|s| !s.is_empty()),
            groups: u.impersonate_groups.clone().unwrap_or_default(),
            extra: u.impersonate_user_extra.clone().unwrap_or_default(),
        });

    Ok(ResolvedUser {
        auth,
        identity,
        impersonate,
    })
}

/// The `oidc` auth-provider of user `name` (described as `owner` in errors).
fn oidc(
    name: &str,
    file: &FileList,
    owner: &str,
    config: &BTreeMap<String, String>,
) -> Result<Auth, Error> {
    let nonempty = |key: &str| config.get(key).filter(|v| !v.is_empty());
    let id_token = nonempty("id-token").map(|t| SecretString::new(t.as_str()));
    let mut provider = OidcProvider::default();
    let what = "idp certificate authority";
    provider.issuer_root_certs = match (
        nonempty("idp-certificate-authority-data"),
        nonempty("idp-certificate-authority"),
    ) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidUser {
                user: name.to_owned(),
                file: file.clone(),
                reason: "auth-provider `oidc` sets both idp-certificate-authority and idp-certificate-authority-data".to_owned(),
            });
        }
        (Some(data), None) => {
            let pem = decode_data(data, "idp-certificate-authority-data", owner)?;
            let origin = format!("idp-certificate-authority-data of {owner}");
            Some(parse_cert_bundle(&pem, what, &origin)?)
        }
        (None, Some(path)) => {
            let origin = format!("idp-certificate-authority of {owner}");
            let pem = read_named_file(path, origin.clone())?;
            Some(parse_cert_bundle(
                &pem,
                what,
                &format!("file {path} ({origin})"),
            )?)
        }
        (None, None) => None,
    };
    for (k, v) in config {
        match k.as_str() {
            "id-token" | "idp-certificate-authority" | "idp-certificate-authority-data" => {}
            "client-id" => provider.client_id = Some(v.clone()),
            "client-secret" => provider.client_secret = Some(SecretString::new(v.as_str())),
            "idp-issuer-url" => provider.issuer_url = Some(v.clone()),
            "refresh-token" => provider.refresh_token = Some(SecretString::new(v.as_str())),
            _ => {
                provider
                    .other
                    .insert(k.clone(), SecretString::new(v.as_str()));
            }
        }
    }
    let auth = OidcAuth::new(name, file.clone(), provider, id_token);
    if auth.id_token().is_none() && !auth.can_refresh() {
        return Err(Error::InvalidUser {
            user: name.to_owned(),
            file: file.clone(),
            reason: "auth-provider `oidc` has no id-token, and no refresh-token, client-id and idp-issuer-url to get one with".to_owned(),
        });
    }
    Ok(Auth::Oidc(auth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::AuthInfo;

    fn user(yaml: &str) -> NamedAuthInfo {
        NamedAuthInfo {
            name: "u".into(),
            user: serde_yaml_ng::from_str::<AuthInfo>(yaml).expect("yaml"),
            source: Some("/k/config".into()),
        }
    }

    fn resolve(yaml: &str) -> Result<ResolvedUser, Error> {
        resolve_user(&user(yaml), || serde_json::Value::Null)
    }

    fn err(yaml: &str) -> String {
        match resolve(yaml) {
            Ok(_) => panic!("expected an error for {yaml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn validation_errors() {
        assert_eq!(
            err("{token: a, username: b}"),
            "user `u` in /k/config: more than one authentication method found (token and basic auth); only one is allowed"
        );
        assert_eq!(
            err("{password: p}"),
            "user `u` in /k/config: password is set without username"
        );
        assert_eq!(
            err("{client-certificate: a, client-certificate-data: b, client-key: c}"),
            "user `u` in /k/config: both client-certificate and client-certificate-data are set"
        );
        assert_eq!(
            err("{client-certificate: a}"),
            "user `u` in /k/config: client-certificate(-data) is set without client-key(-data)"
        );
        assert_eq!(
            err("{client-key-data: a}"),
            "user `u` in /k/config: client-key(-data) is set without client-certificate(-data)"
        );
        assert_eq!(
            err("{as-groups: [g]}"),
            "user `u` in /k/config: as-uid, as-groups or as-user-extra is set without as"
        );
        assert_eq!(
            err("{exec: {command: x}, auth-provider: {name: oidc}}"),
            "user `u` in /k/config: exec and auth-provider cannot both be set"
        );
        assert_eq!(
            err("{client-certificate-data: '!!', client-key-data: 'a'}"),
            "client-certificate-data of user `u` in /k/config is not valid base64: Invalid symbol 33, offset 0."
        );
    }

    #[test]
    fn precedence_and_kinds() {
        let r = resolve("{token: t, tokenFile: /nonexistent}").expect("token");
        assert_eq!(r.auth.kind(), "token");
        let r = resolve("{username: a, password: p}").expect("basic");
        assert_eq!(r.auth.kind(), "basic");
        let cred = r.auth.current_credential().expect("cred").expect("some");
        assert_eq!(
            cred.authorization_header().expect("hdr").expose(),
            "Basic YTpw"
        );
        let r = resolve("{}").expect("none");
        assert_eq!(r.auth.kind(), "none");
        assert!(r.auth.current_credential().expect("cred").is_none());
        assert!(r.impersonate.is_none());
    }

    /// A JWT (unsigned: only its claims matter here) expiring at `exp`.
    fn jwt(exp: u64) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(&format!(r#"{{"exp":{exp},"sub":"SECRET-sub"}}"#))
        )
    }

    fn far_future() -> u64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600
    }

    #[test]
    fn oidc_and_unsupported() {
        let idt = jwt(far_future());
        let r = resolve(&format!(
            "{{auth-provider: {{name: oidc, config: {{id-token: '{idt}', refresh-token: rt, client-id: cid, client-secret: cs, idp-issuer-url: 'https://issuer', extra-scopes: groups}}}}}}"
        ))
        .expect("oidc");
        let Auth::Oidc(oidc) = &r.auth else {
            panic!("not oidc: {:?}", r.auth);
        };
        let provider = oidc.provider();
        assert_eq!(oidc.id_token().unwrap().expose(), idt);
        assert_eq!(provider.client_id.as_deref(), Some("cid"));
        assert_eq!(provider.issuer_url.as_deref(), Some("https://issuer"));
        assert_eq!(oidc.refresh_token().unwrap().expose(), "rt");
        assert_eq!(
            provider.client_secret.as_ref().map(|s| s.expose()),
            Some("cs")
        );
        assert!(provider.other.contains_key("extra-scopes"));
        assert!(provider.issuer_root_certs.is_none());
        let cred = r.auth.current_credential().expect("cred").expect("some");
        assert_eq!(
            cred.authorization_header().expect("hdr").expose(),
            format!("Bearer {idt}")
        );
        assert!(cred.expires_at.is_some());
        let dbg = format!("{:?}", r.auth);
        for s in [idt.as_str(), "\"rt\"", "\"cs\""] {
            assert!(!dbg.contains(s), "{dbg}");
        }
        assert_eq!(
            err("{auth-provider: {name: gcp}}"),
            "user `u` in /k/config uses auth-provider `gcp`, which is not supported; use an exec plugin"
        );
    }

    #[test]
    fn oidc_without_id_token_needs_refresh_settings() {
        // Refresh settings without an id-token: accepted; the first request
        // refreshes (kube-config alone says it cannot).
        let r = resolve(
            "{auth-provider: {name: oidc, config: {refresh-token: rt, client-id: cid, idp-issuer-url: 'https://issuer'}}}",
        )
        .expect("refresh settings suffice");
        let Auth::Oidc(oidc) = &r.auth else {
            panic!("not oidc");
        };
        assert!(oidc.id_token().is_none() && oidc.can_refresh());
        let e = r.auth.current_credential().unwrap_err();
        assert!(matches!(e, Error::OidcExpired { .. }), "{e:?}");
        assert!(e.to_string().contains("kube-client"), "{e}");

        let missing = "user `u` in /k/config: auth-provider `oidc` has no id-token, and no refresh-token, client-id and idp-issuer-url to get one with";
        for config in [
            "{refresh-token: rt}",
            "{refresh-token: rt, client-id: cid}",
            "{client-id: cid, idp-issuer-url: 'https://i'}",
            "{id-token: '', refresh-token: rt, idp-issuer-url: 'https://i'}",
        ] {
            assert_eq!(
                err(&format!(
                    "{{auth-provider: {{name: oidc, config: {config}}}}}"
                )),
                missing,
                "{config}"
            );
        }

        // An expired id-token without refresh settings: resolving works (as
        // in client-go), using it is a typed error.
        let r = resolve(&format!(
            "{{auth-provider: {{name: oidc, config: {{id-token: '{}'}}}}}}",
            jwt(1000)
        ))
        .unwrap();
        let e = r.auth.current_credential().unwrap_err();
        assert!(matches!(e, Error::OidcExpired { .. }), "{e:?}");
        // A garbage id-token: a typed error naming the problem, not the token.
        let r =
            resolve("{auth-provider: {name: oidc, config: {id-token: SECRET-garbage}}}").unwrap();
        let e = r.auth.current_credential().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the oidc id-token of user `u` in /k/config is not usable: not a JWT (expected 3 dot-separated parts, found 1)"
        );
    }

    #[test]
    fn oidc_issuer_certificate_authority() {
        let ca = rcgen_free_ca_pem();
        let data = base64::engine::general_purpose::STANDARD.encode(&ca);
        let r = resolve(&format!(
            "{{auth-provider: {{name: oidc, config: {{refresh-token: rt, client-id: c, idp-issuer-url: 'https://i', idp-certificate-authority-data: '{data}'}}}}}}"
        ))
        .unwrap();
        let Auth::Oidc(oidc) = &r.auth else {
            panic!("not oidc");
        };
        assert_eq!(
            oidc.provider().issuer_root_certs.as_ref().map(Vec::len),
            Some(1)
        );
        assert!(oidc.provider().other.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, &ca).unwrap();
        let r = resolve(&format!(
            "{{auth-provider: {{name: oidc, config: {{id-token: x, idp-certificate-authority: '{}'}}}}}}",
            path.display()
        ))
        .unwrap();
        let Auth::Oidc(oidc) = &r.auth else {
            panic!("not oidc");
        };
        assert!(oidc.provider().issuer_root_certs.is_some());

        let e = err(&format!(
            "{{auth-provider: {{name: oidc, config: {{id-token: x, idp-certificate-authority: /nonexistent/ca, idp-certificate-authority-data: '{data}'}}}}}}"
        ));
        assert!(e.contains("both idp-certificate-authority"), "{e}");
        let e = err(
            "{auth-provider: {name: oidc, config: {id-token: x, idp-certificate-authority-data: '!!'}}}",
        );
        assert!(
            e.starts_with("idp-certificate-authority-data of user `u`"),
            "{e}"
        );
        let e = err(&format!(
            "{{auth-provider: {{name: oidc, config: {{id-token: x, idp-certificate-authority-data: '{}'}}}}}}",
            base64::engine::general_purpose::STANDARD.encode("not pem")
        ));
        assert!(e.contains("idp certificate authority"), "{e}");
        let e = err(
            "{auth-provider: {name: oidc, config: {id-token: x, idp-certificate-authority: /nonexistent/ca}}}",
        );
        assert!(e.contains("/nonexistent/ca"), "{e}");
    }

    /// A syntactically valid self-signed certificate in PEM (its content does
    /// not matter here, only that it parses as a CERTIFICATE block).
    fn rcgen_free_ca_pem() -> String {
        // A small DER SEQUENCE wrapped as PEM: parse_cert_bundle only splits
        // PEM blocks, it does not parse X.509.
        let der = [0x30u8, 0x03, 0x02, 0x01, 0x01];
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    }
}
