//! The reflector scenario's report: per kind of object and size, the
//! medians of every variant, the targets of issues #7 and #14 with the
//! measured ratio and "yes"/"**no**" side by side, the linearity of the
//! curve, and the decode floor; as markdown (printed, and under `table` in
//! the JSON) and as JSON (`curves`, `targets`, `decode`).
//!
//! A target whose reference did not run (a variant not available, a client
//! left out) says "not measured": it is never counted as met.

use super::curve::{Curve, Point};
use super::*;

/// The variants in the order of the table's columns.
const COLUMNS: [Variant; 6] = [
    Variant::OURS_JSON,
    Variant::OURS_PROTOBUF,
    Variant::OURS_COMPACT,
    Variant::KUBE_RS,
    Variant::CLIENT_GO_JSON,
    Variant::CLIENT_GO_PROTOBUF,
];

/// One target at one size: key, label, measured ratio, limit.
pub(super) struct TargetRow {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) measured: f64,
    pub(super) limit: f64,
}

impl TargetRow {
    fn json(&self, resource: Resource, objects: u64) -> Value {
        json!({
            "key": self.key,
            "resource": resource.name(),
            "objects": objects,
            "target": self.label,
            "limit": self.limit,
            "measured": if self.measured.is_finite() { json!(self.measured) } else { Value::Null },
            "met": self.measured.is_finite().then_some(self.measured <= self.limit),
        })
    }
}

type Medians = BTreeMap<Variant, BTreeMap<&'static str, f64>>;

fn medians_of_point(point: &Point) -> Medians {
    point.runs.iter().map(|(v, r)| (*v, medians(r))).collect()
}

fn get(med: &Medians, v: Variant, key: &str) -> f64 {
    med.get(&v)
        .and_then(|m| m.get(key))
        .copied()
        .unwrap_or(f64::NAN)
}

/// The targets at one size, for each of our variants that ran.
fn targets_at(med: &Medians) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    for ours in [
        Variant::OURS_COMPACT,
        Variant::OURS_PROTOBUF,
        Variant::OURS_JSON,
    ] {
        if !med.contains_key(&ours) {
            continue;
        }
        let o = ours.name();
        let ratio = |key: &str, other: Variant| get(med, ours, key) / get(med, other, key);
        for (key, label, measured, limit) in [
            (
                "sync_vs_kube_rs",
                format!("{o}: initial sync ≤ 0.7× kube-rs"),
                ratio("sync_ms", Variant::KUBE_RS),
                0.7,
            ),
            (
                "sync_vs_client_go_protobuf",
                format!("{o}: initial sync ≤ 1.0× client-go-protobuf"),
                ratio("sync_ms", Variant::CLIENT_GO_PROTOBUF),
                1.0,
            ),
            (
                "peak_rss_vs_kube_rs",
                format!("{o}: peak RSS ≤ 0.5× kube-rs"),
                ratio("sync_peak_rss_mib", Variant::KUBE_RS),
                0.5,
            ),
            (
                "peak_rss_vs_client_go_json",
                format!("{o}: peak RSS ≤ 0.6× client-go-json"),
                ratio("sync_peak_rss_mib", Variant::CLIENT_GO_JSON),
                0.6,
            ),
            (
                "peak_rss_vs_client_go_protobuf",
                format!("{o}: peak RSS ≤ 0.6× client-go-protobuf"),
                ratio("sync_peak_rss_mib", Variant::CLIENT_GO_PROTOBUF),
                0.6,
            ),
            (
                "relist_peak_over_steady",
                format!("{o}: relist peak ≤ 1.2× steady RSS"),
                get(med, ours, "relist_peak_over_steady"),
                1.2,
            ),
        ] {
            rows.push(TargetRow {
                key: format!("{o}/{key}"),
                label,
                measured,
                limit,
            });
        }
    }
    rows.push(TargetRow {
        key: "watch_cpu_protobuf_vs_json".into(),
        label: "watch CPU per event: ours-protobuf ≤ 0.5× ours-json".into(),
        measured: get(med, Variant::OURS_PROTOBUF, "watch_cpu_us_per_event")
            / get(med, Variant::OURS_JSON, "watch_cpu_us_per_event"),
        limit: 0.5,
    });
    rows
}

