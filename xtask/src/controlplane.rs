//! `cargo xtask controlplane …`: a control plane that outlives the command.
//!
//! `up` starts `xtask controlplane serve` in its own process group, with its
//! output in `<cache>/run/serve.log`; `serve` starts etcd and kube-apiserver
//! (and, with `--with-controller-manager`, kube-controller-manager; with
//! `--nodes N`, kube-controller-manager, kube-scheduler and KWOK with N
//! simulated nodes; all die with it), copies the kubeconfig to
//! `<cache>/run/kubeconfig`
//! and waits for SIGTERM or SIGINT, then stops them cleanly. `down` sends
//! SIGTERM to `serve` and waits for it to go; `env` prints the export line.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube_testenv::{Binaries, ControlPlane, ControlPlaneOptions, Provenance, binaries};

/// The flag that adds kube-controller-manager to `build`, `up` and `serve`.
pub const WITH_CONTROLLER_MANAGER: &str = "--with-controller-manager";
/// The flag (followed by a count) that adds simulated nodes, with
/// kube-controller-manager and kube-scheduler.
pub const NODES: &str = "--nodes";

/// The options `flags` (after `controlplane build|up|serve`) ask for;
/// anything else is an error naming the flag.
pub fn parse_options(flags: &[&str]) -> Result<ControlPlaneOptions> {
    let mut options = ControlPlaneOptions::default();
    let mut rest = flags.iter();
    while let Some(flag) = rest.next() {
        match *flag {
            WITH_CONTROLLER_MANAGER => options = options.with_controller_manager(),
            NODES => {
                let count = rest
                    .next()
                    .context("--nodes needs a count, e.g. `--nodes 2`")?;
                let count: u32 = count
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .with_context(|| format!("--nodes takes 1 to 100, not `{count}`"))?;
                options = options.with_nodes(count);
            }
            other => bail!("unknown flag `{other}`"),
        }
    }
    Ok(options)
}

/// `flags` that ask for `options` (the inverse of [`parse_options`]).
fn flags(options: ControlPlaneOptions) -> Vec<String> {
    if options.nodes > 0 {
        vec![NODES.into(), options.nodes.to_string()]
    } else if options.controller_manager {
        vec![WITH_CONTROLLER_MANAGER.into()]
    } else {
        Vec::new()
    }
}

fn run_dir() -> PathBuf {
    binaries::cache_root().join("run")
}

/// Present in the run directory while a control plane runs: the flags it
/// was started with.
fn options_marker() -> PathBuf {
    run_dir().join("options")
}

/// Builds or reuses the binaries `options` need, saying which.
pub fn build(options: ControlPlaneOptions) -> Result<Binaries> {
    let (found, provenance) =
        binaries::ensure_with(options.wanted(), |line| println!("    {line}"))?;
    let mut names = vec!["kube-apiserver", "etcd"];
    for (name, present) in [
        (
            "kube-controller-manager",
            found.kube_controller_manager.is_some(),
        ),
        ("kube-scheduler", found.kube_scheduler.is_some()),
        ("kwok", found.kwok.is_some()),
    ] {
        if present {
            names.push(name);
        }
    }
    let built = names.join(", ");
    let dir = found
        .kube_apiserver
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match provenance {
        Provenance::Environment => {
            println!("    using binaries from KUBEBUILDER_ASSETS / TEST_ASSET_*: {dir}")
        }
        Provenance::Cached => println!("    reused cached binaries in {dir} (no rebuild)"),
        Provenance::Built(took) => {
            println!(
                "    built what was missing of {built} in {:.1} min into {dir}",
                took.as_secs_f64() / 60.0
            )
        }
    }
    Ok(found)
}

