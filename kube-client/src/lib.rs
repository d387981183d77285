//! `kube-client`: talk to a Kubernetes API server.
//!
//! A [`Client`] is one configured connection (pool) to one API server, made
//! from a [`kube_config::Config`]. An [`Api<K>`] is the set of operations on
//! one kind through that client. Kinds are described by [`ApiResource`] and
//! implemented by [`Resource`] types: every k8s-openapi type, the generic
//! [`Object<Spec, Status>`], [`DynamicObject`] for kinds discovered at run
//! time, and [`PartialObjectMetadata`] for metadata-only reads.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_client::{Api, Client, params::ListParams};
//!
//! # async fn demo() -> Result<(), kube_client::Error> {
//! let client = Client::try_default().await?;
//! let config_maps: Api<ConfigMap> = Api::default_namespaced(client);
//! for cm in config_maps.list(&ListParams::default()).await?.items {
//!     println!("{}", cm.metadata.name.unwrap_or_default());
//! }
//! # Ok(()) }
//! ```
//!
//! Errors are one enum, [`Error`]: an answer from the server keeps its
//! `Status` (`err.is_not_found()`, `is_conflict()`, `is_gone()`, …); a
//! transport, TLS, credential or decoding failure names the URL.

pub mod api;
pub mod client;
pub mod codec;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod object;
pub mod params;
pub mod path;
pub mod resource;
pub mod watch;

pub use api::Api;
pub use client::{Client, ClientBuilder, ObjectOrStatus};
pub use error::{Error, Result};
pub use k8s_openapi;
pub use kube_config as config;
pub use object::{DynamicObject, Object, ObjectList, PartialObjectMetadata, TypeMeta};
pub use resource::{ApiResource, Resource, ResourceExt, Scope};
pub use watch::WatchEvent;
