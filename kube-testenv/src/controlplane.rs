//! A local control plane: etcd and kube-apiserver on 127.0.0.1, started the
//! way controller-runtime's envtest starts them, and on request
//! kube-controller-manager, kube-scheduler and simulated nodes (see
//! [`ControlPlaneOptions`], [`crate::controller_manager`],
//! [`crate::scheduler`], [`crate::kwok`] and [`crate::nodes`]).
//!
//! Envtest runs no controllers, and neither does [`ControlPlane::start`]: an
//! owner reference is then only a field (nothing deletes the children) and a
//! deleted namespace stays `Terminating` for ever. Tests of what the
//! cluster's own controllers do ask for a controller manager with
//! [`ControlPlane::start_with`].
//!
//! Guarantees once [`ControlPlane::start`] returns `Ok`:
//! - etcd answers `/health` and kube-apiserver answers `/readyz` with 200;
//! - both listen on free 127.0.0.1 ports and keep their data in a fresh
//!   directory under `$TMPDIR/kube-testenv/` (etcd with `--unsafe-no-fsync`);
//! - [`ControlPlane::kubeconfig`] is a kubeconfig (cluster, user, context
//!   `kube-testenv`) for an admin in group `system:masters`, authenticating
//!   with a client certificate and verifying the server against its own CA;
//! - kube-apiserver reaches kubelets (here only KWOK's server) by their
//!   `InternalIP`, presents a client certificate made for it and verifies
//!   the kubelet's serving certificate against the control plane's CA;
//! - the servers stop when the `ControlPlane` is dropped or stopped, and in
//!   any case when this process exits (see [`crate::process`]).
//!
//! Start-up is bounded: etcd gets 60 s and kube-apiserver 120 s to become
//! ready; a server that exits or times out fails the start with the tail of
//! its log. A directory left behind by a dead process is removed by the next
//! start.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Mutex;

use crate::access::Access;
use crate::binaries::Binaries;
use crate::certs::Certs;
use crate::controller_manager;
use crate::error::{Error, Result, io};
use crate::process::{ServerProcess, free_port};
use crate::{kwok, nodes, scheduler};

const ETCD_READY: Duration = Duration::from_secs(60);
const APISERVER_READY: Duration = Duration::from_secs(120);

/// What to run besides etcd and kube-apiserver.
///
/// ```
/// let options = kube_testenv::ControlPlaneOptions::default().with_controller_manager();
/// assert!(options.controller_manager);
/// let options = kube_testenv::ControlPlaneOptions::default().with_nodes(2);
/// assert!(options.controller_manager && options.scheduler && options.nodes == 2);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlPlaneOptions {
    /// Run kube-controller-manager (garbage collector, namespace controller
    /// and the rest of the default set). Needs
    /// [`Binaries::kube_controller_manager`]: get the binaries with
    /// [`crate::binaries::ensure_with`] and
    /// [`crate::binaries::Wanted::controller_manager`].
    pub controller_manager: bool,
    /// Run kube-scheduler, which binds Pods to nodes. Needs
    /// [`Binaries::kube_scheduler`] ([`crate::binaries::Wanted::scheduler`]).
    pub scheduler: bool,
    /// How many simulated nodes to create (see [`crate::kwok`]); 0 runs no
    /// KWOK. Needs [`Binaries::kwok`] ([`crate::binaries::Wanted::kwok`]).
    pub nodes: u32,
}

impl ControlPlaneOptions {
    /// These options with a controller manager.
    pub fn with_controller_manager(mut self) -> Self {
        self.controller_manager = true;
        self
    }

    /// These options with a scheduler.
    pub fn with_scheduler(mut self) -> Self {
        self.scheduler = true;
        self
    }

    /// These options with `count` simulated nodes, and the controller
    /// manager and scheduler that make Deployments into running Pods on
    /// them.
    pub fn with_nodes(mut self, count: u32) -> Self {
        self.nodes = count;
        self.with_controller_manager().with_scheduler()
    }

    /// The binaries these options need besides kube-apiserver and etcd.
    pub fn wanted(&self) -> crate::binaries::Wanted {
        crate::binaries::Wanted {
            controller_manager: self.controller_manager,
            scheduler: self.scheduler,
            kwok: self.nodes > 0,
        }
    }
}

