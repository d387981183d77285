//! Compact stores across a relist forced by a real API server: while the
//! cache is cut off, objects are created, modified and deleted, etcd is
//! compacted past the cache's resourceVersion and the API server restarts,
//! so the resumed watch is refused with 410 Gone and the cache relists.
//! Afterwards a compact Reflector and a compact Informer hold exactly what
//! a fresh list holds (names, resourceVersions and data), the deleted
//! objects are gone, and the changes were announced: `Deleted` for what the
//! relist no longer listed (decoded from the store's bytes), `Modified`
//! for what changed, `Added` for what was born meanwhile; a Reflector made
//! `from_informer` on the compact informer sees the same. Each test runs
//! its own control plane, since it stops servers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{cm, fast, own_control_plane, restart_apiserver};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::informer::{Informer, InformerConfig};
use kube_runtime::{Reflector, Store, WatchEvent};
use kube_testenv::ControlPlane;
use serde_json::json;

/// `name → (resourceVersion, data["k"])`: what is compared between a
/// store and the server.
type Contents = BTreeMap<String, (String, String)>;

fn contents<'a>(objects: impl IntoIterator<Item = &'a ConfigMap>) -> Contents {
    objects
        .into_iter()
        .map(|o| {
            let data = o
                .data
                .as_ref()
                .and_then(|d| d.get("k"))
                .cloned()
                .unwrap_or_default();
            (
                o.name_any().to_string(),
                (o.resource_version().unwrap_or_default().to_string(), data),
            )
        })
        .collect()
}

async fn listed(api: &Api<ConfigMap>) -> Contents {
    let items: Vec<ConfigMap> = api
        .list_stream(&ListParams::default())
        .try_collect()
        .await
        .unwrap();
    contents(&items)
}

/// The store's contents equal a fresh list's (waiting, bounded, for
/// changes in flight), and `get` agrees object by object.
async fn holds_exactly_the_listed(store: &Store<ConfigMap>, api: &Api<ConfigMap>) {
    assert!(store.is_compact());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let want = listed(api).await;
        let have = contents(store.read().iter().map(|o| &**o));
        if want == have {
            for (name, version_and_data) in &want {
                let got = store.get(Some("default"), name).expect("get finds it");
                assert_eq!(&contents([&*got])[name], version_and_data);
            }
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the compact store does not hold what the server lists:\n have {have:?}\n want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The changes made while the cache is cut off, with the names of what
/// they should announce.
async fn change_while_away(api: &Api<ConfigMap>) -> BTreeSet<String> {
    for i in 0..3 {
        api.delete(&format!("k-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    for i in 3..5 {
        api.patch(
            &format!("k-{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": format!("changed-{i}")}})),
        )
        .await
        .unwrap();
    }
    api.create(&PostParams::default(), &cm("born-while-away"))
        .await
        .unwrap();
    ["-k-0", "-k-1", "-k-2", "~k-3", "~k-4", "+born-while-away"]
        .map(String::from)
        .into()
}

/// Each change as `+name`/`~name`/`-name`; an error sets `saw_gone` if it
/// is a 410.
fn describe(
    events: impl IntoIterator<Item = WatchEvent<ConfigMap>>,
    saw_gone: &mut bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    for e in events {
        match e {
            WatchEvent::Added(o) => seen.push(format!("+{}", o.name_any())),
            WatchEvent::Modified(o) => seen.push(format!("~{}", o.name_any())),
            WatchEvent::Deleted(o) => {
                // A relist's `Deleted` carries the last state the store
                // held, decoded from its bytes: check it is a real one.
                assert!(o.data.as_ref().is_some_and(|d| d.contains_key("k")));
                seen.push(format!("-{}", o.name_any()))
            }
            WatchEvent::Error(err) => *saw_gone |= err.is_gone(),
            WatchEvent::Desynced { dropped } => panic!("desynced: {dropped} events lost"),
        }
    }
    seen
}

async fn create_initial(api: &Api<ConfigMap>) {
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("k-{i}")))
            .await
            .unwrap();
    }
}

/// Stops the watch of whatever goes through `proxy`, changes objects,
/// compacts etcd and restarts the API server (emptying its watch cache),
/// then lets the watch resume: it gets a 410 and relists. Returns the
/// restarted plane and the changes to expect.
async fn force_a_relist(
    plane: ControlPlane,
    proxy: &common::proxy::Proxy,
    direct: &Api<ConfigMap>,
) -> (ControlPlane, BTreeSet<String>) {
    proxy.disconnect();
    let expected = change_while_away(direct).await;
    plane.compact_etcd().unwrap();
    let plane = restart_apiserver(plane).await;
    proxy.resume();
    (plane, expected)
}

