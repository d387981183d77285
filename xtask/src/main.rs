//! Project automation. `cargo xtask <command>`:
//!
//! - `test` — every check CI runs: rustfmt, clippy, the control-plane
//!   binaries (built once, then reused), and all tests against them;
//! - `controlplane up | down | env | build | restart-apiserver` — a local
//!   etcd + kube-apiserver for people, examples and benchmarks (`up` and
//!   `build` with `--with-controller-manager`: kube-controller-manager too;
//!   with `--nodes N`: also kube-scheduler and N simulated nodes, KWOK);
//! - `bench` — initial sync, relist memory, watch CPU and decoding against
//!   kube-rs and client-go, and (`--scenario controller`) our Controller
//!   against kube-rs's, on a control plane of its own (not part of `test`);
//! - `fuzz` — the fuzz targets (kubeconfig, watch decoding, error bodies,
//!   exec output, path segments) for a time budget, on stable Rust;
//! - `soak --minutes N` — reflectors of every kind and a controller against a control plane
//!   of its own under faults (API server restarts, etcd compaction, cut
//!   connections, 429s), checked for lost or stale objects after each, with
//!   the catch-up times;
//! - `protogen` — regenerate kube-protobuf's protobuf impls of the
//!   k8s-openapi types from the upstream `generated.proto` files;
//! - `demo` — a guided tour: control plane, objects, the pod reflector
//!   printing events while changes (and an API server restart) happen.

mod bench;
mod controlplane;
mod demo;
mod fuzz;
mod protogen;
mod soak;
mod test;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test                    fmt, clippy, control-plane binaries, all tests (what CI runs)
  controlplane build [--with-controller-manager | --nodes N]
                          build (or reuse) kube-apiserver and etcd (and what the flag needs)
  controlplane up [--with-controller-manager | --nodes N]
                          start a control plane in the background; prints `export KUBECONFIG=...`;
                          --with-controller-manager: also kube-controller-manager (garbage collector,
                          namespace deletion, Deployments -> ReplicaSets; no nodes, so no Pods run);
                          --nodes N: also kube-scheduler and N simulated nodes (KWOK): Pods are
                          bound and Running, and exec/logs/attach/port-forward work (commands run
                          on this machine; see the README)
  controlplane env        print `export KUBECONFIG=...` for the running control plane
  controlplane down       stop it
  controlplane restart-apiserver   restart kube-apiserver of the running control plane (etcd keeps the data)
  bench [--scenario reflector|controller|all] [--objects N] [--runs K] [--mods M] [--quick]
                          benchmark against kube-rs and client-go on a control plane of its own
                          (table + target/bench/results.json, controller.json; `--help` for options)
  fuzz [--seconds N] [--target T]... [--seed S] [--debug]
                          run the fuzz targets for N seconds in total (default 60); fails on any panic
  soak [--minutes N]      reflectors and a controller under faults on a control plane of its own:
                          lost/stale objects and catch-up times per fault (default 5 minutes; fails if anything is lost)
  protogen                regenerate kube-protobuf/src/generated/ from the upstream generated.proto
                          files (k8s.io modules v0.37.2) and the k8s-openapi 0.29 field names
  demo                    start a control plane, make changes, watch the pod reflector see them, stop";

/// The control-plane options `flags` (after `controlplane build|up|serve`)
/// ask for; anything else is an error naming the flag.
fn options(flags: &[&str]) -> Result<kube_testenv::ControlPlaneOptions> {
    controlplane::parse_options(flags).map_err(|e| anyhow::anyhow!("{e}\n\n{USAGE}"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["test"] => test::run(),
        ["controlplane", "build", flags @ ..] => controlplane::build(options(flags)?).map(|_| ()),
        ["controlplane", "up", flags @ ..] => controlplane::up(options(flags)?),
        ["controlplane", "down"] => controlplane::down(),
        ["controlplane", "env"] => controlplane::env(),
        ["controlplane", "serve", flags @ ..] => controlplane::serve(options(flags)?),
        ["controlplane", "restart-apiserver"] => controlplane::restart_apiserver(),
        ["demo"] => demo::run(),
        ["fuzz", rest @ ..] => fuzz::run(rest),
        ["bench", rest @ ..] => bench::run(rest),
        ["soak", rest @ ..] => soak::run(rest),
        ["protogen", rest @ ..] => protogen::run(rest),
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command `{}`\n\n{USAGE}", args.join(" ")),
    }
}
