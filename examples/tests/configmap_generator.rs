//! The `configmap_generator` example, end to end: the example runs as a
//! real process (built by this test with `cargo build --example`) against a
//! real control plane that also runs kube-controller-manager, so that the
//! garbage collector really deletes the ConfigMaps of a deleted generator.
//!
//! It checks what the example promises: ConfigMaps appear with the spec's
//! data and a controller ownerReference, the status is written, a hand edit
//! is undone, a spec change is followed (surplus copies deleted), deletion
//! runs Cleanup exactly once, removes the finalizer and lets the garbage
//! collector delete the ConfigMaps; and SIGTERM during a slow reconcile lets
//! it finish and exits 0.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, ApiResource, Client, DynamicObject, ResourceExt, Scope};
use serde_json::json;

/// How long the cluster's garbage collector may take.
const GC_BOUND: Duration = Duration::from_secs(60);
/// How long the controller may take to act on a change.
const ACT_BOUND: Duration = Duration::from_secs(30);

fn env() -> &'static kube_testenv::TestEnv {
    kube_testenv::shared_with_controller_manager()
        .unwrap_or_else(|e| panic!("control plane with kube-controller-manager: {e}"))
}

fn client() -> Client {
    let kc = kube_client::config::Kubeconfig::read_from(env().kubeconfig()).unwrap();
    let config = kube_client::config::Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    Client::try_from(config).unwrap()
}

fn generators(ns: &str) -> Api<DynamicObject> {
    let kind = ApiResource::new(
        "example.kube.rs",
        "v1",
        "ConfigMapGenerator",
        "configmapgenerators",
        Scope::Namespaced,
    );
    Api::namespaced_with(client(), ns, &kind)
}

