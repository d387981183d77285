//! The soak's tally and its printed table.
//!
//! Each round records its fault, the catch-up time of every subject (from
//! the moment the fault was over — for a restart, kube-apiserver's `/readyz`
//! answering 200 again — until the subject's view equalled a fresh list),
//! and what was lost or stale if a subject did not catch up within the bound.
//! The table gives, per fault kind, the median and maximum over rounds of
//! the slowest cache's catch-up and of the controller's (its desired state
//! reached), and every restart's catch-up of the caches one by one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::Fault;
use super::driver::Changes;
use super::subjects::{Received, View};

/// The 1 s catch-up target after an API server restart (issue 12, defect 8).
pub(super) const RESTART_TARGET: Duration = Duration::from_secs(1);

/// How one subject compared with the fresh list at the end of a round.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Divergence {
    /// Objects listed by the server but missing from the view.
    pub(super) lost: usize,
    /// Objects in the view at another resourceVersion, or deleted on the
    /// server but still in the view.
    pub(super) stale: usize,
}

impl Divergence {
    /// Compares a subject's view with the server's list.
    pub(super) fn between(view: &View, listed: &View) -> Self {
        let lost = listed.keys().filter(|k| !view.contains_key(*k)).count();
        let stale = view
            .iter()
            .filter(|(k, rv)| listed.get(*k) != Some(*rv))
            .count();
        Self { lost, stale }
    }

    /// Nothing lost, nothing stale.
    pub(super) fn is_none(&self) -> bool {
        self.lost == 0 && self.stale == 0
    }
}

/// One round's outcome.
#[derive(Debug)]
pub(super) struct Round {
    /// The fault injected.
    pub(super) fault: Fault,
    /// Per subject: catch-up time, or `None` if it never caught up.
    pub(super) catch_up: Vec<Option<Duration>>,
    /// Per subject: what differed when the bound ran out (zero if caught up).
    pub(super) divergence: Vec<Divergence>,
    /// Per subject: a cache (or a controller).
    pub(super) is_cache: Vec<bool>,
}

impl Round {
    /// The slowest catch-up among the caches (`caches`) or among the
    /// controllers (`!caches`); `None` if one never caught up.
    pub(super) fn slowest(&self, caches: bool) -> Option<Duration> {
        self.catch_up
            .iter()
            .zip(&self.is_cache)
            .filter(|(_, is_cache)| **is_cache == caches)
            .try_fold(Duration::ZERO, |acc, (d, _)| d.map(|d| acc.max(d)))
    }
}

/// Everything a soak run produced.
#[derive(Debug)]
pub(super) struct Tally {
    /// Subject names, in the order of `Round::catch_up`.
    pub(super) subjects: Vec<String>,
    /// Per subject: a cache (or a controller).
    pub(super) is_cache: Vec<bool>,
    /// Every round, in order.
    pub(super) rounds: Vec<Round>,
    /// Per subject, what it received over the run.
    pub(super) received: Vec<Received>,
    /// Requests the proxy answered 429.
    pub(super) throttled_requests: u64,
    /// The time the rounds took.
    pub(super) elapsed: Duration,
}

impl Tally {
    /// Objects lost and stale, over all rounds and subjects.
    pub(super) fn divergence(&self) -> Divergence {
        self.rounds
            .iter()
            .flat_map(|r| &r.divergence)
            .fold(Divergence::default(), |a, d| Divergence {
                lost: a.lost + d.lost,
                stale: a.stale + d.stale,
            })
    }

