//! Runs a command in a Pod, prints its stdout and stderr as they come and
//! exits with the command's exit code, like `kubectl exec POD -- CMD…`.
//!
//! ```text
//! cargo run --example pod_exec -- [-n NS] [-c CONTAINER] POD -- COMMAND [ARG…]
//! ```
//!
//! On the bundled control plane with simulated nodes (the command runs on
//! this machine, see kube-testenv's `kwok` module):
//!
//! ```text
//! eval "$(cargo xtask controlplane up --nodes 1)"
//! kubectl create deployment web --image=nginx
//! cargo run --example pod_exec -- "$(kubectl get pod -o name | head -1 | cut -d/ -f2)" -- sh -c 'echo hi; echo oops >&2'
//! ```

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube_client::api::remote::{AttachParams, ProcessStatus};
use kube_client::{Api, Client};
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut namespace, mut container, mut pod) = (None, None, None);
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" | "--namespace" => namespace = Some(args.next().context("-n needs a value")?),
            "-c" | "--container" => container = Some(args.next().context("-c needs a value")?),
            "--" => {
                command.extend(args.by_ref());
            }
            other if pod.is_none() => pod = Some(other.to_string()),
            other => bail!("unexpected argument `{other}`"),
        }
    }
    let (Some(pod), false) = (pod, command.is_empty()) else {
        bail!("usage: pod_exec [-n NS] [-c CONTAINER] POD -- COMMAND [ARG…]");
    };
    let client = Client::try_default().await?;
    let pods: Api<Pod> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let params = AttachParams {
        container,
        ..AttachParams::default()
    };
    let mut process = pods.exec(&pod, command, &params).await?;
    let mut stdout = process.stdout().context("stdout")?;
    let mut stderr = process.stderr().context("stderr")?;
    let status = process.take_status().context("status")?;
    let copy_out = async {
        let mut out = tokio::io::stdout();
        tokio::io::copy(&mut stdout, &mut out).await?;
        out.flush().await
    };
    let copy_err = async {
        let mut err = tokio::io::stderr();
        tokio::io::copy(&mut stderr, &mut err).await?;
        err.flush().await
    };
    let (out, err, status) = tokio::join!(copy_out, copy_err, status);
    out?;
    err?;
    match status? {
        ProcessStatus::Success => Ok(()),
        ProcessStatus::ExitCode(code) => {
            eprintln!("command exited with code {code}");
            std::process::exit(code)
        }
        ProcessStatus::Failed(status) => bail!(
            "the command failed: {}",
            status.message.as_deref().unwrap_or("(no message)")
        ),
    }
}
