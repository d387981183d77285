//! Shows the configuration kube would use, with secrets redacted.
//!
//! ```text
//! cargo run --example config_show -- [--context NAME] [--namespace NS] [--cluster NAME] [--user NAME]
//! ```
//!
//! Loads the kubeconfig (`KUBECONFIG`, else `~/.kube/config`), else the
//! in-cluster service account, like `Config::infer`, applying the options
//! like kubectl's flags. Exec plugins are not run. Exits non-zero with the
//! error chain when no configuration is found.

use anyhow::{Context as _, bail};
use kube_config::{Auth, Config, InClusterEnv, KubeconfigLoader, KubeconfigOptions, TokenSource};

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<KubeconfigOptions> {
    let mut options = KubeconfigOptions::default();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--context" => &mut options.context,
            "--namespace" | "-n" => &mut options.namespace,
            "--cluster" => &mut options.cluster,
            "--user" => &mut options.user,
            "-h" | "--help" => {
                println!(
                    "usage: config_show [--context NAME] [--namespace NS] [--cluster NAME] [--user NAME]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        };
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .with_context(|| format!("{flag} needs a value"))?,
        };
        *slot = Some(value);
    }
    Ok(options)
}

fn describe_auth(auth: &Auth) -> String {
    match auth {
        Auth::None => "none".to_owned(),
        Auth::Basic { username, .. } => format!("basic (username {username}, password [redacted])"),
        Auth::Bearer(TokenSource::Static(_)) => "bearer token [redacted]".to_owned(),
        Auth::Bearer(TokenSource::File(file)) => {
            format!(
                "bearer token from file {} (re-read when it changes)",
                file.path().display()
            )
        }
        Auth::Exec(exec) => format!(
            "exec plugin `{}` ({}, interactive mode {:?}; not run here)",
            exec.command(),
            exec.api_version(),
            exec.interactive_mode()
        ),
        Auth::Oidc(oidc) => format!(
            "oidc id-token [redacted] (issuer {}{})",
            oidc.provider().issuer_url.as_deref().unwrap_or("unknown"),
            if oidc.can_refresh() {
                ", refreshable"
            } else {
                ""
            }
        ),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
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

fn run() -> anyhow::Result<()> {
    let options = parse_args(std::env::args().skip(1))?;
    let config = Config::infer_with(
        &KubeconfigLoader::from_env(),
        &InClusterEnv::from_env(),
        &options,
    )
    .context("cannot load a Kubernetes configuration")?;

    let ca = match &config.root_certs {
        Some(certs) => format!("{} certificate(s) from the configuration", certs.len()),
        None => "platform roots".to_owned(),
    };
    let identity = match &config.identity {
        Some(id) => format!(
            "{} certificate(s), {:?} key [redacted]",
            id.cert_chain_der().len(),
            id.key_format()
        ),
        None => "none".to_owned(),
    };
    let impersonate = match &config.impersonate {
        Some(i) => {
            let mut s = i.user.clone();
            if let Some(uid) = &i.uid {
                s.push_str(&format!(", uid {uid}"));
            }
            if !i.groups.is_empty() {
                s.push_str(&format!(", groups {}", i.groups.join(",")));
            }
            if !i.extra.is_empty() {
                let keys: Vec<&str> = i.extra.keys().map(String::as_str).collect();
                s.push_str(&format!(", extra {}", keys.join(",")));
            }
            s
        }
        None => "none".to_owned(),
    };

    println!("server:              {}", config.cluster_url);
    println!("namespace:           {}", config.default_namespace);
    println!("CA:                  {ca}");
    println!("insecure-skip-tls:   {}", config.accept_invalid_certs);
    if let Some(name) = &config.tls_server_name {
        println!("tls-server-name:     {name}");
    }
    if let Some(proxy) = &config.proxy_url {
        println!("proxy:               {proxy}");
    }
    if config.disable_compression {
        println!("compression:         disabled");
    }
    println!("auth:                {}", describe_auth(&config.auth));
    println!("client identity:     {identity}");
    println!("impersonate:         {impersonate}");
    Ok(())
}
