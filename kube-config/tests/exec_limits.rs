//! Exec credential plugins under stress, with real processes (small /bin/sh
//! scripts in temp dirs): a hung plugin is timed out and killed, concurrent
//! callers share one run, a cached credential is served while a run is under
//! way, failures show stderr's tail but never stdout, and endless output is
//! cut off.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::write;
use kube_config::{Auth, Config, EXEC_MAX_STDOUT, Error, KubeconfigLoader, KubeconfigOptions};

/// Writing an executable while another thread forks can make exec fail with
/// ETXTBSY; the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const V1: &str = "client.authentication.k8s.io/v1";

/// Writes `dir/plugin.sh` (`body` after the shebang) and a kubeconfig whose
/// user runs it; returns the resolved config.
fn plugin(dir: &Path, body: &str) -> (Config, PathBuf) {
    let script = write(dir, "plugin.sh", format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let yaml = format!(
        "clusters: [{{name: c, cluster: {{server: 'https://k.example:6443'}}}}]\n\
         contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n\
         current-context: x\n\
         users: [{{name: u, user: {{exec: {{command: '{}', apiVersion: {V1}, interactiveMode: Never}}}}}}]\n",
        script.display()
    );
    let path = write(dir, "config", yaml);
    let kc = KubeconfigLoader::new()
        .with_kubeconfig_env(path.as_os_str())
        .load()
        .expect("load");
    let config = Config::from_kubeconfig(&kc, &KubeconfigOptions::default()).expect("config");
    (config, script)
}

/// Shell lines printing an ExecCredential with `token`, valid until 2099.
fn print_token(token: &str) -> String {
    format!(
        "printf '{{\"kind\":\"ExecCredential\",\"apiVersion\":\"{V1}\",\"status\":{{\"token\":\"{token}\",\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}}}'\n"
    )
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("count"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn read_pid(dir: &Path, name: &str) -> u32 {
    std::fs::read_to_string(dir.join(name))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

/// The process state letter from /proc (`None`: no such process).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits up to 2 s for `pid` to stop running (gone, or a zombie of a parent
/// other than us).
fn assert_stops_running(pid: u32, what: &str) {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        match proc_state(pid) {
            None | Some('Z') | Some('X') => return,
            Some(state) if Instant::now() >= until => {
                panic!("{what} (pid {pid}) still running, state {state}")
            }
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn token_of(result: Result<Option<kube_config::Credential>, Error>) -> String {
    result
        .expect("credential")
        .expect("some")
        .token
        .expect("token")
        .expose()
        .to_owned()
}

#[test]
fn hung_plugin_times_out_and_is_killed() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let (config, script) = plugin(
        dir.path(),
        &format!(
            "echo $$ > '{d}/pid'\n\
             sleep 30 &\n\
             echo $! > '{d}/helper-pid'\n\
             echo 'waiting for the identity provider' >&2\n\
             wait\n"
        ),
    );
    let config = config.with_exec_timeout(Some(Duration::from_millis(600)));
    let started = Instant::now();
    let err = config.auth.current_credential().expect_err("timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let Error::ExecTimeout {
        command,
        timeout,
        stderr,
        ..
    } = &err
    else {
        panic!("not a timeout: {err}");
    };
    assert_eq!(command, &script.display().to_string());
    assert_eq!(*timeout, Duration::from_millis(600));
    assert_eq!(stderr, "waiting for the identity provider");
    assert_eq!(
        err.to_string(),
        format!(
            "exec plugin `{}` of user `u` did not finish within 600ms and was killed; stderr: waiting for the identity provider",
            script.display()
        )
    );
    // The plugin was reaped by us: not even a zombie is left.
    let pid = read_pid(dir.path(), "pid");
    assert_eq!(proc_state(pid), None, "plugin pid {pid} left behind");
    // Its helper, in the plugin's process group, was killed too.
    assert_stops_running(read_pid(dir.path(), "helper-pid"), "the plugin's sleep");
}

#[test]
fn concurrent_callers_share_one_run_without_blocking_the_executor() {
    let _g = serial();
    // One executor thread: a caller blocking it would stop everything.
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(concurrent_callers());
}

async fn concurrent_callers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let (config, _) = plugin(
        dir.path(),
        &format!(
            "echo run >> '{d}/count'\nsleep 0.4\n{}",
            print_token("tok-SHARED")
        ),
    );
    let auth = Arc::new(config.auth);
    // Ticks while the plugin runs prove the one executor thread stays free.
    let ticks = Arc::new(AtomicU32::new(0));
    let ticker = tokio::spawn({
        let ticks = Arc::clone(&ticks);
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move { auth.current_credential_async().await })
        })
        .collect();
    let started = Instant::now();
    for caller in callers {
        assert_eq!(token_of(caller.await.expect("join")), "tok-SHARED");
    }
    let took = started.elapsed();
    assert_eq!(runs(dir.path()), 1, "20 concurrent callers, one run");
    ticker.abort();
    let ticks = ticks.load(Ordering::Relaxed);
    assert!(
        ticks >= 5,
        "the executor was blocked: {ticks} ticks in {took:?}"
    );
    // The sync path joins the same cache.
    assert_eq!(token_of(auth.current_credential()), "tok-SHARED");
    assert_eq!(runs(dir.path()), 1);
    assert!(took >= Duration::from_millis(350), "{took:?}");
}

#[test]
fn a_failed_run_is_shared_and_not_cached() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let (config, _) = plugin(
        dir.path(),
        &format!("echo run >> '{d}/count'\nsleep 0.3\necho 'login expired' >&2\nexit 4\n"),
    );
    let auth = Arc::new(config.auth);
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let auth = Arc::clone(&auth);
            std::thread::spawn(move || auth.current_credential())
        })
        .collect();
    for t in threads {
        let err = t.join().expect("join").expect_err("failure");
        assert!(
            matches!(&err, Error::ExecFailed { status, stderr, .. }
                if status == "exit status: 4" && stderr == "login expired"),
            "{err}"
        );
    }
    assert_eq!(runs(dir.path()), 1, "20 concurrent callers, one run");
    auth.current_credential().expect_err("failure");
    assert_eq!(runs(dir.path()), 2, "a failure is not cached");
}

