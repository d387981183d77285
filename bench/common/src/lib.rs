//! What the Rust benchmark clients share: their arguments, measurements of
//! their own process, and the phase protocol with the orchestrator
//! (`cargo xtask bench`, in `xtask/src/bench.rs`). The Go client
//! (`bench/client-go/main.go`) speaks the same protocol.
//!
//! A client is started as
//! `CLIENT --kubeconfig PATH --namespace NS --objects N --mods M [--timeout-secs S]
//! [--resource configmaps|pods]`, with the wire encoding in the environment
//! (`BENCH_ENCODING=json|protobuf`, JSON when unset), builds its cache of the
//! ConfigMaps (or Pods) in NS and then:
//!
//! 0. if it cannot speak the asked encoding, prints
//!    `{"event":"unavailable", "reason"}` and exits 0 — it never falls back
//!    to another encoding silently;
//! 1. prints `{"event":"synced", "elapsed_ms", "peak_rss_kib", "rss_kib",
//!    "baseline_rss_kib", "cpu_ms", "objects"}` once its cache holds the
//!    initial list; `baseline_rss_kib` is its RSS with the client built,
//!    just before the cache starts listing, so
//!    `(rss_kib - baseline_rss_kib) / objects` is what the cache holds per
//!    object. `elapsed_ms` runs from the
//!    process's start as the kernel recorded it (`/proc/self/stat` field 22,
//!    `starttime`, in clock ticks since boot, against `CLOCK_BOOTTIME`), so
//!    it includes exec, dynamic loading and runtime start-up, at a
//!    resolution of one clock tick (10 ms); `peak_rss_kib` is `VmHWM`.
//! 2. reads commands, one per line, on stdin:
//!    - `relist`: notes its RSS (the steady state, cache full), resets its
//!      peak RSS (`echo 5 > /proc/self/clear_refs`; where the kernel refuses,
//!      a thread samples `VmRSS` every 2 ms instead), prints
//!      `{"event":"relist_armed", "steady_rss_kib", "peak_reset"}`, and once its
//!      cache has been filled by a second complete list (the orchestrator
//!      compacts etcd and restarts kube-apiserver, so the watch resumes at a
//!      version that is gone: 410, relist) prints
//!      `{"event":"relisted", "peak_rss_kib", "steady_rss_kib", "relist_ms", "objects"}`;
//!    - `mods`: notes its CPU time (user + system, `getrusage`) and how many
//!      changes it has seen, prints `{"event":"mods_armed"}`, and once it has
//!      seen M more changes (MODIFIED events, as its consumer sees them)
//!      prints `{"event":"watched", "events", "cpu_ms", "wall_ms", "peak_rss_kib"}`;
//!    - `exit`, or the end of stdin: exits.
//!
//! Every wait is bounded (`--timeout-secs`, 600 by default); a client that
//! gives up prints `{"event":"error","message":...}` and exits non-zero.
//! Logs go to stderr; stdout carries only these lines.
//!
//! The controller scenario has a protocol of its own: [`controller`].

#![allow(unsafe_code)] // libc calls for rusage and clocks

pub mod controller;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::Notify;

/// A client's command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// The kubeconfig file.
    pub kubeconfig: String,
    /// The namespace holding the ConfigMaps.
    pub namespace: String,
    /// How many ConfigMaps there are (informational: clients do not wait for a count).
    pub objects: u64,
    /// How many changes the `mods` phase makes.
    pub mods: u64,
    /// The bound on every wait.
    pub timeout: Duration,
    /// What the cache holds.
    pub resource: Resource,
    /// The wire encoding asked for (`BENCH_ENCODING`).
    pub encoding: Encoding,
}

/// The kind of object a benchmark client caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// ConfigMaps of ~1 KiB data (~1.5 KiB JSON).
    ConfigMaps,
    /// Pending Pods with a realistic spec (~3–5 KiB JSON).
    Pods,
}

impl Resource {
    /// Parses `configmaps` or `pods`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "configmaps" => Ok(Resource::ConfigMaps),
            "pods" => Ok(Resource::Pods),
            other => bail!("unknown resource `{other}`; expected configmaps or pods"),
        }
    }
}

/// The encoding a client reads (and writes) on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`.
    Json,
    /// `application/vnd.kubernetes.protobuf`, with JSON as the fallback.
    Protobuf,
}

impl Encoding {
    /// The environment variable the orchestrator sets.
    pub const ENV: &'static str = "BENCH_ENCODING";

    /// `BENCH_ENCODING` (`json` when unset).
    pub fn from_env() -> Result<Self> {
        match std::env::var(Self::ENV).as_deref() {
            Err(_) | Ok("json") => Ok(Encoding::Json),
            Ok("protobuf") => Ok(Encoding::Protobuf),
            Ok(other) => bail!("{}={other}: expected json or protobuf", Self::ENV),
        }
    }
}

