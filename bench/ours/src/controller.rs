//! Benchmark controller for our crates: `kube_runtime::controller::Controller`
//! over the ConfigMaps of one namespace, used as the README shows —
//! `Controller::new(api, WatcherConfig::default()).run(reconcile,
//! error_policy, ctx)` — with its defaults (streaming list, no debounce);
//! only the concurrency is set, to the same bound as kube-rs's. The
//! reconcile and the protocol are `bench_common::controller`'s.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bench_common::controller::{ControllerArgs, Tally, drive_controller, patch_body};
use futures::StreamExt;
use kube_client::Api;
use kube_client::k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{Patch, PatchParams};
use kube_runtime::WatcherConfig;
use kube_runtime::controller::{Action, Config, Controller};

mod client;

/// What every reconcile gets.
struct Shared {
    api: Api<ConfigMap>,
    tally: Arc<Tally>,
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Shared>) -> Result<Action, kube_client::Error> {
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

fn error_policy(_cm: Arc<ConfigMap>, error: &kube_client::Error, ctx: Arc<Shared>) -> Action {
    eprintln!("bench-ours-controller: reconcile failed: {error}");
    ctx.tally.error();
    Action::requeue(Duration::from_secs(1))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = ControllerArgs::parse()?;
    let api = client::config_maps(&args.kubeconfig, &args.namespace)?;

    let tally = Arc::new(Tally::default());
    let ctx = Arc::new(Shared {
        api: api.clone(),
        tally: tally.clone(),
    });
    let controller = Controller::new(api, WatcherConfig::default())
        .with_config(Config::default().concurrency(usize::from(args.concurrency)))
        .run(reconcile, error_policy, ctx);
    tokio::spawn(controller.for_each(|result| async move {
        if let Err(e) = result {
            eprintln!("bench-ours-controller: {e}");
        }
    }));
    drive_controller(&args, &tally).await
}
