//! kube-scheduler beside the API server, so that Pods are bound to nodes.
//! It is only useful together with nodes (see [`crate::kwok`]): without a
//! node every Pod stays `Pending` with an `Unschedulable` condition.
//!
//! Guarantees when [`crate::ControlPlane::start_with`] asked for it and
//! returned `Ok`:
//! - it serves on a free 127.0.0.1 port only (`--bind-address=127.0.0.1`),
//!   with the control plane's loopback serving certificate, and its
//!   `/healthz` has answered 200 (checked over TLS against the control
//!   plane's CA);
//! - it talks to kube-apiserver on 127.0.0.1 as user `system:kube-scheduler`
//!   in group `system:masters`, with a client certificate made for it;
//! - its own endpoints authenticate and authorize through the API server
//!   (delegated, with the same kubeconfig) and accept the control plane's
//!   client certificates; it does not look up the front-proxy CA
//!   (`--authentication-skip-lookup`);
//! - no leader election (`--leader-elect=false`): it is the only one.
//!
//! It runs the default scheduling profile (`default-scheduler`), so Pods
//! need no `schedulerName`. Start-up is bounded (60 s); a scheduler that
//! exits or does not become healthy fails the start with the tail of its
//! log, and it stops with the control plane, or with this process (see
//! [`crate::process`]).

use std::path::Path;

use crate::access::Access;
use crate::controller_manager::start_serving;
use crate::error::Result;
use crate::process::{ServerProcess, free_port};

/// The files a scheduler is started with, all in the control plane's
/// directory.
pub(crate) struct Files<'a> {
    /// Its kubeconfig (server, CA, its own client certificate).
    pub kubeconfig: &'a Path,
    /// Serving certificate valid for 127.0.0.1.
    pub serving_cert: &'a str,
    /// The serving key.
    pub serving_key: &'a str,
    /// The CA that signs client certificates.
    pub client_ca: &'a str,
}

/// The command line for a scheduler listening on `port`.
pub(crate) fn args(files: &Files<'_>, port: u16) -> Vec<String> {
    let mut args = crate::process::component_args(
        files.kubeconfig,
        files.client_ca,
        files.serving_cert,
        files.serving_key,
        port,
    );
    args.extend(["--v=1".into()]);
    args
}

/// Starts kube-scheduler and waits for its `/healthz`; returns the process
/// and its `https://127.0.0.1:PORT`.
pub(crate) fn start(
    binary: &Path,
    files: &Files<'_>,
    admin: &Access,
    log: &Path,
) -> Result<(ServerProcess, String)> {
    let port = free_port()?;
    start_serving(
        "kube-scheduler",
        binary,
        &args(files, port),
        port,
        admin,
        log,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_without_leader_election() {
        let files = Files {
            kubeconfig: Path::new("/d/s.kubeconfig"),
            serving_cert: "/d/s.crt",
            serving_key: "/d/s.key",
            client_ca: "/d/client-ca.crt",
        };
        let args = args(&files, 4321);
        for expected in [
            "--bind-address=127.0.0.1",
            "--secure-port=4321",
            "--leader-elect=false",
            "--kubeconfig=/d/s.kubeconfig",
            "--client-ca-file=/d/client-ca.crt",
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "{expected} not in {args:?}"
            );
        }
    }
}
