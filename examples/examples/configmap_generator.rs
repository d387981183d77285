//! A complete controller for a custom resource: each `ConfigMapGenerator`
//! (group `example.kube.rs`, v1, namespaced) owns `copies` ConfigMaps named
//! `<name>-0`, `<name>-1`, … holding its `data`. README, "Writing a
//! controller", walks through it; in short:
//!
//! - its CRD (from `#[derive(CustomResource)]`) is created at start if
//!   absent, then awaited until Established;
//! - reconcile server-side applies the ConfigMaps with a *controller*
//!   ownerReference: `.owns(..)` undoes hand edits, the cluster's garbage
//!   collector deletes them with their owner; surplus copies are found in
//!   the owned store (by owner uid) and deleted;
//! - the status subresource records what was done, written on change only;
//! - the `finalizer` helper prints `cleanup <ns>/<name>` once per deletion;
//! - SIGTERM or Ctrl-C lets the reconciles in flight finish, then exit 0.
//!
//! ```sh
//! eval "$(cargo xtask controlplane up --with-controller-manager)"
//! cargo run --example configmap_generator   # -n NAMESPACE; Ctrl-C stops it
//! ```
//!
//! Each reconcile prints `reconciling …` and `reconciled …`;
//! `GENERATOR_RECONCILE_DELAY_MS` makes each one wait that long first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Client, Resource, ResourceExt};
use kube_derive::CustomResource;
use kube_runtime::controller::{self, Action, Controller};
use kube_runtime::finalizer::{self, Event, finalizer};
use kube_runtime::informer::strip_managed_fields;
use kube_runtime::{Store, WatcherConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Generates ConfigMaps holding `data`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "example.kube.rs",
    version = "v1",
    kind = "ConfigMapGenerator",
    namespaced
)]
#[kube(status = "ConfigMapGeneratorStatus", shortname = "cmg")]
#[kube(printcolumn = r#"{"name":"Copies","type":"integer","jsonPath":".spec.copies"}"#)]
pub struct ConfigMapGeneratorSpec {
    /// The data every generated ConfigMap holds.
    pub data: BTreeMap<String, String>,
    /// How many ConfigMaps to generate.
    pub copies: u32,
}

/// What the controller did last.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapGeneratorStatus {
    /// The `metadata.generation` the ConfigMaps match.
    pub observed_generation: Option<i64>,
    /// The generated ConfigMaps' names.
    pub config_maps: Vec<String>,
    /// When the status last changed (RFC 3339).
    pub last_updated: Option<String>,
}

const MANAGER: &str = "configmap-generator";
const FINALIZER: &str = "example.kube.rs/cleanup";

struct Ctx {
    client: Client,
    /// The generated ConfigMaps, as cached by the controller.
    owned: Store<ConfigMap>,
    /// `GENERATOR_RECONCILE_DELAY_MS`.
    delay: Duration,
}

async fn reconcile(
    generator: Arc<ConfigMapGenerator>,
    ctx: Arc<Ctx>,
) -> Result<Action, finalizer::Error<kube_client::Error>> {
    let ns = generator.namespace().unwrap_or_default().to_string();
    let api: Api<ConfigMapGenerator> = Api::namespaced(ctx.client.clone(), &ns);
    let key = format!("{ns}/{}", generator.name_any());
    println!(
        "reconciling {key} (generation {:?})",
        generator.metadata.generation
    );
    tokio::time::sleep(ctx.delay).await;
    let action = finalizer(&api, FINALIZER, generator, |event| async {
        match event {
            Event::Apply(generator) => apply(&generator, &api, &ctx).await,
            Event::Cleanup(generator) => {
                // Nothing outside the cluster to release: the ConfigMaps go
                // with their owner (garbage collector). Say so, once.
                println!("cleanup {ns}/{}", generator.name_any());
                Ok(Action::await_change())
            }
        }
    })
    .await?;
    println!("reconciled {key}");
    Ok(action)
}

