//! The one error type of the test environment. Every variant names the
//! binary, file or URL it is about, and start-up failures carry the tail of
//! the failing server's log so that a broken start explains itself.

use std::path::PathBuf;

/// Why the control plane could not be built, started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create directory", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `go build` of one of the servers failed or timed out.
    #[error("building {binary} failed: {reason}\n--- last lines of {log} ---\n{tail}")]
    Build {
        /// `kube-apiserver`, `etcd` or `kube-controller-manager`.
        binary: &'static str,
        /// Exit status or timeout.
        reason: String,
        /// The full build log.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// A binary named by KUBEBUILDER_ASSETS / TEST_ASSET_* does not exist.
    #[error("{var} points at {path}, which is not an executable file")]
    MissingAsset {
        /// The environment variable.
        var: &'static str,
        /// The path it gave.
        path: PathBuf,
    },
    /// A kube-controller-manager was asked for but none is available.
    #[error("no kube-controller-manager: {reason}")]
    NoControllerManager {
        /// Where it was expected and how to provide one.
        reason: &'static str,
    },
    /// An optional binary (kube-scheduler, kwok) was asked for but none is
    /// available.
    #[error("no {binary}: {reason}")]
    MissingBinary {
        /// `kube-scheduler` or `kwok`.
        binary: &'static str,
        /// Where it was expected and how to provide one.
        reason: String,
    },
    /// The simulated nodes could not be set up, or a request about them was
    /// refused before it reached the cluster.
    #[error("nodes: {0}")]
    Nodes(String),
    /// The pinned versions could not be read from the Go module.
    #[error("cannot read the pinned versions from {path}: {reason}")]
    Pins {
        /// The go.mod file.
        path: PathBuf,
        /// What was missing.
        reason: String,
    },
    /// A server did not become ready, or exited during start-up.
    #[error("{binary} did not start: {reason}\n--- last lines of {log} ---\n{tail}")]
    Start {
        /// `kube-apiserver`, `etcd` or `kube-controller-manager`.
        binary: &'static str,
        /// Exited (with status) or timed out (after how long).
        reason: String,
        /// The server's log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// Certificates or keys could not be generated.
    #[error("generating {what}: {source}")]
    Certs {
        /// Which certificate or key.
        what: &'static str,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// An HTTP request to the API server failed.
    #[error("{method} {url}: {reason}")]
    Http {
        /// The request method.
        method: &'static str,
        /// The full URL.
        url: String,
        /// Transport error, or status and body.
        reason: String,
    },
    /// The kubeconfig of an existing cluster could not be used.
    #[error("USE_EXISTING_CLUSTER=true but the kubeconfig is not usable: {0}")]
    ExistingCluster(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The last `lines` lines of a log file, or a note that it cannot be read.
pub(crate) fn log_tail(path: &std::path::Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(log unreadable: {e})"),
    }
}
