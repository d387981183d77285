//! The recorder's bookkeeping, without I/O: which occurrences pass the
//! spam filter, which series each belongs to, what is left to write.
//!
//! A series is keyed as client-go's `tools/events` keys it: type, action,
//! reason, `regarding` and `related` (the reporter is the recorder's own;
//! the note is not part of the key). An occurrence within `series_finish`
//! of the series' last one counts into it; a later one replaces it with a
//! new series, which becomes a new Event. At most `cache_capacity` series
//! are kept; the least recently seen, written ones are forgotten first.
//! Every `series_refresh`, each open series — created, with two or more
//! occurrences, seen within `series_finish` — is marked to be written
//! again though nothing changed (client-go's `refreshExistingEventSeries`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use super::spam::Buckets;
use super::{Counters, NewEvent, Occurrence, RecorderConfig, Reporter};

/// The API's limit on `note`.
const MAX_NOTE_BYTES: usize = 1024;

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
pub(crate) struct SeriesKey {
    type_: &'static str,
    action: String,
    reason: String,
    regarding: ObjectKey,
    related: Option<ObjectKey>,
}

#[derive(Debug)]
pub(crate) struct Series {
    /// The Event as created (name empty until it is).
    pub(crate) event: Event,
    /// Occurrences so far.
    pub(crate) count: i32,
    /// `count` as last written; 0 before the create.
    pub(crate) written: i32,
    pub(crate) last_seen: Instant,
    pub(crate) last_seen_wall: MicroTime,
    pub(crate) tries: u32,
    pub(crate) retry_at: Option<Instant>,
    /// Marked by a refresh: to be written though `count` is written.
    pub(crate) refresh: bool,
}

impl Series {
    pub(crate) fn pending(&self) -> bool {
        self.count > self.written || self.refresh
    }

    /// Created on the server, more than one occurrence, not finished.
    fn open(&self, now: Instant, finish: std::time::Duration) -> bool {
        self.event.metadata.name.is_some()
            && self.count >= 2
            && now.saturating_duration_since(self.last_seen) < finish
    }
}

/// The spam filter's buckets and the series, with their settings.
pub(crate) struct Ledger {
    pub(crate) reporter: Arc<Reporter>,
    pub(crate) config: RecorderConfig,
    pub(crate) counters: Arc<Counters>,
    spam: Option<Buckets<ObjectKey>>,
    pub(crate) series: HashMap<SeriesKey, Series>,
}

impl Ledger {
    pub(crate) fn new(
        reporter: Arc<Reporter>,
        config: RecorderConfig,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            spam: config
                .spam_filter
                .clone()
                .map(|f| Buckets::new(f, config.cache_capacity)),
            reporter,
            config,
            counters,
            series: HashMap::new(),
        }
    }

    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.series
            .values()
            .filter(|s| s.pending())
            .filter_map(|s| s.retry_at)
            .min()
    }

    /// Marks every open series to be written again; returns how many.
    pub(crate) fn mark_refresh(&mut self, now: Instant) -> usize {
        let finish = self.config.series_finish;
        let mut marked = 0;
        for s in self.series.values_mut().filter(|s| s.open(now, finish)) {
            s.refresh = true;
            marked += 1;
        }
        marked
    }

    /// Counts one occurrence into its series, unless the spam filter drops it.
    pub(crate) fn take(&mut self, o: Occurrence) {
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
                refresh: false,
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
}