/// Makes the ConfigMaps and the status match the spec.
async fn apply(
    generator: &ConfigMapGenerator,
    api: &Api<ConfigMapGenerator>,
    ctx: &Ctx,
) -> Result<Action, kube_client::Error> {
    let name = generator.name_any().to_string();
    let ns = generator.namespace().unwrap_or_default();
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let uid = generator.uid().unwrap_or_default();
    let kind = ConfigMapGenerator::api_resource(&());
    let owner = json!({"apiVersion": kind.api_version, "kind": kind.kind, "name": name,
                       "uid": uid, "controller": true, "blockOwnerDeletion": true});
    let wanted: Vec<String> = (0..generator.spec.copies)
        .map(|i| format!("{name}-{i}"))
        .collect();
    for cm_name in &wanted {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": cm_name, "ownerReferences": [owner],
                         "labels": {"example.kube.rs/generator": name}},
            "data": generator.spec.data,
        });
        let params = PatchParams::apply(MANAGER).force();
        config_maps
            .patch(cm_name, &params, &Patch::Apply(&cm))
            .await?;
    }
    // Copies no longer wanted, from the cache (indexed by owner uid).
    for surplus in ctx.owned.owned_by(uid) {
        if !wanted.iter().any(|w| w == surplus.name_any()) {
            println!("deleting surplus {ns}/{}", surplus.name_any());
            match config_maps
                .delete(surplus.name_any(), &DeleteParams::default())
                .await
            {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
    }
    let observed = generator.status.clone().unwrap_or_default();
    if observed.observed_generation != generator.metadata.generation
        || observed.config_maps != wanted
    {
        let status = ConfigMapGeneratorStatus {
            observed_generation: generator.metadata.generation,
            config_maps: wanted,
            last_updated: now_rfc3339(),
        };
        let patch = Patch::Merge(json!({ "status": status }));
        api.patch_status(&name, &PatchParams::default(), &patch)
            .await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// The time now, as Kubernetes writes it (`2026-01-02T03:04:05Z`).
fn now_rfc3339() -> Option<String> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let seconds = i64::try_from(since_epoch.as_secs()).ok()?;
    Some(
        k8s_openapi::jiff::Timestamp::from_second(seconds)
            .ok()?
            .to_string(),
    )
}

fn error_policy(
    generator: Arc<ConfigMapGenerator>,
    error: &finalizer::Error<kube_client::Error>,
    _ctx: Arc<Ctx>,
) -> Action {
    println!("reconcile of {} failed: {error}", generator.name_any());
    Action::backoff() // per object: 5 ms, doubling up to 1000 s
}

/// Creates the CRD if the cluster does not have it, then waits (at most
/// 30 s) until it is Established.
async fn install_crd(client: Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let name = ConfigMapGenerator::CRD_NAME;
    if crds.get_opt(name).await?.is_none() {
        match crds
            .create(&PostParams::default(), &ConfigMapGenerator::crd())
            .await
        {
            Err(e) if !e.is_already_exists() => return Err(e.into()),
            _ => println!("created CRD {name}"),
        }
    }
    let start = Instant::now();
    loop {
        let conditions = crds.get(name).await?.status.and_then(|s| s.conditions);
        if conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("CRD {name} not Established after 30 s: {conditions:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let client = Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let ns = args
        .iter()
        .position(|a| a == "-n" || a == "--namespace")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let delay = match std::env::var("GENERATOR_RECONCILE_DELAY_MS") {
        Ok(ms) => Duration::from_millis(ms.parse().context("GENERATOR_RECONCILE_DELAY_MS")?),
        Err(_) => Duration::ZERO,
    };
    install_crd(client.clone())
        .await
        .context("installing the CRD")?;

    let generators: Api<ConfigMapGenerator> = Api::namespaced(client.clone(), &ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let controller = Controller::new(generators, WatcherConfig::default())
        .owns(
            config_maps,
            kube_runtime::controller::TriggerConfig::new(
                WatcherConfig::default().labels("example.kube.rs/generator"),
            )
            .transform(strip_managed_fields()),
        )
        .shutdown_on_signal();
    let owned = controller
        .owned_store::<ConfigMap>()
        .context("the owned store")?;
    println!("generating ConfigMaps for ConfigMapGenerators in namespace {ns}; Ctrl-C to stop");
    controller
        .run(
            reconcile,
            error_policy,
            Arc::new(Ctx {
                client,
                owned,
                delay,
            }),
        )
        .for_each(|result| async move {
            match result {
                // Queued by its last change, gone by its turn: nothing to do.
                Ok(_) | Err(controller::Error::ObjectNotFound(_)) => {}
                Err(e) => println!("controller: {e}"),
            }
        })
        .await;
    println!("stopped");
    Ok(())
}
