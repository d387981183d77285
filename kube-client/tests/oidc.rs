//! `auth-provider: oidc` against the real API server: a private control
//! plane whose kube-apiserver trusts an OpenID Connect issuer served by this
//! test over HTTPS on 127.0.0.1 (discovery document, JWKS, token endpoint;
//! ES256 ID tokens signed with `ring`).
//!
//! What is shown: an expired (or missing) ID token is refreshed at the
//! issuer and the request succeeds as the OIDC user (a SelfSubjectReview
//! answers its name); concurrent requests share one refresh; a rotated
//! refresh token replaces the old one; a token the server rejects (401) is
//! refreshed once and the request retried; a refused refresh, an answer
//! without `id_token` and an issuer whose certificate is not trusted are
//! typed errors that do not quote the tokens or the client secret; the
//! refreshed tokens are written back to the kubeconfig file (module `persist`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use kube_client::client::OidcRefreshError;
use kube_client::config::{Auth, Config, Kubeconfig};
use kube_client::{Client, Error};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "oidc/persist.rs"]
mod persist;

const CLIENT_ID: &str = "kube-oidc-test";
const CLIENT_SECRET: &str = "client-SECRET-7f3a";
/// A refresh token the issuer answers without an `id_token`.
const RT_WITHOUT_ID_TOKEN: &str = "rt-SECRET-no-id-token";
/// A refresh token the issuer answers with 300 KiB, without a
/// `Content-Length` (the body ends when the connection closes).
const RT_HUGE_ANSWER: &str = "rt-SECRET-huge-answer";
/// Answers at least this long are sent without `Content-Length`.
const UNANNOUNCED: usize = 100 * 1024;

fn b64url(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An ES256 signing key and its JWK.
struct SigningKey {
    pair: EcdsaKeyPair,
    kid: &'static str,
}

impl SigningKey {
    fn generate(kid: &'static str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self { pair, kid }
    }

    fn jwk(&self) -> serde_json::Value {
        // An uncompressed P-256 point: 0x04, then x and y (32 bytes each).
        let point = self.pair.public_key().as_ref();
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64url(&point[1..33]), "y": b64url(&point[33..65]),
        })
    }

    /// An ID token of `issuer` for `sub`, expiring at `exp`.
    fn id_token(&self, issuer: &str, sub: &str, exp: u64) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let claims = serde_json::json!({
            "iss": issuer, "aud": CLIENT_ID, "sub": sub,
            "iat": now_secs().saturating_sub(60), "exp": exp,
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string()),
            b64url(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64url(signature.as_ref()))
    }
}

/// The test issuer: who holds which refresh token, and how many refreshes
/// each subject made.
struct Issuer {
    url: String,
    key: SigningKey,
    /// Refresh token -> subject. A refresh uses the token up and hands out
    /// a new one (rotation).
    refresh_tokens: Mutex<HashMap<String, String>>,
    refreshes: Mutex<HashMap<String, u64>>,
    /// Token endpoint requests per refresh token presented.
    token_requests: Mutex<HashMap<String, u64>>,
    next: AtomicU64,
}

impl Issuer {
    fn new_refresh_token(&self, sub: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let token = format!("rt-SECRET-{sub}-{n}");
        self.refresh_tokens
            .lock()
            .unwrap()
            .insert(token.clone(), sub.to_string());
        token
    }

    fn refreshes(&self, sub: &str) -> u64 {
        self.refreshes
            .lock()
            .unwrap()
            .get(sub)
            .copied()
            .unwrap_or(0)
    }

    fn token_requests(&self, refresh_token: &str) -> u64 {
        self.token_requests
            .lock()
            .unwrap()
            .get(refresh_token)
            .copied()
            .unwrap_or(0)
    }

    fn knows(&self, refresh_token: &str) -> bool {
        self.refresh_tokens
            .lock()
            .unwrap()
            .contains_key(refresh_token)
    }

