//! The driver: random creates, updates and deletes of ConfigMaps, straight
//! to kube-apiserver (not through the fault proxy), for the whole soak.
//!
//! It keeps the population between [`MIN_OBJECTS`] and [`MAX_OBJECTS`],
//! making one change every [`PERIOD`]. Requests fail while the API server
//! is down; they are counted and the driver carries on. Each request is
//! bounded by [`REQUEST_TIMEOUT`]. [`Driver::pause`] waits for the change in
//! flight to finish and holds the driver still until the returned guard is
//! dropped, so that the soak can compare caches with a list that stays true.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::Api;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Fewest objects the driver keeps (it only creates below).
const MIN_OBJECTS: usize = 40;
/// Most objects the driver keeps (it only deletes above).
const MAX_OBJECTS: usize = 160;
/// Time between two changes.
const PERIOD: Duration = Duration::from_millis(80);
/// The longest one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Changes made so far, by outcome.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Successful creates.
    pub(super) created: AtomicU64,
    /// Successful updates.
    pub(super) updated: AtomicU64,
    /// Successful deletes.
    pub(super) deleted: AtomicU64,
    /// Requests that failed or timed out (server away, conflicts).
    pub(super) failed: AtomicU64,
}

/// The running driver.
pub(super) struct Driver {
    gate: Arc<Mutex<()>>,
    /// What it has done so far.
    pub(super) changes: Arc<Changes>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Driver {
    /// Starts changing ConfigMaps through `api` (namespaced).
    pub(super) fn start(api: Api<ConfigMap>) -> Self {
        let gate = Arc::new(Mutex::new(()));
        let changes = Arc::new(Changes::default());
        let task = tokio::spawn(drive(api, gate.clone(), changes.clone()));
        Self {
            gate,
            changes,
            task,
        }
    }

    /// Waits for the change in flight, then keeps the driver still until
    /// the guard is dropped.
    pub(super) async fn pause(&self) -> OwnedMutexGuard<()> {
        self.gate.clone().lock_owned().await
    }
}

fn config_map(name: &str, generation: u64) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("soak".into(), "true".into())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("generation".into(), generation.to_string()),
            ("payload".into(), "x".repeat(200)),
        ])),
        ..ConfigMap::default()
    }
}

async fn drive(api: Api<ConfigMap>, gate: Arc<Mutex<()>>, changes: Arc<Changes>) {
    // Names the driver believes exist (it learns from its own answers).
    let mut names: Vec<String> = Vec::new();
    let mut serial = 0u64;
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let _held = gate.lock().await;
        serial += 1;
        let create =
            names.len() < MIN_OBJECTS || (names.len() < MAX_OBJECTS && fastrand::u8(0..3) == 0);
        let delete = !create && names.len() > MIN_OBJECTS && fastrand::u8(0..3) == 0;
        let outcome = if create {
            let name = format!("soak-{serial}");
            let cm = config_map(&name, serial);
            let result = timed(api.create(&PostParams::default(), &cm)).await;
            if result.is_ok() {
                names.push(name);
            }
            result.map(|_| &changes.created)
        } else if delete {
            let name = names.swap_remove(fastrand::usize(0..names.len()));
            let result = timed(api.delete(&name, &DeleteParams::default())).await;
            match result {
                Err(Some(e)) if !e.is_not_found() => {
                    names.push(name); // still there, probably
                    Err(Some(e))
                }
                other => other.map(|_| &changes.deleted),
            }
        } else {
            let name = names[fastrand::usize(0..names.len())].clone();
            let patch = json!({"data": {"generation": serial.to_string()}});
            let result =
                timed(api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))).await;
            if let Err(Some(e)) = &result
                && e.is_not_found()
            {
                names.retain(|n| *n != name);
            }
            result.map(|_| &changes.updated)
        };
        match outcome {
            Ok(counter) => counter.fetch_add(1, Ordering::Relaxed),
            Err(_) => changes.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// A request bounded by [`REQUEST_TIMEOUT`]; `Err(None)` when it timed out.
async fn timed<T>(
    request: impl Future<Output = kube_client::Result<T>>,
) -> Result<T, Option<kube_client::Error>> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}
