//! The controller scenario of `cargo xtask bench --scenario controller`:
//! the reconcile both controllers run, their bookkeeping, and the protocol
//! with the orchestrator (`xtask/src/bench/controller.rs`).
//!
//! # The reconcile
//!
//! ConfigMaps have no status subresource, so the work is a merge patch of an
//! annotation — the same for every controller, and needing no CRD. The
//! driver writes what it wants into the annotation [`WANT`]; a reconcile
//! copies it into [`SEEN`] with one merge patch (`PATCH`,
//! `application/merge-patch+json`) unless the two already agree, and
//! returns "await change" (no requeue). The patch is itself a change, so
//! each object is reconciled a second time and that reconcile finds nothing
//! to do: the steady state of any controller that writes to what it
//! watches. Both controllers see the same events and do the same requests.
//!
//! # Protocol
//!
//! A controller program is started as
//! `CLIENT --kubeconfig PATH --namespace NS --objects N [--concurrency C] [--timeout-secs S]`
//! when the N ConfigMaps of NS already exist, each with `WANT` = [`INITIAL`]
//! and no `SEEN`. It starts its controller at once (C reconciles at most in
//! flight; both libraries are given the same C) and:
//!
//! 1. prints `{"event":"reconciled_all", "elapsed_ms", "cpu_ms", "reconciles",
//!    "patches", "errors", "peak_rss_kib"}` when the N-th distinct object's
//!    patch to `SEEN` = `INITIAL` has succeeded (the API server answered it).
//!    `elapsed_ms` runs from the process's start as the kernel recorded it
//!    (as `synced` of the reflector protocol, in the crate docs);
//! 2. prints `{"event":"settled", "cpu_ms", "reconciles", "patches", "errors",
//!    "quiet_ms"}` once no reconcile has run for `quiet_ms` (the second,
//!    no-op reconciles are done). `cpu_ms` is the process's user + system
//!    time since its start (`getrusage`): start-up, the initial list and
//!    every reconcile so far;
//! 3. reads commands, one per line, on stdin:
//!    - `latency`: forgets earlier latency records, prints
//!      `{"event":"latency_armed"}`; from then on the first reconcile to see
//!      each new `WANT` value is recorded with its start time
//!      ([`boottime_ns`](crate::boottime_ns): `CLOCK_BOOTTIME`, one clock
//!      for every process on the machine, so the driver's change times
//!      compare with it);
//!    - `latency_report L`: waits until L values have been recorded and
//!      the reconciles have settled again (as in 2.), then prints `{"event":"latency", "starts": {WANT value: ns}, "cpu_ms",
//!      "reconciles", "patches", "errors"}` (the counters since `latency`);
//!    - `exit`, or the end of stdin: exits.
//!
//! Every wait is bounded (`--timeout-secs`, 600 by default); a program that
//! gives up prints `{"event":"error","message":...}` and exits non-zero.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::Notify;

use crate::{boottime_ns, cpu_ms, emit, peak_rss_kib, since_process_start_ms, wait_until};

/// The annotation the driver sets: what the object asks for.
pub const WANT: &str = "kube-bench/want";
/// The annotation a reconcile sets: what the controller has done.
pub const SEEN: &str = "kube-bench/seen";
/// `WANT` on every object when the controller starts.
pub const INITIAL: &str = "initial";
/// How long without a reconcile counts as settled.
pub const QUIET: Duration = Duration::from_millis(1000);

/// A controller program's command line.
#[derive(Debug, Clone)]
pub struct ControllerArgs {
    /// The kubeconfig file.
    pub kubeconfig: String,
    /// The namespace holding the ConfigMaps.
    pub namespace: String,
    /// How many ConfigMaps there are; `reconciled_all` waits for them all.
    pub objects: u64,
    /// Reconciles in flight at most.
    pub concurrency: u16,
    /// The bound on every wait.
    pub timeout: Duration,
}

impl ControllerArgs {
    /// Parses `std::env::args()`.
    pub fn parse() -> Result<Self> {
        let mut kubeconfig = None;
        let mut namespace = None;
        let mut objects = None;
        let mut concurrency = 16;
        let mut timeout = 600;
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--kubeconfig" => kubeconfig = Some(value()?),
                "--namespace" => namespace = Some(value()?),
                "--objects" => objects = Some(value()?.parse().context("--objects")?),
                "--concurrency" => concurrency = value()?.parse().context("--concurrency")?,
                "--timeout-secs" => timeout = value()?.parse().context("--timeout-secs")?,
                other => bail!("unknown argument `{other}`"),
            }
        }
        anyhow::ensure!(concurrency >= 1, "--concurrency must be at least 1");
        Ok(Self {
            kubeconfig: kubeconfig.context("--kubeconfig is required")?,
            namespace: namespace.context("--namespace is required")?,
            objects: objects.context("--objects is required")?,
            concurrency,
            timeout: Duration::from_secs(timeout),
        })
    }
}

/// The merge patch a reconcile sends: `SEEN` = `want`.
pub fn patch_body(want: &str) -> Value {
    json!({"metadata": {"annotations": {SEEN: want}}})
}

/// The counters and records of one controller process, shared between its
/// reconciles and [`drive_controller`].
#[derive(Debug, Default)]
pub struct Tally {
    reconciles: AtomicU64,
    patches: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
    /// `boottime_ns` of the last reconcile's start or end.
    last_activity_ns: AtomicU64,
    /// Objects whose patch to `INITIAL` succeeded.
    initial_done: Mutex<HashSet<String>>,
    initial_count: AtomicU64,
    /// `WANT` value → start of the first reconcile that saw it, while armed.
    latency: Mutex<Option<HashMap<String, u64>>>,
    notify: Notify,
}

