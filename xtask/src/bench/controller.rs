//! The controller scenario (`--scenario controller`): our
//! `kube_runtime` Controller against kube-rs's, the same reconcile in both
//! (a merge patch copying the annotation `kube-bench/want` into
//! `kube-bench/seen`; the reconcile and the protocol are in
//! `bench/common/src/controller.rs`).
//!
//! One run of one controller:
//!
//! 1. The driver creates a fresh namespace and N ConfigMaps in it, each
//!    with `want: initial` — all before the controller starts, so its first
//!    list holds all N and every one needs a reconcile at once.
//! 2. The controller process starts. **Time to reconcile all**: from its
//!    start (the kernel's `starttime`, as the reflector scenario's sync) to
//!    the answer to the N-th distinct object's patch, as it reports it.
//!    It includes start-up and the initial list, the same for both.
//! 3. It settles (no reconcile for 1 s: each object's second, no-op
//!    reconcile, caused by its own patch, is done). **CPU per reconcile**:
//!    the process's user + system time since its start ÷ the reconciles it
//!    ran (both counted at that point); CPU per object is reported too.
//! 4. **Latency**: the driver changes L objects one at a time, R per second,
//!    noting `CLOCK_BOOTTIME` before sending each change and when the API
//!    server's answer arrived; the
//!    controller notes `CLOCK_BOOTTIME` at the start of the first reconcile
//!    that sees each change. Latency = start − the request's send: it
//!    includes the API server's write, the same for both, and is never
//!    negative. Against the driver's receipt of the answer it would leave
//!    the write out, but the watch event can leave the server before the
//!    driver has read its answer (by tens of ms on a loaded machine), so
//!    that one is reported too but not used for the target. Reported: p50,
//!    p99 and max.
//! 5. The driver lists the namespace: every object's `seen` must equal its
//!    `want`.
//!
//! The controllers run one at a time, the order rotating between runs. A
//! namespace is never reused (the test control plane has no namespace
//! controller to delete one), so each run starts from the same state.

use super::*;

/// `want` of every object when its controller starts (`INITIAL` in
/// `bench/common/src/controller.rs`).
const INITIAL: &str = "initial";

/// The options of this scenario.
#[derive(Debug, Clone)]
pub(crate) struct CtlOptions {
    /// ConfigMaps existing when the controller starts.
    pub(crate) objects: u64,
    /// Changes made one at a time in the latency phase.
    pub(crate) changes: u64,
    /// Changes per second in the latency phase.
    pub(crate) rate: f64,
    /// Reconciles in flight at most, the same for every controller.
    pub(crate) concurrency: u16,
    /// Where the JSON goes.
    pub(crate) out: PathBuf,
}

/// The metrics of the table: (key, label, where in a run, unit scale).
const METRICS: &[Metric] = &[
    (
        "reconcile_all_ms",
        "time to reconcile all, ms (process start → N-th patch answered)",
        &["burst", "elapsed_ms"],
        1.0,
    ),
    (
        "cpu_us_per_reconcile",
        "CPU per reconcile, µs (process user + system ÷ reconciles, at settle)",
        &["burst", "cpu_us_per_reconcile"],
        1.0,
    ),
    (
        "cpu_us_per_object",
        "CPU per object, µs (the same CPU ÷ N)",
        &["burst", "cpu_us_per_object"],
        1.0,
    ),
    (
        "reconciles_per_object",
        "reconciles per object (first + the no-op after its own patch)",
        &["burst", "reconciles_per_object"],
        1.0,
    ),
    (
        "peak_rss_mib",
        "peak RSS when all were reconciled, MiB",
        &["burst", "peak_rss_kib"],
        1.0 / 1024.0,
    ),
    (
        "latency_p50_ms",
        "reconcile-start latency after a change (from the request's send), p50, ms",
        &["latency", "p50_ms"],
        1.0,
    ),
    (
        "latency_p99_ms",
        "reconcile-start latency after a change, p99, ms",
        &["latency", "p99_ms"],
        1.0,
    ),
    (
        "latency_max_ms",
        "reconcile-start latency after a change, max, ms",
        &["latency", "max_ms"],
        1.0,
    ),
    (
        "latency_p50_from_answer_ms",
        "the same from the driver's receipt of the answer, p50, ms (can be < 0)",
        &["latency", "p50_from_answer_ms"],
        1.0,
    ),
    (
        "latency_p99_from_answer_ms",
        "the same from the receipt of the answer, p99, ms",
        &["latency", "p99_from_answer_ms"],
        1.0,
    ),
    (
        "latency_cpu_us_per_reconcile",
        "CPU per reconcile in the latency phase, µs (idle time included)",
        &["latency", "cpu_us_per_reconcile"],
        1.0,
    ),
];

