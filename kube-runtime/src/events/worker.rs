//! The recorder's background task: spam filter, series, writes.
//!
//! It takes every occurrence already queued before writing (a burst becomes
//! one batch), counts each into its series, then writes what changed: a
//! create for a new series, one merge patch of `series` for all the
//! occurrences since the last write. A patch answered 404 (the Event expired
//! or was deleted) creates the Event again, with its series. Retryable
//! failures (transport, 429, 5xx) are tried again after `retry_delay`, up
//! to `max_tries`; anything else is logged, counted and dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube_client::params::{Patch, PatchParams, PostParams};
use kube_client::{Api, Client};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::spam::Buckets;
use super::{Counters, NewEvent, Occurrence, RecorderConfig, Reporter};

/// The API's limit on `note`.
const MAX_NOTE_BYTES: usize = 1024;
/// Occurrences taken off the queue before writing.
const MAX_BATCH: usize = 1000;

/// The fields of an ObjectReference that identify the object.
type ObjectKey = [Option<String>; 6];

fn object_key(r: &ObjectReference) -> ObjectKey {
    [
        r.api_version.clone(),
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
        r.uid.clone(),
        r.field_path.clone(),
    ]
}

/// client-go's series key (the reporter is the recorder's own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    type_: &'static str,
    action: String,
    reason: String,
    regarding: ObjectKey,
    related: Option<ObjectKey>,
}

#[derive(Debug)]
struct Series {
    /// The Event as created (name empty until it is).
    event: Event,
    /// Occurrences so far.
    count: i32,
    /// `count` as last written; 0 before the create.
    written: i32,
    last_seen: Instant,
    last_seen_wall: MicroTime,
    tries: u32,
    retry_at: Option<Instant>,
}

impl Series {
    fn pending(&self) -> bool {
        self.count > self.written
    }
}

struct Worker {
    client: Client,
    reporter: Arc<Reporter>,
    config: RecorderConfig,
    counters: Arc<Counters>,
    spam: Option<Buckets<ObjectKey>>,
    series: HashMap<SeriesKey, Series>,
}

pub(crate) async fn run(
    client: Client,
    reporter: Arc<Reporter>,
    config: RecorderConfig,
    mut queue: mpsc::Receiver<Occurrence>,
    counters: Arc<Counters>,
) {
    let mut w = Worker {
        spam: config
            .spam_filter
            .clone()
            .map(|f| Buckets::new(f, config.cache_capacity)),
        client,
        reporter,
        config,
        counters,
        series: HashMap::new(),
    };
    loop {
        let next = match w.next_retry() {
            Some(at) => match tokio::time::timeout_at(at, queue.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    w.write_pending().await;
                    continue;
                }
            },
            None => queue.recv().await,
        };
        let Some(first) = next else {
            // every Recorder is gone: write what is left once, then stop
            w.write_pending().await;
            return;
        };
        w.take(first);
        for _ in 1..MAX_BATCH {
            match queue.try_recv() {
                Ok(o) => w.take(o),
                Err(_) => break,
            }
        }
        w.write_pending().await;
    }
}

