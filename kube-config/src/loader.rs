//! Finding kubeconfig files and merging them, as kubectl does.
//!
//! Guarantees (client-go's `ClientConfigLoadingRules`):
//!
//! - If `KUBECONFIG` is set and not empty, it is split like `PATH` (`:` on
//!   Unix, `;` on Windows); empty entries are skipped, repeated entries are
//!   read once, and entries whose file does not exist are skipped. If none of
//!   them exists the result is *no kubeconfig* (kubectl shows an empty
//!   config): `~/.kube/config` is **not** used then.
//! - Otherwise `$HOME/.kube/config` is used if it exists.
//! - Any other failure to read or parse a listed file is an error naming it,
//!   as in kubectl.
//! - Files are merged in order: for clusters, contexts and users, the first
//!   file that defines a name wins (the whole entry, not field by field); the
//!   first non-empty `current-context` wins; `preferences` comes from the
//!   first file that has them; extensions merge by name, first wins.
//! - Relative paths inside each file are resolved against that file's own
//!   directory (see [`Kubeconfig::read_from`]).
//! - The environment is injectable: [`KubeconfigLoader::from_env`] reads the
//!   real `KUBECONFIG` and `HOME`; tests build a loader with explicit values
//!   and never touch the process environment.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::PathBuf;

use crate::{Error, Kubeconfig};

/// Where to look for kubeconfig files: the value of `KUBECONFIG` and the home
/// directory.
///
/// ```
/// use kube_config::KubeconfigLoader;
/// let loader = KubeconfigLoader::new()
///     .with_kubeconfig_env("/etc/a.yaml::/etc/b.yaml:/etc/a.yaml")
///     .with_home("/home/me");
/// let paths: Vec<_> = loader.candidate_paths().collect();
/// assert_eq!(paths, ["/etc/a.yaml", "/etc/b.yaml"].map(std::path::PathBuf::from));
/// ```
#[derive(Debug, Clone, Default)]
pub struct KubeconfigLoader {
    kubeconfig_env: Option<OsString>,
    home: Option<PathBuf>,
}