/// The targets of issue 10: (key, label, metric, limit on ours ÷ kube-rs).
const TARGETS: &[(&str, &str, &str, f64)] = &[
    (
        "cpu_per_reconcile_vs_kube_rs",
        "CPU per reconcile ≤ 0.7× kube-rs",
        "cpu_us_per_reconcile",
        0.7,
    ),
    (
        "reconcile_all_vs_kube_rs",
        "time to reconcile all ≤ 1.0× kube-rs",
        "reconcile_all_ms",
        1.0,
    ),
    (
        "latency_p99_vs_kube_rs",
        "latency p99 ≤ 1.0× kube-rs",
        "latency_p99_ms",
        1.0,
    ),
];

/// The clients of this scenario: those of `--clients` with a controller program.
fn controllers(opts: &Options) -> Vec<Kind> {
    opts.clients
        .iter()
        .copied()
        .filter(|k| k.controller_binary().is_some())
        .collect()
}

pub(super) fn run(root: &Path, opts: &Options, bins: &Bins) -> Result<()> {
    let started = Instant::now();
    let ctl = &opts.ctl;
    let kinds = controllers(opts);
    let absent: Vec<&str> = opts
        .clients
        .iter()
        .filter(|k| k.controller_binary().is_none() && **k != Kind::ClientGo)
        .map(|k| k.name())
        .collect();
    println!(
        "==> bench controller: N={} objects, K={} runs, L={} changes at {}/s, {} reconciles in flight, controllers {}{}",
        ctl.objects,
        opts.runs,
        ctl.changes,
        ctl.rate,
        ctl.concurrency,
        kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        if opts.debug { " (debug builds)" } else { "" }
    );
    if !absent.is_empty() {
        println!(
            "    no controller program (yet) for: {} — not run",
            absent.join(", ")
        );
    }
    ensure!(
        !kinds.is_empty(),
        "no client of --clients has a controller program"
    );

    println!("==> bench controller: control plane");
    let (found, _) = binaries::ensure(|line| println!("    {line}"))?;
    let plane = ControlPlane::start(&found)?;
    let kubeconfig = plane.kubeconfig().to_path_buf();
    let log_dir = root.join("target/bench/logs");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("create {}", log_dir.display()))?;

    let mut runs: BTreeMap<Kind, Vec<Value>> = BTreeMap::new();
    for run in 0..opts.runs {
        for i in 0..kinds.len() {
            let kind = kinds[(i + run) % kinds.len()];
            let result = run_controller(kind, run + 1, opts, bins, &kubeconfig, &log_dir)
                .with_context(|| format!("{} controller (run {})", kind.name(), run + 1))?;
            println!("    {}", summary(kind, run + 1, &result));
            runs.entry(kind).or_default().push(result);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    plane.stop();

    let report = report(root, opts, &runs, &absent, started.elapsed())?;
    publish(&report, &ctl.out)?;
    if opts.smoke {
        check_smoke(opts, &kinds, &runs)?;
        println!("smoke: every controller ran, reconciled every object and reported");
    }
    Ok(())
}

fn run_controller(
    kind: Kind,
    run: usize,
    opts: &Options,
    bins: &Bins,
    kubeconfig: &Path,
    log_dir: &Path,
) -> Result<Value> {
    let ctl = &opts.ctl;
    let namespace = format!("kube-bench-ctl-{run}-{}", kind.name());
    let seeded = bins.driver_in(
        "seed",
        kubeconfig,
        &namespace,
        &[
            ("--objects", ctl.objects.to_string()),
            ("--concurrency", "16".into()),
            ("--want", INITIAL.into()),
        ],
    )?;
    ensure!(
        seeded["created"].as_u64() == Some(ctl.objects),
        "seeding {namespace}: created {} of {} (a namespace left from an earlier run?)",
        seeded["created"],
        ctl.objects
    );

    let limit = Duration::from_secs(bins.timeout_secs);
    let program = bins.path(kind.controller_binary().context("no controller program")?);
    let log = log_dir.join(format!("{}-controller-run{run}.log", kind.name()));
    let args = [
        "--kubeconfig".to_string(),
        kubeconfig.display().to_string(),
        "--namespace".into(),
        namespace.clone(),
        "--objects".into(),
        ctl.objects.to_string(),
        "--concurrency".into(),
        ctl.concurrency.to_string(),
        "--timeout-secs".into(),
        bins.timeout_secs.to_string(),
    ];
    let mut s = Session::spawn(kind.name(), &program, &args, &[], log)?;

    let all = s.expect("reconciled_all", limit)?;
    let settled = s.expect("settled", limit)?;
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let reconciles = f(&settled["reconciles"]);
    let cpu_ms = f(&settled["cpu_ms"]);

    s.send("latency")?;
    s.expect("latency_armed", Duration::from_secs(30))?;
    let changes = bins.driver_in(
        "changes",
        kubeconfig,
        &namespace,
        &[
            ("--objects", ctl.objects.to_string()),
            ("--mods", ctl.changes.to_string()),
            ("--rate", ctl.rate.to_string()),
            ("--tag", format!("change-{run}")),
        ],
    )?;
    s.send(&format!("latency_report {}", ctl.changes))?;
    let reported = s.expect("latency", limit)?;
    s.finish()?;

    let verified = bins.driver_in("verify", kubeconfig, &namespace, &[])?;
    ensure!(
        verified["objects"].as_u64() == Some(ctl.objects)
            && verified["reconciled"].as_u64() == Some(ctl.objects),
        "{namespace}: {} of {} objects have seen == want afterwards",
        verified["reconciled"],
        verified["objects"]
    );

    let latency = latencies(&changes, &reported)?;
    let latency_reconciles = f(&reported["reconciles"]);
    Ok(json!({
        "run": run,
        "namespace": namespace,
        "seed_ms": seeded["ms"],
        "burst": {
            "elapsed_ms": all["elapsed_ms"],
            "cpu_ms_at_all": all["cpu_ms"],
            "reconciles_at_all": all["reconciles"],
            "peak_rss_kib": all["peak_rss_kib"],
            "cpu_ms": cpu_ms,
            "reconciles": reconciles,
            "patches": settled["patches"],
            "errors": settled["errors"],
            "cpu_us_per_reconcile": cpu_ms * 1e3 / reconciles,
            "cpu_us_per_object": cpu_ms * 1e3 / ctl.objects as f64,
            "reconciles_per_object": reconciles / ctl.objects as f64,
        },
        "latency": {
            "changes": ctl.changes,
            "rate_per_s": ctl.rate,
            "driver_ms": changes["ms"],
            "p50_ms": latency.p50,
            "p99_ms": latency.p99,
            "max_ms": latency.max,
            "min_ms": latency.min,
            "p50_from_answer_ms": latency.p50_from_answer,
            "p99_from_answer_ms": latency.p99_from_answer,
            "reconciles": latency_reconciles,
            "patches": reported["patches"],
            "errors": reported["errors"],
            "cpu_ms": reported["cpu_ms"],
            "cpu_us_per_reconcile": f(&reported["cpu_ms"]) * 1e3 / latency_reconciles,
            "each_ms": latency.each,
        },
        "verified": verified,
    }))
}

struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
    min: f64,
    p50_from_answer: f64,
    p99_from_answer: f64,
    each: Vec<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Joins the driver's change times with the controller's reconcile starts.
fn latencies(changes: &Value, reported: &Value) -> Result<Latency> {
    let list = changes["changes"]
        .as_array()
        .context("the driver reported no changes")?;
    let starts = reported["starts"]
        .as_object()
        .context("the controller reported no starts")?;
    let (mut from_send, mut from_answer) = (Vec::new(), Vec::new());
    for change in list {
        let want = change["want"].as_str().context("a change without `want`")?;
        let start = starts
            .get(want)
            .and_then(Value::as_u64)
            .with_context(|| format!("no reconcile start for change {want}"))?;
        let ns = |key: &str| change[key].as_u64().context("a change without times");
        from_send.push((start as f64 - ns("sent_ns")? as f64) / 1e6);
        from_answer.push((start as f64 - ns("acked_ns")? as f64) / 1e6);
    }
    let each = from_send.clone();
    from_send.sort_by(f64::total_cmp);
    from_answer.sort_by(f64::total_cmp);
    Ok(Latency {
        p50: percentile(&from_send, 50.0),
        p99: percentile(&from_send, 99.0),
        max: from_send.last().copied().unwrap_or(f64::NAN),
        min: from_send.first().copied().unwrap_or(f64::NAN),
        p50_from_answer: percentile(&from_answer, 50.0),
        p99_from_answer: percentile(&from_answer, 99.0),
        each,
    })
}

fn summary(kind: Kind, run: usize, r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    format!(
        "run {run} {:<7}: all reconciled in {:.0} ms, {:.1} µs CPU/reconcile ({:.2} reconciles/object), latency p50 {:.2} ms p99 {:.2} ms",
        kind.name(),
        f(&r["burst"]["elapsed_ms"]),
        f(&r["burst"]["cpu_us_per_reconcile"]),
        f(&r["burst"]["reconciles_per_object"]),
        f(&r["latency"]["p50_ms"]),
        f(&r["latency"]["p99_ms"]),
    )
}

fn medians(runs: &[Value]) -> BTreeMap<&'static str, f64> {
    medians_of(METRICS, runs)
}

