//! The benchmark's hands on the cluster, run by `cargo xtask bench`:
//!
//! - `seed`: creates the namespace and N ConfigMaps (`cm-000000` …, eight
//!   keys of 120 characters: ~1 KiB of data each), or with `--resource pods`
//!   N Pods (`pod-000000` …, a realistic two-container spec, see
//!   `objects.rs`), with a bounded number of creates in flight; existing
//!   ones are kept, and `--start S` skips the first S (the orchestrator
//!   grows the set from one size to the next). With `--want W`, each
//!   ConfigMap carries the annotation `kube-bench/want: W` (the controller
//!   scenario). Reports the JSON size of one object as created and as the
//!   server returns it.
//! - `mutate`: M merge patches, each setting `data.rev` (Pods: the
//!   annotation `kube-bench/rev`) to a value never used before (so each is
//!   a real change: one MODIFIED event), over the first min(M, N) objects
//!   round-robin, a bounded number in flight.
//! - `changes`, `verify`: the controller scenario's (see `controller.rs`).
//! - `decode`: captures payloads from the server — every page of a list
//!   (`limit=500`, as the reflectors page) and a watch stream carrying M
//!   changes made meanwhile, chunked as they arrived — then measures, in
//!   this process, the CPU time (`CLOCK_THREAD_CPUTIME_ID`) to decode them
//!   with plain `serde_json::from_slice` into k8s-openapi types (the floor)
//!   and with our client's decoding (`ObjectList<K>` as `Api::list`
//!   decodes it, and `kube_client::watch::decode_events` over the chunks).
//! - `pages --save DIR [--resource configmaps|pods]`: saves every page of a
//!   list of the namespace's objects (`limit=500`, JSON) to DIR as
//!   `list-page-NNN.json`, for `heap`.
//! - `heap --payloads DIR [--kind configmap|pod]`: the bytes and
//!   allocations a store holds per object of a captured list (see
//!   `heap.rs`); needs no cluster and takes none of the options below.
//!
//! Common options: `--kubeconfig PATH --namespace NS --objects N --mods M
//! [--concurrency C] [--tag T] [--runs R] [--min-ms MS] [--save DIR] [--want W]
//! [--rate PER_SECOND] [--start S] [--resource configmaps|pods]`
//! (`--save`: `decode` also writes the captured payloads there). Each subcommand
//! prints one JSON line with what it did.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::List;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, WatchEvent as OpenapiWatchEvent};
use kube_client::params::{Patch, PatchParams, PostParams};
use kube_client::{Api, Client, ObjectList, WatchEvent};
use serde_json::json;

mod controller;
mod heap;
mod objects;

#[derive(Debug, Clone)]
struct Opts {
    kubeconfig: String,
    namespace: String,
    objects: u64,
    mods: u64,
    concurrency: usize,
    tag: String,
    runs: usize,
    min_ms: u64,
    save: Option<String>,
    want: Option<String>,
    rate: f64,
    /// Seed from this index on (the ones below exist from a smaller size).
    start: u64,
    /// Pods instead of ConfigMaps (`--resource pods`).
    pods: bool,
}