/// Linearity between consecutive sizes a < b: cost(b) ÷ cost(a) for sync
/// time and peak RSS, against 1.1 × b ÷ a (11× for 10× the objects).
fn linearity(curve: &Curve, meds: &[Medians]) -> Vec<(Variant, u64, u64, TargetRow, TargetRow)> {
    let mut rows = Vec::new();
    for (i, pair) in curve.points.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        let limit = 1.1 * b.objects as f64 / a.objects as f64;
        for v in COLUMNS {
            if !meds[i].contains_key(&v) || !meds[i + 1].contains_key(&v) {
                continue;
            }
            let r = |key: &str| get(&meds[i + 1], v, key) / get(&meds[i], v, key);
            let row = |what: &str, key: &str| TargetRow {
                key: format!("{}/linearity_{what}_{}_{}", v.name(), a.objects, b.objects),
                label: format!(
                    "{}: {what} at N={} ≤ {limit:.1}× N={}",
                    v.name(),
                    b.objects,
                    a.objects
                ),
                measured: r(key),
                limit,
            };
            rows.push((
                v,
                a.objects,
                b.objects,
                row("time", "sync_ms"),
                row("memory", "sync_peak_rss_mib"),
            ));
        }
    }
    rows
}

fn describe(resource: Resource) -> &'static str {
    match resource {
        Resource::ConfigMaps => "ConfigMaps (~1 KiB of data each)",
        Resource::Pods => {
            "Pods (two containers with env, resources, probes, mounts; tolerations, affinity; Pending)"
        }
    }
}

