//! A TCP proxy in front of kube-apiserver, to cut connections on demand.
//! TLS passes through untouched (the serving certificate is for 127.0.0.1).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy in front of the API server at `server_url` (`https://IP:PORT`),
/// and a client with `kubeconfig`'s credentials whose connections all go
/// through it.
pub async fn client_through(server_url: &str, kubeconfig: &Path) -> (Proxy, kube_client::Client) {
    let upstream: SocketAddr = server_url
        .trim_start_matches("https://")
        .parse()
        .unwrap_or_else(|e| panic!("{server_url}: not https://IP:PORT: {e}"));
    let proxy = Proxy::start(upstream).await;
    let mut config = super::config_of(kubeconfig);
    config.cluster_url = format!("https://{}", proxy.addr).parse().unwrap();
    (proxy, kube_client::Client::try_from(config).unwrap())
}

pub struct Proxy {
    pub addr: SocketAddr,
    /// Bumped to cut every open connection.
    generation: watch::Sender<u64>,
    /// While false, new connections are closed at once.
    open: Arc<AtomicBool>,
    pub connections: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (generation, _) = watch::channel(0u64);
        let open = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(AtomicU64::new(0));
        let (gen_tx, open2, conns) = (generation.clone(), open.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !open2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                conns.fetch_add(1, Ordering::SeqCst);
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            generation,
            open,
            connections,
        }
    }

    /// Drops every open connection mid-stream.
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Cuts everything and refuses new connections until [`Proxy::resume`].
    pub fn disconnect(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut();
    }

    /// Accepts connections again.
    pub fn resume(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
