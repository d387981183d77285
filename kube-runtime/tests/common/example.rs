//! A kube-runtime example program as an executable for process tests:
//! built once per test binary with `cargo build --example NAME` and found
//! through cargo's JSON messages, so it lands in this same target directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The executable of kube-runtime's example `name`, built on first use.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let path = build(name);
    built.insert(name.to_string(), path.clone());
    path
}

fn build(name: &str) -> PathBuf {
    // Only the variables a build needs: the test's own environment
    // (CARGO_PKG_*, CARGO_MANIFEST_DIR, ...) would make build scripts that
    // watch variables rebuild on every run.
    let keep = [
        "PATH",
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
    ];
    let mut cargo = Command::new(env!("CARGO"));
    cargo.env_clear();
    for (k, v) in std::env::vars_os() {
        if keep.iter().any(|keep| k == *keep) {
            cargo.env(k, v);
        }
    }
    let out = cargo
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args([
            "build",
            "-p",
            "kube-runtime",
            "--example",
            name,
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo build");
    assert!(out.status.success(), "building the example {name} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for the example {name}"))
}
