//! `cargo xtask bench`: "fast" as measured ratios against kube-rs and
//! client-go, on a real control plane of our own.
//!
//! 1. Builds the benchmark programs: the Rust ones in `bench/` (a Cargo
//!    workspace of its own, so the kube-rs dependency never touches the
//!    main build) in release mode into `target/bench-build`, and the
//!    client-go program in `bench/client-go` with the machine's Go.
//! 2. Starts a dedicated etcd + kube-apiserver (kube-testenv). For each kind
//!    of object (`--resource`: ConfigMaps of ~1 KiB data in namespace
//!    `kube-bench`, Pods with a realistic spec in `kube-bench-pods`) and each
//!    size N of the cost curve (`--objects 1000,10000,100000`, ascending),
//!    grows the set to N (only the missing objects are created) and
//!    (`curve.rs`):
//! 3. Runs each variant — a client (ours, kube-rs, client-go) with an
//!    encoding (JSON, protobuf: `BENCH_ENCODING` in its environment), and
//!    `ours-compact`, ours on protobuf with a compact store (objects held
//!    encoded, decoded on read: `BENCH_STORE=compact`) — K times, each run in a fresh process (so its peak RSS is its own), the
//!    order rotating from run to run, one at a time. A client that cannot
//!    speak the encoding says so and the variant is reported as not
//!    available. A run has three phases, driven over the client's stdin and
//!    stdout (protocol: `bench/common/src/lib.rs`):
//!    - initial sync: process start → cache ready, peak RSS (`VmHWM`), and
//!      the RSS the cache holds per object (after sync minus before listing);
//!    - relist: with the cache full, etcd is compacted and kube-apiserver
//!      restarted, so the watch resumes at a version that is gone (410) and
//!      the client relists; peak RSS during the relist against the RSS just
//!      before (steady state, right after sync);
//!    - watch throughput: M changes (merge patches) while the client
//!      watches; the client's own CPU time (user + system) per event.
//! 4. Captures a list and a watch payload of ConfigMaps from the server (at
//!    the size nearest 10,000) and measures, in one process, the CPU time to
//!    decode them with plain serde_json into k8s-openapi types (the floor)
//!    and with our client's decoding.
//! 5. Prints per kind and size a table of medians and the targets of issues
//!    #7 and #14 with the ratios and whether each is met, the linearity of
//!    the curve (`table.rs`), writes everything, with the machine and the
//!    versions, to `target/bench/results.json`, and draws the curves as PNGs
//!    beside it (`plot.rs`; also `--plot-only RESULTS.json`).
//!
//! `--smoke` (run by `cargo xtask test`) does the same with ConfigMaps at
//! N = 200 and 400, Pods at N = 100, M=50, K=1, and checks only that every
//! variant ran and reported (or, for a non-JSON one, said it cannot).
//!
//! `--scenario controller` (or `all`) measures controllers instead (or as
//! well): ours against kube-rs's `Controller`, in `controller.rs`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kube_testenv::{ControlPlane, Pins, binaries};
use serde_json::{Value, json};

pub(super) const NAMESPACE: &str = "kube-bench";

pub(super) const USAGE: &str =
    "usage: cargo xtask bench [--scenario reflector|controller|all] [--objects N[,N...]] [--runs K]
                         [--resource configmaps|pods|all] [--pod-objects N[,N...]]
                         [--encodings json,protobuf]
                         [--mods M] [--quick] [--smoke] [--no-relist] [--no-compression]
                         [--clients ours,kube-rs,client-go] [--debug | --release] [--out FILE]
                         [--no-plot] [--plot-only RESULTS.json]
                         [--ctl-objects N] [--ctl-changes L] [--ctl-rate R] [--ctl-concurrency C]

  --scenario    reflector (the default), controller (ours vs kube-rs: a Controller patching
                an annotation, see bench/README.md), or all

  --objects N[,N...]  objects to sync, one size or a cost curve (e.g. 1000,10000,100000); the
                set grows from one size to the next (default 10000; --quick 2000; --smoke 200,400)
  --pod-objects N[,N...]  the sizes for Pods (default: those of --objects; --smoke 100)
  --resource    configmaps (~1 KiB of data each; the default), pods (a realistic two-container
                spec, ~3.5 KiB of JSON, Pending: no nodes), all (both), or a list run in its
                order (pods,configmaps); --kind is the same option
  --encodings   the wire encodings to run each client with: json, protobuf or both (the
                default); kube-rs has JSON only, a client that cannot speak an encoding says
                so and its variant is reported as not available
  --runs K      runs of each client and size; the table shows medians (default 3; --quick/--smoke 1)
  --mods M      changes streamed in the watch phase (default 5000; --quick 1000; --smoke 50)
  --no-relist   skip the relist phase (it restarts kube-apiserver once per run)
  --no-compression  give every client a kubeconfig with `disable-compression: true` (by default
                ours and client-go ask for gzip, kube-rs without its `gzip` feature does not)
  --clients     which clients to run (default: all three)
  --debug       debug builds of the Rust programs (quicker to build, slower to run: not for
                numbers; the default with --smoke)
  --release     release builds (the default, also with --smoke when given)
  --out FILE    where the reflector JSON goes (default target/bench/results.json; --smoke:
                target/bench/smoke.json); the controller's goes to target/bench/controller.json
                (--smoke: controller-smoke.json), or FILE with --scenario controller
  --no-plot     do not draw the PNGs (by default FILE's stem + `-configmaps.png` / `-pods.png`)
  --plot-only RESULTS.json  draw the PNGs of an earlier run's results and exit
  --ctl-objects N      controller: ConfigMaps existing when the controller starts (default 2000;
                       --smoke 50)
  --ctl-changes L      controller: changes made one at a time for the latency (default 200;
                       --smoke 20)
  --ctl-rate R         controller: changes per second (default 20; --smoke 50)
  --ctl-concurrency C  controller: reconciles in flight at most, the same for both (default 16)";

/// Which measurements `cargo xtask bench` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scenario {
    /// Reflectors and informers: sync, relist, watch, decoding.
    Reflector,
    /// Controllers: reconcile-all time, CPU per reconcile, latency.
    Controller,
    /// Both, one after the other.
    All,
}

