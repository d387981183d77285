//! The reflector scenario as a cost curve: for each kind of object
//! (ConfigMaps, Pods) and each size N of `--objects` in ascending order, the
//! set is grown to N (only the missing objects are created: 1k → 10k →
//! 100k creates 100k in all) and every variant (client × encoding) runs K
//! times through sync, relist and watch. The decode floor runs once, on the
//! ConfigMaps, at the size nearest 10,000 (the headline size).
//!
//! A variant whose client says it cannot speak its encoding (protocol step
//! 0, `unavailable`) is reported as not available, with the client's
//! reason, and not started again: nothing falls back to JSON silently.

use super::*;

/// Creates in flight while seeding: kube-apiserver admits 200 mutating
/// requests at once by default (`--max-mutating-requests-inflight`); 64
/// keeps two cores busy without queueing there.
const SEED_CONCURRENCY: u64 = 64;

/// What one kind of object produced: per size, per variant, the runs.
pub(super) struct Curve {
    pub(super) resource: Resource,
    pub(super) points: Vec<Point>,
    /// Variants that could not run, with the client's reason.
    pub(super) unavailable: BTreeMap<Variant, String>,
}

/// One size of a curve.
pub(super) struct Point {
    pub(super) objects: u64,
    pub(super) seed: Value,
    /// `bench-driver heap` over this size's list: what a store holds per
    /// object, counted by the allocator (Null if it failed).
    pub(super) heap: Value,
    pub(super) runs: BTreeMap<Variant, Vec<Value>>,
}

/// The reflector scenario: sync, relist, watch and decoding (module docs).
pub(super) fn run_reflector(root: &Path, opts: &Options, bins: &Bins) -> Result<()> {
    let started = Instant::now();
    println!(
        "==> bench: N = {} ({}; Pods: {}), K={} runs, M={} changes, relist {}, compression {}, variants {}{}",
        opts.sizes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        opts.resources
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", "),
        opts.pod_sizes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        opts.runs,
        opts.mods,
        if opts.relist { "on" } else { "off" },
        if opts.compression { "default" } else { "off" },
        opts.variants
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join(", "),
        if opts.debug { " (debug builds)" } else { "" }
    );

    println!("==> bench: control plane");
    let (found, _) = binaries::ensure(|line| println!("    {line}"))?;
    let t = Instant::now();
    let plane = ControlPlane::start(&found)?;
    println!(
        "    kube-apiserver {} ready in {:.1} s",
        plane.server_url(),
        t.elapsed().as_secs_f64()
    );
    let kubeconfig = plane.kubeconfig().to_path_buf();
    let log_dir = root.join("target/bench/logs");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("create {}", log_dir.display()))?;
    let client_kubeconfig = if opts.compression {
        kubeconfig.clone()
    } else {
        without_compression(
            &kubeconfig,
            &root.join("target/bench/kubeconfig-no-compression"),
        )?
    };
    let decode_size = decode_size(&opts.sizes);

    let mut curves: Vec<Curve> = Vec::new();
    let mut decode = Value::Null;
    for &resource in &opts.resources {
        curves.push(Curve {
            resource,
            points: Vec::new(),
            unavailable: BTreeMap::new(),
        });
        let mut seeded = 0;
        let sizes = match resource {
            Resource::ConfigMaps => &opts.sizes,
            Resource::Pods => &opts.pod_sizes,
        };
        for &n in sizes {
            println!(
                "==> bench: {} {n}: seeding {} more",
                resource.name(),
                n.saturating_sub(seeded)
            );
            let seed = bins.driver_in(
                "seed",
                &kubeconfig,
                resource.namespace(),
                &[
                    ("--objects", n.to_string()),
                    ("--start", seeded.to_string()),
                    ("--concurrency", SEED_CONCURRENCY.to_string()),
                    ("--resource", resource.name().into()),
                ],
            )?;
            seeded = seeded.max(n);
            println!(
                "    created {} in {:.1} s ({:.0}/s); one object: {} bytes of JSON as created, {} as stored{}",
                seed["created"],
                seed["ms"].as_f64().unwrap_or_default() / 1e3,
                seed["created"].as_f64().unwrap_or_default()
                    / (seed["ms"].as_f64().unwrap_or(f64::NAN) / 1e3),
                seed["created_json_bytes"],
                seed["stored_json_bytes"],
                load_note(),
            );
            let curve = curves.last_mut().context("no curve")?;
            let runs = run_size(
                resource,
                n,
                opts,
                bins,
                &plane,
                (&client_kubeconfig, &kubeconfig),
                &log_dir,
                &mut curve.unavailable,
            )?;
            let heap = measure_heap(root, bins, &kubeconfig, resource, n);
            curve.points.push(Point {
                objects: n,
                seed,
                heap,
                runs,
            });
            if resource == Resource::ConfigMaps && n == decode_size {
                decode = run_decode(root, opts, bins, &kubeconfig, n)?;
            }
            // What is measured so far, in case a later size fails (a long
            // curve takes most of an hour).
            let partial = report(root, opts, &curves, &decode, started.elapsed())?;
            let file = opts.out.with_extension("partial.json");
            std::fs::write(&file, serde_json::to_string_pretty(&partial)? + "\n")
                .with_context(|| format!("write {}", file.display()))?;
        }
    }
    plane.stop();
    let _ = std::fs::remove_file(opts.out.with_extension("partial.json"));

    let report = report(root, opts, &curves, &decode, started.elapsed())?;
    publish(&report, &opts.out)?;
    if opts.plot {
        for png in plot::plot_report(&report, &opts.out)? {
            println!("plot: {}", png.display());
        }
    }
    if opts.smoke {
        check_smoke(opts, &curves, &decode)?;
        println!("smoke: every client ran and reported");
    }
    Ok(())
}

