//! Benchmark client for our crates: a `kube_runtime::Reflector` over the
//! ConfigMaps (or Pods) of one namespace, used the way the README shows:
//! `poll()` in a loop, then drain `events()`. Speaks the protocol of
//! `bench-common`, in the encoding of `BENCH_ENCODING`.

use std::fmt::Debug;

use anyhow::Result;
use bench_common::{Args, Progress, Resource, drive, unavailable};
use kube_client::k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_client::{Api, Client};
use kube_runtime::{Reflector, WatchEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod client;

/// Why the protobuf variant cannot run with this build of kube-client: the
/// bench never falls back to JSON silently, it reports the variant as not
/// available.
const PROTOBUF_UNAVAILABLE: &str =
    "kube-client is built without its `protobuf` feature (ClientBuilder::protobuf has no effect)";

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let Some(client) = client::client(&args.kubeconfig, args.encoding)? else {
        unavailable(PROTOBUF_UNAVAILABLE);
        return Ok(());
    };
    match args.resource {
        Resource::ConfigMaps => reflect::<ConfigMap>(&args, client).await,
        Resource::Pods => reflect::<Pod>(&args, client).await,
    }
}

async fn reflect<K>(args: &Args, client: Client) -> Result<()>
where
    K: kube_client::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::namespaced(client, &args.namespace);
    let progress = Progress::new();
    progress.note_baseline_rss();
    let mut reflector = Reflector::new(api);
    let store = reflector.reader();
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
    drive(args, progress).await
}
