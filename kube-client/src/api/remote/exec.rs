//! `exec` and `attach`: a process in a Pod's container, its stdin, stdout
//! and stderr as async byte streams, and how it ended.
//!
//! A process's end is reported once, on the error channel, as a
//! `metav1.Status`: `Success`, or `Failure` with reason `NonZeroExitCode`
//! and a cause `ExitCode` carrying the code, or another failure. This
//! module turns it into a [`ProcessStatus`]: a command that exits non-zero
//! is a normal outcome (`ProcessStatus::ExitCode`), not an error; the
//! future of [`AttachedProcess::take_status`] fails only when the stream
//! itself failed (cut connection, protocol violation, message too large).
//!
//! Guarantees: closing (or dropping) the stdin writer sends the `v5` close
//! of channel 0, so `cat` ends; output readers end when the process does;
//! the error channel is read up to 64 KiB (more is
//! [`Error::TooLarge`]); the stream's task ends when the server closes the
//! socket, when it breaks, or on [`AttachedProcess::abort`].

use std::future::Future;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::ws::{self, Socket};
use super::{ChannelReader, OutputTx, deliver_error, frame};
use crate::api::Api;
use crate::error::{Error, Result};
use crate::params::push_query;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";

/// The most of the error channel that is read.
const MAX_STATUS_BYTES: usize = 64 * 1024;
/// How much stdin one message carries at most.
const STDIN_CHUNK: usize = 32 * 1024;
/// The stdin pipe's buffer.
const STDIN_BUFFER: usize = 64 * 1024;

/// Which streams to attach, in which container, with or without a TTY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachParams {
    /// The container (required when the Pod has several).
    pub container: Option<String>,
    /// Attach stdin (see [`AttachedProcess::stdin`]).
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr; must be `false` with `tty` (a terminal merges both).
    pub stderr: bool,
    /// Allocate a terminal: output arrives on stdout only and
    /// [`AttachedProcess::terminal_size`] resizes it.
    pub tty: bool,
    /// Offer `v5.channel.k8s.io` (the default, `true`) before
    /// `v4.channel.k8s.io`. `false` offers only `v4`: for a proxy or server
    /// that mishandles `v5`, and to exercise the fallback. With `v4` the end
    /// of stdin cannot be signalled (see [`AttachedProcess::protocol`]).
    pub offer_v5: bool,
}

impl Default for AttachParams {
    /// stdout and stderr, no stdin, no TTY.
    fn default() -> Self {
        Self {
            container: None,
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
            offer_v5: true,
        }
    }
}

impl AttachParams {
    /// An interactive terminal: stdin, stdout and a TTY (no separate stderr).
    pub fn interactive_tty() -> Self {
        Self {
            container: None,
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
            offer_v5: true,
        }
    }

    /// The same, in `container`.
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Attach stdin or not.
    pub fn stdin(mut self, enabled: bool) -> Self {
        self.stdin = enabled;
        self
    }

    /// Offer `v5.channel.k8s.io` or only `v4.channel.k8s.io` (see the
    /// field of the same name).
    pub fn offer_v5(mut self, enabled: bool) -> Self {
        self.offer_v5 = enabled;
        self
    }

    /// The subprotocols offered, in order of preference.
    fn protocols(&self) -> &'static [&'static str] {
        if self.offer_v5 { &[V5, V4] } else { &[V4] }
    }

    /// The query string, with `command` for exec.
    fn query(&self, command: &[String]) -> Result<String> {
        if self.tty && self.stderr {
            return Err(Error::InvalidRequest(
                "AttachParams: stderr cannot be attached separately with a TTY".into(),
            ));
        }
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(Error::InvalidRequest(
                "AttachParams: at least one of stdin, stdout, stderr must be attached".into(),
            ));
        }
        let mut q = String::new();
        for arg in command {
            push_query(&mut q, "command", arg);
        }
        if let Some(c) = &self.container {
            push_query(&mut q, "container", c);
        }
        for (key, on) in [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("tty", self.tty),
        ] {
            if on {
                push_query(&mut q, key, "true");
            }
        }
        Ok(q)
    }
}

