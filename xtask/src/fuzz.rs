//! `cargo xtask fuzz [--seconds N] [--target T]... [--seed S]`: builds the
//! fuzz runner (`fuzz/`, package `kube-fuzz`) in the `fuzz` profile —
//! release optimisation with overflow checks and debug assertions kept, so
//! that an arithmetic overflow is a finding, not a silent wrap — and runs it
//! for N seconds in total (default 60) over every target or the named ones.
//! Fails if any case panicked; the inputs are saved in
//! `target/fuzz-crashes/` (see `fuzz/src/main.rs` for `--reproduce`).
//!
//! `--debug` builds with the dev profile instead (overflow checks are on
//! there too): fewer cases per second, but no second optimised build of the
//! dependencies — what the short run inside `cargo xtask test` uses.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--target T]... [--seed S] [--debug]";

/// Runs `cargo xtask fuzz` with its arguments.
pub fn run(args: &[&str]) -> Result<()> {
    let mut pass: Vec<String> = Vec::new();
    let mut profile = "fuzz";
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--seconds" | "--target" | "--seed" => {
                let value = it
                    .next()
                    .with_context(|| format!("{arg} needs a value\n{USAGE}"))?;
                pass.push(arg.to_owned());
                pass.push((*value).to_owned());
            }
            "--debug" => profile = "dev",
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = crate::bench::root();
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            "kube-fuzz",
            "--bin",
            "kube-fuzz",
        ])
        .status()
        .context("running cargo build for kube-fuzz")?;
    if !status.success() {
        bail!("building kube-fuzz failed ({status})");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    // Cargo puts the dev profile's output in `debug/`, others in a
    // directory named after the profile.
    let out_dir = if profile == "dev" { "debug" } else { profile };
    let binary = target_dir.join(out_dir).join("kube-fuzz");
    let status = Command::new(&binary)
        .current_dir(&root)
        .args(&pass)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    if !status.success() {
        bail!("fuzzing found failures ({status}); see the saved inputs listed above");
    }
    Ok(())
}
