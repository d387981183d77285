//! `shutdown_on_signal`: SIGTERM lets the reconcile in flight finish and
//! ends the stream; a second signal ends it at once. Signals go to the
//! whole process, so this binary holds this one test alone.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::cm;
use common::probe::Probe;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::Api;
use kube_client::params::PostParams;
use kube_runtime::WatcherConfig;
use kube_runtime::controller::{Config, Controller, default_error_policy};

fn signal(name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn until_in_flight<S: futures::Stream + Unpin>(probe: &Probe, stream: &mut S) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while probe.max_in_flight.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        let _ = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_graceful_and_a_second_signal_is_immediate() {
    let ns = common::env().namespace("ctl-signal").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &cm("slow"))
        .await
        .unwrap();

    // One signal: the reconcile in flight (2 s) finishes, then the end.
    let probe = Probe::with_delay(Duration::from_secs(2));
    let mut stream = Box::pin(
        Controller::new(api.clone(), WatcherConfig::default())
            .shutdown_on_signal()
            .run(Probe::reconcile, default_error_policy, probe.clone()),
    );
    until_in_flight(&probe, &mut stream).await;
    signal("TERM");
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(15), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends after SIGTERM");
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].as_ref().unwrap().0.name, "slow");
    assert_eq!(probe.count("slow"), 1, "it finished");

    // Two signals: the second ends the stream at once.
    let probe = Probe::with_delay(Duration::from_secs(60));
    let mut stream = Box::pin(
        Controller::new(api.clone(), WatcherConfig::default())
            .with_config(Config::default().shutdown_timeout(Duration::from_secs(30)))
            .shutdown_on_signal()
            .run(Probe::reconcile, default_error_policy, probe.clone()),
    );
    until_in_flight(&probe, &mut stream).await;
    signal("INT");
    let _ = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    signal("TERM");
    let started = tokio::time::Instant::now();
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(5), stream.collect::<Vec<_>>())
        .await
        .expect("the second signal ends the stream at once");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(probe.count("slow"), 0, "cancelled");
}
