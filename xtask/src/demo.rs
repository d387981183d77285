//! `cargo xtask demo`: one command for a newcomer.
//!
//! Builds (first time only, with progress) and starts a control plane of
//! its own, creates a namespace with a few ConfigMaps and Pods, starts the
//! `pod_reflector` example watching that namespace, makes changes — adds,
//! relabels and deletes pods, restarts kube-apiserver under the running
//! reflector, adds more — so that its events appear as they arrive, then
//! stops everything. Nothing is left running.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Client};
use kube_testenv::ControlPlane;
use serde_json::json;

const NS: &str = "demo";

fn say(line: &str) {
    println!("\x1b[1mdemo:\x1b[0m {line}");
}

fn pod(name: &str, containers: &[&str]) -> Result<Pod> {
    let containers: Vec<_> = containers
        .iter()
        .map(|c| json!({"name": c, "image": format!("example/{c}:1")}))
        .collect();
    Ok(serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "demo"}}, "spec": {"containers": containers}}),
    )?)
}

pub fn run() -> Result<()> {
    say("building (or reusing) kube-apiserver and etcd");
    let binaries = crate::controlplane::build(Default::default())?;
    say("starting a control plane on 127.0.0.1");
    let plane = ControlPlane::start(&binaries)?;
    say(&format!("kube-apiserver at {}", plane.server_url()));

    say("building the pod_reflector example");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "--example", "pod_reflector"])
        .status()
        .context("cargo build --example pod_reflector")?;
    anyhow::ensure!(
        status.success(),
        "building the pod_reflector example failed"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let kubeconfig = plane.kubeconfig().to_path_buf();
    let config = {
        let kc = kube_client::config::Kubeconfig::read_from(&kubeconfig)?;
        kube_client::config::Config::from_kubeconfig(&kc, &Default::default())?
    };
    let client = Client::try_from(config)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);

    rt.block_on(async {
        say(&format!("creating namespace `{NS}`, 3 config maps and 2 pods"));
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await?;
        for i in 1..=3 {
            let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("settings-{i}")}, "data": {"n": i.to_string()}}))?;
            config_maps.create(&PostParams::default(), &cm).await?;
        }
        pods.create(&PostParams::default(), &pod("web", &["nginx", "log-shipper"])?).await?;
        pods.create(&PostParams::default(), &pod("worker", &["worker"])?).await?;
        anyhow::Ok(())
    })?;

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target".into());
    let example = target.join("debug/examples/pod_reflector");
    say("starting `pod_reflector -n demo --watch`; its output follows");
    let mut reflector = Command::new(&example)
        .args(["-n", NS, "--watch"])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", example.display()))?;

    let outcome = (|| -> Result<()> {
        let pause = || std::thread::sleep(Duration::from_millis(1500));
        pause();
        rt.block_on(async {
            say("adding pod `batch`");
            pods.create(&PostParams::default(), &pod("batch", &["job"])?)
                .await?;
            tokio::time::sleep(Duration::from_millis(800)).await;
            say("relabelling pod `web`");
            pods.patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"tier": "frontend"}}})),
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(800)).await;
            say("deleting pod `worker`");
            pods.delete(
                "worker",
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await?;
            anyhow::Ok(())
        })?;
        pause();
        say("restarting kube-apiserver under the running reflector");
        plane.stop_apiserver();
        std::thread::sleep(Duration::from_secs(1));
        plane.start_apiserver()?;
        say("kube-apiserver is back; adding pod `after-restart`");
        rt.block_on(pods.create(&PostParams::default(), &pod("after-restart", &["app"])?))?;
        std::thread::sleep(Duration::from_secs(4));
        Ok(())
    })();

    let _ = reflector.kill();
    let _ = reflector.wait();
    say("stopping the control plane");
    drop(rt);
    plane.stop();
    outcome?;
    say("done: the reflector listed, watched, survived a restart and saw every change");
    Ok(())
}
