//! What the client resends when an HTTP/2 request fails without an answer,
//! against a scripted TLS server on 127.0.0.1 that speaks HTTP/2 frame by
//! frame (the real API server will not refuse a stream or send a `GOAWAY`
//! on demand):
//! - a stream the server refused (`RST_STREAM REFUSED_STREAM`) or cut by a
//!   graceful `GOAWAY` whose last stream id is below it was never processed,
//!   so it is resent for every method, POST included;
//! - a connection reset under a stream, or a `GOAWAY` with an error code,
//!   may come after the server acted: only a GET is resent.
//!
//! Each request (a HEADERS frame, on whichever connection) gets the next
//! action of the script; the last one repeats.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::client::RetryPolicy;
use kube_client::config::{Config, Kubeconfig};
use kube_client::params::PostParams;
use kube_client::{Api, Client, Error};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// What the server does with one request.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// `RST_STREAM` with `REFUSED_STREAM`; the connection stays open.
    Refuse,
    /// `GOAWAY` naming the stream before this one as the last processed,
    /// with this error code, then the connection is closed.
    GoAwayBefore(u32),
    /// `GOAWAY` naming this stream as processed, with this error code, then
    /// the connection is closed.
    GoAwayAfter(u32),
    /// The TCP connection is reset (RST) with the request unanswered.
    ResetConnection,
    /// 200 with a ConfigMap.
    Answer,
}

const NO_ERROR: u32 = 0;
const INTERNAL_ERROR: u32 = 2;

// HTTP/2 frame types (RFC 9113 §6)
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;

struct Server {
    url: String,
    ca_pem: String,
    /// The method of each request seen, in order.
    seen: Arc<Mutex<Vec<&'static str>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Server {
    async fn start(script: Vec<Action>) -> Self {
        let certs = kube_testenv::certs::Certs::generate().unwrap();
        let chain =
            vec![CertificateDer::from_pem_slice(certs.serving_cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(certs.serving_key_pem.as_bytes()).unwrap();
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let accept = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let (acceptor, seen, script) = (acceptor.clone(), seen.clone(), script.clone());
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(socket).await {
                            serve(tls, &seen, &script).await;
                        }
                    });
                }
            }
        });
        Self {
            url,
            ca_pem: certs.ca_pem,
            seen,
            accept,
        }
    }

    fn seen(&self) -> Vec<&'static str> {
        self.seen.lock().unwrap().clone()
    }

    fn api(&self) -> Api<ConfigMap> {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let yaml = format!(
            "apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: '{}', certificate-authority-data: {ca}}}}}]
contexts: [{{name: c, context: {{cluster: c}}}}]
current-context: c
",
            self.url
        );
        let config =
            Config::from_kubeconfig(&Kubeconfig::from_yaml(&yaml).unwrap(), &Default::default())
                .unwrap();
        let client = Client::builder(config)
            .retry(RetryPolicy {
                max_retries: 4,
                min_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            })
            .build()
            .unwrap();
        Api::namespaced(client, "default")
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// One connection: the client's preface and settings, then the script's
/// next action for each HEADERS frame.
async fn serve(mut tls: TlsStream<TcpStream>, seen: &Mutex<Vec<&'static str>>, script: &[Action]) {
    let mut preface = [0u8; 24];
    if tls.read_exact(&mut preface).await.is_err() {
        return;
    }
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    if tls.write_all(&frame(SETTINGS, 0, 0, &[])).await.is_err() {
        return;
    }
    loop {
        let mut head = [0u8; 9];
        if tls.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        if tls.read_exact(&mut payload).await.is_err() {
            return;
        }
        let reply = match kind {
            SETTINGS if flags & 1 == 0 => frame(SETTINGS, 1, 0, &[]),
            HEADERS => {
                // h2 encodes `:method` first, as an indexed field of the
                // static table (RFC 7541 Appendix A): 2 is GET, 3 is POST
                let method = match payload.first() {
                    Some(0x82) => "GET",
                    Some(0x83) => "POST",
                    _ => "other",
                };
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(method);
                    seen.len()
                };
                let action = script[(n - 1).min(script.len() - 1)];
                match action {
                    Action::Refuse => frame(RST_STREAM, 0, stream, &7u32.to_be_bytes()),
                    Action::GoAwayBefore(code) | Action::GoAwayAfter(code) => {
                        let last = if matches!(action, Action::GoAwayAfter(_)) {
                            stream
                        } else {
                            stream.saturating_sub(2)
                        };
                        let mut body = last.to_be_bytes().to_vec();
                        body.extend_from_slice(&code.to_be_bytes());
                        let _ = tls.write_all(&frame(GOAWAY, 0, 0, &body)).await;
                        let _ = tls.flush().await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return;
                    }
                    Action::ResetConnection => {
                        // SO_LINGER 0: closing sends RST at once
                        tls.get_ref().0.set_zero_linger().unwrap();
                        return;
                    }
                    Action::Answer => {
                        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"answered","namespace":"default","resourceVersion":"7"}}"#;
                        // `:status: 200` (static index 8), then `content-type`
                        // (static name 31) as a literal without indexing
                        let mut block = vec![0x88, 0x0f, 0x10, 16];
                        block.extend_from_slice(b"application/json");
                        let mut out = frame(HEADERS, 0x4, stream, &block);
                        out.extend(frame(DATA, 0x1, stream, body));
                        out
                    }
                }
            }
            _ => continue,
        };
        if tls.write_all(&reply).await.is_err() {
            return;
        }
    }
}

