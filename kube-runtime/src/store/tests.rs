//! The store's tests: both representations, every read path.

use super::*;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn cm(name: &str, rv: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

fn kinds(events: Vec<WatchEvent<ConfigMap>>) -> Vec<String> {
    events
        .into_iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("+{}", o.name_any()),
            WatchEvent::Modified(o) => format!("~{}", o.name_any()),
            WatchEvent::Deleted(o) => format!("-{}", o.name_any()),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_relist_yields_only_the_differences() {
    for compact in [false, true] {
        a_relist_yields_only_the_differences_in(compact);
    }
}

/// A store with a queue of 100 and `indexes`, compact or not.
fn store_of<K: Resource + Serialize + DeserializeOwned + 'static>(
    compact: bool,
    indexes: Vec<(String, IndexFn<K>)>,
) -> Store<K> {
    let store = Store::with_indexes(100, indexes);
    if compact {
        store.make_compact();
    }
    assert_eq!(store.is_compact(), compact);
    store
}

fn a_relist_yields_only_the_differences_in(compact: bool) {
    let store = store_of(compact, Vec::new());
    let mut w = Writer::new(store.clone());
    for e in [
        Event::Init,
        Event::InitApply(cm("a", "1")),
        Event::InitApply(cm("b", "1")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    assert!(store.is_ready());
    assert_eq!(store.lists_completed(), 1);
    assert_eq!(kinds(store.events()), ["+a", "+b"]);

    // Relist: a unchanged, b changed, c new, (b's sibling) a2 never seen, old "a" kept.
    w.apply(Event::Apply(cm("gone", "2")));
    store.events();
    for e in [
        Event::Init,
        Event::InitApply(cm("a", "1")),
        Event::InitApply(cm("b", "3")),
        Event::InitApply(cm("c", "3")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    assert_eq!(kinds(store.events()), ["~b", "+c", "-gone"]);
    assert_eq!(store.lists_completed(), 2);
    let mut names: Vec<String> = store
        .read()
        .iter()
        .map(|o| o.name_any().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(
        store.get(Some("ns"), "b").unwrap().resource_version(),
        Some("3")
    );
}

#[test]
fn a_relist_keeps_the_object_it_holds_at_the_same_version() {
    let store = store_of(false, Vec::new());
    let mut w = Writer::new(store.clone());
    for e in [
        Event::Init,
        Event::InitApply(cm("a", "1")),
        Event::InitApply(cm("b", "1")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    let (a, b) = (
        store.get(Some("ns"), "a").unwrap(),
        store.get(Some("ns"), "b").unwrap(),
    );
    let mut changed = cm("a", "1");
    changed.data = Some([("k".to_string(), "v".to_string())].into());
    for e in [
        Event::Init,
        Event::InitApply(changed),
        Event::InitApply(cm("b", "2")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    // "a" at the version held: the held object stays (the copy is dropped).
    let a_after = store.get(Some("ns"), "a").unwrap();
    assert!(
        Arc::ptr_eq(&a, &a_after),
        "the same resourceVersion keeps the object held"
    );
    assert_eq!(a_after.data, None);
    let b_after = store.get(Some("ns"), "b").unwrap();
    assert!(!Arc::ptr_eq(&b, &b_after));
    assert_eq!(b_after.resource_version(), Some("2"));
}

#[test]
fn indexes_follow_every_write() {
    for compact in [false, true] {
        indexes_follow_every_write_in(compact);
    }
}

fn indexes_follow_every_write_in(compact: bool) {
    let labelled = |name: &str, rv: &str, team: &str| {
        let mut c = cm(name, rv);
        c.metadata.labels = Some([("team".to_string(), team.to_string())].into());
        c
    };
    let store = store_of(
        compact,
        vec![("team".into(), crate::index::by_label("team"))],
    );
    let mut w = Writer::new(store.clone());
    let names = |v: Option<Vec<Arc<ConfigMap>>>| {
        let mut n: Vec<String> = v
            .unwrap()
            .iter()
            .map(|o| o.name_any().to_string())
            .collect();
        n.sort();
        n
    };
    for e in [
        Event::Init,
        Event::InitApply(labelled("a", "1", "x")),
        Event::InitApply(labelled("b", "1", "x")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    assert_eq!(names(store.by_index("team", "x")), ["a", "b"]);
    w.apply(Event::Apply(labelled("b", "2", "y")));
    assert_eq!(names(store.by_index("team", "x")), ["a"]);
    assert_eq!(names(store.by_index("team", "y")), ["b"]);
    w.apply(Event::Delete(labelled("a", "3", "x")));
    assert!(names(store.by_index("team", "x")).is_empty());
    for e in [
        Event::Init,
        Event::InitApply(labelled("c", "4", "y")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    assert_eq!(
        names(store.by_index("team", "y")),
        ["c"],
        "the relist removed b from its index"
    );
    assert!(store.by_index("nope", "y").is_none());
}

#[test]
fn an_index_added_later_covers_what_is_cached_and_what_follows() {
    for compact in [false, true] {
        an_index_added_later_covers_what_is_cached_and_what_follows_in(compact);
    }
}

fn an_index_added_later_covers_what_is_cached_and_what_follows_in(compact: bool) {
    let labelled = |name: &str, rv: &str, team: &str| {
        let mut c = cm(name, rv);
        c.metadata.labels = Some([("team".to_string(), team.to_string())].into());
        c
    };
    let store = Store::without_queue();
    if compact {
        store.make_compact();
    }
    let emitted = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = emitted.clone();
    let mut w = Writer::emitting(store.clone(), Box::new(move |e| sink.lock().push(e)));
    for e in [
        Event::Init,
        Event::InitApply(labelled("a", "1", "x")),
        Event::InitApply(labelled("b", "1", "y")),
        Event::InitDone,
    ] {
        w.apply(e);
    }
    assert!(store.add_index("team", crate::index::by_label("team")));
    assert!(
        !store.add_index("team", crate::index::by_namespace()),
        "a name is added once"
    );
    assert!(store.has_index("team"));
    let names = |v: Vec<Arc<ConfigMap>>| -> Vec<String> {
        let mut n: Vec<String> = v.iter().map(|o| o.name_any().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names(store.by_index("team", "x").unwrap()), ["a"]);
    w.apply(Event::Apply(labelled("c", "2", "x")));
    assert_eq!(names(store.by_index("team", "x").unwrap()), ["a", "c"]);
    assert!(store.events().is_empty(), "no queue of its own");
    assert_eq!(
        kinds(std::mem::take(&mut *emitted.lock())),
        ["+a", "+b", "+c"]
    );
}

fn managed(name: &str, rv: &str) -> ConfigMap {
    let mut c = cm(name, rv);
    c.metadata.managed_fields = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
            manager: Some("m".into()),
            ..Default::default()
        },
    ]);
    c
}

#[test]
fn a_writer_drops_managed_fields_unless_told_to_keep_them() {
    for (keep, compact) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut w = Writer::detached(100);
        if keep {
            w = w.keep_managed_fields();
        }
        if compact {
            w = w.compact();
        }
        let store = w.store();
        for e in [
            Event::Init,
            Event::InitApply(managed("a", "1")),
            Event::InitDone,
            Event::Apply(managed("b", "2")),
            Event::Delete(managed("a", "3")),
        ] {
            w.apply(e);
        }
        let b = store.get(Some("ns"), "b").unwrap();
        assert_eq!(b.metadata.managed_fields.is_some(), keep, "keep: {keep}");
        assert_eq!(b.metadata.resource_version.as_deref(), Some("2"));
        let events = store.events();
        assert_eq!(events.len(), 3);
        for event in events {
            let (WatchEvent::Added(o) | WatchEvent::Deleted(o)) = event else {
                panic!("unexpected {event:?}");
            };
            assert_eq!(o.metadata.managed_fields.is_some(), keep, "events too");
        }
    }
}

#[test]
fn watch_events_update_the_store() {
    for compact in [false, true] {
        watch_events_update_the_store_in(compact);
    }
}

fn watch_events_update_the_store_in(compact: bool) {
    let store = store_of(compact, Vec::new());
    let mut w = Writer::new(store.clone());
    w.apply(Event::Init);
    w.apply(Event::InitDone);
    w.apply(Event::Apply(cm("x", "1")));
    w.apply(Event::Apply(cm("x", "2")));
    w.apply(Event::Delete(cm("x", "3")));
    assert_eq!(kinds(store.events()), ["+x", "~x", "-x"]);
    assert!(store.is_empty());
}

mod compact;
