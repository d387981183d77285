//! Benchmark client for our crates: a `kube_runtime::Reflector` over the
//! ConfigMaps (or Pods) of one namespace, used the way the README shows:
//! `poll()` in a loop, then drain `events()`. Speaks the protocol of
//! `bench-common`, in the encoding of `BENCH_ENCODING`, with the store
//! `BENCH_STORE` names: `default` (when unset) or `compact`
//! (`ReflectorConfig::compact`: objects held encoded, decoded on read).

use std::fmt::Debug;

use anyhow::{Result, bail};
use bench_common::{Args, Progress, Resource, drive, unavailable};
use kube_client::k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_client::{Api, Client};
use kube_runtime::{Reflector, ReflectorConfig, WatchEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod client;

/// Why the protobuf variant cannot run with this build of kube-client: the
/// bench never falls back to JSON silently, it reports the variant as not
/// available.
const PROTOBUF_UNAVAILABLE: &str =
    "kube-client is built without its `protobuf` feature (ClientBuilder::protobuf has no effect)";

/// Whether `BENCH_STORE` asks for a compact store.
fn compact_store() -> Result<bool> {
    match std::env::var("BENCH_STORE").as_deref() {
        Err(_) | Ok("default") => Ok(false),
        Ok("compact") => Ok(true),
        Ok(other) => bail!("BENCH_STORE={other}: expected default or compact"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let compact = compact_store()?;
    let Some(client) = client::client(&args.kubeconfig, args.encoding)? else {
        unavailable(PROTOBUF_UNAVAILABLE);
        return Ok(());
    };
    match args.resource {
        Resource::ConfigMaps => reflect::<ConfigMap>(&args, client, compact).await,
        Resource::Pods => reflect::<Pod>(&args, client, compact).await,
    }
}

async fn reflect<K>(args: &Args, client: Client, compact: bool) -> Result<()>
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
    let mut config = ReflectorConfig::default();
    if compact {
        config = config.compact();
    }
    let mut reflector = Reflector::with_config(api, config);
    let store = reflector.reader();
    let updates = progress.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = reflector.poll().await {
                eprintln!("bench-ours: {e}");
            }
            // One by one: a compact store decodes each event when reached,
            // so the initial list's Addeds are never all decoded at once.
            let modified = reflector
                .events_iter()
                .filter(|e| matches!(e, WatchEvent::Modified(_)))
                .count();
            updates.set_objects(store.len() as u64);
            updates.add_modified(modified as u64);
            updates.set_lists(store.lists_completed());
        }
    });
    drive(args, progress).await
}