pub(crate) fn wall_now() -> MicroTime {
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

    use super::super::{EventType, SpamFilter};
    use std::time::Duration;

    fn ledger(config: RecorderConfig) -> Ledger {
        Ledger::new(
            Arc::new(Reporter::new("ctl", "one")),
            config,
            Arc::new(Counters::default()),
        )
    }

    fn pod(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn at(l: &mut Ledger, t: Instant, regarding: &ObjectReference, event: NewEvent) {
        l.take(Occurrence {
            regarding: regarding.clone(),
            event,
            at: t,
        });
    }

    fn counts(l: &Ledger) -> Vec<(String, i32)> {
        let mut v: Vec<_> = l
            .series
            .iter()
            .map(|(k, s)| {
                (
                    format!(
                        "{}/{}/{}",
                        k.type_,
                        k.reason,
                        k.regarding[3].clone().unwrap_or_default()
                    ),
                    s.count,
                )
            })
            .collect();
        v.sort();
        v
    }

    fn unfiltered() -> RecorderConfig {
        RecorderConfig {
            spam_filter: None,
            ..RecorderConfig::default()
        }
    }

    #[test]
    fn the_key_is_client_gos_type_action_reason_objects_not_the_note() {
        let mut l = ledger(unfiltered());
        let t = Instant::now();
        let a = pod("a");
        let ev = |ty, reason: &str| NewEvent::new(ty, reason, "Sync");
        at(&mut l, t, &a, ev(EventType::Normal, "R").note("x"));
        at(&mut l, t, &a, ev(EventType::Normal, "R").note("y"));
        at(&mut l, t, &a, ev(EventType::Warning, "R"));
        at(&mut l, t, &a, ev(EventType::Normal, "Q"));
        at(&mut l, t, &pod("b"), ev(EventType::Normal, "R"));
        at(&mut l, t, &a, ev(EventType::Normal, "R").related(pod("c")));
        assert_eq!(
            counts(&l),
            [
                ("Normal/Q/a".to_string(), 1),
                ("Normal/R/a".to_string(), 1), // with related c
                ("Normal/R/a".to_string(), 2),
                ("Normal/R/b".to_string(), 1),
                ("Warning/R/a".to_string(), 1),
            ]
        );
        let first = l.series.values().find(|s| s.count == 2).unwrap();
        assert_eq!(
            first.event.note.as_deref(),
            Some("x"),
            "the first note stays"
        );
        assert_eq!(first.event.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(first.event.reporting_controller.as_deref(), Some("ctl"));
    }

    #[test]
    fn a_series_unseen_for_six_minutes_is_finished() {
        let mut l = ledger(unfiltered());
        let t0 = Instant::now();
        let a = pod("a");
        let ev = || NewEvent::new(EventType::Normal, "R", "Sync");
        at(&mut l, t0, &a, ev());
        at(&mut l, t0 + Duration::from_secs(300), &a, ev());
        // 5:59 after the last occurrence: the same series
        at(&mut l, t0 + Duration::from_secs(300 + 359), &a, ev());
        assert_eq!(counts(&l), [("Normal/R/a".to_string(), 3)]);
        l.series.values_mut().for_each(|s| s.written = s.count);
        // 6:00 after the last: a new series, to be created
        at(&mut l, t0 + Duration::from_secs(300 + 359 + 360), &a, ev());
        assert_eq!(counts(&l), [("Normal/R/a".to_string(), 1)]);
        assert!(l.series.values().all(|s| s.pending() && s.written == 0));
    }

    #[test]
    fn the_spam_filter_runs_before_the_series() {
        let mut l = ledger(RecorderConfig {
            spam_filter: Some(SpamFilter::default()),
            ..RecorderConfig::default()
        });
        let t = Instant::now();
        for _ in 0..30 {
            at(
                &mut l,
                t,
                &pod("a"),
                NewEvent::new(EventType::Normal, "R", "Sync"),
            );
        }
        // another reason about the same object: its tokens are spent
        at(
            &mut l,
            t,
            &pod("a"),
            NewEvent::new(EventType::Normal, "Q", "Sync"),
        );
        at(
            &mut l,
            t,
            &pod("b"),
            NewEvent::new(EventType::Normal, "R", "Sync"),
        );
        assert_eq!(
            counts(&l),
            [
                ("Normal/R/a".to_string(), 25),
                ("Normal/R/b".to_string(), 1)
            ]
        );
        assert_eq!(l.counters.spam_filtered.load(Ordering::Relaxed), 6);
        assert_eq!(l.counters.processed.load(Ordering::Relaxed), 32);
    }

    #[test]
    fn a_refresh_marks_only_open_series() {
        let mut l = ledger(unfiltered());
        let t0 = Instant::now();
        let ev = || NewEvent::new(EventType::Normal, "R", "Sync");
        for _ in 0..3 {
            at(&mut l, t0, &pod("open"), ev());
        }
        at(&mut l, t0, &pod("single"), ev());
        for _ in 0..2 {
            at(&mut l, t0, &pod("never-created"), ev());
        }
        at(
            &mut l,
            t0 - Duration::from_secs(400),
            &pod("finished"),
            ev(),
        );
        at(
            &mut l,
            t0 - Duration::from_secs(390),
            &pod("finished"),
            ev(),
        );
        for s in l.series.values_mut() {
            let name = s.event.regarding.as_ref().unwrap().name.clone().unwrap();
            if name != "never-created" {
                s.event.metadata.name = Some(format!("{name}.1"));
                s.written = s.count;
            }
        }
        assert!(l.series.values().filter(|s| s.pending()).count() == 1);
        assert_eq!(l.mark_refresh(t0 + Duration::from_secs(1)), 1);
        let marked: Vec<String> = l
            .series
            .values()
            .filter(|s| s.refresh)
            .map(|s| s.event.regarding.as_ref().unwrap().name.clone().unwrap())
            .collect();
        assert_eq!(marked, ["open"]);
        assert!(
            l.series
                .values()
                .all(|s| s.refresh == s.pending() || s.event.metadata.name.is_none())
        );
    }

    #[test]
    fn written_series_are_forgotten_before_pending_ones() {
        let mut l = ledger(RecorderConfig {
            cache_capacity: 2,
            ..unfiltered()
        });
        let t = Instant::now();
        let ev = || NewEvent::new(EventType::Normal, "R", "Sync");
        at(&mut l, t, &pod("old-pending"), ev());
        at(&mut l, t + Duration::from_secs(1), &pod("written"), ev());
        l.series
            .values_mut()
            .filter(|s| s.event.regarding.as_ref().unwrap().name.as_deref() == Some("written"))
            .for_each(|s| s.written = s.count);
        at(&mut l, t + Duration::from_secs(2), &pod("new"), ev());
        assert_eq!(
            counts(&l),
            [
                ("Normal/R/new".to_string(), 1),
                ("Normal/R/old-pending".to_string(), 1)
            ]
        );
    }
}
