//! Where the kube-apiserver, etcd and (optionally) kube-controller-manager,
//! kube-scheduler and KWOK binaries come from.
//!
//! In order of preference:
//! 1. `TEST_ASSET_KUBE_APISERVER`, `TEST_ASSET_ETCD`,
//!    `TEST_ASSET_KUBE_CONTROLLER_MANAGER`, `TEST_ASSET_KUBE_SCHEDULER` and
//!    `TEST_ASSET_KWOK`, each naming a binary;
//! 2. `KUBEBUILDER_ASSETS`, a directory holding `kube-apiserver` and `etcd`
//!    (controller-runtime envtest's convention), and perhaps
//!    `kube-controller-manager`, `kube-scheduler` and `kwok`;
//! 3. the cache, `$KUBE_TESTENV_CACHE` or `$XDG_CACHE_HOME/kube-testenv` or
//!    `~/.cache/kube-testenv`, in a directory named after the pinned versions
//!    and a hash of the Go module's go.mod and go.sum, so that changing the
//!    pin builds anew and nothing else does;
//! 4. building with `go build` from the Go module in `xtask/controlplane`,
//!    which pins `k8s.io/kubernetes` and etcd. The result goes to the cache
//!    (written under a temporary name, then renamed, so a crashed build never
//!    leaves a half binary behind).
//!
//! kube-apiserver and etcd are always found or built. kube-controller-manager,
//! kube-scheduler and kwok are optional: [`ensure`] reports each when it is
//! already at hand (named by the environment, or cached) and never builds it;
//! [`ensure_with`] builds what [`Wanted`] asks for. kube-controller-manager
//! and kube-scheduler come from the same module as the API server (so they
//! are the same Kubernetes release) and go to the same cache directory.
//! KWOK (`sigs.k8s.io/kwok`, the node simulator, see [`crate::kwok`]) brings
//! its own Kubernetes library versions, so it has its own Go module,
//! `xtask/kwok`, and its own cache directory keyed the same way
//! (`kwok-<version>-<hash of its go.mod and go.sum>`). When the environment
//! names the API server and etcd but not a wanted optional binary, that is
//! an error rather than a build: a component built here could be newer than
//! a foreign API server.
//!
//! A build runs under a time limit and fails with the tail of its log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, io, log_tail};

/// The Go module (in this repository) that pins the upstream sources.
pub fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/controlplane")
}

/// The Go module (in this repository) that pins KWOK.
pub fn kwok_module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/kwok")
}

/// How long one `go build` may take before it is killed.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Paths to the server binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The kube-apiserver binary.
    pub kube_apiserver: PathBuf,
    /// The etcd binary.
    pub etcd: PathBuf,
    /// The kube-controller-manager binary, if one was found or built (see
    /// [`Wanted::controller_manager`]).
    pub kube_controller_manager: Option<PathBuf>,
    /// The kube-scheduler binary, if one was found or built (see
    /// [`Wanted::scheduler`]).
    pub kube_scheduler: Option<PathBuf>,
    /// The `kwok` binary (KWOK's controller and kubelet-API server), if one
    /// was found or built (see [`Wanted::kwok`]).
    pub kwok: Option<PathBuf>,
}

/// Which optional binaries [`ensure_with`] must provide, building them if
/// needed. kube-apiserver and etcd are always provided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Provide kube-controller-manager (built from the pinned module if it is
    /// not cached; a few more minutes the first time).
    pub controller_manager: bool,
    /// Provide kube-scheduler (same module; a few minutes the first time).
    pub scheduler: bool,
    /// Provide kwok (its own module, `xtask/kwok`; several minutes the first
    /// time, as it compiles its own Kubernetes libraries).
    pub kwok: bool,
}

