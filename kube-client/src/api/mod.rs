//! `Api<K>`: the operations on one kind, in one namespace or all of them.
//!
//! An `Api` is a client plus an [`ApiResource`] plus an optional namespace;
//! it is cheap to clone. For static types (`Pod`, `ConfigMap`, …) make one
//! with [`Api::namespaced`], [`Api::default_namespaced`] or [`Api::all`];
//! for dynamic ones pass the `ApiResource` to the `*_with` constructors.
//!
//! Reads: [`get`](Api::get), [`get_opt`](Api::get_opt) (404 → `None`),
//! [`list`](Api::list) (one page) and [`list_stream`](Api::list_stream)
//! (every page). Writes: [`create`](Api::create), [`replace`](Api::replace),
//! [`patch`](Api::patch) (merge, JSON, strategic, server-side apply),
//! [`delete`](Api::delete), [`delete_collection`](Api::delete_collection).
//! Changes: [`watch`](Api::watch). Subresources live in [`subresource`].

mod list;
pub mod remote;
pub mod subresource;

use std::fmt::Debug;
use std::marker::PhantomData;

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, ObjectOrStatus};
use crate::error::{Error, Result};
use crate::object::{ObjectList, PartialObjectMetadata};
use crate::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use crate::path::segment;
use crate::resource::{ApiResource, Resource};
use crate::watch::{WatchEvent, decode_events_with_limit};

const JSON: &str = "application/json";
const META_ACCEPT: &str =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
const META_LIST_ACCEPT: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

/// The operations on one kind `K`, in one namespace or cluster-wide.
pub struct Api<K> {
    client: Client,
    resource: ApiResource,
    namespace: Option<String>,
    metadata_only: bool,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            metadata_only: self.metadata_only,
            _kind: PhantomData,
        }
    }
}

impl<K> Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("resource", &self.resource)
            .field("namespace", &self.namespace)
            .field("metadata_only", &self.metadata_only)
            .finish_non_exhaustive()
    }
}

impl<K: Resource<DynamicType = ()>> Api<K> {
    /// All namespaces (or a cluster-scoped kind).
    pub fn all(client: Client) -> Self {
        Self::all_with(client, &())
    }
    /// One namespace. The name is checked by each request, not here: an
    /// invalid one (`..`, `a/b`, empty, …) makes every request that uses it
    /// fail with [`Error::InvalidPathSegment`] before anything is sent.
    pub fn namespaced(client: Client, namespace: &str) -> Self {
        Self::namespaced_with(client, namespace, &())
    }
    /// The namespace of the client's context.
    pub fn default_namespaced(client: Client) -> Self {
        Self::default_namespaced_with(client, &())
    }
}

impl<K: Resource> Api<K> {
    fn make(client: Client, namespace: Option<String>, dt: &K::DynamicType) -> Self {
        Self {
            client,
            resource: K::api_resource(dt).into_owned(),
            namespace,
            metadata_only: false,
            _kind: PhantomData,
        }
    }
    /// All namespaces, for a kind known at run time.
    pub fn all_with(client: Client, dt: &K::DynamicType) -> Self {
        Self::make(client, None, dt)
    }
    /// One namespace, for a kind known at run time (checked by each
    /// request, as for [`Api::namespaced`]).
    pub fn namespaced_with(client: Client, namespace: &str, dt: &K::DynamicType) -> Self {
        Self::make(client, Some(namespace.to_string()), dt)
    }
    /// The client's default namespace, for a kind known at run time.
    pub fn default_namespaced_with(client: Client, dt: &K::DynamicType) -> Self {
        let ns = client.default_namespace().to_string();
        Self::make(client, Some(ns), dt)
    }

    /// The same kind and namespace, reading only metadata
    /// (`PartialObjectMetadata`): far less to transfer and keep for large
    /// caches.
    pub fn metadata(&self) -> Api<PartialObjectMetadata> {
        Api {
            client: self.client.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            metadata_only: true,
            _kind: PhantomData,
        }
    }
}

impl<K> Api<K> {
    /// The kind this addresses.
    pub fn resource(&self) -> &ApiResource {
        &self.resource
    }
    /// The namespace, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `/api(s)/…/plural[/name[/subresource]]` plus `query`. Every part
    /// (including the namespace, checked here at request time) passes
    /// [`crate::path::segment`].
    pub(crate) fn path(
        &self,
        name: Option<&str>,
        subresource: Option<&str>,
        query: &str,
    ) -> Result<String> {
        let mut path = self.resource.collection_path(self.namespace.as_deref())?;
        if let Some(name) = name {
            path.push('/');
            path.push_str(&segment("name", name)?);
        }
        if let Some(sub) = subresource {
            path.push('/');
            path.push_str(&segment("subresource", sub)?);
        }
        path.push_str(query);
        Ok(path)
    }

