//! `cargo xtask bench`: "fast" as measured ratios against kube-rs and
//! client-go, on a real control plane of our own.
//!
//! 1. Builds the benchmark programs: the Rust ones in `bench/` (a Cargo
//!    workspace of its own, so the kube-rs dependency never touches the
//!    main build) in release mode into `target/bench-build`, and the
//!    client-go program in `bench/client-go` with the machine's Go.
//! 2. Starts a dedicated etcd + kube-apiserver (kube-testenv) and seeds N
//!    ConfigMaps of ~1 KiB data in namespace `kube-bench`.
//! 3. Runs each client K times, each run in a fresh process (so its peak RSS
//!    is its own), the clients' order rotating from run to run, one client
//!    at a time. A run has three phases, driven over the client's stdin and
//!    stdout (protocol: `bench/common/src/lib.rs`):
//!    - initial sync: process start → cache ready, and peak RSS (`VmHWM`);
//!    - relist: with the cache full, etcd is compacted and kube-apiserver
//!      restarted, so the watch resumes at a version that is gone (410) and
//!      the client relists; peak RSS during the relist against the RSS just
//!      before (steady state, right after sync);
//!    - watch throughput: M changes (merge patches) while the client
//!      watches; the client's own CPU time (user + system) per event.
//! 4. Captures a list and a watch payload from the server and measures,
//!    in one process, the CPU time to decode them with plain serde_json into
//!    k8s-openapi types (the floor) and with our client's decoding.
//! 5. Prints a table of medians and ratios (with the targets of issue #7
//!    and whether each is met) and writes everything, with the machine and
//!    the versions, to `target/bench/results.json`.
//!
//! `--smoke` (run by `cargo xtask test`) does the same with N=200, M=50,
//! K=1, and checks only that every client ran and reported.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kube_testenv::{ControlPlane, Pins, binaries};
use serde_json::{Value, json};

const NAMESPACE: &str = "kube-bench";

const USAGE: &str = "usage: cargo xtask bench [--objects N] [--runs K] [--mods M] [--quick] [--smoke]
                         [--no-relist] [--no-compression] [--clients ours,kube-rs,client-go]
                         [--debug | --release] [--out FILE]

  --objects N   ConfigMaps (~1 KiB of data each) to sync (default 10000; --quick 2000; --smoke 200)
  --runs K      runs of each client; the table shows medians (default 3; --quick/--smoke 1)
  --mods M      changes streamed in the watch phase (default 5000; --quick 1000; --smoke 50)
  --no-relist   skip the relist phase (it restarts kube-apiserver once per run)
  --no-compression  give every client a kubeconfig with `disable-compression: true` (by default
                ours and client-go ask for gzip, kube-rs without its `gzip` feature does not)
  --clients     which clients to run (default: all three)
  --debug       debug builds of the Rust programs (quicker to build, slower to run: not for
                numbers; the default with --smoke)
  --release     release builds (the default, also with --smoke when given)
  --out FILE    where the JSON goes (default target/bench/results.json; --smoke: target/bench/smoke.json)";

/// The clients compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ours,
    KubeRs,
    ClientGo,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Ours, Kind::KubeRs, Kind::ClientGo];

    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::KubeRs => "kube-rs",
            Kind::ClientGo => "client-go",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .with_context(|| format!("unknown client `{s}`; expected ours, kube-rs or client-go"))
    }

    fn binary(self) -> &'static str {
        match self {
            Kind::Ours => "bench-ours",
            Kind::KubeRs => "bench-kube-rs",
            Kind::ClientGo => "bench-client-go",
        }
    }
}

#[derive(Debug, Clone)]
struct Options {
    objects: u64,
    runs: usize,
    mods: u64,
    relist: bool,
    compression: bool,
    clients: Vec<Kind>,
    debug: bool,
    smoke: bool,
    quick: bool,
    out: PathBuf,
    decode_runs: u32,
    decode_min_ms: u32,
}

