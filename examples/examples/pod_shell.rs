//! An interactive shell in a Pod, as `kubectl exec -t -i POD -- sh` gives.
//!
//! ```text
//! cargo run --example pod_shell -- [-n NS] [-c CONTAINER] POD [SHELL]
//! ```
//!
//! **On a terminal** (stdin is one) the shell runs on a remote TTY
//! (`AttachParams::interactive_tty()`) and the local terminal is put in
//! *raw mode*: every key is sent as typed, unprocessed — Ctrl-C reaches
//! the remote shell (which interrupts its foreground command) instead of
//! ending this program, and the remote terminal does the echo, line
//! editing and full-screen programs. The terminal's size is sent at the
//! start and again on each SIGWINCH (a resized window). The terminal is
//! restored on every way out: the shell's exit, an error, a panic, and
//! SIGTERM, SIGHUP or SIGINT sent to this program. The program exits with the shell's
//! exit code.
//!
//! **Otherwise** (stdin is a pipe or a file) it falls back to *line mode*,
//! as `kubectl exec -i` does: no TTY; stdin is sent as it comes and its end
//! closes the shell's stdin (which ends `sh`); stdout and stderr stay
//! separate. Same exit code.

use std::io::IsTerminal;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube_client::api::remote::{AttachParams, AttachedProcess, ProcessStatus, TerminalSize};
use kube_client::{Api, Client};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() {
    // Always leave through `exit`: reading stdin holds a thread that would
    // keep the runtime from shutting down. The terminal is restored before.
    match run().await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("pod_shell: {e:#}");
            std::process::exit(1)
        }
    }
}

/// The session; the shell's exit code.
async fn run() -> anyhow::Result<i32> {
    let mut args = std::env::args().skip(1);
    let (mut namespace, mut container, mut positional) = (None, None, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" | "--namespace" => namespace = Some(args.next().context("-n needs a value")?),
            "-c" | "--container" => container = Some(args.next().context("-c needs a value")?),
            _ => positional.push(arg),
        }
    }
    let (pod, shell) = match positional.as_slice() {
        [pod] => (pod.clone(), "sh".to_string()),
        [pod, shell] => (pod.clone(), shell.clone()),
        _ => bail!("usage: pod_shell [-n NS] [-c CONTAINER] POD [SHELL]"),
    };
    let client = Client::try_default().await?;
    let pods: Api<Pod> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let terminal = std::io::stdin().is_terminal();
    let mut params = if terminal {
        AttachParams::interactive_tty()
    } else {
        AttachParams::default().stdin(true)
    };
    params.container = container;
    let process = pods.exec(&pod, [shell], &params).await?;
    let status = if terminal {
        // Raw mode lasts as long as this guard: dropped on return, on `?`
        // and while a panic unwinds.
        let raw = RawMode::enable()?;
        let status = on_terminal(process).await;
        drop(raw);
        status?
    } else {
        in_line_mode(process).await?
    };
    match status {
        ProcessStatus::Success => Ok(0),
        ProcessStatus::ExitCode(code) => Ok(code),
        ProcessStatus::Failed(s) => bail!("{}", s.message.as_deref().unwrap_or("failed")),
    }
}

/// The local terminal in raw mode until this is dropped.
struct RawMode;

impl RawMode {
    fn enable() -> anyhow::Result<Self> {
        crossterm::terminal::enable_raw_mode().context("raw mode")?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The local terminal's size now.
fn terminal_size() -> Option<TerminalSize> {
    let (width, height) = crossterm::terminal::size().ok()?;
    Some(TerminalSize { width, height })
}

/// Runs the TTY session: keys out, output in, sizes on SIGWINCH, until the
/// shell ends (or our terminal closes, or SIGTERM, SIGHUP or SIGINT from
/// elsewhere end this program: raw mode sends no SIGINT for Ctrl-C).
async fn on_terminal(mut process: AttachedProcess) -> anyhow::Result<ProcessStatus> {
    let mut remote_in = process.stdin().context("stdin")?;
    let remote_out = process.stdout().context("stdout")?;
    let resize = process.terminal_size().context("terminal size")?;
    let status = process.take_status().context("status")?;
    let mut window_changes = signal(SignalKind::window_change())?;
    let (mut terminate, mut hangup, mut interrupt) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::hangup())?,
        signal(SignalKind::interrupt())?,
    );
    if let Some(size) = terminal_size() {
        resize.send(size).await?;
    }
    // These two end only when our terminal does (no more keys): a
    // send that fails means the session is ending, and the output and
    // status say how.
    let resizes = async move {
        while window_changes.recv().await.is_some() {
            if let Some(size) = terminal_size()
                && resize.send(size).await.is_err()
            {
                break;
            }
        }
        std::future::pending::<std::convert::Infallible>().await
    };
    let keys = async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if remote_in.write_all(&buf[..n]).await.is_err() {
                        std::future::pending::<()>().await
                    }
                }
            }
        }
    };
    let output = print(remote_out, tokio::io::stdout());
    // The session ends when the shell's output does; keys and resizes are
    // dropped with it (stdin stays open until then, as a terminal's does).
    tokio::select! {
        printed = async { tokio::join!(output, status) } => {
            let (printed, status) = printed;
            printed?;
            Ok(status?)
        }
        _ = keys => {
            process.abort();
            bail!("the local terminal closed")
        }
        never = resizes => match never {},
        _ = terminate.recv() => {
            process.abort();
            bail!("terminated (SIGTERM)")
        }
        _ = hangup.recv() => {
            process.abort();
            bail!("hung up (SIGHUP)")
        }
        _ = interrupt.recv() => {
            process.abort();
            bail!("interrupted (SIGINT)")
        }
    }
}

/// Without a terminal: stdin as it comes, its end closes the shell's;
/// stdout and stderr apart.
async fn in_line_mode(mut process: AttachedProcess) -> anyhow::Result<ProcessStatus> {
    let mut remote_in = process.stdin().context("stdin")?;
    let remote_out = process.stdout().context("stdout")?;
    let remote_err = process.stderr().context("stderr")?;
    let status = process.take_status().context("status")?;
    let send = tokio::spawn(async move {
        tokio::io::copy(&mut tokio::io::stdin(), &mut remote_in).await?;
        // The end of our stdin closes the shell's.
        remote_in.shutdown().await
    });
    let (out, err, status) = tokio::join!(
        print(remote_out, tokio::io::stdout()),
        print(remote_err, tokio::io::stderr()),
        status
    );
    send.abort();
    out?;
    err?;
    Ok(status?)
}

/// Copies `from` to `to` as it arrives (flushed at once: a prompt has no
/// line end).
async fn print(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}