/// One reconcile in progress: made by [`Tally::start`], which records its
/// start; dropping it records its end.
#[derive(Debug)]
pub struct Reconcile<'a> {
    tally: &'a Tally,
    name: String,
    want: Option<String>,
}

impl Reconcile<'_> {
    /// The value to patch into `SEEN`, or `None` if the object is up to date
    /// (or asks for nothing).
    pub fn to_patch(&self) -> Option<&str> {
        self.want.as_deref()
    }

    /// The patch succeeded.
    pub fn patched(&self) {
        self.tally.patches.fetch_add(1, Ordering::AcqRel);
        if self.want.as_deref() == Some(INITIAL) {
            let new = self
                .tally
                .initial_done
                .lock()
                .expect("tally lock")
                .insert(self.name.clone());
            if new {
                self.tally.initial_count.fetch_add(1, Ordering::AcqRel);
                self.tally.notify.notify_waiters();
            }
        }
    }
}

impl Drop for Reconcile<'_> {
    fn drop(&mut self) {
        self.tally
            .last_activity_ns
            .store(boottime_ns(), Ordering::Release);
        self.tally.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Tally {
    /// A reconcile of the object `name` with these annotations starts now.
    pub fn start<'a>(
        &'a self,
        name: &str,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Reconcile<'a> {
        let now = boottime_ns();
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.reconciles.fetch_add(1, Ordering::AcqRel);
        self.last_activity_ns.store(now, Ordering::Release);
        let want = annotations.and_then(|a| a.get(WANT));
        let seen = annotations.and_then(|a| a.get(SEEN));
        if let Some(want) = want
            && let Some(records) = self.latency.lock().expect("tally lock").as_mut()
            && !records.contains_key(want)
            && want.as_str() != INITIAL
        {
            records.insert(want.clone(), now);
            self.notify.notify_waiters();
        }
        Reconcile {
            tally: self,
            name: name.to_string(),
            want: want.filter(|w| Some(*w) != seen).cloned(),
        }
    }

    /// A reconcile failed (the error policy was called).
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::AcqRel);
    }

    fn counters(&self) -> [u64; 3] {
        [
            self.reconciles.load(Ordering::Acquire),
            self.patches.load(Ordering::Acquire),
            self.errors.load(Ordering::Acquire),
        ]
    }

    fn latency_len(&self) -> usize {
        self.latency
            .lock()
            .expect("tally lock")
            .as_ref()
            .map_or(0, HashMap::len)
    }

    async fn wait(&self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) -> Result<()> {
        wait_until(&self.notify, what, limit, || done(self)).await
    }
}

/// Runs the protocol (see the module docs) until `exit` or the end of stdin.
pub async fn drive_controller(args: &ControllerArgs, tally: &Tally) -> Result<()> {
    let result = drive_inner(args, tally).await;
    if let Err(e) = &result {
        emit(json!({"event": "error", "message": format!("{e:#}")}));
    }
    result
}

async fn drive_inner(args: &ControllerArgs, tally: &Tally) -> Result<()> {
    let want = args.objects;
    tally
        .wait("reconciling every object", args.timeout, |t| {
            t.initial_count.load(Ordering::Acquire) >= want
        })
        .await?;
    let elapsed_ms = since_process_start_ms()?;
    let [reconciles, patches, errors] = tally.counters();
    emit(json!({
        "event": "reconciled_all",
        "elapsed_ms": elapsed_ms,
        "cpu_ms": cpu_ms(),
        "reconciles": reconciles,
        "patches": patches,
        "errors": errors,
        "peak_rss_kib": peak_rss_kib()?,
    }));

    settle(tally, args.timeout).await?;
    let [reconciles, patches, errors] = tally.counters();
    emit(json!({
        "event": "settled",
        "cpu_ms": cpu_ms(),
        "reconciles": reconciles,
        "patches": patches,
        "errors": errors,
        "quiet_ms": QUIET.as_secs_f64() * 1e3,
    }));

    let mut base = (cpu_ms(), tally.counters());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("latency"), None) => {
                *tally.latency.lock().expect("tally lock") = Some(HashMap::new());
                base = (cpu_ms(), tally.counters());
                emit(json!({"event": "latency_armed"}));
            }
            (Some("latency_report"), Some(count)) => {
                let count: usize = count.parse().context("latency_report COUNT")?;
                tally
                    .wait("reconciling the changes", args.timeout, |t| {
                        t.latency_len() >= count
                    })
                    .await?;
                // The changes' own patches are reconciled once more: count those too.
                settle(tally, args.timeout).await?;
                let starts = tally
                    .latency
                    .lock()
                    .expect("tally lock")
                    .clone()
                    .unwrap_or_default();
                let [reconciles, patches, errors] = tally.counters();
                let [r0, p0, e0] = base.1;
                emit(json!({
                    "event": "latency",
                    "starts": starts,
                    "cpu_ms": cpu_ms() - base.0,
                    "reconciles": reconciles - r0,
                    "patches": patches - p0,
                    "errors": errors - e0,
                }));
            }
            (Some("exit"), None) => break,
            (None, _) => {}
            _ => bail!("unknown command `{line}`"),
        }
    }
    Ok(())
}

/// Waits until no reconcile is running and none has for [`QUIET`].
async fn settle(tally: &Tally, limit: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let idle_ns = boottime_ns().saturating_sub(tally.last_activity_ns.load(Ordering::Acquire));
        if tally.in_flight.load(Ordering::Acquire) == 0 && idle_ns >= QUIET.as_nanos() as u64 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "settling: reconciles still running after {} s",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