/// Builds the example once (cargo's own output names the executable).
fn example_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    // Cargo gives this test its package's variables (CARGO_PKG_NAME, …);
    // passed on, they would look like a changed environment to build
    // scripts and rebuild half the dependency graph each time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_crate = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
        ];
        if per_crate.iter().any(|p| name.starts_with(p)) {
            build.env_remove(&*name);
        }
    }
    let output = build
        .args([
            "build",
            "--example",
            "configmap_generator",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(output.status.success(), "building the example failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact" && m["target"]["name"] == "configmap_generator"
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable")
}

/// The running example: its stdout lines, collected; killed on drop.
struct Example {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Example {
    fn start(ns: &str, delay_ms: u64) -> Self {
        let mut child = Command::new(example_binary())
            .args(["-n", ns])
            .env("KUBECONFIG", env().kubeconfig())
            .env("GENERATOR_RECONCILE_DELAY_MS", delay_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the example");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("example: {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn count(&self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    /// Waits until the example has printed `line`.
    async fn printed(&mut self, line: &str, bound: Duration) {
        let started = Instant::now();
        while self.count(line) == 0 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the example exited ({status}) before printing {line:?}");
            }
            assert!(started.elapsed() < bound, "no {line:?} within {bound:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; its exit code.
    async fn exit_code(&mut self, bound: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(started.elapsed() < bound, "still running after {bound:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` returns `Some`, at most `bound`; `what` names it.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    bound: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn greeting(cm: &ConfigMap) -> Option<&str> {
    cm.data.as_ref()?.get("greeting").map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_owns_its_config_maps_from_creation_to_garbage_collection() {
    let ns = env().namespace("generator").await.unwrap();
    let mut example = Example::start(&ns, 0);
    let ready =
        format!("generating ConfigMaps for ConfigMapGenerators in namespace {ns}; Ctrl-C to stop");
    example.printed(&ready, Duration::from_secs(60)).await;

    let api = generators(&ns);
    let cms: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let demo: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.kube.rs/v1", "kind": "ConfigMapGenerator",
        "metadata": {"name": "demo"},
        "spec": {"copies": 2, "data": {"greeting": "hello"}},
    }))
    .unwrap();
    let uid = api
        .create(&PostParams::default(), &demo)
        .await
        .unwrap()
        .uid()
        .unwrap()
        .to_string();

    // Created: both copies with the data, owned by the generator; status.
    for name in ["demo-0", "demo-1"] {
        let cm = eventually(name, ACT_BOUND, || async {
            cms.get_opt(name)
                .await
                .unwrap()
                .filter(|cm| greeting(cm) == Some("hello"))
        })
        .await;
        let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            (uid.as_str(), Some(true))
        );
        assert_eq!(owner.kind, "ConfigMapGenerator");
    }
    let status = eventually("status", ACT_BOUND, || async {
        let g = api.get("demo").await.unwrap();
        let written = g.data["status"]["observedGeneration"] == json!(g.metadata.generation);
        written.then(|| (g.data["status"].clone(), g.metadata.finalizers.clone()))
    })
    .await;
    assert_eq!(status.0["configMaps"], json!(["demo-0", "demo-1"]));
    assert!(
        status.0["lastUpdated"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{status:?}"
    );
    assert_eq!(status.1, Some(vec!["example.kube.rs/cleanup".to_string()]));

    // A hand edit is undone (the controller owns the ConfigMap).
    let edit = Patch::Merge(json!({"data": {"greeting": "tampered"}}));
    cms.patch("demo-0", &PatchParams::default(), &edit)
        .await
        .unwrap();
    eventually("the edit undone", ACT_BOUND, || async {
        cms.get("demo-0")
            .await
            .ok()
            .filter(|cm| greeting(cm) == Some("hello"))
    })
    .await;

    // A spec change is followed: new data, one copy fewer.
    let spec = Patch::Merge(json!({"spec": {"copies": 1, "data": {"greeting": "bonjour"}}}));
    api.patch("demo", &PatchParams::default(), &spec)
        .await
        .unwrap();
    eventually("the new data", ACT_BOUND, || async {
        cms.get("demo-0")
            .await
            .ok()
            .filter(|cm| greeting(cm) == Some("bonjour"))
    })
    .await;
    eventually("the surplus copy deleted", ACT_BOUND, || async {
        cms.get_opt("demo-1").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("status of the new generation", ACT_BOUND, || async {
        let g = api.get("demo").await.unwrap();
        let s = &g.data["status"];
        (s["observedGeneration"] == json!(g.metadata.generation)
            && s["configMaps"] == json!(["demo-0"]))
        .then_some(())
    })
    .await;

    // Deleted: Cleanup once, finalizer removed, object gone; then the
    // garbage collector (kube-controller-manager) deletes the ConfigMap.
    api.delete("demo", &DeleteParams::default()).await.unwrap();
    eventually("the generator gone", ACT_BOUND, || async {
        api.get_opt("demo").await.unwrap().is_none().then_some(())
    })
    .await;
    let cleanup = format!("cleanup {ns}/demo");
    assert_eq!(example.count(&cleanup), 1, "{:?}", example.lines());
    eventually("the ConfigMap garbage-collected", GC_BOUND, || async {
        cms.get_opt("demo-0").await.unwrap().is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        example.count(&cleanup),
        1,
        "Cleanup ran once: {:?}",
        example.lines()
    );

    example.signal("TERM");
    assert_eq!(example.exit_code(Duration::from_secs(25)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_reconcile_finish_and_exits_0() {
    let ns = env().namespace("generator-stop").await.unwrap();
    let mut example = Example::start(&ns, 4000);
    let ready =
        format!("generating ConfigMaps for ConfigMapGenerators in namespace {ns}; Ctrl-C to stop");
    example.printed(&ready, Duration::from_secs(60)).await;
    let slow: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.kube.rs/v1", "kind": "ConfigMapGenerator",
        "metadata": {"name": "slow"},
        "spec": {"copies": 1, "data": {"greeting": "hello"}},
    }))
    .unwrap();
    generators(&ns)
        .create(&PostParams::default(), &slow)
        .await
        .unwrap();

    let reconciling = format!("reconciling {ns}/slow (generation Some(1))");
    example.printed(&reconciling, ACT_BOUND).await;
    let signalled = Instant::now();
    example.signal("TERM");
    let code = example.exit_code(Duration::from_secs(25)).await;
    let lines = example.lines();
    assert_eq!(code, Some(0), "{lines:?}");
    let finished = lines
        .iter()
        .position(|l| *l == format!("reconciled {ns}/slow"));
    let stopped = lines.iter().position(|l| l == "stopped");
    assert!(
        finished.is_some() && finished < stopped,
        "the reconcile finished, then it stopped: {lines:?}"
    );
    // It waited for the reconcile (4 s from its start), not for the 20 s
    // shutdown timeout.
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "{:?}",
        signalled.elapsed()
    );
    // The finalizer that reconcile added is there: it really completed.
    let slow = generators(&ns).get("slow").await.unwrap();
    assert_eq!(
        slow.metadata.finalizers,
        Some(vec!["example.kube.rs/cleanup".to_string()])
    );
}