/// A terminal's size in characters, sent on the resize channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// How a remote process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessStatus {
    /// It exited with code 0.
    Success,
    /// It exited with this non-zero code.
    ExitCode(i32),
    /// It failed otherwise (e.g. the command could not be started), as the
    /// server's `Status` says.
    Failed(Box<Status>),
}

impl ProcessStatus {
    /// The exit code, if the process exited (0 for `Success`).
    pub fn code(&self) -> Option<i32> {
        match self {
            ProcessStatus::Success => Some(0),
            ProcessStatus::ExitCode(c) => Some(*c),
            ProcessStatus::Failed(_) => None,
        }
    }

    /// Reads the error channel's `Status`.
    fn from_status(status: Status) -> Self {
        if status.status.as_deref() == Some("Success") {
            return ProcessStatus::Success;
        }
        if status.reason.as_deref() == Some("NonZeroExitCode")
            && let Some(code) = status
                .details
                .iter()
                .flat_map(|d| d.causes.iter().flatten())
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref()?.trim().parse::<i32>().ok())
        {
            return ProcessStatus::ExitCode(code);
        }
        ProcessStatus::Failed(Box::new(status))
    }
}

/// A process attached over a WebSocket: take its streams, then await
/// [`take_status`](Self::take_status). Its `Debug` shows the protocol and
/// which streams are still here, never the URL (it holds the command,
/// which may carry a secret) nor any stream's bytes.
pub struct AttachedProcess {
    stdin: Option<DuplexStream>,
    stdout: Option<ChannelReader>,
    stderr: Option<ChannelReader>,
    status: Option<oneshot::Receiver<Result<ProcessStatus>>>,
    resize: Option<mpsc::Sender<TerminalSize>>,
    protocol: &'static str,
    url: String,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for AttachedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedProcess")
            .field("protocol", &self.protocol)
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("status", &self.status.is_some())
            .field("terminal_size", &self.resize.is_some())
            .finish_non_exhaustive()
    }
}

impl AttachedProcess {
    /// The process's stdin (once; `None` if not attached or already
    /// taken). Shutting it down or dropping it closes stdin remotely (with
    /// `v5.channel.k8s.io`; see [`protocol`](Self::protocol)).
    pub fn stdin(&mut self) -> Option<DuplexStream> {
        self.stdin.take()
    }

    /// The process's stdout (once).
    pub fn stdout(&mut self) -> Option<ChannelReader> {
        self.stdout.take()
    }

    /// The process's stderr (once).
    pub fn stderr(&mut self) -> Option<ChannelReader> {
        self.stderr.take()
    }

    /// A sender of terminal sizes (once; only with a TTY).
    pub fn terminal_size(&mut self) -> Option<mpsc::Sender<TerminalSize>> {
        self.resize.take()
    }

    /// How the process ended (once). Resolves when the stream ends; fails
    /// only if the stream broke before the server said how it ended.
    pub fn take_status(&mut self) -> Option<impl Future<Output = Result<ProcessStatus>> + use<>> {
        let rx = self.status.take()?;
        let url = self.url.clone();
        Some(async move {
            rx.await.unwrap_or_else(|_| {
                Err(Error::Transport {
                    method: "GET".into(),
                    url,
                    message: "the stream was aborted".into(),
                })
            })
        })
    }

    /// The subprotocol in use: `v5.channel.k8s.io`, or `v4.channel.k8s.io`
    /// with a server that cannot signal the end of stdin.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// Ends the stream now (the remote process may keep running).
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Api<Pod> {
    /// Runs `command` in Pod `name` (`pods/exec`).
    pub async fn exec<I, S>(
        &self,
        name: &str,
        command: I,
        ap: &AttachParams,
    ) -> Result<AttachedProcess>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let command: Vec<String> = command.into_iter().map(Into::into).collect();
        if command.is_empty() {
            return Err(Error::InvalidRequest("exec needs a command".into()));
        }
        let path = self.path(Some(name), Some("exec"), &ap.query(&command)?)?;
        start(self, path, ap).await
    }

    /// Attaches to the main process of Pod `name`'s container
    /// (`pods/attach`).
    pub async fn attach(&self, name: &str, ap: &AttachParams) -> Result<AttachedProcess> {
        let path = self.path(Some(name), Some("attach"), &ap.query(&[])?)?;
        start(self, path, ap).await
    }
}