/// Says this client cannot run the asked variant (protocol step 0).
pub fn unavailable(reason: &str) {
    emit(json!({"event": "unavailable", "reason": reason}));
}

impl Args {
    /// Parses `std::env::args()`.
    pub fn parse() -> Result<Self> {
        let mut kubeconfig = None;
        let mut namespace = None;
        let mut objects = 0;
        let mut mods = 0;
        let mut timeout = 600;
        let mut resource = Resource::ConfigMaps;
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--kubeconfig" => kubeconfig = Some(value()?),
                "--namespace" => namespace = Some(value()?),
                "--objects" => objects = value()?.parse().context("--objects")?,
                "--mods" => mods = value()?.parse().context("--mods")?,
                "--timeout-secs" => timeout = value()?.parse().context("--timeout-secs")?,
                "--resource" => resource = Resource::parse(&value()?)?,
                other => bail!("unknown argument `{other}`"),
            }
        }
        Ok(Self {
            kubeconfig: kubeconfig.context("--kubeconfig is required")?,
            namespace: namespace.context("--namespace is required")?,
            objects,
            mods,
            timeout: Duration::from_secs(timeout),
            resource,
            encoding: Encoding::from_env()?,
        })
    }
}

/// What a client's cache has done so far; updated by the client's
/// background task, read by [`drive`].
#[derive(Debug)]
pub struct Progress {
    lists: AtomicU64,
    modified: AtomicU64,
    objects: AtomicU64,
    baseline_rss_kib: AtomicU64,
    /// `drive` is woken when `modified` reaches this.
    want_modified: AtomicU64,
    notify: Notify,
}

impl Progress {
    /// A fresh counter set, shared between the cache task and [`drive`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            lists: AtomicU64::new(0),
            modified: AtomicU64::new(0),
            objects: AtomicU64::new(0),
            baseline_rss_kib: AtomicU64::new(0),
            want_modified: AtomicU64::new(u64::MAX),
            notify: Notify::new(),
        })
    }

    /// The cache holds `n` objects.
    pub fn set_objects(&self, n: u64) {
        self.objects.store(n, Ordering::Release);
    }

    /// Notes the RSS now as the baseline: call it with the client built,
    /// just before the cache starts listing.
    pub fn note_baseline_rss(&self) {
        self.baseline_rss_kib
            .store(rss_kib().unwrap_or(0), Ordering::Release);
    }

    /// `n` complete lists (initial one and relists) are in the cache.
    pub fn set_lists(&self, n: u64) {
        if self.lists.swap(n, Ordering::AcqRel) != n {
            self.notify.notify_waiters();
        }
    }

    /// `n` more changes reached the consumer.
    pub fn add_modified(&self, n: u64) {
        if n == 0 {
            return;
        }
        let now = self.modified.fetch_add(n, Ordering::AcqRel) + n;
        if now >= self.want_modified.load(Ordering::Acquire) {
            self.notify.notify_waiters();
        }
    }

    fn lists(&self) -> u64 {
        self.lists.load(Ordering::Acquire)
    }

    fn modified(&self) -> u64 {
        self.modified.load(Ordering::Acquire)
    }

    fn objects(&self) -> u64 {
        self.objects.load(Ordering::Acquire)
    }

    async fn wait(&self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) -> Result<()> {
        wait_until(&self.notify, what, limit, || done(self)).await
    }
}

