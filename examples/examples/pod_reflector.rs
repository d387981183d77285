//! The original kube README's Reflector, made async: poll, then read and
//! print each pod's name, phase and container names.
//!
//! ```sh
//! cargo run --example pod_reflector                 # default namespace, print once
//! cargo run --example pod_reflector -- -n kube-system --watch   # keep printing changes
//! ```
use anyhow::Context;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use kube_client::{Api, ApiResource, Client, Object};
use kube_runtime::{Reflector, WatchEvent};

type PodObject = Object<PodSpec, PodStatus>;

fn describe(p: &PodObject) -> String {
    format!(
        "{} ({}) with {:?}",
        p.metadata.name.as_deref().unwrap_or_default(),
        p.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Unknown"),
        p.spec
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let watch = args.iter().any(|a| a == "--watch");
    let client = Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let namespace = args
        .iter()
        .position(|a| a == "-n" || a == "--namespace")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| client.default_namespace().to_string());

    let pods: Api<PodObject> = Api::namespaced_with(client, &namespace, &ApiResource::of::<Pod>());
    let mut rf = Reflector::new(pods);
    rf.poll().await.context("listing pods")?; // the initial list

    let mut found = rf.read();
    found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    println!("{} pod(s) in namespace {namespace}", found.len());
    for p in &found {
        println!("Found pod {}", describe(p));
    }
    rf.events(); // the initial Added events were just printed as the list
    if !watch {
        return Ok(());
    }
    loop {
        if let Err(e) = rf.poll().await {
            eprintln!("watch interrupted ({e}); the reflector retries by itself");
        }
        for event in rf.events() {
            match event {
                WatchEvent::Added(p) => println!("Added    {}", describe(&p)),
                WatchEvent::Modified(p) => println!("Modified {}", describe(&p)),
                WatchEvent::Deleted(p) => println!("Deleted  {}", describe(&p)),
                WatchEvent::Error(_) => {}
                WatchEvent::Desynced { dropped } => println!(
                    "({dropped} events skipped; {} pods cached)",
                    rf.read().len()
                ),
            }
        }
    }
}