/// The Go package of kube-controller-manager in the pinned module.
const CONTROLLER_MANAGER_PACKAGE: &str = "k8s.io/kubernetes/cmd/kube-controller-manager";
/// The Go package of kube-scheduler in the pinned module.
const SCHEDULER_PACKAGE: &str = "k8s.io/kubernetes/cmd/kube-scheduler";
/// The Go package of kwok in the KWOK module.
const KWOK_PACKAGE: &str = "sigs.k8s.io/kwok/cmd/kwok";

/// Where [`ensure`] found the binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Named by KUBEBUILDER_ASSETS or TEST_ASSET_*.
    Environment,
    /// Already in the cache: nothing was built.
    Cached,
    /// Built now; how long that took.
    Built(Duration),
}

/// The upstream versions pinned by the Go module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// `k8s.io/kubernetes`, e.g. `v1.37.2`.
    pub kubernetes: String,
    /// `go.etcd.io/etcd/server/v3`, e.g. `v3.7.0`.
    pub etcd: String,
    /// A hash of go.mod and go.sum, so that any change of pin changes the cache key.
    pub module_hash: u64,
}

impl Pins {
    /// Reads the pins from the Go module's go.mod.
    pub fn read() -> Result<Self> {
        let module = GoModule::read(&module_dir())?;
        Ok(Self {
            kubernetes: module.version("k8s.io/kubernetes")?,
            etcd: module.version("go.etcd.io/etcd/server/v3")?,
            module_hash: module.hash,
        })
    }

    /// The cache directory's name for these pins.
    pub fn cache_key(&self) -> String {
        format!(
            "kubernetes-{}-etcd-{}-{:08x}",
            self.kubernetes, self.etcd, self.module_hash as u32
        )
    }

    /// `-ldflags` that make `/version` report the pinned version.
    fn ldflags(&self) -> String {
        let v = self.kubernetes.trim_start_matches('v');
        let mut parts = v.split('.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next().unwrap_or_default();
        let pkg = "k8s.io/component-base/version";
        format!(
            "-s -w -X {pkg}.gitVersion={} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean",
            self.kubernetes
        )
    }
}

/// The KWOK version pinned by `xtask/kwok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KwokPins {
    /// `sigs.k8s.io/kwok`, e.g. `v0.8.0`.
    pub kwok: String,
    /// A hash of that module's go.mod and go.sum.
    pub module_hash: u64,
}

impl KwokPins {
    /// Reads the pin from `xtask/kwok/go.mod`; the hash also covers what
    /// kube-testenv adds to and changes in KWOK's source
    /// ([`KWOK_OVERLAY`] and the patched statements).
    pub fn read() -> Result<Self> {
        let module = GoModule::read(&kwok_module_dir())?;
        let mut overlay = Vec::new();
        for (source, target) in KWOK_OVERLAY {
            let path = kwok_module_dir().join(source);
            overlay.extend(std::fs::read(&path).map_err(io("read", &path))?);
            overlay.extend(target.as_bytes());
        }
        let hash = module.hash.to_le_bytes();
        let patches: String = KWOK_PATCHES
            .iter()
            .flat_map(|(file, from, to)| [*file, *from, *to])
            .collect();
        Ok(Self {
            kwok: module.version("sigs.k8s.io/kwok")?,
            module_hash: fnv1a(
                hash.iter()
                    .chain(overlay.iter())
                    .chain(patches.as_bytes().iter()),
            ),
        })
    }

    /// The cache directory's name for this pin.
    pub fn cache_key(&self) -> String {
        format!("kwok-{}-{:08x}", self.kwok, self.module_hash as u32)
    }
}

