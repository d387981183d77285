//! TLS and credentials against the real API server: CA verification,
//! tls-server-name, insecure mode, bearer tokens, token-file rotation, exec
//! plugins (expiry, refresh after 401, one run for concurrent requests, timeout),
//! impersonation, HTTP/2.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::config::{
    Auth, Config, Impersonation, Kubeconfig, SecretString, TokenFile, TokenSource,
};
use kube_client::params::ListParams;
use kube_client::{Api, Client, Error};

fn admin_token() -> String {
    common::env()
        .control_plane()
        .expect("these tests need the bundled control plane")
        .admin_token()
        .to_string()
}

/// The admin config without its client certificate.
fn anonymous_config() -> Config {
    let mut c = common::config();
    c.identity = None;
    c
}

async fn list_default(config: Config) -> Result<usize, Error> {
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config)?, "default");
    Ok(api.list(&ListParams::default()).await?.items.len())
}

#[tokio::test]
async fn a_client_with_the_wrong_ca_fails_with_a_tls_error() {
    let mut config = common::config();
    let other_ca = kube_testenv::certs::Certs::generate().unwrap().ca_pem;
    let der = rustls_pki_types_der(&other_ca);
    config.root_certs = Some(vec![der]);
    let err = list_default(config).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(common::env().access().server.as_str()),
        "names the URL: {text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

fn rustls_pki_types_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[tokio::test]
async fn tls_server_name_replaces_the_host_in_verification() {
    // The serving cert is for localhost and 127.0.0.1; the URL says 127.0.0.1.
    let mut good = common::config();
    good.tls_server_name = Some("localhost".into());
    assert!(list_default(good).await.is_ok());
    let mut bad = common::config();
    bad.tls_server_name = Some("not-the-server.example".into());
    let err = list_default(bad).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn insecure_skip_tls_verify_only_when_asked() {
    // Without a CA the platform's roots are used (tests/system_roots.rs),
    // and they do not hold the test control plane's CA.
    let mut config = common::config();
    config.root_certs = None;
    let err = list_default(config.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    config.accept_invalid_certs = true;
    assert!(list_default(config).await.is_ok());
}

#[tokio::test]
async fn bearer_tokens_and_401() {
    let mut config = anonymous_config();
    config.auth = Auth::Bearer(TokenSource::Static(SecretString::new(admin_token())));
    assert!(list_default(config.clone()).await.is_ok());

    config.auth = Auth::Bearer(TokenSource::Static(SecretString::new("wrong")));
    let err = list_default(config).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    assert!(
        !format!("{err:?}").contains("wrong"),
        "the token is not in the error: {err:?}"
    );
}

#[tokio::test]
async fn a_rotated_token_file_is_picked_up_after_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "stale-token").unwrap();
    let mut config = anonymous_config();
    config.auth = Auth::Bearer(TokenSource::File(TokenFile::new(&file).unwrap()));
    let client = Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    assert!(
        api.list(&ListParams::default())
            .await
            .unwrap_err()
            .is_unauthorized()
    );

    std::fs::write(&file, admin_token()).unwrap();
    api.list(&ListParams::default())
        .await
        .expect("the client re-reads the file after a 401");
}

#[tokio::test]
async fn impersonation_headers_are_sent() {
    let mut config = common::config();
    config.impersonate = Some(Impersonation {
        user: "alice".into(),
        groups: vec!["dev".into()],
        ..Impersonation::default()
    });
    let err = list_default(config).await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    assert!(
        err.to_string().contains("\"alice\""),
        "RBAC names the impersonated user: {err}"
    );
}

#[tokio::test]
async fn the_connection_speaks_http2() {
    let client = common::client();
    let req = http::Request::get("/version").body(vec![]).unwrap();
    let resp = client.request_streaming(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
}

/// Writes an exec plugin that logs each run to `count` and prints the
/// tokens in `tokens` one per run (the last repeats), expiring after `ttl`.
fn exec_plugin(dir: &Path, tokens: &[&str], ttl: Duration) -> Config {
    let script = dir.join("plugin.sh");
    let count = dir.join("count");
    let expiry = SystemTime::now() + ttl;
    let secs = expiry
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let list = tokens.join(" ");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
echo run >> "{count}"
n=$(wc -l < "{count}")
set -- {list}
i=1; tok=$1
for t in "$@"; do if [ "$i" -le "$n" ]; then tok=$t; fi; i=$((i+1)); done
exp=$(date -u -d @$(( {secs} + (n - 1) * {ttl} )) +%Y-%m-%dT%H:%M:%SZ)
printf '{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"%s","expirationTimestamp":"%s"}}}}' "$tok" "$exp"
"#,
            count = count.display(),
            ttl = ttl.as_secs(),
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let server = common::env().access().server.clone();
    let ca = common::env().access().ca_pem.clone();
    use base64::Engine;
    let ca64 = base64::engine::general_purpose::STANDARD.encode(ca);
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: '{server}', certificate-authority-data: {ca64}}}}}]
users: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1, command: '{}', interactiveMode: Never}}}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
",
        script.display()
    );
    Config::from_kubeconfig(&Kubeconfig::from_yaml(&yaml).unwrap(), &Default::default()).unwrap()
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("count"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_expiring_exec_credential_is_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token();
    let config = exec_plugin(dir.path(), &[&token], Duration::from_secs(3));
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    api.list(&ListParams::default()).await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(runs(dir.path()), 1, "cached until it expires");
    tokio::time::sleep(Duration::from_secs(4)).await;
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(runs(dir.path()), 2, "run again after expiry");
}

