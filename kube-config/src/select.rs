//! Selecting a context, cluster and user, and resolving them into a
//! [`Config`].
//!
//! Guarantees (kubectl's `--context`, `--cluster`, `--user`, `--namespace`):
//!
//! - The context is the `context` option, else `current-context`. Naming a
//!   context that does not exist is an error; having none is an error unless
//!   a cluster is given as an option.
//! - The cluster and user are the options if given, else the context's. A
//!   name that is not defined is an error that names the context (if it came
//!   from one) and the files searched. A context without a user means no
//!   credentials.
//! - The namespace is the `namespace` option, else the context's, else
//!   `default`.
//! - The server must be an `http` or `https` URL with a host; the CA comes
//!   from `certificate-authority-data` or the `certificate-authority` file
//!   (not both, as in kubectl) and yields every certificate of the bundle;
//!   `proxy-url` must be `http`, `https` or `socks5`. Every error names the
//!   cluster and its file.

use base64::Engine;
use serde_json::{Value, json};
use url::Url;

use crate::auth::{Auth, ResolvedUser, decode_data, read_named_file, resolve_user};
use crate::kubeconfig::{Cluster, NamedAuthInfo, NamedCluster, NamedContext};
use crate::pem::parse_cert_bundle;
use crate::{Config, Error, FileList, Kubeconfig};

/// Overrides for selecting from a kubeconfig, like kubectl's `--context`,
/// `--cluster`, `--user` and `--namespace`. Empty strings count as unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeconfigOptions {
    /// The context to use instead of `current-context`.
    pub context: Option<String>,
    /// The cluster to use instead of the context's.
    pub cluster: Option<String>,
    /// The user to use instead of the context's.
    pub user: Option<String>,
    /// The namespace to use instead of the context's.
    pub namespace: Option<String>,
}

/// What a kubeconfig and options select.
#[derive(Clone, Debug)]
pub struct Selection<'a> {
    /// The context, if one was selected.
    pub context: Option<&'a NamedContext>,
    /// The cluster.
    pub cluster: &'a NamedCluster,
    /// The user, if the context or options name one.
    pub user: Option<&'a NamedAuthInfo>,
    /// The namespace: option, else context, else `default`.
    pub namespace: String,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl Kubeconfig {
    /// Selects the context, cluster and user as kubectl would.
    pub fn select(&self, options: &KubeconfigOptions) -> Result<Selection<'_>, Error> {
        let files = || FileList(self.sources.clone());
        let context = match given(&options.context).or(given(&self.current_context)) {
            Some(name) => Some(self.context(name).ok_or_else(|| Error::UnknownContext {
                context: name.to_owned(),
                files: files(),
            })?),
            None => None,
        };
        let ctx_field = |f: fn(&NamedContext) -> &str| context.map(f).filter(|s| !s.is_empty());

        let cluster = match (given(&options.cluster), context) {
            (Some(name), _) => self.cluster(name).ok_or_else(|| Error::UnknownCluster {
                cluster: name.to_owned(),
                files: files(),
            })?,
            (None, None) => return Err(Error::NoContext { files: files() }),
            (None, Some(ctx)) => {
                let name = ctx_field(|c| &c.context.cluster).ok_or_else(|| {
                    Error::ContextWithoutCluster {
                        context: ctx.name.clone(),
                        files: files(),
                    }
                })?;
                self.cluster(name)
                    .ok_or_else(|| Error::ContextNamesUnknownCluster {
                        context: ctx.name.clone(),
                        cluster: name.to_owned(),
                        files: files(),
                    })?
            }
        };

        let user = match (given(&options.user), context) {
            (Some(name), _) => Some(self.user(name).ok_or_else(|| Error::UnknownUser {
                user: name.to_owned(),
                files: files(),
            })?),
            (None, Some(ctx)) => match ctx_field(|c| &c.context.user) {
                Some(name) => {
                    Some(
                        self.user(name)
                            .ok_or_else(|| Error::ContextNamesUnknownUser {
                                context: ctx.name.clone(),
                                user: name.to_owned(),
                                files: files(),
                            })?,
                    )
                }
                None => None,
            },
            (None, None) => None,
        };

        let namespace = given(&options.namespace)
            .or(context.and_then(|c| given(&c.context.namespace)))
            .unwrap_or("default")
            .to_owned();

        Ok(Selection {
            context,
            cluster,
            user,
            namespace,
        })
    }
}

/// The resolved TLS and transport settings of a cluster.
struct ResolvedCluster {
    server: String,
    url: Url,
    ca_pem: Option<Vec<u8>>,
    root_certs: Option<Vec<Vec<u8>>>,
    proxy_url: Option<Url>,
}

