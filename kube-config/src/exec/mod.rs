//! client-go credential plugins (`users[].user.exec`).
//!
//! A credential plugin is a program named by the kubeconfig that prints an
//! `ExecCredential` (the `client.authentication.k8s.io` protocol, v1 and
//! v1beta1) holding a bearer token and/or a client certificate. An
//! [`ExecProvider`] runs it when a request needs a credential and none is
//! cached, and caches what it printed until it expires.
//!
//! Guarantees:
//!
//! - The configuration is checked when the user is selected: `command` and
//!   `apiVersion` (v1 or v1beta1) are required, `env` names must be
//!   non-empty, and `interactiveMode` must be `Never`, `IfAvailable` or
//!   `Always`; v1 requires it, v1beta1 defaults to `IfAvailable`.
//! - The plugin runs with the process environment plus its `env`, and
//!   `KUBERNETES_EXEC_INFO` set to an `ExecCredential` JSON whose
//!   `spec.interactive` tells whether stdin is a terminal it may use, and,
//!   with `provideClusterInfo`, whose `spec.cluster` carries the server, the
//!   CA (base64), `insecure-skip-tls-verify`, `tls-server-name`, `proxy-url`,
//!   `disable-compression` and the cluster's
//!   `client.authentication.k8s.io/exec` extension as `config`.
//! - Standard input (and standard error, so prompts are seen) are inherited
//!   only when interactive; `Always` without a terminal is an error. When not
//!   interactive, stderr is captured and its tail (the last 10 lines, at most
//!   1 KiB) goes into the error of a failed run.
//! - **Limits.** A run must finish within the provider's
//!   [`timeout`](ExecProvider::timeout) ([`EXEC_DEFAULT_TIMEOUT`], 60 s,
//!   unless changed with [`ExecProvider::with_timeout`] or
//!   [`Config::with_exec_timeout`](crate::Config::with_exec_timeout)); a
//!   plugin still running then is killed (with the helpers it started, when
//!   not interactive) and reaped, and the error is [`Error::ExecTimeout`]
//!   naming the command and the timeout. Standard output is capped at
//!   [`EXEC_MAX_STDOUT`] (1 MiB): more kills the plugin and gives
//!   [`Error::ExecOutputTooLarge`]; standard error is drained and only its
//!   last 4 KiB kept. client-go and kubectl wait for a plugin without limit;
//!   the timeout exists so a hung plugin cannot hang every request.
//! - The output must be an `ExecCredential` of the configured apiVersion with
//!   a `status` holding a `token` and/or `clientCertificateData` +
//!   `clientKeyData`; anything else is an error naming the command that
//!   never quotes the output. Output is never logged nor shown by `Debug`.
//! - The credential is cached until `status.expirationTimestamp` (RFC 3339),
//!   or until [`ExecProvider::invalidate`] when there is none. Clones share
//!   the cache.
//! - **Single flight.** However many callers need a fresh credential at
//!   once, the plugin runs once and each of them gets its credential or its
//!   error; callers arriving during the run join it. A caller finding a
//!   valid cached credential gets it at once, even while a run (e.g. a
//!   [`refresh`](ExecProvider::refresh)) is under way: no lock is held while
//!   the plugin runs. The plugin runs on a thread of its own;
//!   [`ExecProvider::credential`] blocks the calling thread until it is done,
//!   [`ExecProvider::credential_async`] awaits it without blocking (on any
//!   executor). A run is not cancelled when its callers give up; its
//!   credential is cached for the next one.
//! - A command that does not exist gives an error with the `installHint`.

mod flight;
mod output;
mod process;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::auth::Credential;
use crate::kubeconfig::ExecConfig;
use crate::{Error, SecretString};
use flight::Flight;
use process::{Failure, Outcome, run_plugin};

