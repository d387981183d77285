//! One leader-election candidate as a process of its own, for the process
//! tests in `kube-runtime/tests/leader_election.rs` (they build it with
//! `cargo build --example leader_election_candidate` and start several).
//!
//! It runs a `LeaderElector` and writes what it does, one line at a time,
//! to the file named by `LE_OUT`:
//!
//! - `acquired TERM MICROS` when a term begins,
//! - `tick TERM MICROS` every 20 ms while it leads — the wall-clock time is
//!   taken *before* checking that the term is still current, so every tick
//!   lies within its term,
//! - `lost TERM MICROS master_status=N` when a term ends,
//! - `stopped MICROS` after SIGTERM made it release the lease and exit.
//!
//! Configured entirely through the environment: `LE_OUT`, `LE_KUBECONFIG`,
//! `LE_NAMESPACE`, `LE_LEASE` (the Lease's name), `LE_IDENTITY`, and the
//! timings `LE_LEASE_DURATION_MS`, `LE_RENEW_DEADLINE_MS`,
//! `LE_RETRY_PERIOD_MS`, `LE_JITTER_FACTOR`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::Lease;
use kube_client::config::{Config, Kubeconfig};
use kube_client::{Api, Client};
use kube_runtime::leader_election::{LeaderElectionConfig, LeaderElector};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn millis(name: &str) -> Duration {
    let v = var(name);
    Duration::from_millis(
        v.parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: not milliseconds: {e}")),
    )
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn append(file: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = PathBuf::from(var("LE_OUT"));
    let jitter = var("LE_JITTER_FACTOR");
    let config = LeaderElectionConfig {
        lease_duration: millis("LE_LEASE_DURATION_MS"),
        renew_deadline: millis("LE_RENEW_DEADLINE_MS"),
        retry_period: millis("LE_RETRY_PERIOD_MS"),
        jitter_factor: jitter
            .parse()
            .unwrap_or_else(|e| panic!("LE_JITTER_FACTOR={jitter:?}: {e}")),
        release_on_shutdown: true,
    };
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let kubeconfig = Kubeconfig::read_from(var("LE_KUBECONFIG")).unwrap();
    let client =
        Client::try_from(Config::from_kubeconfig(&kubeconfig, &Default::default()).unwrap())
            .unwrap();
    let leases: Api<Lease> = Api::namespaced(client, &var("LE_NAMESPACE"));
    let elector =
        LeaderElector::new(leases, &var("LE_LEASE"), &var("LE_IDENTITY"), config).unwrap();
    let handle = elector.handle();
    let election = tokio::spawn(elector.run());

    let lifecycle = {
        let (handle, out) = (handle.clone(), out.clone());
        tokio::spawn(async move {
            while let Some(term) = handle.acquired().await {
                append(
                    &out,
                    &format!("acquired {} {}", term.number(), micros_now()),
                );
                term.ended().await;
                let status = handle.status();
                append(
                    &out,
                    &format!(
                        "lost {} {} master_status={}",
                        term.number(),
                        micros_now(),
                        status.master_status()
                    ),
                );
            }
        })
    };
    let ticks = {
        let (handle, out) = (handle.clone(), out.clone());
        tokio::spawn(async move {
            loop {
                let ts = micros_now();
                if let Some(term) = handle.current_term() {
                    append(&out, &format!("tick {} {ts}", term.number()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    terminate.recv().await;
    ticks.abort();
    handle.release();
    election.await.unwrap();
    lifecycle.await.unwrap();
    append(&out, &format!("stopped {}", micros_now()));
}
