//! Benchmark client for our crates: a `kube_runtime::Reflector` over the
//! ConfigMaps of one namespace, used the way the README shows: `poll()` in
//! a loop, then drain `events()`. Speaks the protocol of `bench-common`.

use anyhow::Result;
use bench_common::{Args, Progress, drive};
use kube_runtime::{Reflector, WatchEvent};

mod client;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let api = client::config_maps(&args.kubeconfig, &args.namespace)?;

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
