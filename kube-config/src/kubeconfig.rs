//! The kubeconfig file model, and parsing one file.
//!
//! Guarantees:
//!
//! - Field names are those of kubeconfig YAML (`certificate-authority-data`,
//!   `tokenFile`, `as-groups`, `users`, `current-context`, ...), so any file
//!   kubectl reads parses here, and serializing writes the same keys back.
//!   `preferences` and every `extensions` list are kept as JSON values, so a
//!   round trip keeps them. Unknown keys are ignored, as kubectl does.
//! - `null` where a list or map is expected (as `kubectl config view` writes
//!   `clusters: null`) means empty, and an empty file (or one with only
//!   comments) is an empty kubeconfig, as in kubectl.
//! - A file that lists two clusters, contexts or users of the same name is
//!   an error, as in kubectl.
//! - [`Kubeconfig::read_from`] records, for every cluster, context and user,
//!   the file it came from, and resolves relative paths in it
//!   (`certificate-authority`, `client-certificate`, `client-key`,
//!   `tokenFile`, and an exec `command` containing a path separator) against
//!   that file's directory, as client-go's `ResolveLocalPaths` does.
//! - `Debug` never shows a token, password, key or auth-provider secret:
//!   those fields are [`SecretString`] or redacted by hand.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::{Error, SecretString};

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A kubeconfig: clusters, users, contexts that pair them, and the current
/// context.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Kubeconfig {
    /// `apiVersion` (normally `v1`).
    #[serde(
        rename = "apiVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub api_version: Option<String>,
    /// `kind` (normally `Config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `preferences`, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<serde_json::Value>,
    /// `clusters`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<NamedCluster>,
    /// `users` (client-go calls them auth infos).
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<NamedAuthInfo>,
    /// `contexts`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub contexts: Vec<NamedContext>,
    /// `current-context`.
    #[serde(
        rename = "current-context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_context: Option<String>,
    /// `extensions`, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<NamedExtension>>,
    /// The files this kubeconfig was read from, highest priority first;
    /// empty when parsed from a string. Not serialized.
    #[serde(skip)]
    pub sources: Vec<PathBuf>,
}

/// A cluster with its name (an entry of `clusters`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// The cluster's name.
    pub name: String,
    /// The cluster.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster: Cluster,
    /// The file that defined this entry, when read from a file. Not serialized.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// How to reach and trust an API server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// `server`: the API server's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `tls-server-name`: the name to verify the server certificate against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// `insecure-skip-tls-verify`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub insecure_skip_tls_verify: bool,
    /// `certificate-authority`: path to a PEM CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<String>,
    /// `certificate-authority-data`: base64 of a PEM CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    /// `proxy-url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// `disable-compression`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub disable_compression: bool,
    /// `extensions`, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<NamedExtension>>,
}

/// A user with its name (an entry of `users`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedAuthInfo {
    /// The user's name.
    pub name: String,
    /// The user's credentials.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: AuthInfo,
    /// The file that defined this entry, when read from a file. Not serialized.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// A user's credentials (client-go's `AuthInfo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthInfo {
    /// `client-certificate`: path to a PEM client certificate (chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// `client-certificate-data`: base64 of a PEM client certificate (chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    /// `client-key`: path to a PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// `client-key-data`: base64 of a PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<SecretString>,
    /// `token`: a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretString>,
    /// `tokenFile`: path to a file holding a bearer token.
    #[serde(rename = "tokenFile", default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// `as`: the user to impersonate.
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    pub impersonate: Option<String>,
    /// `as-uid`: the UID to impersonate.
    #[serde(rename = "as-uid", default, skip_serializing_if = "Option::is_none")]
    pub impersonate_uid: Option<String>,
    /// `as-groups`: the groups to impersonate.
    #[serde(rename = "as-groups", default, skip_serializing_if = "Option::is_none")]
    pub impersonate_groups: Option<Vec<String>>,
    /// `as-user-extra`: extra fields of the impersonated user.
    #[serde(
        rename = "as-user-extra",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub impersonate_user_extra: Option<BTreeMap<String, Vec<String>>>,
    /// `username` for basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `password` for basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    /// `auth-provider`: a legacy authentication plugin (only `oidc` works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_provider: Option<AuthProviderConfig>,
    /// `exec`: a credential plugin to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecConfig>,
    /// `extensions`, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<NamedExtension>>,
}

/// `auth-provider`: a named legacy plugin and its string settings.
///
/// `Debug` shows the setting names, never their values (they hold tokens
/// and client secrets).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthProviderConfig {
    /// The provider's name (`oidc`, `gcp`, `azure`, ...).
    pub name: String,
    /// The provider's settings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

