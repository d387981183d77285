//! The events recorder on the real control plane: repeated events become
//! one Event with a growing series (as far as the spam filter lets them),
//! different reasons make separate Events, kubectl reads the same thing
//! back, and a full queue drops instead of blocking `publish`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube_client::params::{ListParams, PostParams};
use kube_client::{Api, Client};
use kube_runtime::events::{
    EventType, NewEvent, Published, Recorder, RecorderConfig, RecorderStats, Reporter,
    object_reference,
};
use serde_json::Value;

const CONTROLLER: &str = "kube-runtime.test/events";

/// A fresh namespace with one ConfigMap to publish events about.
async fn subject(prefix: &str) -> (String, ConfigMap) {
    let ns = common::env().namespace(prefix).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let cm = cms
        .create(&PostParams::default(), &common::cm("subject"))
        .await
        .unwrap();
    (ns, cm)
}

async fn events(client: &Client, ns: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

fn count(e: &Event) -> i32 {
    e.series.as_ref().map_or(1, |s| s.count)
}

/// Waits (bounded) until the Events of `ns` satisfy `done`, and returns them.
async fn wait_events(
    client: &Client,
    ns: &str,
    what: &str,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let evs = events(client, ns).await;
        if done(&evs) {
            return evs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; events: {:?}",
            evs.iter()
                .map(|e| (e.reason.clone(), count(e)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until the recorder's statistics satisfy `done`.
async fn wait_stats(recorder: &Recorder, what: &str, done: impl Fn(&RecorderStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&recorder.stats()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            recorder.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the recorder has taken `n` events off its queue.
async fn wait_processed(recorder: &Recorder, n: u64) {
    wait_stats(recorder, "the recorder to process them", |s| {
        s.processed >= n
    })
    .await;
}

/// A recorder reporting as `instance`, its background task running.
fn running(client: Client, instance: &str, config: RecorderConfig) -> Recorder {
    let (recorder, task) = Recorder::new(client, Reporter::new(CONTROLLER, instance), config);
    tokio::spawn(task);
    recorder
}

fn unfiltered() -> RecorderConfig {
    RecorderConfig {
        spam_filter: None,
        ..RecorderConfig::default()
    }
}

/// client-go's `tools/record` spam filter (burst 25, one more per 5
/// minutes) lets 25 of 100 identical events through: one Event, count 25.
#[tokio::test]
async fn a_hundred_identical_events_make_one_event_counted_to_the_spam_limit() {
    let (ns, cm) = subject("ev-spam").await;
    let client = common::client();
    let recorder = Recorder::spawn(client.clone(), Reporter::new(CONTROLLER, "replica-1"));
    let regarding = object_reference(&cm);
    for _ in 0..100 {
        let ev = NewEvent::new(EventType::Warning, "ConfigInvalid", "Reconcile").note("bad key");
        assert_eq!(recorder.publish(&regarding, ev), Published::Queued);
    }
    wait_processed(&recorder, 100).await;
    let evs = wait_events(&client, &ns, "series count 25", |evs| {
        evs.len() == 1 && count(&evs[0]) == 25
    })
    .await;
    let e = &evs[0];
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reason.as_deref(), Some("ConfigInvalid"));
    assert_eq!(e.action.as_deref(), Some("Reconcile"));
    assert_eq!(e.note.as_deref(), Some("bad key"));
    assert_eq!(e.reporting_controller.as_deref(), Some(CONTROLLER));
    assert_eq!(e.reporting_instance.as_deref(), Some("replica-1"));
    let r = e.regarding.as_ref().unwrap();
    assert_eq!(
        (r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()),
        (
            Some("ConfigMap"),
            Some("subject"),
            cm.metadata.uid.as_deref()
        )
    );
    let series = e.series.as_ref().unwrap();
    assert!(series.last_observed_time.0 >= e.event_time.as_ref().unwrap().0);
    let stats = recorder.stats();
    assert_eq!(
        (
            stats.queued,
            stats.spam_filtered,
            stats.created,
            stats.failed
        ),
        (100, 75, 1, 0),
        "{stats:?}"
    );
    assert!(stats.patched >= 1, "{stats:?}");
    // the series stays at 25: nothing else is on its way
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = events(&client, &ns).await;
    assert_eq!(again.len(), 1);
    assert_eq!(count(&again[0]), 25);
}

/// Without the spam filter, every occurrence counts; different reasons are
/// different Events; a different note alone is the same series (client-go's
/// key has no note), keeping the first note.
#[tokio::test]
async fn series_count_every_occurrence_and_reasons_stay_apart() {
    let (ns, cm) = subject("ev-series").await;
    let client = common::client();
    let recorder = running(client.clone(), "replica-2", unfiltered());
    let regarding = object_reference(&cm);
    let ev = |reason: &str, note: &str| {
        NewEvent::new(EventType::Normal, reason, "Reconcile").note(note.to_string())
    };
    recorder.publish(&regarding, ev("Synced", "first"));
    // the first occurrence is created on its own before the rest arrive
    wait_events(&client, &ns, "the first Event", |evs| evs.len() == 1).await;
    for i in 1..100 {
        recorder.publish(&regarding, ev("Synced", &format!("number {i}")));
    }
    recorder.publish(&regarding, ev("Deleted", "other reason"));
    recorder.publish(&regarding, ev("Retried", "a"));
    recorder.publish(&regarding, ev("Retried", "b"));
    wait_processed(&recorder, 103).await;
    let evs = wait_events(&client, &ns, "three Events", |evs| {
        let by = |r: &str| {
            evs.iter()
                .find(|e| e.reason.as_deref() == Some(r))
                .map(count)
        };
        evs.len() == 3 && by("Synced") == Some(100) && by("Retried") == Some(2)
    })
    .await;
    let by = |r: &str| evs.iter().find(|e| e.reason.as_deref() == Some(r)).unwrap();
    assert_eq!(by("Synced").note.as_deref(), Some("first"));
    assert!(
        by("Deleted").series.is_none(),
        "a single occurrence has no series"
    );
    assert_eq!(by("Retried").note.as_deref(), Some("a"));
    let stats = recorder.stats();
    assert_eq!(
        (stats.created, stats.spam_filtered, stats.failed),
        (3, 0, 0)
    );
}

/// A full queue drops at once: the background task never ran, yet publish
/// returns; what was queued is written once the task runs.
#[tokio::test]
async fn a_full_queue_drops_instead_of_blocking() {
    let (ns, cm) = subject("ev-full").await;
    let client = common::client();
    let (recorder, task) = Recorder::new(
        client.clone(),
        Reporter::new(CONTROLLER, "replica-3"),
        RecorderConfig {
            queue_capacity: 5,
            ..unfiltered()
        },
    );
    let regarding = object_reference(&cm);
    let ev = || NewEvent::new(EventType::Normal, "Tick", "Reconcile");
    for _ in 0..5 {
        assert_eq!(recorder.publish(&regarding, ev()), Published::Queued);
    }
    for _ in 0..3 {
        assert_eq!(recorder.publish(&regarding, ev()), Published::QueueFull);
    }
    let stats = recorder.stats();
    assert_eq!((stats.queued, stats.dropped_queue_full), (5, 3));
    assert!(events(&client, &ns).await.is_empty());
    tokio::spawn(task);
    wait_events(&client, &ns, "the queued five", |evs| {
        evs.len() == 1 && count(&evs[0]) == 5
    })
    .await;
    // and once it drains, publishing works again
    wait_processed(&recorder, 5).await;
    assert_eq!(recorder.publish(&regarding, ev()), Published::Queued);
    wait_events(&client, &ns, "the sixth", |evs| {
        evs.len() == 1 && count(&evs[0]) == 6
    })
    .await;
}

fn find_kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL").filter(|k| !k.is_empty()) {
        return PathBuf::from(k);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|c| c.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubectl not found on PATH and KUBECTL is not set: the kubectl oracle test needs it. \
                 Install Debian's `kubernetes-client` package (apt-get install kubernetes-client), \
                 or set KUBECTL to a kubectl binary."
            )
        })
}

/// kubectl as the oracle: `kubectl get events -o json` (the core/v1 view
/// of the same objects) shows one Event for 40 identical occurrences with
/// the spam filter's count, and a separate one for another reason.
#[tokio::test]
async fn kubectl_reads_back_the_series() {
    let kubectl = find_kubectl();
    let (ns, cm) = subject("ev-kubectl").await;
    let client = common::client();
    let recorder = Recorder::spawn(client.clone(), Reporter::new(CONTROLLER, "replica-4"));
    let regarding = object_reference(&cm);
    for _ in 0..40 {
        recorder.publish(
            &regarding,
            NewEvent::new(EventType::Warning, "Failed", "Apply").note("quota exceeded"),
        );
    }
    // the spam filter's 25 tokens are spent: this one is dropped too
    recorder.publish(
        &regarding,
        NewEvent::new(EventType::Normal, "Other", "Apply"),
    );
    wait_processed(&recorder, 41).await;
    wait_events(&client, &ns, "the series at 25", |evs| {
        evs.len() == 1 && count(&evs[0]) == 25
    })
    .await;

    let home = tempfile::tempdir().unwrap();
    let out = Command::new(&kubectl)
        .env_clear()
        .env("HOME", home.path())
        .arg("--kubeconfig")
        .arg(common::env().kubeconfig())
        .args(["get", "events", "-n", &ns, "-o", "json"])
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:#?}");
    let e = &items[0];
    assert_eq!(e["reason"], "Failed");
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["action"], "Apply");
    assert_eq!(e["message"], "quota exceeded");
    assert_eq!(e["series"]["count"], 25);
    assert_eq!(e["reportingComponent"], CONTROLLER);
    assert_eq!(e["reportingInstance"], "replica-4");
    assert_eq!(e["involvedObject"]["kind"], "ConfigMap");
    assert_eq!(e["involvedObject"]["name"], "subject");
    assert_eq!(
        e["involvedObject"]["uid"].as_str(),
        cm.metadata.uid.as_deref()
    );
    let stats = recorder.stats();
    assert_eq!((stats.spam_filtered, stats.created), (16, 1), "{stats:?}");
}

/// An Event deleted on the server (or expired) while its series goes on is
/// created again, carrying the series' count.
#[tokio::test]
async fn a_vanished_event_is_created_again_with_its_count() {
    let (ns, cm) = subject("ev-gone").await;
    let client = common::client();
    let recorder = running(client.clone(), "replica-5", unfiltered());
    let regarding = object_reference(&cm);
    let ev = || NewEvent::new(EventType::Normal, "Scaled", "Reconcile");
    for _ in 0..3 {
        recorder.publish(&regarding, ev());
    }
    let evs = wait_events(&client, &ns, "a series of 3", |evs| {
        evs.len() == 1 && count(&evs[0]) == 3
    })
    .await;
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let first = evs[0].metadata.name.clone().unwrap();
    api.delete(&first, &Default::default()).await.unwrap();
    wait_events(&client, &ns, "the deletion", |evs| evs.is_empty()).await;

    recorder.publish(&regarding, ev());
    let evs = wait_events(&client, &ns, "the Event again", |evs| evs.len() == 1).await;
    assert_ne!(evs[0].metadata.name.as_deref(), Some(first.as_str()));
    assert_eq!(count(&evs[0]), 4, "the series goes on");
    let stats = recorder.stats();
    assert_eq!((stats.created, stats.failed), (2, 0), "{stats:?}");
}

/// A rejected Event (reason over the API's 128 characters) is logged and
/// counted, never retried forever, and the recorder goes on.
#[tokio::test]
async fn a_rejected_event_is_counted_and_the_recorder_goes_on() {
    let (ns, cm) = subject("ev-reject").await;
    let client = common::client();
    let recorder = running(client.clone(), "replica-6", unfiltered());
    let regarding = object_reference(&cm);
    let long = "R".repeat(200);
    assert_eq!(
        recorder.publish(
            &regarding,
            NewEvent::new(EventType::Normal, long, "Reconcile")
        ),
        Published::Queued
    );
    wait_stats(&recorder, "a failure", |s| s.failed >= 1).await;
    recorder.publish(
        &regarding,
        NewEvent::new(EventType::Normal, "Fine", "Reconcile"),
    );
    let evs = wait_events(&client, &ns, "the valid Event", |evs| evs.len() == 1).await;
    assert_eq!(evs[0].reason.as_deref(), Some("Fine"));
    let stats = recorder.stats();
    assert_eq!((stats.created, stats.failed), (1, 1), "{stats:?}");
}

/// With the API server unreachable, writes are retried `max_tries` times,
/// then given up; publish never waits meanwhile.
#[tokio::test]
async fn an_unreachable_server_costs_a_few_retries_then_the_event() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    let mut config = common::config_of(common::env().kubeconfig());
    config.cluster_url = format!("https://127.0.0.1:{port}").parse().unwrap();
    let client = kube_client::Client::builder(config)
        .retry(kube_client::client::RetryPolicy::none())
        .build()
        .unwrap();
    let recorder = running(
        client,
        "replica-7",
        RecorderConfig {
            max_tries: 3,
            retry_delay: Duration::from_millis(50),
            ..unfiltered()
        },
    );
    let regarding = object_reference(&common::cm("nowhere"));
    let started = tokio::time::Instant::now();
    for _ in 0..10 {
        let ev = NewEvent::new(EventType::Warning, "Unreachable", "Reconcile");
        assert_eq!(recorder.publish(&regarding, ev), Published::Queued);
    }
    wait_stats(&recorder, "a failure", |s| s.failed >= 1).await;
    // three tries, 50 ms apart
    assert!(started.elapsed() >= Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = recorder.stats();
    assert_eq!(
        (stats.processed, stats.created, stats.failed),
        (10, 0, 1),
        "one series, given up once: {stats:?}"
    );
}

/// Open series are written again every `series_refresh` (client-go's
/// `refreshExistingEventSeries`, every 30 minutes; 1 s here), with no new
/// occurrence: the patches are answered by the server, and an Event deleted
/// meanwhile (as if it had expired) is created again with its count and
/// last observed time. A single occurrence has no series and is not
/// refreshed.
#[tokio::test]
async fn open_series_are_refreshed_and_a_vanished_one_comes_back() {
    let (ns, cm) = subject("ev-refresh").await;
    let client = common::client();
    let recorder = running(
        client.clone(),
        "replica-8",
        RecorderConfig {
            series_refresh: Duration::from_secs(1),
            ..unfiltered()
        },
    );
    let regarding = object_reference(&cm);
    for _ in 0..3 {
        recorder.publish(
            &regarding,
            NewEvent::new(EventType::Normal, "Scaled", "Reconcile"),
        );
    }
    recorder.publish(
        &regarding,
        NewEvent::new(EventType::Normal, "Once", "Reconcile"),
    );
    let evs = wait_events(&client, &ns, "a series of 3 and a single", |evs| {
        evs.len() == 2 && evs.iter().any(|e| count(e) == 3)
    })
    .await;
    let series = evs.iter().find(|e| count(e) == 3).unwrap().clone();
    let observed = series.series.as_ref().unwrap().last_observed_time.clone();
    let patched = recorder.stats().patched;

    // two refreshes: two more patches, the Event as it was
    wait_stats(&recorder, "two refresh patches", |s| {
        s.patched >= patched + 2
    })
    .await;
    let evs = events(&client, &ns).await;
    assert_eq!(evs.len(), 2);
    let again = evs
        .iter()
        .find(|e| e.metadata.name == series.metadata.name)
        .unwrap();
    assert_eq!(again.series, series.series, "refreshed unchanged");

    // both Events vanish: the series comes back by itself, the single not
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    for e in &evs {
        api.delete(e.metadata.name.as_deref().unwrap(), &Default::default())
            .await
            .unwrap();
    }
    let evs = wait_events(&client, &ns, "the series created again", |evs| {
        evs.iter().any(|e| {
            e.reason.as_deref() == Some("Scaled") && e.metadata.name != series.metadata.name
        })
    })
    .await;
    let back = evs
        .iter()
        .find(|e| e.reason.as_deref() == Some("Scaled"))
        .unwrap();
    assert_eq!(count(back), 3);
    assert_eq!(
        back.series.as_ref().unwrap().last_observed_time,
        observed,
        "the series as it was last seen"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let evs = events(&client, &ns).await;
    let reasons: Vec<_> = evs
        .iter()
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        ["Scaled"],
        "the single occurrence is not refreshed"
    );
    let stats = recorder.stats();
    assert_eq!((stats.created, stats.failed), (3, 0), "{stats:?}");
}
