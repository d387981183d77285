//! `bench-driver heap`: what a cache holds per object, in bytes of heap and
//! in allocations, measured by a counting global allocator.
//!
//! A cache's memory is its objects. This subcommand decodes a captured list
//! (the `list-page-NNN.json` files `bench-driver decode --save DIR` writes)
//! into exactly what a [`kube_runtime::Store`] holds — each object in an
//! `Arc`, under its `namespace/name` key in the store's map — through the
//! store's own [`Writer`], as a reflector does, and counts what stays
//! allocated. Guarantees of the figures:
//!
//! - the allocator counts every allocation and free of the process once
//!   [`Counting::enable`] has run (before anything measured is allocated),
//!   so a difference of two snapshots is exact: *live bytes* are the bytes
//!   requested (not the allocator's rounding), *live allocations* the
//!   blocks still allocated, *allocation calls* every `alloc` made on the
//!   way, freed or not (decoding's transient ones included);
//! - the captured pages are read before the first snapshot, so they are not
//!   counted; the store is measured full, then dropped before the next
//!   variant;
//! - `objects_*` figures are the objects alone (`Arc<K>` each, in a vector
//!   whose own buffer is subtracted); `store_overhead_*` is the rest: keys,
//!   the map's table, the store's bookkeeping;
//! - `relist_peak_ratio` applies the same list again (a relist, in place)
//!   and divides the peak of live bytes during it by the steady state, both
//!   above the baseline.
//!
//! Until the allocator is enabled (every other subcommand) it costs one
//! relaxed atomic load per allocation.
//!
//! Variants: `json` (as the server sends it, `managedFields` kept:
//! [`Writer::keep_managed_fields`]) and `json_stripped` (the stores'
//! default). A protobuf variant decodes the same objects from protobuf
//! pages once a protobuf codec is in the workspace (`kube_protobuf`); it
//! goes in [`variants`] as one more entry.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_client::{ObjectList, Resource};
use kube_runtime::{Event, Writer};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The process's allocator: the system's, counting once enabled.
pub struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static PEAK_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

impl Counting {
    /// Starts counting. Blocks allocated before are never counted, so
    /// freeing them makes the totals drift: compare snapshots taken after.
    pub fn enable() {
        ENABLED.store(true, Relaxed);
    }

    fn grow(bytes: usize) {
        let now = LIVE_BYTES.fetch_add(bytes as i64, Relaxed) + bytes as i64;
        PEAK_BYTES.fetch_max(now, Relaxed);
    }

    fn shrink(bytes: usize) {
        LIVE_BYTES.fetch_sub(bytes as i64, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && ENABLED.load(Relaxed) {
            Self::grow(layout.size());
            LIVE_BLOCKS.fetch_add(1, Relaxed);
            CALLS.fetch_add(1, Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && ENABLED.load(Relaxed) {
            Self::grow(layout.size());
            LIVE_BLOCKS.fetch_add(1, Relaxed);
            CALLS.fetch_add(1, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        if ENABLED.load(Relaxed) {
            Self::shrink(layout.size());
            LIVE_BLOCKS.fetch_sub(1, Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && ENABLED.load(Relaxed) {
            Self::grow(new_size);
            Self::shrink(layout.size());
        }
        new
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    bytes: i64,
    blocks: i64,
    calls: u64,
}

fn snapshot() -> Snapshot {
    Snapshot {
        bytes: LIVE_BYTES.load(Relaxed),
        blocks: LIVE_BLOCKS.load(Relaxed),
        calls: CALLS.load(Relaxed),
    }
}

/// Restarts the peak at the current live bytes.
fn reset_peak() {
    PEAK_BYTES.store(LIVE_BYTES.load(Relaxed), Relaxed);
}

/// Options of `heap`: `--payloads DIR [--kind configmap|pod]`.
struct HeapOpts {
    payloads: PathBuf,
    kind: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<HeapOpts> {
    let mut o = HeapOpts {
        payloads: PathBuf::from("target/bench/payloads"),
        kind: "configmap".into(),
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--payloads" => o.payloads = value.into(),
            "--kind" => o.kind = value.to_ascii_lowercase(),
            other => {
                bail!("unknown option `{other}` (heap takes --payloads DIR --kind configmap|pod)")
            }
        }
    }
    Ok(o)
}

/// Runs `heap` with its arguments (after the subcommand); the JSON report.
pub fn run(args: impl Iterator<Item = String>) -> Result<serde_json::Value> {
    Counting::enable();
    let o = parse(args)?;
    let pages = read_pages(&o.payloads)?;
    match o.kind.as_str() {
        "configmap" | "configmaps" => measure_kind::<ConfigMap>(&o.payloads, &pages),
        "pod" | "pods" => measure_kind::<Pod>(&o.payloads, &pages),
        other => bail!("--kind {other}: expected configmap or pod"),
    }
}

/// `list-page-*.json` in `dir`, in name order.
fn read_pages(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "read {} (captured by `bench-driver decode --save`)",
                dir.display()
            )
        })?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("list-page-") && n.ends_with(".json"))
    });
    names.sort();
    ensure!(
        !names.is_empty(),
        "no list-page-*.json in {}",
        dir.display()
    );
    names
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("read {}", p.display())))
        .collect()
}

