//! `cargo xtask soak --minutes N`: reflectors under chaos, checked for lost
//! and stale objects after every fault, with the time each took to catch up.
//!
//! 1. Starts a control plane of its own (etcd + kube-apiserver, kube-testenv)
//!    and the fault proxy ([`proxy`]) in front of kube-apiserver.
//! 2. Starts the subjects ([`subjects`]): reflectors of every kind (typed,
//!    dynamic, metadata only) and initial-state mode (streaming list, list
//!    then watch), default settings, all connected through the proxy.
//! 3. Starts the driver ([`driver`]): random creates, updates and deletes of
//!    ConfigMaps, straight to kube-apiserver, for the whole run.
//! 4. Runs rounds until N minutes have passed (and at least one of each
//!    fault): a few seconds of changes, then one fault, in rotation —
//!    - **cut**: the proxy drops every connection mid-stream;
//!    - **429**: the proxy answers every request `429 Too Many Requests`
//!      (with `Retry-After`) for a few seconds;
//!    - **restart**: kube-apiserver stopped and started again (its new watch
//!      cache answers 410 to every resume);
//!    - **compaction**: the proxy disconnects the reflectors, changes go on,
//!      etcd is compacted past them and kube-apiserver restarted, then they
//!      reconnect (410 on resume, relist, deletions found by the relist).
//!
//!    When the fault is over — the cut made, the 429 window ended, `/readyz`
//!    answering 200 again, the proxy reconnected — the driver is held still,
//!    a probe change is made (one object created, the last round's deleted:
//!    a cache can only be current once its watch delivers again), and every
//!    subject is compared with a fresh list (key and resourceVersion) until
//!    it equals one, for at most [`CATCH_UP_BOUND`]: the time from the end of
//!    the fault is its catch-up time; whatever still differs then is counted
//!    lost or stale.
//! 5. Prints rounds, faults by kind, events seen, objects lost and stale,
//!    and the catch-up time per fault kind (median and max), each restart's
//!    on its own against the 1 s target; fails if anything was lost or stale.

mod driver;
mod proxy;
mod report;
mod subjects;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube_client::params::{DeleteParams, ListParams, PostParams};
use kube_client::{Api, Client};
use kube_testenv::ControlPlane;
use tokio::time::Instant;

use driver::Driver;
use proxy::FaultProxy;
use report::{Divergence, Round, Tally};
use subjects::{Subject, View, key_of};

const NAMESPACE: &str = "kube-soak";
/// Changes before each fault.
const CHURN: Duration = Duration::from_secs(5);
/// How long the proxy answers 429.
const THROTTLE: Duration = Duration::from_secs(6);
/// How long the reflectors are disconnected before a compaction.
const AWAY: Duration = Duration::from_secs(2);
/// How long a subject may take to equal a fresh list after a fault.
const CATCH_UP_BOUND: Duration = Duration::from_secs(60);
/// Time between two comparisons while waiting for the subjects.
const POLL: Duration = Duration::from_millis(50);

const USAGE: &str = "usage: cargo xtask soak [--minutes N]

  --minutes N   how long the rounds go on (default 5; fractions allowed); at least one
                round of each fault (cut, 429, restart, compaction) runs in any case";

/// The faults, in the order the rounds rotate through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Fault {
    /// kube-apiserver stopped and started again.
    Restart,
    /// Disconnected, etcd compacted, kube-apiserver restarted, reconnected.
    Compaction,
    /// Every connection dropped mid-stream by the proxy.
    Cut,
    /// Every request answered 429 by the proxy for a while.
    TooManyRequests,
}

impl Fault {
    const ROTATION: [Fault; 4] = [
        Fault::Cut,
        Fault::TooManyRequests,
        Fault::Restart,
        Fault::Compaction,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::Restart => "restart",
            Fault::Compaction => "compaction",
            Fault::Cut => "cut",
            Fault::TooManyRequests => "429",
        }
    }

    /// The row label of the report: the fault and where its clock starts.
    fn measured_from(self) -> &'static str {
        match self {
            Fault::Restart => "restart (from readyz ok)",
            Fault::Compaction => "compaction (from reconnecting)",
            Fault::Cut => "cut (from the cut)",
            Fault::TooManyRequests => "429 (from the window's end)",
        }
    }
}

