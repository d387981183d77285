//! The targets as ordinary `cargo test` cases: a few hundred generated
//! inputs each, every corpus seed, proof that the generators reach the
//! interesting paths (not only the error paths), and that the runner
//! catches, counts and saves a panicking case.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kube_client::watch::{WatchEvent, decode_events};
use kube_config::{Config, Kubeconfig, KubeconfigOptions};
use kube_fuzz::runner::{fuzz_target, load_seeds, quiet_panics, run_case};
use kube_fuzz::targets::{self, Target, exec, kubeconfig, segment, status, watch, watch_protobuf};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kubeconfig_documents(input in kubeconfig::document()) {
        kubeconfig::check(&input);
    }

    #[test]
    fn watch_bodies(input in watch::body()) {
        watch::check(&input);
    }

    #[test]
    fn protobuf_watch_bodies(input in watch_protobuf::body()) {
        watch_protobuf::check(&input);
    }

    #[test]
    fn status_bodies(input in status::body()) {
        status::check(&input);
    }

    #[test]
    fn exec_outputs(input in exec::output()) {
        exec::check(&input);
    }

    #[test]
    fn path_segments(input in segment::value()) {
        segment::check(input.as_bytes());
    }
}

#[test]
fn every_seed_passes() {
    for target in targets::all() {
        let seeds = load_seeds(&corpus(), target.name).unwrap();
        assert!(
            seeds.len() >= 3,
            "{}: only {} seeds",
            target.name,
            seeds.len()
        );
        for seed in &seeds {
            (target.check)(seed);
        }
    }
    kubeconfig::remove_sandbox();
}

fn sample<S: Strategy<Value = Vec<u8>>>(strategy: S, n: usize) -> Vec<Vec<u8>> {
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

fn count(map: &mut BTreeMap<String, usize>, key: impl Into<String>) {
    *map.entry(key.into()).or_default() += 1;
}

#[test]
fn kubeconfig_generator_reaches_every_kind_of_user() {
    let mut seen = BTreeMap::new();
    for doc in sample(kubeconfig::document(), 400) {
        let Ok(kc) = Kubeconfig::from_yaml(std::str::from_utf8(&doc).unwrap()) else {
            count(&mut seen, "parse error");
            continue;
        };
        for c in &kc.contexts {
            let options = KubeconfigOptions {
                context: Some(c.name.clone()),
                ..Default::default()
            };
            match Config::from_kubeconfig(&kc, &options) {
                Ok(config) => {
                    count(&mut seen, format!("ok {}", config.auth.kind()));
                    if config.identity.is_some() {
                        count(&mut seen, "ok identity");
                    }
                    if config.root_certs.is_some() {
                        count(&mut seen, "ok ca");
                    }
                    if config.proxy_url.is_some() {
                        count(&mut seen, "ok proxy");
                    }
                }
                Err(_) => count(&mut seen, "resolve error"),
            }
        }
    }
    for kind in [
        "ok token",
        "ok basic",
        "ok exec",
        "ok oidc",
        "ok none",
        "ok identity",
        "ok ca",
        "ok proxy",
        "resolve error",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 2,
            "{kind} is rare: {seen:?}"
        );
    }
}

#[test]
fn watch_generator_makes_every_event_and_bad_lines() {
    let mut seen = BTreeMap::new();
    for body in sample(watch::body(), 300) {
        let chunks = futures::stream::iter([Ok::<_, kube_client::Error>(bytes::Bytes::from(body))]);
        let stream = decode_events::<serde_json::Value, _, _>("u".into(), chunks);
        let items = watch::drain(stream);
        for item in items {
            count(
                &mut seen,
                match item {
                    Ok(WatchEvent::Added(_)) => "added",
                    Ok(WatchEvent::Modified(_)) => "modified",
                    Ok(WatchEvent::Deleted(_)) => "deleted",
                    Ok(WatchEvent::Bookmark(b)) if b.is_initial_events_end() => {
                        "initial-events-end"
                    }
                    Ok(WatchEvent::Bookmark(_)) => "bookmark",
                    Ok(WatchEvent::Error(_)) => "error event",
                    Err(kube_client::Error::Decode { .. }) => "bad line",
                    Err(_) => "cut",
                },
            );
        }
    }
    for kind in [
        "added",
        "modified",
        "deleted",
        "initial-events-end",
        "bookmark",
        "error event",
        "bad line",
        "cut",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 5,
            "{kind} is rare: {seen:?}"
        );
    }
}