/// One way of turning the pages into stored objects.
struct Variant {
    name: &'static str,
    keep_managed_fields: bool,
}

/// The variants measured, in order.
fn variants() -> Vec<Variant> {
    vec![
        Variant {
            name: "json",
            keep_managed_fields: true,
        },
        Variant {
            name: "json_stripped",
            keep_managed_fields: false,
        },
    ]
}

fn decode_page<K: DeserializeOwned>(page: &[u8]) -> Result<Vec<K>> {
    Ok(serde_json::from_slice::<ObjectList<K>>(page)?.items)
}

/// A store's writer for `variant`.
fn writer<K: Resource + Send + Sync + 'static>(variant: &Variant) -> Writer<K> {
    let writer = Writer::detached(1);
    if variant.keep_managed_fields {
        writer.keep_managed_fields()
    } else {
        writer
    }
}

/// Applies every page as one complete list (`Init` … `InitDone`); the
/// events it queues are dropped as they come.
fn apply_list<K>(writer: &mut Writer<K>, pages: &[Vec<u8>]) -> Result<usize>
where
    K: Resource + DeserializeOwned + Send + Sync + 'static,
{
    let store = writer.store();
    let mut objects = 0;
    writer.apply(Event::Init);
    for page in pages {
        for obj in decode_page::<K>(page)? {
            writer.apply(Event::InitApply(obj));
            objects += 1;
        }
        drop(store.events());
    }
    writer.apply(Event::InitDone);
    drop(store.events());
    Ok(objects)
}

fn per(delta: i64, objects: usize) -> f64 {
    delta as f64 / objects.max(1) as f64
}

fn measure_variant<K>(
    variant: &Variant,
    pages: &[Vec<u8>],
    objects: usize,
) -> Result<serde_json::Value>
where
    K: Resource + DeserializeOwned + Send + Sync + 'static,
{
    // The objects alone: each in its Arc, in a vector of exact capacity.
    let before = snapshot();
    let mut held: Vec<Arc<K>> = Vec::with_capacity(objects);
    let vector = snapshot();
    for page in pages {
        for mut obj in decode_page::<K>(page)? {
            kube_runtime::lean::lean(&mut obj, variant.keep_managed_fields);
            held.push(Arc::new(obj));
        }
    }
    let alone = snapshot();
    ensure!(held.len() == objects, "decoded {} of {objects}", held.len());
    drop(held);
    let objects_bytes = alone.bytes - vector.bytes;
    let objects_blocks = alone.blocks - vector.blocks;
    ensure!(
        (snapshot().bytes - before.bytes).abs() < 4096,
        "the objects' memory was not all freed"
    );

    // The store: through its own writer.
    let before = snapshot();
    let mut w = writer::<K>(variant);
    let stored = apply_list(&mut w, pages)?;
    let full = snapshot();
    ensure!(
        stored == objects && w.store().len() == objects,
        "stored {stored} of {objects}"
    );

    // A relist of the same list, in place.
    reset_peak();
    apply_list(&mut w, pages)?;
    let peak = PEAK_BYTES.load(Relaxed);
    let steady = snapshot();
    drop(w);

    let live = full.bytes - before.bytes;
    let blocks = full.blocks - before.blocks;
    Ok(json!({
        "live_bytes_per_object": per(live, objects),
        "live_allocations_per_object": per(blocks, objects),
        "allocation_calls_per_object": per((full.calls - before.calls) as i64, objects),
        "objects_bytes_per_object": per(objects_bytes, objects),
        "objects_allocations_per_object": per(objects_blocks, objects),
        "store_overhead_bytes_per_object": per(live - objects_bytes, objects),
        "store_overhead_allocations_per_object": per(blocks - objects_blocks, objects),
        "relist_peak_ratio": (peak - before.bytes) as f64 / live.max(1) as f64,
        "after_relist_bytes_per_object": per(steady.bytes - before.bytes, objects),
    }))
}

fn measure_kind<K>(dir: &Path, pages: &[Vec<u8>]) -> Result<serde_json::Value>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
{
    let mut objects = 0;
    for page in pages {
        objects += decode_page::<K>(page)
            .with_context(|| {
                format!(
                    "a page in {} is not a {} list",
                    dir.display(),
                    K::api_resource(&()).kind
                )
            })?
            .len();
    }
    ensure!(
        objects > 0,
        "the pages in {} hold no objects",
        dir.display()
    );
    let json_bytes: usize = pages.iter().map(Vec::len).sum();
    let mut results = serde_json::Map::new();
    for variant in variants() {
        results.insert(
            variant.name.into(),
            measure_variant::<K>(&variant, pages, objects)?,
        );
    }
    Ok(json!({
        "kind": K::api_resource(&()).kind,
        "payloads": dir.display().to_string(),
        "pages": pages.len(),
        "objects": objects,
        "json_bytes_per_object": json_bytes as f64 / objects as f64,
        "size_of_object": std::mem::size_of::<K>(),
        "variants": results,
    }))
}
