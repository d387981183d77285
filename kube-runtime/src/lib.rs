//! `kube-runtime`: caches of Kubernetes objects that stay current.
//!
//! Controllers and operators rarely want single requests; they want to
//! *know* the current state of some kind and to *react* to its changes. The
//! API server offers lists and watches; this crate turns them into:
//!
//! - [`Watcher`]: list, then watch forever, resuming from the last
//!   resourceVersion after timeouts and cut connections, relisting after
//!   410 Gone, backing off after errors (client-go's Reflector semantics);
//! - [`Store`]: a concurrent cache keyed by namespace/name, holding
//!   `Arc<K>`, with a ready signal;
//! - [`Reflector`]: both together, with the event queue the original kube
//!   README had — `poll()`, `read()`, `events()`;
//! - [`index`]: optional indexes over the store (by label, owner, namespace
//!   or any function), as client-go's Indexer;
//! - [`informer`]: shared informers — one list + watch and one store per
//!   kind, however many reflectors, controllers and subscribers use it,
//!   with a transform applied before objects are stored;
//! - [`controller`]: the engine of a controller — a work queue with
//!   client-go's semantics (dedup, one reconcile per object at a time,
//!   delayed requeues, per-key retry backoff), the [`controller::Action`] a
//!   reconcile returns, and a bounded worker pool;
//!   and [`Controller`], the builder that runs it on shared informers
//!   (kube-rs's `Controller::new(api, cfg).owns(..).run(..)`);
//! - [`finalizer`]: run cleanup code before an object is deleted;
//! - [`leader_election`]: of several replicas, exactly one leads (a
//!   `coordination.k8s.io` Lease, client-go's algorithm);
//! - [`events`]: publish `events.k8s.io` Events about objects, in series,
//!   spam-filtered, without ever blocking a reconcile;
//! - [`metrics`]: controller-runtime's Prometheus metrics (reconciles, work
//!   queue, client requests, leader election);
//! - [`admin`]: an opt-in HTTP server for `/metrics`, `/healthz` and
//!   `/readyz`.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
//! use kube_client::{Api, ApiResource, Client, Object};
//! use kube_runtime::{Reflector, WatchEvent};
//!
//! # async fn demo() -> Result<(), kube_client::Error> {
//! let client = Client::try_default().await?;
//! let pods: Api<Object<PodSpec, PodStatus>> =
//!     Api::namespaced_with(client, "kube-system", &ApiResource::of::<Pod>());
//! let mut rf = Reflector::new(pods);
//! rf.poll().await?; // the initial list
//! for pod in rf.read() {
//!     let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("?");
//!     println!("{} is {phase}", pod.metadata.name.as_deref().unwrap_or_default());
//! }
//! rf.poll().await?; // the next change(s)
//! for event in rf.events() {
//!     match event {
//!         WatchEvent::Added(p) | WatchEvent::Modified(p) => println!("upsert {:?}", p.metadata.name),
//!         WatchEvent::Deleted(p) => println!("gone {:?}", p.metadata.name),
//!         WatchEvent::Error(e) => println!("error: {e}"),
//!         WatchEvent::Desynced { dropped } => println!("{dropped} events lost; re-read the store"),
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod admin;
pub mod backoff;
pub mod controller;
pub mod events;
pub mod finalizer;
pub mod index;
pub mod informer;
pub mod leader_election;
pub mod lean;
pub mod metrics;
pub mod queue;
pub mod reflector;
pub mod store;
pub mod watcher;

mod runtime;

pub use backoff::BackoffConfig;
pub use controller::Controller;
pub use informer::{Informer, InformerConfig, SharedInformers, Subscription};
pub use queue::WatchEvent;
pub use reflector::{Reflector, ReflectorConfig};
pub use store::{Store, Writer};
pub use watcher::{Event, Watcher, WatcherConfig};

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