impl Scenario {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "reflector" => Ok(Scenario::Reflector),
            "controller" => Ok(Scenario::Controller),
            "all" => Ok(Scenario::All),
            other => bail!("unknown scenario `{other}`; expected reflector, controller or all"),
        }
    }

    fn reflector(self) -> bool {
        self != Scenario::Controller
    }

    fn controller(self) -> bool {
        self != Scenario::Reflector
    }
}

/// The clients compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
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

    /// The client's controller program, if it has one.
    fn controller_binary(self) -> Option<&'static str> {
        match self {
            Kind::Ours => Some("bench-ours-controller"),
            Kind::KubeRs => Some("bench-kube-rs-controller"),
            // client-go's would be a controller-runtime program: not built.
            Kind::ClientGo => None,
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Kind::Ours => "bench-ours",
            Kind::KubeRs => "bench-kube-rs",
            Kind::ClientGo => "bench-client-go",
        }
    }
}

/// A wire encoding a client is run with (`BENCH_ENCODING` in its environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    pub(super) fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Protobuf => "protobuf",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Encoding::Json),
            "protobuf" => Ok(Encoding::Protobuf),
            other => bail!("unknown encoding `{other}`; expected json or protobuf"),
        }
    }
}

/// One line of the comparison: a client with an encoding (and, for ours,
/// whether its store is compact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Variant {
    pub(super) kind: Kind,
    pub(super) encoding: Encoding,
    /// A compact store (`BENCH_STORE=compact`; ours only).
    pub(super) compact: bool,
}

impl Variant {
    pub(super) const OURS_JSON: Variant = Variant::new(Kind::Ours, Encoding::Json);
    pub(super) const OURS_PROTOBUF: Variant = Variant::new(Kind::Ours, Encoding::Protobuf);
    pub(super) const KUBE_RS: Variant = Variant::new(Kind::KubeRs, Encoding::Json);
    pub(super) const CLIENT_GO_JSON: Variant = Variant::new(Kind::ClientGo, Encoding::Json);
    pub(super) const CLIENT_GO_PROTOBUF: Variant = Variant::new(Kind::ClientGo, Encoding::Protobuf);
    /// Ours on protobuf with a compact store.
    pub(super) const OURS_COMPACT: Variant = Variant {
        kind: Kind::Ours,
        encoding: Encoding::Protobuf,
        compact: true,
    };

    const fn new(kind: Kind, encoding: Encoding) -> Self {
        Variant {
            kind,
            encoding,
            compact: false,
        }
    }

    /// `ours-json`, `ours-protobuf`, `ours-compact`, `kube-rs` (JSON only),
    /// `client-go-json`, …
    pub(super) fn name(self) -> String {
        match self.kind {
            Kind::KubeRs => self.kind.name().to_string(),
            _ if self.compact => format!("{}-compact", self.kind.name()),
            _ => format!("{}-{}", self.kind.name(), self.encoding.name()),
        }
    }

