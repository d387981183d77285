//! A complete operator, ready to run as several replicas: a controller with
//! leader election, an Event for each reconcile, Prometheus metrics and
//! health probes on an admin port, and graceful shutdown.
//!
//! It manages the ConfigMaps labelled `operator.kube.rs/managed=true` in one
//! namespace: each reconcile stamps the object with who did it, in which
//! term and when (annotations `operator.kube.rs/reconciled-by`,
//! `operator.kube.rs/term` and `operator.kube.rs/reconciled-at`, in
//! microseconds since the epoch), publishes a `Normal Reconciled` Event,
//! and comes back after the requeue period. A ConfigMap whose data has
//! `fail: "true"` fails on purpose: a `Warning ReconcileFailed` Event and a
//! retry with backoff. Only changes to a ConfigMap's data or labels trigger
//! a reconcile (its own annotation writes do not).
//!
//! Only the replica holding the lease reconciles; the others keep their
//! caches warm and take over when it dies (after the lease duration) or
//! leaves (SIGTERM/SIGINT: it finishes what runs, releases the lease, and
//! the next replica leads within about a retry period). Right before each
//! write, a reconcile checks that its term is still current on the local
//! clock, so a replica that was frozen past its renew deadline does not
//! write when it wakes.
//!
//! Settings (environment variables, all optional):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `OPERATOR_NAMESPACE` | the kubeconfig's | where the ConfigMaps and the Lease live |
//! | `OPERATOR_IDENTITY` | `$HOSTNAME-<pid>` | this replica's name in the Lease (the pod name in a cluster) |
//! | `OPERATOR_LEASE` | `kube-operator-example` | the Lease's name |
//! | `OPERATOR_LEASE_DURATION` / `OPERATOR_RENEW_DEADLINE` / `OPERATOR_RETRY_PERIOD` | 15 / 10 / 2 | election timings, seconds (fractions allowed) |
//! | `OPERATOR_REQUEUE` | 30 | seconds between reconciles of an unchanged object |
//! | `OPERATOR_ADMIN_ADDR` | `127.0.0.1:8080` | `/metrics`, `/healthz`, `/readyz` (`0.0.0.0:8080` in a pod) |
//! | `OPERATOR_READY_WHEN` | `synced` | `/readyz` passes once the caches synced (`synced`: standbys are ready), or only while leading (`leading`) |
//!
//! It prints one line per fact, for people and for its end-to-end tests
//! (examples/tests/operator.rs): `admin listening on ADDR`, `leading
//! term=N at=MICROS`, `standing by at=MICROS`, `reconciled NS/NAME by=ID
//! term=N at=MICROS`, `stopped at=MICROS`.
//!
//! ```sh
//! OPERATOR_IDENTITY=a cargo run --example operator &
//! OPERATOR_IDENTITY=b OPERATOR_ADMIN_ADDR=127.0.0.1:8081 cargo run --example operator &
//! kubectl create configmap demo --from-literal=k=v
//! kubectl label configmap demo operator.kube.rs/managed=true
//! kubectl get configmap demo -o jsonpath='{.metadata.annotations}'
//! curl -s 127.0.0.1:8080/metrics | grep controller_runtime_reconcile_total
//! ```
//!
//! The RBAC it needs is in the README ("Running in production").
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{Patch, PatchParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::WatcherConfig;
use kube_runtime::admin::AdminServer;
use kube_runtime::controller::{
    Action, Config, Controller, TriggerConfig, current_term, default_error_policy,
    report_leadership,
};
use kube_runtime::events::{EventType, NewEvent, Recorder, RecorderConfig, Reporter};
use kube_runtime::leader_election::{LeaderElectionConfig, LeaderElector};
use kube_runtime::metrics::{Metrics, prometheus_client::registry::Registry};

const MANAGED: &str = "operator.kube.rs/managed=true";
const BY: &str = "operator.kube.rs/reconciled-by";
const TERM: &str = "operator.kube.rs/term";
const AT: &str = "operator.kube.rs/reconciled-at";
const CONTROLLER: &str = "operator.kube.rs/example";

/// The settings, from the environment.
struct Settings {
    namespace: Option<String>,
    identity: String,
    lease: String,
    election: LeaderElectionConfig,
    requeue: Duration,
    admin_addr: String,
    ready_only_when_leading: bool,
}

fn seconds(var: &str, default: f64) -> anyhow::Result<Duration> {
    match std::env::var(var) {
        Ok(v) => {
            let s: f64 = v
                .parse()
                .with_context(|| format!("{var}={v:?} is not a number of seconds"))?;
            Duration::try_from_secs_f64(s).with_context(|| format!("{var}={v:?} out of range"))
        }
        Err(_) => Ok(Duration::from_secs_f64(default)),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let host = var("HOSTNAME")
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "operator".into());
        let election = LeaderElectionConfig {
            lease_duration: seconds("OPERATOR_LEASE_DURATION", 15.0)?,
            renew_deadline: seconds("OPERATOR_RENEW_DEADLINE", 10.0)?,
            retry_period: seconds("OPERATOR_RETRY_PERIOD", 2.0)?,
            ..LeaderElectionConfig::default()
        };
        election.validate()?;
        let ready_only_when_leading = match var("OPERATOR_READY_WHEN").as_deref() {
            None | Some("synced") => false,
            Some("leading") => true,
            Some(other) => {
                anyhow::bail!("OPERATOR_READY_WHEN={other:?}: expected `synced` or `leading`")
            }
        };
        Ok(Self {
            namespace: var("OPERATOR_NAMESPACE"),
            identity: var("OPERATOR_IDENTITY")
                .unwrap_or_else(|| format!("{host}-{}", std::process::id())),
            lease: var("OPERATOR_LEASE").unwrap_or_else(|| "kube-operator-example".into()),
            election,
            requeue: seconds("OPERATOR_REQUEUE", 30.0)?,
            admin_addr: var("OPERATOR_ADMIN_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
            ready_only_when_leading,
        })
    }
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

/// Why a reconcile did not succeed.
#[derive(Debug)]
enum ReconcileError {
    /// This replica's term is over (or it never led): nothing was written.
    NotLeading,
    /// The ConfigMap asks to fail (`fail: "true"`).
    AskedToFail,
    /// The API server refused or could not be reached.
    Api(kube_client::Error),
}

impl fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLeading => f.write_str("not leading: nothing written"),
            Self::AskedToFail => f.write_str("the ConfigMap's data says fail=true"),
            Self::Api(e) => write!(f, "writing the annotations: {e}"),
        }
    }
}

