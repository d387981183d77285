//! Controllers: reconcile each object until the world matches it.
//!
//! A controller watches some kinds, turns every change into the *key* of the
//! object to reconcile ([`ObjectRef`]), queues the keys ([`WorkQueue`]:
//! deduplicated, never two reconciles of one key at once, delayed requeues,
//! per-key retry backoff), and runs the user's `reconcile` on them with
//! bounded concurrency ([`run_workers`]). Each reconcile returns an
//! [`Action`]: requeue after a delay, wait for the next change, or back off.
//! The results come out as a stream of `Result<(ObjectRef<K>, Action),
//! Error<E>>`.
//!
//! The pieces, one concept per module:
//! - [`object_ref`]: the key of an object;
//! - [`workqueue`]: client-go's work queue semantics;
//! - [`rate_limit`]: per-key exponential backoff plus an overall token
//!   bucket, for retries;
//! - [`action`]: what a reconcile asks for next;
//! - [`runner`]: the worker pool that drives reconciles from the queue;
//! - [`error`]: what the result stream reports;
//! - [`builder`]: [`Controller`], which puts it all together on shared
//!   informers (kube-rs's builder: `new`, `owns`, `watches`, `run`);
//! - [`triggers`]: which changes queue which keys;
//! - [`predicates`]: skipping changes that do not matter;
//! - [`config`]: the controller's settings;
//! - [`shutdown`]: graceful and immediate shutdown;
//! - [`leading`]: reconciling only while this replica leads (leader
//!   election), with warm or cold standby.

pub mod action;
pub mod builder;
pub mod config;
pub mod error;
pub mod leading;
pub mod object_ref;
pub mod predicates;
pub mod rate_limit;
pub mod runner;
pub mod shutdown;
pub mod triggers;
pub mod workqueue;

pub use action::{Action, default_error_policy};
pub use builder::Controller;
pub use config::Config;
pub use error::Error;
pub use leading::{current_term, report_leadership, run_per_term};
pub use object_ref::ObjectRef;
pub use rate_limit::{RateLimiter, RateLimiterConfig};
pub use runner::{RunnerConfig, run_workers};
pub use triggers::TriggerConfig;
pub use workqueue::{WorkQueue, WorkQueueConfig};