fn wall_now() -> MicroTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let micros = i64::try_from(since.as_micros()).unwrap_or(i64::MAX);
    MicroTime(Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// `note` cut to the API's limit at a character boundary.
fn truncate_note(mut note: String) -> String {
    if note.len() > MAX_NOTE_BYTES {
        let mut cut = MAX_NOTE_BYTES;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    note
}

fn retryable(e: &kube_client::Error) -> bool {
    e.is_transport()
        || e.is_too_many_requests()
        || e.is_timeout()
        || e.code().is_some_and(|c| c >= 500)
}

impl Worker {
    fn next_retry(&self) -> Option<Instant> {
        self.series
            .values()
            .filter(|s| s.pending())
            .filter_map(|s| s.retry_at)
            .min()
    }

    /// Counts one occurrence into its series, unless the spam filter drops it.
    fn take(&mut self, o: Occurrence) {
        self.counters.processed.fetch_add(1, Ordering::Relaxed);
        let object = object_key(&o.regarding);
        if let Some(spam) = &mut self.spam
            && !spam.try_take(&object, o.at)
        {
            self.counters.spam_filtered.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(reason = %o.event.reason, regarding = ?o.regarding.name, "event dropped by the spam filter");
            return;
        }
        let key = SeriesKey {
            type_: o.event.type_.as_str(),
            action: o.event.action.clone(),
            reason: o.event.reason.clone(),
            regarding: object,
            related: o.event.related.as_ref().map(object_key),
        };
        let finish = self.config.series_finish;
        if let Some(s) = self.series.get_mut(&key)
            && o.at.saturating_duration_since(s.last_seen) < finish
        {
            s.count = s.count.saturating_add(1);
            s.last_seen = o.at;
            s.last_seen_wall = wall_now();
            return;
        }
        if self.series.len() >= self.config.cache_capacity.max(1) {
            self.forget_one();
        }
        let event = self.build(&o.regarding, o.event);
        self.series.insert(
            key,
            Series {
                event,
                count: 1,
                written: 0,
                last_seen: o.at,
                last_seen_wall: wall_now(),
                tries: 0,
                retry_at: None,
            },
        );
    }

    /// Drops the least recently seen series, preferring written ones.
    fn forget_one(&mut self) {
        if let Some(k) = self
            .series
            .iter()
            .min_by_key(|(_, s)| (s.pending(), s.last_seen))
            .map(|(k, _)| k.clone())
        {
            self.series.remove(&k);
        }
    }

    fn build(&self, regarding: &ObjectReference, e: NewEvent) -> Event {
        let namespace = regarding
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        Event {
            metadata: ObjectMeta {
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            event_time: Some(wall_now()),
            type_: Some(e.type_.as_str().into()),
            reason: Some(e.reason),
            action: Some(e.action),
            note: e.note.map(truncate_note),
            regarding: Some(regarding.clone()),
            related: e.related,
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            ..Event::default()
        }
    }

    async fn write_pending(&mut self) {
        let now = Instant::now();
        let due: Vec<SeriesKey> = self
            .series
            .iter()
            .filter(|(_, s)| s.pending() && s.retry_at.is_none_or(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(mut s) = self.series.remove(&key) else {
                continue;
            };
            match self.write(&mut s).await {
                Ok(()) => {
                    s.tries = 0;
                    s.retry_at = None;
                }
                Err(e) => self.failed(&mut s, &e),
            }
            self.series.insert(key, s);
        }
    }

    fn failed(&self, s: &mut Series, e: &kube_client::Error) {
        s.tries += 1;
        let reason = s.event.reason.as_deref().unwrap_or_default();
        if retryable(e) && s.tries < self.config.max_tries {
            tracing::warn!(reason, error = %e, tries = s.tries, "writing an event failed; will retry");
            s.retry_at = Some(Instant::now() + self.config.retry_delay);
        } else {
            tracing::warn!(reason, error = %e, tries = s.tries, "writing an event failed; dropped");
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            if s.event.metadata.name.is_none() {
                // never created: the next occurrence starts over
                s.count = 0;
                s.written = 0;
            } else {
                s.written = s.count;
            }
            s.tries = 0;
            s.retry_at = None;
        }
    }

    /// Brings the server's Event up to the series' count: create, then
    /// patch; a vanished Event is created again with its series.
    async fn write(&self, s: &mut Series) -> Result<(), kube_client::Error> {
        let ns = s.event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if s.written == 0 {
            self.create(&api, s, false).await?;
        }
        if s.count > s.written {
            let series = EventSeries {
                count: s.count,
                last_observed_time: s.last_seen_wall.clone(),
            };
            let name = s.event.metadata.name.clone().unwrap_or_default();
            let patch = serde_json::json!({ "series": series });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.counters.patched.fetch_add(1, Ordering::Relaxed);
                    s.written = s.count;
                }
                Err(e) if e.is_not_found() => self.create(&api, s, true).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn create(
        &self,
        api: &Api<Event>,
        s: &mut Series,
        with_series: bool,
    ) -> Result<(), kube_client::Error> {
        let mut event = s.event.clone();
        let regarding = event
            .regarding
            .as_ref()
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        event.metadata.name = Some(format!("{regarding}.{nanos:x}"));
        event.metadata.resource_version = None;
        let count = if with_series && s.count >= 2 {
            event.series = Some(EventSeries {
                count: s.count,
                last_observed_time: s.last_seen_wall.clone(),
            });
            s.count
        } else {
            1
        };
        let created = api.create(&PostParams::default(), &event).await?;
        self.counters.created.fetch_add(1, Ordering::Relaxed);
        s.event.metadata.name = created.metadata.name;
        s.written = count;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_at_a_character_boundary() {
        let long = "é".repeat(600); // 1200 bytes
        let cut = truncate_note(long);
        assert_eq!(cut.len(), 1024);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_note("short".into()), "short");
    }
}
