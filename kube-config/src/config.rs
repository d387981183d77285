//! The resolved [`Config`] a client turns into HTTP, and inferring it from
//! the environment.
//!
//! Guarantees:
//!
//! - A `Config` is fully checked: the URL is `http(s)` with a host, CA and
//!   client certificates parsed, token files readable, the user's settings
//!   consistent. What can still fail later is only what must be fetched per
//!   request (a rotated token file, an exec plugin run).
//! - [`Config::infer`] uses the kubeconfig if one is found (`KUBECONFIG`, else
//!   `~/.kube/config`), else the in-cluster service account, else fails with
//!   [`Error::NoConfig`] listing every place tried and why it failed. A
//!   kubeconfig that exists but is broken is an error, not a reason to fall
//!   back to in-cluster. In-cluster is not used when a context, cluster or
//!   user was requested.
//! - `Debug` shows no secret.

use std::time::Duration;

use url::Url;

use crate::{
    Auth, ClientIdentity, Error, Impersonation, InClusterEnv, KubeconfigLoader, KubeconfigOptions,
};

/// Everything needed to talk to one API server as one user.
///
/// `Debug` shows the URLs through [`redact_url`](crate::redact_url) and no
/// secret of [`auth`](Self::auth) or [`identity`](Self::identity).
#[derive(Clone)]
pub struct Config {
    /// The API server's URL (`http` or `https`, with a host; may have a path
    /// prefix).
    pub cluster_url: Url,
    /// The namespace to use when a request does not name one.
    pub default_namespace: String,
    /// The DER of every certificate of the cluster's CA bundle, or `None` to
    /// use the platform's roots.
    pub root_certs: Option<Vec<Vec<u8>>>,
    /// `insecure-skip-tls-verify`: do not verify the server certificate.
    pub accept_invalid_certs: bool,
    /// The name to verify the server certificate against, instead of the
    /// URL's host.
    pub tls_server_name: Option<String>,
    /// The proxy to connect through (`http`, `https` or `socks5`).
    pub proxy_url: Option<Url>,
    /// Do not ask for compressed responses.
    pub disable_compression: bool,
    /// How requests authenticate (besides [`identity`](Self::identity)).
    pub auth: Auth,
    /// The TLS client certificate chain and key from the kubeconfig.
    pub identity: Option<ClientIdentity>,
    /// Whom to impersonate.
    pub impersonate: Option<Impersonation>,
    /// How long to wait for a connection (`None`: the client's default;
    /// kubeconfigs do not set it).
    pub connect_timeout: Option<Duration>,
    /// How long to wait for a response (`None`: the client's default;
    /// kubeconfigs do not set it).
    pub read_timeout: Option<Duration>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Exhaustive, so a new field cannot be forgotten here.
        let Config {
            cluster_url,
            default_namespace,
            root_certs,
            accept_invalid_certs,
            tls_server_name,
            proxy_url,
            disable_compression,
            auth,
            identity,
            impersonate,
            connect_timeout,
            read_timeout,
        } = self;
        f.debug_struct("Config")
            .field("cluster_url", &crate::redact_url(cluster_url.as_str()))
            .field("default_namespace", default_namespace)
            .field("root_certs", root_certs)
            .field("accept_invalid_certs", accept_invalid_certs)
            .field("tls_server_name", tls_server_name)
            .field(
                "proxy_url",
                &proxy_url.as_ref().map(|u| crate::redact_url(u.as_str())),
            )
            .field("disable_compression", disable_compression)
            .field("auth", auth)
            .field("identity", identity)
            .field("impersonate", impersonate)
            .field("connect_timeout", connect_timeout)
            .field("read_timeout", read_timeout)
            .finish()
    }
}

impl Config {
    /// The kubeconfig from `KUBECONFIG` or `~/.kube/config`, else the
    /// in-cluster configuration, else [`Error::NoConfig`].
    pub fn infer() -> Result<Config, Error> {
        Self::infer_with(
            &KubeconfigLoader::from_env(),
            &InClusterEnv::from_env(),
            &KubeconfigOptions::default(),
        )
    }

    /// [`infer`](Self::infer) with an explicit environment and kubeconfig
    /// options (the namespace option also applies in-cluster).
    pub fn infer_with(
        loader: &KubeconfigLoader,
        incluster: &InClusterEnv,
        options: &KubeconfigOptions,
    ) -> Result<Config, Error> {
        let (kubeconfig, mut tried) = loader.load_reporting()?;
        if let Some(kc) = kubeconfig {
            return Config::from_kubeconfig(&kc, options);
        }
        let requested = [&options.context, &options.cluster, &options.user]
            .iter()
            .any(|o| o.as_deref().is_some_and(|s| !s.is_empty()));
        if requested {
            tried.push("in-cluster configuration: not used because a context, cluster or user was requested".to_owned());
            return Err(Error::NoConfig { tried });
        }
        match Config::incluster_with(incluster) {
            Ok(mut config) => {
                if let Some(ns) = options.namespace.as_ref().filter(|n| !n.is_empty()) {
                    config.default_namespace = ns.clone();
                }
                Ok(config)
            }
            Err(e) => {
                tried.push(e.to_string());
                Err(Error::NoConfig { tried })
            }
        }
    }

