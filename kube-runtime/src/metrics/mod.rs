//! Prometheus metrics under controller-runtime's names, so that existing
//! dashboards and alerts work unchanged.
//!
//! A controller written with controller-runtime exposes a well-known set of
//! metrics (`controller_runtime_reconcile_total`, `workqueue_depth`,
//! `rest_client_requests_total`, …) and most operator dashboards and alert
//! rules are written against those names and labels. [`Metrics`] registers
//! the same families, with the same label names, histogram buckets and
//! meaning, in a [`prometheus_client`] [`Registry`]; the work queue, the
//! runner, the client and leader election record into them through small
//! handles:
//!
//! | handle | from | records |
//! |---|---|---|
//! | [`ControllerMetrics`] | [`Metrics::controller`] | `controller_runtime_*`, given to [`RunnerConfig::metrics`](crate::controller::RunnerConfig::metrics) |
//! | [`QueueMetrics`] | [`ControllerMetrics::queue`] or [`Metrics::queue`] | `workqueue_*`, given to [`WorkQueueConfig::metrics`](crate::controller::WorkQueueConfig::metrics) |
//! | [`ClientMetrics`] | [`Metrics::client`] | `rest_client_*`, given to [`ClientBuilder::request_observer`](kube_client::ClientBuilder::request_observer) |
//! | [`LeaderElectionMetrics`] | [`Metrics::leader_election`] | `leader_election_master_status` |
//!
//! The families and what they mean (names as exposed; `controller` and
//! `name` carry the controller's name, `name` of leader election the lease's):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `controller_runtime_reconcile_total` | counter | `controller`, `result` (`success`, `error`, `requeue`, `requeue_after`) |
//! | `controller_runtime_reconcile_errors_total` | counter | `controller` |
//! | `controller_runtime_reconcile_panics_total` | counter | `controller` |
//! | `controller_runtime_reconcile_time_seconds` | histogram | `controller` |
//! | `controller_runtime_active_workers` | gauge | `controller` |
//! | `controller_runtime_max_concurrent_reconciles` | gauge | `controller` |
//! | `workqueue_depth` | gauge | `name`, `controller` |
//! | `workqueue_adds_total` | counter | `name`, `controller` |
//! | `workqueue_retries_total` | counter | `name`, `controller` |
//! | `workqueue_queue_duration_seconds` | histogram | `name`, `controller` |
//! | `workqueue_work_duration_seconds` | histogram | `name`, `controller` |
//! | `workqueue_unfinished_work_seconds` | gauge | `name`, `controller` |
//! | `workqueue_longest_running_processor_seconds` | gauge | `name`, `controller` |
//! | `leader_election_master_status` | gauge | `name` |
//! | `rest_client_requests_total` | counter | `code`, `method`, `host` |
//! | `rest_client_request_duration_seconds` | histogram | `verb`, `host` |
//!
//! How our actions map onto controller-runtime's `result` label: a
//! reconcile that returned `Ok(Action::await_change())` is `success`,
//! `Ok(Action::requeue(d))` is `requeue_after`, `Ok(Action::backoff())` is
//! `requeue` (controller-runtime's `Requeue: true`, a rate-limited requeue),
//! and every `Err` or panic is `error` (a panic also counts in
//! `reconcile_panics_total`, as in controller-runtime).
//!
//! Guarantees:
//! - **Exact names.** OpenMetrics names a counter family without its
//!   `_total` suffix and appends it to the sample; the families are
//!   registered so that the *exposed* samples are exactly
//!   controller-runtime's (`controller_runtime_reconcile_total`, never
//!   `…_total_total`), in both the OpenMetrics and the classic Prometheus
//!   text format.
//! - **Cheap when off.** Every hook is an `Option` checked once; with no
//!   metrics configured the queue and runner do no extra work beyond that.
//!   When on, counters and gauges are atomics bound to their labels once
//!   (no label lookups per reconcile or per add); the queue's scrape-time
//!   gauges (`depth`, `unfinished_work_seconds`,
//!   `longest_running_processor_seconds`) are computed when scraped, from
//!   the queue's own state, so they are exact at that moment and cost
//!   nothing between scrapes.
//! - **Bounded cardinality.** Labels are controller and lease names, HTTP
//!   methods, status codes and the API server's host: never object names or
//!   paths.
//!
//! The `workqueue_*` families carry `name` and `controller` (both the
//! controller's name), as controller-runtime ≥ 0.20 does; controller-runtime
//! also puts an empty `priority` label on `workqueue_depth`, which
//! Prometheus treats as absent, so it is left out. The client duration
//! histogram uses client-go's (component-base's) buckets and labels.

mod client;
pub(crate) mod controller;
pub(crate) mod workqueue;

use std::sync::Arc;

pub use prometheus_client;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use client::ClientMetrics;
pub use controller::ControllerMetrics;
pub use workqueue::QueueMetrics;

/// controller-runtime's buckets for `controller_runtime_reconcile_time_seconds`.
pub const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// client-go's buckets for the work queue's durations: 10 ns to 1000 s,
/// by factors of ten.
pub const WORKQUEUE_DURATION_BUCKETS: [f64; 12] = [
    1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0,
];

