//! The work queue's metrics: client-go's `workqueue_*` for one queue.
//!
//! Two kinds of series:
//! - **Events** — `adds_total`, `retries_total`, `queue_duration_seconds`,
//!   `work_duration_seconds` — are recorded by the queue as they happen,
//!   into counters and histograms bound to the queue's labels once.
//! - **State** — `depth`, `unfinished_work_seconds`,
//!   `longest_running_processor_seconds` — is read from the queue when the
//!   registry is scraped: the queue registers a weak *probe* of itself, and
//!   the [`QueueCollector`] asks every live probe for a [`QueueSample`].
//!   The values are exact at scrape time (a delayed key that came due is
//!   counted even while every worker is busy), nothing is maintained
//!   between scrapes, and a dropped queue disappears from the output at the
//!   next scrape.
//!
//! Every `workqueue_*` family is encoded by the one collector, after the
//! probes were sampled: sampling moves keys that came due to the ready
//! list (counting their adds), so one scrape shows adds and depth that
//! agree.
//!
//! Meanings, as in client-go: *depth* is the number of keys due and not yet
//! handed to a worker (a key due again while it is being reconciled counts);
//! an *add* is a key becoming due when it was not (so adds and depth move
//! together, and a burst of adds of one queued key is one add); a *retry*
//! is every delayed add (`add_after`, and so `add_rate_limited`); queue
//! duration runs from a key becoming due to a worker taking it, work
//! duration from taking it to `done`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;

use super::{Families, HistogramFamily, QueueLabels, workqueue_histogram};

/// What a queue reports at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct QueueSample {
    /// Keys due and not handed out.
    pub(crate) depth: usize,
    /// The summed age of every key being processed.
    pub(crate) unfinished: Duration,
    /// The age of the oldest key being processed.
    pub(crate) longest: Duration,
}

/// A queue that can be sampled; implemented by the work queue's state.
pub(crate) trait QueueProbe: Send + Sync {
    /// The queue's state now.
    fn sample(&self) -> QueueSample;
}

/// The collector of every queue's `workqueue_*` series.
pub(super) struct QueueCollector {
    adds: Family<QueueLabels, Counter>,
    retries: Family<QueueLabels, Counter>,
    queue_duration: HistogramFamily<QueueLabels>,
    work_duration: HistogramFamily<QueueLabels>,
    probes: Mutex<Vec<(QueueLabels, Weak<dyn QueueProbe>)>>,
}

impl Default for QueueCollector {
    fn default() -> Self {
        Self {
            adds: Family::default(),
            retries: Family::default(),
            queue_duration: Family::new_with_constructor(workqueue_histogram as fn() -> _),
            work_duration: Family::new_with_constructor(workqueue_histogram as fn() -> _),
            probes: Mutex::default(),
        }
    }
}

impl fmt::Debug for QueueCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueCollector")
            .field("queues", &self.probes.lock().len())
            .finish_non_exhaustive()
    }
}

impl QueueCollector {
    fn add(&self, labels: QueueLabels, probe: Weak<dyn QueueProbe>) {
        let mut probes = self.probes.lock();
        probes.retain(|(_, p)| p.strong_count() > 0);
        probes.push((labels, probe));
    }

    /// One sample per label set: queues sharing a name are summed (the
    /// longest-running processor is the longest of them).
    fn samples(&self) -> BTreeMap<QueueLabels, QueueSample> {
        let live: Vec<(QueueLabels, Arc<dyn QueueProbe>)> = {
            let mut probes = self.probes.lock();
            probes.retain(|(_, p)| p.strong_count() > 0);
            probes
                .iter()
                .filter_map(|(l, p)| Some((l.clone(), p.upgrade()?)))
                .collect()
        };
        // Sampled outside our lock: each probe takes its queue's lock.
        let mut merged = BTreeMap::<QueueLabels, QueueSample>::new();
        for (labels, probe) in live {
            let s = probe.sample();
            let m = merged.entry(labels).or_default();
            m.depth += s.depth;
            m.unfinished += s.unfinished;
            m.longest = m.longest.max(s.longest);
        }
        merged
    }
}

