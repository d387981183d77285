//! What only a compact store does, and that it reads as a default one.

use super::*;
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, PodStatus, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube_client::DynamicObject;

fn pod(name: &str, rv: &str, owner: &str, team: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(if name.ends_with('2') { "b" } else { "a" }.into()),
            resource_version: Some(rv.into()),
            labels: Some([("team".to_string(), team.to_string())].into()),
            owner_references: Some(vec![OwnerReference {
                uid: owner.into(),
                name: "rs".into(),
                kind: "ReplicaSet".into(),
                api_version: "apps/v1".into(),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.example/app:1".into()),
                env: Some(vec![EnvVar {
                    name: "MODE".into(),
                    value: Some(name.into()),
                    ..EnvVar::default()
                }]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
    }
}

fn sorted<K: Resource>(objects: Vec<Arc<K>>) -> Vec<(String, Arc<K>)> {
    let mut v: Vec<_> = objects.into_iter().map(|o| (object_key(&*o), o)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Applies `events` to a default and a compact writer (both with the
/// team and owner indexes) and returns their stores and events.
fn both<K>(events: &[Event<K>]) -> [(Store<K>, Vec<WatchEvent<K>>); 2]
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static,
{
    [false, true].map(|compact| {
        let store = store_of(
            compact,
            vec![
                ("team".into(), crate::index::by_label("team")),
                (
                    crate::index::BY_OWNER_UID.into(),
                    crate::index::by_owner_uid(),
                ),
            ],
        );
        let mut w = Writer::new(store.clone());
        for e in events {
            w.apply(e.clone());
        }
        let events = store.events();
        (store, events)
    })
}

fn event_summary<K: Resource + Debug>(events: &[WatchEvent<K>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("+{}@{:?}", o.name_any(), o.resource_version()),
            WatchEvent::Modified(o) => {
                format!("~{}@{:?}", o.name_any(), o.resource_version())
            }
            WatchEvent::Deleted(o) => format!("-{}@{:?}", o.name_any(), o.resource_version()),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn every_read_path_returns_what_a_default_store_does() {
    let events = [
        Event::Init,
        Event::InitApply(pod("p1", "1", "rs-1", "x")),
        Event::InitApply(pod("p2", "1", "rs-1", "y")),
        Event::InitApply(pod("p3", "1", "rs-2", "x")),
        Event::InitDone,
        Event::Apply(pod("p3", "2", "rs-1", "y")), // refiled in both indexes
        Event::Apply(pod("p1", "1", "rs-1", "x")), // unchanged
        Event::Apply(pod("p4", "3", "rs-2", "x")),
        Event::Delete(pod("p4", "4", "rs-2", "x")),
        Event::Init,
        Event::InitApply(pod("p1", "1", "rs-1", "x")),
        Event::InitApply(pod("p3", "5", "rs-2", "x")),
        Event::InitApply(pod("p5", "5", "rs-3", "z")),
        Event::InitDone, // p2 gone, p3 back, p5 new
    ];
    let [(default, default_events), (compact, compact_events)] = both(&events);
    assert!(!default.is_compact() && compact.is_compact());
    assert_eq!(
        event_summary(&compact_events),
        event_summary(&default_events)
    );
    assert_eq!(
        event_summary(&compact_events),
        [
            "+p1@Some(\"1\")",
            "+p2@Some(\"1\")",
            "+p3@Some(\"1\")",
            "~p3@Some(\"2\")",
            "+p4@Some(\"3\")",
            "-p4@Some(\"4\")",
            "~p3@Some(\"5\")",
            "+p5@Some(\"5\")",
            "-p2@Some(\"1\")",
        ]
    );
    let deleted_by_relist = compact_events.last().unwrap();
    let WatchEvent::Deleted(p2) = deleted_by_relist else {
        panic!("{deleted_by_relist:?}")
    };
    assert_eq!(
        **p2,
        pod("p2", "1", "rs-1", "y"),
        "decoded whole from the store"
    );

    assert_eq!(compact.len(), 3);
    assert_eq!(compact.len(), default.len());
    assert!(!compact.is_empty());
    assert_eq!(sorted(compact.read()), sorted(default.read()));
    for (ns, name) in [
        ("a", "p1"),
        ("b", "p2"),
        ("a", "p3"),
        ("a", "p4"),
        ("a", "p5"),
    ] {
        assert_eq!(
            compact.get(Some(ns), name),
            default.get(Some(ns), name),
            "{name}"
        );
    }
    assert_eq!(
        compact.get(Some("a"), "p3").unwrap().resource_version(),
        Some("5")
    );
    for team in ["x", "y", "z", "none"] {
        assert_eq!(
            sorted(compact.by_index("team", team).unwrap()),
            sorted(default.by_index("team", team).unwrap()),
            "team {team}"
        );
    }
    assert_eq!(
        sorted(compact.by_index("team", "x").unwrap())
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>(),
        ["a/p1", "a/p3"]
    );
    for owner in ["rs-1", "rs-2", "rs-3"] {
        assert_eq!(
            sorted(compact.owned_by(owner)),
            sorted(default.owned_by(owner)),
            "{owner}"
        );
    }
    assert_eq!(compact.owned_by("rs-2").len(), 1);
    // owned_by without the index scans (and decodes) every object.
    let [(default, _), (compact, _)] = both(&events).map(|(s, e)| {
        let plain = store_of(s.is_compact(), Vec::new());
        let mut w = Writer::new(plain.clone());
        for o in s.read() {
            w.apply(Event::Apply((*o).clone()));
        }
        (plain, e)
    });
    assert_eq!(
        sorted(compact.owned_by("rs-1")),
        sorted(default.owned_by("rs-1"))
    );
    assert_eq!(compact.owned_by("rs-1").len(), 1);

    // Each read decodes afresh: equal objects, distinct Arcs.
    let (a, b) = (
        compact.get(Some("a"), "p1").unwrap(),
        compact.get(Some("a"), "p1").unwrap(),
    );
    assert_eq!(a, b);
    assert!(!Arc::ptr_eq(&a, &b));
}

#[test]
fn its_own_queue_holds_events_encoded_and_decodes_them_when_drained() {
    let store = store_of::<Pod>(true, Vec::new());
    let mut w = Writer::new(store.clone());
    for e in [
        Event::Init,
        Event::InitApply(pod("p1", "1", "rs", "x")),
        Event::InitApply(pod("p2", "1", "rs", "x")),
        Event::InitDone,
        Event::Apply(pod("p1", "2", "rs", "y")),
        Event::Delete(pod("p1", "3", "rs", "y")),
        Event::Init,
        Event::InitDone, // p2 gone
    ] {
        w.apply(e);
    }
    let queue = store.inner.queue.as_ref().unwrap();
    assert_eq!(queue.encoded(), 5, "no decoded object pinned by the queue");
    let events = store.events();
    assert_eq!(
        event_summary(&events),
        [
            "+p1@Some(\"1\")",
            "+p2@Some(\"1\")",
            "~p1@Some(\"2\")",
            "-p1@Some(\"3\")",
            "-p2@Some(\"1\")",
        ]
    );
    let WatchEvent::Modified(p1) = &events[2] else {
        panic!("{events:?}")
    };
    assert_eq!(**p1, pod("p1", "2", "rs", "y"), "decoded whole");
}

#[test]
fn an_informers_writer_hands_out_the_object_written() {
    let store = Store::<Pod>::without_queue();
    store.make_compact();
    let emitted = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = emitted.clone();
    let mut w = Writer::emitting(store.clone(), Box::new(move |e| sink.lock().push(e)));
    w.apply(Event::Apply(pod("p1", "1", "rs", "x")));
    let events = std::mem::take(&mut *emitted.lock());
    let [WatchEvent::Added(written)] = &events[..] else {
        panic!("{events:?}")
    };
    // Only the event holds the object written: the store has bytes.
    assert_eq!(Arc::strong_count(written), 1);
    let read = store.get(Some("a"), "p1").unwrap();
    assert_eq!(*written, read);
    assert!(!Arc::ptr_eq(written, &read), "a read decodes afresh");
}

#[test]
fn a_writer_made_compact_after_writing_encodes_what_it_holds() {
    let w = Writer::detached(10);
    let store = w.store();
    let mut w = w;
    w.apply(Event::Apply(cm("a", "1")));
    let before = store.get(Some("ns"), "a").unwrap();
    let mut w = w.compact();
    assert!(
        store.is_compact(),
        "the same store, seen through any handle"
    );
    assert!(store.inner.objects.is_empty(), "nothing left decoded");
    assert_eq!(store.get(Some("ns"), "a").unwrap(), before);
    w.apply(Event::Apply(cm("a", "1")));
    w.apply(Event::Apply(cm("a", "2")));
    assert_eq!(
        kinds(store.events()),
        ["+a", "~a"],
        "unchanged, then modified"
    );
    let w = w.compact();
    assert!(format!("{w:?}").contains("compact: true"));
}

#[test]
fn kinds_without_protobuf_are_held_as_json() {
    let mut obj = DynamicObject::new("d", &kube_client::ApiResource::of::<ConfigMap>());
    obj.metadata.namespace = Some("ns".into());
    obj.metadata.resource_version = Some("7".into());
    obj.data = serde_json::json!({"data": {"k": "v"}});
    let store = store_of::<DynamicObject>(true, Vec::new());
    assert!(format!("{store:?}").contains("json"));
    let mut w = Writer::new(store.clone());
    w.apply(Event::Apply(obj.clone()));
    w.apply(Event::Apply(obj.clone()));
    assert_eq!(store.events().len(), 1, "the unchanged write emits nothing");
    assert_eq!(*store.get(Some("ns"), "d").unwrap(), obj);
}

fn secret(name: &str, rv: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            resource_version: Some(rv.into()),
            labels: Some([("team".to_string(), "x".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                "password".to_string(),
                k8s_openapi::ByteString(b"hunter2-top-secret".to_vec()),
            )]
            .into(),
        ),
        string_data: Some([("token".to_string(), "s3cr3t-token".to_string())].into()),
        ..Secret::default()
    }
}

#[test]
fn debug_of_a_compact_store_shows_no_bytes() {
    let mut w = Writer::<Secret>::detached(10).compact();
    w.apply(Event::Apply(secret("s", "1")));
    let store = w.store();
    for shown in [format!("{store:?}"), format!("{w:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("104, 117"), "no byte arrays: {shown}"); // "hu"
        assert!(shown.contains("len: 1"), "{shown}");
    }
    assert_eq!(
        store
            .get(Some("ns"), "s")
            .unwrap()
            .string_data
            .as_ref()
            .unwrap()["token"],
        "s3cr3t-token"
    );
}

/// Captures what is logged while `f` runs.
fn logs_of(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<parking_lot::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buffer.0.lock().clone()).unwrap()
}

#[test]
fn bytes_that_do_not_decode_are_logged_without_content_and_read_as_absent() {
    let store = store_of::<Secret>(true, vec![("team".into(), crate::index::by_label("team"))]);
    let mut w = Writer::new(store.clone());
    for e in [
        Event::Init,
        Event::InitApply(secret("s", "1")),
        Event::InitApply(secret("t", "1")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    store.events();
    // A length prefix running past the end: not a protobuf Secret (nor JSON).
    store
        .compact()
        .unwrap()
        .corrupt("ns/s", b"\x0a\xff\x01hunter2-top-secret");
    let logs = logs_of(|| {
        assert!(store.get(Some("ns"), "s").is_none());
        assert_eq!(store.read().len(), 1);
        assert_eq!(store.by_index("team", "x").unwrap().len(), 1);
        assert_eq!(store.len(), 2, "still held, until rewritten or removed");
        // A new version of it replaces the bytes; the index, whose old
        // values could not be read, is refiled from scratch.
        let mut moved = secret("s", "2");
        moved.metadata.labels = Some([("team".to_string(), "y".to_string())].into());
        w.apply(Event::Apply(moved));
        assert_eq!(
            store.get(Some("ns"), "s").unwrap().resource_version(),
            Some("2")
        );
        assert_eq!(store.by_index("team", "x").unwrap().len(), 1, "only t");
        assert_eq!(store.by_index("team", "y").unwrap().len(), 1);
        // Corrupt it again; a relist without it removes it, without an event.
        store.compact().unwrap().corrupt("ns/s", b"\x0a\xff\x01");
        for e in [
            Event::Init,
            Event::InitApply(secret("t", "1")),
            Event::InitDone,
        ] {
            w.apply(e);
        }
        assert!(store.by_index("team", "y").unwrap().is_empty());
        assert_eq!(store.len(), 1);
    });
    assert_eq!(kinds_of_secrets(store.events()), ["~s"]);
    assert!(logs.contains("does not decode"), "{logs}");
    assert!(logs.contains("ns/s"), "names the key: {logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
    assert!(!logs.contains("s3cr3t"), "{logs}");
}

fn kinds_of_secrets(events: Vec<WatchEvent<Secret>>) -> Vec<String> {
    event_summary(&events)
        .into_iter()
        .map(|s| s.split('@').next().unwrap().to_string())
        .collect()
}

#[test]
fn json_errors_are_logged_without_the_values_they_quote() {
    let store = store_of::<DynamicObject>(true, Vec::new());
    let mut w = Writer::new(store.clone());
    let mut obj = DynamicObject::new("d", &kube_client::ApiResource::of::<Secret>());
    obj.metadata.namespace = Some("ns".into());
    w.apply(Event::Apply(obj));
    let corrupt = br#"{"metadata":"s3cr3t-value"}"#;
    let quoted = serde_json::from_slice::<DynamicObject>(corrupt).unwrap_err();
    assert!(
        quoted.to_string().contains("s3cr3t"),
        "serde_json's own message quotes the string it did not expect: {quoted}"
    );
    store.compact().unwrap().corrupt("ns/d", corrupt);
    let logs = logs_of(|| assert!(store.get(Some("ns"), "d").is_none()));
    // What kube-client's errors say of JSON: its kind and position.
    assert!(
        logs.contains("JSON does not match the expected type at line 1 column"),
        "{logs}"
    );
    assert!(!logs.contains("s3cr3t"), "{logs}");
}

#[test]
fn an_encodable_object_is_held_encoded() {
    let pod = pod("p1", "1", "rs", "x");
    let store = store_of::<Pod>(true, Vec::new());
    Writer::new(store.clone()).apply(Event::Apply(pod.clone()));
    let held = store
        .compact()
        .unwrap()
        .map
        .get("a/p1")
        .map(|slot| match &*slot {
            super::super::compact::Slot::Packed(_) => true,
            super::super::compact::Slot::Whole(_) => false,
        });
    assert_eq!(held, Some(true), "encoded, not kept whole");
}

#[test]
fn a_relists_unchanged_object_is_not_encoded_again() {
    let store = store_of::<Pod>(true, vec![("team".into(), crate::index::by_label("team"))]);
    let mut w = Writer::new(store.clone());
    let address = || match &*store.compact().unwrap().map.get("a/p1").unwrap() {
        super::super::compact::Slot::Packed(p) => p.address(),
        super::super::compact::Slot::Whole(_) => panic!("kept whole"),
    };
    w.apply(Event::Apply(pod("p1", "1", "rs", "x")));
    let first = address();
    for e in [
        Event::Init,
        Event::InitApply(pod("p1", "1", "rs", "x")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    assert_eq!(address(), first, "the same bytes");
    w.apply(Event::Apply(pod("p1", "2", "rs", "y")));
    assert_ne!(address(), first, "a new version is encoded");
    assert_eq!(store.by_index("team", "y").unwrap().len(), 1);
    assert_eq!(kinds_of_pods(store.events()), ["+p1", "~p1"]);
    // Without a resourceVersion nothing tells versions apart: each
    // write is stored.
    let mut unversioned = pod("p9", "", "rs", "x");
    unversioned.metadata.resource_version = None;
    w.apply(Event::Apply(unversioned.clone()));
    unversioned.spec.as_mut().unwrap().containers[0].image = Some("other".into());
    w.apply(Event::Apply(unversioned.clone()));
    assert_eq!(*store.get(Some("a"), "p9").unwrap(), unversioned);
}

fn kinds_of_pods(events: Vec<WatchEvent<Pod>>) -> Vec<String> {
    event_summary(&events)
        .into_iter()
        .map(|s| s.split('@').next().unwrap().to_string())
        .collect()
}
