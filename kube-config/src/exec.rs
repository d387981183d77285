//! client-go credential plugins (`users[].user.exec`).
//!
//! Guarantees (the `client.authentication.k8s.io` protocol, v1 and v1beta1):
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
//!   interactive, stderr is captured: on failure the error carries the exit
//!   status and the trimmed stderr (at most 4 KiB).
//! - The output must be an `ExecCredential` of the configured apiVersion with
//!   a `status` holding a `token` and/or `clientCertificateData` +
//!   `clientKeyData`; anything else is an error naming the command that
//!   never quotes the output. Output is never logged nor shown by `Debug`.
//! - The credential is cached until `status.expirationTimestamp` (RFC 3339),
//!   or until [`ExecProvider::invalidate`] when there is none. One plugin
//!   runs at a time per provider; clones share the cache.
//! - A command that does not exist gives an error with the `installHint`.

use std::fmt;
use std::io::{ErrorKind, IsTerminal};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::auth::Credential;
use crate::kubeconfig::ExecConfig;
use crate::pem::ClientIdentity;
use crate::time::parse_rfc3339;
use crate::{Error, SecretString};

/// `client.authentication.k8s.io/v1`.
pub const EXEC_API_V1: &str = "client.authentication.k8s.io/v1";
/// `client.authentication.k8s.io/v1beta1`.
pub const EXEC_API_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

const STDERR_LIMIT: usize = 4096;

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

/// Runs a credential plugin and caches its result. Cheap to clone.
#[derive(Clone)]
pub struct ExecProvider {
    inner: Arc<Inner>,
}

struct Inner {
    user: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, SecretString)>,
    api_version: &'static str,
    install_hint: Option<String>,
    interactive_mode: InteractiveMode,
    cluster: Option<Value>,
    cache: Mutex<Option<Credential>>,
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
        Ok(Self {
            inner: Arc::new(Inner {
                user: user.to_owned(),
                command: config.command.clone(),
                args: config.args.clone().unwrap_or_default(),
                env,
                api_version,
                install_hint: config.install_hint.clone(),
                interactive_mode,
                cluster,
                cache: Mutex::new(None),
            }),
        })
    }

    /// The command (absolute when the kubeconfig gave a relative path).
    pub fn command(&self) -> &str {
        &self.inner.command
    }

    /// The protocol version.
    pub fn api_version(&self) -> &str {
        self.inner.api_version
    }

    /// The interactive mode.
    pub fn interactive_mode(&self) -> InteractiveMode {
        self.inner.interactive_mode
    }

    /// The cached credential if it has not expired, else the plugin's fresh
    /// one.
    pub fn credential(&self) -> Result<Credential, Error> {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cred) = cache.as_ref() {
            let expired = cred.expires_at.is_some_and(|at| SystemTime::now() >= at);
            if !expired {
                return Ok(cred.clone());
            }
        }
        let cred = self.run()?;
        *cache = Some(cred.clone());
        Ok(cred)
    }

    /// Runs the plugin now, replacing the cached credential.
    pub fn refresh(&self) -> Result<Credential, Error> {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        *cache = None;
        let cred = self.run()?;
        *cache = Some(cred.clone());
        Ok(cred)
    }

    /// Drops the cached credential; the next [`credential`](Self::credential)
    /// call runs the plugin.
    pub fn invalidate(&self) {
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        *cache = None;
    }

    /// Parses what the plugin printed on standard output into a credential,
    /// exactly as [`credential`](Self::credential) does after running it
    /// (the cache is not touched). The output must be an `ExecCredential` of
    /// this provider's apiVersion (see the module docs); any other output is
    /// an [`Error::ExecOutput`] naming the command and user, never quoting
    /// the output. Useful to test a plugin's output without running it.
    pub fn parse_output(&self, stdout: &[u8]) -> Result<Credential, Error> {
        parse_output(stdout, self.inner.api_version).map_err(|reason| Error::ExecOutput {
            command: self.inner.command.clone(),
            user: self.inner.user.clone(),
            reason,
        })
    }

    fn run(&self) -> Result<Credential, Error> {
        let inner = &*self.inner;
        let stdin_is_tty = std::io::stdin().is_terminal();
        let interactive = match inner.interactive_mode {
            InteractiveMode::Never => false,
            InteractiveMode::IfAvailable => stdin_is_tty,
            InteractiveMode::Always if stdin_is_tty => true,
            InteractiveMode::Always => {
                return Err(Error::ExecNotInteractive {
                    command: inner.command.clone(),
                    user: inner.user.clone(),
                });
            }
        };
        let mut spec = json!({ "interactive": interactive });
        if let Some(cluster) = &inner.cluster {
            spec["cluster"] = cluster.clone();
        }
        let info = json!({
            "kind": "ExecCredential",
            "apiVersion": inner.api_version,
            "spec": spec,
        });

        let mut cmd = Command::new(&inner.command);
        cmd.args(&inner.args)
            .envs(inner.env.iter().map(|(k, v)| (k, v.expose())))
            .env("KUBERNETES_EXEC_INFO", info.to_string())
            .stdout(Stdio::piped());
        if interactive {
            cmd.stdin(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        }
        tracing::debug!(command = %inner.command, user = %inner.user, "running exec credential plugin");
        let output = cmd.output().map_err(|error| {
            if error.kind() == ErrorKind::NotFound {
                Error::ExecNotFound {
                    command: inner.command.clone(),
                    user: inner.user.clone(),
                    install_hint: inner.install_hint.clone(),
                }
            } else {
                Error::ExecSpawn {
                    command: inner.command.clone(),
                    user: inner.user.clone(),
                    error,
                }
            }
        })?;
        if !output.status.success() {
            let stderr = if interactive {
                "(shown on the terminal)".to_owned()
            } else {
                bounded_stderr(&output.stderr)
            };
            return Err(Error::ExecFailed {
                command: inner.command.clone(),
                user: inner.user.clone(),
                status: output.status.to_string(),
                stderr,
            });
        }
        if !output.stderr.is_empty() {
            tracing::debug!(
                command = %inner.command,
                stderr = %bounded_stderr(&output.stderr),
                "exec credential plugin wrote to stderr"
            );
        }
        self.parse_output(&output.stdout)
    }
}