#[test]
fn cached_credential_is_served_while_a_slow_run_is_under_way() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    write(dir.path(), "delay", "0");
    write(dir.path(), "token", "tok-FIRST");
    let (config, _) = plugin(
        dir.path(),
        &format!(
            "echo run >> '{d}/count'\n\
             sleep \"$(cat '{d}/delay')\"\n\
             tok=$(cat '{d}/token')\n\
             printf '{{\"kind\":\"ExecCredential\",\"apiVersion\":\"{V1}\",\"status\":{{\"token\":\"%s\",\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}}}' \"$tok\"\n"
        ),
    );
    let Auth::Exec(provider) = config.auth.clone() else {
        panic!("not exec");
    };
    assert_eq!(token_of(config.auth.current_credential()), "tok-FIRST");
    write(dir.path(), "delay", "3");
    write(dir.path(), "token", "tok-SECOND");
    let refresher = {
        let provider = provider.clone();
        std::thread::spawn(move || provider.refresh())
    };
    // Let the refresh start its run.
    let until = Instant::now() + Duration::from_secs(2);
    while runs(dir.path()) < 2 {
        assert!(Instant::now() < until, "the refresh did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    assert_eq!(token_of(config.auth.current_credential()), "tok-FIRST");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cached = rt.block_on(config.auth.current_credential_async());
    assert_eq!(token_of(cached), "tok-FIRST");
    let took = started.elapsed();
    // The run takes 3 s; blocking behind it would show.
    assert!(took < Duration::from_secs(1), "blocked {took:?}");

    let refreshed = refresher.join().expect("join").expect("refresh");
    assert_eq!(refreshed.token.expect("token").expose(), "tok-SECOND");
    assert_eq!(token_of(config.auth.current_credential()), "tok-SECOND");
    assert_eq!(runs(dir.path()), 2);
}

#[test]
fn failure_shows_the_stderr_tail_and_never_stdout() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _) = plugin(
        dir.path(),
        &format!(
            "{}i=1\nwhile [ $i -le 30 ]; do printf 'diag-%02d\\n' $i >&2; i=$((i+1)); done\nexit 3\n",
            print_token("tok-LEAKED")
        ),
    );
    let err = config.auth.current_credential().expect_err("failure");
    let Error::ExecFailed { stderr, .. } = &err else {
        panic!("not ExecFailed: {err}");
    };
    let last_ten: Vec<String> = (21..=30).map(|i| format!("diag-{i:02}")).collect();
    assert_eq!(stderr, &format!("…{}", last_ten.join("\n")));
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(
            shown.contains("diag-30") && shown.contains("diag-21"),
            "{shown}"
        );
        assert!(!shown.contains("diag-20"), "{shown}");
        assert!(!shown.contains("tok-LEAKED"), "{shown}");
    }
}

