//! kube-controller-manager beside the API server, for tests that need the
//! cluster's own controllers to act: the garbage collector (so owner
//! references delete children, in the background or in the foreground) and
//! the namespace controller (so a deleted namespace is emptied and
//! finalized), with the rest of the default controller set
//! (`--controllers=*`: ReplicaSets from Deployments, service-account tokens,
//! and so on). Without nodes nothing is scheduled or run: Pods stay Pending.
//!
//! Guarantees when [`crate::ControlPlane::start_with`] asked for it and
//! returned `Ok`:
//! - it serves on a free 127.0.0.1 port only (`--bind-address=127.0.0.1`),
//!   with the control plane's loopback serving certificate, and its
//!   `/healthz` has answered 200 (checked over TLS against the control
//!   plane's CA);
//! - it talks to kube-apiserver on 127.0.0.1 as user
//!   `system:kube-controller-manager` in group `system:masters`, with a
//!   client certificate made for it;
//! - its own endpoints accept the control plane's client certificates
//!   (`--client-ca-file`, so the admin certificate works there too) and ask
//!   the API server about tokens and permissions (delegated authentication
//!   and authorization through the same kubeconfig). It does not look up
//!   the front-proxy CA in the cluster (`--authentication-skip-lookup`):
//!   this API server has none, and looking only fills the log with errors;
//! - it signs service-account tokens with the key whose public half the API
//!   server verifies (`--service-account-private-key-file`) and publishes the
//!   control plane's CA (`--root-ca-file`);
//! - no leader election (`--leader-elect=false`): it is the only one.
//!
//! Becoming healthy is not the same as having acted: the garbage collector
//! first discovers every resource and syncs an informer for each, which
//! takes a few seconds after start-up; tests should wait for effects with
//! generous timeouts rather than expect them at once.
//!
//! Start-up is bounded (60 s); a controller manager that exits or does not
//! become healthy fails the start with the tail of its log, and it stops
//! with the control plane, or with this process (see [`crate::process`]).

use std::path::Path;
use std::time::Duration;

use crate::access::Access;
use crate::controlplane::{block_on, wait_ready};
use crate::error::Result;
use crate::process::{ServerProcess, free_port};

/// How long kube-controller-manager may take to answer `/healthz`.
const READY: Duration = Duration::from_secs(60);

/// The files a controller manager is started with, all in the control
/// plane's directory.
pub(crate) struct Files<'a> {
    /// Its kubeconfig (server, CA, its own client certificate).
    pub kubeconfig: &'a Path,
    /// Serving certificate and key valid for 127.0.0.1.
    pub serving_cert: &'a str,
    /// The serving key.
    pub serving_key: &'a str,
    /// The service-account signing key (private half).
    pub service_account_key: &'a str,
    /// The CA that signs the API server's certificate.
    pub root_ca: &'a str,
    /// The CA that signs client certificates.
    pub client_ca: &'a str,
}

/// The command line for a controller manager listening on `port`.
pub(crate) fn args(files: &Files<'_>, port: u16) -> Vec<String> {
    let mut args = crate::process::component_args(
        files.kubeconfig,
        files.client_ca,
        files.serving_cert,
        files.serving_key,
        port,
    );
    args.extend([
        "--controllers=*".into(),
        // No node IPAM: there are no nodes, and no cluster CIDR to carve up.
        "--allocate-node-cidrs=false".into(),
        format!(
            "--service-account-private-key-file={}",
            files.service_account_key
        ),
        format!("--root-ca-file={}", files.root_ca),
        "--v=1".into(),
    ]);
    args
}

/// Starts kube-controller-manager and waits for its `/healthz`; returns the
/// process and its `https://127.0.0.1:PORT`. `admin` is the API server's
/// admin access: the controller manager is checked with the same CA and
/// client identity.
pub(crate) fn start(
    binary: &Path,
    files: &Files<'_>,
    admin: &Access,
    log: &Path,
) -> Result<(ServerProcess, String)> {
    let port = free_port()?;
    start_serving(
        "kube-controller-manager",
        binary,
        &args(files, port),
        port,
        admin,
        log,
    )
}

/// Starts a component that serves `/healthz` over TLS on 127.0.0.1:`port`
/// (with the control plane's serving certificate) and waits until it
/// answers 200; returns the process and its `https://127.0.0.1:PORT`.
pub(crate) fn start_serving(
    name: &'static str,
    binary: &Path,
    args: &[String],
    port: u16,
    admin: &Access,
    log: &Path,
) -> Result<(ServerProcess, String)> {
    let mut server = ServerProcess::spawn(name, binary, args, log)?;
    let access = Access {
        server: format!("https://127.0.0.1:{port}"),
        ..admin.clone()
    };
    let client = block_on(async { access.http_client() })?;
    wait_ready(&mut server, READY, || {
        block_on(async {
            matches!(
                access.request(&client, "GET", "/healthz", None).await,
                Ok((200, _))
            )
        })
    })?;
    Ok((server, access.server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_and_the_controllers_that_matter() {
        let files = Files {
            kubeconfig: Path::new("/d/cm.kubeconfig"),
            serving_cert: "/d/s.crt",
            serving_key: "/d/s.key",
            service_account_key: "/d/sa.key",
            root_ca: "/d/ca.crt",
            client_ca: "/d/client-ca.crt",
        };
        let args = args(&files, 4321);
        for expected in [
            "--bind-address=127.0.0.1",
            "--secure-port=4321",
            "--leader-elect=false",
            "--controllers=*",
            "--kubeconfig=/d/cm.kubeconfig",
            "--service-account-private-key-file=/d/sa.key",
            "--root-ca-file=/d/ca.crt",
            "--client-ca-file=/d/client-ca.crt",
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "{expected} not in {args:?}"
            );
        }
    }
}
