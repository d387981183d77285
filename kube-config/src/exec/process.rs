//! Running one plugin process, with a deadline and bounded output.
//!
//! Guarantees of [`run_plugin`]:
//!
//! - **Deadline.** The run (start to exit, output read) must finish within
//!   the provider's timeout; otherwise the plugin is killed with `SIGKILL`
//!   and reaped, and the failure names the command and the timeout. When
//!   the plugin is not interactive it runs in its own process group and the
//!   whole group is killed, so a helper it started (a `sleep`, a browser
//!   helper) goes too and cannot keep the output pipes open. An interactive
//!   plugin stays in the terminal's process group (so it may read the
//!   terminal); only the plugin itself is killed then.
//! - **Bounded output.** Standard output is read by its own thread up to
//!   [`EXEC_MAX_STDOUT`] bytes; one byte more kills the plugin and fails the
//!   run, so an endless writer neither grows memory nor blocks on a full
//!   pipe. Captured standard error is drained by another thread that keeps
//!   only its last [`STDERR_KEPT`] bytes; an error shows at most its last
//!   [`STDERR_LINES`] lines and [`STDERR_SHOWN`] bytes.
//! - **No zombies.** Every path (success, failure, timeout, overflow, a
//!   panic) waits for the child: a guard kills and reaps it when dropped.
//! - **Secrets.** Standard output carries the credential: it is parsed and
//!   dropped, never logged, and never quoted in a failure.