/// client-go's (component-base's) buckets for
/// `rest_client_request_duration_seconds`.
pub const REST_CLIENT_DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct QueueLabels {
    name: String,
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    name: String,
}

/// Every family, shared by the handles.
#[derive(Debug)]
struct Families {
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabels, Counter>,
    reconcile_panics: Family<ControllerLabels, Counter>,
    reconcile_time: HistogramFamily<ControllerLabels>,
    active_workers: Family<ControllerLabels, Gauge>,
    max_concurrent_reconciles: Family<ControllerLabels, Gauge>,
    /// Every `workqueue_*` family (encoded by this collector).
    queue: Arc<workqueue::QueueCollector>,
    leader_status: Family<LeaseLabels, Gauge>,
    rest_requests: Family<client::RequestLabels, Counter>,
    rest_duration: HistogramFamily<client::DurationLabels>,
}

/// controller-runtime's metric families in a registry; hands out the
/// handles that record into them. Cheap to clone.
///
/// ```
/// use kube_runtime::controller::{RunnerConfig, WorkQueue, WorkQueueConfig};
/// use kube_runtime::metrics::{Metrics, prometheus_client::registry::Registry};
///
/// let mut registry = Registry::default();
/// let metrics = Metrics::register(&mut registry);
/// let configmaps = metrics.controller("configmaps");
/// let queue_config = WorkQueueConfig::default().metrics(configmaps.queue());
/// let runner_config = RunnerConfig::default().metrics(configmaps);
/// # let _: WorkQueue<String> = WorkQueue::new(queue_config);
/// # let _ = runner_config;
/// ```
#[derive(Debug, Clone)]
pub struct Metrics {
    families: Arc<Families>,
}

fn reconcile_time_histogram() -> Histogram {
    Histogram::new(RECONCILE_TIME_BUCKETS)
}

fn workqueue_histogram() -> Histogram {
    Histogram::new(WORKQUEUE_DURATION_BUCKETS)
}

fn rest_client_histogram() -> Histogram {
    Histogram::new(REST_CLIENT_DURATION_BUCKETS)
}

impl Metrics {
    /// Registers every family in `registry` (each once: call this once per
    /// registry) and returns the handle factory.
    pub fn register(registry: &mut Registry) -> Self {
        let families = Families {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_panics: Family::default(),
            reconcile_time: Family::new_with_constructor(reconcile_time_histogram as fn() -> _),
            active_workers: Family::default(),
            max_concurrent_reconciles: Family::default(),
            queue: Arc::default(),
            leader_status: Family::default(),
            rest_requests: Family::default(),
            rest_duration: Family::new_with_constructor(rest_client_histogram as fn() -> _),
        };
        // Counters are registered without `_total`: the encoder appends it.
        let f = &families;
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            f.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            f.reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            f.reconcile_panics.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            f.reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            f.active_workers.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            f.max_concurrent_reconciles.clone(),
        );
        registry.register_collector(Box::new(f.queue.clone()));
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates \
             backup, 1 indicates master. 'name' is the string used to identify the lease",
            f.leader_status.clone(),
        );
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            f.rest_requests.clone(),
        );
        registry.register(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host",
            f.rest_duration.clone(),
        );
        Self {
            families: Arc::new(families),
        }
    }

    /// The handle of controller `name` (the `controller` label), with the
    /// queue handle of the same name ([`ControllerMetrics::queue`]). Names
    /// should be unique per process, as in controller-runtime; two handles
    /// of one name share their series.
    pub fn controller(&self, name: &str) -> ControllerMetrics {
        ControllerMetrics::new(&self.families, name)
    }

    /// The handle of a work queue `name` on its own (the `name` and
    /// `controller` labels).
    pub fn queue(&self, name: &str) -> QueueMetrics {
        QueueMetrics::new(&self.families, name)
    }

    /// The observer of a [`Client`](kube_client::Client)'s requests; give it
    /// to [`ClientBuilder::request_observer`](kube_client::ClientBuilder::request_observer).
    pub fn client(&self) -> Arc<ClientMetrics> {
        Arc::new(ClientMetrics::new(&self.families))
    }

    /// The handle leader election sets for lease `name`.
    pub fn leader_election(&self, name: &str) -> LeaderElectionMetrics {
        let status = self
            .families
            .leader_status
            .get_or_create_owned(&LeaseLabels { name: name.into() });
        // The series exists (as 0, standby) from the start.
        status.set(status.get());
        LeaderElectionMetrics { status }
    }
}

/// `leader_election_master_status{name}` for one lease: 1 while this
/// process leads, 0 otherwise. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LeaderElectionMetrics {
    status: Gauge,
}

impl LeaderElectionMetrics {
    /// Records whether this process holds the lease now.
    pub fn set_leading(&self, leading: bool) {
        self.status.set(i64::from(leading));
    }

    /// Whether the gauge says this process leads.
    pub fn is_leading(&self) -> bool {
        self.status.get() == 1
    }
}

#[cfg(test)]
mod tests;