/// A running etcd + kube-apiserver pair, and perhaps a kube-controller-manager.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    binaries: Binaries,
    etcd: Mutex<ServerProcess>,
    apiserver: Mutex<ServerProcess>,
    controller_manager: Option<Mutex<ServerProcess>>,
    controller_manager_url: Option<String>,
    scheduler: Option<Mutex<ServerProcess>>,
    kwok: Option<Mutex<ServerProcess>>,
    kwok_url: Option<String>,
    nodes: Vec<String>,
    apiserver_args: Vec<String>,
    etcd_url: String,
    access: Access,
    kubeconfig: PathBuf,
    token: String,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver from `binaries` and waits until both
    /// are ready; no controllers run. Blocking; safe to call from inside an
    /// async runtime.
    pub fn start(binaries: &Binaries) -> Result<Self> {
        Self::start_with(binaries, ControlPlaneOptions::default())
    }

    /// [`ControlPlane::start`], then what `options` ask for: with
    /// [`ControlPlaneOptions::controller_manager`], kube-controller-manager
    /// from [`Binaries::kube_controller_manager`] (an error if that is
    /// `None`), returning once its `/healthz` answers.
    pub fn start_with(binaries: &Binaries, options: ControlPlaneOptions) -> Result<Self> {
        Self::start_with_apiserver_args(binaries, options, &[])
    }

    /// [`ControlPlane::start_with`], giving kube-apiserver `extra_args`
    /// after its own flags (a repeated flag's last value wins), e.g. the
    /// `--oidc-*` flags of a test that brings its own OpenID Connect
    /// issuer. They are kept for [`ControlPlane::start_apiserver`]. A flag
    /// kube-apiserver refuses fails the start with the tail of its log.
    ///
    /// The control plane's own flags (ports, certificates, etcd, RBAC) are
    /// what the other guarantees of this module rest on: arguments that
    /// change them void those guarantees.
    pub fn start_with_apiserver_args(
        binaries: &Binaries,
        options: ControlPlaneOptions,
        extra_args: &[String],
    ) -> Result<Self> {
        let controller_manager_binary = match (
            options.controller_manager,
            &binaries.kube_controller_manager,
        ) {
            (false, _) => None,
            (true, Some(path)) => Some(path.clone()),
            (true, None) => {
                return Err(Error::NoControllerManager {
                    reason: "the options ask for one but Binaries::kube_controller_manager is None \
                             (find the binaries with binaries::ensure_with and \
                             Wanted { controller_manager: true })",
                });
            }
        };
        let optional =
            |wanted: bool, path: &Option<PathBuf>, binary: &'static str, field: &str| match (
                wanted, path,
            ) {
                (false, _) => Ok(None),
                (true, Some(path)) => Ok(Some(path.clone())),
                (true, None) => Err(Error::MissingBinary {
                    binary,
                    reason: format!(
                        "the options ask for it but Binaries::{field} is None (find the binaries \
                         with binaries::ensure_with(options.wanted(), ..))"
                    ),
                }),
            };
        let scheduler_binary = optional(
            options.scheduler,
            &binaries.kube_scheduler,
            "kube-scheduler",
            "kube_scheduler",
        )?;
        let kwok_binary = optional(options.nodes > 0, &binaries.kwok, "kwok", "kwok")?;
        let root = std::env::temp_dir().join("kube-testenv");
        remove_stale_dirs(&root);
        let dir = root.join(format!("{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;

        let certs = Certs::generate()?;
        let write = |name: &str, contents: &str| -> Result<String> {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(io("write", &path))?;
            Ok(path.display().to_string())
        };
        let ca = write("ca.crt", &certs.ca_pem)?;
        let serving_cert = write("apiserver.crt", &certs.serving_cert_pem)?;
        let serving_key = write("apiserver.key", &certs.serving_key_pem)?;
        let client_ca = write("client-ca.crt", &certs.client_ca_pem)?;
        let sa_key = write("sa.key", &certs.sa_key_pem)?;
        let sa_pub = write("sa.pub", &certs.sa_pub_pem)?;
        let kubelet_client_cert = write("kubelet-client.crt", &certs.kubelet_client_cert_pem)?;
        let kubelet_client_key = write("kubelet-client.key", &certs.kubelet_client_key_pem)?;
        // A static bearer token for tests of token-based credentials (exec
        // plugins, token files): user `kube-testenv-token`, group system:masters.
        let token = format!(
            "kube-testenv-{:016x}{:08x}",
            random_u64(),
            std::process::id()
        );
        let tokens = write(
            "tokens.csv",
            &format!("{token},kube-testenv-token,kube-testenv-token-uid,\"system:masters\"\n"),
        )?;

        let (client_port, peer_port) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args: Vec<String> = vec![
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ];
        let mut etcd =
            ServerProcess::spawn("etcd", &binaries.etcd, &etcd_args, &dir.join("etcd.log"))?;
        wait_ready(&mut etcd, ETCD_READY, || etcd_healthy(client_port))?;

        let port = free_port()?;
        let server = format!("https://127.0.0.1:{port}");
        let mut apiserver_args: Vec<String> = vec![
            "--advertise-address=127.0.0.1".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--etcd-servers={etcd_url}"),
            format!("--cert-dir={}", dir.display()),
            format!("--tls-cert-file={serving_cert}"),
            format!("--tls-private-key-file={serving_key}"),
            format!("--client-ca-file={client_ca}"),
            format!("--token-auth-file={tokens}"),
            format!("--service-account-issuer={server}/"),
            format!("--service-account-key-file={sa_pub}"),
            format!("--service-account-signing-key-file={sa_key}"),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            "--disable-admission-plugins=ServiceAccount".into(),
            // The default reconciler refuses a loopback advertise address.
            "--endpoint-reconciler-type=none".into(),
            "--allow-privileged=true".into(),
            // The kubelet API (KWOK's server when there are nodes): by the
            // node's InternalIP (127.0.0.1), verified, with our own identity.
            "--kubelet-preferred-address-types=InternalIP".into(),
            format!("--kubelet-certificate-authority={ca}"),
            format!("--kubelet-client-certificate={kubelet_client_cert}"),
            format!("--kubelet-client-key={kubelet_client_key}"),
            "--v=1".into(),
        ];
        apiserver_args.extend(extra_args.iter().cloned());
        let access = Access {
            server,
            ca_pem: certs.ca_pem.clone(),
            client_identity: Some((certs.admin_cert_pem.clone(), certs.admin_key_pem.clone())),
            bearer_token: None,
        };
        let mut apiserver = ServerProcess::spawn(
            "kube-apiserver",
            &binaries.kube_apiserver,
            &apiserver_args,
            &dir.join("kube-apiserver.log"),
        )?;
        wait_apiserver(&mut apiserver, &access)?;

        let kubeconfig = dir.join("kubeconfig");
        let admin = kubeconfig_yaml(
            &access,
            "kube-testenv-admin",
            &certs.admin_cert_pem,
            &certs.admin_key_pem,
        );
        std::fs::write(&kubeconfig, admin).map_err(io("write", &kubeconfig))?;

        let controller_manager = match controller_manager_binary {
            None => None,
            Some(binary) => {
                let cm_kubeconfig = dir.join("kube-controller-manager.kubeconfig");
                let yaml = kubeconfig_yaml(
                    &access,
                    "system:kube-controller-manager",
                    &certs.controller_manager_cert_pem,
                    &certs.controller_manager_key_pem,
                );
                std::fs::write(&cm_kubeconfig, yaml).map_err(io("write", &cm_kubeconfig))?;
                let files = controller_manager::Files {
                    kubeconfig: &cm_kubeconfig,
                    serving_cert: &serving_cert,
                    serving_key: &serving_key,
                    service_account_key: &sa_key,
                    root_ca: &ca,
                    client_ca: &client_ca,
                };
                Some(controller_manager::start(
                    &binary,
                    &files,
                    &access,
                    &dir.join("kube-controller-manager.log"),
                )?)
            }
        };
        let (controller_manager, controller_manager_url) = match controller_manager {
            Some((process, url)) => (Some(Mutex::new(process)), Some(url)),
            None => (None, None),
        };
        let component_kubeconfig = |name: &str, user: &str, cert: &str, key: &str| {
            let path = dir.join(format!("{name}.kubeconfig"));
            std::fs::write(&path, kubeconfig_yaml(&access, user, cert, key))
                .map_err(io("write", &path))?;
            Ok::<_, Error>(path)
        };
        let scheduler = match scheduler_binary {
            None => None,
            Some(binary) => {
                let kubeconfig = component_kubeconfig(
                    "kube-scheduler",
                    "system:kube-scheduler",
                    &certs.scheduler_cert_pem,
                    &certs.scheduler_key_pem,
                )?;
                let files = scheduler::Files {
                    kubeconfig: &kubeconfig,
                    serving_cert: &serving_cert,
                    serving_key: &serving_key,
                    client_ca: &client_ca,
                };
                let log = dir.join("kube-scheduler.log");
                Some(Mutex::new(
                    scheduler::start(&binary, &files, &access, &log)?.0,
                ))
            }
        };
        let (kwok, kwok_url, nodes) = match kwok_binary {
            None => (None, None, Vec::new()),
            Some(binary) => {
                let kubeconfig = component_kubeconfig(
                    "kwok",
                    "kube-testenv-kwok",
                    &certs.kwok_cert_pem,
                    &certs.kwok_key_pem,
                )?;
                let config = dir.join("kwok.yaml");
                let files = kwok::Files {
                    config: &config,
                    kubeconfig: &kubeconfig,
                    serving_cert: &serving_cert,
                    serving_key: &serving_key,
                };
                let (process, url) = kwok::start(&binary, &dir, &files, free_port()?, &access)?;
                let nodes = block_on(nodes::create(&access, options.nodes))?;
                (Some(Mutex::new(process)), Some(url), nodes)
            }
        };
        Ok(Self {
            dir,
            binaries: binaries.clone(),
            etcd: Mutex::new(etcd),
            apiserver: Mutex::new(apiserver),
            controller_manager,
            controller_manager_url,
            scheduler,
            kwok,
            kwok_url,
            nodes,
            apiserver_args,
            etcd_url,
            access,
            kubeconfig,
            token,
        })
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// How this crate reaches the API server as admin.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// A bearer token that kube-apiserver accepts for user
    /// `kube-testenv-token` in group `system:masters`.
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// `https://127.0.0.1:PORT` of kube-apiserver.
    pub fn server_url(&self) -> &str {
        &self.access.server
    }

    /// `http://127.0.0.1:PORT` of etcd (for compaction in tests).
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// The directory holding certificates, logs and etcd's data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compacts etcd's history up to its current revision, as kube-apiserver
    /// does every few minutes: afterwards any older resourceVersion is gone
    /// from storage (a list at an exact old version, or a watch that cannot
    /// be served from the watch cache, answers 410). Returns the revision.
    pub fn compact_etcd(&self) -> Result<i64> {
        let port: u16 = self
            .etcd_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default();
        let err = |reason: String| crate::Error::Http {
            method: "POST",
            url: format!("{}/v3/kv", self.etcd_url),
            reason,
        };
        // The revision is in every response header; a range read is the cheapest.
        let range = etcd_post(port, "/v3/kv/range", r#"{"key":"AA=="}"#).map_err(err)?;
        let reply: serde_json::Value =
            serde_json::from_str(&range).map_err(|e| err(format!("{e}: {range}")))?;
        let revision: i64 = reply["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| err(format!("no revision in {range}")))?;
        let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
        etcd_post(port, "/v3/kv/compaction", &body).map_err(err)?;
        Ok(revision)
    }

    /// Process ids of etcd and kube-apiserver, in that order.
    pub fn pids(&self) -> (u32, u32) {
        (lock(&self.etcd).pid(), lock(&self.apiserver).pid())
    }

    /// The process id of kube-controller-manager, if one runs.
    pub fn controller_manager_pid(&self) -> Option<u32> {
        self.controller_manager.as_ref().map(|cm| lock(cm).pid())
    }

    /// `https://127.0.0.1:PORT` of kube-controller-manager, if one runs: its
    /// `/healthz` answers anyone, `/metrics` the admin (see
    /// [`crate::controller_manager`]).
    pub fn controller_manager_url(&self) -> Option<&str> {
        self.controller_manager_url.as_deref()
    }

    /// The process id of kube-scheduler, if one runs.
    pub fn scheduler_pid(&self) -> Option<u32> {
        self.scheduler.as_ref().map(|s| lock(s).pid())
    }

    /// The process id of KWOK, if it runs (there are nodes).
    pub fn kwok_pid(&self) -> Option<u32> {
        self.kwok.as_ref().map(|k| lock(k).pid())
    }

    /// `https://127.0.0.1:PORT` of KWOK's kubelet-API server, if there are
    /// nodes: every node's kubelet endpoint.
    pub fn kwok_url(&self) -> Option<&str> {
        self.kwok_url.as_deref()
    }

    /// The names of the simulated nodes (empty without
    /// [`ControlPlaneOptions::nodes`]); all were Ready when the start
    /// returned.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The file every container's logs come from unless
    /// [`ControlPlane::serve_pod_logs`] named another (see [`crate::kwok`]).
    pub fn default_log_file(&self) -> PathBuf {
        self.dir.join(kwok::DEFAULT_LOG)
    }

    /// Stops kube-apiserver only (etcd keeps the data); watches break.
    pub fn stop_apiserver(&self) {
        lock(&self.apiserver).stop();
    }

    /// Starts kube-apiserver again on the same port with the same data, and
    /// waits until it is ready. Call after [`ControlPlane::stop_apiserver`]
    /// (it stops a running one first).
    pub fn start_apiserver(&self) -> Result<()> {
        let mut guard = lock(&self.apiserver);
        guard.stop();
        let mut fresh = ServerProcess::spawn(
            "kube-apiserver",
            &self.binaries.kube_apiserver,
            &self.apiserver_args,
            &self.dir.join("kube-apiserver.log"),
        )?;
        wait_apiserver(&mut fresh, &self.access)?;
        *guard = fresh;
        Ok(())
    }

    /// Stops the servers and removes the directory.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(kwok) = &self.kwok {
            lock(kwok).stop();
        }
        if let Some(scheduler) = &self.scheduler {
            lock(scheduler).stop();
        }
        if let Some(cm) = &self.controller_manager {
            lock(cm).stop();
        }
        lock(&self.apiserver).stop();
        lock(&self.etcd).stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Removes `root/<pid>-<n>` directories whose process no longer exists.
fn remove_stale_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_string_lossy()
            .split('-')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Polls `check` until it says ready, the server exits, or `limit` passes.
pub(crate) fn wait_ready(
    server: &mut ServerProcess,
    limit: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Some(exit) = server.exited() {
            return Err(server.start_error(exit));
        }
        if check() {
            return Ok(());
        }
        if started.elapsed() > limit {
            let err = server.start_error(format!("not ready after {} s", limit.as_secs()));
            server.stop();
            return Err(err);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_apiserver(server: &mut ServerProcess, access: &Access) -> Result<()> {
    let client = block_on(async { access.http_client() })?;
    wait_ready(server, APISERVER_READY, || {
        block_on(async {
            matches!(
                access.request(&client, "GET", "/readyz", None).await,
                Ok((200, _))
            )
        })
    })
}

/// etcd's `/health`, over plain HTTP/1.0 on loopback.
fn etcd_healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
}

/// POSTs JSON to etcd's HTTP gateway and returns the body of a 200 answer.
fn etcd_post(port: u16, path: &str, body: &str) -> std::result::Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
        Ok(body.to_string())
    } else {
        Err(format!(
            "{}: {body}",
            head.lines().next().unwrap_or_default()
        ))
    }
}

/// Runs a future to completion on a private runtime in a scoped thread, so
/// that it works whether or not the caller is inside a tokio runtime.
pub(crate) fn block_on<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread tokio runtime can always be built")
                .block_on(future)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A kubeconfig for `user`, who authenticates with a client certificate.
fn kubeconfig_yaml(access: &Access, user: &str, cert_pem: &str, key_pem: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-testenv
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: kube-testenv
  context:
    cluster: kube-testenv
    user: {user}
    namespace: default
current-context: kube-testenv
",
        server = access.server,
        ca = b64(&access.ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}