    /// This configuration with another exec plugin timeout (`None`: no
    /// limit); the default is [`EXEC_DEFAULT_TIMEOUT`](crate::EXEC_DEFAULT_TIMEOUT).
    /// Only [`Auth::Exec`] is affected; its credential cache starts empty.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn f(config: kube_config::Config) {
    /// let config = config.with_exec_timeout(Some(Duration::from_secs(180)));
    /// # }
    /// ```
    pub fn with_exec_timeout(mut self, timeout: Option<Duration>) -> Config {
        if let Auth::Exec(provider) = &self.auth {
            self.auth = Auth::Exec(provider.with_timeout(timeout));
        }
        self
    }

    /// This configuration with writing refreshed `oidc` tokens back to the
    /// kubeconfig file switched on (the default, as in client-go) or off.
    /// Only [`Auth::Oidc`] is affected; its tokens are no longer shared
    /// with clones of `self` (see [`OidcAuth::with_token_persisting`](crate::OidcAuth::with_token_persisting)).
    ///
    /// ```
    /// # fn f(config: kube_config::Config) {
    /// // Keep refreshed ID and refresh tokens in memory only.
    /// let config = config.with_oidc_token_persisting(false);
    /// # }
    /// ```
    pub fn with_oidc_token_persisting(mut self, persist: bool) -> Config {
        if let Auth::Oidc(oidc) = &self.auth {
            self.auth = Auth::Oidc(oidc.with_token_persisting(persist));
        }
        self
    }

    /// The kubeconfig from `KUBECONFIG` or `~/.kube/config`, with options
    /// (never in-cluster).
    pub fn from_default_kubeconfig(options: &KubeconfigOptions) -> Result<Config, Error> {
        let kc = KubeconfigLoader::from_env().load()?;
        Config::from_kubeconfig(&kc, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_types_are_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Config>();
        check::<Auth>();
        check::<crate::ExecProvider>();
        check::<crate::TokenSource>();
        check::<crate::Credential>();
        check::<crate::Kubeconfig>();
    }

    #[test]
    fn infer_with_nothing_lists_tries() {
        let err = Config::infer_with(
            &KubeconfigLoader::new().with_kubeconfig_env("/nonexistent/a:/nonexistent/b"),
            &InClusterEnv::default(),
            &KubeconfigOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Kubernetes configuration found; tried: KUBECONFIG entry /nonexistent/a: not found; \
             KUBECONFIG entry /nonexistent/b: not found; \
             in-cluster configuration: KUBERNETES_SERVICE_HOST is not set"
        );
        let err = Config::infer_with(
            &KubeconfigLoader::new(),
            &InClusterEnv::default(),
            &KubeconfigOptions {
                context: Some("x".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Kubernetes configuration found; tried: KUBECONFIG is not set and HOME is not set; \
             in-cluster configuration: not used because a context, cluster or user was requested"
        );
    }

    fn from_yaml(server: &str, proxy: &str) -> Result<Config, Error> {
        let yaml = format!(
            "clusters: [{{name: c, cluster: {{server: '{server}', proxy-url: '{proxy}'}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c}}}}]\n\
             current-context: x\n"
        );
        Config::from_kubeconfig(
            &crate::Kubeconfig::from_yaml(&yaml).unwrap(),
            &KubeconfigOptions::default(),
        )
    }

    fn assert_hidden(shown: &str) {
        for secret in ["hunter2", "hunter3"] {
            assert!(!shown.contains(secret), "`{secret}` shown in {shown}");
        }
    }

    #[test]
    fn userinfo_passwords_are_kept_for_connecting_but_never_shown() {
        let config = from_yaml(
            "https://user:hunter2@127.0.0.1:1",
            "http://u:hunter3@127.0.0.1:2",
        )
        .unwrap();
        assert_eq!(config.cluster_url.password(), Some("hunter2"));
        assert_eq!(
            config.proxy_url.as_ref().unwrap().password(),
            Some("hunter3")
        );
        let shown = format!("{config:?}");
        assert_hidden(&shown);
        assert!(
            shown.contains("https://user:REDACTED@127.0.0.1:1/"),
            "{shown}"
        );
        assert!(shown.contains("http://u:REDACTED@127.0.0.1:2/"), "{shown}");
        assert_hidden(&format!("{:#?}", config.clone()));
    }

    #[test]
    fn broken_urls_with_userinfo_are_redacted_in_errors() {
        let good_proxy = "http://u:hunter3@127.0.0.1:2";
        for (server, proxy, expect) in [
            (
                "https://user:hunter2@",
                good_proxy,
                "invalid server URL `https://REDACTED@`",
            ),
            (
                "ftp://user:hunter2@h",
                good_proxy,
                "invalid server URL `ftp://user:REDACTED@h/`",
            ),
            (
                "user:hunter2@h",
                good_proxy,
                "invalid server URL `REDACTED@h`",
            ),
            (
                "https://u:hunt/er2@h:x",
                good_proxy,
                "invalid server URL `https://REDACTED@h:x`",
            ),
            (
                "https://h",
                "ftp://u:hunter3@p",
                "invalid proxy-url `ftp://u:REDACTED@p/`",
            ),
            (
                "https://h",
                "http://u:hunter3@p:99999",
                "invalid proxy-url `http://REDACTED@p:99999`",
            ),
            (
                "https://h",
                "u:hunter3@p:3128",
                "invalid proxy-url `REDACTED@p:3128`",
            ),
        ] {
            let err = from_yaml(server, proxy).unwrap_err();
            let (display, debug) = (err.to_string(), format!("{err:?}"));
            assert!(display.contains(expect), "{server} {proxy}: {display}");
            assert_hidden(&display);
            assert_hidden(&debug);
        }
    }
}
