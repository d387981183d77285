//! The recorder's background task: spam filter, series, writes.
//!
//! It takes every occurrence already queued before writing (a burst becomes
//! one batch), counts each into its series, then writes what changed: a
//! create for a new series, one merge patch of `series` for all the
//! occurrences since the last write. A patch answered 404 (the Event expired
//! or was deleted) creates the Event again, with its series. Retryable
//! failures (transport, 429, 5xx) are tried again after `retry_delay`, up
//! to `max_tries`; anything else is logged, counted and dropped. Every
//! `series_refresh` the open series are patched again with what they hold
//! (the same write path: a vanished Event is created again).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::events::v1::{Event, EventSeries};
use kube_client::params::{Patch, PatchParams, PostParams};
use kube_client::{Api, Client};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::series::{Ledger, Series, SeriesKey};
use super::{Counters, Occurrence, RecorderConfig, Reporter};
/// Occurrences taken off the queue before writing.
const MAX_BATCH: usize = 1000;

struct Worker {
    client: Client,
    ledger: Ledger,
}

pub(crate) async fn run(
    client: Client,
    reporter: Arc<Reporter>,
    config: RecorderConfig,
    mut queue: mpsc::Receiver<Occurrence>,
    counters: Arc<Counters>,
) {
    let mut w = Worker {
        client,
        ledger: Ledger::new(reporter, config, counters),
    };
    let refresh_every = w.ledger.config.series_refresh.max(Duration::from_secs(1));
    let mut next_refresh = Instant::now() + refresh_every;
    loop {
        let wake = w
            .ledger
            .next_retry()
            .map_or(next_refresh, |at| at.min(next_refresh));
        let next = match tokio::time::timeout_at(wake, queue.recv()).await {
            Ok(next) => next,
            Err(_) => {
                let now = Instant::now();
                if now >= next_refresh {
                    let marked = w.ledger.mark_refresh(now);
                    tracing::debug!(series = marked, "refreshing open event series");
                    next_refresh = now + refresh_every;
                }
                w.write_pending().await;
                continue;
            }
        };
        let Some(first) = next else {
            // every Recorder is gone: write what is left once, then stop
            w.write_pending().await;
            return;
        };
        w.ledger.take(first);
        for _ in 1..MAX_BATCH {
            match queue.try_recv() {
                Ok(o) => w.ledger.take(o),
                Err(_) => break,
            }
        }
        w.write_pending().await;
    }
}

fn retryable(e: &kube_client::Error) -> bool {
    e.is_transport()
        || e.is_too_many_requests()
        || e.is_timeout()
        || e.code().is_some_and(|c| c >= 500)
}

impl Worker {
    async fn write_pending(&mut self) {
        let now = Instant::now();
        let due: Vec<SeriesKey> = self
            .ledger
            .series
            .iter()
            .filter(|(_, s)| s.pending() && s.retry_at.is_none_or(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(mut s) = self.ledger.series.remove(&key) else {
                continue;
            };
            match self.write(&mut s).await {
                Ok(()) => {
                    s.tries = 0;
                    s.retry_at = None;
                    s.refresh = false;
                }
                Err(e) => self.failed(&mut s, &e),
            }
            self.ledger.series.insert(key, s);
        }
    }

    fn failed(&self, s: &mut Series, e: &kube_client::Error) {
        s.tries += 1;
        let reason = s.event.reason.as_deref().unwrap_or_default();
        if retryable(e) && s.tries < self.ledger.config.max_tries {
            tracing::warn!(reason, error = %e, tries = s.tries, "writing an event failed; will retry");
            s.retry_at = Some(Instant::now() + self.ledger.config.retry_delay);
        } else {
            tracing::warn!(reason, error = %e, tries = s.tries, "writing an event failed; dropped");
            self.ledger.counters.failed.fetch_add(1, Ordering::Relaxed);
            if s.event.metadata.name.is_none() {
                // never created: the next occurrence starts over
                s.count = 0;
                s.written = 0;
            } else {
                s.written = s.count;
            }
            s.tries = 0;
            s.retry_at = None;
            s.refresh = false;
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
        if s.count > s.written || s.refresh {
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
                    self.ledger.counters.patched.fetch_add(1, Ordering::Relaxed);
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
        self.ledger.counters.created.fetch_add(1, Ordering::Relaxed);
        s.event.metadata.name = created.metadata.name;
        s.written = count;
        Ok(())
    }
}
