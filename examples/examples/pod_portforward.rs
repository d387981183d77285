//! Forwards a local port to a port of a Pod, like
//! `kubectl port-forward POD LOCAL:REMOTE`: every connection to the local
//! port gets a WebSocket of its own to the Pod's port. Stops on Ctrl-C.
//!
//! ```text
//! cargo run --example pod_portforward -- [-n NS] POD [LOCAL:]REMOTE
//! ```
//!
//! `LOCAL` 0 (or omitted) picks a free port; the address is printed. Only
//! 127.0.0.1 is listened on.

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube_client::{Api, Client};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut namespace, mut positional) = (None, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" | "--namespace" => namespace = Some(args.next().context("-n needs a value")?),
            _ => positional.push(arg),
        }
    }
    let [pod, ports] = positional.as_slice() else {
        bail!("usage: pod_portforward [-n NS] POD [LOCAL:]REMOTE");
    };
    let (local, remote) = match ports.split_once(':') {
        Some((l, r)) => (l.parse::<u16>()?, r.parse::<u16>()?),
        None => (0, ports.parse::<u16>()?),
    };
    let client = Client::try_default().await?;
    let pods: Api<Pod> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", local)).await?;
    let forwarder = pods.portforward_listener(pod, remote, listener)?;
    println!("Forwarding from {} -> {remote}", forwarder.local_addr());
    tokio::signal::ctrl_c().await?;
    drop(forwarder);
    Ok(())
}
