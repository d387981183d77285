//! Events: a trace, on the objects a controller manages, of what it did.
//!
//! An `events.k8s.io/v1` Event says that a controller
//! (`reportingController`, one replica of it: `reportingInstance`) did
//! `action` on the object it is `regarding` (and optionally a `related`
//! one) for `reason`, with a human `note`, as `Normal` or `Warning`.
//! `kubectl describe` and `kubectl get events` show them.
//!
//! The [`Recorder`] publishes them with client-go's `tools/events`
//! semantics:
//!
//! - **Series.** Events with the same type, action, reason, reporter and
//!   objects (client-go's key; the note is *not* part of it) are one
//!   series: the first creates an Event, later ones patch its
//!   `series.count` and `series.lastObservedTime`. Occurrences that arrive
//!   while a write is in flight are counted together, so a burst costs a
//!   create and a patch, not one request each. A series not seen for 6
//!   minutes is finished; the next occurrence creates a new Event.
//! - **Refresh.** Every 30 minutes each open series (two or more
//!   occurrences, not finished) is written again — its `series` patched
//!   with the count and `lastObservedTime` it has — as client-go's
//!   `refreshExistingEventSeries` does; an Event that expired or was deleted
//!   meanwhile is created again with its count.
//! - **Spam filter.** Per source and object, a token bucket of 25 refilled
//!   one per 5 minutes (client-go's `tools/record` filter; see
//!   [`SpamFilter`]): 100 identical events in a burst make one Event with
//!   `series.count` 25. Configurable, or off.
//! - **Never in the way.** [`Recorder::publish`] only puts the event on a
//!   bounded queue (`try_send`) and returns at once: it never waits, never
//!   fails the caller. A full queue drops the event, with a log line and a
//!   counter ([`RecorderStats::dropped_queue_full`]). Writing happens in a
//!   background task; errors are logged and counted, transport errors and
//!   server overload retried a few times, nothing more.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_client::{Api, Client};
//! use kube_runtime::events::{EventType, NewEvent, Recorder, Reporter, object_reference};
//!
//! # async fn demo(cm: ConfigMap) -> Result<(), kube_client::Error> {
//! let client = Client::try_default().await?;
//! let recorder = Recorder::spawn(client, Reporter::new("example.com/my-operator", "pod-a"));
//! recorder.publish(
//!     &object_reference(&cm),
//!     NewEvent::new(EventType::Normal, "Synced", "Reconcile").note("copied 3 keys"),
//! );
//! # Ok(()) }
//! ```

mod series;
mod spam;
mod worker;

pub use spam::SpamFilter;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube_client::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

/// Who reports: the controller's name (`reportingController`, e.g.
/// `example.com/my-operator`) and this replica (`reportingInstance`, e.g.
/// the pod name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reporter {
    /// `reportingController`.
    pub controller: String,
    /// `reportingInstance`.
    pub instance: String,
}

impl Reporter {
    /// A reporter named `controller`, replica `instance`.
    pub fn new(controller: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            controller: controller.into(),
            instance: instance.into(),
        }
    }
}

/// `Normal` or `Warning`, the two types the API server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something may need attention.
    Warning,
}

impl EventType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What to publish about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Normal or Warning.
    pub type_: EventType,
    /// Why, in UpperCamelCase (e.g. `ConfigInvalid`); at most 128 bytes.
    pub reason: String,
    /// What was done or failed, in UpperCamelCase (e.g. `Reconcile`); at
    /// most 128 bytes.
    pub action: String,
    /// For humans; cut to the API's limit of 1 kB at a character boundary.
    pub note: Option<String>,
    /// A second object the event is about, if any.
    pub related: Option<ObjectReference>,
}

impl NewEvent {
    /// An event of `type_` for `reason` about `action`, without note.
    pub fn new(type_: EventType, reason: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            type_,
            reason: reason.into(),
            action: action.into(),
            note: None,
            related: None,
        }
    }
    /// With a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
    /// With a related object.
    pub fn related(mut self, related: ObjectReference) -> Self {
        self.related = Some(related);
        self
    }
}

/// The reference to `obj` an Event's `regarding` wants: apiVersion, kind,
/// namespace, name, uid, resourceVersion.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    object_reference_with(obj, &())
}

/// [`object_reference`] for a kind known at run time.
pub fn object_reference_with<K: Resource>(obj: &K, dt: &K::DynamicType) -> ObjectReference {
    let ar = K::api_resource(dt);
    ObjectReference {
        api_version: Some(ar.api_version.clone()),
        kind: Some(ar.kind.clone()),
        namespace: obj.namespace().map(str::to_string),
        name: Some(obj.name_any().to_string()),
        uid: obj.uid().map(str::to_string),
        resource_version: obj.resource_version().map(str::to_string),
        field_path: None,
    }
}