fn resolve_cluster(named: &NamedCluster) -> Result<ResolvedCluster, Error> {
    let c = &named.cluster;
    let file = FileList::one(named.source.as_deref());
    let owner = format!("cluster `{}` in {file}", named.name);
    let server = c
        .server
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::MissingServer {
            cluster: named.name.clone(),
            file: file.clone(),
        })?;
    let bad_url = |reason: String| Error::InvalidServerUrl {
        cluster: named.name.clone(),
        file: file.clone(),
        url: crate::redact_url(server).into_owned(),
        reason,
    };
    if !server.contains("://") {
        return Err(bad_url(
            "no scheme; expected https://host[:port]".to_owned(),
        ));
    }
    let url = Url::parse(server).map_err(|e| bad_url(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad_url(format!(
            "scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad_url("no host".to_owned()));
    }

    let ca_data = c
        .certificate_authority_data
        .as_deref()
        .filter(|s| !s.is_empty());
    let ca_file = c.certificate_authority.as_deref().filter(|s| !s.is_empty());
    let (ca_pem, root_certs) = match (ca_data, ca_file) {
        (Some(_), Some(_)) => {
            return Err(Error::BadPem {
                what: "certificate authority",
                origin: owner,
                reason: "both certificate-authority and certificate-authority-data are set"
                    .to_owned(),
            });
        }
        (Some(data), None) => {
            let pem = decode_data(data, "certificate-authority-data", &owner)?;
            let der = parse_cert_bundle(
                &pem,
                "certificate authority",
                &format!("certificate-authority-data of {owner}"),
            )?;
            (Some(pem), Some(der))
        }
        (None, Some(path)) => {
            let pem = read_named_file(path, format!("certificate-authority of {owner}"))?;
            let der = parse_cert_bundle(
                &pem,
                "certificate authority",
                &format!("file {path} (certificate-authority of {owner})"),
            )?;
            (Some(pem), Some(der))
        }
        (None, None) => (None, None),
    };

    let proxy_url = match c
        .proxy_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(raw) => {
            let bad = |reason: String| Error::InvalidProxyUrl {
                cluster: named.name.clone(),
                file: file.clone(),
                url: crate::redact_url(raw).into_owned(),
                reason,
            };
            let u = Url::parse(raw).map_err(|e| bad(e.to_string()))?;
            if !matches!(u.scheme(), "http" | "https" | "socks5") {
                return Err(bad(format!(
                    "scheme `{}` is not http, https or socks5",
                    u.scheme()
                )));
            }
            Some(u)
        }
    };

    Ok(ResolvedCluster {
        server: server.to_owned(),
        url,
        ca_pem,
        root_certs,
        proxy_url,
    })
}

/// The `spec.cluster` of `KUBERNETES_EXEC_INFO`.
fn exec_cluster_info(c: &Cluster, server: &str, ca_pem: Option<&[u8]>) -> Value {
    let mut v = json!({ "server": server });
    if let Some(name) = c.tls_server_name.as_deref().filter(|s| !s.is_empty()) {
        v["tls-server-name"] = json!(name);
    }
    if c.insecure_skip_tls_verify {
        v["insecure-skip-tls-verify"] = json!(true);
    }
    if let Some(pem) = ca_pem {
        v["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(pem));
    }
    if let Some(proxy) = c.proxy_url.as_deref().filter(|s| !s.is_empty()) {
        v["proxy-url"] = json!(proxy);
    }
    if c.disable_compression {
        v["disable-compression"] = json!(true);
    }
    if let Some(ext) = c
        .extensions
        .iter()
        .flatten()
        .find(|e| e.name == "client.authentication.k8s.io/exec")
    {
        v["config"] = ext.extension.clone();
    }
    v
}

impl Config {
    /// Resolves what `options` select from `kubeconfig`: reads and checks
    /// CA and client certificate files, token files and user settings.
    ///
    /// Exec plugins are not run here; they run on the first
    /// [`Auth::current_credential`] call.
    pub fn from_kubeconfig(
        kubeconfig: &Kubeconfig,
        options: &KubeconfigOptions,
    ) -> Result<Config, Error> {
        let sel = kubeconfig.select(options)?;
        let cluster = resolve_cluster(sel.cluster)?;
        let user = match sel.user {
            Some(u) => resolve_user(u, || {
                exec_cluster_info(
                    &sel.cluster.cluster,
                    &cluster.server,
                    cluster.ca_pem.as_deref(),
                )
            })?,
            None => ResolvedUser {
                auth: Auth::None,
                identity: None,
                impersonate: None,
            },
        };
        let c = &sel.cluster.cluster;
        Ok(Config {
            cluster_url: cluster.url,
            default_namespace: sel.namespace,
            root_certs: cluster.root_certs,
            accept_invalid_certs: c.insecure_skip_tls_verify,
            tls_server_name: c.tls_server_name.clone().filter(|s| !s.is_empty()),
            proxy_url: cluster.proxy_url,
            disable_compression: c.disable_compression,
            auth: user.auth,
            identity: user.identity,
            impersonate: user.impersonate,
            connect_timeout: None,
            read_timeout: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"
clusters:
- {name: a, cluster: {server: "https://a:6443", tls-server-name: api.a, proxy-url: "socks5://p:1080", extensions: [{name: client.authentication.k8s.io/exec, extension: {aud: x}}]}}
- {name: b, cluster: {server: "http://b"}}
- {name: nohost, cluster: {server: "ftp://x"}}
users:
- {name: ua, user: {token: t}}
contexts:
- {name: ca, context: {cluster: a, user: ua, namespace: ns-a}}
- {name: cb, context: {cluster: b}}
- {name: ghost-user, context: {cluster: a, user: nobody}}
- {name: ghost-cluster, context: {cluster: nowhere, user: ua}}
- {name: no-cluster, context: {user: ua}}
current-context: ca
"#;

    fn opts(
        context: Option<&str>,
        cluster: Option<&str>,
        user: Option<&str>,
        ns: Option<&str>,
    ) -> KubeconfigOptions {
        KubeconfigOptions {
            context: context.map(Into::into),
            cluster: cluster.map(Into::into),
            user: user.map(Into::into),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn selection_rules() {
        let kc = Kubeconfig::from_yaml(KC).expect("parse");
        let s = kc.select(&KubeconfigOptions::default()).expect("default");
        assert_eq!(s.cluster.name, "a");
        assert_eq!(s.user.map(|u| u.name.as_str()), Some("ua"));
        assert_eq!(s.namespace, "ns-a");
        let s = kc.select(&opts(Some("cb"), None, None, None)).expect("cb");
        assert_eq!(s.cluster.name, "b");
        assert!(s.user.is_none());
        assert_eq!(s.namespace, "default");
        let s = kc
            .select(&opts(Some(""), Some("b"), Some("ua"), Some("x")))
            .expect("overrides");
        assert_eq!((s.cluster.name.as_str(), s.namespace.as_str()), ("b", "x"));
        assert_eq!(s.user.map(|u| u.name.as_str()), Some("ua"));
    }

    #[test]
    fn selection_errors() {
        let kc = Kubeconfig::from_yaml(KC).expect("parse");
        let e = |o: KubeconfigOptions| kc.select(&o).unwrap_err().to_string();
        assert_eq!(
            e(opts(Some("zz"), None, None, None)),
            "context `zz` is not defined in the kubeconfig"
        );
        assert_eq!(
            e(opts(Some("ghost-user"), None, None, None)),
            "context `ghost-user` names user `nobody`, which is not defined in the kubeconfig"
        );
        assert_eq!(
            e(opts(Some("ghost-cluster"), None, None, None)),
            "context `ghost-cluster` names cluster `nowhere`, which is not defined in the kubeconfig"
        );
        assert_eq!(
            e(opts(Some("no-cluster"), None, None, None)),
            "context `no-cluster` names no cluster (in the kubeconfig)"
        );
        assert_eq!(
            e(opts(None, Some("zz"), None, None)),
            "cluster `zz` is not defined in the kubeconfig"
        );
        assert_eq!(
            e(opts(None, None, Some("zz"), None)),
            "user `zz` is not defined in the kubeconfig"
        );
        let empty = Kubeconfig::default();
        assert_eq!(
            empty
                .select(&KubeconfigOptions::default())
                .unwrap_err()
                .to_string(),
            "no context selected: the kubeconfig sets no current-context and no context was given"
        );
    }

    #[test]
    fn resolves_cluster_settings() {
        let kc = Kubeconfig::from_yaml(KC).expect("parse");
        let c = Config::from_kubeconfig(&kc, &KubeconfigOptions::default()).expect("config");
        assert_eq!(c.cluster_url.as_str(), "https://a:6443/");
        assert_eq!(c.tls_server_name.as_deref(), Some("api.a"));
        assert_eq!(
            c.proxy_url.as_ref().map(Url::as_str),
            Some("socks5://p:1080")
        );
        assert_eq!(c.auth.kind(), "token");
        let err =
            Config::from_kubeconfig(&kc, &opts(None, Some("nohost"), None, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster `nohost` in the kubeconfig: invalid server URL `ftp://x`: scheme `ftp` is not http or https"
        );
        let info = exec_cluster_info(&kc.clusters[0].cluster, "https://a:6443/", Some(b"pem"));
        assert_eq!(
            info,
            json!({"server": "https://a:6443/", "tls-server-name": "api.a", "certificate-authority-data": "cGVt", "proxy-url": "socks5://p:1080", "config": {"aud": "x"}})
        );
    }
}
