//! `kube-runtime`: caches that stay current.
//!
//! This crate will hold the `Reflector`: a cache of one resource kept current
//! by list + watch, resuming from the last resourceVersion and relisting on
//! 410 Gone, with an event queue (`poll()`, `read()`, `events()`). It is being
//! built in the kube-runtime issue; today it only re-exports the client layer
//! it stands on.

pub use kube_client as client;
