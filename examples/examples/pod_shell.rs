//! An interactive shell in a Pod, in *line mode*: what you type is sent a
//! line at a time to `sh` in the container, whose output is printed as it
//! comes. No TTY and no raw terminal mode (that would need a terminal
//! crate such as crossterm, which this workspace does not depend on), so
//! there is no prompt, no line editing on the remote side and no full-screen
//! programs; Ctrl-D ends stdin, which ends the shell.
//!
//! ```text
//! cargo run --example pod_shell -- [-n NS] [-c CONTAINER] POD [SHELL]
//! ```
//!
//! With a TTY instead, the API is the same with
//! `AttachParams::interactive_tty()`, and `terminal_size()` sends resizes.

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube_client::api::remote::{AttachParams, ProcessStatus};
use kube_client::{Api, Client};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut namespace, mut container, mut positional) = (None, None, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" | "--namespace" => namespace = Some(args.next().context("-n needs a value")?),
            "-c" | "--container" => container = Some(args.next().context("-c needs a value")?),
            _ => positional.push(arg),
        }
    }
    let (pod, shell) = match positional.as_slice() {
        [pod] => (pod.clone(), "sh".to_string()),
        [pod, shell] => (pod.clone(), shell.clone()),
        _ => bail!("usage: pod_shell [-n NS] [-c CONTAINER] POD [SHELL]"),
    };
    let client = Client::try_default().await?;
    let pods: Api<Pod> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let mut params = AttachParams::default().stdin(true);
    params.container = container;
    let mut process = pods.exec(&pod, [shell], &params).await?;
    let mut remote_in = process.stdin().context("stdin")?;
    let mut remote_out = process.stdout().context("stdout")?;
    let mut remote_err = process.stderr().context("stderr")?;
    let status = process.take_status().context("status")?;
    eprintln!(
        "connected ({}); type commands, Ctrl-D to end",
        process.protocol()
    );

    let send_lines = async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            remote_in.write_all(line.as_bytes()).await?;
            remote_in.write_all(b"\n").await?;
        }
        // The end of our stdin closes the shell's.
        remote_in.shutdown().await
    };
    let (mut local_out, mut local_err) = (tokio::io::stdout(), tokio::io::stderr());
    let print_out = tokio::io::copy(&mut remote_out, &mut local_out);
    let print_err = tokio::io::copy(&mut remote_err, &mut local_err);
    // The shell ends when its output ends (`exit`, or the end of stdin).
    let sender = tokio::spawn(send_lines);
    let (out, err, status) = tokio::join!(print_out, print_err, status);
    sender.abort();
    out?;
    err?;
    match status? {
        ProcessStatus::Success => Ok(()),
        ProcessStatus::ExitCode(code) => std::process::exit(code),
        ProcessStatus::Failed(s) => bail!("{}", s.message.as_deref().unwrap_or("failed")),
    }
}
