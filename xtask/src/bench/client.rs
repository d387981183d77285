//! Running one client process through the benchmark phases.

use super::*;

/// One client process and its protocol lines.
pub(super) struct Session {
    /// The client's name in messages (`ours-json`, `kube-rs`, …).
    pub(super) name: String,
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) lines: mpsc::Receiver<String>,
    pub(super) log: PathBuf,
}

impl Session {
    /// Starts `program args…` with `env` added to its environment, its
    /// stderr going to `log`.
    pub(super) fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Result<Self> {
        let stderr =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("start {}", program.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Session {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines: rx,
            log,
        })
    }

    pub(super) fn send(&mut self, command: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "{command}")
            .and_then(|_| stdin.flush())
            .with_context(|| format!("send `{command}` to {}", self.name))
    }

    /// Waits for the line whose `event` is `event`.
    pub(super) fn expect(&mut self, event: &str, limit: Duration) -> Result<Value> {
        self.expect_any(&[event], limit)
    }

    /// Waits for the next line, whose `event` must be one of `events`.
    pub(super) fn expect_any(&mut self, events: &[&str], limit: Duration) -> Result<Value> {
        let event = events.join("` or `");
        let line = match self.lines.recv_timeout(limit) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "no `{event}` from {} after {} s; its log {}:\n{}",
                self.name,
                limit.as_secs(),
                self.log.display(),
                tail(&self.log)
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!(
                "{} exited before `{event}` ({}); its log {}:\n{}",
                self.name,
                self.child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map_or("still running".into(), |s| s.to_string()),
                self.log.display(),
                tail(&self.log)
            ),
        };
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("{} printed a line that is not JSON: {line}", self.name))?;
        match value["event"].as_str() {
            Some(e) if events.contains(&e) => Ok(value),
            Some("error") => bail!(
                "{} failed: {}; its log {}:\n{}",
                self.name,
                value["message"],
                self.log.display(),
                tail(&self.log)
            ),
            _ => bail!("{} sent {line} while `{event}` was expected", self.name),
        }
    }

    pub(super) fn finish(mut self) -> Result<()> {
        let _ = self.send("exit");
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "{} exited with {status}", self.name);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{} did not exit within 20 s of `exit`", self.name)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Only our own child, by its handle; a no-op once it has exited.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(super) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A copy of `kubeconfig` whose cluster says `disable-compression: true`.
pub(super) fn without_compression(kubeconfig: &Path, copy: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(kubeconfig)
        .with_context(|| format!("read {}", kubeconfig.display()))?;
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if !done && line.trim_start().starts_with("server:") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}disable-compression: true\n"));
            done = true;
        }
    }
    ensure!(done, "no `server:` line in {}", kubeconfig.display());
    std::fs::write(copy, out).with_context(|| format!("write {}", copy.display()))?;
    Ok(copy.to_path_buf())
}

/// What one reflector run is about: which client, which objects, how many.
pub(super) struct Target<'a> {
    pub(super) variant: Variant,
    pub(super) resource: Resource,
    pub(super) objects: u64,
    /// The client's kubeconfig and the driver's.
    pub(super) kubeconfigs: (&'a Path, &'a Path),
}

/// A run's result: its measurements, or why the client cannot run this
/// variant (it said so before doing anything).
pub(super) enum Outcome {
    Measured(Value),
    Unavailable(String),
}

