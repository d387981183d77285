//! A real process behind `pods/attach` on the simulated nodes.
//!
//! A kubelet connects an attach to the main process of a container: the
//! client sees that process's output from then on, its stdin goes to the
//! process, and with a TTY its resizes resize the process's terminal.
//! KWOK has no processes (its attach follows a log file), so kube-testenv
//! supplies one: [`ControlPlane::attach_pod_process`] starts a command on
//! this machine on a pseudo-terminal of its own and serves it on a Unix
//! socket, and the Pod's `Attach` rule names that socket; KWOK as
//! kube-testenv builds it (`xtask/kwok/_overlay/attach.go`) then relays
//! each attach to the socket: stdin and terminal sizes in, the terminal's
//! output out.
//!
//! Guarantees: every attach sees the output written while it is connected
//! (several at once each get all of it, unless one falls more than 256
//! chunks behind: it misses the oldest; output written while nobody is
//! attached is dropped, as a container's is); an attach's stdin bytes reach
//! the process's terminal in order, and a process that does not read them
//! holds back that attach's input only (the terminal is written on a thread
//! of its own); a size sets the terminal's size (`stty size` shows it); a
//! malformed frame (unknown kind, over 1 MiB) ends that attach; when the
//! process exits, every attach ends. The process is killed and the socket
//! removed when the [`PodProcess`] is dropped. The process runs as this
//! user, on a terminal that is not its controlling terminal (it gets no
//! SIGWINCH; it sees the size when it asks).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::controlplane::ControlPlane;
use crate::error::{Error, Result};
use crate::nodes::upsert_rule;

/// The frame kinds KWOK sends (see `_overlay/attach.go`).
const STDIN: u8 = 0;
const RESIZE: u8 = 4;
/// The largest frame accepted (KWOK sends at most 32 KiB of stdin).
const MAX_FRAME: usize = 1 << 20;
/// How many chunks of output (of up to 16 KiB) wait for a slow attach
/// before it misses some.
const OUTPUT_BACKLOG: usize = 256;

/// How many frames of input wait for the process's terminal.
const INPUT_BACKLOG: usize = 64;

/// What an attach sends to the process's terminal.
enum Input {
    Stdin(Vec<u8>),
    Size { width: u16, height: u16 },
}

/// The process's output, as each attach receives it.
type Output = broadcast::Receiver<std::sync::Arc<[u8]>>;

/// A process started by [`ControlPlane::attach_pod_process`]: killed, and
/// its socket removed, when dropped.
#[derive(Debug)]
pub struct PodProcess {
    child: std::process::Child,
    socket: PathBuf,
    server: JoinHandle<()>,
}

impl PodProcess {
    /// The process id on this machine.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The Unix socket KWOK connects attaches to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for PodProcess {
    fn drop(&mut self) {
        self.server.abort();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn io_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Nodes(format!("pseudo-terminal process: {what}: {e}"))
}

/// A new pseudo-terminal of `rows` × `cols`: (master, slave), neither of
/// them the caller's controlling terminal. For tests that drive a
/// terminal program (kubectl, an example) through the master.
pub fn pseudo_terminal(rows: u16, cols: u16) -> Result<(File, File)> {
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .map_err(|e| io_error("open a pseudo-terminal", e))?;
    rustix::pty::grantpt(&master).map_err(|e| io_error("grantpt", e))?;
    rustix::pty::unlockpt(&master).map_err(|e| io_error("unlockpt", e))?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(|e| io_error("ptsname", e))?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| io_error("open the terminal", e))?;
    set_size(&master, cols, rows)?;
    Ok((File::from(master), File::from(slave)))
}

fn set_size(terminal: impl rustix::fd::AsFd, width: u16, height: u16) -> Result<()> {
    let size = Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(terminal, size).map_err(|e| io_error("resize", e))
}