#[test]
fn protobuf_watch_generator_makes_every_event_and_bad_frames() {
    let mut seen = BTreeMap::new();
    for body in sample(watch_protobuf::body(), 300) {
        let chunks = futures::stream::iter([Ok::<_, kube_client::Error>(bytes::Bytes::from(body))]);
        let stream = kube_client::watch::decode_protobuf_events_with_limit::<
            k8s_openapi::api::core::v1::ConfigMap,
            _,
            _,
        >("u".into(), chunks, 1 << 20)
        .unwrap();
        for item in watch::drain(stream) {
            count(
                &mut seen,
                match item {
                    Ok(WatchEvent::Added(_)) => "added",
                    Ok(WatchEvent::Modified(_)) => "modified",
                    Ok(WatchEvent::Deleted(_)) => "deleted",
                    Ok(WatchEvent::Bookmark(b)) if b.is_initial_events_end() => {
                        "initial-events-end"
                    }
                    Ok(WatchEvent::Bookmark(_)) => "bookmark",
                    Ok(WatchEvent::Error(_)) => "error event",
                    Err(kube_client::Error::Decode { .. }) => "bad frame",
                    Err(kube_client::Error::TooLarge { .. }) => "too large",
                    Err(_) => "cut",
                },
            );
        }
    }
    for kind in [
        "added",
        "modified",
        "deleted",
        "initial-events-end",
        "bookmark",
        "error event",
        "bad frame",
        "cut",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 5,
            "{kind} is rare: {seen:?}"
        );
    }
}

#[test]
fn exec_generator_reaches_tokens_identities_and_errors() {
    let kc = Kubeconfig::from_yaml(
        "clusters: [{name: c, cluster: {server: 'https://h'}}]\n\
         users: [{name: u, user: {exec: {command: /nonexistent, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never}}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    let kube_config::Auth::Exec(provider) = Config::from_kubeconfig(&kc, &Default::default())
        .unwrap()
        .auth
    else {
        panic!("not an exec user");
    };
    let mut seen = BTreeMap::new();
    for out in sample(exec::output(), 600) {
        match provider.parse_output(&out) {
            Ok(c) => {
                count(
                    &mut seen,
                    if c.identity.is_some() {
                        "identity"
                    } else {
                        "token"
                    },
                );
                if c.expires_at.is_some() {
                    count(&mut seen, "expiry");
                }
            }
            Err(_) => count(&mut seen, "error"),
        }
    }
    for kind in ["identity", "token", "expiry", "error"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 5,
            "{kind} is rare: {seen:?}"
        );
    }
}

#[test]
fn status_generator_reaches_api_and_plain_errors() {
    let mut api = 0;
    let mut plain = 0;
    for body in sample(status::body(), 300) {
        match kube_client::Error::from_error_response("GET", "u", 500, &body, None) {
            kube_client::Error::Api { .. } => api += 1,
            _ => plain += 1,
        }
    }
    assert!(api >= 100 && plain >= 30, "api {api}, plain {plain}");
}

fn planted(input: &[u8]) {
    assert!(!input.contains(&b'!'), "found the planted byte");
}

#[test]
fn the_runner_catches_counts_and_saves_panics() {
    let target = Target {
        name: "planted",
        about: "panics on `!`",
        check: planted,
        strategy: || prop::collection::vec(any::<u8>(), 0..8).boxed(),
        dictionary: &[b"!"],
    };
    let dir = tempfile::tempdir().unwrap();
    let report = {
        let _quiet = quiet_panics();
        fuzz_target(
            &target,
            &[b"seed".to_vec(), b"bad!".to_vec()],
            Duration::from_millis(300),
            1,
            dir.path(),
        )
    };
    assert_eq!(report.seeds, 2);
    assert!(report.generated > 10 && report.mutated > 10, "{report:?}");
    assert!(report.panics >= 2, "{report:?}");
    assert!(
        report.messages[0].contains("found the planted byte"),
        "{:?}",
        report.messages
    );
    assert!(
        report.messages[0].contains("properties.rs"),
        "no location: {:?}",
        report.messages
    );
    let saved = std::fs::read(&report.saved[0]).unwrap();
    assert!(saved.contains(&b'!'));
    assert!(run_case(planted, &saved).is_some());
    assert!(run_case(planted, b"fine").is_none());
}
