//! Medians, ratios, the table, and the machine and version facts.

use super::*;

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The metrics of the table: (key, label, how to read it from a run, unit scale).
pub(super) const METRICS: &[Metric] = &[
    (
        "sync_ms",
        "initial sync, ms (process start → cache ready)",
        &["sync", "elapsed_ms"],
        1.0,
    ),
    (
        "sync_cpu_ms",
        "initial sync, CPU ms (user + system)",
        &["sync", "cpu_ms"],
        1.0,
    ),
    (
        "sync_peak_rss_mib",
        "peak RSS at sync, MiB",
        &["sync", "peak_rss_kib"],
        1.0 / 1024.0,
    ),
    (
        "steady_rss_mib",
        "RSS after sync (steady), MiB",
        &["relist", "steady_rss_kib"],
        1.0 / 1024.0,
    ),
    (
        "relist_peak_rss_mib",
        "peak RSS during relist, MiB",
        &["relist", "peak_rss_kib"],
        1.0 / 1024.0,
    ),
    (
        "relist_peak_over_steady",
        "relist peak ÷ steady RSS",
        &["relist", "peak_over_steady"],
        1.0,
    ),
    (
        "watch_cpu_us_per_event",
        "watch: CPU per event, µs",
        &["watch", "cpu_us_per_event"],
        1.0,
    ),
];

/// One row of a scenario's metric table: key, label, the path to the value in a run's JSON, and the
/// factor that turns it into the unit of the label.
pub(super) type Metric = (&'static str, &'static str, &'static [&'static str], f64);

pub(super) fn medians(runs: &[Value]) -> BTreeMap<&'static str, f64> {
    medians_of(METRICS, runs)
}

/// The median over `runs` of each of `metrics`, keyed by the metric's key (NaN where no run has it).
pub(super) fn medians_of(metrics: &[Metric], runs: &[Value]) -> BTreeMap<&'static str, f64> {
    metrics
        .iter()
        .map(|(key, _, path, scale)| {
            let values = runs
                .iter()
                .map(|r| {
                    path.iter()
                        .fold(r, |v, p| &v[*p])
                        .as_f64()
                        .unwrap_or(f64::NAN)
                        * scale
                })
                .collect();
            (*key, median(values))
        })
        .collect()
}

/// Prints a report's table and writes the whole report, as pretty JSON, to
/// `out` (creating its folder).
pub(super) fn publish(report: &Value, out: &Path) -> Result<()> {
    println!();
    println!("{}", report["table"].as_str().unwrap_or_default());
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::write(out, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("write {}", out.display()))?;
    println!("results: {}", out.display());
    Ok(())
}

/// The "met" column of a report table: whether `measured` is within `limit`, or "not measured".
pub(super) fn verdict(measured: f64, limit: f64) -> &'static str {
    if !measured.is_finite() {
        "not measured"
    } else if measured <= limit {
        "yes"
    } else {
        "**no**"
    }
}

/// The report's first line: the machine, the Kubernetes and etcd versions, ending in a newline.
pub(super) fn machine_line(machine: &Value, versions: &Value) -> String {
    format!(
        "Machine: {} ({} cores), {} GiB RAM, Linux {}, {}; kube-apiserver {} + etcd {} on 127.0.0.1 on the same machine.\n",
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["nproc"],
        fmt_num(machine["memory_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0 / 1024.0),
        machine["kernel"].as_str().unwrap_or("?"),
        machine["date"].as_str().unwrap_or("?"),
        versions["kubernetes"].as_str().unwrap_or("?"),
        versions["etcd"].as_str().unwrap_or("?"),
    )
}

pub(super) fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(super) fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}×")
    } else {
        "–".into()
    }
}

