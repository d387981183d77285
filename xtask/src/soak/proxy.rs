//! The fault proxy: a relay on 127.0.0.1 between the soak's reflectors and
//! kube-apiserver that breaks things on command.
//!
//! - **Normally** it relays TCP untouched. TLS passes through, so the
//!   reflectors authenticate to kube-apiserver with their own client
//!   certificate and verify its serving certificate, which is issued for the
//!   IP 127.0.0.1 and therefore valid on the proxy's port too.
//! - [`FaultProxy::cut`] drops every open connection mid-stream: watches
//!   break, lists fail mid-body, as when a load balancer or NAT forgets them.
//! - [`FaultProxy::disconnect`] cuts and refuses new connections until
//!   [`FaultProxy::reconnect`]: the API server is unreachable.
//! - [`FaultProxy::throttle`] cuts, and for the given time answers every
//!   new connection itself, as an overloaded API server does: it terminates
//!   TLS with kube-apiserver's own serving certificate and key, offers only
//!   HTTP/1.1 (ALPN), and answers each request `429 Too Many Requests` with
//!   `Retry-After: 1` and a `Status` body. When the window ends those
//!   connections are closed and relaying resumes.
//!
//! Everything stays on 127.0.0.1; connections end with the proxy's task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// The longest request head the 429 responder reads.
const MAX_HEAD: usize = 64 * 1024;

const TOO_MANY_REQUESTS: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"soak fault proxy: too many requests, please try again later","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#;

/// A fault-injecting relay in front of kube-apiserver; see the module docs.
pub(super) struct FaultProxy {
    /// Where clients connect (`127.0.0.1:PORT`).
    pub(super) addr: SocketAddr,
    /// Bumped to cut every open connection.
    generation: watch::Sender<u64>,
    /// While false, new connections are closed at once.
    open: Arc<AtomicBool>,
    /// Until when new connections get 429s.
    throttle_until: watch::Sender<Option<Instant>>,
    /// Requests answered 429 so far.
    throttled: Arc<AtomicU64>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and relays to `upstream`;
    /// `cert_pem` and `key_pem` are kube-apiserver's serving certificate
    /// and key, presented while throttling.
    pub(super) async fn start(upstream: SocketAddr, cert_pem: &str, key_pem: &str) -> Result<Self> {
        let tls = acceptor(cert_pem, key_pem)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (generation, _) = watch::channel(0u64);
        let (throttle_until, _) = watch::channel(None);
        let open = Arc::new(AtomicBool::new(true));
        let throttled = Arc::new(AtomicU64::new(0));
        let proxy = Self {
            addr,
            generation: generation.clone(),
            open: open.clone(),
            throttle_until: throttle_until.clone(),
            throttled: throttled.clone(),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let cut = generation.subscribe();
                let until = *throttle_until.borrow();
                match until.filter(|t| Instant::now() < *t) {
                    Some(until) => {
                        let (tls, throttled) = (tls.clone(), throttled.clone());
                        tokio::spawn(answer_429(client, tls, until, cut, throttled));
                    }
                    None => {
                        tokio::spawn(relay(client, upstream, cut));
                    }
                }
            }
        });
        Ok(proxy)
    }

    /// Drops every open connection mid-stream.
    pub(super) fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Cuts everything and refuses connections until [`FaultProxy::reconnect`].
    pub(super) fn disconnect(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut();
    }

    /// Accepts connections again.
    pub(super) fn reconnect(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Cuts everything, then answers 429 to every request for `period`.
    pub(super) fn throttle(&self, period: Duration) {
        self.throttle_until
            .send_replace(Some(Instant::now() + period));
        self.cut();
    }

    /// Requests answered 429 so far.
    pub(super) fn throttled_requests(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
    }
}

/// A TLS server identity for the 429 responder: HTTP/1.1 only.
fn acceptor(cert_pem: &str, key_pem: &str) -> Result<TlsAcceptor> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("serving certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("serving key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("serving certificate and key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Relays bytes both ways until either side closes or a cut.
async fn relay(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<u64>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return; // kube-apiserver is down: the client sees the close
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.changed() => {}
    }
}

/// Terminates TLS and answers every request 429 until `until` or a cut.
async fn answer_429(
    client: TcpStream,
    tls: TlsAcceptor,
    until: Instant,
    mut cut: watch::Receiver<u64>,
    throttled: Arc<AtomicU64>,
) {
    let serve = async {
        let Ok(mut stream) = tls.accept(client).await else {
            return;
        };
        while respond_429(&mut stream).await.is_some() {
            throttled.fetch_add(1, Ordering::SeqCst);
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = tokio::time::sleep_until(until) => {}
        _ = cut.changed() => {}
    }
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body) and answers
/// it 429; `None` when the client closed or sent something unreadable.
async fn respond_429<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Option<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let body_len: u64 = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    tokio::io::copy(&mut (&mut *stream).take(body_len), &mut tokio::io::sink())
        .await
        .ok()?;
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nContent-Length: {}\r\n\r\n{TOO_MANY_REQUESTS}",
        TOO_MANY_REQUESTS.len()
    );
    stream.write_all(response.as_bytes()).await.ok()?;
    stream.flush().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_request_on_a_connection_gets_429_with_retry_after() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let responder = tokio::spawn(async move {
            let mut answered = 0;
            while respond_429(&mut server).await.is_some() {
                answered += 1;
            }
            answered
        });
        let body = r#"{"a":1}"#;
        let request = format!(
            "POST /api/v1/namespaces/x/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}GET /api/v1/configmaps?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            body.len()
        );
        client.write_all(request.as_bytes()).await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(responder.await.unwrap(), 2, "{answer}");
        assert_eq!(
            answer.matches("HTTP/1.1 429 Too Many Requests\r\n").count(),
            2
        );
        assert_eq!(answer.matches("Retry-After: 1\r\n").count(), 2);
        assert!(answer.ends_with(TOO_MANY_REQUESTS), "{answer}");
    }
}