#[tokio::test]
async fn a_compact_reflector_relists_after_a_restart_exactly() {
    let plane = own_control_plane().await;
    let direct: Api<ConfigMap> = Api::namespaced(
        Client::try_from(common::config_of(plane.kubeconfig())).unwrap(),
        "default",
    );
    create_initial(&direct).await;
    let (proxy, through_proxy) =
        common::proxy::client_through(plane.server_url(), plane.kubeconfig()).await;
    let via_proxy: Api<ConfigMap> = Api::namespaced(through_proxy, "default");

    let mut rf = Reflector::with_config(via_proxy, fast().compact());
    rf.poll().await.unwrap();
    let mut saw_gone = false;
    assert_eq!(describe(rf.events(), &mut saw_gone).len(), 10);
    holds_exactly_the_listed(&rf.reader(), &direct).await;

    let (plane, expected) = force_a_relist(plane, &proxy, &direct).await;
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !expected.is_subset(&seen) || rf.reader().lists_completed() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {seen:?}"
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), rf.poll()).await;
        seen.extend(describe(rf.events_iter(), &mut saw_gone));
    }
    assert_eq!(seen, expected, "exactly the changes made while away");
    assert!(saw_gone, "the resume was refused with 410 and it relisted");
    assert_eq!(rf.reader().lists_completed(), 2, "one list, one relist");
    holds_exactly_the_listed(&rf.reader(), &direct).await;
    for gone in ["k-0", "k-1", "k-2"] {
        assert!(rf.reader().get(Some("default"), gone).is_none(), "{gone}");
    }
    assert_eq!(rf.reader().len(), 8);

    // The watch after the relist goes on: a change on each side of it.
    direct
        .patch(
            "k-5",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "after-relist"}})),
        )
        .await
        .unwrap();
    direct
        .delete("k-6", &DeleteParams::default())
        .await
        .unwrap();
    let mut after = BTreeSet::new();
    let want: BTreeSet<String> = ["~k-5", "-k-6"].map(String::from).into();
    while !want.is_subset(&after) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {after:?}"
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), rf.poll()).await;
        after.extend(describe(rf.events(), &mut saw_gone));
    }
    holds_exactly_the_listed(&rf.reader(), &direct).await;
    tokio::task::spawn_blocking(move || plane.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_compact_informer_relists_after_a_restart_exactly() {
    let plane = own_control_plane().await;
    let direct: Api<ConfigMap> = Api::namespaced(
        Client::try_from(common::config_of(plane.kubeconfig())).unwrap(),
        "default",
    );
    create_initial(&direct).await;
    let (proxy, through_proxy) =
        common::proxy::client_through(plane.server_url(), plane.kubeconfig()).await;
    let via_proxy: Api<ConfigMap> = Api::namespaced(through_proxy, "default");

    let informer = Informer::new(via_proxy, InformerConfig::new(fast().watcher).compact());
    let mut sub = informer.subscribe();
    informer.wait_until_ready().await;
    let store = informer.store();
    holds_exactly_the_listed(&store, &direct).await;
    let mut saw_gone = false;
    let mut initial = Vec::new();
    while initial.len() < 10 {
        let batch = tokio::time::timeout(Duration::from_secs(30), sub.recv())
            .await
            .expect("the initial Addeds");
        initial.extend(describe(batch, &mut saw_gone));
    }
    assert_eq!(initial.len(), 10, "{initial:?}");
    // A reflector on the informer once it is ready: its initial Addeds come
    // from the compact store (see `Reflector::from_informer`).
    let mut rf = Reflector::from_informer(&informer);
    rf.poll().await.unwrap();
    let rf_initial = describe(rf.events_iter(), &mut saw_gone);
    assert_eq!(
        rf_initial.iter().collect::<BTreeSet<_>>(),
        initial.iter().collect::<BTreeSet<_>>()
    );

    let (plane, expected) = force_a_relist(plane, &proxy, &direct).await;
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !expected.is_subset(&seen) || store.lists_completed() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {seen:?}"
        );
        if let Ok(batch) = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await {
            seen.extend(describe(batch, &mut saw_gone));
        }
    }
    seen.extend(describe(sub.try_recv(), &mut saw_gone));
    assert_eq!(seen, expected, "exactly the changes made while away");
    assert!(saw_gone, "the resume was refused with 410 and it relisted");
    assert_eq!(store.lists_completed(), 2, "one list, one relist");
    holds_exactly_the_listed(&store, &direct).await;
    for gone in ["k-0", "k-1", "k-2"] {
        assert!(store.get(Some("default"), gone).is_none(), "{gone}");
    }
    assert_eq!(store.len(), 8);
    let mut rf_seen = BTreeSet::new();
    while !expected.is_subset(&rf_seen) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector's events so far: {rf_seen:?}"
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), rf.poll()).await;
        rf_seen.extend(describe(rf.events(), &mut saw_gone));
    }
    assert_eq!(
        rf_seen, expected,
        "the reflector saw what the subscriber did"
    );
    drop(rf);
    drop(sub);
    drop(informer);
    tokio::task::spawn_blocking(move || plane.stop())
        .await
        .unwrap();
}