/// Our additions to KWOK: (file relative to `xtask/kwok`, in a directory
/// starting with `_`, which Go tooling ignores; where it goes in the KWOK
/// module). [`ensure_with`] builds kwok from a patched copy of the pinned
/// source (a copy made for each build, never committed). Each file says
/// which upstream gap it fills:
/// - `exit_code.go`: a local command's exit code reaches the client (KWOK
///   v0.8.0 loses it);
/// - `tty.go`: a TTY exec's command gets the pseudo-terminal as its
///   controlling terminal (Ctrl-C interrupts it), its last output is not
///   lost when it exits, and its exit code is reported;
/// - `controlling_terminal.go`: the option of KWOK's exec helper that
///   `tty.go` uses to start the command in a new session on the terminal;
/// - `attach.go`: an attach rule whose `logsFile` is a Unix socket connects
///   to the process behind it (see [`crate::attach`]) instead of following
///   a file (KWOK's attach has no process: no stdin, no resize).
pub const KWOK_OVERLAY: [(&str, &str); 4] = [
    (
        "_overlay/exit_code.go",
        "pkg/kwok/server/zz_kube_testenv_exit_code.go",
    ),
    ("_overlay/tty.go", "pkg/kwok/server/zz_kube_testenv_tty.go"),
    (
        "_overlay/controlling_terminal.go",
        "pkg/utils/exec/zz_kube_testenv_controlling_terminal.go",
    ),
    (
        "_overlay/attach.go",
        "pkg/kwok/server/zz_kube_testenv_attach.go",
    ),
];

/// The upstream statements the patch rewrites: (file in the KWOK module,
/// statement, replacement). The exec handler returns a command's error
/// through `kubeTestenvExitCode` (so its exit code reaches the client); a
/// piped stdin is closed when the client's stdin ends (KWOK v0.8.0 never
/// closes it, so `echo x | kubectl exec -i pod -- cat` hangs for ever); a
/// TTY exec runs through `kubeTestenvExecWithTTY` (`_overlay/tty.go`); and
/// KWOK's exec helper applies the controlling-terminal option before it
/// starts a command; an attach to a Unix socket goes to
/// `kubeTestenvAttachProcess` (`_overlay/attach.go`).
const KWOK_PATCHES: [(&str, &str, &str); 5] = [
    (
        "pkg/kwok/server/debugging_exec.go",
        "err := utilsexec.Exec(ctx, cmd[0], cmd[1:]...)\n\tif err != nil {\n\t\treturn err\n",
        "err := utilsexec.Exec(ctx, cmd[0], cmd[1:]...)\n\tif err != nil {\n\t\treturn kubeTestenvExitCode(err)\n",
    ),
    (
        "pkg/kwok/server/debugging_exec.go",
        "return s.execInContainerWithTTY(ctx, cmd, in, stdout, resize)\n",
        "return s.kubeTestenvExecWithTTY(ctx, cmd, in, stdout, resize)\n",
    ),
    (
        "pkg/utils/exec/exec.go",
        "_, _ = io.Copy(inPipe, opt.In)\n",
        "_, _ = io.Copy(inPipe, opt.In)\n\t\t\t\t_ = inPipe.Close()\n",
    ),
    (
        "pkg/utils/exec/exec.go",
        "\tcmd.Dir = opt.Dir\n",
        "\tcmd.Dir = opt.Dir\n\tkubeTestenvControllingTerminal(ctx, cmd)\n",
    ),
    (
        "pkg/kwok/server/debugging_attach.go",
        "logsFile := attach.LogsFile\n\treturn readLogs(",
        "logsFile := attach.LogsFile\n\tif kubeTestenvIsSocket(logsFile) {\n\t\treturn kubeTestenvAttachProcess(ctx, logsFile, in, stdout, resize)\n\t}\n\treturn readLogs(",
    ),
];