impl std::error::Error for ReconcileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }
}

struct Ctx {
    api: Api<ConfigMap>,
    identity: String,
    recorder: Recorder,
    requeue: Duration,
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let wants_failure = cm
        .data
        .as_ref()
        .and_then(|d| d.get("fail"))
        .is_some_and(|v| v == "true");
    if wants_failure {
        return Err(ReconcileError::AskedToFail);
    }
    // The fence: the term must still be current, on the local clock, right
    // before the write (and the timestamp is taken before that check).
    let at = micros_now();
    let term = current_term()
        .filter(|t| t.is_current())
        .ok_or(ReconcileError::NotLeading)?;
    let patch = serde_json::json!({"metadata": {"annotations": {
        BY: ctx.identity,
        TERM: term.number().to_string(),
        AT: at.to_string(),
    }}});
    ctx.api
        .patch(
            cm.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(ReconcileError::Api)?;
    println!(
        "reconciled {}/{} by={} term={} at={at}",
        cm.namespace().unwrap_or_default(),
        cm.name_any(),
        ctx.identity,
        term.number()
    );
    ctx.recorder.publish(
        &kube_runtime::events::object_reference(&*cm),
        NewEvent::new(EventType::Normal, "Reconciled", "Reconcile").note(format!(
            "stamped by {} in term {}",
            ctx.identity,
            term.number()
        )),
    );
    Ok(Action::requeue(ctx.requeue))
}

fn error_policy(cm: Arc<ConfigMap>, error: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    if !matches!(error, ReconcileError::NotLeading) {
        eprintln!("reconciling {}: {error}", cm.name_any());
        ctx.recorder.publish(
            &kube_runtime::events::object_reference(&*cm),
            NewEvent::new(EventType::Warning, "ReconcileFailed", "Reconcile")
                .note(error.to_string()),
        );
    }
    default_error_policy(cm, error, ctx)
}

/// What triggers a reconcile: the data and the labels, not the annotations
/// the reconcile itself writes.
fn data_and_labels(cm: &ConfigMap) -> Option<u64> {
    let mut h = DefaultHasher::new();
    let binary = cm.binary_data.as_ref().map(|b| {
        b.iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect::<Vec<_>>()
    });
    (&cm.data, binary, &cm.metadata.labels).hash(&mut h);
    Some(h.finish())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let settings = Settings::from_env()?;

    // Metrics: controller-runtime's families, the client's requests among them.
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let config = kube_client::config::Config::infer().context("loading the kubeconfig")?;
    let client = Client::builder(config)
        .request_observer(metrics.client())
        .build()
        .context("building the client")?;
    let namespace = settings
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);