pub(super) fn run_client(
    t: &Target<'_>,
    run: usize,
    opts: &Options,
    bins: &Bins,
    plane: &ControlPlane,
    log_dir: &Path,
) -> Result<Outcome> {
    let name = t.variant.name();
    let namespace = t.resource.namespace();
    let (client_kubeconfig, kubeconfig) = t.kubeconfigs;
    let log = log_dir.join(format!(
        "{name}-{}-{}-run{run}.log",
        t.resource.name(),
        t.objects
    ));
    let limit = Duration::from_secs(bins.timeout_secs);
    let spawned = Instant::now();
    let args = [
        "--kubeconfig".to_string(),
        client_kubeconfig.display().to_string(),
        "--namespace".into(),
        namespace.into(),
        "--objects".into(),
        t.objects.to_string(),
        "--mods".into(),
        opts.mods.to_string(),
        "--timeout-secs".into(),
        bins.timeout_secs.to_string(),
        "--resource".into(),
        t.resource.name().into(),
    ];
    let env = [
        ("BENCH_ENCODING", t.variant.encoding.name()),
        ("BENCH_STORE", t.variant.store()),
    ];
    let mut s = Session::spawn(&name, &bins.path(t.variant.kind.binary()), &args, &env, log)?;

    let first = s.expect_any(&["synced", "unavailable"], limit)?;
    if first["event"] == "unavailable" {
        let reason = first["reason"]
            .as_str()
            .unwrap_or("no reason given")
            .to_string();
        s.finish()?;
        return Ok(Outcome::Unavailable(reason));
    }
    let synced = first;
    let observed_sync_ms = spawned.elapsed().as_secs_f64() * 1e3;
    ensure!(
        synced["objects"].as_u64() == Some(t.objects),
        "{name} synced {} objects, expected {}",
        synced["objects"],
        t.objects
    );

    let relist = if opts.relist {
        s.send("relist")?;
        s.expect("relist_armed", Duration::from_secs(30))?;
        let started = Instant::now();
        plane.compact_etcd().context("compact etcd")?;
        plane.stop_apiserver();
        plane.start_apiserver().context("restart kube-apiserver")?;
        let restart_ms = started.elapsed().as_secs_f64() * 1e3;
        let ready = Instant::now();
        let relisted = s.expect("relisted", limit)?;
        let after_restart_ms = ready.elapsed().as_secs_f64() * 1e3;
        ensure!(
            relisted["objects"].as_u64() == Some(t.objects),
            "{name} holds {} objects after the relist, expected {}",
            relisted["objects"],
            t.objects
        );
        let peak = relisted["peak_rss_kib"].as_f64().unwrap_or(f64::NAN);
        let steady = relisted["steady_rss_kib"].as_f64().unwrap_or(f64::NAN);
        json!({
            "steady_rss_kib": steady,
            "peak_rss_kib": peak,
            "peak_over_steady": peak / steady,
            "relist_ms": relisted["relist_ms"],
            "after_restart_ms": after_restart_ms,
            "restart_ms": restart_ms,
        })
    } else {
        Value::Null
    };

    s.send("mods")?;
    s.expect("mods_armed", Duration::from_secs(30))?;
    let mutated = bins.driver_in(
        "mutate",
        kubeconfig,
        namespace,
        &[
            ("--objects", t.objects.to_string()),
            ("--mods", opts.mods.to_string()),
            ("--concurrency", "16".into()),
            ("--tag", format!("{name}-{}-{run}", t.objects)),
            ("--resource", t.resource.name().into()),
        ],
    )?;
    let watched = s.expect("watched", limit)?;
    let events = watched["events"].as_f64().unwrap_or(f64::NAN);
    let cpu_ms = watched["cpu_ms"].as_f64().unwrap_or(f64::NAN);
    s.finish()?;

    // What the cache holds per object: the RSS with the cache full minus
    // the RSS with the client built and nothing listed yet.
    let rss = synced["rss_kib"].as_f64().unwrap_or(f64::NAN);
    let baseline = synced["baseline_rss_kib"].as_f64().unwrap_or(f64::NAN);
    let held = (rss - baseline) * 1024.0 / t.objects as f64;
    Ok(Outcome::Measured(json!({
        "run": run,
        "sync": {
            "elapsed_ms": synced["elapsed_ms"],
            "observed_ms": observed_sync_ms,
            "peak_rss_kib": synced["peak_rss_kib"],
            "rss_kib": synced["rss_kib"],
            "baseline_rss_kib": synced["baseline_rss_kib"],
            "held_bytes_per_object": if held.is_finite() { json!(held) } else { Value::Null },
            "cpu_ms": synced["cpu_ms"],
            "objects": synced["objects"],
            "client_go_watch_list": synced.get("watch_list"),
            "client_go_atomic_fifo": synced.get("atomic_fifo"),
        },
        "relist": relist,
        "watch": {
            "events": events,
            "cpu_ms": cpu_ms,
            "cpu_us_per_event": cpu_ms * 1e3 / events,
            "wall_ms": watched["wall_ms"],
            "mutate_ms": mutated["ms"],
        },
    })))
}

pub(super) fn summary(name: &str, run: usize, r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let relist = if r["relist"].is_null() {
        String::new()
    } else {
        format!(
            ", relist peak {:.2}× steady",
            f(&r["relist"]["peak_over_steady"])
        )
    };
    format!(
        "run {run} {name:<18}: sync {:.0} ms, peak RSS {:.1} MiB, held {:.0} B/object{relist}, watch {:.1} µs CPU/event",
        f(&r["sync"]["elapsed_ms"]),
        f(&r["sync"]["peak_rss_kib"]) / 1024.0,
        f(&r["sync"]["held_bytes_per_object"]),
        f(&r["watch"]["cpu_us_per_event"]),
    )
}