    /// The printed report.
    pub(super) fn table(&self, changes: &Changes) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = String::new();
        let by_kind = self.by_kind();
        let names = |caches: bool| -> Vec<&str> {
            self.subjects
                .iter()
                .zip(&self.is_cache)
                .filter(|(_, c)| **c == caches)
                .map(|(n, _)| n.as_str())
                .collect()
        };
        let _ = writeln!(
            out,
            "==> soak: {} rounds in {:.1} min, {} caches: {}; controllers: {}",
            self.rounds.len(),
            self.elapsed.as_secs_f64() / 60.0,
            names(true).len(),
            names(true).join(", "),
            names(false).join(", "),
        );
        let faults: Vec<String> = by_kind
            .iter()
            .map(|(kind, rounds)| format!("{} {}", kind.name(), rounds.len()))
            .collect();
        let _ = writeln!(out, "faults:       {}", faults.join(", "));
        let _ = writeln!(
            out,
            "driver:       {} creates, {} updates, {} deletes ({} requests failed)",
            changes.created.load(Relaxed),
            changes.updated.load(Relaxed),
            changes.deleted.load(Relaxed),
            changes.failed.load(Relaxed),
        );
        let sum = |caches: bool, f: fn(&Received) -> u64| {
            self.received
                .iter()
                .zip(&self.is_cache)
                .filter(|(_, c)| **c == caches)
                .map(|(r, _)| f(r))
                .sum::<u64>()
        };
        let _ = writeln!(
            out,
            "events seen:  {} changes over all caches, {} errors, {} lists (initial + relists), {} queue overflows; {} requests answered 429 by the proxy",
            sum(true, |r| r.changes),
            sum(true, |r| r.errors),
            sum(true, |r| r.lists),
            sum(true, |r| r.desynced),
            self.throttled_requests,
        );
        let _ = writeln!(
            out,
            "controller:   {} reconciles, {} errors (failed reconciles and watch errors)",
            sum(false, |r| r.changes),
            sum(false, |r| r.errors),
        );
        let d = self.divergence();
        let _ = writeln!(out, "objects:      lost {}, stale {}", d.lost, d.stale);
        let _ = writeln!(
            out,
            "catch-up per round                       caches (slowest)    controller    rounds"
        );
        let _ = writeln!(
            out,
            "                                         median      max   median      max"
        );
        for (kind, rounds) in &by_kind {
            let stats = |caches: bool| {
                let mut times: Vec<Duration> =
                    rounds.iter().filter_map(|r| r.slowest(caches)).collect();
                times.sort();
                let never = rounds.len() - times.len();
                let median = times
                    .get(times.len() / 2)
                    .map_or("-".into(), |d| seconds(*d));
                let max = times.last().map_or("-".into(), |d| seconds(*d));
                (median, max, never)
            };
            let (cache_median, cache_max, cache_never) = stats(true);
            let (ctl_median, ctl_max, ctl_never) = stats(false);
            let never = cache_never + ctl_never;
            let _ = writeln!(
                out,
                "  {:<36} {:>8} {:>8} {:>8} {:>8}   {:>3}{}",
                kind.measured_from(),
                cache_median,
                cache_max,
                ctl_median,
                ctl_max,
                rounds.len(),
                if never > 0 {
                    format!("  ({cache_never} caches and {ctl_never} controllers never caught up)")
                } else {
                    String::new()
                }
            );
        }
        let restarts: Vec<Option<Duration>> = self
            .rounds
            .iter()
            .filter(|r| r.fault == Fault::Restart)
            .map(|r| r.slowest(true))
            .collect();
        if !restarts.is_empty() {
            let met = restarts
                .iter()
                .filter(|d| d.is_some_and(|d| d <= RESTART_TARGET))
                .count();
            let each: Vec<String> = restarts
                .iter()
                .map(|d| d.map_or("never".into(), seconds))
                .collect();
            let _ = writeln!(
                out,
                "after each kube-apiserver restart (readyz ok → every cache equals a fresh list): {}",
                each.join(", ")
            );
            let _ = writeln!(
                out,
                "  target ≤ {} s: met after {met} of {} restarts",
                RESTART_TARGET.as_secs(),
                restarts.len()
            );
        }
        out
    }

    fn by_kind(&self) -> BTreeMap<Fault, Vec<&Round>> {
        let mut map: BTreeMap<Fault, Vec<&Round>> = BTreeMap::new();
        for r in &self.rounds {
            map.entry(r.fault).or_default().push(r);
        }
        map
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::subjects::view;

    #[test]
    fn divergence_counts_missing_changed_and_deleted_objects() {
        let listed = view(&[("ns/a", "1"), ("ns/b", "2"), ("ns/c", "3")]);
        assert!(Divergence::between(&listed, &listed).is_none());
        let cached = view(&[("ns/a", "1"), ("ns/b", "1"), ("ns/gone", "4")]);
        assert_eq!(
            Divergence::between(&cached, &listed),
            Divergence { lost: 1, stale: 2 }
        );
    }

    #[test]
    fn the_slowest_subject_decides_and_never_is_never() {
        let round = |catch_up: Vec<Option<Duration>>| Round {
            fault: Fault::Cut,
            is_cache: vec![true, true, false],
            catch_up,
            divergence: vec![],
        };
        let s = Duration::from_secs;
        let r = round(vec![Some(s(1)), Some(s(3)), Some(s(9))]);
        assert_eq!(
            (r.slowest(true), r.slowest(false)),
            (Some(s(3)), Some(s(9)))
        );
        let r = round(vec![Some(s(1)), None, Some(s(2))]);
        assert_eq!((r.slowest(true), r.slowest(false)), (None, Some(s(2))));
        let r = round(vec![Some(s(1)), Some(s(1)), None]);
        assert_eq!((r.slowest(true), r.slowest(false)), (Some(s(1)), None));
    }
}
