//! Benchmark client for kube-rs: `kube::runtime::reflector` over a
//! `watcher` (default config, default backoff) of the ConfigMaps (or Pods)
//! of one namespace — the usage kube-rs documents. Speaks the protocol of
//! `bench-common`: a list is complete at each `InitDone`, a change is an
//! `Apply` event. kube-rs speaks JSON only: asked for protobuf, it says
//! the variant is unavailable.

use std::fmt::Debug;

use anyhow::{Context, Result};
use bench_common::{Args, Encoding, Progress, Resource, drive, unavailable};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Config};

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    if args.encoding != Encoding::Json {
        unavailable("kube-rs reads JSON only");
        return Ok(());
    }
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("read {}", args.kubeconfig))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    match args.resource {
        Resource::ConfigMaps => reflect::<ConfigMap>(&args, client).await,
        Resource::Pods => reflect::<Pod>(&args, client).await,
    }
}

async fn reflect<K>(args: &Args, client: Client) -> Result<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::namespaced(client, &args.namespace);
    let progress = Progress::new();
    progress.note_baseline_rss();
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
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
    drive(args, progress).await
}