impl Options {
    fn parse(args: &[&str], root: &Path) -> Result<Self> {
        let (mut objects, mut runs, mut mods) = (None, None, None);
        let (mut quick, mut smoke, mut relist, mut compression) = (false, false, true, true);
        let mut debug = None;
        let mut clients = Kind::ALL.to_vec();
        let mut out = None;
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let mut value = || {
                it.next()
                    .copied()
                    .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag {
                "--objects" => objects = Some(value()?.parse().context("--objects")?),
                "--runs" => runs = Some(value()?.parse().context("--runs")?),
                "--mods" => mods = Some(value()?.parse().context("--mods")?),
                "--quick" => quick = true,
                "--smoke" => smoke = true,
                "--no-relist" => relist = false,
                "--no-compression" => compression = false,
                "--debug" => debug = Some(true),
                "--release" => debug = Some(false),
                "--clients" => {
                    clients = value()?
                        .split(',')
                        .map(Kind::parse)
                        .collect::<Result<_>>()?
                }
                "--out" => out = Some(PathBuf::from(value()?)),
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown option `{other}`\n\n{USAGE}"),
            }
        }
        let (n, k, m) = if smoke {
            (200, 1, 50)
        } else if quick {
            (2000, 1, 1000)
        } else {
            (10_000, 3, 5000)
        };
        let o = Options {
            objects: objects.unwrap_or(n),
            runs: runs.unwrap_or(k),
            mods: mods.unwrap_or(m),
            relist,
            compression,
            clients,
            // The smoke run checks that everything runs, not how fast: debug
            // builds take a quarter of the time to build from scratch.
            debug: debug.unwrap_or(smoke),
            smoke,
            quick,
            out: out.unwrap_or_else(|| {
                root.join("target/bench")
                    .join(if smoke { "smoke.json" } else { "results.json" })
            }),
            decode_runs: if smoke { 3 } else { 7 },
            decode_min_ms: if smoke { 20 } else { 200 },
        };
        ensure!(o.objects >= 1, "--objects must be at least 1");
        ensure!(o.runs >= 1, "--runs must be at least 1");
        ensure!(o.mods >= 1, "--mods must be at least 1");
        ensure!(!o.clients.is_empty(), "--clients names no client");
        Ok(o)
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn run(args: &[&str]) -> Result<()> {
    let root = root();
    let opts = Options::parse(args, &root)?;
    let started = Instant::now();
    println!(
        "==> bench: N={} objects, K={} runs, M={} changes, relist {}, compression {}, clients {}{}",
        opts.objects,
        opts.runs,
        opts.mods,
        if opts.relist { "on" } else { "off" },
        if opts.compression { "default" } else { "off" },
        opts.clients
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        if opts.debug { " (debug builds)" } else { "" }
    );

    let bins = build(&root, &opts)?;

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

    println!("==> bench: seeding {} ConfigMaps", opts.objects);
    let seeded = bins.driver(
        "seed",
        &kubeconfig,
        &[
            ("--objects", opts.objects.to_string()),
            ("--concurrency", "16".into()),
        ],
    )?;
    println!(
        "    created {} in {:.1} s",
        seeded["created"],
        seeded["ms"].as_f64().unwrap_or_default() / 1e3
    );

    let mut runs: BTreeMap<Kind, Vec<Value>> = BTreeMap::new();
    for run in 0..opts.runs {
        let n = opts.clients.len();
        for i in 0..n {
            let kind = opts.clients[(i + run) % n];
            let result = run_client(
                kind,
                run + 1,
                &opts,
                &bins,
                &plane,
                (&client_kubeconfig, &kubeconfig),
                &log_dir,
            )
            .with_context(|| format!("{} (run {})", kind.name(), run + 1))?;
            println!("    {}", summary(kind, run + 1, &result));
            runs.entry(kind).or_default().push(result);
            // Let the machine settle before the next process.
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    println!("==> bench: decode floor (payloads captured from the server)");
    let decode = bins.driver(
        "decode",
        &kubeconfig,
        &[
            ("--objects", opts.objects.to_string()),
            ("--mods", opts.mods.to_string()),
            ("--runs", opts.decode_runs.to_string()),
            ("--min-ms", opts.decode_min_ms.to_string()),
            ("--tag", "decode".into()),
            (
                "--save",
                root.join("target/bench/payloads").display().to_string(),
            ),
        ],
    )?;
    plane.stop();

    let report = report(&root, &opts, &runs, &decode, started.elapsed())?;
    println!();
    println!("{}", report["table"].as_str().unwrap_or_default());
    if let Some(parent) = opts.out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::write(&opts.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", opts.out.display()))?;
    println!("results: {}", opts.out.display());
    if opts.smoke {
        check_smoke(&opts, &runs, &decode)?;
        println!("smoke: every client ran and reported");
    }
    println!(
        "==> bench: done in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// The built programs.
struct Bins {
    dir: PathBuf,
    timeout_secs: u64,
}

impl Bins {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs `bench-driver COMMAND` and returns its JSON line.
    fn driver(&self, command: &str, kubeconfig: &Path, extra: &[(&str, String)]) -> Result<Value> {
        let mut cmd = Command::new(self.path("bench-driver"));
        cmd.arg(command)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", NAMESPACE]);
        for (flag, value) in extra {
            cmd.arg(flag).arg(value);
        }
        let output = cmd
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("run {cmd:?}"))?;
        if !output.status.success() {
            bail!("bench-driver {command} failed ({})", output.status);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .with_context(|| format!("bench-driver {command} printed {stdout:?}"))
    }
}

fn build(root: &Path, opts: &Options) -> Result<Bins> {
    let target = root.join("target/bench-build");
    let profile = if opts.debug { "debug" } else { "release" };
    println!("==> bench: building the benchmark programs ({profile})");
    let t = Instant::now();
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("bench/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    if !opts.debug {
        cargo.arg("--release");
    }
    let status = cargo.status().with_context(|| format!("run {cargo:?}"))?;
    ensure!(
        status.success(),
        "building the Rust benchmark programs failed ({status})"
    );
    println!("    Rust programs: {:.1} s", t.elapsed().as_secs_f64());

    let dir = target.join(profile);
    if opts.clients.contains(&Kind::ClientGo) {
        let t = Instant::now();
        let mut go = Command::new("go");
        go.current_dir(root.join("bench/client-go"))
            .args(["build", "-trimpath", "-o"])
            .arg(dir.join(Kind::ClientGo.binary()))
            .arg(".");
        let status = go
            .status()
            .with_context(|| format!("run {go:?} (is Go installed?)"))?;
        ensure!(
            status.success(),
            "building the client-go program failed ({status})"
        );
        println!("    client-go program: {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(Bins {
        dir,
        timeout_secs: if opts.smoke { 180 } else { 600 },
    })
}

/// One client process and its protocol lines.
struct Session {
    kind: Kind,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Session {
    fn send(&mut self, command: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "{command}")
            .and_then(|_| stdin.flush())
            .with_context(|| format!("send `{command}` to {}", self.kind.name()))
    }

    /// Waits for the line whose `event` is `event`.
    fn expect(&mut self, event: &str, limit: Duration) -> Result<Value> {
        let line = match self.lines.recv_timeout(limit) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "no `{event}` from {} after {} s; its log {}:\n{}",
                self.kind.name(),
                limit.as_secs(),
                self.log.display(),
                tail(&self.log)
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!(
                "{} exited before `{event}` ({}); its log {}:\n{}",
                self.kind.name(),
                self.child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map_or("still running".into(), |s| s.to_string()),
                self.log.display(),
                tail(&self.log)
            ),
        };
        let value: Value = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} printed a line that is not JSON: {line}",
                self.kind.name()
            )
        })?;
        match value["event"].as_str() {
            Some(e) if e == event => Ok(value),
            Some("error") => bail!(
                "{} failed: {}; its log {}:\n{}",
                self.kind.name(),
                value["message"],
                self.log.display(),
                tail(&self.log)
            ),
            _ => bail!(
                "{} sent {line} while `{event}` was expected",
                self.kind.name()
            ),
        }
    }

    fn finish(mut self) -> Result<()> {
        let _ = self.send("exit");
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.success(),
                    "{} exited with {status}",
                    self.kind.name()
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{} did not exit within 20 s of `exit`", self.kind.name())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Only our own child, by its handle; a no-op once it has exited.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A copy of `kubeconfig` whose cluster says `disable-compression: true`.
fn without_compression(kubeconfig: &Path, copy: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(kubeconfig)
        .with_context(|| format!("read {}", kubeconfig.display()))?;
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if !done && line.trim_start().starts_with("server:") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}disable-compression: true\n"));
            done = true;
        }
    }
    ensure!(done, "no `server:` line in {}", kubeconfig.display());
    std::fs::write(copy, out).with_context(|| format!("write {}", copy.display()))?;
    Ok(copy.to_path_buf())
}

/// `kubeconfigs`: the client's and the driver's.
fn run_client(
    kind: Kind,
    run: usize,
    opts: &Options,
    bins: &Bins,
    plane: &ControlPlane,
    (client_kubeconfig, kubeconfig): (&Path, &Path),
    log_dir: &Path,
) -> Result<Value> {
    let log = log_dir.join(format!("{}-run{run}.log", kind.name()));
    let stderr =
        std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let limit = Duration::from_secs(bins.timeout_secs);
    let spawned = Instant::now();
    let mut child = Command::new(bins.path(kind.binary()))
        .arg("--kubeconfig")
        .arg(client_kubeconfig)
        .args(["--namespace", NAMESPACE])
        .args(["--objects", &opts.objects.to_string()])
        .args(["--mods", &opts.mods.to_string()])
        .args(["--timeout-secs", &bins.timeout_secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("start {}", bins.path(kind.binary()).display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut s = Session {
        kind,
        stdin: child.stdin.take(),
        child,
        lines: rx,
        log,
    };

    let synced = s.expect("synced", limit)?;
    let observed_sync_ms = spawned.elapsed().as_secs_f64() * 1e3;
    ensure!(
        synced["objects"].as_u64() == Some(opts.objects),
        "{} synced {} objects, expected {}",
        kind.name(),
        synced["objects"],
        opts.objects
    );

    let relist = if opts.relist {
        s.send("relist")?;
        s.expect("relist_armed", Duration::from_secs(30))?;
        let t = Instant::now();
        plane.compact_etcd().context("compact etcd")?;
        plane.stop_apiserver();
        plane.start_apiserver().context("restart kube-apiserver")?;
        let restart_ms = t.elapsed().as_secs_f64() * 1e3;
        let ready = Instant::now();
        let relisted = s.expect("relisted", limit)?;
        let after_restart_ms = ready.elapsed().as_secs_f64() * 1e3;
        ensure!(
            relisted["objects"].as_u64() == Some(opts.objects),
            "{} holds {} objects after the relist, expected {}",
            kind.name(),
            relisted["objects"],
            opts.objects
        );
        let peak = relisted["peak_rss_kib"].as_f64().unwrap_or(f64::NAN);
        let steady = relisted["steady_rss_kib"].as_f64().unwrap_or(f64::NAN);
        json!({
            "steady_rss_kib": steady,
            "peak_rss_kib": peak,
            "peak_over_steady": peak / steady,
            "relist_ms": relisted["relist_ms"],
            "after_restart_ms": after_restart_ms,
            "restart_ms": restart_ms,
        })
    } else {
        Value::Null
    };

    s.send("mods")?;
    s.expect("mods_armed", Duration::from_secs(30))?;
    let mutated = bins.driver(
        "mutate",
        kubeconfig,
        &[
            ("--objects", opts.objects.to_string()),
            ("--mods", opts.mods.to_string()),
            ("--concurrency", "16".into()),
            ("--tag", format!("{}-{run}", kind.name())),
        ],
    )?;
    let watched = s.expect("watched", limit)?;
    let events = watched["events"].as_f64().unwrap_or(f64::NAN);
    let cpu_ms = watched["cpu_ms"].as_f64().unwrap_or(f64::NAN);
    s.finish()?;

    Ok(json!({
        "run": run,
        "sync": {
            "elapsed_ms": synced["elapsed_ms"],
            "observed_ms": observed_sync_ms,
            "peak_rss_kib": synced["peak_rss_kib"],
            "rss_kib": synced["rss_kib"],
            "cpu_ms": synced["cpu_ms"],
            "objects": synced["objects"],
            "client_go_watch_list": synced.get("watch_list"),
            "client_go_atomic_fifo": synced.get("atomic_fifo"),
        },
        "relist": relist,
        "watch": {
            "events": events,
            "cpu_ms": cpu_ms,
            "cpu_us_per_event": cpu_ms * 1e3 / events,
            "wall_ms": watched["wall_ms"],
            "mutate_ms": mutated["ms"],
        },
    }))
}

fn summary(kind: Kind, run: usize, r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let relist = if r["relist"].is_null() {
        String::new()
    } else {
        format!(
            ", relist peak {:.2}× steady",
            f(&r["relist"]["peak_over_steady"])
        )
    };
    format!(
        "run {run} {:<9}: sync {:.0} ms, peak RSS {:.1} MiB{relist}, watch {:.1} µs CPU/event",
        kind.name(),
        f(&r["sync"]["elapsed_ms"]),
        f(&r["sync"]["peak_rss_kib"]) / 1024.0,
        f(&r["watch"]["cpu_us_per_event"]),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The metrics of the table: (key, label, how to read it from a run, unit scale).
const METRICS: &[(&str, &str, &[&str], f64)] = &[
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

fn medians(runs: &[Value]) -> BTreeMap<&'static str, f64> {
    METRICS
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

fn fmt_num(x: f64) -> String {
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

fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}×")
    } else {
        "–".into()
    }
}

fn report(
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
    let met = |measured: f64, limit: f64| -> &'static str {
        if !measured.is_finite() {
            "not measured"
        } else if measured <= limit {
            "yes"
        } else {
            "**no**"
        }
    };

    let machine = machine_info();
    let versions = versions(root)?;
    let mut t = String::new();
    t.push_str(&format!(
        "Machine: {} ({} cores), {} GiB RAM, Linux {}, {}; kube-apiserver {} + etcd {} on 127.0.0.1 on the same machine.\n",
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["nproc"],
        fmt_num(machine["memory_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0 / 1024.0),
        machine["kernel"].as_str().unwrap_or("?"),
        machine["date"].as_str().unwrap_or("?"),
        versions["kubernetes"].as_str().unwrap_or("?"),
        versions["etcd"].as_str().unwrap_or("?"),
    ));
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
        let (target, verdict) = match *key {
            "sync_ms" => (
                "≤ 0.7× kube-rs, ≤ 1.0× client-go",
                format!(
                    "{} / {}",
                    met(ratio(key, Kind::KubeRs), 0.7),
                    met(ratio(key, Kind::ClientGo), 1.0)
                ),
            ),
            "sync_peak_rss_mib" => (
                "≤ 0.6× kube-rs",
                met(ratio(key, Kind::KubeRs), 0.6).to_string(),
            ),
            "relist_peak_over_steady" => ("ours ≤ 1.2", met(get(Kind::Ours, key), 1.2).to_string()),
            _ => ("", String::new()),
        };
        t.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {target} | {verdict} |\n",
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
            met(r, 1.3)
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

fn check_smoke(opts: &Options, runs: &BTreeMap<Kind, Vec<Value>>, decode: &Value) -> Result<()> {
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

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn machine_info() -> Value {
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

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SSZ` now.
fn utc_now() -> String {
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

fn versions(root: &Path) -> Result<Value> {
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
