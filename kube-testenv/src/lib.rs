//! A real Kubernetes control plane for kube's tests, examples and benchmarks.
//!
//! Every feature of kube is proven against a real kube-apiserver backed by a
//! real etcd, both built from pinned upstream Go sources (see
//! `xtask/controlplane/go.mod`) and started on 127.0.0.1 with certificates
//! generated for the run. Nothing here is a mock.
//!
//! The pieces, bottom up:
//! - [`binaries`]: find the two binaries (envtest's `KUBEBUILDER_ASSETS`,
//!   the cache, or `go build`);
//! - [`ControlPlane`]: start etcd and kube-apiserver, wait until ready, write
//!   an admin kubeconfig, stop (or restart the API server) on demand; with
//!   [`ControlPlaneOptions::controller_manager`] also kube-controller-manager
//!   (see [`controller_manager`]), so that garbage collection and namespace
//!   deletion really happen;
//! - [`TestEnv`] and [`shared`]: what a test uses — one control plane per
//!   test binary (or the cluster named by `KUBECONFIG` when
//!   `USE_EXISTING_CLUSTER=true`) and a fresh namespace per test;
//!   [`shared_with_controller_manager`] is the same with the cluster's
//!   controllers running, and [`shared_with_nodes`] adds kube-scheduler and
//!   simulated nodes ([`kwok`], [`nodes`]) on which Pods really run, as far
//!   as the API can tell: the kubelet API (exec, attach, port-forward,
//!   logs) answers through kube-apiserver, with commands run on this machine.
//!
//! Each of the three `shared*` functions keeps its own environment, so a
//! test binary that calls two of them runs two control planes (each with
//! its own start-up, about 4 s for the API server alone). [`shared`]
//! deliberately never hands out a richer one that is already running:
//! - its callers are promised a cluster where no controller acts — owner
//!   references stay inert, a deleted namespace stays `Terminating`, a
//!   Deployment makes no ReplicaSet — and some tests rely on exactly that
//!   (kube-testenv's own `without_the_option_no_controller_acts`);
//! - tests run in parallel, so "already running" would be a race: which test
//!   came first would decide how the cluster behaves;
//! - always starting the richest one would make every plain [`shared`]
//!   slower (kube-controller-manager, and for nodes kube-scheduler and KWOK,
//!   to build and start).
//!
//! A test binary whose tests can all live with the cluster's controllers
//! should call [`shared_with_controller_manager`] (or [`shared_with_nodes`])
//! everywhere, and so start one control plane.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let env = kube_testenv::shared().map_err(|e| e.to_string())?;
//! let namespace = env.namespace("my-test").await?;
//! println!("KUBECONFIG={} namespace={namespace}", env.kubeconfig().display());
//! # Ok(()) }
//! ```
//!
//! The servers die with the process that started them, even on panic or
//! SIGKILL: see [`process`].

pub mod access;
pub mod attach;
pub mod binaries;
pub mod certs;
pub mod controller_manager;
mod controlplane;
mod error;
pub mod kwok;
pub mod nodes;
pub mod process;
pub mod scheduler;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use access::Access;
pub use attach::PodProcess;
pub use binaries::{Binaries, Pins, Provenance, Wanted};
pub use controlplane::{ControlPlane, ControlPlaneOptions};
pub use error::{Error, Result};

/// A cluster for tests: our own control plane, or an existing cluster.
#[derive(Debug)]
pub struct TestEnv {
    kubeconfig: PathBuf,
    access: Access,
    control_plane: Option<ControlPlane>,
}

impl TestEnv {
    /// Starts a control plane (building the binaries if needed), or, when
    /// `USE_EXISTING_CLUSTER=true`, uses the cluster of the current
    /// kubeconfig instead.
    pub fn start() -> Result<Self> {
        Self::start_with(ControlPlaneOptions::default())
    }

