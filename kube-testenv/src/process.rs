//! One server process (etcd or kube-apiserver) that cannot outlive us.
//!
//! Guarantee: the server dies when the process that started it exits, however
//! it exits (return, panic, abort, SIGKILL). Each server runs under a small
//! `sh` watchdog whose stdin is a pipe from us; the kernel closes that pipe
//! when we die, the watchdog reads end-of-file and kills the server (TERM,
//! then KILL after 10 s). No `unsafe`, no `prctl`: a parent-death signal would
//! fire when the spawning *thread* ends, which in a test harness is far too
//! early.
//!
//! Server output goes to a log file, whose tail is quoted in every start-up
//! error.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, io, log_tail};

const WATCHDOG: &str = r#"
pidfile=$1; shift
exec 3<&0
"$@" </dev/null 3<&- &
server=$!
echo "$server" > "$pidfile"
(
  cat <&3 >/dev/null
  kill -TERM "$server" 2>/dev/null
  n=0
  while kill -0 "$server" 2>/dev/null; do
    n=$((n + 1))
    if [ "$n" -gt 100 ]; then kill -KILL "$server" 2>/dev/null; fi
    sleep 0.1
  done
) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// A running server under its watchdog.
#[derive(Debug)]
pub struct ServerProcess {
    name: &'static str,
    watchdog: Child,
    lifeline: Option<ChildStdin>,
    log: PathBuf,
    pid: u32,
}

impl ServerProcess {
    /// Starts `binary args…` with output appended to `log`.
    pub fn spawn(name: &'static str, binary: &Path, args: &[String], log: &Path) -> Result<Self> {
        Self::spawn_with_env(name, binary, args, &[], log)
    }

    /// [`ServerProcess::spawn`] with extra environment variables.
    pub fn spawn_with_env(
        name: &'static str,
        binary: &Path,
        args: &[String],
        env: &[(&str, &std::ffi::OsStr)],
        log: &Path,
    ) -> Result<Self> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io("open", log))?;
        let log_err = log_file.try_clone().map_err(io("open", log))?;
        let pidfile = log.with_extension("pid");
        let _ = std::fs::remove_file(&pidfile);
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("kube-testenv-watchdog")
            .arg(&pidfile)
            .arg(binary)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Error::Start {
                binary: name,
                reason: format!("cannot run sh for {}: {e}", binary.display()),
                log: log.to_path_buf(),
                tail: String::new(),
            })?;
        let lifeline = watchdog.stdin.take();
        // The watchdog writes the server's pid at once; wait for it briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            if Instant::now() > deadline {
                let _ = watchdog.kill();
                return Err(Error::Start {
                    binary: name,
                    reason: "the watchdog did not report a pid within 5 s".into(),
                    log: log.to_path_buf(),
                    tail: log_tail(log, 20),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(Self {
            name,
            watchdog,
            lifeline,
            log: log.to_path_buf(),
            pid,
        })
    }

    /// The server's process id (not the watchdog's).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(description)` if the server has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.watchdog.try_wait() {
            Ok(Some(status)) => {
                // Let the last log lines land before anyone quotes them.
                std::thread::sleep(Duration::from_millis(300));
                Some(format!("exited with {status}"))
            }
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    /// A start-up error for this server, with its log tail.
    pub fn start_error(&self, reason: String) -> Error {
        Error::Start {
            binary: self.name,
            reason,
            log: self.log.clone(),
            tail: log_tail(&self.log, 30),
        }
    }

    /// Stops the server and waits for it (at most ~15 s).
    pub fn stop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.watchdog.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.lifeline.is_some() {
            self.stop();
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released: the usual small race).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("bind", "127.0.0.1:0"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(io("bind", "127.0.0.1:0"))
}

/// The flags every control-plane component beside kube-apiserver
/// (kube-controller-manager, kube-scheduler) is started with: its
/// kubeconfig for API access and delegated authn/authz, client
/// certificates checked against `client_ca`, HTTPS on 127.0.0.1:`port` with
/// the given certificate, and no leader election.
pub(crate) fn component_args(
    kubeconfig: &Path,
    client_ca: &str,
    serving_cert: &str,
    serving_key: &str,
    port: u16,
) -> Vec<String> {
    let kubeconfig = kubeconfig.display();
    vec![
        format!("--kubeconfig={kubeconfig}"),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        format!("--client-ca-file={client_ca}"),
        "--authentication-skip-lookup=true".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--tls-cert-file={serving_cert}"),
        format!("--tls-private-key-file={serving_key}"),
        "--leader-elect=false".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    }

    #[test]
    fn stop_kills_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = ServerProcess::spawn(
            "sleeper",
            Path::new("/bin/sleep"),
            &["600".into()],
            &dir.path().join("s.log"),
        )
        .unwrap();
        let pid = p.pid();
        assert!(alive(pid));
        assert!(p.exited().is_none());
        p.stop();
        assert!(!alive(pid), "server {pid} survived stop()");
    }

    #[test]
    fn an_exiting_server_is_noticed_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let mut p = ServerProcess::spawn(
            "failer",
            Path::new("/bin/sh"),
            &["-c".into(), "echo the reason it broke; exit 3".into()],
            &log,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let exited = loop {
            if let Some(e) = p.exited() {
                break e;
            }
            assert!(Instant::now() < deadline, "exit not noticed");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(exited.contains('3'), "{exited}");
        let err = p.start_error(exited).to_string();
        assert!(err.contains("failer did not start"), "{err}");
        assert!(err.contains("the reason it broke"), "{err}");
    }
}
