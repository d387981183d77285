//! `cargo xtask fuzz [--seconds N] [--target T]... [--seed S]`: builds the
//! fuzz runner (`fuzz/`, package `kube-fuzz`) in the `fuzz` profile —
//! release optimisation with overflow checks and debug assertions kept, so
//! that an arithmetic overflow is a finding, not a silent wrap — and runs it
//! for N seconds in total (default 60) over every target or the named ones.
//! Fails if any case panicked; the inputs are saved in
//! `target/fuzz-crashes/` (see `fuzz/src/main.rs` for `--reproduce`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--target T]... [--seed S]";

/// Runs `cargo xtask fuzz` with its arguments.
pub fn run(args: &[&str]) -> Result<()> {
    let mut pass: Vec<String> = Vec::new();
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
            "fuzz",
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
    let binary = target_dir.join("fuzz").join("kube-fuzz");
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