pub(super) fn report(
    root: &Path,
    opts: &Options,
    curves: &[Curve],
    decode: &Value,
    took: Duration,
) -> Result<Value> {
    let machine = machine_info();
    let versions = versions(root)?;
    let mut t = machine_line(&machine, &versions);
    t.push_str(&format!(
        "M = {} changes, K = {} runs per variant and size (medians); ours = kube-runtime Reflector ({}), kube-rs {} (reflector + watcher), client-go {} (SharedIndexInformer; -protobuf: ContentType protobuf, JSON accepted as fallback){}.\n",
        opts.mods,
        opts.runs,
        versions["ours"].as_str().unwrap_or("?"),
        versions["kube_rs"].as_str().unwrap_or("?"),
        versions["client_go"].as_str().unwrap_or("?"),
        match (opts.debug, opts.compression) {
            (true, true) => "; DEBUG builds",
            (true, false) => "; DEBUG builds; compression off",
            (false, false) => "; compression off in every kubeconfig",
            (false, true) => "",
        },
    ));
    let mut all_targets = Vec::new();
    let mut curves_json = serde_json::Map::new();
    for curve in curves {
        let meds: Vec<Medians> = curve.points.iter().map(medians_of_point).collect();
        let stored = curve
            .points
            .last()
            .map(|p| &p.seed["stored_json_bytes"])
            .cloned()
            .unwrap_or(Value::Null);
        t.push_str(&format!(
            "\n### {} — one object: {} bytes of JSON as the server returns it\n",
            describe(curve.resource),
            stored
        ));
        for (v, reason) in &curve.unavailable {
            t.push_str(&format!("\n{}: not available ({reason}).\n", v.name()));
        }
        let columns: Vec<Variant> = COLUMNS
            .into_iter()
            .filter(|v| opts.variants.contains(v) && !curve.unavailable.contains_key(v))
            .collect();
        let mut points_json = Vec::new();
        for (point, med) in curve.points.iter().zip(&meds) {
            t.push_str(&format!("\n#### N = {}\n\n", point.objects));
            t.push_str("| metric |");
            for v in &columns {
                t.push_str(&format!(" {} |", v.name()));
            }
            t.push_str("\n|---|");
            t.push_str(&"---:|".repeat(columns.len()));
            t.push('\n');
            for (key, label, _, _) in METRICS {
                if !opts.relist && (key.contains("relist") || key.starts_with("steady")) {
                    continue;
                }
                t.push_str(&format!("| {label} |"));
                for v in &columns {
                    t.push_str(&format!(" {} |", fmt_num(get(med, *v, key))));
                }
                t.push('\n');
            }
            if let Some(variants) = point.heap["variants"].as_object() {
                t.push_str(&format!(
                    "\nA store's heap per object at this N (`bench-driver heap`, counted by the allocator; {:.0} bytes of list JSON per object): {}.\n",
                    point.heap["json_bytes_per_object"].as_f64().unwrap_or(f64::NAN),
                    variants
                        .iter()
                        .map(|(name, v)| format!(
                            "{name} {} bytes in {} allocations",
                            fmt_num(v["live_bytes_per_object"].as_f64().unwrap_or(f64::NAN)),
                            fmt_num(v["live_allocations_per_object"].as_f64().unwrap_or(f64::NAN))
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let targets = targets_at(med);
            t.push_str("\n| target | measured | met |\n|---|---:|---|\n");
            for row in &targets {
                if !opts.relist && row.key.contains("relist") {
                    continue;
                }
                t.push_str(&format!(
                    "| {} | {} | {} |\n",
                    row.label,
                    fmt_ratio(row.measured),
                    verdict(row.measured, row.limit)
                ));
            }
            let targets_json: Vec<Value> = targets
                .iter()
                .map(|r| r.json(curve.resource, point.objects))
                .collect();
            all_targets.extend(targets_json.iter().cloned());
            points_json.push(json!({
                "objects": point.objects,
                "seed": point.seed,
                "heap": point.heap,
                "variants": point.runs.iter().map(|(v, r)| {
                    (v.name(), json!({"runs": r, "median": med.get(v)}))
                }).collect::<serde_json::Map<_, _>>(),
                "targets": targets_json,
            }));
        }
        let lin = linearity(curve, &meds);
        let mut lin_json = Vec::new();
        if !lin.is_empty() {
            t.push_str("\n#### Linearity (cost at the larger N ÷ cost at the smaller)\n\n");
            t.push_str("| variant | N | sync time | peak RSS | limit | met (time / memory) |\n|---|---|---:|---:|---:|---|\n");
            for (v, a, b, time, memory) in &lin {
                t.push_str(&format!(
                    "| {} | {a} → {b} | {} | {} | ≤ {:.1}× | {} / {} |\n",
                    v.name(),
                    fmt_ratio(time.measured),
                    fmt_ratio(memory.measured),
                    time.limit,
                    verdict(time.measured, time.limit),
                    verdict(memory.measured, memory.limit)
                ));
                for row in [time, memory] {
                    let j = row.json(curve.resource, *b);
                    all_targets.push(j.clone());
                    lin_json.push(j);
                }
            }
        }
        curves_json.insert(
            curve.resource.name().to_string(),
            json!({
                "namespace": curve.resource.namespace(),
                "object_json_bytes": {
                    "created": curve.points.last().map(|p| p.seed["created_json_bytes"].clone()),
                    "stored": stored,
                },
                "unavailable": curve.unavailable.iter()
                    .map(|(v, r)| (v.name(), json!(r)))
                    .collect::<serde_json::Map<_, _>>(),
                "points": points_json,
                "linearity": lin_json,
            }),
        );
    }
    if !decode.is_null() {
        decode_table(&mut t, opts, decode, &mut all_targets);
    }
    let short: Vec<String> = all_targets
        .iter()
        .filter(|r| r["met"] == json!(false))
        .map(|r| {
            format!(
                "{} (N={} {}): {:.2}×",
                r["target"].as_str().unwrap_or("?"),
                r["objects"],
                r["resource"].as_str().unwrap_or(""),
                r["measured"].as_f64().unwrap_or(f64::NAN)
            )
        })
        .collect();
    if !short.is_empty() {
        t.push_str(&format!("\nShort of the targets: {}.\n", short.join("; ")));
    }

    Ok(json!({
        "machine": machine,
        "versions": versions,
        "config": {
            "objects": opts.sizes,
            "pod_objects": opts.pod_sizes,
            "resources": opts.resources.iter().map(|r| r.name()).collect::<Vec<_>>(),
            "variants": opts.variants.iter().map(|v| v.name()).collect::<Vec<_>>(),
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
            "decode_runs": opts.decode_runs,
            "decode_min_ms_per_run": opts.decode_min_ms,
            "elapsed_ms": "process start (kernel starttime, /proc/self/stat field 22) to cache ready, as the client reports it; observed_ms is the orchestrator's spawn-to-line time",
            "held_bytes_per_object": "(VmRSS after sync − VmRSS with the client built, before listing) × 1024 ÷ N",
        },
        "curves": curves_json,
        "decode": decode,
        "targets": all_targets,
        "took_s": took.as_secs_f64(),
        "table": t,
    }))
}

/// The decode floor's table (issue #7's targets), appended to `t`.
fn decode_table(t: &mut String, opts: &Options, decode: &Value, targets: &mut Vec<Value>) {
    let d = |part: &str, field: &str| decode[part]["result"][field].as_f64().unwrap_or(f64::NAN);
    t.push_str(&format!(
        "\nDecoding ConfigMaps, in one process, CPU time per object (median of {} runs; payloads captured from the server in this run, N = {}):\n\n",
        opts.decode_runs, decode["list"]["objects"]
    ));
    t.push_str("| payload (floor: plain `serde_json::from_slice` into …) | floor, µs | ours, µs | ours ÷ floor | target | met |\n");
    t.push_str("|---|---:|---:|---:|---|---|\n");
    let watch_label = format!(
        "watch, {} events, {:.1} MiB in {} chunks",
        decode["watch"]["events"],
        decode["watch"]["bytes"].as_f64().unwrap_or(f64::NAN) / 1048576.0,
        decode["watch"]["chunks"]
    );
    for (key, part, label, floor, ratio_field) in [
        (
            "decode_list_vs_floor",
            "list",
            format!(
                "list, {} pages, {} objects, {:.1} MiB (k8s-openapi `List<ConfigMap>`)",
                decode["list"]["pages"],
                decode["list"]["objects"],
                decode["list"]["bytes"].as_f64().unwrap_or(f64::NAN) / 1048576.0
            ),
            "floor",
            "ratio",
        ),
        (
            "decode_watch_vs_floor",
            "watch",
            format!("{watch_label} (k8s-openapi `WatchEvent<ConfigMap>`)"),
            "floor",
            "ratio",
        ),
        (
            "decode_watch_vs_direct",
            "watch",
            format!("{watch_label} (a struct `{{type, object: ConfigMap}}`: no `Value` detour)"),
            "direct",
            "ratio_vs_direct",
        ),
    ] {
        let r = d(part, ratio_field);
        t.push_str(&format!(
            "| {label} | {} | {} | {} | ≤ 1.3× | {} |\n",
            fmt_num(d(part, &format!("{floor}_ns_per_object")) / 1e3),
            fmt_num(d(part, "ours_ns_per_object") / 1e3),
            fmt_ratio(r),
            verdict(r, 1.3)
        ));
        targets.push(json!({
            "key": key,
            "resource": "configmaps",
            "objects": decode["list"]["objects"],
            "target": format!("{part} decode ≤ 1.3× {floor}"),
            "limit": 1.3,
            "measured": if r.is_finite() { json!(r) } else { Value::Null },
            "met": r.is_finite().then_some(r <= 1.3),
        }));
    }
}

/// The smoke run's check: every variant that is not reported unavailable
/// ran at every size and reported sync, peak RSS, every change, the relist;
/// the JSON variants (every client has JSON) must all have run.
pub(super) fn check_smoke(opts: &Options, curves: &[Curve], decode: &Value) -> Result<()> {
    for curve in curves {
        for v in &opts.variants {
            if let Some(reason) = curve.unavailable.get(v) {
                ensure!(
                    v.encoding != Encoding::Json,
                    "{}: JSON variant not available: {reason}",
                    v.name()
                );
                continue;
            }
            for point in &curve.points {
                let name = format!("{} ({} {})", v.name(), curve.resource.name(), point.objects);
                let r = point
                    .runs
                    .get(v)
                    .and_then(|r| r.first())
                    .with_context(|| format!("{name} reported nothing"))?;
                let finite = |v: &Value| v.as_f64().is_some_and(f64::is_finite);
                ensure!(finite(&r["sync"]["elapsed_ms"]), "{name}: no sync time");
                ensure!(finite(&r["sync"]["peak_rss_kib"]), "{name}: no peak RSS");
                ensure!(
                    finite(&r["sync"]["held_bytes_per_object"]),
                    "{name}: no bytes held per object"
                );
                ensure!(
                    r["watch"]["events"].as_f64() >= Some(opts.mods as f64),
                    "{name}: saw {} of {} changes",
                    r["watch"]["events"],
                    opts.mods
                );
                if opts.relist {
                    ensure!(
                        finite(&r["relist"]["peak_over_steady"]),
                        "{name}: no relist peak"
                    );
                }
            }
        }
    }
    if opts.resources.contains(&Resource::ConfigMaps) {
        for part in ["list", "watch"] {
            ensure!(
                decode[part]["result"]["ratio"]
                    .as_f64()
                    .is_some_and(f64::is_finite),
                "decode {part}: no ratio"
            );
        }
    }
    Ok(())
}