/// `client.authentication.k8s.io/v1`.
pub const EXEC_API_V1: &str = "client.authentication.k8s.io/v1";
/// `client.authentication.k8s.io/v1beta1`.
pub const EXEC_API_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// How long a plugin run may take unless configured otherwise: 60 seconds.
pub const EXEC_DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most a plugin may write to standard output: 1 MiB (a credential is a
/// few KiB).
pub const EXEC_MAX_STDOUT: usize = 1024 * 1024;

/// When an exec plugin may interact with the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InteractiveMode {
    /// Never give the plugin standard input.
    Never,
    /// Give it standard input when that is a terminal.
    IfAvailable,
    /// It needs a terminal; fail without one.
    Always,
}

/// Runs a credential plugin and caches its result. Cheap to clone; clones
/// share the cache and the run in flight.
#[derive(Clone)]
pub struct ExecProvider {
    inner: Arc<Inner>,
}

/// What a run needs, fixed when the user is resolved.
pub(crate) struct Settings {
    user: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, SecretString)>,
    api_version: &'static str,
    install_hint: Option<String>,
    interactive_mode: InteractiveMode,
    cluster: Option<Value>,
    timeout: Option<Duration>,
}

struct Inner {
    settings: Arc<Settings>,
    state: Mutex<State>,
}

/// Guarded by a mutex that is only held to look or swap, never during a run.
#[derive(Default)]
struct State {
    cached: Option<Credential>,
    flight: Option<Arc<Flight>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caches a run's credential, ends the flight, then wakes its waiters
    /// (in this order, so a caller arriving in between finds the cache).
    fn land(&self, flight: &Arc<Flight>, outcome: Outcome) {
        {
            let mut state = self.lock();
            if let Ok(cred) = &outcome {
                state.cached = Some(cred.clone());
            }
            if state
                .flight
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(f, flight))
            {
                state.flight = None;
            }
        }
        flight.land(outcome);
    }
}

fn unexpired(cred: &Credential) -> bool {
    cred.expires_at.is_none_or(|at| SystemTime::now() < at)
}

impl ExecProvider {
    /// Checks an exec configuration of user `user`. `cluster` is the
    /// `spec.cluster` to pass (when `provideClusterInfo` is set). The error
    /// is the reason, to be wrapped with the user and file.
    pub(crate) fn new(
        user: &str,
        config: &ExecConfig,
        cluster: Option<Value>,
    ) -> Result<Self, String> {
        if config.command.is_empty() {
            return Err("exec: command must be specified".to_owned());
        }
        let api_version = match config.api_version.as_deref() {
            None | Some("") => return Err("exec: apiVersion must be specified".to_owned()),
            Some(EXEC_API_V1) => EXEC_API_V1,
            Some(EXEC_API_V1BETA1) => EXEC_API_V1BETA1,
            Some(other) => {
                return Err(format!(
                    "exec: apiVersion `{other}` is not supported (use {EXEC_API_V1} or {EXEC_API_V1BETA1})"
                ));
            }
        };
        let interactive_mode = match config.interactive_mode.as_deref() {
            Some("Never") => InteractiveMode::Never,
            Some("IfAvailable") => InteractiveMode::IfAvailable,
            Some("Always") => InteractiveMode::Always,
            None | Some("") if api_version == EXEC_API_V1BETA1 => InteractiveMode::IfAvailable,
            None | Some("") => {
                return Err(format!(
                    "exec: interactiveMode must be specified for {EXEC_API_V1}"
                ));
            }
            Some(other) => {
                return Err(format!(
                    "exec: invalid interactiveMode `{other}` (use Never, IfAvailable or Always)"
                ));
            }
        };
        let mut env = Vec::new();
        for var in config.env.iter().flatten() {
            if var.name.is_empty() {
                return Err("exec: env variable name must be specified".to_owned());
            }
            env.push((var.name.clone(), SecretString::new(var.value.as_str())));
        }
        Ok(Self::from_settings(Settings {
            user: user.to_owned(),
            command: config.command.clone(),
            args: config.args.clone().unwrap_or_default(),
            env,
            api_version,
            install_hint: config.install_hint.clone(),
            interactive_mode,
            cluster,
            timeout: Some(EXEC_DEFAULT_TIMEOUT),
        }))
    }