fn cm() -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("answered".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the request did not end within 20 s")
}

#[tokio::test]
async fn a_refused_stream_is_resent_for_every_method() {
    let server = Server::start(vec![Action::Refuse, Action::Answer]).await;
    let created = within(server.api().create(&PostParams::default(), &cm()))
        .await
        .expect("the refused POST is resent and answered");
    assert_eq!(created.metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(server.seen(), ["POST", "POST"]);

    let server = Server::start(vec![Action::Refuse, Action::Refuse, Action::Answer]).await;
    within(server.api().get("answered")).await.unwrap();
    assert_eq!(server.seen(), ["GET", "GET", "GET"]);
}

#[tokio::test]
async fn a_stream_beyond_a_graceful_goaway_is_resent_for_every_method() {
    let server = Server::start(vec![Action::GoAwayBefore(NO_ERROR), Action::Answer]).await;
    within(server.api().create(&PostParams::default(), &cm()))
        .await
        .expect("the unprocessed POST is resent on a new connection");
    assert_eq!(server.seen(), ["POST", "POST"]);
}

#[tokio::test]
async fn a_broken_connection_resends_a_get_but_not_a_post() {
    for action in [Action::ResetConnection, Action::GoAwayAfter(INTERNAL_ERROR)] {
        let server = Server::start(vec![action, Action::Answer]).await;
        let got = within(server.api().get("answered")).await;
        assert!(got.is_ok(), "{action:?}: GET resent, got {got:?}");
        assert_eq!(server.seen(), ["GET", "GET"], "{action:?}");

        let server = Server::start(vec![action, Action::Answer]).await;
        let created = within(server.api().create(&PostParams::default(), &cm())).await;
        assert!(
            matches!(created, Err(Error::Transport { .. })),
            "{action:?}: a POST that may have run goes back to the caller, got {created:?}"
        );
        assert_eq!(server.seen(), ["POST"], "{action:?}: sent once");
    }
}

#[tokio::test]
async fn a_goaway_with_an_error_code_is_no_proof_that_a_post_did_not_run() {
    // the same GOAWAY as above, but naming a stream below ours: h2 reports
    // an error-coded GOAWAY to every stream, so it is not taken as proof
    let server = Server::start(vec![Action::GoAwayBefore(INTERNAL_ERROR), Action::Answer]).await;
    let created = within(server.api().create(&PostParams::default(), &cm())).await;
    assert!(
        matches!(created, Err(Error::Transport { .. })),
        "got {created:?}"
    );
    assert_eq!(server.seen(), ["POST"]);
}