impl Opts {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Self> {
        let mut o = Opts {
            kubeconfig: String::new(),
            namespace: String::new(),
            objects: 0,
            mods: 0,
            concurrency: 16,
            tag: "m".into(),
            runs: 7,
            min_ms: 200,
            save: None,
            want: None,
            rate: 20.0,
            start: 0,
            pods: false,
        };
        while let Some(flag) = it.next() {
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            let num = |v: &str| -> Result<u64> { v.parse().with_context(|| format!("{flag} {v}")) };
            match flag.as_str() {
                "--kubeconfig" => o.kubeconfig = value,
                "--namespace" => o.namespace = value,
                "--objects" => o.objects = num(&value)?,
                "--mods" => o.mods = num(&value)?,
                "--concurrency" => o.concurrency = num(&value)?.max(1) as usize,
                "--tag" => o.tag = value,
                "--runs" => o.runs = num(&value)?.max(1) as usize,
                "--min-ms" => o.min_ms = num(&value)?,
                "--save" => o.save = Some(value),
                "--want" => o.want = Some(value),
                "--start" => o.start = num(&value)?,
                "--resource" => {
                    o.pods = match value.as_str() {
                        "pods" => true,
                        "configmaps" => false,
                        other => bail!("--resource {other}: expected configmaps or pods"),
                    }
                }
                "--rate" => o.rate = value.parse().with_context(|| format!("--rate {value}"))?,
                other => bail!("unknown option `{other}`"),
            }
        }
        ensure!(!o.kubeconfig.is_empty(), "--kubeconfig is required");
        ensure!(!o.namespace.is_empty(), "--namespace is required");
        Ok(o)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    if command == "heap" {
        println!("{}", heap::run(args)?);
        return Ok(());
    }
    let opts = Opts::parse(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = rt.block_on(async { client(&opts.kubeconfig) })?;
    let report = match command.as_str() {
        "seed" => rt.block_on(seed(&client, &opts))?,
        "mutate" => rt.block_on(mutate(&client, &opts))?,
        "changes" => rt.block_on(controller::changes(&client, &opts))?,
        "verify" => rt.block_on(controller::verify(&client, &opts))?,
        "pages" => rt.block_on(save_pages(&client, &opts))?,
        "decode" => {
            let captured = rt.block_on(capture(&client, &opts))?;
            drop(rt);
            if let Some(dir) = &opts.save {
                save(&captured, dir)?;
            }
            decode(&captured, &opts)?
        }
        other => {
            bail!(
                "unknown command `{other}`; expected seed, mutate, changes, verify, decode, pages or heap"
            )
        }
    };
    println!("{report}");
    Ok(())
}

fn client(kubeconfig: &str) -> Result<Client> {
    let kc = kube_config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("read {kubeconfig}"))?;
    let config =
        kube_config::Config::from_kubeconfig(&kc, &kube_config::KubeconfigOptions::default())?;
    Ok(Client::try_from(config)?)
}

fn name(i: u64) -> String {
    objects::config_map_name(i)
}

async fn seed(client: &Client, o: &Opts) -> Result<serde_json::Value> {
    let started = Instant::now();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(o.namespace.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e).context("create the namespace"),
    }
    let created = if o.pods {
        let api: Api<Pod> = Api::namespaced(client.clone(), &o.namespace);
        create_all(o, |i| {
            let api = api.clone();
            async move {
                let pod = objects::pod(i)?;
                Ok(api.create(&PostParams::default(), &pod).await)
            }
        })
        .await
        .context("create Pods")?
    } else {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &o.namespace);
        create_all(o, |i| {
            let api = api.clone();
            async move {
                let cm = objects::config_map(i, o.want.as_deref(), controller::WANT);
                Ok(api.create(&PostParams::default(), &cm).await)
            }
        })
        .await
        .context("create ConfigMaps")?
    };
    // What one object of this kind is, as created and as the server holds it.
    let sample = if o.pods {
        let api: Api<Pod> = Api::namespaced(client.clone(), &o.namespace);
        (
            objects::json_len(&objects::pod(0)?),
            objects::json_len(&api.get(&objects::pod_name(0)).await?),
        )
    } else {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &o.namespace);
        (
            objects::json_len(&objects::config_map(0, None, controller::WANT)),
            objects::json_len(&api.get(&name(0)).await?),
        )
    };
    Ok(json!({
        "seeded": o.objects,
        "from": o.start,
        "created": created,
        "ms": started.elapsed().as_secs_f64() * 1e3,
        "created_json_bytes": sample.0,
        "stored_json_bytes": sample.1,
    }))
}