/// Prepares `dir/src`, a build module for kwok, and returns it: `xtask/kwok`'s
/// go.mod and go.sum with `sigs.k8s.io/kwok` replaced by `./kwok`, a copy of
/// the pinned KWOK source (from Go's module cache, which must not be
/// edited) in which [`KWOK_PATCHES`] call the functions that
/// [`KWOK_OVERLAY`] adds. Nothing of this is committed; it is
/// rebuilt from the pins whenever kwok is built. Fails naming the file when
/// the upstream source is not as expected (a new pin).
fn kwok_patched_module(dir: &Path) -> Result<PathBuf> {
    let module = kwok_module_dir();
    let bad = |reason: String| Error::Build {
        binary: "kwok",
        reason,
        log: dir.join("kwok.build.log"),
        tail: String::new(),
    };
    let go = || Command::new(std::env::var_os("GO").unwrap_or_else(|| "go".into()));
    let out = go()
        .args(["mod", "download", "-json", "sigs.k8s.io/kwok"])
        .current_dir(&module)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| bad(format!("cannot run `go mod download`: {e}")))?;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        bad(format!(
            "`go mod download -json sigs.k8s.io/kwok` said {}: {e}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    let upstream = info["Dir"]
        .as_str()
        .ok_or_else(|| bad(format!("no Dir in `go mod download` output: {info}")))?;
    let build = dir.join("src");
    let _ = std::fs::remove_dir_all(&build);
    std::fs::create_dir_all(&build).map_err(io("create directory", &build))?;
    let copy = build.join("kwok");
    let status = Command::new("cp")
        .args(["-R", "--no-preserve=mode,ownership", upstream])
        .arg(&copy)
        .status()
        .map_err(|e| bad(format!("cannot run cp: {e}")))?;
    if !status.success() {
        return Err(bad(format!("copying {upstream} failed: {status}")));
    }
    for (file, statement, fixed) in KWOK_PATCHES {
        let path = copy.join(file);
        let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
        if text.matches(statement).count() != 1 {
            return Err(bad(format!(
                "{upstream}/{file} does not contain exactly one `{}`: \
                 update KWOK_PATCHES for this KWOK version",
                statement.replace('\n', " ").replace('\t', "")
            )));
        }
        std::fs::write(&path, text.replace(statement, fixed)).map_err(io("write", &path))?;
    }
    for (source, target) in KWOK_OVERLAY {
        let added = module.join(source);
        std::fs::copy(&added, copy.join(target)).map_err(io("copy", &added))?;
    }
    let gomod = std::fs::read_to_string(module.join("go.mod")).map_err(io("read", &module))?;
    let gomod = format!("{gomod}\nreplace sigs.k8s.io/kwok => ./kwok\n");
    std::fs::write(build.join("go.mod"), gomod).map_err(io("write", &build))?;
    std::fs::copy(module.join("go.sum"), build.join("go.sum")).map_err(io("copy", &module))?;
    Ok(build)
}

/// A Go module's go.mod text and a hash of go.mod and go.sum.
struct GoModule {
    path: PathBuf,
    gomod: String,
    hash: u64,
}

impl GoModule {
    fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("go.mod");
        let gomod = std::fs::read_to_string(&path).map_err(io("read", &path))?;
        let gosum = std::fs::read(dir.join("go.sum")).map_err(io("read", dir.join("go.sum")))?;
        let hash = fnv1a(gomod.as_bytes().iter().chain(gosum.iter()));
        Ok(Self { path, gomod, hash })
    }

    /// The required version of `module`.
    fn version(&self, module: &str) -> Result<String> {
        self.gomod
            .lines()
            .map(|l| l.trim().trim_start_matches("require").trim())
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(module))
                    .then(|| words.next().map(str::to_string))
                    .flatten()
            })
            .ok_or_else(|| Error::Pins {
                path: self.path.clone(),
                reason: format!("no version for {module}"),
            })
    }
}

