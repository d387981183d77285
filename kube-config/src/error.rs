//! The crate's one error type.
//!
//! Guarantees:
//!
//! - Every message names where the problem is: the kubeconfig file(s), and
//!   the cluster, user, context or field involved, so that a user can fix
//!   the file without a debugger.
//! - The cause is part of the message (`Display`), not only of
//!   [`source()`](std::error::Error::source), so one line tells the story.
//! - No message ever contains a secret (token, password, key, exec output).
//!   An exec plugin's stderr is included (trimmed and bounded), because that is
//!   where plugins explain their failures.

use std::fmt;
use std::path::PathBuf;

/// The kubeconfig files that were searched, or the one file that defined an
/// entry; shown in error messages.
///
/// Displays as the path for one file, `any of A, B, C` for several, and
/// `the kubeconfig` when the kubeconfig was parsed from a string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileList(pub Vec<PathBuf>);

impl FileList {
    /// A list of one file, or the empty list when `path` is `None`.
    pub fn one(path: Option<&std::path::Path>) -> Self {
        Self(path.map(|p| vec![p.to_path_buf()]).unwrap_or_default())
    }
}

impl fmt::Display for FileList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("the kubeconfig"),
            [one] => write!(f, "{}", one.display()),
            many => {
                f.write_str("any of ")?;
                for (i, p) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", p.display())?;
                }
                Ok(())
            }
        }
    }
}

fn origin(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "kubeconfig string".to_owned(),
    }
}

fn hint(install_hint: &Option<String>) -> String {
    match install_hint.as_deref().map(str::trim) {
        Some(h) if !h.is_empty() => format!("; {h}"),
        _ => String::new(),
    }
}

fn join_tried(tried: &[String]) -> String {
    if tried.is_empty() {
        "nothing to try".to_owned()
    } else {
        tried.join("; ")
    }
}