struct Options {
    minutes: f64,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Self> {
        let mut minutes: f64 = 5.0;
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            match flag {
                "--minutes" => {
                    let value = it
                        .next()
                        .with_context(|| format!("--minutes needs a value\n\n{USAGE}"))?;
                    minutes = value
                        .parse()
                        .with_context(|| format!("--minutes `{value}` is not a number"))?;
                }
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown option `{other}`\n\n{USAGE}"),
            }
        }
        ensure!(
            minutes.is_finite() && minutes > 0.0 && minutes <= 24.0 * 60.0,
            "--minutes must be above 0 and at most 1440, not {minutes}"
        );
        Ok(Self { minutes })
    }
}

pub fn run(args: &[&str]) -> Result<()> {
    let opts = Options::parse(args)?;
    println!("==> soak: control plane");
    let binaries = crate::controlplane::build(Default::default())?;
    let plane = Arc::new(ControlPlane::start(&binaries)?);
    println!("    kube-apiserver {} ready", plane.server_url());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(soak(plane.clone(), &opts));
    drop(rt); // ends the reflectors, the driver and the proxy
    let (tally, changes) = outcome?;
    print!("{}", tally.table(&changes));
    let d = tally.divergence();
    ensure!(
        d.is_none(),
        "soak: {} objects lost and {} stale after the catch-up bound of {} s",
        d.lost,
        d.stale,
        CATCH_UP_BOUND.as_secs()
    );
    Ok(())
}

fn client_of(plane: &ControlPlane, server: Option<SocketAddr>) -> Result<Client> {
    let kc = kube_client::config::Kubeconfig::read_from(plane.kubeconfig())?;
    let mut config = kube_client::config::Config::from_kubeconfig(&kc, &Default::default())?;
    if let Some(addr) = server {
        config.cluster_url = format!("https://{addr}").parse()?;
    }
    Ok(Client::try_from(config)?)
}

async fn soak(plane: Arc<ControlPlane>, opts: &Options) -> Result<(Tally, Arc<driver::Changes>)> {
    let direct = client_of(&plane, None)?;
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(direct.clone())
        .create(&PostParams::default(), &ns)
        .await
        .context("create the soak namespace")?;

    let upstream: SocketAddr = plane
        .server_url()
        .trim_start_matches("https://")
        .parse()
        .context("kube-apiserver address")?;
    let read = |name: &str| {
        let path = plane.dir().join(name);
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    };
    let proxy =
        FaultProxy::start(upstream, &read("apiserver.crt")?, &read("apiserver.key")?).await?;
    let proxied = client_of(&plane, Some(proxy.addr))?;
    let config_maps: Api<ConfigMap> = Api::namespaced(direct, NAMESPACE);

    let driver = Driver::start(config_maps.clone());
    let subjects = subjects::reflectors(&proxied, NAMESPACE);
    let names: Vec<String> = subjects.iter().map(|s| s.name().to_string()).collect();
    println!(
        "==> soak: {} caches through the fault proxy at {}",
        names.len(),
        proxy.addr
    );
    let (synced, _) = catch_up(&subjects, &config_maps, Instant::now()).await;
    ensure!(
        synced.iter().all(Option::is_some),
        "the caches did not complete their initial sync within {} s",
        CATCH_UP_BOUND.as_secs()
    );

    let duration = Duration::from_secs_f64(opts.minutes * 60.0);
    println!("==> soak: rounds for {:.1} min", opts.minutes);
    let started = Instant::now();
    let mut rounds = Vec::new();
    while started.elapsed() < duration || rounds.len() < Fault::ROTATION.len() {
        let fault = Fault::ROTATION[rounds.len() % Fault::ROTATION.len()];
        tokio::time::sleep(CHURN).await;
        let (over, paused) = inject(fault, &plane, &proxy, &driver).await?;
        probe(&config_maps, rounds.len()).await;
        let (catch_up, divergence) = catch_up(&subjects, &config_maps, over).await;
        drop(paused);
        let round = Round {
            fault,
            catch_up,
            divergence,
        };
        println!(
            "    round {:>3} {:<10} caches caught up in {}",
            rounds.len() + 1,
            fault.name(),
            round
                .slowest()
                .map_or("NEVER (see the report)".into(), |d| format!(
                    "{:.2} s",
                    d.as_secs_f64()
                ))
        );
        rounds.push(round);
    }
    let tally = Tally {
        subjects: names,
        rounds,
        received: subjects.iter().map(|s| s.received()).collect(),
        throttled_requests: proxy.throttled_requests(),
        elapsed: started.elapsed(),
    };
    Ok((tally, driver.changes.clone()))
}