impl fmt::Debug for ExecProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        f.debug_struct("ExecProvider")
            .field("user", &i.user)
            .field("command", &i.command)
            .field("args", &i.args)
            .field(
                "env_names",
                &i.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("api_version", &i.api_version)
            .field("interactive_mode", &i.interactive_mode)
            .field("provide_cluster_info", &i.cluster.is_some())
            .finish_non_exhaustive()
    }
}

/// Stderr as text, trimmed, at most [`STDERR_LIMIT`] bytes.
fn bounded_stderr(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return "(empty)".to_owned();
    }
    if text.len() <= STDERR_LIMIT {
        return text.to_owned();
    }
    let mut cut = STDERR_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… (truncated)", &text[..cut])
}

/// Parses and checks an ExecCredential. Errors never quote the output.
fn parse_output(stdout: &[u8], api_version: &str) -> Result<Credential, String> {
    let value: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("output is not JSON ({e})"))?;
    let Value::Object(obj) = value else {
        return Err("output is not a JSON object".to_owned());
    };
    match obj.get("kind").and_then(Value::as_str) {
        Some("ExecCredential") => {}
        _ => return Err("kind is not `ExecCredential`".to_owned()),
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(format!(
                "apiVersion is `{v}`, but the kubeconfig asks for `{api_version}`"
            ));
        }
        None => return Err("apiVersion is missing".to_owned()),
    }
    let Some(Value::Object(status)) = obj.get("status") else {
        return Err("status is missing or not an object".to_owned());
    };
    let string = |key: &str| -> Result<Option<&str>, String> {
        match status.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("status.{key} is not a string")),
        }
    };
    let token = string("token")?;
    let cert = string("clientCertificateData")?;
    let key = string("clientKeyData")?;
    let expires_at = string("expirationTimestamp")?
        .map(|ts| parse_rfc3339(ts).map_err(|e| format!("status.expirationTimestamp: {e}")))
        .transpose()?;
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some(
            ClientIdentity::from_pem_with_origin(
                cert.as_bytes().to_vec(),
                "status.clientCertificateData",
                key.as_bytes().to_vec(),
                "status.clientKeyData",
            )
            .map_err(|e| e.to_string())?,
        ),
        (None, None) => None,
        _ => {
            return Err(
                "status has only one of clientCertificateData and clientKeyData; both are needed"
                    .to_owned(),
            );
        }
    };
    if token.is_none() && identity.is_none() {
        return Err(
            "status has neither a token nor clientCertificateData and clientKeyData".to_owned(),
        );
    }
    Ok(Credential {
        token: token.map(SecretString::new),
        basic: None,
        identity,
        expires_at,
    })
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
    }

    #[test]
    fn output_checks() {
        let v1 = EXEC_API_V1;
        let ok = br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"2099-01-01T00:00:00Z"}}"#;
        let cred = parse_output(ok, v1).expect("ok");
        assert_eq!(cred.token.as_ref().map(|t| t.expose()), Some("t"));
        assert!(cred.expires_at.is_some());
        let e = |out: &str| parse_output(out.as_bytes(), v1).unwrap_err();
        assert_eq!(
            e("secret-ish garbage"),
            "output is not JSON (expected value at line 1 column 1)"
        );
        assert_eq!(e("[]"), "output is not a JSON object");
        assert_eq!(e(r#"{"kind":"Other"}"#), "kind is not `ExecCredential`");
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{"token":"t"}}"#
            ),
            "apiVersion is `client.authentication.k8s.io/v1beta1`, but the kubeconfig asks for `client.authentication.k8s.io/v1`"
        );
        assert_eq!(
            e(r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"}"#),
            "status is missing or not an object"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}}"#
            ),
            "status has neither a token nor clientCertificateData and clientKeyData"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":5}}"#
            ),
            "status.token is not a string"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"clientKeyData":"k"}}"#
            ),
            "status has only one of clientCertificateData and clientKeyData; both are needed"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"soon"}}"#
            ),
            "status.expirationTimestamp: `soon` is not an RFC 3339 timestamp: too short"
        );
    }

    #[test]
    fn stderr_is_bounded() {
        assert_eq!(bounded_stderr(b"  \n"), "(empty)");
        assert_eq!(bounded_stderr(b" oops \n"), "oops");
        let long = "é".repeat(5000);
        let b = bounded_stderr(long.as_bytes());
        assert!(b.ends_with("… (truncated)"));
        assert!(b.len() <= STDERR_LIMIT + 20);
    }
}