impl fmt::Debug for AuthProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthProviderConfig")
            .field("name", &self.name)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `exec`: a client-go credential plugin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    /// `command`: the program to run (looked up on `PATH` unless it contains
    /// a path separator).
    #[serde(default)]
    pub command: String,
    /// `args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// `env`: extra environment variables for the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<ExecEnvVar>>,
    /// `apiVersion`: `client.authentication.k8s.io/v1` or `.../v1beta1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `installHint`: shown when the command is not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
    /// `provideClusterInfo`: pass the cluster in `KUBERNETES_EXEC_INFO`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub provide_cluster_info: bool,
    /// `interactiveMode`: `Never`, `IfAvailable` or `Always` (checked when
    /// the user is selected, as in client-go).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive_mode: Option<String>,
}

/// An entry of an exec plugin's `env`. `Debug` hides the value.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecEnvVar {
    /// The variable's name.
    pub name: String,
    /// The variable's value.
    #[serde(default)]
    pub value: String,
}

impl fmt::Debug for ExecEnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecEnvVar")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// A context with its name (an entry of `contexts`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    /// The context's name.
    pub name: String,
    /// The context.
    #[serde(default, deserialize_with = "null_as_default")]
    pub context: Context,
    /// The file that defined this entry, when read from a file. Not serialized.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// A context: a cluster, a user and a default namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// `cluster`: the cluster's name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster: String,
    /// `user`: the user's name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    /// `namespace`: the default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `extensions`, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<NamedExtension>>,
}

/// An entry of an `extensions` list, kept as a JSON value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedExtension {
    /// The extension's name.
    pub name: String,
    /// The extension's content.
    #[serde(default)]
    pub extension: serde_json::Value,
}

