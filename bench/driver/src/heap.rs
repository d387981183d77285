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
//! [`Writer::keep_managed_fields`]), `json_stripped` (the stores' default),
//! `protobuf` (the stores' default, decoded from protobuf with every field)
//! and `protobuf_skip_managed_fields` (decoded as the caches' watches
//! decode protobuf: `managedFields` skipped on the wire, never built), and
//! `compact` (decoded as `protobuf_skip_managed_fields`, stored by a compact
//! store: [`Writer::compact`], each object held encoded — protobuf for a
//! kind with a codec, JSON otherwise — and decoded on every read; its
//! `objects_*` figures are each object's encoding alone, in a boxed slice).
//! Every variant also reports `get_micros_per_object`: the mean wall time
//! of one `Store::get`, over every cached object (with this allocator's
//! counting, on a shared machine: an order of magnitude, not a benchmark).
//! The
//! protobuf pages are the captured objects re-encoded by `kube_protobuf`
//! (each JSON page's items as one `…List` message in a `k8s\0` envelope,
//! what the API server sends for `Accept: application/vnd.kubernetes.protobuf`),
//! decoded as a client does: open the envelope, `decode_list_with`. Kinds
//! without a protobuf codec have no protobuf variants.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_client::{ObjectList, Resource};
use kube_runtime::{Event, Writer};
use serde::Serialize;
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

/// How a variant's pages are encoded (and decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    /// Protobuf, every field decoded.
    Protobuf,
    /// Protobuf, `managedFields` skipped while decoding
    /// (`DecodeOptions::skip_managed_fields`, as the caches' watches decode).
    ProtobufSkippingManagedFields,
}

/// One way of turning the pages into stored objects.
struct Variant {
    name: &'static str,
    encoding: Encoding,
    keep_managed_fields: bool,
    /// A compact store ([`Writer::compact`]).
    compact: bool,
}

/// The variants measured, in order.
fn variants() -> Vec<Variant> {
    vec![
        Variant {
            name: "json",
            encoding: Encoding::Json,
            keep_managed_fields: true,
            compact: false,
        },
        Variant {
            name: "json_stripped",
            encoding: Encoding::Json,
            keep_managed_fields: false,
            compact: false,
        },
        Variant {
            name: "protobuf",
            encoding: Encoding::Protobuf,
            keep_managed_fields: false,
            compact: false,
        },
        Variant {
            name: "protobuf_skip_managed_fields",
            encoding: Encoding::ProtobufSkippingManagedFields,
            keep_managed_fields: false,
            compact: false,
        },
        Variant {
            name: "compact",
            encoding: Encoding::ProtobufSkippingManagedFields,
            keep_managed_fields: false,
            compact: true,
        },
    ]
}

fn decode_json<K: DeserializeOwned>(page: &[u8]) -> Result<Vec<K>> {
    Ok(serde_json::from_slice::<ObjectList<K>>(page)?.items)
}

/// Decodes one page (a list body) in `encoding`.
fn decode_page<K: DeserializeOwned + 'static>(encoding: Encoding, page: &[u8]) -> Result<Vec<K>> {
    match encoding {
        Encoding::Json => decode_json(page),
        Encoding::Protobuf | Encoding::ProtobufSkippingManagedFields => {
            let codec = kube_protobuf::codec::<K>().context("no protobuf codec for this kind")?;
            let envelope = kube_protobuf::open_envelope(page)?;
            let options = kube_protobuf::DecodeOptions::default()
                .skip_managed_fields(encoding == Encoding::ProtobufSkippingManagedFields);
            Ok((codec.decode_list_with)(envelope.raw, options)?.1)
        }
    }
}

/// The JSON pages' objects as protobuf list bodies, one per page; `None`
/// for a kind without a protobuf codec.
fn protobuf_pages<K: DeserializeOwned + 'static>(
    pages: &[Vec<u8>],
) -> Result<Option<Vec<Vec<u8>>>> {
    let Some(codec) = kube_protobuf::codec::<K>() else {
        return Ok(None);
    };
    let mut bodies = Vec::with_capacity(pages.len());
    for page in pages {
        let mut list = Vec::new();
        for item in decode_json::<K>(page)? {
            let message = (codec.encode)(&item);
            list.push(0x12); // field 2 (items), length-delimited
            let mut len = message.len();
            while len >= 0x80 {
                list.push((len as u8) | 0x80);
                len >>= 7;
            }
            list.push(len as u8);
            list.extend_from_slice(&message);
        }
        let list_kind = format!("{}List", codec.kind);
        bodies.push(kube_protobuf::seal_envelope(
            codec.api_version,
            &list_kind,
            &list,
        ));
    }
    Ok(Some(bodies))
}

/// A store's writer for `variant`.
fn writer<K>(variant: &Variant) -> Writer<K>
where
    K: Resource + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let mut writer = Writer::detached(1);
    if variant.keep_managed_fields {
        writer = writer.keep_managed_fields();
    }
    if variant.compact {
        writer = writer.compact();
    }
    writer
}