#[test]
fn endless_stdout_is_cut_off_at_the_limit() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let (config, script) = plugin(
        dir.path(),
        &format!("echo $$ > '{d}/pid'\nexec yes 'tok-ENDLESS-0123456789'\n"),
    );
    let started = Instant::now();
    let err = config.auth.current_credential().expect_err("too large");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(&err, Error::ExecOutputTooLarge { limit, .. } if *limit == EXEC_MAX_STDOUT),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "exec plugin `{}` of user `u` wrote more than 1048576 bytes to stdout and was killed",
            script.display()
        )
    );
    assert!(!format!("{err:?}").contains("tok-ENDLESS"));
    assert_eq!(proc_state(read_pid(dir.path(), "pid")), None);
}

#[test]
fn endless_stderr_is_drained_and_only_its_tail_kept() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _) = plugin(dir.path(), "exec yes 'noise' >&2\n");
    let config = config.with_exec_timeout(Some(Duration::from_millis(700)));
    let err = config.auth.current_credential().expect_err("timeout");
    let Error::ExecTimeout { stderr, .. } = &err else {
        panic!("not a timeout: {err}");
    };
    // Cut somewhere in the middle of the stream: at most 10 lines of noise.
    let shown = stderr.strip_prefix('…').expect("marked as cut");
    let lines: Vec<&str> = shown.lines().collect();
    assert!((1..=10).contains(&lines.len()), "{stderr}");
    assert!(
        lines
            .iter()
            .all(|l| !l.is_empty() && "noise".ends_with(l) || "noise".starts_with(l)),
        "{stderr}"
    );
    assert!(stderr.len() <= 1024 + '…'.len_utf8());
}

#[test]
fn no_timeout_waits_for_a_slow_plugin() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _) = plugin(
        dir.path(),
        &format!("sleep 0.8\n{}", print_token("tok-SLOW")),
    );
    let limited = config
        .clone()
        .with_exec_timeout(Some(Duration::from_millis(300)));
    assert!(matches!(
        limited.auth.current_credential(),
        Err(Error::ExecTimeout { .. })
    ));
    let unlimited = config.with_exec_timeout(None);
    assert_eq!(token_of(unlimited.auth.current_credential()), "tok-SLOW");
}

#[test]
fn a_late_rejection_keeps_the_renewed_credential() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let (config, _) = plugin(
        dir.path(),
        &format!(
            "echo run >> '{d}/count'\n\
             n=$(wc -l < '{d}/count' | tr -d ' ')\n\
             printf '{{\"kind\":\"ExecCredential\",\"apiVersion\":\"{V1}\",\"status\":{{\"token\":\"tok-%s\"}}}}' \"$n\"\n"
        ),
    );
    let auth = config.auth;
    let first = auth.current_credential().expect("first").expect("some");
    assert_eq!(first.token.as_ref().expect("token").expose(), "tok-1");
    // Two requests used tok-1 and both got a 401.
    auth.invalidate_rejected(Some(&first));
    assert_eq!(token_of(auth.current_credential()), "tok-2");
    auth.invalidate_rejected(Some(&first));
    assert_eq!(token_of(auth.current_credential()), "tok-2");
    assert_eq!(runs(dir.path()), 2, "the late 401 did not rerun the plugin");
    // A plain invalidate always drops it.
    auth.invalidate();
    assert_eq!(token_of(auth.current_credential()), "tok-3");
}
