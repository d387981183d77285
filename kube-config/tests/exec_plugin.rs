//! Real exec credential plugins: small /bin/sh scripts written to temp dirs.
#![cfg(unix)]

mod common;

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use common::{fixture_b64, fixture_bytes, fixture_certs_der, fixture_key_der, write};
use kube_config::{Auth, Config, KubeconfigLoader, KubeconfigOptions};
use serde_json::{Value, json};

/// Writing an executable while another thread forks can make exec fail with
/// ETXTBSY; the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A plugin in `dir/bin/plugin.sh` that counts its runs in `dir/count`,
/// saves its `KUBERNETES_EXEC_INFO` and `MY_VAR` into `dir/exec-info.json` and
/// `dir/env.txt`, and prints `dir/response.json`.
fn write_plugin(dir: &Path) -> PathBuf {
    let d = dir.display();
    let script = format!(
        "#!/bin/sh\n\
         echo run >> '{d}/count'\n\
         printf '%s' \"$KUBERNETES_EXEC_INFO\" > '{d}/exec-info.json'\n\
         printf '%s' \"$MY_VAR\" > '{d}/env.txt'\n\
         cat '{d}/response.json'\n"
    );
    write_script(dir, "bin/plugin.sh", &script)
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = write(dir, name, body);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("count"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn respond(dir: &Path, api_version: &str, status: Value) {
    let body = json!({"kind": "ExecCredential", "apiVersion": api_version, "status": status});
    write(dir, "response.json", body.to_string());
}

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// A kubeconfig whose user `u` runs `exec` (a YAML flow mapping), loaded
/// from `dir/config`.
fn config_with_exec(dir: &Path, exec: &str) -> Result<Config, kube_config::Error> {
    let yaml = format!(
        "clusters:\n\
         - name: c\n  cluster:\n    server: https://k.example:6443\n    certificate-authority-data: {ca}\n    tls-server-name: api.k\n    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {{audience: k8s}}\n\
         contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n\
         current-context: x\n\
         users: [{{name: u, user: {{exec: {exec}}}}}]\n",
        ca = fixture_b64("ca.crt")
    );
    let path = write(dir, "config", yaml);
    let kc = KubeconfigLoader::new()
        .with_kubeconfig_env(path.as_os_str())
        .load()?;
    Config::from_kubeconfig(&kc, &KubeconfigOptions::default())
}

fn token(c: &Config) -> String {
    let cred = c
        .auth
        .current_credential()
        .expect("credential")
        .expect("some");
    cred.token.expect("token").expose().to_owned()
}

#[test]
fn unexpired_token_is_cached_and_invalidate_reruns() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_plugin(d);
    respond(
        d,
        V1,
        json!({"token": "tok-EXEC-1", "expirationTimestamp": "2099-01-01T00:00:00Z"}),
    );
    // relative command: resolved against the kubeconfig's directory
    let c = config_with_exec(
        d,
        &format!("{{command: ./bin/plugin.sh, args: [get-token], apiVersion: {V1}, interactiveMode: Never, env: [{{name: MY_VAR, value: my-value}}]}}"),
    )
    .expect("config");
    let Auth::Exec(provider) = &c.auth else {
        panic!("not exec: {:?}", c.auth);
    };
    assert_eq!(
        provider.command(),
        d.join("bin/plugin.sh").display().to_string()
    );
    assert_eq!(runs(d), 0, "plugins run on first use, not at load");

    assert_eq!(token(&c), "tok-EXEC-1");
    assert_eq!(token(&c.clone()), "tok-EXEC-1");
    assert_eq!(runs(d), 1);
    assert_eq!(
        std::fs::read_to_string(d.join("env.txt")).expect("env"),
        "my-value"
    );

    respond(d, V1, json!({"token": "tok-EXEC-2"}));
    c.auth.invalidate();
    assert_eq!(token(&c), "tok-EXEC-2");
    assert_eq!(runs(d), 2);
    // no expiry: cached until invalidated
    assert_eq!(token(&c), "tok-EXEC-2");
    assert_eq!(runs(d), 2);
    let cred = provider.refresh().expect("refresh");
    assert_eq!(cred.token.expect("token").expose(), "tok-EXEC-2");
    assert_eq!(runs(d), 3);

    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("tok-EXEC") && !dbg.contains("my-value"),
        "{dbg}"
    );

    // Without provideClusterInfo, spec has no cluster.
    let info: Value =
        serde_json::from_slice(&std::fs::read(d.join("exec-info.json")).expect("info"))
            .expect("json");
    assert_eq!(
        info,
        json!({"kind": "ExecCredential", "apiVersion": V1, "spec": {"interactive": false}})
    );
}

#[test]
fn expired_token_reruns_the_plugin() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let plugin = write_plugin(d);
    respond(
        d,
        V1,
        json!({"token": "old", "expirationTimestamp": "2000-01-01T00:00:00Z"}),
    );
    let c = config_with_exec(
        d,
        &format!(
            "{{command: '{}', apiVersion: {V1}, interactiveMode: Never}}",
            plugin.display()
        ),
    )
    .expect("config");
    assert_eq!(token(&c), "old");
    assert_eq!(token(&c), "old");
    assert_eq!(runs(d), 2);
    let cred = c.auth.current_credential().expect("cred").expect("some");
    assert!(cred.expires_at.is_some());
    assert_eq!(runs(d), 3);
}

