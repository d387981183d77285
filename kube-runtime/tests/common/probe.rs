//! A reconcile that records what it sees: how many run at once (overall and
//! per object), how often each object is reconciled, and the last version
//! of each it was given.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::ResourceExt;
use kube_runtime::controller::{Action, Error};
use parking_lot::Mutex;

#[derive(Default)]
pub struct Probe {
    pub delay: Duration,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    active: Mutex<HashSet<String>>,
    /// Reconciles of one key that started while another was running.
    pub overlaps: AtomicUsize,
    pub counts: Mutex<HashMap<String, usize>>,
    /// The `data.k` of the last version each reconcile was given.
    pub last_seen: Mutex<HashMap<String, String>>,
}

impl Probe {
    pub fn with_delay(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            ..Self::default()
        })
    }

    pub async fn reconcile(
        obj: Arc<ConfigMap>,
        probe: Arc<Probe>,
    ) -> Result<Action, kube_client::Error> {
        let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
        if !probe.active.lock().insert(key.clone()) {
            probe.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let now = probe.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        probe.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(probe.delay).await;
        let data = obj
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .cloned()
            .unwrap_or_default();
        *probe
            .counts
            .lock()
            .entry(obj.name_any().to_string())
            .or_default() += 1;
        probe
            .last_seen
            .lock()
            .insert(obj.name_any().to_string(), data);
        probe.in_flight.fetch_sub(1, Ordering::SeqCst);
        probe.active.lock().remove(&key);
        Ok(Action::await_change())
    }

    pub fn count(&self, name: &str) -> usize {
        self.counts.lock().get(name).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.counts.lock().values().sum()
    }

    pub fn reconciled(&self) -> usize {
        self.counts.lock().len()
    }

    /// Waits (bounded) until `done` holds.
    pub async fn until(&self, what: &str, secs: u64, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {secs} s ({} objects reconciled, {} reconciles)",
                self.reconciled(),
                self.total()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub type Item =
    Result<(kube_runtime::controller::ObjectRef<ConfigMap>, Action), Error<kube_client::Error>>;

/// Drains a controller's stream in a task; the items are kept.
pub fn drain(
    stream: impl futures::Stream<Item = Item> + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                sink.lock().push(e.to_string());
            }
        }
    });
    (errors, task)
}