    /// `BENCH_STORE` for the client: `compact` or `default`.
    pub(super) fn store(self) -> &'static str {
        if self.compact { "compact" } else { "default" }
    }

    /// The variants of `clients` × `encodings`; kube-rs only with JSON (it
    /// has no other); `ours-compact` with ours and protobuf.
    fn all(clients: &[Kind], encodings: &[Encoding]) -> Vec<Variant> {
        let mut v: Vec<Variant> = clients
            .iter()
            .flat_map(|&kind| encodings.iter().map(move |&e| Variant::new(kind, e)))
            .filter(|v| v.kind != Kind::KubeRs || v.encoding == Encoding::Json)
            .collect();
        if v.contains(&Variant::OURS_PROTOBUF) {
            v.push(Variant::OURS_COMPACT);
        }
        v.sort();
        v.dedup();
        v
    }
}

/// The kind of object the reflector scenario caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Resource {
    ConfigMaps,
    Pods,
}

impl Resource {
    pub(super) fn name(self) -> &'static str {
        match self {
            Resource::ConfigMaps => "configmaps",
            Resource::Pods => "pods",
        }
    }

    /// The namespace its objects live in (one per kind, so sizes grow
    /// independently).
    pub(super) fn namespace(self) -> &'static str {
        match self {
            Resource::ConfigMaps => NAMESPACE,
            Resource::Pods => "kube-bench-pods",
        }
    }

    /// `configmaps`, `pods`, `all`, or a comma-separated list (run in
    /// that order).
    fn parse_list(s: &str) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for name in s.split(',') {
            match name.trim() {
                "configmaps" => out.push(Resource::ConfigMaps),
                "pods" => out.push(Resource::Pods),
                "all" | "both" => out.extend([Resource::ConfigMaps, Resource::Pods]),
                other => bail!("unknown resource `{other}`; expected configmaps, pods or all"),
            }
        }
        let mut seen = Vec::new();
        out.retain(|r| {
            let new = !seen.contains(r);
            seen.push(*r);
            new
        });
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Options {
    pub(super) scenario: Scenario,
    pub(super) ctl: controller::CtlOptions,
    /// The sizes of the curve, ascending, without repeats.
    pub(super) sizes: Vec<u64>,
    /// The sizes of the Pods' curve, ascending, without repeats.
    pub(super) pod_sizes: Vec<u64>,
    pub(super) resources: Vec<Resource>,
    pub(super) variants: Vec<Variant>,
    pub(super) plot: bool,
    pub(super) runs: usize,
    pub(super) mods: u64,
    pub(super) relist: bool,
    pub(super) compression: bool,
    pub(super) clients: Vec<Kind>,
    pub(super) debug: bool,
    pub(super) smoke: bool,
    pub(super) quick: bool,
    pub(super) out: PathBuf,
    pub(super) decode_runs: u32,
    pub(super) decode_min_ms: u32,
}