/// Everything that can go wrong while loading a configuration or getting a
/// credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file named by the configuration could not be read.
    #[error("cannot read {what} {}: {error}", .path.display())]
    ReadFile {
        /// What the file is, and who named it (e.g. "certificate-authority of
        /// cluster `prod` in /home/me/.kube/config").
        what: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },

    /// A kubeconfig is not valid YAML or does not have the kubeconfig shape.
    #[error("{}: invalid kubeconfig: {error}", origin(.path))]
    Yaml {
        /// The file, or `None` for a string.
        path: Option<PathBuf>,
        /// The parser's error, which carries the line and column.
        error: serde_yaml_ng::Error,
    },

    /// A kubeconfig file lists two clusters, contexts or users of the same
    /// name (kubectl rejects such a file too).
    #[error("{}: duplicate {kind} name `{name}`", origin(.path))]
    DuplicateName {
        /// The file, or `None` for a string.
        path: Option<PathBuf>,
        /// `cluster`, `context` or `user`.
        kind: &'static str,
        /// The repeated name.
        name: String,
    },

    /// A kubeconfig could not be serialized.
    #[error("cannot serialize kubeconfig: {error}")]
    Serialize {
        /// The serializer's error.
        error: serde_yaml_ng::Error,
    },

    /// No context was given and the kubeconfig has no current-context.
    #[error("no context selected: {files} sets no current-context and no context was given")]
    NoContext {
        /// The kubeconfig files that were merged.
        files: FileList,
    },

    /// The selected context does not exist.
    #[error("context `{context}` is not defined in {files}")]
    UnknownContext {
        /// The context name.
        context: String,
        /// The kubeconfig files that were searched.
        files: FileList,
    },

    /// A cluster given as an override does not exist.
    #[error("cluster `{cluster}` is not defined in {files}")]
    UnknownCluster {
        /// The cluster name.
        cluster: String,
        /// The kubeconfig files that were searched.
        files: FileList,
    },

    /// A user given as an override does not exist.
    #[error("user `{user}` is not defined in {files}")]
    UnknownUser {
        /// The user name.
        user: String,
        /// The kubeconfig files that were searched.
        files: FileList,
    },

    /// The selected context names a cluster that does not exist.
    #[error("context `{context}` names cluster `{cluster}`, which is not defined in {files}")]
    ContextNamesUnknownCluster {
        /// The context name.
        context: String,
        /// The cluster name it refers to.
        cluster: String,
        /// The kubeconfig files that were searched.
        files: FileList,
    },

    /// The selected context names no cluster (and none was given).
    #[error("context `{context}` names no cluster (in {files})")]
    ContextWithoutCluster {
        /// The context name.
        context: String,
        /// The kubeconfig files that were searched.
        files: FileList,
    },

    /// The selected context names a user that does not exist.
    #[error("context `{context}` names user `{user}`, which is not defined in {files}")]
    ContextNamesUnknownUser {
        /// The context name.
        context: String,
        /// The user name it refers to.
        user: String,
        /// The kubeconfig files that were searched.
        files: FileList,
    },

    /// The selected cluster has no `server`.
    #[error("cluster `{cluster}` in {file} has no server")]
    MissingServer {
        /// The cluster name.
        cluster: String,
        /// The file that defined the cluster.
        file: FileList,
    },

    /// The selected cluster's `server` is not a usable URL.
    #[error("cluster `{cluster}` in {file}: invalid server URL `{url}`: {reason}")]
    InvalidServerUrl {
        /// The cluster name.
        cluster: String,
        /// The file that defined the cluster.
        file: FileList,
        /// The offending value.
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The selected cluster's `proxy-url` is not a usable URL.
    #[error("cluster `{cluster}` in {file}: invalid proxy-url `{url}`: {reason}")]
    InvalidProxyUrl {
        /// The cluster name.
        cluster: String,
        /// The file that defined the cluster.
        file: FileList,
        /// The offending value.
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A `*-data` field is not valid base64.
    #[error("{field} of {owner} is not valid base64: {error}")]
    Base64 {
        /// The field name (e.g. `client-key-data`).
        field: &'static str,
        /// Who has the field (e.g. "user `alice` in /path/config").
        owner: String,
        /// The decoder's error.
        error: base64::DecodeError,
    },

    /// A certificate or key is not valid PEM of the expected kind.
    #[error("invalid {what} in {origin}: {reason}")]
    BadPem {
        /// What was expected (e.g. "client key").
        what: &'static str,
        /// Where it came from: a file, or a field of a user or cluster.
        origin: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A user entry is inconsistent (e.g. two authentication methods, a
    /// certificate without key, an exec entry without apiVersion).
    #[error("user `{user}` in {file}: {reason}")]
    InvalidUser {
        /// The user name.
        user: String,
        /// The file that defined the user.
        file: FileList,
        /// What is wrong.
        reason: String,
    },

    /// The user uses an `auth-provider` other than `oidc`.
    #[error(
        "user `{user}` in {file} uses auth-provider `{provider}`, which is not supported; use an exec plugin"
    )]
    UnsupportedAuthProvider {
        /// The user name.
        user: String,
        /// The file that defined the user.
        file: FileList,
        /// The provider name (e.g. `gcp`).
        provider: String,
    },

    /// The `id-token` of an `oidc` auth-provider is not a JWT whose expiry
    /// can be read (the token itself is never shown).
    #[error("the oidc id-token of user `{user}` in {file} is not usable: {problem}")]
    OidcIdToken {
        /// The user name.
        user: String,
        /// The file that defined the user.
        file: FileList,
        /// What is wrong with it.
        problem: crate::oidc::JwtError,
    },

    /// Refreshed `oidc` tokens could not be written back to the kubeconfig
    /// file the user was read from.
    #[error("cannot write the refreshed oidc tokens of user `{user}` to {}: {error}", .path.display())]
    OidcPersist {
        /// The user name.
        user: String,
        /// The kubeconfig file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },

    /// The `id-token` of an `oidc` auth-provider is expired or missing and
    /// cannot be refreshed here.
    #[error("the oidc id-token of user `{user}` in {file} is expired or missing, and {reason}")]
    OidcExpired {
        /// The user name.
        user: String,
        /// The file that defined the user.
        file: FileList,
        /// Why it cannot be refreshed.
        reason: &'static str,
    },

    /// The exec plugin's command does not exist.
    #[error("exec plugin `{command}` of user `{user}` was not found{}", hint(.install_hint))]
    ExecNotFound {
        /// The command as configured (after path resolution).
        command: String,
        /// The user whose plugin it is.
        user: String,
        /// The plugin's `installHint`, shown to the user.
        install_hint: Option<String>,
    },

    /// The exec plugin could not be started.
    #[error("cannot run exec plugin `{command}` of user `{user}`: {error}")]
    ExecSpawn {
        /// The command.
        command: String,
        /// The user whose plugin it is.
        user: String,
        /// The I/O error.
        error: std::io::Error,
    },

    /// The exec plugin exited unsuccessfully.
    #[error("exec plugin `{command}` of user `{user}` failed with {status}; stderr: {stderr}")]
    ExecFailed {
        /// The command.
        command: String,
        /// The user whose plugin it is.
        user: String,
        /// The exit status as text (e.g. `exit status: 1`).
        status: String,
        /// The tail of the plugin's stderr: its last 10 lines, at most 1 KiB
        /// (or a note that it went to the terminal).
        stderr: String,
    },

    /// The exec plugin did not finish within its timeout; it was killed.
    #[error(
        "exec plugin `{command}` of user `{user}` did not finish within {timeout:?} and was killed; stderr: {stderr}"
    )]
    ExecTimeout {
        /// The command.
        command: String,
        /// The user whose plugin it is.
        user: String,
        /// The timeout it exceeded.
        timeout: std::time::Duration,
        /// The tail of what it wrote to stderr so far (or a note that it
        /// went to the terminal).
        stderr: String,
    },

    /// The exec plugin wrote more to stdout than any credential needs; it
    /// was killed.
    #[error(
        "exec plugin `{command}` of user `{user}` wrote more than {limit} bytes to stdout and was killed"
    )]
    ExecOutputTooLarge {
        /// The command.
        command: String,
        /// The user whose plugin it is.
        user: String,
        /// The limit in bytes ([`EXEC_MAX_STDOUT`](crate::EXEC_MAX_STDOUT)).
        limit: usize,
    },

    /// The exec plugin printed something that is not a valid ExecCredential.
    #[error(
        "exec plugin `{command}` of user `{user}` returned an invalid ExecCredential: {reason}"
    )]
    ExecOutput {
        /// The command.
        command: String,
        /// The user whose plugin it is.
        user: String,
        /// What is wrong (never includes the output itself).
        reason: String,
    },

    /// The exec plugin needs a terminal (`interactiveMode: Always`) and there
    /// is none.
    #[error(
        "exec plugin `{command}` of user `{user}` requires an interactive terminal (interactiveMode: Always), but standard input is not a terminal"
    )]
    ExecNotInteractive {
        /// The command.
        command: String,
        /// The user whose plugin it is.
        user: String,
    },

    /// A token file is unusable (e.g. empty).
    #[error("token file {}: {reason}", .path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The in-cluster configuration is unusable.
    #[error("in-cluster configuration: {reason}")]
    InCluster {
        /// What is wrong.
        reason: String,
    },

    /// No kubeconfig was found and the process is not in a cluster.
    #[error("no Kubernetes configuration found; tried: {}", join_tried(.tried))]
    NoConfig {
        /// Each source that was tried and why it was not usable.
        tried: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_list_display() {
        assert_eq!(FileList::default().to_string(), "the kubeconfig");
        assert_eq!(FileList::one(Some("/a".as_ref())).to_string(), "/a");
        let many = FileList(vec!["/a".into(), "/b".into()]);
        assert_eq!(many.to_string(), "any of /a, /b");
    }

    #[test]
    fn messages() {
        let e = Error::ExecNotFound {
            command: "gke-auth".into(),
            user: "u".into(),
            install_hint: Some("install it with apt\n".into()),
        };
        assert_eq!(
            e.to_string(),
            "exec plugin `gke-auth` of user `u` was not found; install it with apt"
        );
        let e = Error::NoConfig { tried: vec![] };
        assert_eq!(
            e.to_string(),
            "no Kubernetes configuration found; tried: nothing to try"
        );
    }

    #[test]
    fn error_is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