impl Kubeconfig {
    /// Parses a kubeconfig from YAML (or JSON) text. Relative paths stay
    /// relative (to the working directory).
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        Self::parse(text, None)
    }

    /// Reads and parses one kubeconfig file, records it as the source of
    /// every entry and resolves relative paths against its directory.
    pub fn read_from(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| Error::ReadFile {
            what: "kubeconfig".to_owned(),
            path: path.to_path_buf(),
            error,
        })?;
        let mut kc = Self::parse(&text, Some(path))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        kc.resolve_paths(&dir);
        kc.sources = vec![path.to_path_buf()];
        for c in &mut kc.clusters {
            c.source = Some(path.to_path_buf());
        }
        for c in &mut kc.contexts {
            c.source = Some(path.to_path_buf());
        }
        for u in &mut kc.users {
            u.source = Some(path.to_path_buf());
        }
        Ok(kc)
    }

    /// Serializes to YAML with kubeconfig key names.
    pub fn to_yaml(&self) -> Result<String, Error> {
        serde_yaml_ng::to_string(self).map_err(|error| Error::Serialize { error })
    }

    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&NamedCluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&NamedAuthInfo> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The context named `name`.
    pub fn context(&self, name: &str) -> Option<&NamedContext> {
        self.contexts.iter().find(|c| c.name == name)
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, Error> {
        let parsed: Option<Self> = serde_yaml_ng::from_str(text).map_err(|error| Error::Yaml {
            path: path.map(Path::to_path_buf),
            error,
        })?;
        let kc = parsed.unwrap_or_default();
        let dup = |kind: &'static str, names: Vec<&String>| {
            let mut seen = std::collections::HashSet::new();
            match names.into_iter().find(|n| !seen.insert(*n)) {
                Some(name) => Err(Error::DuplicateName {
                    path: path.map(Path::to_path_buf),
                    kind,
                    name: name.clone(),
                }),
                None => Ok(()),
            }
        };
        dup("cluster", kc.clusters.iter().map(|c| &c.name).collect())?;
        dup("context", kc.contexts.iter().map(|c| &c.name).collect())?;
        dup("user", kc.users.iter().map(|c| &c.name).collect())?;
        Ok(kc)
    }

    /// Makes the relative file references absolute against `dir`.
    fn resolve_paths(&mut self, dir: &Path) {
        fn resolve(field: &mut Option<String>, dir: &Path) {
            if let Some(p) = field.as_mut()
                && !p.is_empty()
                && Path::new(p.as_str()).is_relative()
            {
                let joined: PathBuf = dir.join(&*p).components().collect();
                *p = joined.to_string_lossy().into_owned();
            }
        }
        for c in &mut self.clusters {
            resolve(&mut c.cluster.certificate_authority, dir);
        }
        for u in &mut self.users {
            let user = &mut u.user;
            resolve(&mut user.client_certificate, dir);
            resolve(&mut user.client_key, dir);
            resolve(&mut user.token_file, dir);
            if let Some(exec) = user.exec.as_mut()
                && exec.command.contains(std::path::MAIN_SEPARATOR)
            {
                let mut cmd = Some(std::mem::take(&mut exec.command));
                resolve(&mut cmd, dir);
                exec.command = cmd.unwrap_or_default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: Zm9v
    insecure-skip-tls-verify: false
    tls-server-name: api.prod
    proxy-url: socks5://proxy:1080
    disable-compression: true
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: {audience: prod}
users:
- name: alice
  user:
    token: tok-SECRET-1
    tokenFile: ./token
    username: alice
    password: pw-SECRET-2
    client-key-data: key-SECRET-3
    as: bob
    as-uid: "1000"
    as-groups: [admins]
    as-user-extra: {scopes: [a, b]}
    auth-provider:
      name: oidc
      config: {id-token: idt-SECRET-4, client-secret: cs-SECRET-5}
    exec:
      command: ./bin/plugin
      args: [get-token]
      env: [{name: SECRET_ENV, value: env-SECRET-6}]
      apiVersion: client.authentication.k8s.io/v1
      installHint: install it
      provideClusterInfo: true
      interactiveMode: Never
contexts:
- name: prod
  context: {cluster: prod, user: alice, namespace: apps}
current-context: prod
extensions:
- name: top
  extension: {x: 1}
"#;

    #[test]
    fn parses_every_field() {
        let kc = Kubeconfig::from_yaml(FULL).expect("parse");
        assert_eq!(kc.current_context.as_deref(), Some("prod"));
        let c = &kc.cluster("prod").expect("cluster").cluster;
        assert_eq!(c.server.as_deref(), Some("https://prod.example:6443"));
        assert_eq!(c.tls_server_name.as_deref(), Some("api.prod"));
        assert_eq!(c.proxy_url.as_deref(), Some("socks5://proxy:1080"));
        assert!(c.disable_compression);
        let u = &kc.user("alice").expect("user").user;
        assert_eq!(u.token_file.as_deref(), Some("./token"));
        assert_eq!(u.impersonate.as_deref(), Some("bob"));
        assert_eq!(u.impersonate_uid.as_deref(), Some("1000"));
        assert_eq!(
            u.impersonate_groups.as_deref(),
            Some(&["admins".to_owned()][..])
        );
        let exec = u.exec.as_ref().expect("exec");
        assert!(exec.provide_cluster_info);
        assert_eq!(exec.interactive_mode.as_deref(), Some("Never"));
        assert_eq!(
            kc.context("prod")
                .expect("ctx")
                .context
                .namespace
                .as_deref(),
            Some("apps")
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let kc = Kubeconfig::from_yaml(FULL).expect("parse");
        let dbg = format!("{kc:?}{kc:#?}");
        for s in [
            "tok-SECRET-1",
            "pw-SECRET-2",
            "key-SECRET-3",
            "idt-SECRET-4",
            "cs-SECRET-5",
            "env-SECRET-6",
        ] {
            assert!(!dbg.contains(s), "{s} leaked in {dbg}");
        }
    }

    #[test]
    fn round_trip_keeps_everything() {
        let kc = Kubeconfig::from_yaml(FULL).expect("parse");
        let text = kc.to_yaml().expect("serialize");
        assert!(text.contains("tokenFile"), "{text}");
        assert!(text.contains("colors"), "{text}");
        assert!(text.contains("audience"), "{text}");
        let again = Kubeconfig::from_yaml(&text).expect("reparse");
        assert_eq!(kc, again);
    }

    #[test]
    fn empty_and_null() {
        assert_eq!(
            Kubeconfig::from_yaml("").expect("empty"),
            Kubeconfig::default()
        );
        assert_eq!(
            Kubeconfig::from_yaml("# hi\n").expect("comment"),
            Kubeconfig::default()
        );
        let kc = Kubeconfig::from_yaml(
            "clusters: null\nusers: null\ncontexts:\n- name: a\n  context: null\ncurrent-context: \"\"\n",
        )
        .expect("nulls");
        assert!(kc.clusters.is_empty());
        assert_eq!(kc.contexts[0].context, Context::default());
    }

    #[test]
    fn bad_yaml_names_line() {
        let err = Kubeconfig::from_yaml("clusters:\n- name: a\n  cluster: [\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("kubeconfig string: invalid kubeconfig: "),
            "{msg}"
        );
        assert!(msg.contains("line"), "{msg}");
        let err = Kubeconfig::from_yaml("clusters: 5").unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn duplicate_names_rejected() {
        let err = Kubeconfig::from_yaml("users:\n- name: a\n- name: a\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "kubeconfig string: duplicate user name `a`"
        );
    }

    #[test]
    fn resolve_paths_only_relative() {
        let mut kc = Kubeconfig::from_yaml(FULL).expect("parse");
        kc.users[0].user.client_certificate = Some("/abs/cert".into());
        kc.users[0].user.client_key = Some("key.pem".into());
        kc.resolve_paths(Path::new("/base"));
        let u = &kc.users[0].user;
        assert_eq!(u.client_certificate.as_deref(), Some("/abs/cert"));
        assert_eq!(u.client_key.as_deref(), Some("/base/key.pem"));
        assert_eq!(u.token_file.as_deref(), Some("/base/token"));
        assert_eq!(
            u.exec.as_ref().map(|e| e.command.as_str()),
            Some("/base/bin/plugin")
        );
    }
}
