//! The `pod_shell` example, end to end: the example runs as a real process
//! (built by this test with `cargo build --example`) against a real control
//! plane with KWOK's simulated nodes, whose TTY exec runs the shell on a
//! pseudo-terminal of this machine.
//!
//! On a terminal — a pseudo-terminal made by the test, made the example's
//! controlling terminal with `setsid --ctty` as a login shell's is — it
//! checks that the local terminal is raw during the session and restored
//! after, that the remote shell sees the local size at the start and after
//! a resize (the kernel's SIGWINCH), that Ctrl-C interrupts the remote
//! command and not the example, and that the shell's exit code is the
//! example's; and that SIGTERM ends the session with the terminal restored. Without a terminal (stdin a pipe) it checks the line-mode
//! fallback: separate stdout and stderr, the end of stdin ends the shell,
//! the exit code passes through.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_client::params::PostParams;
use kube_client::{Api, Client};
use rustix::termios::{LocalModes, Winsize};

/// How long the example may take to answer.
const ANSWER: Duration = Duration::from_secs(30);

fn env() -> &'static kube_testenv::TestEnv {
    kube_testenv::shared_with_nodes().unwrap_or_else(|e| panic!("control plane with nodes: {e}"))
}

fn client() -> Client {
    let kc = kube_client::config::Kubeconfig::read_from(env().kubeconfig()).unwrap();
    let config = kube_client::config::Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    Client::try_from(config).unwrap()
}

/// A Running Pod `shell` in a fresh namespace; returns the namespace.
async fn running_pod(prefix: &str) -> String {
    let ns = env().namespace(prefix).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(), &ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "shell"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let started = Instant::now();
    loop {
        let pod = pods.get("shell").await.unwrap();
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
            return ns;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not Running: {:?}",
            pod.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Builds the example once (cargo's own output names the executable).
fn example_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    // Cargo's per-crate variables, passed on, would look like a changed
    // environment to build scripts (see configmap_generator.rs).
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_crate = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
        ];
        if per_crate.iter().any(|p| name.starts_with(p)) {
            build.env_remove(&*name);
        }
    }
    let output = build
        .args(["build", "--example", "pod_shell", "--message-format=json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(output.status.success(), "building the example failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "pod_shell")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable")
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Whether the terminal is in its usual (cooked) mode: canonical input
/// and echo.
fn cooked(slave: &File) -> bool {
    let modes = rustix::termios::tcgetattr(slave).unwrap().local_modes;
    modes.contains(LocalModes::ICANON | LocalModes::ECHO)
}

/// What the example wrote to the terminal so far.
type Screen = Arc<Mutex<Vec<u8>>>;

/// Waits until the screen shows `wanted`, writing `ask` (if any) every
/// half second meanwhile; panics after [`ANSWER`].
fn expect(screen: &Screen, master: &mut File, ask: Option<&[u8]>, wanted: &str) {
    let deadline = Instant::now() + ANSWER;
    let mut next_ask = Instant::now();
    loop {
        if String::from_utf8_lossy(&screen.lock().unwrap()).contains(wanted) {
            return;
        }
        if let Some(ask) = ask
            && Instant::now() >= next_ask
        {
            master.write_all(ask).unwrap();
            next_ask = Instant::now() + Duration::from_millis(500);
        }
        assert!(
            Instant::now() < deadline,
            "{wanted:?} not on the screen: {:?}",
            String::from_utf8_lossy(&screen.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the child's exit (bounded).
fn exit_code(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + ANSWER;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the example on the terminal `slave` (made its controlling
/// terminal, as a login shell's is); returns it and what it shows.
fn on_terminal(
    binary: &Path,
    ns: &str,
    kubeconfig: &Path,
    master: &File,
    slave: &File,
) -> (Child, Screen) {
    let child = Command::new("setsid")
        .arg("--ctty")
        .arg(binary)
        .args(["-n", ns, "shell"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let screen = Screen::default();
    let mut reader = master.try_clone().unwrap();
    let sink = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (child, screen)
}

#[tokio::test]
async fn on_a_terminal_it_is_a_raw_tty_session_that_resizes_and_passes_ctrl_c() {
    let ns = running_pod("example-shell-tty").await;
    let binary = tokio::task::spawn_blocking(example_binary).await.unwrap();
    let kubeconfig = env().kubeconfig().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (mut master, slave) = kube_testenv::attach::pseudo_terminal(30, 100).unwrap();
        assert!(cooked(&slave));
        let (mut child, screen) = on_terminal(&binary, &ns, &kubeconfig, &master, &slave);
        // Enter is `\r` on a raw terminal; the remote terminal makes it a
        // line end. The echo of the question never contains the answer.
        let ask = b"echo size:$(stty size)\r";
        expect(&screen, &mut master, Some(ask), "size:30 100");
        assert!(
            !cooked(&slave),
            "the local terminal is raw during the session"
        );
        // A window resize: the kernel signals the example (SIGWINCH).
        rustix::termios::tcsetwinsize(&master, winsize(40, 132)).unwrap();
        expect(&screen, &mut master, Some(ask), "size:40 132");
        // Ctrl-C interrupts the remote `sleep` (well before its 30 s), and
        // the shell — and the example — go on.
        master.write_all(b"sleep 30\r").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        master.write_all(&[0x03]).unwrap();
        let started = Instant::now();
        expect(
            &screen,
            &mut master,
            Some(b"echo alive-$((40+2))\r"),
            "alive-42",
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sleep was not interrupted"
        );
        master.write_all(b"exit 5\r").unwrap();
        let code = exit_code(&mut child);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(code, Some(5), "the shell's exit code (stderr: {stderr})");
        assert!(cooked(&slave), "the terminal is restored on exit");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn sigterm_ends_the_session_and_restores_the_terminal() {
    let ns = running_pod("example-shell-term").await;
    let binary = tokio::task::spawn_blocking(example_binary).await.unwrap();
    let kubeconfig = env().kubeconfig().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (mut master, slave) = kube_testenv::attach::pseudo_terminal(30, 100).unwrap();
        let (mut child, screen) = on_terminal(&binary, &ns, &kubeconfig, &master, &slave);
        expect(
            &screen,
            &mut master,
            Some(b"echo ready-$((1+1))\r"),
            "ready-2",
        );
        assert!(!cooked(&slave));
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let code = exit_code(&mut child);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("SIGTERM"), "{stderr}");
        assert!(cooked(&slave), "the terminal is restored after SIGTERM");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn without_a_terminal_it_falls_back_to_line_mode() {
    let ns = running_pod("example-shell-lines").await;
    let binary = tokio::task::spawn_blocking(example_binary).await.unwrap();
    let mut child = Command::new(binary)
        .args(["-n", &ns, "shell"])
        .env("KUBECONFIG", env().kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // No `exit`: the end of our stdin ends the shell (v5 close), whose
    // status is then its last command's.
    stdin
        .write_all(b"test -t 0 || echo no-tty; echo out; echo err >&2; sh -c 'exit 4'\n")
        .unwrap();
    drop(stdin);
    let output = tokio::task::spawn_blocking(move || {
        let code = exit_code(&mut child);
        let mut out = String::new();
        let mut err = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (code, out, err)
    })
    .await
    .unwrap();
    let (code, out, err) = output;
    assert_eq!(out, "no-tty\nout\n", "stderr: {err}");
    assert!(err.contains("err\n"), "{err}");
    assert_eq!(code, Some(4), "stderr: {err}");
}
