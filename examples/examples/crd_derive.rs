//! A custom resource from a Rust struct: derive it, install its CRD, then
//! apply an object and write its status.
//!
//! ```sh
//! cargo run --example crd_derive              # install, apply, print
//! cargo run --example crd_derive -- --cleanup # the same, then delete both
//! ```
//!
//! `#[derive(CustomResource)]` generates the `Note` type (metadata, spec,
//! status), its Kubernetes traits and `Note::crd()`. The CRD is created, or
//! replaced when it exists (so a changed struct updates the schema); once
//! the API server says Established, a `Note` is server-side applied in the
//! default namespace, its status patched through the status subresource,
//! and the result printed.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Client, ResourceExt};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A note someone wants kept.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "examples.kube.test",
    version = "v1",
    kind = "Note",
    namespaced
)]
#[kube(status = "NoteStatus", shortname = "nt")]
#[kube(printcolumn = r#"{"name":"Title","type":"string","jsonPath":".spec.title"}"#)]
#[kube(printcolumn = r#"{"name":"Priority","type":"string","jsonPath":".spec.priority"}"#)]
#[kube(validation(rule = "size(self.title) <= 80", message = "the title is too long"))]
pub struct NoteSpec {
    /// One line.
    pub title: String,
    /// The text.
    pub body: String,
    /// How urgent it is.
    pub priority: Priority,
}

/// How urgent a note is.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
pub enum Priority {
    /// Some day.
    Low,
    /// Today.
    High,
}

/// What a (pretend) controller saw.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
pub struct NoteStatus {
    /// Whether the note was read.
    pub read: bool,
}

/// Creates the CRD, or replaces the one there with this version of it.
async fn install(crds: &Api<CustomResourceDefinition>) -> anyhow::Result<()> {
    let mut crd = Note::crd();
    match crds.get_opt(Note::CRD_NAME).await? {
        None => {
            crds.create(&PostParams::default(), &crd).await?;
            println!("created CRD {}", Note::CRD_NAME);
        }
        Some(existing) => {
            crd.metadata.resource_version = existing.metadata.resource_version;
            crds.replace(Note::CRD_NAME, &PostParams::default(), &crd)
                .await?;
            println!("replaced CRD {}", Note::CRD_NAME);
        }
    }
    Ok(())
}

/// Waits (at most 30 s) until the API server serves the kind.
async fn wait_established(crds: &Api<CustomResourceDefinition>) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let crd = crds.get(Note::CRD_NAME).await?;
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            println!("CRD established after {:?}", start.elapsed());
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!(
                "CRD {} not Established after 30 s: {conditions:?}",
                Note::CRD_NAME
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cleanup = std::env::args().skip(1).any(|a| a == "--cleanup");
    let client = Client::try_default()
        .await
        .context("connecting to the cluster")?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    install(&crds).await.context("installing the CRD")?;
    wait_established(&crds).await?;

    let notes: Api<Note> = Api::default_namespaced(client);
    let note = Note::new(
        "hello",
        NoteSpec {
            title: "Try kube-derive".into(),
            body: "A struct became a Kubernetes kind.".into(),
            priority: Priority::High,
        },
    );
    let apply = PatchParams::apply("crd_derive").force();
    notes
        .patch("hello", &apply, &Patch::Apply(&note))
        .await
        .context("applying the note")?;
    let mut note = notes
        .patch_status(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"read": true}})),
        )
        .await
        .context("writing the status")?;
    note.metadata.managed_fields = None; // bookkeeping, long and not the point here
    println!(
        "note {}/{} (resourceVersion {}):\n{}",
        note.namespace().unwrap_or_default(),
        note.name_any(),
        note.resource_version().unwrap_or_default(),
        serde_json::to_string_pretty(&note)?
    );

    if cleanup {
        notes.delete("hello", &DeleteParams::default()).await?;
        crds.delete(Note::CRD_NAME, &DeleteParams::default())
            .await?;
        println!("deleted the note and the CRD");
    } else {
        println!("try: kubectl get notes (or nt); rerun with --cleanup to remove both");
    }
    Ok(())
}