impl KubeconfigLoader {
    /// A loader with no `KUBECONFIG` and no home directory (it finds nothing
    /// until given one of them).
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader reading the process's `KUBECONFIG` and `HOME` (on Windows,
    /// `USERPROFILE` when `HOME` is unset).
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .or_else(|| {
                if cfg!(windows) {
                    std::env::var_os("USERPROFILE").filter(|h| !h.is_empty())
                } else {
                    None
                }
            })
            .map(PathBuf::from);
        Self {
            kubeconfig_env: std::env::var_os("KUBECONFIG"),
            home,
        }
    }

    /// Sets the value of `KUBECONFIG` to use.
    pub fn with_kubeconfig_env(mut self, value: impl Into<OsString>) -> Self {
        self.kubeconfig_env = Some(value.into());
        self
    }

    /// Sets the home directory to use (for `~/.kube/config`).
    pub fn with_home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    fn env_list(&self) -> Option<&OsString> {
        self.kubeconfig_env.as_ref().filter(|v| !v.is_empty())
    }

    /// The files that would be tried, in priority order (whether or not they
    /// exist).
    pub fn candidate_paths(&self) -> impl Iterator<Item = PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        match self.env_list() {
            Some(list) => {
                for p in std::env::split_paths(list) {
                    if !p.as_os_str().is_empty() && !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
            None => {
                if let Some(home) = &self.home {
                    out.push(home.join(".kube").join("config"));
                }
            }
        }
        out.into_iter()
    }

    /// Loads and merges the kubeconfig files; [`Error::NoConfig`] if none
    /// exists.
    pub fn load(&self) -> Result<Kubeconfig, Error> {
        match self.load_reporting()? {
            (Some(kc), _) => Ok(kc),
            (None, tried) => Err(Error::NoConfig { tried }),
        }
    }

    /// Loads and merges the kubeconfig files; `None` if none exists, with a
    /// description of each place tried.
    pub(crate) fn load_reporting(&self) -> Result<(Option<Kubeconfig>, Vec<String>), Error> {
        let mut tried = Vec::new();
        let from_env = self.env_list().is_some();
        if !from_env && self.home.is_none() {
            tried.push("KUBECONFIG is not set and HOME is not set".to_owned());
        }
        let mut merged: Option<Kubeconfig> = None;
        let candidates: Vec<PathBuf> = self.candidate_paths().collect();
        if from_env && candidates.is_empty() {
            tried.push(format!(
                "KUBECONFIG={:?} names no file",
                self.kubeconfig_env.as_deref().unwrap_or_default()
            ));
        }
        for path in candidates {
            let label = if from_env {
                format!("KUBECONFIG entry {}", path.display())
            } else {
                format!("default kubeconfig {}", path.display())
            };
            let kc = match Kubeconfig::read_from(&path) {
                Ok(kc) => kc,
                Err(Error::ReadFile { error, .. }) if error.kind() == ErrorKind::NotFound => {
                    tracing::debug!(path = %path.display(), "kubeconfig file not found, skipped");
                    tried.push(format!("{label}: not found"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            merged = Some(match merged {
                Some(m) => m.merge(kc),
                None => kc,
            });
        }
        if merged.is_none() && from_env {
            tracing::warn!(tried = ?tried, "config not found: no KUBECONFIG entry exists");
        }
        Ok((merged, tried))
    }
}

impl Kubeconfig {
    /// Loads the kubeconfig as kubectl would: from the files in `KUBECONFIG`,
    /// else `~/.kube/config`. See [`KubeconfigLoader`].
    pub fn load_default() -> Result<Kubeconfig, Error> {
        KubeconfigLoader::from_env().load()
    }

    /// Merges `lower` into `self` with kubectl's rules: entries and settings
    /// of `self` win; `lower` only fills in names and values `self` lacks.
    pub fn merge(mut self, lower: Kubeconfig) -> Kubeconfig {
        for c in lower.clusters {
            if self.cluster(&c.name).is_none() {
                self.clusters.push(c);
            }
        }
        for c in lower.contexts {
            if self.context(&c.name).is_none() {
                self.contexts.push(c);
            }
        }
        for u in lower.users {
            if self.user(&u.name).is_none() {
                self.users.push(u);
            }
        }
        if self.current_context.as_deref().unwrap_or("").is_empty()
            && let Some(cc) = lower.current_context.filter(|c| !c.is_empty())
        {
            self.current_context = Some(cc);
        }
        self.api_version = self.api_version.or(lower.api_version);
        self.kind = self.kind.or(lower.kind);
        self.preferences = match (self.preferences, lower.preferences) {
            (Some(p), _) if !is_empty_value(&p) => Some(p),
            (p, l) => l.or(p),
        };
        self.extensions = match (self.extensions, lower.extensions) {
            (Some(mut mine), Some(theirs)) => {
                for ext in theirs {
                    if !mine.iter().any(|e| e.name == ext.name) {
                        mine.push(ext);
                    }
                }
                Some(mine)
            }
            (mine, theirs) => mine.or(theirs),
        };
        self.sources.extend(lower.sources);
        self
    }
}

fn is_empty_value(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates() {
        let l = KubeconfigLoader::new().with_home("/h");
        assert_eq!(
            l.candidate_paths().collect::<Vec<_>>(),
            [PathBuf::from("/h/.kube/config")]
        );
        let l = l.with_kubeconfig_env("");
        assert_eq!(
            l.candidate_paths().collect::<Vec<_>>(),
            [PathBuf::from("/h/.kube/config")]
        );
        let l = KubeconfigLoader::new().with_kubeconfig_env(":/a::/b:/a:");
        assert_eq!(
            l.candidate_paths().collect::<Vec<_>>(),
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(KubeconfigLoader::new().candidate_paths().count(), 0);
        let err = KubeconfigLoader::new()
            .with_kubeconfig_env("::")
            .load()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Kubernetes configuration found; tried: KUBECONFIG=\"::\" names no file"
        );
    }

    #[test]
    fn nothing_found_lists_tries() {
        let err = KubeconfigLoader::new().load().unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Kubernetes configuration found; tried: KUBECONFIG is not set and HOME is not set"
        );
        let err = KubeconfigLoader::new()
            .with_home("/nonexistent-home-kc")
            .load()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Kubernetes configuration found; tried: default kubeconfig /nonexistent-home-kc/.kube/config: not found"
        );
    }

    #[test]
    fn merge_first_wins() {
        let a = Kubeconfig::from_yaml(
            "clusters: [{name: c, cluster: {server: 'https://a'}}]\ncurrent-context: ''\npreferences: {}\nextensions: [{name: e, extension: 1}]",
        )
        .expect("a");
        let b = Kubeconfig::from_yaml(
            "clusters: [{name: c, cluster: {server: 'https://b'}}, {name: d, cluster: {}}]\ncurrent-context: x\npreferences: {colors: true}\nextensions: [{name: e, extension: 2}, {name: f}]",
        )
        .expect("b");
        let m = a.merge(b);
        assert_eq!(m.clusters.len(), 2);
        assert_eq!(
            m.cluster("c").and_then(|c| c.cluster.server.as_deref()),
            Some("https://a")
        );
        assert_eq!(m.current_context.as_deref(), Some("x"));
        assert_eq!(m.preferences, Some(serde_json::json!({"colors": true})));
        let ext = m.extensions.expect("ext");
        assert_eq!(ext.len(), 2);
        assert_eq!(ext[0].extension, serde_json::json!(1));
    }
}