/// The settings of a [`Recorder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Events waiting to be written; more are dropped. Default 1000
    /// (client-go's `maxQueuedEvents`).
    pub queue_capacity: usize,
    /// The spam filter; `None` lets everything through.
    pub spam_filter: Option<SpamFilter>,
    /// A series not seen for this long is finished; the next occurrence
    /// starts a new Event. Default 6 minutes (client-go's `finishTime`).
    pub series_finish: Duration,
    /// Series and spam buckets kept in memory, least recently used
    /// forgotten first. Default 4096 (client-go's LRU size).
    pub cache_capacity: usize,
    /// Attempts per write before giving up on a retryable error (transport,
    /// 429, 5xx). Default 12 (client-go's `maxTriesPerEvent`).
    pub max_tries: u32,
    /// The pause before retrying such a write. Default 10 s (client-go's
    /// sleep between tries).
    pub retry_delay: Duration,
    /// How often open series are written again (see the module docs).
    /// Default 30 minutes (client-go's `refreshTime`); zero is taken as
    /// one second.
    pub series_refresh: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1000,
            spam_filter: Some(SpamFilter::default()),
            series_finish: Duration::from_secs(6 * 60),
            cache_capacity: 4096,
            max_tries: 12,
            retry_delay: Duration::from_secs(10),
            series_refresh: Duration::from_secs(30 * 60),
        }
    }
}

/// What [`Recorder::publish`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Queued for the background task.
    Queued,
    /// Dropped: the queue is full (the writer is behind or stalled).
    QueueFull,
    /// Dropped: the background task has stopped.
    Closed,
}

/// Counters of a [`Recorder`], for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Events accepted by `publish`.
    pub queued: u64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Events dropped by the spam filter.
    pub spam_filtered: u64,
    /// Events taken off the queue by the background task.
    pub processed: u64,
    /// Event objects created.
    pub created: u64,
    /// Series patches written.
    pub patched: u64,
    /// Writes given up (rejected, or out of retries).
    pub failed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    queued: AtomicU64,
    dropped_queue_full: AtomicU64,
    pub(crate) spam_filtered: AtomicU64,
    pub(crate) processed: AtomicU64,
    pub(crate) created: AtomicU64,
    pub(crate) patched: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// One event on its way to the background task.
#[derive(Debug)]
pub(crate) struct Occurrence {
    pub(crate) regarding: ObjectReference,
    pub(crate) event: NewEvent,
    pub(crate) at: tokio::time::Instant,
}

/// Publishes Events; cheap to clone (all clones share one queue and one
/// background task).
#[derive(Debug, Clone)]
pub struct Recorder {
    reporter: Arc<Reporter>,
    queue: mpsc::Sender<Occurrence>,
    counters: Arc<Counters>,
}

impl Recorder {
    /// A recorder and the background task that writes its events, which
    /// the caller must spawn (or await). Until it runs, events wait in the
    /// queue.
    pub fn new(
        client: Client,
        reporter: Reporter,
        config: RecorderConfig,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let reporter = Arc::new(reporter);
        let task = worker::run(client, reporter.clone(), config, receiver, counters.clone());
        (
            Self {
                reporter,
                queue,
                counters,
            },
            task,
        )
    }

    /// A recorder with the default settings, its task spawned on the
    /// current tokio runtime. The task ends when every clone is dropped,
    /// after writing what is pending. To wait for that at shutdown, use
    /// [`new`](Self::new) and keep the task's `JoinHandle`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn`.
    pub fn spawn(client: Client, reporter: Reporter) -> Self {
        let (recorder, task) = Self::new(client, reporter, RecorderConfig::default());
        tokio::spawn(task);
        recorder
    }

    /// Who this recorder reports as.
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Queues `event` about `regarding` and returns at once; never blocks,
    /// never fails the caller. The result says whether it was queued; it
    /// can be ignored (drops are logged and counted).
    pub fn publish(&self, regarding: &ObjectReference, event: NewEvent) -> Published {
        let occurrence = Occurrence {
            regarding: regarding.clone(),
            event,
            at: tokio::time::Instant::now(),
        };
        match self.queue.try_send(occurrence) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Published::Queued
            }
            Err(mpsc::error::TrySendError::Full(o)) => {
                let n = self
                    .counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    reason = %o.event.reason,
                    regarding = o.regarding.name.as_deref().unwrap_or_default(),
                    dropped_so_far = n + 1,
                    "event dropped: the recorder's queue is full"
                );
                Published::QueueFull
            }
            Err(mpsc::error::TrySendError::Closed(o)) => {
                tracing::warn!(reason = %o.event.reason, "event dropped: the recorder's task has stopped");
                Published::Closed
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> RecorderStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RecorderStats {
            queued: get(&c.queued),
            dropped_queue_full: get(&c.dropped_queue_full),
            spam_filtered: get(&c.spam_filtered),
            processed: get(&c.processed),
            created: get(&c.created),
            patched: get(&c.patched),
            failed: get(&c.failed),
        }
    }
}