/// Creates objects `o.start..o.objects` with `create`, `o.concurrency` in
/// flight; one that exists already counts as done. Returns how many were
/// created.
async fn create_all<F, Fut, T>(o: &Opts, create: F) -> Result<u64>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<kube_client::Result<T>>>,
{
    futures::stream::iter(o.start.min(o.objects)..o.objects)
        .map(create)
        .buffer_unordered(o.concurrency)
        .try_fold(0, |n, created| async move {
            match created {
                Ok(_) => Ok(n + 1),
                Err(e) if e.is_already_exists() => Ok(n),
                Err(e) => Err(e.into()),
            }
        })
        .await
}

async fn mutate(client: &Client, o: &Opts) -> Result<serde_json::Value> {
    ensure!(o.objects > 0, "--objects must be positive");
    let started = Instant::now();
    let patches = futures::stream::iter(0..o.mods).map(|i| {
        let patch = objects::change(o.pods, format!("{}-{i}", o.tag));
        let i = i % o.objects;
        async move {
            if o.pods {
                let api: Api<Pod> = Api::namespaced(client.clone(), &o.namespace);
                api.patch(
                    &objects::pod_name(i),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
                .map(drop)
            } else {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), &o.namespace);
                api.patch(&name(i), &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
        }
    });
    patches
        .buffer_unordered(o.concurrency)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await
        .with_context(|| format!("patch {}", if o.pods { "Pods" } else { "ConfigMaps" }))?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(json!({"mods": o.mods, "ms": ms, "per_second": o.mods as f64 * 1e3 / ms.max(1e-9)}))
}

/// Payloads captured from the server.
struct Captured {
    list_url: String,
    pages: Vec<Bytes>,
    watch_url: String,
    chunks: Vec<Bytes>,
    watch_events: usize,
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn get(path: String) -> Result<http::Request<Vec<u8>>> {
    Ok(http::Request::get(path)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())?)
}

/// Every page of a list of `base` (`limit=500`, JSON, as the reflectors
/// page) and the list's resourceVersion.
async fn list_pages(client: &Client, base: &str) -> Result<(Vec<Bytes>, String)> {
    let mut pages = Vec::new();
    let mut continue_token = String::new();
    let mut list_rv = String::new();
    loop {
        let mut path = format!("{base}?limit=500");
        if !continue_token.is_empty() {
            path.push_str(&format!("&continue={}", percent_encode(&continue_token)));
        }
        let body = Bytes::from(client.request_text(get(path)?).await?.into_bytes());
        let meta: ObjectList<serde_json::Value> = serde_json::from_slice(&body)?;
        list_rv = meta.metadata.resource_version.unwrap_or(list_rv);
        continue_token = meta.metadata.continue_.unwrap_or_default();
        pages.push(body);
        if continue_token.is_empty() {
            break;
        }
    }
    Ok((pages, list_rv))
}

/// `pages`: saves the pages of a list of the namespace's ConfigMaps or Pods
/// to `--save DIR` as `list-page-NNN.json` (what `heap` reads).
async fn save_pages(client: &Client, o: &Opts) -> Result<serde_json::Value> {
    let dir = o.save.as_deref().context("pages needs --save DIR")?;
    let resource = if o.pods { "pods" } else { "configmaps" };
    let base = format!("/api/v1/namespaces/{}/{resource}", o.namespace);
    let (pages, _) = list_pages(client, &base).await?;
    let dir = std::path::Path::new(dir);
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (i, page) in pages.iter().enumerate() {
        std::fs::write(dir.join(format!("list-page-{i:03}.json")), page)?;
    }
    Ok(json!({
        "pages": pages.len(),
        "bytes": pages.iter().map(Bytes::len).sum::<usize>(),
        "dir": dir.display().to_string(),
    }))
}

async fn capture(client: &Client, o: &Opts) -> Result<Captured> {
    let base = format!("/api/v1/namespaces/{}/configmaps", o.namespace);
    let (pages, list_rv) = list_pages(client, &base).await?;

    // A watch from the list's version, while M changes are made.
    let watch_path = format!("{base}?watch=true&resourceVersion={list_rv}&timeoutSeconds=600");
    let watch_url = format!("{}{watch_path}", client.server_url());
    let mut response = client.request_streaming(get(watch_path)?).await?;
    let mutator = tokio::spawn({
        let client = client.clone();
        let mut o = o.clone();
        o.tag = format!("{}-decode", o.tag);
        async move { mutate(&client, &o).await }
    });
    let mut chunks = Vec::new();
    let mut lines = 0usize;
    let deadline = Duration::from_secs(600);
    while lines < o.mods as usize {
        let chunk = tokio::time::timeout(deadline, response.chunk())
            .await
            .context("the watch went silent")??
            .context("the watch ended early")?;
        // Keep exactly M complete events: cut after the M-th newline.
        let mut cut = chunk.len();
        for (pos, _) in chunk.iter().enumerate().filter(|&(_, &b)| b == b'\n') {
            lines += 1;
            if lines == o.mods as usize {
                cut = pos + 1;
                break;
            }
        }
        chunks.push(chunk.slice(..cut));
    }
    drop(response);
    mutator.await??;
    let mut list_url = format!("{}{base}?limit=500", client.server_url());
    list_url.shrink_to_fit();
    Ok(Captured {
        list_url,
        pages,
        watch_url,
        chunks,
        watch_events: lines,
    })
}

/// Writes the payloads to `dir`: `list-page-NNN.json`, `watch.jsonl`, and
/// `watch-chunks.txt` (the length of each chunk as it arrived, one per line).
fn save(c: &Captured, dir: &str) -> Result<()> {
    let dir = std::path::Path::new(dir);
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (i, page) in c.pages.iter().enumerate() {
        std::fs::write(dir.join(format!("list-page-{i:03}.json")), page)?;
    }
    let joined: Vec<u8> = c.chunks.iter().flat_map(|b| b.iter().copied()).collect();
    std::fs::write(dir.join("watch.jsonl"), joined)?;
    let lengths: String = c.chunks.iter().map(|b| format!("{}\n", b.len())).collect();
    std::fs::write(dir.join("watch-chunks.txt"), lengths)?;
    Ok(())
}

/// Decodes with `f` (which returns how many objects it decoded) until at
/// least `min` of this thread's CPU time has passed; returns ns per object.
fn measure(min: Duration, mut f: impl FnMut() -> Result<usize>) -> Result<f64> {
    let start = bench_common::thread_cpu_ns();
    let mut objects = 0usize;
    loop {
        objects += f()?;
        let spent = bench_common::thread_cpu_ns() - start;
        if spent >= min.as_nanos() as u64 {
            return Ok(spent as f64 / objects.max(1) as f64);
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A decoder under test: decodes everything once, returns how many objects.
type Decoder<'a> = Box<dyn FnMut() -> Result<usize> + 'a>;

/// Runs the decoders in turn, `runs` times each; their medians, with
/// `ours` compared to `floor` (and to `direct`, if there is one).
fn compare(o: &Opts, mut decoders: Vec<(&'static str, Decoder<'_>)>) -> Result<serde_json::Value> {
    let min = Duration::from_millis(o.min_ms);
    // Warm-up: caches, allocator.
    for (_, f) in decoders.iter_mut() {
        f()?;
    }
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); decoders.len()];
    for _ in 0..o.runs {
        for ((_, f), r) in decoders.iter_mut().zip(runs.iter_mut()) {
            r.push(measure(min, f)?);
        }
    }
    let mut out = serde_json::Map::new();
    let mut medians = std::collections::HashMap::new();
    for ((name, _), r) in decoders.iter().zip(&runs) {
        medians.insert(*name, median(r));
        out.insert(format!("{name}_ns_per_object"), json!(median(r)));
        out.insert(format!("runs_{name}"), json!(r));
    }
    let ours = medians.get("ours").copied().unwrap_or(f64::NAN);
    let floor = medians.get("floor").copied().unwrap_or(f64::NAN);
    out.insert("ratio".into(), json!(ours / floor));
    if let Some(direct) = medians.get("direct") {
        out.insert("ratio_vs_direct".into(), json!(ours / direct));
    }
    Ok(serde_json::Value::Object(out))
}

/// A watch event decoded straight into its type: no intermediate value.
#[derive(serde::Deserialize)]
struct DirectEvent {
    #[serde(rename = "type")]
    kind: String,
    #[allow(dead_code)]
    object: ConfigMap,
}

fn decode(c: &Captured, o: &Opts) -> Result<serde_json::Value> {
    // List: plain serde_json into k8s-openapi's `List<ConfigMap>`, against
    // ObjectList<ConfigMap> — what `Api::list` decodes through
    // `client::pipeline::decode` (pub(crate): one `serde_json::from_slice`
    // plus error mapping, called here as the same `from_slice`).
    let objects: usize = c
        .pages
        .iter()
        .map(|p| serde_json::from_slice::<List<ConfigMap>>(p).map(|l| l.items.len()))
        .sum::<Result<usize, _>>()?;
    let list = compare(
        o,
        vec![
            (
                "floor",
                Box::new(|| {
                    let mut n = 0;
                    for page in &c.pages {
                        n += serde_json::from_slice::<List<ConfigMap>>(page)?.items.len();
                    }
                    Ok(n)
                }),
            ),
            (
                "ours",
                Box::new(|| {
                    let mut n = 0;
                    for page in &c.pages {
                        n += serde_json::from_slice::<ObjectList<ConfigMap>>(page)?
                            .items
                            .len();
                    }
                    Ok(n)
                }),
            ),
        ],
    )?;

    // Watch: each line into k8s-openapi's WatchEvent<ConfigMap>, against
    // decode_events over the chunks as they came off the wire.
    let joined: Vec<u8> = c.chunks.iter().flat_map(|b| b.iter().copied()).collect();
    // k8s-openapi's WatchEvent goes through a serde_json::Value for the
    // object; "direct" is the stricter floor without that detour.
    let watch = compare(
        o,
        vec![
            (
                "floor",
                Box::new(|| {
                    let mut n = 0;
                    for line in joined.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        match serde_json::from_slice::<OpenapiWatchEvent<ConfigMap>>(line)? {
                            OpenapiWatchEvent::Modified(_) | OpenapiWatchEvent::Added(_) => n += 1,
                            other => bail!("unexpected event {other:?}"),
                        }
                    }
                    Ok(n)
                }),
            ),
            (
                "direct",
                Box::new(|| {
                    let mut n = 0;
                    for line in joined.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        let event = serde_json::from_slice::<DirectEvent>(line)?;
                        ensure!(event.kind == "MODIFIED", "unexpected event {}", event.kind);
                        n += 1;
                    }
                    Ok(n)
                }),
            ),
            (
                "ours",
                Box::new(|| {
                    let chunks = futures::stream::iter(
                        c.chunks.iter().cloned().map(Ok::<_, kube_client::Error>),
                    );
                    let events = kube_client::watch::decode_events::<ConfigMap, _, _>(
                        c.watch_url.clone(),
                        chunks,
                    );
                    futures::executor::block_on(events.try_fold(0usize, |n, e| async move {
                        match e {
                            WatchEvent::Modified(_) | WatchEvent::Added(_) => Ok(n + 1),
                            _ => Ok(n),
                        }
                    }))
                    .map_err(Into::into)
                }),
            ),
        ],
    )?;
    Ok(json!({
        "list": {
            "url": c.list_url,
            "pages": c.pages.len(),
            "objects": objects,
            "bytes": c.pages.iter().map(Bytes::len).sum::<usize>(),
            "result": list,
        },
        "watch": {
            "url": c.watch_url,
            "chunks": c.chunks.len(),
            "events": c.watch_events,
            "bytes": joined.len(),
            "result": watch,
        },
        "runs": o.runs,
        "min_ms_per_run": o.min_ms,
    }))
}