#[test]
fn client_certificate_from_plugin() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let plugin = write_plugin(d);
    let cert = String::from_utf8(fixture_bytes("client-ec.crt")).expect("utf8");
    let key = String::from_utf8(fixture_bytes("client-ec.key")).expect("utf8");
    respond(
        d,
        V1BETA1,
        json!({"clientCertificateData": cert, "clientKeyData": key}),
    );
    let c = config_with_exec(
        d,
        &format!("{{command: '{}', apiVersion: {V1BETA1}}}", plugin.display()),
    )
    .expect("config");
    let cred = c.auth.current_credential().expect("cred").expect("some");
    assert!(cred.token.is_none());
    assert!(cred.authorization_header().is_none());
    let id = cred.identity.as_ref().expect("identity");
    let chain: Vec<Vec<u8>> = id.cert_chain_der().iter().map(|c| c.to_vec()).collect();
    assert_eq!(chain, fixture_certs_der("client-ec.crt"));
    assert_eq!(id.key_der().secret_der(), fixture_key_der("client-ec.key"));
    assert!(!format!("{cred:?}").contains("PRIVATE"));

    // v1beta1 defaults interactiveMode to IfAvailable: interactive iff stdin is a terminal.
    let info: Value =
        serde_json::from_slice(&std::fs::read(d.join("exec-info.json")).expect("info"))
            .expect("json");
    assert_eq!(info["apiVersion"], V1BETA1);
    assert_eq!(info["spec"]["interactive"], std::io::stdin().is_terminal());
}

#[test]
fn provide_cluster_info_passes_the_cluster() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let plugin = write_plugin(d);
    respond(d, V1, json!({"token": "t"}));
    let c = config_with_exec(
        d,
        &format!(
            "{{command: '{}', apiVersion: {V1}, interactiveMode: Never, provideClusterInfo: true}}",
            plugin.display()
        ),
    )
    .expect("config");
    assert_eq!(token(&c), "t");
    let info: Value =
        serde_json::from_slice(&std::fs::read(d.join("exec-info.json")).expect("info"))
            .expect("json");
    assert_eq!(
        info,
        json!({
            "kind": "ExecCredential",
            "apiVersion": V1,
            "spec": {
                "interactive": false,
                "cluster": {
                    "server": "https://k.example:6443",
                    "tls-server-name": "api.k",
                    "certificate-authority-data": fixture_b64("ca.crt"),
                    "config": {"audience": "k8s"},
                },
            },
        })
    );
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            info["spec"]["cluster"]["certificate-authority-data"]
                .as_str()
                .expect("str"),
        )
        .expect("b64");
    assert_eq!(ca, fixture_bytes("ca.crt"));
}

#[test]
fn failing_plugin_reports_status_and_stderr() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let plugin = write_script(
        d,
        "fail.sh",
        "#!/bin/sh\necho 'printed-token-must-not-leak'\necho '  error: refresh token expired, run login  ' >&2\nexit 3\n",
    );
    let c = config_with_exec(
        d,
        &format!(
            "{{command: '{}', apiVersion: {V1}, interactiveMode: Never}}",
            plugin.display()
        ),
    )
    .expect("config");
    let err = c.auth.current_credential().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "exec plugin `{}` of user `u` failed with exit status: 3; stderr: error: refresh token expired, run login",
            plugin.display()
        )
    );
}

#[test]
fn invalid_output_names_the_command() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let plugin = write_plugin(d);
    write(d, "response.json", "Error: secret-in-text");
    let c = config_with_exec(
        d,
        &format!(
            "{{command: '{}', apiVersion: {V1}, interactiveMode: Never}}",
            plugin.display()
        ),
    )
    .expect("config");
    let err = c.auth.current_credential().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "exec plugin `{}` of user `u` returned an invalid ExecCredential: output is not JSON (expected value at line 1 column 1)",
            plugin.display()
        )
    );
    respond(d, V1BETA1, json!({"token": "t"}));
    let err = c.auth.current_credential().unwrap_err().to_string();
    assert!(err.ends_with("apiVersion is `client.authentication.k8s.io/v1beta1`, but the kubeconfig asks for `client.authentication.k8s.io/v1`"), "{err}");
}

#[test]
fn missing_command_shows_install_hint() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let c = config_with_exec(
        dir.path(),
        &format!("{{command: kube-config-test-no-such-plugin, apiVersion: {V1}, interactiveMode: Never, installHint: 'Install it with: apt install no-such-plugin'}}"),
    )
    .expect("config");
    let err = c.auth.current_credential().unwrap_err().to_string();
    assert_eq!(
        err,
        "exec plugin `kube-config-test-no-such-plugin` of user `u` was not found; Install it with: apt install no-such-plugin"
    );
}

#[test]
fn exec_config_errors_at_load() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config");
    let e = |exec: &str| config_with_exec(dir.path(), exec).unwrap_err().to_string();
    assert_eq!(
        e(&format!("{{command: p, apiVersion: {V1}}}")),
        format!(
            "user `u` in {}: exec: interactiveMode must be specified for client.authentication.k8s.io/v1",
            config_path.display()
        )
    );
    assert_eq!(
        e("{command: p}"),
        format!(
            "user `u` in {}: exec: apiVersion must be specified",
            config_path.display()
        )
    );
}

#[test]
fn always_interactive_without_terminal_fails() {
    let _g = serial();
    if std::io::stdin().is_terminal() {
        // Run by hand from a terminal: the plugin would legitimately get it.
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = write_plugin(dir.path());
    respond(dir.path(), V1, json!({"token": "t"}));
    let c = config_with_exec(
        dir.path(),
        &format!(
            "{{command: '{}', apiVersion: {V1}, interactiveMode: Always}}",
            plugin.display()
        ),
    )
    .expect("config");
    let err = c.auth.current_credential().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "exec plugin `{}` of user `u` requires an interactive terminal (interactiveMode: Always), but standard input is not a terminal",
            plugin.display()
        )
    );
    assert_eq!(runs(dir.path()), 0);
}