/// What a compact store holds of `obj` besides its key and version: its
/// encoding (protobuf if the kind has a codec, else JSON).
fn encoded<K: Serialize + 'static>(obj: &K) -> Result<Box<[u8]>> {
    Ok(match kube_protobuf::codec::<K>() {
        Some(codec) => (codec.encode)(obj).into_boxed_slice(),
        None => serde_json::to_vec(obj)?.into_boxed_slice(),
    })
}

/// The mean wall time of one `get`, over every object of `store`.
fn get_micros<K: Resource>(store: &kube_runtime::Store<K>) -> Result<f64> {
    let keys: Vec<(Option<String>, String)> = store
        .read()
        .iter()
        .map(|o| {
            (
                o.meta().namespace.clone(),
                o.meta().name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let start = std::time::Instant::now();
    for (namespace, name) in &keys {
        ensure!(
            store.get(namespace.as_deref(), name).is_some(),
            "{name} not found"
        );
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / keys.len().max(1) as f64)
}

/// Applies every page as one complete list (`Init` … `InitDone`); the
/// events it queues are dropped as they come.
fn apply_list<K>(writer: &mut Writer<K>, encoding: Encoding, pages: &[Vec<u8>]) -> Result<usize>
where
    K: Resource + DeserializeOwned + Send + Sync + 'static,
{
    let store = writer.store();
    let mut objects = 0;
    writer.apply(Event::Init);
    for page in pages {
        for obj in decode_page::<K>(encoding, page)? {
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
    K: Resource + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    // The objects alone: each in its Arc (or, for a compact store, each
    // one's encoding), in a vector of exact capacity.
    let before = snapshot();
    let mut held: Vec<Arc<K>> = Vec::with_capacity(if variant.compact { 0 } else { objects });
    let mut held_encoded: Vec<Box<[u8]>> =
        Vec::with_capacity(if variant.compact { objects } else { 0 });
    let vector = snapshot();
    for page in pages {
        for mut obj in decode_page::<K>(variant.encoding, page)? {
            kube_runtime::lean::lean(&mut obj, variant.keep_managed_fields);
            if variant.compact {
                held_encoded.push(encoded(&obj)?);
            } else {
                held.push(Arc::new(obj));
            }
        }
    }
    let alone = snapshot();
    let decoded = held.len() + held_encoded.len();
    ensure!(decoded == objects, "decoded {decoded} of {objects}");
    drop(held);
    drop(held_encoded);
    let objects_bytes = alone.bytes - vector.bytes;
    let objects_blocks = alone.blocks - vector.blocks;
    ensure!(
        (snapshot().bytes - before.bytes).abs() < 4096,
        "the objects' memory was not all freed"
    );

    // The store: through its own writer.
    let before = snapshot();
    let mut w = writer::<K>(variant);
    let stored = apply_list(&mut w, variant.encoding, pages)?;
    let full = snapshot();
    ensure!(
        stored == objects && w.store().len() == objects,
        "stored {stored} of {objects}"
    );

    // A relist of the same list, in place.
    reset_peak();
    apply_list(&mut w, variant.encoding, pages)?;
    let peak = PEAK_BYTES.load(Relaxed);
    let steady = snapshot();
    ensure!(
        w.store().is_compact() == variant.compact,
        "the store is not as asked"
    );
    let get_micros = get_micros(&w.store())?;
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
        "get_micros_per_object": get_micros,
    }))
}

fn measure_kind<K>(dir: &Path, pages: &[Vec<u8>]) -> Result<serde_json::Value>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let mut objects = 0;
    for page in pages {
        objects += decode_json::<K>(page)
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
    let protobuf = protobuf_pages::<K>(pages)?;
    let mut results = serde_json::Map::new();
    for variant in variants() {
        let pages = match (variant.encoding, &protobuf) {
            (Encoding::Json, _) => pages,
            (Encoding::Protobuf | Encoding::ProtobufSkippingManagedFields, Some(bodies)) => {
                bodies.as_slice()
            }
            (Encoding::Protobuf | Encoding::ProtobufSkippingManagedFields, None) => continue,
        };
        results.insert(
            variant.name.into(),
            measure_variant::<K>(&variant, pages, objects)?,
        );
    }
    let protobuf_bytes = protobuf
        .as_ref()
        .map(|b| b.iter().map(Vec::len).sum::<usize>() as f64 / objects as f64);
    Ok(json!({
        "kind": K::api_resource(&()).kind,
        "payloads": dir.display().to_string(),
        "pages": pages.len(),
        "objects": objects,
        "json_bytes_per_object": json_bytes as f64 / objects as f64,
        "protobuf_bytes_per_object": protobuf_bytes,
        "size_of_object": std::mem::size_of::<K>(),
        "variants": results,
    }))
}