    /// [`TestEnv::start`] with `options` for our own control plane (building
    /// the binaries they need). An existing cluster is taken as it is: it
    /// runs its own controllers.
    pub fn start_with(options: ControlPlaneOptions) -> Result<Self> {
        if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
            return existing_cluster();
        }
        let wanted = options.wanted();
        let (binaries, _) =
            binaries::ensure_with(wanted, |line| eprintln!("kube-testenv: {line}"))?;
        let control_plane = ControlPlane::start_with(&binaries, options)?;
        Ok(Self {
            kubeconfig: control_plane.kubeconfig().to_path_buf(),
            access: control_plane.access().clone(),
            control_plane: Some(control_plane),
        })
    }

    /// The kubeconfig file to hand to the code under test.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Admin access to the cluster.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Our own control plane, or `None` for an existing cluster.
    pub fn control_plane(&self) -> Option<&ControlPlane> {
        self.control_plane.as_ref()
    }

    /// Creates a fresh namespace named after `prefix` and returns its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        self.access.create_namespace(prefix).await
    }
}

/// The test binary's shared environment, started on first use. Its servers
/// stop when the test process exits. No controller runs in it, even when
/// [`shared_with_controller_manager`] or [`shared_with_nodes`] has started a
/// richer environment in the same process (see the crate docs for why).
pub fn shared() -> std::result::Result<&'static TestEnv, &'static Error> {
    static SHARED: OnceLock<Result<TestEnv>> = OnceLock::new();
    SHARED.get_or_init(TestEnv::start).as_ref()
}

/// Like [`shared`], but the control plane also runs kube-controller-manager
/// (garbage collector, namespace controller, …). A separate environment from
/// [`shared`]'s, started on first use: a test binary that calls both runs two
/// control planes.
pub fn shared_with_controller_manager() -> std::result::Result<&'static TestEnv, &'static Error> {
    static SHARED: OnceLock<Result<TestEnv>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            TestEnv::start_with(ControlPlaneOptions::default().with_controller_manager())
        })
        .as_ref()
}

/// How many simulated nodes [`shared_with_nodes`] starts.
pub const SHARED_NODES: u32 = 2;

/// Like [`shared_with_controller_manager`], plus kube-scheduler and
/// [`SHARED_NODES`] simulated nodes (see [`kwok`]): a Deployment becomes a
/// ReplicaSet and Running Pods bound to the nodes, and `kubectl exec`,
/// `logs`, `attach` and `port-forward` work through the API server. A
/// separate environment from the other two, started on first use.
pub fn shared_with_nodes() -> std::result::Result<&'static TestEnv, &'static Error> {
    static SHARED: OnceLock<Result<TestEnv>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            TestEnv::start_with(ControlPlaneOptions::default().with_nodes(SHARED_NODES))
        })
        .as_ref()
}

fn existing_cluster() -> Result<TestEnv> {
    let bad = |what: String| Error::ExistingCluster(what);
    let loader = kube_config::KubeconfigLoader::from_env();
    let kubeconfig = loader
        .candidate_paths()
        .find(|p| p.exists())
        .ok_or_else(|| bad("no kubeconfig file found (set KUBECONFIG)".into()))?;
    let config =
        kube_config::Config::from_default_kubeconfig(&kube_config::KubeconfigOptions::default())
            .map_err(|e| bad(e.to_string()))?;
    let ca_pem = config
        .root_certs
        .iter()
        .flatten()
        .map(|der| der_to_pem(der))
        .collect::<String>();
    let credential = config
        .auth
        .current_credential()
        .map_err(|e| bad(e.to_string()))?;
    let identity = credential
        .as_ref()
        .and_then(|c| c.identity.clone())
        .or(config.identity.clone());
    let access = Access {
        server: config
            .cluster_url
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        ca_pem,
        client_identity: identity.map(|id| {
            (
                String::from_utf8_lossy(id.cert_pem()).into_owned(),
                String::from_utf8_lossy(id.key_pem().expose()).into_owned(),
            )
        }),
        bearer_token: credential
            .and_then(|c| c.token)
            .map(|t| t.expose().to_string()),
    };
    Ok(TestEnv {
        kubeconfig,
        access,
        control_plane: None,
    })
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
