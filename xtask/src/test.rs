//! `cargo xtask test`: the one command that checks everything, in order,
//! stopping at the first failing step and naming it.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Runs one step, printing its name and duration; fails naming the step.
fn step(name: &str, cmd: &mut Command) -> Result<()> {
    println!("==> xtask test: {name}");
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("step `{name}`: cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("step `{name}` failed ({status}); command: {cmd:?}");
    }
    println!(
        "==> xtask test: {name}: ok in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub fn run() -> Result<()> {
    let started = Instant::now();
    step("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    step(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    // Every public item documented, every intra-doc link resolving.
    step(
        "rustdoc (-D warnings)",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;

    println!("==> xtask test: control-plane binaries");
    // Everything the tests start: kube-controller-manager (garbage
    // collection, namespaces), kube-scheduler and kwok (the node tests).
    // Cached like the others; the first build of all three takes about ten
    // more minutes on two cores.
    let binaries =
        crate::controlplane::build(kube_testenv::ControlPlaneOptions::default().with_nodes(1))
            .context("step `control-plane binaries` failed")?;
    let assets = binaries
        .kube_apiserver
        .parent()
        .context("binary path has no parent")?;

    // The committed protobuf codec is what the generator makes from the
    // pinned upstream .proto files (the Go modules are in the cache now).
    step(
        "protobuf codec up to date (protogen --check)",
        Command::new(std::env::current_exe()?).args(["protogen", "--check"]),
    )?;

    let mut test = cargo();
    test.args(["test", "--workspace"]);
    if std::env::var_os("USE_EXISTING_CLUSTER").is_none() {
        // The tests find the binaries the same way envtest users would.
        test.env("KUBEBUILDER_ASSETS", assets);
        // kwok has its own module and cache directory.
        if let Some(kwok) = &binaries.kwok {
            test.env("TEST_ASSET_KWOK", kwok);
        }
    }
    step(
        "tests (unit, doc, integration against the control plane)",
        &mut test,
    )?;
    // Every fuzz target for a short while, from its committed seeds on:
    // catches a parser that panics on its own corpus or on easy mutations.
    step(
        "fuzz smoke (20 s)",
        Command::new(std::env::current_exe()?).args(["fuzz", "--seconds", "20", "--debug"]),
    )?;
    // The benchmark's programs and phases, at toy size and in debug builds:
    // proves every client and controller runs and reports; says nothing
    // about speed.
    step(
        "bench smoke (reflectors: ConfigMaps N=200,400, Pods N=100; controllers N=50)",
        Command::new(std::env::current_exe()?).args(["bench", "--smoke", "--scenario", "all"]),
    )?;
    // Reflectors under restarts, compaction, cuts and 429s: fails when any
    // cache loses an object or keeps a stale one.
    step(
        "chaos soak (1 min)",
        Command::new(std::env::current_exe()?).args(["soak", "--minutes", "1"]),
    )?;
    println!(
        "==> xtask test: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
