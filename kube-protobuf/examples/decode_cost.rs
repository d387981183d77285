//! What decoding one 500-ConfigMap list page costs, JSON (serde) against
//! protobuf (this crate): time, allocations and the heap the decoded
//! objects hold. A measurement to read, not a test:
//!
//! ```text
//! cargo run --release -p kube-protobuf --example decode_cost
//! ```
//!
//! The page is what kube-apiserver sends for 500 ConfigMaps with 1 KiB of
//! data each, as the benchmark creates them: uid, resourceVersion,
//! creationTimestamp, two labels and one managedFields entry per object.
//! Both encodings carry the same objects (the JSON is serde's serialization
//! of them, the protobuf this crate's), and both decode into
//! `k8s_openapi::api::core::v1::ConfigMap`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube_protobuf::wire::Writer;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const OBJECTS: usize = 500;
const RUNS: usize = 101;

fn config_map(i: usize) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("bench-{i:05}"), "namespace": "bench",
            "uid": format!("6f1c2a3b-4d5e-4f60-8a7b-{i:012}"),
            "resourceVersion": format!("{}", 100_000 + i),
            "creationTimestamp": "2026-11-25T18:00:00Z",
            "labels": {"app": "bench", "shard": format!("{}", i % 10)},
            "managedFields": [{
                "manager": "bench", "operation": "Update", "apiVersion": "v1",
                "time": "2026-11-25T18:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:payload": {}},
                             "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:shard": {}}}}
            }]
        },
        "data": {"payload": "x".repeat(1024)}
    }))
    .unwrap()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

struct Cost {
    time: Duration,
    allocations: u64,
    allocated: u64,
    held: usize,
}

/// Median times of `a` and `b`, run alternately so that both see the same
/// machine (other processes, frequency changes).
fn times<A, B>(a: impl Fn() -> A, b: impl Fn() -> B) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        std::hint::black_box(a());
        ta.push(start.elapsed());
        let start = Instant::now();
        std::hint::black_box(b());
        tb.push(start.elapsed());
    }
    (median(ta), median(tb))
}

fn measure<T>(time: Duration, decode: impl Fn() -> T) -> Cost {
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get();
    let decoded = decode();
    let after = dhat::HeapStats::get();
    drop(decoded);
    Cost {
        time,
        allocations: after.total_blocks - before.total_blocks,
        allocated: after.total_bytes - before.total_bytes,
        held: after.curr_bytes - before.curr_bytes,
    }
}

fn main() {
    for managed_fields in [true, false] {
        let mut items: Vec<ConfigMap> = (0..OBJECTS).map(config_map).collect();
        if !managed_fields {
            items
                .iter_mut()
                .for_each(|cm| cm.metadata.managed_fields = None);
        }
        println!("\nwith managedFields: {managed_fields}");
        page(items);
    }
}

fn page(items: Vec<ConfigMap>) {
    let json = serde_json::to_vec(&serde_json::json!({
        "kind": "ConfigMapList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "100500"}, "items": items,
    }))
    .unwrap();
    let mut list = Writer::new();
    list.put_message(
        1,
        &ListMeta {
            resource_version: Some("100500".into()),
            ..Default::default()
        },
    );
    for item in &items {
        list.put_message(2, item);
    }
    let protobuf = kube_protobuf::seal_envelope("v1", "ConfigMapList", &list.into_bytes());

    let decode_json = || {
        serde_json::from_slice::<k8s_openapi::List<ConfigMap>>(&json)
            .unwrap()
            .items
    };
    let decode_protobuf = || {
        let envelope = kube_protobuf::open_envelope(&protobuf).unwrap();
        kube_protobuf::decode_list::<ConfigMap>(envelope.raw)
            .unwrap()
            .1
    };
    let (json_time, protobuf_time) = times(decode_json, decode_protobuf);
    let from_json = measure(json_time, decode_json);
    let from_protobuf = measure(protobuf_time, decode_protobuf);
    // Both decode to the same objects.
    let a = serde_json::from_slice::<k8s_openapi::List<ConfigMap>>(&json)
        .unwrap()
        .items;
    let envelope = kube_protobuf::open_envelope(&protobuf).unwrap();
    assert_eq!(
        a,
        kube_protobuf::decode_list::<ConfigMap>(envelope.raw)
            .unwrap()
            .1
    );

    println!("{OBJECTS} ConfigMaps, median of {RUNS} decodes (release build):");
    println!(
        "| | body bytes | decode time | allocations | bytes allocated | heap held per object |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, body, cost) in [
        ("JSON (serde)", json.len(), &from_json),
        ("protobuf", protobuf.len(), &from_protobuf),
    ] {
        println!(
            "| {name} | {body} | {:.2} ms | {} ({:.1}/object) | {} | {} |",
            cost.time.as_secs_f64() * 1e3,
            cost.allocations,
            cost.allocations as f64 / OBJECTS as f64,
            cost.allocated,
            cost.held / OBJECTS,
        );
    }
    println!(
        "protobuf/JSON: time {:.2}×, allocations {:.2}×",
        from_protobuf.time.as_secs_f64() / from_json.time.as_secs_f64(),
        from_protobuf.allocations as f64 / from_json.allocations as f64
    );
}
