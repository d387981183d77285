//! The original kube README's `reconcile(&client, events)`: drain the
//! reflector's events and act on each kind of change. Here the action is
//! real but harmless: every ConfigMap gets the label `example.kube/seen=true`
//! (a no-op when it is already there, so our own patches cause no loop).
//!
//! ```sh
//! cargo run --example event_reconcile -- -n demo          # runs until Ctrl-C
//! cargo run --example event_reconcile -- -n demo --once   # one pass
//! ```
use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{Patch, PatchParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::{Reflector, WatchEvent};

const LABEL: &str = "example.kube/seen";

async fn reconcile(client: &Client, events: Vec<WatchEvent<ConfigMap>>) -> anyhow::Result<()> {
    for event in events {
        match event {
            WatchEvent::Added(cm) | WatchEvent::Modified(cm) => {
                let (name, ns) = (cm.name_any(), cm.namespace().unwrap_or("default"));
                if cm.labels_contain(LABEL) {
                    println!("up to date: {ns}/{name}");
                    continue;
                }
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
                let patch = serde_json::json!({"metadata": {"labels": {LABEL: "true"}}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                println!("labelled:   {ns}/{name}");
            }
            WatchEvent::Deleted(cm) => println!(
                "deleted:    {}/{}",
                cm.namespace().unwrap_or_default(),
                cm.name_any()
            ),
            WatchEvent::Error(e) => println!("error event: {e} (the reflector retries by itself)"),
            WatchEvent::Desynced { dropped } => {
                println!("{dropped} events were dropped; a full pass follows")
            }
        }
    }
    Ok(())
}

trait Labels {
    fn labels_contain(&self, key: &str) -> bool;
}
impl Labels for ConfigMap {
    fn labels_contain(&self, key: &str) -> bool {
        self.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(key))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    let client = Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let namespace = args
        .iter()
        .position(|a| a == "-n" || a == "--namespace")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| client.default_namespace().to_string());

    let mut rf = Reflector::new(Api::<ConfigMap>::namespaced(client.clone(), &namespace));
    loop {
        if let Err(e) = rf.poll().await {
            eprintln!("poll: {e}");
        }
        reconcile(&client, rf.events()).await?;
        if once {
            return Ok(());
        }
    }
}