    fn from_settings(settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: Arc::new(settings),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// This provider with another run timeout (`None`: wait as long as the
    /// plugin takes). The result has its own, empty cache.
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Self {
        let s = &self.inner.settings;
        Self::from_settings(Settings {
            user: s.user.clone(),
            command: s.command.clone(),
            args: s.args.clone(),
            env: s.env.clone(),
            api_version: s.api_version,
            install_hint: s.install_hint.clone(),
            interactive_mode: s.interactive_mode,
            cluster: s.cluster.clone(),
            timeout,
        })
    }

    /// The command (absolute when the kubeconfig gave a relative path).
    pub fn command(&self) -> &str {
        &self.inner.settings.command
    }

    /// The protocol version.
    pub fn api_version(&self) -> &str {
        self.inner.settings.api_version
    }

    /// The interactive mode.
    pub fn interactive_mode(&self) -> InteractiveMode {
        self.inner.settings.interactive_mode
    }

    /// How long a run may take before the plugin is killed (`None`: no
    /// limit). [`EXEC_DEFAULT_TIMEOUT`] unless set with
    /// [`with_timeout`](Self::with_timeout).
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.settings.timeout
    }

    /// The cached credential if there is one and it has not expired. Never
    /// waits for a run.
    pub fn cached_credential(&self) -> Option<Credential> {
        self.inner.lock().cached.clone().filter(unexpired)
    }

    /// The cached credential if it has not expired, else the plugin's fresh
    /// one, blocking the thread while the plugin runs (or while the run
    /// another caller started finishes). In async code use
    /// [`credential_async`](Self::credential_async).
    pub fn credential(&self) -> Result<Credential, Error> {
        match self.cached_or_flight(false) {
            Ok(cred) => Ok(cred),
            Err(flight) => self.finish(flight.wait_blocking()),
        }
    }

    /// Like [`credential`](Self::credential), but waits for a run without
    /// blocking the thread.
    pub async fn credential_async(&self) -> Result<Credential, Error> {
        match self.cached_or_flight(false) {
            Ok(cred) => Ok(cred),
            Err(flight) => self.finish(flight.wait().await),
        }
    }

    /// Runs the plugin now (or joins the run under way) and caches its
    /// credential. Until it lands, other callers keep getting the cached
    /// credential if it is still valid.
    pub fn refresh(&self) -> Result<Credential, Error> {
        match self.cached_or_flight(true) {
            Ok(cred) => Ok(cred),
            Err(flight) => self.finish(flight.wait_blocking()),
        }
    }

    /// Drops the cached credential; the next [`credential`](Self::credential)
    /// call runs the plugin.
    pub fn invalidate(&self) {
        self.inner.lock().cached = None;
    }

    /// Parses what a plugin printed on standard output into a credential,
    /// with the checks [`credential`](Self::credential) applies after running
    /// it (the cache is not touched): an `ExecCredential` of this provider's
    /// apiVersion (see the module docs). Any other output is an
    /// [`Error::ExecOutput`] naming the command and user, never quoting the
    /// output. Lets a plugin's output be tested without running it.
    pub fn parse_output(&self, stdout: &[u8]) -> Result<Credential, Error> {
        let s = &*self.inner.settings;
        output::parse_output(stdout, s.api_version).map_err(|reason| Error::ExecOutput {
            command: s.command.clone(),
            user: s.user.clone(),
            reason,
        })
    }

    /// Drops the cached credential if it is `rejected`; one that replaced it
    /// meanwhile stays.
    pub fn invalidate_if_cached(&self, rejected: &Credential) {
        let mut state = self.inner.lock();
        if state.cached.as_ref() == Some(rejected) {
            state.cached = None;
        }
    }

