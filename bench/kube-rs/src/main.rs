//! Benchmark client for kube-rs: `kube::runtime::reflector` over a
//! `watcher` (default config, default backoff) of the ConfigMaps of one
//! namespace — the usage kube-rs documents. Speaks the protocol of
//! `bench-common`: a list is complete at each `InitDone`, a change is an
//! `Apply` event.

use anyhow::{Context, Result};
use bench_common::{Args, Progress, drive};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Config};

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("read {}", args.kubeconfig))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    let api: Api<ConfigMap> = Api::namespaced(client, &args.namespace);

    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let progress = Progress::new();
    let updates = progress.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut lists = 0;
        while let Some(item) = stream.next().await {
            match item {
                Ok(watcher::Event::InitDone) => {
                    lists += 1;
                    updates.set_objects(reader.len() as u64);
                    updates.set_lists(lists);
                }
                Ok(watcher::Event::Apply(_)) => updates.add_modified(1),
                Ok(_) => {}
                Err(e) => eprintln!("bench-kube-rs: {e}"),
            }
        }
    });
    drive(&args, progress).await
}
