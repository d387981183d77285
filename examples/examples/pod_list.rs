//! Lists Pods with their namespace, phase and containers, like a small
//! `kubectl get pods`.
//!
//! ```text
//! cargo run --example pod_list -- [-A | --all-namespaces] [-n NS | --namespace NS]
//! ```
//!
//! Uses `Client::try_default()`: `KUBECONFIG` or `~/.kube/config`, else the
//! in-cluster service account. Without options it lists the namespace of
//! the current context (`default` unless the context says otherwise).
//! Try it on the bundled control plane:
//!
//! ```text
//! cargo xtask controlplane up      # prints `export KUBECONFIG=...`
//! export KUBECONFIG=...
//! kubectl run x --image=nginx      # stays Pending: no scheduler, no kubelet
//! cargo run --example pod_list
//! cargo xtask controlplane down
//! ```

use anyhow::{Context as _, bail};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube_client::params::ListParams;
use kube_client::{Api, Client, ResourceExt};

/// Which namespaces to list.
enum Scope {
    /// The current context's namespace.
    Default,
    /// One namespace.
    Namespace(String),
    /// Every namespace.
    All,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Scope> {
    let mut scope = Scope::Default;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-A" | "--all-namespaces" => scope = Scope::All,
            "-n" | "--namespace" => {
                let ns = args
                    .next()
                    .with_context(|| format!("{arg} needs a value"))?;
                scope = Scope::Namespace(ns);
            }
            "-h" | "--help" => {
                println!("usage: pod_list [-A | --all-namespaces] [-n NS | --namespace NS]");
                std::process::exit(0);
            }
            other => match other.strip_prefix("--namespace=") {
                Some(ns) => scope = Scope::Namespace(ns.to_owned()),
                None => bail!("unknown argument `{other}` (try --help)"),
            },
        }
    }
    Ok(scope)
}

/// One line of the table.
struct Row {
    namespace: String,
    name: String,
    phase: String,
    containers: String,
}

fn row(pod: &Pod) -> Row {
    let spec = pod.spec.as_ref();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .map(|c| format!("init:{}", c.name));
    let main = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| c.name.clone());
    Row {
        namespace: pod.namespace().unwrap_or_default().to_owned(),
        name: pod.name_any().to_string(),
        phase: pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".to_owned()),
        containers: init.chain(main).collect::<Vec<_>>().join(","),
    }
}

fn print_table(rows: &[Row]) {
    let header = Row {
        namespace: "NAMESPACE".into(),
        name: "NAME".into(),
        phase: "PHASE".into(),
        containers: "CONTAINERS".into(),
    };
    let width = |f: fn(&Row) -> &str| {
        rows.iter()
            .chain([&header])
            .map(|r| f(r).len())
            .max()
            .unwrap_or(0)
    };
    let ns_w = width(|r| &r.namespace);
    let name_w = width(|r| &r.name);
    let phase_w = width(|r| &r.phase);
    for r in [&header].into_iter().chain(rows) {
        println!(
            "{:ns_w$}   {:name_w$}   {:phase_w$}   {}",
            r.namespace, r.name, r.phase, r.containers
        );
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let scope = parse_args(std::env::args().skip(1))?;
    let client = Client::try_default()
        .await
        .context("cannot make a Kubernetes client")?;
    let (pods, place): (Api<Pod>, String) = match scope {
        Scope::All => (Api::all(client), "any namespace".to_owned()),
        Scope::Namespace(ns) => (Api::namespaced(client, &ns), format!("the {ns} namespace")),
        Scope::Default => {
            let ns = client.default_namespace().to_owned();
            (
                Api::default_namespaced(client),
                format!("the {ns} namespace"),
            )
        }
    };
    let mut rows: Vec<Row> = pods
        .list_stream(&ListParams::default().limit(500))
        .map_ok(|pod| row(&pod))
        .try_collect()
        .await
        .with_context(|| format!("cannot list pods in {place}"))?;
    if rows.is_empty() {
        println!("No pods found in {place}.");
        return Ok(());
    }
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    print_table(&rows);
    Ok(())
}