async fn start(api: &Api<Pod>, path: String, ap: &AttachParams) -> Result<AttachedProcess> {
    let socket = ws::connect(api.client(), path, ap.protocols()).await?;
    Ok(spawn(socket, ap))
}

/// Starts the task that pumps `socket`.
fn spawn(socket: Socket, ap: &AttachParams) -> AttachedProcess {
    let (stdin_user, stdin_task) = if ap.stdin {
        let (a, b) = tokio::io::duplex(STDIN_BUFFER);
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let (stdout_tx, stdout) = split_output(ap.stdout);
    let (stderr_tx, stderr) = split_output(ap.stderr);
    let (resize, resize_rx) = if ap.tty {
        let (tx, rx) = mpsc::channel(4);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let (status_tx, status_rx) = oneshot::channel();
    let protocol = socket.protocol;
    let url = socket.url.clone();
    let pump = Pump {
        socket,
        stdin: stdin_task,
        stdout: stdout_tx,
        stderr: stderr_tx,
        resize: resize_rx,
        status: Vec::new(),
    };
    let task = tokio::spawn(async move {
        let _ = status_tx.send(pump.run().await);
    });
    AttachedProcess {
        stdin: stdin_user,
        stdout,
        stderr,
        status: Some(status_rx),
        resize,
        protocol,
        url,
        task,
    }
}

fn split_output(enabled: bool) -> (Option<OutputTx>, Option<ChannelReader>) {
    if enabled {
        let (tx, reader) = ChannelReader::new();
        (Some(tx), Some(reader))
    } else {
        (None, None)
    }
}

struct Pump {
    socket: Socket,
    stdin: Option<DuplexStream>,
    stdout: Option<OutputTx>,
    stderr: Option<OutputTx>,
    resize: Option<mpsc::Receiver<TerminalSize>>,
    status: Vec<u8>,
}

impl Pump {
    async fn run(mut self) -> Result<ProcessStatus> {
        let outcome = self.pump().await;
        let outputs = [self.stdout.take(), self.stderr.take()];
        let result = match outcome {
            // What the server said about the process stands even if the
            // connection broke after it.
            _ if !self.status.is_empty() => decode_status(&self.socket.url, &self.status),
            Ok(()) => Ok(ProcessStatus::Success),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            for tx in outputs.into_iter().flatten() {
                deliver_error(tx, e);
            }
        }
        self.socket.close().await;
        result
    }

    /// Moves data until the server closes the socket.
    async fn pump(&mut self) -> Result<()> {
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            tokio::select! {
                message = self.socket.next() => match message? {
                    None => return Ok(()),
                    Some(message) => self.incoming(message).await?,
                },
                read = async { self.stdin.as_mut()?.read(&mut buf).await.ok() }, if self.stdin.is_some() => {
                    match read {
                        Some(n) if n > 0 => self.socket.send(frame(STDIN, &buf[..n])).await?,
                        // End of stdin (or a broken pipe): say so if the
                        // protocol can.
                        _ => {
                            self.stdin = None;
                            if self.socket.protocol == V5 {
                                self.socket.send(frame(CLOSE, &[STDIN])).await?;
                            }
                        }
                    }
                },
                size = async { self.resize.as_mut()?.recv().await }, if self.resize.is_some() => {
                    match size {
                        Some(size) => self.socket.send(resize_message(size)).await?,
                        None => self.resize = None,
                    }
                },
            }
        }
    }

    async fn incoming(&mut self, message: Message) -> Result<()> {
        let data = match message {
            Message::Binary(data) => data,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {
                return Ok(());
            }
            Message::Text(_) => {
                return Err(self.violation("a text message on a binary protocol".into()));
            }
        };
        let Some(&channel) = data.first() else {
            return Ok(());
        };
        let payload = data.slice(1..);
        match channel {
            STDOUT | STDERR => {
                let slot = if channel == STDOUT {
                    &mut self.stdout
                } else {
                    &mut self.stderr
                };
                // A reader that is gone loses its output, nothing else.
                if let Some(tx) = slot
                    && !payload.is_empty()
                    && tx.send(Ok(payload)).await.is_err()
                {
                    *slot = None;
                }
            }
            ERROR => {
                if self.status.len() + payload.len() > MAX_STATUS_BYTES {
                    return Err(Error::TooLarge {
                        url: self.socket.url.clone(),
                        what: "exec error channel",
                        limit: MAX_STATUS_BYTES,
                        setting: "(fixed: a Status is a few hundred bytes)",
                    });
                }
                self.status.extend_from_slice(&payload);
            }
            CLOSE if self.socket.protocol == V5 => match payload.first() {
                Some(&STDOUT) => self.stdout = None,
                Some(&STDERR) => self.stderr = None,
                _ => {}
            },
            other => {
                return Err(self.violation(format!(
                    "a message on channel {other}, which exec and attach do not use"
                )));
            }
        }
        Ok(())
    }

    fn violation(&self, message: String) -> Error {
        Error::Protocol {
            url: self.socket.url.clone(),
            message,
        }
    }
}

/// The resize message for `size`.
fn resize_message(size: TerminalSize) -> Bytes {
    // Two integers: serializing cannot fail.
    let json = serde_json::to_vec(&size).unwrap_or_default();
    frame(RESIZE, &json)
}

/// The error channel's content as a [`ProcessStatus`].
fn decode_status(url: &str, bytes: &[u8]) -> Result<ProcessStatus> {
    serde_json::from_slice::<Status>(bytes)
        .map(ProcessStatus::from_status)
        .map_err(|e| Error::Protocol {
            url: url.to_string(),
            message: format!(
                "the error channel holds no Status: {} ({})",
                crate::error::safe_json_error(&e),
                crate::error::describe_body(bytes, None)
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> ProcessStatus {
        decode_status("https://h/x", json.as_bytes()).unwrap()
    }

    #[test]
    fn the_error_channel_decodes_to_a_process_status() {
        assert_eq!(
            status(r#"{"metadata":{},"status":"Success"}"#),
            ProcessStatus::Success
        );
        let exit3 = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(status(exit3), ProcessStatus::ExitCode(3));
        assert_eq!(status(exit3).code(), Some(3));
        let other = r#"{"metadata":{},"status":"Failure","message":"executable file not found","reason":"InternalError"}"#;
        match status(other) {
            ProcessStatus::Failed(s) => {
                assert_eq!(s.message.as_deref(), Some("executable file not found"))
            }
            s => panic!("{s:?}"),
        }
        // A NonZeroExitCode without a readable code is a failure, kept whole.
        let odd = r#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"many"}]}}"#;
        assert!(matches!(status(odd), ProcessStatus::Failed(_)));
        let e = decode_status("https://h/x", b"hunter2 not json").unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn v5_is_offered_first_unless_turned_off() {
        assert_eq!(AttachParams::default().protocols(), [V5, V4]);
        assert_eq!(AttachParams::interactive_tty().protocols(), [V5, V4]);
        assert_eq!(AttachParams::default().offer_v5(false).protocols(), [V4]);
    }

    #[test]
    fn resize_and_close_messages() {
        let m = resize_message(TerminalSize {
            width: 80,
            height: 24,
        });
        assert_eq!(&m[..], b"\x04{\"Width\":80,\"Height\":24}");
        assert_eq!(&frame(CLOSE, &[STDIN])[..], &[255, 0]);
        assert_eq!(&frame(STDIN, b"ab")[..], b"\x00ab");
    }

    #[test]
    fn the_query_encodes_command_and_container() {
        let ap = AttachParams {
            stdin: true,
            ..AttachParams::default()
        }
        .container("app one");
        let q = ap
            .query(&["sh".into(), "-c".into(), "echo a&b=c #x".into()])
            .unwrap();
        assert_eq!(
            q,
            "?command=sh&command=-c&command=echo%20a%26b%3Dc%20%23x&container=app%20one\
             &stdin=true&stdout=true&stderr=true"
        );
        assert_eq!(
            AttachParams::interactive_tty().query(&[]).unwrap(),
            "?stdin=true&stdout=true&tty=true"
        );
        let both = AttachParams {
            tty: true,
            ..AttachParams::default()
        };
        assert!(matches!(both.query(&[]), Err(Error::InvalidRequest(_))));
        let none = AttachParams {
            stdout: false,
            stderr: false,
            ..AttachParams::default()
        };
        assert!(matches!(none.query(&[]), Err(Error::InvalidRequest(_))));
    }
}
