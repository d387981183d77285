//! Terminals and protocol versions of exec against the real control plane
//! with KWOK's simulated nodes (see remote.rs): a TTY exec runs its command
//! on a pseudo-terminal of this machine (KWOK as kube-testenv patches it:
//! the terminal is the command's controlling terminal), so what a terminal
//! does — merging stdout and stderr, `\r\n` line ends, a size that
//! resizes, Ctrl-C as SIGINT — is observed, not assumed. kubectl is the
//! oracle: it refuses a TTY unless its stdin is a terminal, so the test
//! runs it on a pseudo-terminal of its own. Attach reaches a real process
//! where kube-testenv puts one behind it (`attach_pod_process`).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kube_client::api::remote::{AttachParams, AttachedProcess, ProcessStatus, TerminalSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::nodes::{
    cri_log, kubectl, plane, read_all, running_pod, running_pod_with, seconds_ago, within,
};

/// Waits until the terminal has a size (KWOK applies a resize
/// concurrently with starting the command, as a kubelet does, so a command
/// that needs the size must wait for it), then shows what a terminal does.
const TERMINAL_SCRIPT: &str = r#"while [ "$(stty size)" = "0 0" ]; do sleep 0.1; done
test -t 0 && echo tty; echo out; echo err >&2; stty size; exit 3"#;

/// Runs `kubectl exec -t -i` of `command` on a pseudo-terminal of `rows` ×
/// `cols`; returns what it wrote to the terminal and its exit code.
fn kubectl_on_a_terminal(
    ns: &str,
    pod: &str,
    command: &[&str],
    rows: u16,
    cols: u16,
) -> (Vec<u8>, Option<i32>, String) {
    let (mut master, slave) = kube_testenv::attach::pseudo_terminal(rows, cols).unwrap();
    let mut child = kubectl(ns)
        .args(["exec", "-t", "-i", pod, "--"])
        .args(command)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The slave is now only kubectl's: its end makes the master read fail
    // (EIO) after the last output.
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kubectl exec -t -i did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (reader.join().unwrap(), status.code(), stderr)
}