fn fnv1a<'a>(bytes: impl Iterator<Item = &'a u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The root of the binary cache.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBE_TESTENV_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("kube-testenv")
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Binaries named by the environment (envtest's variables), if any.
pub fn from_environment() -> Result<Option<Binaries>> {
    from_variables(|var| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// [`from_environment`] over any source of variables (for tests).
fn from_variables(get: impl Fn(&str) -> Option<PathBuf>) -> Result<Option<Binaries>> {
    let assets = get("KUBEBUILDER_ASSETS");
    let pick = |single: &'static str, file: &str| -> Result<Option<PathBuf>> {
        let (var, path) = match (get(single), &assets) {
            (Some(path), _) => (single, path),
            (None, Some(dir)) => ("KUBEBUILDER_ASSETS", dir.join(file)),
            (None, None) => return Ok(None),
        };
        if executable(&path) {
            Ok(Some(path))
        } else {
            Err(Error::MissingAsset { var, path })
        }
    };
    // Optional: a KUBEBUILDER_ASSETS directory without one is fine (envtest's
    // downloads have none), but a variable naming a missing file is not.
    let optional = |single: &'static str, file: &str| -> Result<Option<PathBuf>> {
        match get(single) {
            Some(_) => pick(single, file),
            None => Ok(assets
                .as_ref()
                .map(|dir| dir.join(file))
                .filter(|path| executable(path))),
        }
    };
    let kube_apiserver = pick("TEST_ASSET_KUBE_APISERVER", "kube-apiserver")?;
    let etcd = pick("TEST_ASSET_ETCD", "etcd")?;
    let kube_controller_manager = optional(
        "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
        "kube-controller-manager",
    )?;
    let kube_scheduler = optional("TEST_ASSET_KUBE_SCHEDULER", "kube-scheduler")?;
    let kwok = optional("TEST_ASSET_KWOK", "kwok")?;
    Ok(match (kube_apiserver, etcd) {
        (Some(kube_apiserver), Some(etcd)) => Some(Binaries {
            kube_apiserver,
            etcd,
            kube_controller_manager,
            kube_scheduler,
            kwok,
        }),
        _ => None,
    })
}

/// The cache directory for the current pins.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(cache_root().join(Pins::read()?.cache_key()))
}

/// The cache directory for the current KWOK pin.
pub fn kwok_cache_dir() -> Result<PathBuf> {
    Ok(cache_root().join(KwokPins::read()?.cache_key()))
}

/// Finds kube-apiserver and etcd, building them if needed, and reports the
/// optional binaries that are already at hand (never building one).
/// `progress` receives one line per step, for people watching a first build.
pub fn ensure(progress: impl FnMut(&str)) -> Result<(Binaries, Provenance)> {
    ensure_with(Wanted::default(), progress)
}

/// Which wanted optional binary is missing from `found`, with the variable
/// that would name it.
fn missing_from_environment(
    found: &Binaries,
    wanted: Wanted,
) -> Option<(&'static str, &'static str)> {
    [
        (
            wanted.controller_manager && found.kube_controller_manager.is_none(),
            "kube-controller-manager",
            "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
        ),
        (
            wanted.scheduler && found.kube_scheduler.is_none(),
            "kube-scheduler",
            "TEST_ASSET_KUBE_SCHEDULER",
        ),
        (
            wanted.kwok && found.kwok.is_none(),
            "kwok",
            "TEST_ASSET_KWOK",
        ),
    ]
    .into_iter()
    .find_map(|(missing, binary, var)| missing.then_some((binary, var)))
}