/// Waits until `done()` holds, checking it at once and again each time
/// `notify` wakes its waiters; gives up after `limit` with an error naming
/// `what`.
pub(crate) async fn wait_until(
    notify: &Notify,
    what: &str,
    limit: Duration,
    done: impl Fn() -> bool,
) -> Result<()> {
    let waiting = async {
        loop {
            let notified = notify.notified();
            if done() {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(limit, waiting)
        .await
        .with_context(|| format!("{what}: not done after {} s", limit.as_secs()))
}

/// Prints one protocol line.
pub fn emit(value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Runs the protocol (see the crate docs) until `exit` or the end of stdin.
pub async fn drive(args: &Args, progress: Arc<Progress>) -> Result<()> {
    let result = drive_inner(args, &progress).await;
    if let Err(e) = &result {
        emit(json!({"event": "error", "message": format!("{e:#}")}));
    }
    result
}

async fn drive_inner(args: &Args, progress: &Progress) -> Result<()> {
    progress
        .wait("initial sync", args.timeout, |p| p.lists() >= 1)
        .await?;
    let elapsed_ms = since_process_start_ms()?;
    emit(json!({
        "event": "synced",
        "elapsed_ms": elapsed_ms,
        "peak_rss_kib": peak_rss_kib()?,
        "rss_kib": rss_kib()?,
        "baseline_rss_kib": progress.baseline_rss_kib.load(Ordering::Acquire),
        "cpu_ms": cpu_ms(),
        "objects": progress.objects(),
    }));

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "relist" => {
                let steady = rss_kib()?;
                let peak = PeakTracker::start();
                let started = Instant::now();
                let base = progress.lists();
                emit(json!({
                    "event": "relist_armed",
                    "steady_rss_kib": steady,
                    "peak_reset": peak.is_hwm(),
                }));
                progress
                    .wait("relist", args.timeout, |p| p.lists() > base)
                    .await?;
                let relist_ms = started.elapsed().as_secs_f64() * 1e3;
                emit(json!({
                    "event": "relisted",
                    "peak_rss_kib": peak.finish()?,
                    "steady_rss_kib": steady,
                    "relist_ms": relist_ms,
                    "objects": progress.objects(),
                }));
            }
            "mods" => {
                let base = progress.modified();
                let want = base + args.mods;
                progress.want_modified.store(want, Ordering::Release);
                let cpu0 = cpu_ms();
                let started = Instant::now();
                emit(json!({"event": "mods_armed"}));
                progress
                    .wait("watching the changes", args.timeout, |p| {
                        p.modified() >= want
                    })
                    .await?;
                let cpu = cpu_ms() - cpu0;
                let wall_ms = started.elapsed().as_secs_f64() * 1e3;
                progress.want_modified.store(u64::MAX, Ordering::Release);
                emit(json!({
                    "event": "watched",
                    "events": progress.modified() - base,
                    "cpu_ms": cpu,
                    "wall_ms": wall_ms,
                    "peak_rss_kib": peak_rss_kib()?,
                }));
            }
            "exit" => break,
            "" => {}
            other => bail!("unknown command `{other}`"),
        }
    }
    Ok(())
}

/// The peak RSS since [`PeakTracker::start`]: the kernel's `VmHWM` after
/// resetting it, or, where the reset is refused, the largest `VmRSS`
/// sampled every 2 ms.
pub struct PeakTracker {
    sampler: Option<(Arc<AtomicBool>, std::thread::JoinHandle<u64>)>,
}

impl PeakTracker {
    /// Resets the peak (or starts sampling).
    pub fn start() -> Self {
        if reset_peak_rss() {
            return Self { sampler: None };
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Acquire) {
                peak = peak.max(rss_kib().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak.max(rss_kib().unwrap_or(0))
        });
        Self {
            sampler: Some((stop, handle)),
        }
    }

    /// True when the kernel's `VmHWM` was reset (no sampling).
    pub fn is_hwm(&self) -> bool {
        self.sampler.is_none()
    }

    /// The peak RSS in KiB.
    pub fn finish(self) -> Result<u64> {
        match self.sampler {
            None => peak_rss_kib(),
            Some((stop, handle)) => {
                stop.store(true, Ordering::Release);
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))
            }
        }
    }
}

fn status_field_kib(name: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {name} in /proc/self/status"))
}

/// `VmHWM`: the peak resident set size, KiB.
pub fn peak_rss_kib() -> Result<u64> {
    status_field_kib("VmHWM:")
}

/// `VmRSS`: the resident set size now, KiB.
pub fn rss_kib() -> Result<u64> {
    status_field_kib("VmRSS:")
}

/// Resets `VmHWM` to the current RSS; false if the kernel refuses.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// User + system CPU time of this process so far, ms (`getrusage`).
pub fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes a plain struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// CPU time of the calling thread, ns (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `CLOCK_BOOTTIME` now, ns: one clock for every process on the machine,
/// so times taken by two processes compare.
pub fn boottime_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    // SAFETY: clock_gettime writes a plain struct we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Milliseconds since this process started, by the kernel's account
/// (`/proc/self/stat` field 22 against `CLOCK_BOOTTIME`; 10 ms resolution).
pub fn since_process_start_ms() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/self/stat")?;
    // `rest` starts at field 3 (state); starttime is field 22.
    let start_ticks: u64 = rest
        .split_whitespace()
        .nth(22 - 3)
        .and_then(|f| f.parse().ok())
        .context("no starttime in /proc/self/stat")?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let now_ms = clock_ns(libc::CLOCK_BOOTTIME) as f64 / 1e6;
    Ok(now_ms - start_ticks as f64 * 1e3 / hz)
}

/// Waits for `fut`, failing with `what` after `limit`.
pub async fn bounded<T>(
    what: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .with_context(|| format!("{what}: not done after {} s", limit.as_secs()))
}