impl Collector for QueueCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // First: sampling promotes due keys, which counts their adds.
        let samples = self.samples();
        // Counters are named without `_total`: the encoder appends it.
        let families: [(&str, &str, &dyn EncodeMetric, bool); 4] = [
            (
                "workqueue_adds",
                "Total number of adds handled by workqueue",
                &self.adds,
                self.adds.is_empty(),
            ),
            (
                "workqueue_retries",
                "Total number of retries handled by workqueue",
                &self.retries,
                self.retries.is_empty(),
            ),
            (
                "workqueue_queue_duration_seconds",
                "How long in seconds an item stays in workqueue before being requested",
                &self.queue_duration,
                self.queue_duration.is_empty(),
            ),
            (
                "workqueue_work_duration_seconds",
                "How long in seconds processing an item from workqueue takes",
                &self.work_duration,
                self.work_duration.is_empty(),
            ),
        ];
        for (name, help, family, empty) in families {
            if !empty {
                family.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    family.metric_type(),
                )?)?;
            }
        }
        if samples.is_empty() {
            return Ok(());
        }
        let mut gauge = |name: &str, help: &str, value: &dyn Fn(&QueueSample) -> f64| {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (labels, sample) in &samples {
                ConstGauge::new(value(sample)).encode(family.encode_family(labels)?)?;
            }
            Ok::<(), fmt::Error>(())
        };
        gauge("workqueue_depth", "Current depth of workqueue", &|s| {
            s.depth as f64
        })?;
        gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been \
             observed by work_duration. Large values indicate stuck threads. One can deduce \
             the number of stuck threads by observing the rate at which this increases",
            &|s| s.unfinished.as_secs_f64(),
        )?;
        gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            &|s| s.longest.as_secs_f64(),
        )?;
        Ok(())
    }
}

struct Handles {
    labels: QueueLabels,
    adds: Counter,
    retries: Counter,
    queue_duration: Histogram,
    work_duration: Histogram,
    collector: Arc<QueueCollector>,
}

/// The `workqueue_*` series of one queue; give it to
/// [`WorkQueueConfig::metrics`](crate::controller::WorkQueueConfig::metrics).
/// Cheap to clone; clones record into the same series. Two handles are
/// equal when they are clones of one another.
#[derive(Clone)]
pub struct QueueMetrics {
    handles: Arc<Handles>,
}

impl fmt::Debug for QueueMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueMetrics")
            .field("name", &self.handles.labels.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for QueueMetrics {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handles, &other.handles)
    }
}

impl QueueMetrics {
    pub(super) fn new(families: &Families, name: &str) -> Self {
        let labels = QueueLabels {
            name: name.into(),
            controller: name.into(),
        };
        Self {
            handles: Arc::new(Handles {
                adds: families.queue.adds.get_or_create_owned(&labels),
                retries: families.queue.retries.get_or_create_owned(&labels),
                queue_duration: families.queue.queue_duration.get_or_create_owned(&labels),
                work_duration: families.queue.work_duration.get_or_create_owned(&labels),
                collector: families.queue.clone(),
                labels,
            }),
        }
    }

    /// The queue's name (its `name` label).
    pub fn name(&self) -> &str {
        &self.handles.labels.name
    }

    /// Reports `probe`'s state at every scrape while it lives.
    pub(crate) fn register_probe(&self, probe: Weak<dyn QueueProbe>) {
        self.handles
            .collector
            .add(self.handles.labels.clone(), probe);
    }

    /// A key became due.
    pub(crate) fn added(&self) {
        self.handles.adds.inc();
    }

    /// A delayed add was made.
    pub(crate) fn retried(&self) {
        self.handles.retries.inc();
    }

    /// A key waited `waited` between becoming due and being handed out.
    pub(crate) fn handed_out(&self, waited: Duration) {
        self.handles.queue_duration.observe(waited.as_secs_f64());
    }

    /// A key was processed for `took`.
    pub(crate) fn finished(&self, took: Duration) {
        self.handles.work_duration.observe(took.as_secs_f64());
    }
}
