//! Benchmark controller for kube-rs: `kube::runtime::Controller` over the
//! ConfigMaps of one namespace, as kube-rs documents it —
//! `Controller::new(api, watcher::Config::default()).run(reconcile,
//! error_policy, ctx)`, with its default backoff and no debounce; only the
//! concurrency is set, to the same bound as ours. The reconcile and the
//! protocol are `bench_common::controller`'s.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bench_common::controller::{ControllerArgs, Tally, drive_controller, patch_body};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Config};

/// What every reconcile gets.
struct Shared {
    api: Api<ConfigMap>,
    tally: Arc<Tally>,
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Shared>) -> Result<Action, kube::Error> {
    let name = cm.metadata.name.as_deref().unwrap_or_default();
    let run = ctx.tally.start(name, cm.metadata.annotations.as_ref());
    if let Some(want) = run.to_patch() {
        ctx.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(patch_body(want)),
            )
            .await?;
        run.patched();
    }
    Ok(Action::await_change())
}

fn error_policy(_cm: Arc<ConfigMap>, error: &kube::Error, ctx: Arc<Shared>) -> Action {
    eprintln!("bench-kube-rs-controller: reconcile failed: {error}");
    ctx.tally.error();
    Action::requeue(Duration::from_secs(1))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = ControllerArgs::parse()?;
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("read {}", args.kubeconfig))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    let api: Api<ConfigMap> = Api::namespaced(client, &args.namespace);

    let tally = Arc::new(Tally::default());
    let ctx = Arc::new(Shared {
        api: api.clone(),
        tally: tally.clone(),
    });
    let controller = Controller::new(api, watcher::Config::default())
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .run(reconcile, error_policy, ctx);
    tokio::spawn(controller.for_each(|result| async move {
        if let Err(e) = result {
            eprintln!("bench-kube-rs-controller: {e}");
        }
    }));
    drive_controller(&args, &tally).await
}