fn report(
    root: &Path,
    opts: &Options,
    runs: &BTreeMap<Kind, Vec<Value>>,
    absent: &[&str],
    took: Duration,
) -> Result<Value> {
    let ctl = &opts.ctl;
    let med: BTreeMap<Kind, BTreeMap<&str, f64>> =
        runs.iter().map(|(k, r)| (*k, medians(r))).collect();
    let get = |k: Kind, key: &str| {
        med.get(&k)
            .and_then(|m| m.get(key))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let ratio = |key: &str| get(Kind::Ours, key) / get(Kind::KubeRs, key);

    let machine = machine_info();
    let versions = versions(root)?;
    let mut t = machine_line(&machine, &versions);
    t.push_str(&format!(
        "Controller scenario: N = {} ConfigMaps existing at start, reconcile = one merge patch of an annotation, {} reconciles in flight at most; L = {} changes at {}/s for the latency; K = {} runs per controller (medians); ours = kube-runtime Controller, kube-rs {} (`Controller`){}.\n\n",
        ctl.objects,
        ctl.concurrency,
        ctl.changes,
        ctl.rate,
        opts.runs,
        versions["kube_rs"].as_str().unwrap_or("?"),
        if opts.debug { "; DEBUG builds" } else { "" },
    ));
    if !absent.is_empty() {
        t.push_str(&format!(
            "Not run (no controller program yet): {}.\n\n",
            absent.join(", ")
        ));
    }
    t.push_str("| metric | ours | kube-rs | ours ÷ kube-rs | target | met |\n");
    t.push_str("|---|---:|---:|---:|---|---|\n");
    for (key, label, _, _) in METRICS {
        let (target, met) = TARGETS
            .iter()
            .find(|(_, _, metric, _)| metric == key)
            .map(|(_, _, _, limit)| {
                (
                    format!("≤ {limit:.1}× kube-rs"),
                    verdict(ratio(key), *limit),
                )
            })
            .unwrap_or_default();
        t.push_str(&format!(
            "| {label} | {} | {} | {} | {target} | {met} |\n",
            fmt_num(get(Kind::Ours, key)),
            fmt_num(get(Kind::KubeRs, key)),
            fmt_ratio(ratio(key)),
        ));
    }
    let short: Vec<String> = TARGETS
        .iter()
        .filter(|(_, _, key, limit)| ratio(key).is_finite() && ratio(key) > *limit)
        .map(|(_, label, key, _)| format!("{label}: measured {:.2}×", ratio(key)))
        .collect();
    if !short.is_empty() {
        t.push_str(&format!("\nShort of the targets: {}.\n", short.join("; ")));
    }

    Ok(json!({
        "machine": machine,
        "versions": versions,
        "config": {
            "scenario": "controller",
            "objects": ctl.objects,
            "changes": ctl.changes,
            "rate_per_s": ctl.rate,
            "concurrency": ctl.concurrency,
            "runs": opts.runs,
            "smoke": opts.smoke,
            "build": if opts.debug { "debug" } else { "release" },
            "not_run": absent,
            "reconcile": "merge patch metadata.annotations[kube-bench/seen] = annotations[kube-bench/want] unless equal; Action::await_change",
            "elapsed_ms": "process start (kernel starttime) to the answer of the N-th distinct object's patch, as the controller reports it",
            "latency": "controller's reconcile start (CLOCK_BOOTTIME) minus the driver's send of the change request (each_ms, p50_ms, p99_ms); *_from_answer_ms: minus the driver's receipt of the answer",
        },
        "controllers": runs.iter().map(|(k, r)| {
            (k.name().to_string(), json!({"runs": r, "median": med.get(k)}))
        }).collect::<serde_json::Map<_, _>>(),
        "targets": TARGETS.iter().map(|(key, label, metric, limit)| {
            let measured = ratio(metric);
            json!({
                "key": key,
                "target": label,
                "limit": limit,
                "measured": if measured.is_finite() { json!(measured) } else { Value::Null },
                "met": measured.is_finite().then_some(measured <= *limit),
            })
        }).collect::<Vec<_>>(),
        "took_s": took.as_secs_f64(),
        "table": t,
    }))
}

fn check_smoke(opts: &Options, kinds: &[Kind], runs: &BTreeMap<Kind, Vec<Value>>) -> Result<()> {
    for kind in kinds {
        let r = runs
            .get(kind)
            .and_then(|r| r.first())
            .with_context(|| format!("{} controller reported nothing", kind.name()))?;
        let finite = |v: &Value| v.as_f64().is_some_and(f64::is_finite);
        ensure!(
            finite(&r["burst"]["elapsed_ms"]),
            "{}: no reconcile-all time",
            kind.name()
        );
        ensure!(
            r["burst"]["reconciles"].as_f64() >= Some(opts.ctl.objects as f64),
            "{}: {} reconciles for {} objects",
            kind.name(),
            r["burst"]["reconciles"],
            opts.ctl.objects
        );
        ensure!(
            finite(&r["latency"]["p99_ms"]),
            "{}: no latency",
            kind.name()
        );
    }
    Ok(())
}