/// Reads `process`'s stdout into `seen` until it contains `wanted`
/// (bounded by the caller's timeout); false if stdout ended first.
async fn read_until(
    stdout: &mut (impl AsyncReadExt + Unpin),
    seen: &mut Vec<u8>,
    wanted: &str,
) -> bool {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(wanted) {
        match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

async fn interactive(
    pods: &kube_client::Api<k8s_openapi::api::core::v1::Pod>,
    command: &[&str],
) -> AttachedProcess {
    pods.exec(
        "shell",
        command.iter().copied(),
        &AttachParams::interactive_tty(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_tty_exec_merges_output_on_a_sized_terminal_as_kubectl_does() {
    let (pods, ns) = running_pod("remote-tty", "shell").await;
    let command = ["sh", "-c", TERMINAL_SCRIPT];
    let mut process = interactive(&pods, &command).await;
    assert_eq!(process.protocol(), "v5.channel.k8s.io");
    assert!(
        process.stderr().is_none(),
        "a terminal has no separate stderr"
    );
    let resize = process.terminal_size().unwrap();
    resize
        .send(TerminalSize {
            width: 123,
            height: 45,
        })
        .await
        .unwrap();
    // stdin stays open (as a terminal's does) while the command runs.
    let _stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let (stdout, status) = within(60, async { tokio::join!(read_all(stdout), status) }).await;
    let (stdout, status) = (stdout.unwrap(), status.unwrap());
    assert_eq!(
        String::from_utf8_lossy(&stdout),
        "tty\r\nout\r\nerr\r\n45 123\r\n",
        "stderr merged into stdout, lines ended by the terminal, its size as sent"
    );
    assert_eq!(status, ProcessStatus::ExitCode(3));

    let (kubectl_out, kubectl_code, kubectl_err) =
        tokio::task::spawn_blocking(move || kubectl_on_a_terminal(&ns, "shell", &command, 45, 123))
            .await
            .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&kubectl_out),
        String::from_utf8_lossy(&stdout),
        "byte-identical to kubectl exec -t -i on a 45x123 terminal (kubectl stderr: {kubectl_err})"
    );
    assert_eq!(kubectl_code, Some(3), "kubectl stderr: {kubectl_err}");
}

#[tokio::test]
async fn a_resize_reaches_the_terminal_of_a_running_shell() {
    let (pods, _ns) = running_pod("remote-resize", "shell").await;
    let mut process = interactive(&pods, &["sh"]).await;
    let resize = process.terminal_size().unwrap();
    let mut stdin = process.stdin().unwrap();
    let mut stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let mut seen = Vec::new();
    stdin.write_all(b"tty\n").await.unwrap();
    assert!(
        within(30, read_until(&mut stdout, &mut seen, "/dev/pts/")).await,
        "tty names a pseudo-terminal: {:?}",
        String::from_utf8_lossy(&seen)
    );
    for (width, height) in [(123, 45), (80, 24)] {
        resize.send(TerminalSize { width, height }).await.unwrap();
        // The resize and the next line travel separately (the API server
        // relays them to the node as two streams): ask until the size is
        // the new one. The echo of the question does not contain the answer.
        let wanted = format!("size:{height} {width}");
        let found = within(30, async {
            loop {
                stdin.write_all(b"echo size:$(stty size)\n").await.unwrap();
                let asked = tokio::time::timeout(
                    Duration::from_millis(500),
                    read_until(&mut stdout, &mut seen, &wanted),
                )
                .await;
                match asked {
                    Ok(found) => return found,
                    Err(_) => continue,
                }
            }
        })
        .await;
        assert!(
            found,
            "{wanted} not in {:?}",
            String::from_utf8_lossy(&seen)
        );
    }
    stdin.write_all(b"exit 7\n").await.unwrap();
    let (rest, status) = within(30, async { tokio::join!(read_all(stdout), status) }).await;
    rest.unwrap();
    assert_eq!(status.unwrap(), ProcessStatus::ExitCode(7));
}

#[tokio::test]
async fn ctrl_c_on_the_terminal_interrupts_the_command() {
    let (pods, _ns) = running_pod("remote-ctrl-c", "shell").await;
    let script = r#"trap 'echo interrupted; exit 9' INT; echo ready; while :; do sleep 0.1; done"#;
    let mut process = interactive(&pods, &["sh", "-c", script]).await;
    let mut stdin = process.stdin().unwrap();
    let mut stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let mut seen = Vec::new();
    assert!(within(30, read_until(&mut stdout, &mut seen, "ready")).await);
    // What a terminal in raw mode sends for Ctrl-C: the terminal's line
    // discipline makes it SIGINT for the foreground process group.
    stdin.write_all(&[0x03]).await.unwrap();
    let (rest, status) = within(30, async { tokio::join!(read_all(stdout), status) }).await;
    seen.extend(rest.unwrap());
    assert!(
        String::from_utf8_lossy(&seen).contains("interrupted"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    assert_eq!(status.unwrap(), ProcessStatus::ExitCode(9));
}

#[tokio::test]
async fn v4_only_works_against_the_real_server_and_v5_is_the_default() {
    let (pods, _ns) = running_pod("remote-v4", "shell").await;
    let script = "echo out; echo err >&2; exit 3";
    for (ap, protocol) in [
        (AttachParams::default(), "v5.channel.k8s.io"),
        (AttachParams::default().offer_v5(false), "v4.channel.k8s.io"),
    ] {
        let mut process = pods.exec("shell", ["sh", "-c", script], &ap).await.unwrap();
        assert_eq!(process.protocol(), protocol);
        let (stdout, stderr) = (process.stdout().unwrap(), process.stderr().unwrap());
        let status = process.take_status().unwrap();
        let (stdout, stderr, status) = within(30, async {
            tokio::join!(read_all(stdout), read_all(stderr), status)
        })
        .await;
        assert_eq!(stdout.unwrap(), b"out\n", "{protocol}");
        assert_eq!(stderr.unwrap(), b"err\n", "{protocol}");
        assert_eq!(status.unwrap(), ProcessStatus::ExitCode(3), "{protocol}");
    }
    // v4 carries stdin but not its end: a command that reads a known
    // amount ends, and its output and exit code come back.
    let ap = AttachParams::default().stdin(true).offer_v5(false);
    let mut process = pods
        .exec("shell", ["sh", "-c", "head -c 5; exit 4"], &ap)
        .await
        .unwrap();
    assert_eq!(process.protocol(), "v4.channel.k8s.io");
    let mut stdin = process.stdin().unwrap();
    stdin.write_all(b"hello, and more").await.unwrap();
    let stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let (stdout, status) = within(30, async { tokio::join!(read_all(stdout), status) }).await;
    assert_eq!(stdout.unwrap(), b"hello");
    assert_eq!(status.unwrap(), ProcessStatus::ExitCode(4));
}

#[tokio::test]
async fn the_last_output_of_a_tty_command_is_not_lost() {
    let (pods, _ns) = running_pod("remote-tty-drain", "shell").await;
    // Much output right before the exit: KWOK v0.8.0 closed the terminal as
    // soon as the command ended, dropping what was not yet copied.
    let mut process = interactive(&pods, &["seq", "1", "30000"]).await;
    let _stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let (stdout, status) = within(60, async { tokio::join!(read_all(stdout), status) }).await;
    let expected: String = (1..=30000).map(|i| format!("{i}\r\n")).collect();
    let stdout = String::from_utf8(stdout.unwrap()).unwrap();
    assert!(
        stdout == expected,
        "{} bytes, ending {:?}",
        stdout.len(),
        &stdout[stdout.len().saturating_sub(40)..]
    );
    assert_eq!(status.unwrap(), ProcessStatus::Success);
}

/// An attach whose rule names a log file (`serve_pod_logs`): KWOK follows
/// the file and has no process to give stdin or a resize to. An
/// interactive TTY attach (stdin, stdout, TTY) is upgraded, relayed to the
/// node, shows the container's output as it is written, and our stdin and
/// resizes travel without breaking the stream.
#[tokio::test]
async fn an_interactive_tty_attach_sees_output_while_sending_stdin_and_resizes() {
    let (pods, ns) = running_pod("remote-attach-tty", "talker").await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "").unwrap();
    plane()
        .serve_pod_logs(&ns, "talker", "main", file.path())
        .await
        .unwrap();
    let mut process = pods
        .attach("talker", &AttachParams::interactive_tty().container("main"))
        .await
        .unwrap();
    assert_eq!(process.protocol(), "v5.channel.k8s.io");
    let resize = process.terminal_size().unwrap();
    let mut stdin = process.stdin().unwrap();
    let mut stdout = process.stdout().unwrap();
    let path = file.path().to_path_buf();
    let writer = tokio::spawn(async move {
        for i in 0.. {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            let line = format!("attached line {i}");
            f.write_all(cri_log(&[(seconds_ago(0).as_str(), line.as_str())]).as_bytes())
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut seen = Vec::new();
    let first = within(30, read_until(&mut stdout, &mut seen, "attached line")).await;
    assert!(first, "attach showed {:?}", String::from_utf8_lossy(&seen));
    resize
        .send(TerminalSize {
            width: 100,
            height: 30,
        })
        .await
        .unwrap();
    stdin
        .write_all(b"typed at the attached terminal\r")
        .await
        .unwrap();
    // Output written after those still arrives: the stream is whole.
    let seen_before = seen.len();
    let more = within(30, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen[seen_before..]).contains("attached line") {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    writer.abort();
    process.abort();
    assert!(
        more,
        "after stdin and a resize: {:?}",
        String::from_utf8_lossy(&seen)
    );
}

/// An attach's handle and its taken stdin and stdout, with what it showed
/// so far.
struct Attached {
    process: AttachedProcess,
    resize: tokio::sync::mpsc::Sender<TerminalSize>,
    stdin: tokio::io::DuplexStream,
    stdout: kube_client::api::remote::ChannelReader,
    seen: Vec<u8>,
}

impl Attached {
    /// Writes `ask` every half second until the output shows `wanted`.
    async fn ask_until(&mut self, ask: &[u8], wanted: &str) -> bool {
        loop {
            self.stdin.write_all(ask).await.unwrap();
            let found = tokio::time::timeout(
                Duration::from_millis(500),
                read_until(&mut self.stdout, &mut self.seen, wanted),
            )
            .await;
            match found {
                Ok(found) => return found,
                Err(_) => continue,
            }
        }
    }
}

/// Attaches (interactive, TTY, `size`) until the process behind the
/// attach rule answers `ask` with `wanted`: the rule takes effect once
/// KWOK has seen it, and until then an attach follows the default log file.
async fn attach_to_the_process(
    pods: &kube_client::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    size: TerminalSize,
    ask: &[u8],
    wanted: &str,
) -> Attached {
    within(60, async {
        loop {
            let mut process = pods
                .attach(pod, &AttachParams::interactive_tty().container("main"))
                .await
                .unwrap();
            let resize = process.terminal_size().unwrap();
            resize.send(size).await.unwrap();
            let mut attached = Attached {
                stdin: process.stdin().unwrap(),
                stdout: process.stdout().unwrap(),
                process,
                resize,
                seen: Vec::new(),
            };
            let answered =
                tokio::time::timeout(Duration::from_secs(3), attached.ask_until(ask, wanted)).await;
            if answered == Ok(true) {
                return attached;
            }
            attached.process.abort();
        }
    })
    .await
}

/// kube-testenv's process behind attach (`ControlPlane::attach_pod_process`,
/// relayed by KWOK as kube-testenv builds it): attach reaches a running
/// process's stdin, sees its output, and its resizes set the size of the
/// process's terminal; kubectl attached at the same time sees the same
/// process; the process's exit ends the attach.
#[tokio::test]
async fn attach_to_a_running_process_passes_stdin_output_and_resizes_as_kubectl_sees() {
    let container = serde_json::json!({"name": "main", "image": "busybox",
                                       "stdin": true, "tty": true});
    let (pods, ns) = running_pod_with("remote-attach-process", "worker", container).await;
    let script = r#"while read line; do
  [ "$line" = quit ] && exit 0
  echo "got:$line size:$(stty size)"
done"#;
    let _process = plane()
        .attach_pod_process(&ns, "worker", "main", &["sh", "-c", script])
        .await
        .unwrap();
    let size = |width, height| TerminalSize { width, height };
    let mut ours = attach_to_the_process(
        &pods,
        "worker",
        size(100, 30),
        b"hello\r",
        "got:hello size:30 100",
    )
    .await;
    assert_eq!(ours.process.protocol(), "v5.channel.k8s.io");
    ours.resize.send(size(80, 24)).await.unwrap();
    assert!(
        within(30, ours.ask_until(b"hello\r", "got:hello size:24 80")).await,
        "{:?}",
        String::from_utf8_lossy(&ours.seen)
    );

    // kubectl attached to the same process: its stdin reaches it, and both
    // attaches see the answer.
    let mut kubectl = kubectl(&ns)
        .args(["attach", "worker", "-c", "main", "-i", "-t=false"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut kubectl_in = kubectl.stdin.take().unwrap();
    let kubectl_out = kubectl.stdout.take().unwrap();
    let kubectl_seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = kubectl_seen.clone();
    std::thread::spawn(move || {
        let mut out = kubectl_out;
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&kubectl_seen.lock().unwrap()).contains("got:from-kubectl") {
        use std::io::Write;
        kubectl_in.write_all(b"from-kubectl\n").unwrap();
        assert!(
            Instant::now() < deadline,
            "kubectl attach saw {:?}",
            String::from_utf8_lossy(&kubectl_seen.lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = kubectl.kill();
    let _ = kubectl.wait();
    let mut buf = [0u8; 4096];
    let in_ours = within(30, async {
        while !String::from_utf8_lossy(&ours.seen).contains("got:from-kubectl size:24 80") {
            match ours.stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => ours.seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    assert!(in_ours, "{:?}", String::from_utf8_lossy(&ours.seen));

    // The process's exit ends the attach.
    ours.stdin.write_all(b"quit\r").await.unwrap();
    let status = ours.process.take_status().unwrap();
    let (rest, status) = within(30, async { tokio::join!(read_all(ours.stdout), status) }).await;
    rest.unwrap();
    assert_eq!(status.unwrap(), ProcessStatus::Success);
}

#[tokio::test]
async fn a_background_process_holding_the_terminal_does_not_hold_the_exec() {
    let (pods, _ns) = running_pod("remote-tty-bg", "shell").await;
    // `sleep 20`, deaf to the hangup the shell's exit sends, keeps the
    // terminal open after the shell exits; the exec ends with the shell
    // (KWOK as patched waits at most 2 s for the rest of the output).
    // (The shell ignores SIGHUP before it starts `sleep`, which inherits
    // that: no race with the hangup.)
    let script = "trap '' HUP; sleep 20 & echo started; exit 6";
    let mut process = interactive(&pods, &["sh", "-c", script]).await;
    let _stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let started = Instant::now();
    let (stdout, status) = within(15, async { tokio::join!(read_all(stdout), status) }).await;
    let took = started.elapsed();
    // Held back by the terminal still open (else the case is not made),
    // but not for the 20 s of the sleep.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(stdout.unwrap(), b"started\r\n");
    assert_eq!(status.unwrap(), ProcessStatus::ExitCode(6));
}