impl ControlPlane {
    /// Starts `command` on this machine as the main process of `container`
    /// in Pod `namespace/pod` for `pods/attach` (`kubectl attach`): on a
    /// pseudo-terminal of 24 × 80, in the control plane's directory. Replaces
    /// an earlier attach rule (file or process) of the container; its logs
    /// (`pods/log`) are not affected. Takes effect once KWOK has seen the
    /// rule (see [`crate::nodes`]). Must be called within a Tokio runtime.
    pub async fn attach_pod_process(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[&str],
    ) -> Result<PodProcess> {
        let Some((program, args)) = command.split_first() else {
            return Err(Error::Nodes("attach process: an empty command".into()));
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let socket = self.dir().join(format!(
            "attach-{}.sock",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).map_err(|e| io_error("bind", e))?;
        let (master, slave) = pseudo_terminal(24, 80)?;
        let clone = |f: &File| f.try_clone().map_err(|e| io_error("dup", e));
        let child = std::process::Command::new(program)
            .args(args)
            .current_dir(self.dir())
            .stdin(clone(&slave)?)
            .stdout(clone(&slave)?)
            .stderr(slave)
            .spawn()
            .map_err(|e| io_error(&format!("start {program}"), e))?;
        // Our copy of the terminal is gone: the output ends when the
        // process's is.
        let (sender, output) = broadcast::channel(OUTPUT_BACKLOG);
        let mut reader = clone(&master)?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = sender.send(bytes_of(&buf[..n]));
            }
            // Dropping the sender ends every attach.
        });
        // Writes to the terminal may block (a process that does not read
        // its stdin): they happen on a thread of their own.
        let (input, mut inputs) = mpsc::channel::<Input>(INPUT_BACKLOG);
        std::thread::spawn(move || {
            while let Some(input) = inputs.blocking_recv() {
                let done = match input {
                    Input::Stdin(bytes) => (&master).write_all(&bytes).is_err(),
                    Input::Size { width, height } => set_size(&master, width, height).is_err(),
                };
                if done {
                    break;
                }
            }
        });
        let server = tokio::spawn(serve(listener, input, output));
        let process = PodProcess {
            child,
            socket,
            server,
        };
        let entry =
            json!({"containers": [container], "logsFile": process.socket.display().to_string()});
        upsert_rule(
            self.access(),
            namespace,
            pod,
            ("Attach", "attaches", "attaches"),
            |entries: &mut Vec<Value>| {
                entries.retain(|e| e["containers"] != json!([container]));
                entries.push(entry.clone());
            },
        )
        .await?;
        Ok(process)
    }
}

fn bytes_of(data: &[u8]) -> std::sync::Arc<[u8]> {
    std::sync::Arc::from(data)
}

/// Accepts KWOK's connections, one per attach.
async fn serve(listener: UnixListener, input: mpsc::Sender<Input>, output: Output) {
    // `output` is never read: each attach gets a receiver of what comes
    // after it connects (and the end, once the process's output ended).
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(attach(stream, output.resubscribe(), input.clone()));
    }
}

/// One attach: frames in, output out, until either side ends.
async fn attach(stream: UnixStream, mut output: Output, input: mpsc::Sender<Input>) {
    let (mut from_kwok, mut to_kwok) = stream.into_split();
    let input_tx = input;
    let frames = async move {
        loop {
            let mut header = [0u8; 5];
            if from_kwok.read_exact(&mut header).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if len > MAX_FRAME {
                return;
            }
            let mut payload = vec![0u8; len];
            if from_kwok.read_exact(&mut payload).await.is_err() {
                return;
            }
            let input = match header[0] {
                STDIN => Input::Stdin(payload),
                RESIZE if payload.len() == 4 => Input::Size {
                    width: u16::from_be_bytes([payload[0], payload[1]]),
                    height: u16::from_be_bytes([payload[2], payload[3]]),
                },
                _ => return,
            };
            if input_tx.send(input).await.is_err() {
                return;
            }
        }
    };
    let printed = async move {
        loop {
            match output.recv().await {
                Ok(chunk) => {
                    if to_kwok.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = to_kwok.shutdown().await;
                    return;
                }
            }
        }
    };
    // The process's end ends the attach; the client's end (KWOK closes the
    // connection) stops the frames, and the output with them.
    tokio::select! {
        _ = printed => {}
        _ = frames => {}
    }
}
