//! `kube-client`: the HTTP layer of kube.
//!
//! This crate will turn a [`kube_config::Config`] into a `Client` (reqwest +
//! rustls) and offer a typed `Api<K>` for every resource. It is being built
//! in the kube-client issue; today it only re-exports the configuration layer
//! it stands on.

pub use kube_config as config;
