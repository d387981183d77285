//! Benchmark client for our crates: a `kube_runtime::Reflector` over the
//! ConfigMaps of one namespace, used the way the README shows: `poll()` in
//! a loop, then drain `events()`. Speaks the protocol of `bench-common`.

use anyhow::{Context, Result};
use bench_common::{Args, Progress, drive};
use kube_client::k8s_openapi::api::core::v1::ConfigMap;
use kube_client::{Api, Client};
use kube_runtime::{Reflector, WatchEvent};

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let kubeconfig = kube_config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("read {}", args.kubeconfig))?;
    let config = kube_config::Config::from_kubeconfig(
        &kubeconfig,
        &kube_config::KubeconfigOptions::default(),
    )?;
    let client = Client::try_from(config)?;
    let api: Api<ConfigMap> = Api::namespaced(client, &args.namespace);

    let mut reflector = Reflector::new(api);
    let store = reflector.reader();
    let progress = Progress::new();
    let updates = progress.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = reflector.poll().await {
                eprintln!("bench-ours: {e}");
            }
            let modified = reflector
                .events()
                .iter()
                .filter(|e| matches!(e, WatchEvent::Modified(_)))
                .count();
            updates.set_objects(store.len() as u64);
            updates.add_modified(modified as u64);
            updates.set_lists(store.lists_completed());
        }
    });
    drive(&args, progress).await
}
