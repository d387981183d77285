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
        "held_bytes_per_object",
        "held per object, bytes ((RSS after sync − RSS before listing) ÷ N)",
        &["sync", "held_bytes_per_object"],
        1.0,
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