/// [`ensure`], and also provides (building if needed) what `wanted` asks for.
pub fn ensure_with(
    wanted: Wanted,
    mut progress: impl FnMut(&str),
) -> Result<(Binaries, Provenance)> {
    if let Some(found) = from_environment()? {
        if let Some((binary, var)) = missing_from_environment(&found, wanted) {
            if binary == "kube-controller-manager" {
                return Err(Error::NoControllerManager {
                    reason: "the environment names kube-apiserver and etcd (KUBEBUILDER_ASSETS or \
                             TEST_ASSET_*) but no kube-controller-manager: set \
                             TEST_ASSET_KUBE_CONTROLLER_MANAGER or put one in KUBEBUILDER_ASSETS",
                });
            }
            return Err(Error::MissingBinary {
                binary,
                reason: format!(
                    "the environment names kube-apiserver and etcd (KUBEBUILDER_ASSETS or \
                     TEST_ASSET_*) but no {binary}: set {var} or put one in KUBEBUILDER_ASSETS"
                ),
            });
        }
        return Ok((found, Provenance::Environment));
    }
    let pins = Pins::read()?;
    let dir = cache_root().join(pins.cache_key());
    let controller_manager = dir.join("kube-controller-manager");
    let scheduler = dir.join("kube-scheduler");
    let kwok_pins = KwokPins::read()?;
    let kwok_dir = cache_root().join(kwok_pins.cache_key());
    let kwok = kwok_dir.join("kwok");
    let mut found = Binaries {
        kube_apiserver: dir.join("kube-apiserver"),
        etcd: dir.join("etcd"),
        kube_controller_manager: None,
        kube_scheduler: None,
        kwok: None,
    };
    let complete = |found: &mut Binaries| {
        let present = |path: &PathBuf| executable(path).then(|| path.clone());
        found.kube_controller_manager = present(&controller_manager);
        found.kube_scheduler = present(&scheduler);
        found.kwok = present(&kwok);
        executable(&found.kube_apiserver)
            && executable(&found.etcd)
            && missing_from_environment(found, wanted).is_none()
    };
    if complete(&mut found) {
        return Ok((found, Provenance::Cached));
    }
    let started = Instant::now();
    {
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        // One builder at a time per cache entry, across processes.
        let lock_path = dir.join(".lock");
        let lock = std::fs::File::create(&lock_path).map_err(io("create", &lock_path))?;
        lock.lock().map_err(io("lock", &lock_path))?;
        let mut builds = vec![
            ("etcd", "go.etcd.io/etcd/server/v3", found.etcd.clone()),
            (
                "kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-apiserver",
                found.kube_apiserver.clone(),
            ),
        ];
        if wanted.controller_manager {
            builds.push((
                "kube-controller-manager",
                CONTROLLER_MANAGER_PACKAGE,
                controller_manager.clone(),
            ));
        }
        if wanted.scheduler {
            builds.push(("kube-scheduler", SCHEDULER_PACKAGE, scheduler.clone()));
        }
        for (binary, package, target) in builds {
            if executable(&target) {
                continue;
            }
            progress(&format!(
                "building {binary} (kubernetes {}, etcd {}) with go build; the first build takes several minutes",
                pins.kubernetes, pins.etcd
            ));
            go_build(
                binary,
                package,
                &target,
                &module_dir(),
                &["-ldflags", &pins.ldflags()],
            )?;
        }
    }
    if wanted.kwok && !executable(&kwok) {
        std::fs::create_dir_all(&kwok_dir).map_err(io("create directory", &kwok_dir))?;
        let lock_path = kwok_dir.join(".lock");
        let lock = std::fs::File::create(&lock_path).map_err(io("create", &lock_path))?;
        lock.lock().map_err(io("lock", &lock_path))?;
        if !executable(&kwok) {
            progress(&format!(
                "building kwok {} with go build; the first build takes several minutes",
                kwok_pins.kwok
            ));
            let source = kwok_patched_module(&kwok_dir)?;
            go_build("kwok", KWOK_PACKAGE, &kwok, &source, &["-ldflags", "-s -w"])?;
        }
    }
    complete(&mut found);
    Ok((found, Provenance::Built(started.elapsed())))
}