fn serve_pid() -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(run_dir().join("serve.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    std::path::Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some(pid)
}

fn export_line() -> String {
    format!(
        "export KUBECONFIG={}",
        run_dir().join("kubeconfig").display()
    )
}

pub fn up(options: ControlPlaneOptions) -> Result<()> {
    if let Some(pid) = serve_pid() {
        let running = std::fs::read_to_string(options_marker()).unwrap_or_default();
        let wanted = flags(options).join(" ");
        if running.trim() != wanted {
            bail!(
                "a control plane with options `{}` is already running (pid {pid}), not `{wanted}`; \
                 stop it with `cargo xtask controlplane down` first",
                running.trim()
            );
        }
        println!(
            "a control plane is already running (pid {pid}, options `{}`)\n{}",
            running.trim(),
            export_line()
        );
        return Ok(());
    }
    build(options)?;
    let dir = run_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join("kubeconfig"));
    let log = dir.join("serve.log");
    let out = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let mut serve = vec!["controlplane".to_string(), "serve".to_string()];
    serve.extend(flags(options));
    let mut child = Command::new(std::env::current_exe()?)
        .args(&serve)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .context("start `xtask controlplane serve`")?;
    std::fs::write(dir.join("serve.pid"), child.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        if dir.join("kubeconfig").exists() {
            println!(
                "control plane is up (pid {}); its log: {}",
                child.id(),
                log.display()
            );
            println!("{}", export_line());
            return Ok(());
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let tail = std::fs::read_to_string(&log).unwrap_or_default();
    bail!(
        "the control plane did not come up; {}:\n{tail}",
        log.display()
    )
}

pub fn serve(options: ControlPlaneOptions) -> Result<()> {
    let (found, _) = binaries::ensure_with(options.wanted(), |line| println!("{line}"))?;
    let plane = ControlPlane::start_with(&found, options)?;
    let marker = options_marker();
    std::fs::write(&marker, flags(options).join(" "))
        .with_context(|| format!("write {}", marker.display()))?;
    if let Some(pid) = plane.controller_manager_pid() {
        println!("kube-controller-manager is running (pid {pid})");
    }
    if let Some(pid) = plane.scheduler_pid() {
        println!("kube-scheduler is running (pid {pid})");
    }
    if let Some(pid) = plane.kwok_pid() {
        println!(
            "kwok is running (pid {pid}), kubelet API at {}; Ready nodes: {}",
            plane.kwok_url().unwrap_or_default(),
            plane.nodes().join(", ")
        );
    }
    let target = run_dir().join("kubeconfig");
    std::fs::copy(plane.kubeconfig(), &target)
        .with_context(|| format!("write {}", target.display()))?;
    println!("ready: {} (etcd {})", plane.server_url(), plane.etcd_url());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            let mut usr1 = signal(SignalKind::user_defined1())?;
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = usr1.recv() => {
                        println!("restarting kube-apiserver");
                        plane.stop_apiserver();
                        match plane.start_apiserver() {
                            Ok(()) => println!("kube-apiserver is back"),
                            Err(e) => println!("kube-apiserver did not come back: {e}"),
                        }
                        let _ = std::fs::write(run_dir().join("restarted"), "");
                    }
                }
            }
            anyhow::Ok(())
        })?;
    println!("stopping");
    let _ = std::fs::remove_file(&target);
    let _ = std::fs::remove_file(&marker);
    plane.stop();
    Ok(())
}

pub fn down() -> Result<()> {
    let Some(pid) = serve_pid() else {
        println!("no control plane is running");
        return Ok(());
    };
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while serve_pid().is_some() {
        if Instant::now() > deadline {
            bail!("control plane (pid {pid}) still running 30 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(run_dir().join("serve.pid"));
    println!("control plane stopped");
    Ok(())
}

pub fn restart_apiserver() -> Result<()> {
    let Some(pid) = serve_pid() else {
        bail!("no control plane is running; start one with `cargo xtask controlplane up`");
    };
    let marker = run_dir().join("restarted");
    let _ = std::fs::remove_file(&marker);
    Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()?;
    let deadline = Instant::now() + Duration::from_secs(180);
    while !marker.exists() {
        if serve_pid().is_none() {
            bail!(
                "the control plane exited; see {}",
                run_dir().join("serve.log").display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "kube-apiserver did not come back within 180 s; see {}",
                run_dir().join("serve.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("kube-apiserver restarted");
    Ok(())
}

pub fn env() -> Result<()> {
    match serve_pid() {
        Some(_) => println!("{}", export_line()),
        None => bail!("no control plane is running; start one with `cargo xtask controlplane up`"),
    }
    Ok(())
}
