//! The driver's part in the controller scenario (protocol and reconcile:
//! `bench_common::controller`):
//!
//! - `changes`: M changes, one at a time at `--rate` per second: each sets
//!   the annotation `WANT` of `cm-(i mod N)` to `TAG-i` with a merge patch
//!   and notes `CLOCK_BOOTTIME` just before sending it and when the API
//!   server's answer arrived (the change is committed in between). Prints
//!   `{"changes": [{"want", "sent_ns", "acked_ns"}, …], "ms"}`.
//! - `verify`: lists the namespace and counts the objects whose `SEEN`
//!   equals their `WANT`: `{"objects", "reconciled"}`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bench_common::boottime_ns;
pub(crate) use bench_common::controller::{SEEN, WANT};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{ListParams, Patch, PatchParams};
use kube_client::{Api, Client};
use serde_json::{Value, json};

use crate::{Opts, name};

pub(crate) async fn changes(client: &Client, o: &Opts) -> Result<Value> {
    ensure!(o.objects > 0, "--objects must be positive");
    ensure!(
        o.rate.is_finite() && o.rate > 0.0,
        "--rate must be positive"
    );
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &o.namespace);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut records = Vec::with_capacity(o.mods as usize);
    for i in 0..o.mods {
        tick.tick().await;
        let want = format!("{}-{i}", o.tag);
        let target = name(i % o.objects);
        let patch = Patch::Merge(json!({"metadata": {"annotations": {WANT: &want}}}));
        let sent_ns = boottime_ns();
        api.patch(&target, &PatchParams::default(), &patch)
            .await
            .with_context(|| format!("change {target}"))?;
        let acked_ns = boottime_ns();
        records.push(json!({"want": want, "sent_ns": sent_ns, "acked_ns": acked_ns}));
    }
    Ok(json!({
        "changes": records,
        "ms": started.elapsed().as_secs_f64() * 1e3,
    }))
}

pub(crate) async fn verify(client: &Client, o: &Opts) -> Result<Value> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &o.namespace);
    let mut params = ListParams {
        limit: Some(500),
        ..ListParams::default()
    };
    let (mut objects, mut reconciled) = (0u64, 0u64);
    loop {
        let page = api.list(&params).await.context("list ConfigMaps")?;
        for cm in &page.items {
            objects += 1;
            let annotations = cm.metadata.annotations.as_ref();
            let want = annotations.and_then(|a| a.get(WANT));
            if want.is_some() && want == annotations.and_then(|a| a.get(SEEN)) {
                reconciled += 1;
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params.continue_token = Some(token),
            None => break,
        }
    }
    Ok(json!({"objects": objects, "reconciled": reconciled}))
}
