//! A controller built with `Controller`: every ConfigMap labelled
//! `role=parent` gets a child ConfigMap `<name>-child`, owned by it
//! (controller ownerReference), holding a copy of its data. Edit or delete a
//! child by hand and the controller puts it back; Ctrl-C stops it
//! gracefully (twice: at once).
//!
//! ```sh
//! cargo run --example configmap_controller            # default namespace
//! kubectl create configmap demo --from-literal=k=v && kubectl label configmap demo role=parent
//! kubectl get configmap demo-child -o yaml
//! ```
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{Patch, PatchParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::controller::{Action, Config, Controller};
use kube_runtime::informer::strip_managed_fields;
use kube_runtime::{Store, WatcherConfig};

struct Ctx {
    api: Api<ConfigMap>,
    children: Store<ConfigMap>,
}

async fn reconcile(parent: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, kube_client::Error> {
    let uid = parent.uid().unwrap_or_default().to_string();
    // The child as cached (no request): already as it should be?
    let up_to_date = ctx.children.owned_by(&uid).iter().any(|c| {
        c.data == parent.data
            && c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("role"))
                .map(String::as_str)
                == Some("child")
    });
    if !up_to_date {
        let child = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": format!("{}-child", parent.name_any()),
                "labels": {"role": "child"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                    "name": parent.name_any(), "uid": uid, "controller": true,
                    "blockOwnerDeletion": true}],
            },
            "data": parent.data,
        });
        ctx.api
            .patch(
                &format!("{}-child", parent.name_any()),
                &PatchParams::apply("configmap-controller").force(),
                &Patch::Apply(child),
            )
            .await?;
    }
    Ok(Action::requeue(Duration::from_secs(600)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let controller = Controller::new(api.clone(), WatcherConfig::default().labels("role=parent"))
        .owns(
            api.clone(),
            kube_runtime::controller::TriggerConfig::new(
                WatcherConfig::default().labels("role=child"),
            )
            .transform(strip_managed_fields()),
        )
        .with_config(Config::default().concurrency(4))
        .shutdown_on_signal();
    let children = controller
        .owned_store::<ConfigMap>()
        .context("the owned kind's store")?;
    println!("reconciling ConfigMaps labelled role=parent; Ctrl-C to stop");
    controller
        .run(
            reconcile,
            kube_runtime::controller::default_error_policy,
            Arc::new(Ctx { api, children }),
        )
        .for_each(|result| async move {
            match result {
                Ok((obj, action)) => println!("reconciled {obj}; next: {action:?}"),
                Err(e) => eprintln!("{e}"),
            }
        })
        .await;
    println!("stopped");
    Ok(())
}