#[tokio::test]
async fn an_exec_credential_is_refreshed_once_after_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token();
    let config = exec_plugin(dir.path(), &["revoked", &token], Duration::from_secs(3600));
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    api.list(&ListParams::default())
        .await
        .expect("401, refresh, retry");
    assert_eq!(runs(dir.path()), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_exec_run() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token();
    let config = exec_plugin(dir.path(), &[&token], Duration::from_secs(3600));
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let params = ListParams::default();
    let lists = (0..20).map(|_| api.list(&params));
    for listed in futures::future::join_all(lists).await {
        listed.expect("list with the shared exec credential");
    }
    assert_eq!(
        runs(dir.path()),
        1,
        "20 concurrent requests, one plugin run"
    );
}

#[tokio::test]
async fn a_hung_exec_plugin_fails_the_request_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = exec_plugin(dir.path(), &["unused"], Duration::from_secs(3600))
        .with_exec_timeout(Some(Duration::from_millis(500)));
    // Replace the plugin with one that never answers.
    std::fs::write(dir.path().join("plugin.sh"), "#!/bin/sh\nexec sleep 30\n").unwrap();
    let started = std::time::Instant::now();
    let err = list_default(config).await.expect_err("the plugin hangs");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let Error::Auth { source, .. } = &err else {
        panic!("not an auth error: {err}");
    };
    assert!(
        matches!(&**source, kube_client::config::Error::ExecTimeout { timeout, .. }
            if *timeout == Duration::from_millis(500)),
        "{source}"
    );
}

#[tokio::test]
async fn concurrent_401s_rerun_the_exec_plugin_once() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token();
    let config = exec_plugin(dir.path(), &["revoked", &token], Duration::from_secs(3600));
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let params = ListParams::default();
    let lists = (0..20).map(|_| api.list(&params));
    for listed in futures::future::join_all(lists).await {
        listed.expect("401, refresh, retry");
    }
    assert_eq!(
        runs(dir.path()),
        2,
        "one run for the first credential, one after all the 401s"
    );
}

/// A minimal SOCKS5 relay on 127.0.0.1 (no authentication, CONNECT only),
/// counting the connections it relayed and recording their targets.
async fn socks5_relay() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("socks5://{}", listener.local_addr().unwrap());
    let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                // Greeting: version 5, N methods; answer "no authentication".
                let mut head = [0u8; 2];
                client.read_exact(&mut head).await?;
                let mut methods = vec![0u8; usize::from(head[1])];
                client.read_exact(&mut methods).await?;
                client.write_all(&[5, 0]).await?;
                // Request: 5, CONNECT, 0, address type, address, port.
                let mut req = [0u8; 4];
                client.read_exact(&mut req).await?;
                let host = match req[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        client.read_exact(&mut ip).await?;
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let mut len = [0u8; 1];
                        client.read_exact(&mut len).await?;
                        let mut name = vec![0u8; usize::from(len[0])];
                        client.read_exact(&mut name).await?;
                        String::from_utf8_lossy(&name).into_owned()
                    }
                    _ => return Err(std::io::Error::other("unsupported address type")),
                };
                let mut port = [0u8; 2];
                client.read_exact(&mut port).await?;
                let target = format!("{host}:{}", u16::from_be_bytes(port));
                assert!(
                    host == "127.0.0.1" || host == "localhost",
                    "the relay only connects to 127.0.0.1: {target}"
                );
                seen.lock().unwrap().push(target.clone());
                let mut upstream = tokio::net::TcpStream::connect(&target).await?;
                client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                Ok::<(), std::io::Error>(())
            });
        }
    });
    (url, targets)
}

#[tokio::test]
async fn a_socks5_proxy_url_carries_the_requests() {
    let (proxy, targets) = socks5_relay().await;
    let mut config = common::config();
    config.proxy_url = Some(proxy.parse().unwrap());
    let server = config.cluster_url.clone();
    assert!(list_default(config).await.is_ok());
    let targets = targets.lock().unwrap().clone();
    assert!(!targets.is_empty(), "nothing went through the relay");
    let expected = format!(
        "{}:{}",
        server.host_str().unwrap(),
        server.port_or_known_default().unwrap()
    );
    assert!(targets.iter().all(|t| t == &expected), "{targets:?}");
}