pub(super) fn report(
    root: &Path,
    opts: &Options,
    runs: &BTreeMap<Kind, Vec<Value>>,
    decode: &Value,
    took: Duration,
) -> Result<Value> {
    let med: BTreeMap<Kind, BTreeMap<&str, f64>> =
        runs.iter().map(|(k, r)| (*k, medians(r))).collect();
    let get = |k: Kind, key: &str| {
        med.get(&k)
            .and_then(|m| m.get(key))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let ratio = |key: &str, other: Kind| get(Kind::Ours, key) / get(other, key);

    // Targets of issue #7.
    let list_ratio = decode["list"]["result"]["ratio"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let watch_ratio = decode["watch"]["result"]["ratio"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let watch_direct_ratio = decode["watch"]["result"]["ratio_vs_direct"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let targets: Vec<(&str, &str, f64, f64)> = vec![
        (
            "sync_vs_kube_rs",
            "initial sync ≤ 0.7× kube-rs",
            ratio("sync_ms", Kind::KubeRs),
            0.7,
        ),
        (
            "sync_vs_client_go",
            "initial sync ≤ 1.0× client-go",
            ratio("sync_ms", Kind::ClientGo),
            1.0,
        ),
        (
            "peak_rss_vs_kube_rs",
            "peak RSS ≤ 0.6× kube-rs",
            ratio("sync_peak_rss_mib", Kind::KubeRs),
            0.6,
        ),
        (
            "relist_peak_over_steady",
            "relist peak ≤ 1.2× steady",
            get(Kind::Ours, "relist_peak_over_steady"),
            1.2,
        ),
        (
            "decode_list_vs_floor",
            "list decode ≤ 1.3× floor",
            list_ratio,
            1.3,
        ),
        (
            "decode_watch_vs_floor",
            "watch decode ≤ 1.3× floor",
            watch_ratio,
            1.3,
        ),
        (
            "decode_watch_vs_direct",
            "watch decode ≤ 1.3× a direct typed decode (stricter floor)",
            watch_direct_ratio,
            1.3,
        ),
    ];
    let machine = machine_info();
    let versions = versions(root)?;
    let mut t = machine_line(&machine, &versions);
    t.push_str(&format!(
        "N = {} ConfigMaps (~1 KiB data each), M = {} changes, K = {} runs per client (medians); ours = kube-runtime Reflector, kube-rs {} (reflector + watcher), client-go {} (SharedIndexInformer){}.\n\n",
        opts.objects,
        opts.mods,
        opts.runs,
        versions["kube_rs"].as_str().unwrap_or("?"),
        versions["client_go"].as_str().unwrap_or("?"),
        match (opts.debug, opts.compression) {
            (true, true) => "; DEBUG builds",
            (true, false) => "; DEBUG builds; compression off",
            (false, false) => "; compression off in every kubeconfig",
            (false, true) => "",
        },
    ));
    t.push_str("| metric | ours | kube-rs | client-go | ours ÷ kube-rs | ours ÷ client-go | target | met |\n");
    t.push_str("|---|---:|---:|---:|---:|---:|---|---|\n");
    for (key, label, _, _) in METRICS {
        if !opts.relist && (key.contains("relist") || key.starts_with("steady")) {
            continue;
        }
        let (target, met) = match *key {
            "sync_ms" => (
                "≤ 0.7× kube-rs, ≤ 1.0× client-go",
                format!(
                    "{} / {}",
                    verdict(ratio(key, Kind::KubeRs), 0.7),
                    verdict(ratio(key, Kind::ClientGo), 1.0)
                ),
            ),
            "sync_peak_rss_mib" => (
                "≤ 0.6× kube-rs",
                verdict(ratio(key, Kind::KubeRs), 0.6).to_string(),
            ),
            "relist_peak_over_steady" => {
                ("ours ≤ 1.2", verdict(get(Kind::Ours, key), 1.2).to_string())
            }
            _ => ("", String::new()),
        };
        t.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {target} | {met} |\n",
            fmt_num(get(Kind::Ours, key)),
            fmt_num(get(Kind::KubeRs, key)),
            fmt_num(get(Kind::ClientGo, key)),
            fmt_ratio(ratio(key, Kind::KubeRs)),
            fmt_ratio(ratio(key, Kind::ClientGo)),
        ));
    }
    let d = |part: &str, field: &str| decode[part]["result"][field].as_f64().unwrap_or(f64::NAN);
    t.push_str(&format!(
        "\nDecoding, in one process, CPU time per object (median of {} runs; payloads captured from the server in this run):\n\n",
        opts.decode_runs
    ));
    t.push_str("| payload (floor: plain `serde_json::from_slice` into …) | floor, µs | ours, µs | ours ÷ floor | target | met |\n");
    t.push_str("|---|---:|---:|---:|---|---|\n");
    let watch_label = format!(
        "watch, {} events, {:.1} MiB in {} chunks",
        decode["watch"]["events"],
        decode["watch"]["bytes"].as_f64().unwrap_or(f64::NAN) / 1048576.0,
        decode["watch"]["chunks"]
    );
    for (part, label, floor, r) in [
        (
            "list",
            format!(
                "list, {} pages, {} objects, {:.1} MiB (k8s-openapi `List<ConfigMap>`)",
                decode["list"]["pages"],
                decode["list"]["objects"],
                decode["list"]["bytes"].as_f64().unwrap_or(f64::NAN) / 1048576.0
            ),
            "floor",
            list_ratio,
        ),
        (
            "watch",
            format!("{watch_label} (k8s-openapi `WatchEvent<ConfigMap>`)"),
            "floor",
            watch_ratio,
        ),
        (
            "watch",
            format!("{watch_label} (a struct `{{type, object: ConfigMap}}`: no `Value` detour)"),
            "direct",
            watch_direct_ratio,
        ),
    ] {
        t.push_str(&format!(
            "| {label} | {} | {} | {} | ≤ 1.3× | {} |\n",
            fmt_num(d(part, &format!("{floor}_ns_per_object")) / 1e3),
            fmt_num(d(part, "ours_ns_per_object") / 1e3),
            fmt_ratio(r),
            verdict(r, 1.3)
        ));
    }
    let short: Vec<String> = targets
        .iter()
        .filter(|(_, _, m, l)| m.is_finite() && m > l)
        .map(|(_, label, m, _)| format!("{label}: measured {m:.2}×"))
        .collect();
    if !short.is_empty() {
        t.push_str(&format!("\nShort of the targets: {}.\n", short.join("; ")));
    }

    Ok(json!({
        "machine": machine,
        "versions": versions,
        "config": {
            "objects": opts.objects,
            "runs": opts.runs,
            "mods": opts.mods,
            "relist": opts.relist,
            "compression": if opts.compression {
                "each client's default (ours, client-go: gzip; kube-rs: none)"
            } else {
                "disabled in every client's kubeconfig"
            },
            "quick": opts.quick,
            "smoke": opts.smoke,
            "build": if opts.debug { "debug" } else { "release" },
            "namespace": NAMESPACE,
            "decode_runs": opts.decode_runs,
            "decode_min_ms_per_run": opts.decode_min_ms,
            "clients": opts.clients.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "elapsed_ms": "process start (kernel starttime, /proc/self/stat field 22) to cache ready, as the client reports it; observed_ms is the orchestrator's spawn-to-line time",
        },
        "clients": runs.iter().map(|(k, r)| {
            (k.name().to_string(), json!({
                "runs": r,
                "median": med.get(k),
            }))
        }).collect::<serde_json::Map<_, _>>(),
        "decode": decode,
        "targets": targets.iter().map(|(key, label, measured, limit)| json!({
            "key": key,
            "target": label,
            "limit": limit,
            "measured": if measured.is_finite() { json!(measured) } else { Value::Null },
            "met": measured.is_finite().then_some(measured <= limit),
        })).collect::<Vec<_>>(),
        "took_s": took.as_secs_f64(),
        "table": t,
    }))
}

pub(super) fn check_smoke(
    opts: &Options,
    runs: &BTreeMap<Kind, Vec<Value>>,
    decode: &Value,
) -> Result<()> {
    for kind in &opts.clients {
        let r = runs
            .get(kind)
            .and_then(|r| r.first())
            .with_context(|| format!("{} reported nothing", kind.name()))?;
        let finite = |v: &Value| v.as_f64().is_some_and(f64::is_finite);
        ensure!(
            finite(&r["sync"]["elapsed_ms"]),
            "{}: no sync time",
            kind.name()
        );
        ensure!(
            finite(&r["sync"]["peak_rss_kib"]),
            "{}: no peak RSS",
            kind.name()
        );
        ensure!(
            r["watch"]["events"].as_f64() >= Some(opts.mods as f64),
            "{}: saw {} of {} changes",
            kind.name(),
            r["watch"]["events"],
            opts.mods
        );
        if opts.relist {
            ensure!(
                finite(&r["relist"]["peak_over_steady"]),
                "{}: no relist peak",
                kind.name()
            );
        }
    }
    for part in ["list", "watch"] {
        ensure!(
            decode[part]["result"]["ratio"]
                .as_f64()
                .is_some_and(f64::is_finite),
            "decode {part}: no ratio"
        );
    }
    Ok(())
}

pub(super) fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub(super) fn machine_info() -> Value {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default();
    json!({
        "cpu_model": cpu_model,
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_kib": memory_kib,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "date": utc_now(),
        "rustc": command_line("rustc", &["--version"]),
        "go": command_line("go", &["version"]),
    })
}

pub(super) fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SSZ` now.
pub(super) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(super) fn versions(root: &Path) -> Result<Value> {
    let lock = std::fs::read_to_string(root.join("bench/Cargo.lock")).unwrap_or_default();
    let locked = |name: &str| -> String {
        let header = format!("name = \"{name}\"");
        lock.split("[[package]]")
            .find(|block| block.lines().any(|l| l.trim() == header))
            .and_then(|block| {
                block
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("version = "))
            })
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "?".into())
    };
    let gomod = std::fs::read_to_string(root.join("bench/client-go/go.mod")).unwrap_or_default();
    let client_go = gomod
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("k8s.io/client-go "))
        .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
        .unwrap_or_else(|| "?".into());
    let pins = Pins::read().context("read the control plane's pins")?;
    Ok(json!({
        "kube_rs": locked("kube"),
        "k8s_openapi": locked("k8s-openapi"),
        "client_go": client_go,
        "kubernetes": pins.kubernetes,
        "etcd": pins.etcd,
        "ours": locked("kube-client"),
    }))
}