/// The size the decode floor runs at: the one nearest 10,000.
fn decode_size(sizes: &[u64]) -> u64 {
    sizes
        .iter()
        .copied()
        .min_by_key(|&n| n.abs_diff(10_000))
        .unwrap_or_default()
}

/// ", load 1.23" from /proc/loadavg (the machine is shared), or nothing.
pub(super) fn load_note() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .next()
        .map(|l| format!("; load {l}"))
        .unwrap_or_default()
}

/// Every available variant K times at size `n`, the order rotating.
#[allow(clippy::too_many_arguments)]
fn run_size(
    resource: Resource,
    n: u64,
    opts: &Options,
    bins: &Bins,
    plane: &ControlPlane,
    kubeconfigs: (&Path, &Path),
    log_dir: &Path,
    unavailable: &mut BTreeMap<Variant, String>,
) -> Result<BTreeMap<Variant, Vec<Value>>> {
    let mut runs: BTreeMap<Variant, Vec<Value>> = BTreeMap::new();
    for run in 0..opts.runs {
        let count = opts.variants.len();
        for i in 0..count {
            let variant = opts.variants[(i + run) % count];
            if unavailable.contains_key(&variant) {
                continue;
            }
            let target = Target {
                variant,
                resource,
                objects: n,
                kubeconfigs,
            };
            let outcome =
                run_client(&target, run + 1, opts, bins, plane, log_dir).with_context(|| {
                    format!(
                        "{} ({} {n}, run {})",
                        variant.name(),
                        resource.name(),
                        run + 1
                    )
                })?;
            match outcome {
                Outcome::Measured(result) => {
                    println!(
                        "    {}{}",
                        summary(&variant.name(), run + 1, &result),
                        load_note()
                    );
                    runs.entry(variant).or_default().push(result);
                }
                Outcome::Unavailable(reason) => {
                    println!("    {}: not available: {reason}", variant.name());
                    unavailable.insert(variant, reason);
                }
            }
            // Let the machine settle before the next process.
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    Ok(runs)
}

/// Saves the pages of a list of the `n` objects and runs `bench-driver
/// heap` over them: the bytes and allocations a store holds per object.
/// A failure is printed and gives Null (the measurement is an addition to
/// the RSS figures, not a reason to lose the run).
fn measure_heap(root: &Path, bins: &Bins, kubeconfig: &Path, resource: Resource, n: u64) -> Value {
    let dir = root.join("target/bench/pages").join(resource.name());
    let dir_arg = dir.display().to_string();
    let kind = match resource {
        Resource::ConfigMaps => "configmap",
        Resource::Pods => "pod",
    };
    let measured = bins
        .driver_in(
            "pages",
            kubeconfig,
            resource.namespace(),
            &[
                ("--save", dir_arg.clone()),
                ("--resource", resource.name().into()),
            ],
        )
        .and_then(|_| bins.driver_raw(&["heap", "--payloads", &dir_arg, "--kind", kind]));
    match measured {
        Ok(heap) => {
            let variants = heap["variants"].as_object().cloned().unwrap_or_default();
            let shown: Vec<String> = variants
                .iter()
                .map(|(name, v)| {
                    format!(
                        "{name} {:.0} B in {:.1} allocations",
                        v["live_bytes_per_object"].as_f64().unwrap_or(f64::NAN),
                        v["live_allocations_per_object"]
                            .as_f64()
                            .unwrap_or(f64::NAN)
                    )
                })
                .collect();
            println!(
                "    heap of a store at N={n} (bench-driver heap), per object: {}",
                shown.join("; ")
            );
            heap
        }
        Err(e) => {
            println!("    heap of a store at N={n}: not measured: {e:#}");
            Value::Null
        }
    }
}

fn run_decode(
    root: &Path,
    opts: &Options,
    bins: &Bins,
    kubeconfig: &Path,
    n: u64,
) -> Result<Value> {
    println!("==> bench: decode floor at N={n} (payloads captured from the server)");
    bins.driver(
        "decode",
        kubeconfig,
        &[
            ("--objects", n.to_string()),
            ("--mods", opts.mods.to_string()),
            ("--runs", opts.decode_runs.to_string()),
            ("--min-ms", opts.decode_min_ms.to_string()),
            ("--tag", "decode".into()),
            (
                "--save",
                root.join("target/bench/payloads").display().to_string(),
            ),
        ],
    )
}