    pub(crate) fn request(
        &self,
        method: http::Method,
        path: String,
        content_type: Option<&str>,
        body: Vec<u8>,
        list: bool,
    ) -> Result<http::Request<Vec<u8>>> {
        let accept = match (self.metadata_only, list) {
            (true, true) => META_LIST_ACCEPT,
            (true, false) => META_ACCEPT,
            _ => JSON,
        };
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, accept);
        if let Some(ct) = content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        b.body(body)
            .map_err(|e| Error::InvalidRequest(e.to_string()))
    }
}

impl<K> Api<K> {
    /// GETs `path` as a stream (watches, followed logs): its full URL and
    /// its body chunks, transport errors naming that URL.
    pub(crate) async fn open_stream(
        &self,
        path: String,
    ) -> Result<(
        String,
        futures::stream::BoxStream<'static, Result<bytes::Bytes>>,
    )> {
        let url = format!("{}{path}", self.client.server_url());
        let req = self.request(http::Method::GET, path, None, vec![], false)?;
        let resp = self.client.request_streaming(req).await?;
        let chunk_url = url.clone();
        let chunks = resp
            .bytes_stream()
            .map(move |r| r.map_err(|e| crate::client::transport_error("GET", &chunk_url, &e)))
            .boxed();
        Ok((url, chunks))
    }
}

fn to_body<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::InvalidRequest(format!("cannot serialize the body: {e}")))
}

impl<K> Api<K>
where
    K: Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    /// Reads one object.
    pub async fn get(&self, name: &str) -> Result<K> {
        let req = self.request(
            http::Method::GET,
            self.path(Some(name), None, "")?,
            None,
            vec![],
            false,
        )?;
        self.client.request(req).await
    }

    /// Reads one object, `None` if it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(obj) => Ok(Some(obj)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists one page (all objects when `limit` is unset).
    pub async fn list(&self, lp: &ListParams) -> Result<ObjectList<K>> {
        let req = self.request(
            http::Method::GET,
            self.path(None, None, &lp.query())?,
            None,
            vec![],
            true,
        )?;
        self.client.request(req).await
    }

    /// Creates an object.
    pub async fn create(&self, pp: &PostParams, obj: &K) -> Result<K> {
        let req = self.request(
            http::Method::POST,
            self.path(None, None, &pp.query())?,
            Some(JSON),
            to_body(obj)?,
            false,
        )?;
        self.client.request(req).await
    }

    /// Replaces an object; a stale `metadata.resourceVersion` is a 409 Conflict.
    pub async fn replace(&self, name: &str, pp: &PostParams, obj: &K) -> Result<K> {
        let req = self.request(
            http::Method::PUT,
            self.path(Some(name), None, &pp.query())?,
            Some(JSON),
            to_body(obj)?,
            false,
        )?;
        self.client.request(req).await
    }

    /// Patches an object with any of the four patch kinds.
    pub async fn patch<P: Serialize + Debug>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let req = self.patch_request(Some(name), None, pp, patch)?;
        self.client.request(req).await
    }

    pub(crate) fn patch_request<P: Serialize>(
        &self,
        name: Option<&str>,
        subresource: Option<&str>,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<http::Request<Vec<u8>>> {
        if matches!(patch, Patch::Apply(_)) && pp.field_manager.is_none() {
            return Err(Error::InvalidRequest(
                "server-side apply needs PatchParams::field_manager".into(),
            ));
        }
        let body = patch
            .body()
            .map_err(|e| Error::InvalidRequest(format!("cannot serialize the patch: {e}")))?;
        self.request(
            http::Method::PATCH,
            self.path(name, subresource, &pp.query())?,
            Some(patch.content_type()),
            body,
            false,
        )
    }

    /// Deletes an object. The server answers with the object (still there,
    /// being finalized or deleted in the background) or a success `Status`.
    pub async fn delete(&self, name: &str, dp: &DeleteParams) -> Result<ObjectOrStatus<K>> {
        let req = self.request(
            http::Method::DELETE,
            self.path(Some(name), None, "")?,
            Some(JSON),
            dp.body(),
            false,
        )?;
        self.client.request_object_or_status(req).await
    }

    /// Deletes every object matching `lp`'s selectors.
    pub async fn delete_collection(
        &self,
        dp: &DeleteParams,
        lp: &ListParams,
    ) -> Result<ObjectOrStatus<ObjectList<K>>> {
        let req = self.request(
            http::Method::DELETE,
            self.path(None, None, &lp.query())?,
            Some(JSON),
            dp.body(),
            true,
        )?;
        self.client.request_object_or_status(req).await
    }

    /// Watches changes after `resource_version` (`""`: from now, or with
    /// [`WatchParams::streaming_list`] the current state first). The stream
    /// ends when the server closes it (`timeoutSeconds`); resuming is the
    /// caller's job (kube-runtime's watcher does it).
    pub async fn watch(
        &self,
        wp: &WatchParams,
        resource_version: &str,
    ) -> Result<impl Stream<Item = Result<WatchEvent<K>>> + Send + use<K>> {
        let path = self.path(None, None, &wp.query(resource_version))?;
        let (url, chunks) = self.open_stream(path).await?;
        Ok(decode_events_with_limit(
            url,
            chunks,
            self.client.max_event_bytes(),
        ))
    }
}
