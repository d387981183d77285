//! A bare watcher that keeps going while the control plane is restarted
//! under it: it prints every event and every error, resumes from the last
//! resourceVersion after the API server comes back, and relists if that
//! version is gone.
//!
//! ```sh
//! eval "$(cargo xtask controlplane up)"
//! cargo run --example watcher_restart -- -n default &
//! cargo xtask controlplane restart-apiserver     # or down / up
//! kubectl create configmap after-restart          # the watcher sees it
//! ```
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::{BackoffConfig, Event, Watcher, WatcherConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let client = Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let namespace = args
        .iter()
        .position(|a| a == "-n" || a == "--namespace")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let config = WatcherConfig {
        backoff: BackoffConfig {
            max: Duration::from_secs(5),
            ..BackoffConfig::default()
        },
        ..WatcherConfig::default()
    };
    let mut watcher = Watcher::new(Api::<ConfigMap>::namespaced(client, &namespace), config);
    loop {
        match watcher.next().await {
            Ok(Event::Init) => println!("listing…"),
            Ok(Event::InitApply(cm)) => println!("  listed   {}", cm.name_any()),
            Ok(Event::InitDone) => println!(
                "listed; watching from resourceVersion {}",
                watcher.resource_version().unwrap_or("?")
            ),
            Ok(Event::Apply(cm)) => println!(
                "  applied  {} (rv {})",
                cm.name_any(),
                cm.resource_version().unwrap_or("?")
            ),
            Ok(Event::Delete(cm)) => println!("  deleted  {}", cm.name_any()),
            Err(e) => println!("  error: {e} — retrying with backoff"),
        }
    }
}
