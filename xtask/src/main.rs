//! Project automation. `cargo xtask <command>`:
//!
//! - `test` — every check CI runs: rustfmt, clippy, the control-plane
//!   binaries (built once, then reused), and all tests against them;
//! - `controlplane up | down | env | build | restart-apiserver` — a local
//!   etcd + kube-apiserver for people, examples and benchmarks;
//! - `bench` — initial sync, relist memory, watch CPU and decoding against
//!   kube-rs and client-go, and (`--scenario controller`) our Controller
//!   against kube-rs's, on a control plane of its own (not part of `test`);
//! - `demo` — a guided tour: control plane, objects, the pod reflector
//!   printing events while changes (and an API server restart) happen.

mod bench;
mod controlplane;
mod demo;
mod test;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test                    fmt, clippy, control-plane binaries, all tests (what CI runs)
  controlplane build      build (or reuse) kube-apiserver and etcd
  controlplane up         start a control plane in the background; prints `export KUBECONFIG=...`
  controlplane env        print `export KUBECONFIG=...` for the running control plane
  controlplane down       stop it
  controlplane restart-apiserver   restart kube-apiserver of the running control plane (etcd keeps the data)
  bench [--scenario reflector|controller|all] [--objects N] [--runs K] [--mods M] [--quick]
                          benchmark against kube-rs and client-go on a control plane of its own
                          (table + target/bench/results.json, controller.json; `--help` for options)
  demo                    start a control plane, make changes, watch the pod reflector see them, stop";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["test"] => test::run(),
        ["controlplane", "build"] => controlplane::build().map(|_| ()),
        ["controlplane", "up"] => controlplane::up(),
        ["controlplane", "down"] => controlplane::down(),
        ["controlplane", "env"] => controlplane::env(),
        ["controlplane", "serve"] => controlplane::serve(),
        ["controlplane", "restart-apiserver"] => controlplane::restart_apiserver(),
        ["demo"] => demo::run(),
        ["bench", rest @ ..] => bench::run(rest),
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command `{}`\n\n{USAGE}", args.join(" ")),
    }
}