use std::io::{ErrorKind, IsTerminal, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::output::parse_output;
use super::{EXEC_MAX_STDOUT, InteractiveMode, Settings};
use crate::Error;
use crate::auth::Credential;

/// Bytes of standard error kept while draining it (the tail).
pub(super) const STDERR_KEPT: usize = 4096;
/// Most lines of standard error shown in an error.
pub(super) const STDERR_LINES: usize = 10;
/// Most bytes of standard error shown in an error.
pub(super) const STDERR_SHOWN: usize = 1024;

/// What one run gives every caller waiting for it.
pub(super) type Outcome = Result<Credential, Failure>;

/// Why a run failed: a cloneable form of the exec [`Error`]s, so every
/// caller of a shared run gets its own copy.
#[derive(Clone, Debug)]
pub(super) enum Failure {
    NotInteractive,
    NotFound,
    Spawn { kind: ErrorKind, message: String },
    Failed { status: String, stderr: String },
    Output { reason: String },
    Timeout { timeout: Duration, stderr: String },
    TooLarge,
}

impl Failure {
    /// The error for one caller.
    pub(super) fn to_error(&self, s: &Settings) -> Error {
        let command = s.command.clone();
        let user = s.user.clone();
        match self.clone() {
            Failure::NotInteractive => Error::ExecNotInteractive { command, user },
            Failure::NotFound => Error::ExecNotFound {
                command,
                user,
                install_hint: s.install_hint.clone(),
            },
            Failure::Spawn { kind, message } => Error::ExecSpawn {
                command,
                user,
                error: std::io::Error::new(kind, message),
            },
            Failure::Failed { status, stderr } => Error::ExecFailed {
                command,
                user,
                status,
                stderr,
            },
            Failure::Output { reason } => Error::ExecOutput {
                command,
                user,
                reason,
            },
            Failure::Timeout { timeout, stderr } => Error::ExecTimeout {
                command,
                user,
                timeout,
                stderr,
            },
            Failure::TooLarge => Error::ExecOutputTooLarge {
                command,
                user,
                limit: EXEC_MAX_STDOUT,
            },
        }
    }

    pub(super) fn spawn(error: &std::io::Error) -> Self {
        Failure::Spawn {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

/// The child, killed (with its process group when it has one) and reaped
/// when dropped unless it was already reaped.
struct Running {
    child: Child,
    own_group: bool,
    reaped: bool,
}

impl Running {
    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        #[cfg(unix)]
        if self.own_group {
            use rustix::process::{Pid, Signal, kill_process_group};
            // The leader is not reaped yet, so its pid (the group id) cannot
            // have been reused. ESRCH (all gone) is fine.
            let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Waits for the exit until `deadline`; `None` when it passed.
    fn wait_until(&mut self, deadline: Option<Instant>) -> std::io::Result<Option<ExitStatus>> {
        let Some(deadline) = deadline else {
            let status = self.child.wait()?;
            self.reaped = true;
            return Ok(Some(status));
        };
        // Output is closed, so the plugin is exiting: poll briefly.
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(Some(status));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the reader threads report.
enum Event {
    /// Standard output closed; everything it said (at most the limit).
    Stdout(Vec<u8>),
    /// Standard output went over the limit.
    StdoutTooLarge,
    /// Reading standard output failed.
    StdoutError(std::io::Error),
    /// Standard error closed (or failed; its tail is kept either way).
    StderrClosed,
}

/// Runs the plugin once and parses its ExecCredential.
pub(super) fn run_plugin(s: &Settings) -> Outcome {
    let stdin_is_tty = std::io::stdin().is_terminal();
    let interactive = match s.interactive_mode {
        InteractiveMode::Never => false,
        InteractiveMode::IfAvailable => stdin_is_tty,
        InteractiveMode::Always if stdin_is_tty => true,
        InteractiveMode::Always => return Err(Failure::NotInteractive),
    };
    let mut spec = json!({ "interactive": interactive });
    if let Some(cluster) = &s.cluster {
        spec["cluster"] = cluster.clone();
    }
    let info = json!({
        "kind": "ExecCredential",
        "apiVersion": s.api_version,
        "spec": spec,
    });

    let mut cmd = Command::new(&s.command);
    cmd.args(&s.args)
        .envs(s.env.iter().map(|(k, v)| (k, v.expose())))
        .env("KUBERNETES_EXEC_INFO", info.to_string())
        .stdout(Stdio::piped());
    if interactive {
        cmd.stdin(Stdio::inherit()).stderr(Stdio::inherit());
    } else {
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    tracing::debug!(command = %s.command, user = %s.user, timeout = ?s.timeout, "running exec credential plugin");
    let started = Instant::now();
    let deadline = s.timeout.map(|t| started + t);
    let child = cmd.spawn().map_err(|error| {
        if error.kind() == ErrorKind::NotFound {
            Failure::NotFound
        } else {
            Failure::spawn(&error)
        }
    })?;
    let mut running = Running {
        child,
        own_group: !interactive,
        reaped: false,
    };

    let (tx, rx) = mpsc::channel();
    let stdout = running.child.stdout.take();
    let stderr = running.child.stderr.take();
    let tail = Arc::new(Mutex::new(Vec::new()));
    if let Some(out) = stdout {
        let tx = tx.clone();
        spawn_reader("exec-plugin-stdout", move || {
            let _ = tx.send(read_capped(out, EXEC_MAX_STDOUT));
        })?;
    }
    let mut stderr_open = stderr.is_some();
    if let Some(err) = stderr {
        let tx = tx.clone();
        let tail = Arc::clone(&tail);
        spawn_reader("exec-plugin-stderr", move || {
            drain_tail(err, &tail);
            let _ = tx.send(Event::StderrClosed);
        })?;
    }
    drop(tx);
    let stderr_text = |interactive: bool| {
        if interactive {
            "(shown on the terminal)".to_owned()
        } else {
            stderr_tail(&tail.lock().unwrap_or_else(|e| e.into_inner()))
        }
    };
    let timed_out = |running: &mut Running| {
        running.kill();
        tracing::debug!(command = %s.command, user = %s.user, "exec credential plugin timed out; killed");
        Failure::Timeout {
            timeout: s.timeout.unwrap_or_default(),
            stderr: stderr_text(interactive),
        }
    };

    let mut stdout_bytes = None;
    while stdout_bytes.is_none() || stderr_open {
        let event = match deadline {
            None => rx.recv().ok(),
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => return Err(timed_out(&mut running)),
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        match event {
            Some(Event::Stdout(bytes)) => stdout_bytes = Some(bytes),
            Some(Event::StderrClosed) => stderr_open = false,
            Some(Event::StdoutTooLarge) => {
                running.kill();
                return Err(Failure::TooLarge);
            }
            Some(Event::StdoutError(error)) => {
                running.kill();
                return Err(Failure::spawn(&error));
            }
            // A reader thread is gone without reporting (it panicked).
            None => {
                running.kill();
                return Err(Failure::Spawn {
                    kind: ErrorKind::Other,
                    message: "reading the plugin's output stopped".to_owned(),
                });
            }
        }
    }
    let status = match running.wait_until(deadline) {
        Ok(Some(status)) => status,
        Ok(None) => return Err(timed_out(&mut running)),
        Err(error) => return Err(Failure::spawn(&error)),
    };
    let stdout = stdout_bytes.unwrap_or_default();
    if !status.success() {
        return Err(Failure::Failed {
            status: status.to_string(),
            stderr: stderr_text(interactive),
        });
    }
    if !interactive {
        let raw = tail.lock().unwrap_or_else(|e| e.into_inner());
        if !raw.is_empty() {
            tracing::debug!(
                command = %s.command,
                stderr = %stderr_tail(&raw),
                "exec credential plugin wrote to stderr"
            );
        }
    }
    parse_output(&stdout, s.api_version).map_err(|reason| Failure::Output { reason })
}

fn spawn_reader(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), Failure> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
        .map_err(|e| Failure::spawn(&e))
}

/// Reads `r` to its end, or until more than `limit` bytes arrived.
fn read_capped(r: impl Read, limit: usize) -> Event {
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    match r.take(cap).read_to_end(&mut buf) {
        Ok(_) if buf.len() > limit => Event::StdoutTooLarge,
        Ok(_) => Event::Stdout(buf),
        Err(e) => Event::StdoutError(e),
    }
}

/// Reads `r` to its end, keeping only its last [`STDERR_KEPT`] bytes.
fn drain_tail(mut r: impl Read, tail: &Mutex<Vec<u8>>) {
    let mut chunk = [0u8; 4096];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut kept = tail.lock().unwrap_or_else(|e| e.into_inner());
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > STDERR_KEPT {
            let excess = kept.len() - STDERR_KEPT;
            kept.drain(..excess);
        }
    }
}

/// Standard error for an error message: trimmed, its last [`STDERR_LINES`]
/// lines and at most [`STDERR_SHOWN`] bytes, `…` marking a cut.
pub(super) fn stderr_tail(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return "(empty)".to_owned();
    }
    let mut start = text.len();
    let mut lines = 0;
    for (i, _) in text.rmatch_indices('\n') {
        lines += 1;
        start = i;
        if lines == STDERR_LINES {
            break;
        }
    }
    if lines < STDERR_LINES {
        start = 0;
    } else {
        start += 1;
    }
    let mut cut = start.max(text.len().saturating_sub(STDERR_SHOWN));
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let shown = &text[cut..];
    if cut > 0 || raw.len() >= STDERR_KEPT {
        format!("…{shown}")
    } else {
        shown.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_lines_and_bytes() {
        assert_eq!(stderr_tail(b"  \n"), "(empty)");
        assert_eq!(stderr_tail(b" oops \n"), "oops");
        assert_eq!(stderr_tail(b"a\nb\nc\n"), "a\nb\nc");
        let many: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let shown = stderr_tail(many.as_bytes());
        let expected: String = (21..=30).map(|i| format!("line {i}\n")).collect();
        assert_eq!(shown, format!("…{}", expected.trim()));
        let long = "é".repeat(5000);
        let shown = stderr_tail(long.as_bytes());
        assert!(shown.starts_with('…'));
        assert!(
            shown.len() <= STDERR_SHOWN + '…'.len_utf8(),
            "{}",
            shown.len()
        );
    }

    #[test]
    fn drained_tail_is_bounded() {
        let big = vec![b'x'; 100_000];
        let tail = Mutex::new(Vec::new());
        drain_tail(&big[..], &tail);
        assert_eq!(tail.into_inner().expect("lock").len(), STDERR_KEPT);
    }

    #[test]
    fn capped_read() {
        assert!(matches!(read_capped(&b"abc"[..], 3), Event::Stdout(b) if b == b"abc"));
        assert!(matches!(
            read_capped(&b"abcd"[..], 3),
            Event::StdoutTooLarge
        ));
    }
}