    /// The answer to one request: status and JSON body.
    async fn answer(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
        match (method, path) {
            ("GET", "/.well-known/openid-configuration") => (
                200,
                serde_json::json!({
                    "issuer": self.url,
                    "jwks_uri": format!("{}/keys", self.url),
                    "token_endpoint": format!("{}/token", self.url),
                    "authorization_endpoint": format!("{}/auth", self.url),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256"],
                })
                .to_string(),
            ),
            ("GET", "/keys") => (
                200,
                serde_json::json!({"keys": [self.key.jwk()]}).to_string(),
            ),
            ("POST", "/token") => self.token(headers, body).await,
            _ => (404, r#"{"error":"not_found"}"#.into()),
        }
    }

    async fn token(&self, headers: &str, body: &str) -> (u16, String) {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let basic = format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        let in_header = headers
            .lines()
            .any(|l| l.to_ascii_lowercase() == format!("authorization: {}", basic.to_lowercase()));
        let in_form = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
        if !in_header && !in_form {
            return (401, r#"{"error":"invalid_client"}"#.into());
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return (400, r#"{"error":"unsupported_grant_type"}"#.into());
        }
        let presented = form.get("refresh_token").cloned().unwrap_or_default();
        *self
            .token_requests
            .lock()
            .unwrap()
            .entry(presented.clone())
            .or_default() += 1;
        if presented == RT_HUGE_ANSWER {
            let padding = "x".repeat(300 * 1024);
            return (
                200,
                format!(r#"{{"token_type":"Bearer","padding":"{padding}"}}"#),
            );
        }
        if presented == RT_WITHOUT_ID_TOKEN {
            return (
                200,
                r#"{"access_token":"at","token_type":"Bearer","expires_in":600}"#.into(),
            );
        }
        let Some(sub) = self.refresh_tokens.lock().unwrap().remove(&presented) else {
            return (
                400,
                format!(
                    r#"{{"error":"invalid_grant","error_description":"refresh token {presented} is unknown"}}"#
                ),
            );
        };
        *self
            .refreshes
            .lock()
            .unwrap()
            .entry(sub.clone())
            .or_default() += 1;
        // Slow enough that concurrent requests pile up behind the refresh.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id_token = self.key.id_token(&self.url, &sub, now_secs() + 600);
        let rotated = self.new_refresh_token(&sub);
        (
            200,
            serde_json::json!({
                "access_token": "at", "token_type": "Bearer", "expires_in": 600,
                "id_token": id_token, "refresh_token": rotated,
            })
            .to_string(),
        )
    }
}

/// Serves `issuer` over HTTPS (HTTP/1.1, one request per connection).
async fn serve(
    listener: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    issuer: Arc<Issuer>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (tls, issuer) = (tls.clone(), issuer.clone());
        tokio::spawn(async move {
            let Ok(mut stream) = tls.accept(tcp).await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) if buf.len() + n < 64 * 1024 => buf.extend_from_slice(&chunk[..n]),
                    Ok(_) => return,
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = buf[head_end + 4..].to_vec();
            while body.len() < length.min(64 * 1024) {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            let mut words = head.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let path = target.split('?').next().unwrap_or("");
            let (code, json) = issuer
                .answer(method, path, &head, &String::from_utf8_lossy(&body))
                .await;
            let reason = if code == 200 { "OK" } else { "Error" };
            let length = if json.len() < UNANNOUNCED {
                format!("content-length: {}\r\n", json.len())
            } else {
                String::new()
            };
            let response = format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n{json}"
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The issuer and the control plane that trusts it, shared by the tests.
struct Env {
    issuer: Arc<Issuer>,
    /// The issuer's CA (what kube-apiserver and the kubeconfig trust).
    issuer_ca_pem: String,
    plane: kube_testenv::ControlPlane,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    // Built on a thread of its own: it runs runtimes of its own, which
    // cannot be started from inside a test's runtime.
    ENV.get_or_init(|| std::thread::spawn(start_env).join().unwrap())
}

fn start_env() -> Env {
    {
        let certs = kube_testenv::certs::Certs::generate().unwrap();
        let cert_chain: Vec<_> =
            rustls_pki_types::CertificateDer::pem_slice_iter(certs.serving_cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(certs.serving_key_pem.as_bytes())
            .unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)
        .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        // The issuer runs on a runtime of its own: each test has its own,
        // which ends with the test.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let issuer = Arc::new(Issuer {
            url: url.clone(),
            key: SigningKey::generate("test-key"),
            refresh_tokens: Mutex::new(HashMap::new()),
            refreshes: Mutex::new(HashMap::new()),
            token_requests: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        let served = issuer.clone();
        std::thread::spawn(move || runtime.block_on(serve(listener, acceptor, served)));

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("issuer-ca.crt");
        std::fs::write(&ca_file, &certs.ca_pem).unwrap();
        let args = vec![
            format!("--oidc-issuer-url={url}"),
            format!("--oidc-client-id={CLIENT_ID}"),
            format!("--oidc-ca-file={}", ca_file.display()),
            "--oidc-username-claim=sub".to_string(),
            "--oidc-username-prefix=oidc:".to_string(),
            "--oidc-signing-algs=ES256".to_string(),
        ];
        let (binaries, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
        let plane = kube_testenv::ControlPlane::start_with_apiserver_args(
            &binaries,
            Default::default(),
            &args,
        )
        .unwrap();
        let env = Env {
            issuer,
            issuer_ca_pem: certs.ca_pem.clone(),
            plane,
            _dir: dir,
        };
        wait_until_oidc_is_accepted(&env);
        env
    }
}

/// kube-apiserver fetches the issuer's keys in the background after it is
/// ready: wait until a valid token of the issuer is accepted (plain
/// reqwest, not the client under test).
fn wait_until_oidc_is_accepted(env: &Env) {
    let token = env
        .issuer
        .key
        .id_token(&env.issuer.url, "probe", now_secs() + 600);
    let access = env.plane.access().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = access.http_client().unwrap();
        loop {
            let status = http
                .get(format!("{}/api", access.server))
                .bearer_auth(&token)
                .send()
                .await
                .map(|r| r.status().as_u16());
            // 403 would do too: authenticated, not allowed.
            if matches!(status, Ok(200 | 403)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kube-apiserver never accepted a token of the test issuer: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
}

/// A config for the private control plane whose user has `provider` as its
/// `oidc` auth-provider settings (plus client id, secret, issuer and CA,
/// unless `provider` sets them).
fn config(provider: &[(&str, String)]) -> Config {
    let kc = Kubeconfig::from_yaml(&kubeconfig(provider).to_string()).unwrap();
    Config::from_kubeconfig(&kc, &Default::default()).unwrap()
}

/// The kubeconfig of [`config`].
fn kubeconfig(provider: &[(&str, String)]) -> serde_json::Value {
    let env = env();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut settings: HashMap<&str, String> = HashMap::from([
        ("client-id", CLIENT_ID.to_string()),
        ("client-secret", CLIENT_SECRET.to_string()),
        ("idp-issuer-url", env.issuer.url.clone()),
        ("idp-certificate-authority-data", b64(&env.issuer_ca_pem)),
    ]);
    for (k, v) in provider {
        settings.insert(k, v.clone());
    }
    serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "oidc",
        "clusters": [{"name": "c", "cluster": {
            "server": env.plane.access().server,
            "certificate-authority-data": b64(&env.plane.access().ca_pem),
        }}],
        "users": [{"name": "oidc-user", "user": {"auth-provider": {"name": "oidc", "config": settings}}}],
        "contexts": [{"name": "oidc", "context": {"cluster": "c", "user": "oidc-user"}}],
    })
}

/// Who the API server says the client is (a SelfSubjectReview).
async fn whoami(client: &Client) -> Result<String, Error> {
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("content-type", "application/json")
        .body(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec())
        .unwrap();
    let review: serde_json::Value = client.request(req).await?;
    Ok(review["status"]["userInfo"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn oidc_of(config: &Config) -> kube_client::config::OidcAuth {
    match &config.auth {
        Auth::Oidc(oidc) => oidc.clone(),
        other => panic!("not oidc: {}", other.kind()),
    }
}

#[tokio::test]
async fn an_expired_id_token_is_refreshed_once_for_concurrent_requests() {
    let env = env();
    let issuer = &env.issuer;
    let expired = issuer.key.id_token(&issuer.url, "alice", now_secs() - 3600);
    let refresh = issuer.new_refresh_token("alice");
    let config = config(&[
        ("id-token", expired.clone()),
        ("refresh-token", refresh.clone()),
    ]);
    let oidc = oidc_of(&config);
    let client = Client::try_from(config).unwrap();

    let requests = (0..8).map(|_| whoami(&client));
    for who in futures::future::join_all(requests).await {
        assert_eq!(who.unwrap(), "oidc:alice");
    }
    assert_eq!(issuer.refreshes("alice"), 1, "one refresh for 8 requests");

    // The issuer rotated the refresh token: the client keeps the new one.
    let rotated = oidc.refresh_token().unwrap();
    assert_ne!(rotated.expose(), refresh);
    assert!(issuer.knows(rotated.expose()) && !issuer.knows(&refresh));
    let id_token = oidc.id_token().unwrap();
    assert_ne!(id_token.expose(), expired);

    // The fresh token is used while valid: no more refreshes.
    assert_eq!(whoami(&client).await.unwrap(), "oidc:alice");
    assert_eq!(issuer.refreshes("alice"), 1);
}

#[tokio::test]
async fn a_refresh_token_without_an_id_token_is_enough() {
    let env = env();
    let refresh = env.issuer.new_refresh_token("carol");
    let client = Client::try_from(config(&[("refresh-token", refresh)])).unwrap();
    assert_eq!(whoami(&client).await.unwrap(), "oidc:carol");
    assert_eq!(env.issuer.refreshes("carol"), 1);
}

#[tokio::test]
async fn a_token_the_server_rejects_is_refreshed_once_and_the_request_retried() {
    let env = env();
    let issuer = &env.issuer;
    // Unexpired by its `exp`, but signed by a key the server does not know:
    // the client sends it, gets 401, refreshes and retries.
    let stranger = SigningKey::generate("test-key");
    let rejected = stranger.id_token(&issuer.url, "bob", now_secs() + 600);
    let refresh = issuer.new_refresh_token("bob");
    let config = config(&[("id-token", rejected), ("refresh-token", refresh)]);
    let client = Client::try_from(config).unwrap();
    let requests = (0..4).map(|_| whoami(&client));
    for who in futures::future::join_all(requests).await {
        assert_eq!(who.unwrap(), "oidc:bob");
    }
    assert_eq!(
        issuer.refreshes("bob"),
        1,
        "one refresh for 4 rejected requests"
    );
}

#[tokio::test]
async fn a_refused_refresh_is_a_typed_error_without_secrets() {
    let env = env();
    let issuer = &env.issuer;
    let expired = issuer.key.id_token(&issuer.url, "dave", now_secs() - 3600);
    let shown = |e: &Error| format!("{e} {e:?}");

    // A refresh token the issuer does not know: 400 invalid_grant. Four
    // concurrent requests share the one failed refresh: two token requests
    // (client credentials as HTTP Basic, then in the form, as Go's oauth2
    // tries them).
    let unknown = "rt-SECRET-unknown".to_string();
    let client = Client::try_from(config(&[
        ("id-token", expired.clone()),
        ("refresh-token", unknown.clone()),
    ]))
    .unwrap();
    let failures = futures::future::join_all((0..4).map(|_| whoami(&client))).await;
    assert_eq!(
        issuer.token_requests(&unknown),
        2,
        "one refresh for 4 requests"
    );
    let texts: Vec<String> = failures
        .iter()
        .map(|r| r.as_ref().unwrap_err().to_string())
        .collect();
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
    // A later request tries again.
    let e = whoami(&client).await.unwrap_err();
    assert_eq!(issuer.token_requests(&unknown), 4);
    match &e {
        Error::OidcRefresh {
            user,
            failure:
                OidcRefreshError::TokenEndpointStatus {
                    code: 400,
                    oauth_error: Some(code),
                    url,
                },
        } => {
            assert_eq!(user, "oidc-user");
            assert_eq!(code, "invalid_grant");
            assert_eq!(url, &format!("{}/token", issuer.url));
        }
        other => panic!("{other:?}"),
    }
    assert!(!shown(&e).contains("SECRET"), "{}", shown(&e));
    assert!(!shown(&e).contains(&expired), "{}", shown(&e));

    // A wrong client secret: refused in the header and in the form.
    let refresh = issuer.new_refresh_token("dave");
    let client = Client::try_from(config(&[
        ("id-token", expired.clone()),
        ("refresh-token", refresh.clone()),
        ("client-secret", "wrong-SECRET".into()),
    ]))
    .unwrap();
    let e = whoami(&client).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::OidcRefresh {
                failure: OidcRefreshError::TokenEndpointStatus {
                    code: 401,
                    oauth_error: Some(c),
                    ..
                },
                ..
            } if c == "invalid_client"
        ),
        "{e:?}"
    );
    assert!(!shown(&e).contains("SECRET"), "{}", shown(&e));
    assert!(issuer.knows(&refresh), "the refresh token was not used up");
    assert_eq!(issuer.refreshes("dave"), 0);

    // An answer without an id_token.
    let client = Client::try_from(config(&[(
        "refresh-token",
        RT_WITHOUT_ID_TOKEN.to_string(),
    )]))
    .unwrap();
    let e = whoami(&client).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::OidcRefresh {
                failure: OidcRefreshError::MissingIdToken { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!shown(&e).contains("SECRET"), "{}", shown(&e));
}

#[tokio::test]
async fn an_issuer_answer_over_the_cap_is_not_read() {
    let client =
        Client::try_from(config(&[("refresh-token", RT_HUGE_ANSWER.to_string())])).unwrap();
    let e = whoami(&client).await.unwrap_err();
    match &e {
        Error::OidcRefresh {
            failure: OidcRefreshError::TokenEndpoint { problem, .. },
            ..
        } => assert_eq!(
            problem,
            &format!(
                "the answer is over the {}-byte limit",
                kube_client::client::oidc::MAX_ISSUER_ANSWER_BYTES
            )
        ),
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains("SECRET"), "{e}");
}

#[tokio::test]
async fn an_issuer_with_an_untrusted_certificate_is_refused() {
    let env = env();
    let refresh = env.issuer.new_refresh_token("eve");
    let other_ca = kube_testenv::certs::Certs::generate().unwrap().ca_pem;
    let client = Client::try_from(config(&[
        ("refresh-token", refresh.clone()),
        (
            "idp-certificate-authority-data",
            base64::engine::general_purpose::STANDARD.encode(other_ca),
        ),
    ]))
    .unwrap();
    let e = whoami(&client).await.unwrap_err();
    match &e {
        Error::OidcRefresh {
            failure: OidcRefreshError::Discovery { url, problem },
            ..
        } => {
            assert_eq!(
                url,
                &format!("{}/.well-known/openid-configuration", env.issuer.url)
            );
            assert!(problem.to_lowercase().contains("certificate"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    assert!(env.issuer.knows(&refresh));
    assert_eq!(env.issuer.refreshes("eve"), 0);
}