impl Options {
    fn parse(args: &[&str], root: &Path) -> Result<Self> {
        let (mut objects, mut runs, mut mods) = (None::<Vec<u64>>, None, None);
        let mut resources = None;
        let mut pod_objects = None::<Vec<u64>>;
        let mut encodings = vec![Encoding::Json, Encoding::Protobuf];
        let mut plot = true;
        let (mut quick, mut smoke, mut relist, mut compression) = (false, false, true, true);
        let mut debug = None;
        let mut clients = Kind::ALL.to_vec();
        let mut out = None;
        let mut scenario = Scenario::Reflector;
        let (mut ctl_objects, mut ctl_changes, mut ctl_rate, mut ctl_concurrency) =
            (None, None, None, 16);
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let mut value = || {
                it.next()
                    .copied()
                    .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag {
                "--objects" => objects = Some(parse_sizes(flag, value()?)?),
                "--pod-objects" => pod_objects = Some(parse_sizes(flag, value()?)?),
                "--resource" | "--kind" => resources = Some(Resource::parse_list(value()?)?),
                "--encodings" => {
                    encodings = value()?
                        .split(',')
                        .map(Encoding::parse)
                        .collect::<Result<_>>()?
                }
                "--no-plot" => plot = false,
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
                "--scenario" => scenario = Scenario::parse(value()?)?,
                "--ctl-objects" => ctl_objects = Some(value()?.parse().context("--ctl-objects")?),
                "--ctl-changes" => ctl_changes = Some(value()?.parse().context("--ctl-changes")?),
                "--ctl-rate" => ctl_rate = Some(value()?.parse().context("--ctl-rate")?),
                "--ctl-concurrency" => {
                    ctl_concurrency = value()?.parse().context("--ctl-concurrency")?
                }
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown option `{other}`\n\n{USAGE}"),
            }
        }
        let (n, k, m) = if smoke {
            (vec![200, 400], 1, 50)
        } else if quick {
            (vec![2000], 1, 1000)
        } else {
            (vec![10_000], 3, 5000)
        };
        let ctl = controller::CtlOptions {
            objects: ctl_objects.unwrap_or(if smoke { 50 } else { 2000 }),
            changes: ctl_changes.unwrap_or(if smoke { 20 } else { 200 }),
            rate: ctl_rate.unwrap_or(if smoke { 50.0 } else { 20.0 }),
            concurrency: ctl_concurrency,
            out: match (&out, scenario) {
                (Some(file), Scenario::Controller) => PathBuf::from(file),
                _ => root.join("target/bench").join(if smoke {
                    "controller-smoke.json"
                } else {
                    "controller.json"
                }),
            },
        };
        let o = Options {
            scenario,
            ctl,
            pod_sizes: sorted(
                pod_objects
                    .or_else(|| smoke.then(|| vec![100]))
                    .or_else(|| objects.clone())
                    .unwrap_or_else(|| n.clone()),
            ),
            sizes: sorted(objects.unwrap_or(n)),
            // The smoke run shows that every client caches Pods too.
            resources: resources.unwrap_or_else(|| {
                if smoke {
                    vec![Resource::ConfigMaps, Resource::Pods]
                } else {
                    vec![Resource::ConfigMaps]
                }
            }),
            variants: Variant::all(&clients, &encodings),
            plot,
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
        ensure!(
            o.sizes.first().is_some_and(|&n| n >= 1)
                && o.pod_sizes.first().is_some_and(|&n| n >= 1),
            "--objects and --pod-objects must be at least 1"
        );
        ensure!(
            !o.variants.is_empty(),
            "--clients and --encodings leave no variant"
        );
        ensure!(o.runs >= 1, "--runs must be at least 1");
        ensure!(o.mods >= 1, "--mods must be at least 1");
        ensure!(!o.clients.is_empty(), "--clients names no client");
        ensure!(o.ctl.objects >= 1, "--ctl-objects must be at least 1");
        ensure!(o.ctl.changes >= 1, "--ctl-changes must be at least 1");
        ensure!(
            o.ctl.rate.is_finite() && o.ctl.rate > 0.0,
            "--ctl-rate must be positive"
        );
        ensure!(
            o.ctl.concurrency >= 1,
            "--ctl-concurrency must be at least 1"
        );
        Ok(o)
    }
}

/// `N[,N...]` of `flag`.
fn parse_sizes(flag: &str, list: &str) -> Result<Vec<u64>> {
    list.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .with_context(|| format!("{flag} {list}: `{n}` is not a count"))
        })
        .collect()
}

/// Ascending, without repeats.
fn sorted(mut sizes: Vec<u64>) -> Vec<u64> {
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

pub(super) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn run(args: &[&str]) -> Result<()> {
    let root = root();
    if let ["--plot-only", results] = args {
        return plot::plot_file(Path::new(results)).map(|_| ());
    }
    let opts = Options::parse(args, &root)?;
    let started = Instant::now();
    let bins = build(&root, &opts)?;
    if opts.scenario.reflector() {
        curve::run_reflector(&root, &opts, &bins)?;
    }
    if opts.scenario.controller() {
        controller::run(&root, &opts, &bins)?;
    }
    println!(
        "==> bench: done in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// The built programs.
pub(super) struct Bins {
    pub(super) dir: PathBuf,
    pub(super) timeout_secs: u64,
}

impl Bins {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs `bench-driver COMMAND` in [`NAMESPACE`] and returns its JSON line.
    fn driver(&self, command: &str, kubeconfig: &Path, extra: &[(&str, String)]) -> Result<Value> {
        self.driver_in(command, kubeconfig, NAMESPACE, extra)
    }

    /// Runs `bench-driver ARGS…` (no kubeconfig, no namespace: `heap`) and
    /// returns its JSON line.
    fn driver_raw(&self, args: &[&str]) -> Result<Value> {
        let mut cmd = Command::new(self.path("bench-driver"));
        cmd.args(args);
        let output = cmd
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("run {cmd:?}"))?;
        ensure!(
            output.status.success(),
            "bench-driver {} failed ({})",
            args.join(" "),
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .with_context(|| format!("bench-driver {} printed {stdout:?}", args.join(" ")))
    }

    /// Runs `bench-driver COMMAND` in `namespace` and returns its JSON line.
    fn driver_in(
        &self,
        command: &str,
        kubeconfig: &Path,
        namespace: &str,
        extra: &[(&str, String)],
    ) -> Result<Value> {
        let mut cmd = Command::new(self.path("bench-driver"));
        cmd.arg(command)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", namespace]);
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

pub(super) fn build(root: &Path, opts: &Options) -> Result<Bins> {
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
    if opts.scenario.reflector() && opts.clients.contains(&Kind::ClientGo) {
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

mod client;
mod controller;
mod curve;
mod plot;
mod report;
mod table;

use client::*;
use report::*;
use table::*;