    /// The valid cached credential (unless `force`), else the run to wait
    /// for: the one under way, or a new one started here.
    fn cached_or_flight(&self, force: bool) -> Result<Credential, Arc<Flight>> {
        let flight = {
            let mut state = self.inner.lock();
            if !force && let Some(cred) = state.cached.as_ref().filter(|c| unexpired(c)) {
                return Ok(cred.clone());
            }
            if let Some(flight) = &state.flight {
                return Err(Arc::clone(flight));
            }
            let flight = Arc::new(Flight::new());
            state.flight = Some(Arc::clone(&flight));
            flight
        };
        let inner = Arc::clone(&self.inner);
        let run = Arc::clone(&flight);
        let started = std::thread::Builder::new()
            .name("exec-credential-plugin".to_owned())
            .spawn(move || {
                // Waiters must hear of a panic too, or they would wait forever.
                let outcome =
                    std::panic::catch_unwind(AssertUnwindSafe(|| run_plugin(&inner.settings)))
                        .unwrap_or_else(|_| {
                            Err(Failure::Spawn {
                                kind: std::io::ErrorKind::Other,
                                message: "the plugin runner panicked".to_owned(),
                            })
                        });
                inner.land(&run, outcome);
            });
        if let Err(error) = started {
            self.inner.land(&flight, Err(Failure::spawn(&error)));
        }
        Err(flight)
    }

    fn finish(&self, outcome: Outcome) -> Result<Credential, Error> {
        outcome.map_err(|f| f.to_error(&self.inner.settings))
    }
}

impl fmt::Debug for ExecProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.inner.settings;
        f.debug_struct("ExecProvider")
            .field("user", &s.user)
            .field("command", &s.command)
            .field("args", &s.args)
            .field(
                "env_names",
                &s.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("api_version", &s.api_version)
            .field("interactive_mode", &s.interactive_mode)
            .field("provide_cluster_info", &s.cluster.is_some())
            .field("timeout", &s.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> ExecConfig {
        serde_yaml_ng::from_str(yaml).expect("yaml")
    }

    #[test]
    fn config_checks() {
        let err = |y: &str| ExecProvider::new("u", &config(y), None).unwrap_err();
        assert_eq!(err("{apiVersion: x}"), "exec: command must be specified");
        assert_eq!(err("{command: c}"), "exec: apiVersion must be specified");
        assert_eq!(
            err("{command: c, apiVersion: client.authentication.k8s.io/v1alpha1}"),
            "exec: apiVersion `client.authentication.k8s.io/v1alpha1` is not supported (use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)"
        );
        assert_eq!(
            err("{command: c, apiVersion: client.authentication.k8s.io/v1}"),
            "exec: interactiveMode must be specified for client.authentication.k8s.io/v1"
        );
        assert_eq!(
            err(
                "{command: c, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Sometimes}"
            ),
            "exec: invalid interactiveMode `Sometimes` (use Never, IfAvailable or Always)"
        );
        assert_eq!(
            err(
                "{command: c, apiVersion: client.authentication.k8s.io/v1beta1, env: [{name: '', value: v}]}"
            ),
            "exec: env variable name must be specified"
        );
        let p = ExecProvider::new(
            "u",
            &config("{command: c, apiVersion: client.authentication.k8s.io/v1beta1, env: [{name: K, value: hidden-value}]}"),
            None,
        )
        .expect("ok");
        assert_eq!(p.interactive_mode(), InteractiveMode::IfAvailable);
        assert_eq!(p.api_version(), EXEC_API_V1BETA1);
        assert_eq!(p.command(), "c");
        assert!(!format!("{p:?}").contains("hidden-value"));

        assert_eq!(p.timeout(), Some(EXEC_DEFAULT_TIMEOUT));
        let q = p.with_timeout(Some(Duration::from_millis(250)));
        assert_eq!(q.timeout(), Some(Duration::from_millis(250)));
        assert_eq!(q.command(), "c");
        assert_eq!(p.timeout(), Some(EXEC_DEFAULT_TIMEOUT));
    }
}