    // Leader election on a Lease next to the ConfigMaps.
    let elector = LeaderElector::new(
        Api::<Lease>::namespaced(client.clone(), &namespace),
        &settings.lease,
        &settings.identity,
        settings.election.clone(),
    )?;
    let leader = elector.handle();
    tokio::spawn(report_leadership(
        leader.clone(),
        metrics.leader_election(&settings.lease),
    ));
    let mut leading = leader.subscribe();
    let watching = leader.clone();
    tokio::spawn(async move {
        loop {
            if *leading.borrow_and_update() {
                let term = watching.status().term;
                println!("leading term={term} at={}", micros_now());
            } else {
                println!("standing by at={}", micros_now());
            }
            if leading.changed().await.is_err() {
                return;
            }
        }
    });
    let election = tokio::spawn(elector.run());

    // Events, as this replica.
    let (recorder, events_task) = Recorder::new(
        client.clone(),
        Reporter::new(CONTROLLER, &settings.identity),
        RecorderConfig::default(),
    );
    let events_task = tokio::spawn(events_task);

    let controller = Controller::new(
        api.clone(),
        TriggerConfig::new(WatcherConfig::default().labels(MANAGED)).predicate(data_and_labels),
    )
    .with_config(Config::default().metrics(metrics.controller("operator")))
    .leader_election(leader.clone())
    .shutdown_on_signal();

    // /metrics, /healthz, /readyz.
    let cache = controller.store();
    let mut admin = AdminServer::bind(settings.admin_addr.as_str())
        .metrics(registry)
        .ready_when("caches", move || cache.is_ready());
    if settings.ready_only_when_leading {
        let leader = leader.clone();
        admin = admin.ready_when("leader", move || leader.is_leader());
    }
    let admin = admin.spawn().await?;
    println!("admin listening on {}", admin.local_addr());
    println!(
        "identity {} reconciling ConfigMaps labelled {MANAGED} in {namespace}",
        settings.identity
    );

    let ctx = Arc::new(Ctx {
        api,
        identity: settings.identity.clone(),
        recorder,
        requeue: settings.requeue,
    });
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    // The controller released the lease; the elector has stopped.
    let _ = tokio::time::timeout(Duration::from_secs(5), election).await;
    // Every Recorder clone is gone with the controller: the task writes what
    // is pending, then ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), events_task).await;
    admin.shutdown().await;
    println!("stopped at={}", micros_now());
    Ok(())
}