fn go_build(
    binary: &'static str,
    package: &str,
    target: &Path,
    module: &Path,
    flags: &[&str],
) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let log = dir.join(format!("{binary}.build.log"));
    let tmp = dir.join(format!(".{binary}.partial"));
    let log_file = std::fs::File::create(&log).map_err(io("create", &log))?;
    let log_err = log_file.try_clone().map_err(io("open", &log))?;
    let failed = |reason: String| Error::Build {
        binary,
        reason,
        log: log.clone(),
        tail: log_tail(&log, 30),
    };
    let mut child = Command::new(std::env::var_os("GO").unwrap_or_else(|| "go".into()))
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&tmp)
        .arg(package)
        .current_dir(module)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| {
            failed(format!(
                "cannot run `go` (is Go installed and on PATH?): {e}"
            ))
        })?;
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| failed(e.to_string()))? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "timed out after {} minutes",
                    BUILD_TIMEOUT.as_secs() / 60
                )));
            }
            None => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    if !status.success() {
        return Err(failed(format!("go build exited with {status}")));
    }
    std::fs::rename(&tmp, target).map_err(io("rename", &tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_come_from_the_go_module() {
        let pins = Pins::read().unwrap();
        assert!(pins.kubernetes.starts_with("v1."), "{pins:?}");
        assert!(pins.etcd.starts_with("v3."), "{pins:?}");
        assert!(pins.cache_key().contains(&pins.kubernetes));
    }

    #[test]
    fn ldflags_stamp_the_version() {
        let pins = Pins {
            kubernetes: "v1.37.2".into(),
            etcd: "v3.7.0".into(),
            module_hash: 1,
        };
        let flags = pins.ldflags();
        assert!(flags.contains("gitVersion=v1.37.2"));
        assert!(flags.contains("gitMajor=1 "));
        assert!(flags.contains("gitMinor=37 "));
    }

    #[test]
    fn envtest_variables() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["kube-apiserver", "etcd", "other-etcd", "my-kcm"] {
            let p = dir.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&p)
                .status()
                .unwrap();
        }
        let d = dir.path().to_path_buf();
        let vars = |pairs: Vec<(&'static str, PathBuf)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };

        let found = from_variables(vars(vec![("KUBEBUILDER_ASSETS", d.clone())]))
            .unwrap()
            .unwrap();
        assert_eq!(
            found,
            Binaries {
                kube_apiserver: d.join("kube-apiserver"),
                etcd: d.join("etcd"),
                kube_controller_manager: None,
                kube_scheduler: None,
                kwok: None,
            },
            "an assets directory without a controller manager is still complete"
        );

        let found = from_variables(vars(vec![
            ("KUBEBUILDER_ASSETS", d.clone()),
            ("TEST_ASSET_ETCD", d.join("other-etcd")),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            found.etcd,
            d.join("other-etcd"),
            "a single-binary variable wins"
        );

        let found = from_variables(vars(vec![
            ("KUBEBUILDER_ASSETS", d.clone()),
            ("TEST_ASSET_KUBE_CONTROLLER_MANAGER", d.join("my-kcm")),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(found.kube_controller_manager, Some(d.join("my-kcm")));

        let err = from_variables(vars(vec![
            ("KUBEBUILDER_ASSETS", d.clone()),
            ("TEST_ASSET_KUBE_CONTROLLER_MANAGER", d.join("no-kcm")),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("TEST_ASSET_KUBE_CONTROLLER_MANAGER points at") && err.contains("no-kcm"),
            "{err}"
        );

        let with_kcm = tempfile::tempdir().unwrap();
        for name in ["kube-apiserver", "etcd", "kube-controller-manager"] {
            let p = with_kcm.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&p)
                .status()
                .unwrap();
        }
        let found = from_variables(vars(vec![(
            "KUBEBUILDER_ASSETS",
            with_kcm.path().to_path_buf(),
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(
            found.kube_controller_manager,
            Some(with_kcm.path().join("kube-controller-manager"))
        );

        assert_eq!(from_variables(vars(vec![])).unwrap(), None);
        let err = from_variables(vars(vec![("KUBEBUILDER_ASSETS", d.join("nope"))]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("KUBEBUILDER_ASSETS points at") && err.contains("nope/kube-apiserver"),
            "{err}"
        );
    }

    #[test]
    fn hash_changes_with_content() {
        assert_ne!(fnv1a(b"a".iter()), fnv1a(b"b".iter()));
    }
}