/// Injects `fault`; returns when it is over (that instant) with the driver
/// held still. The driver is paused while the API server is up, so that
/// pausing costs one request, never a timeout against a stopped server.
async fn inject(
    fault: Fault,
    plane: &Arc<ControlPlane>,
    proxy: &FaultProxy,
    driver: &Driver,
) -> Result<(Instant, tokio::sync::OwnedMutexGuard<()>)> {
    let restart = |compact: bool| {
        let plane = plane.clone();
        async move {
            tokio::task::spawn_blocking(move || -> Result<()> {
                if compact {
                    plane.compact_etcd()?;
                }
                plane.stop_apiserver();
                // Returns once /readyz answers 200.
                plane.start_apiserver()?;
                Ok(())
            })
            .await?
        }
    };
    match fault {
        Fault::Cut => {
            proxy.cut();
            let over = Instant::now();
            Ok((over, driver.pause().await))
        }
        Fault::TooManyRequests => {
            proxy.throttle(THROTTLE);
            let over = Instant::now() + THROTTLE;
            tokio::time::sleep_until(over).await;
            Ok((over, driver.pause().await))
        }
        Fault::Restart => {
            let paused = driver.pause().await;
            restart(false).await?;
            Ok((Instant::now(), paused))
        }
        Fault::Compaction => {
            proxy.disconnect();
            tokio::time::sleep(AWAY).await; // changes the reflectors miss
            let paused = driver.pause().await;
            restart(true).await?;
            proxy.reconnect();
            Ok((Instant::now(), paused))
        }
    }
}

/// Changes made right after a fault, so that a cache can only equal a
/// fresh list once its watch delivers again (a fault during which nothing
/// changed would otherwise leave every cache trivially current): creates
/// `probe-<round>` and deletes the previous round's probe. Retried briefly;
/// a probe that cannot be made is reported and the round goes on.
async fn probe(api: &Api<ConfigMap>, round: usize) {
    let mut probe = ConfigMap::default();
    probe.metadata.name = Some(format!("probe-{round}"));
    for attempt in 1..=5 {
        let created = match api.create(&PostParams::default(), &probe).await {
            Err(e) if !e.is_already_exists() => Err(e),
            _ => Ok(()),
        };
        let deleted = match round.checked_sub(1) {
            Some(previous) => match api
                .delete(&format!("probe-{previous}"), &DeleteParams::default())
                .await
            {
                Err(e) if !e.is_not_found() => Err(e),
                _ => Ok(()),
            },
            None => Ok(()),
        };
        match created.and(deleted) {
            Ok(()) => return,
            Err(e) if attempt == 5 => println!("    (probe change failed: {e})"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Compares every subject with fresh lists until each has equalled one or
/// [`CATCH_UP_BOUND`] has passed since `since`; returns each one's catch-up
/// time (`None`: never) and what still differed for those that never did.
async fn catch_up(
    subjects: &[Arc<dyn Subject>],
    api: &Api<ConfigMap>,
    since: Instant,
) -> (Vec<Option<Duration>>, Vec<Divergence>) {
    let mut caught: Vec<Option<Duration>> = vec![None; subjects.len()];
    let mut listed = View::new();
    loop {
        match fresh_list(api).await {
            Ok(fresh) => listed = fresh,
            Err(e) => println!("    (fresh list failed, trying again: {e})"),
        }
        let now = Instant::now();
        for (subject, caught) in subjects.iter().zip(&mut caught) {
            if caught.is_none() && subject.view() == listed {
                *caught = Some(now.saturating_duration_since(since));
            }
        }
        if caught.iter().all(Option::is_some) || now >= since + CATCH_UP_BOUND {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let divergence = subjects
        .iter()
        .zip(&caught)
        .map(|(s, c)| match c {
            Some(_) => Divergence::default(),
            None => Divergence::between(&s.view(), &listed),
        })
        .collect();
    (caught, divergence)
}

/// The soak's objects as the API server lists them now (a consistent read).
async fn fresh_list(api: &Api<ConfigMap>) -> kube_client::Result<View> {
    let items: Vec<ConfigMap> = api
        .list_stream(&ListParams::default())
        .try_collect()
        .await?;
    Ok(items
        .iter()
        .map(|o| {
            let rv = o.metadata.resource_version.clone().unwrap_or_default();
            (key_of(o), rv)
        })
        .collect())
}
