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
//!
//! Each typed operation negotiates its encoding (see [`crate::codec`]):
//! protobuf for built-in kinds on a client with
//! [`ClientBuilder::protobuf`](crate::ClientBuilder::protobuf) on, JSON
//! otherwise, and decodes the answer by the encoding the server chose.

mod list;
pub mod remote;
pub mod subresource;

use std::fmt::Debug;
use std::marker::PhantomData;

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, ObjectOrStatus};
use crate::codec::{Answer, Wire};
use crate::error::{Error, Result};
use crate::object::{ObjectList, PartialObjectMetadata};
use crate::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use crate::path::segment;
use crate::resource::{ApiResource, Resource};
use crate::watch::WatchEvent;

pub(crate) use crate::codec::JSON;
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
    skip_managed_fields: bool,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            metadata_only: self.metadata_only,
            skip_managed_fields: self.skip_managed_fields,
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
            .field("skip_managed_fields", &self.skip_managed_fields)
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
            skip_managed_fields: false,
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
            skip_managed_fields: self.skip_managed_fields,
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

    /// This Api, decoding answers without `metadata.managedFields` when
    /// `skip` is true (default false: objects come as the server has them).
    ///
    /// `managedFields` is server-side apply's record of which field manager
    /// set which field; it is often most of a small object and of the
    /// time spent decoding it. With `skip`, the objects of the answers of
    /// this Api — [`get`](Api::get), [`list`](Api::list),
    /// [`list_stream`](Api::list_stream), [`watch`](Api::watch) events,
    /// the objects that writes and subresources return — are decoded
    /// without the field, `None` in the result: it is never built, which is
    /// what makes this cheaper than dropping it afterwards. A protobuf
    /// answer's field is stepped over on the wire; a JSON answer's (custom
    /// resources, metadata-only reads, a client with
    /// [`ClientBuilder::protobuf`](crate::ClientBuilder::protobuf) off) is
    /// still read as text to find its end, but nothing of it is built (see
    /// [`crate::codec`]). kube-runtime's caches turn this on for the
    /// watches feeding them.
    ///
    /// An object read this way can still be sent back with
    /// [`replace`](Api::replace): an update carrying no `managedFields`
    /// leaves the server's record as it is (the API server's rule for
    /// clients that do not know the field).
    #[must_use]
    pub fn skip_managed_fields(mut self, skip: bool) -> Self {
        self.skip_managed_fields = skip;
        self
    }

    /// Whether protobuf answers are decoded without `metadata.managedFields`
    /// (see [`Api::skip_managed_fields`]).
    pub fn skips_managed_fields(&self) -> bool {
        self.skip_managed_fields
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

    /// The encoding of a typed request whose answer (and body) is a `T`:
    /// protobuf when the client allows it and `T` has a codec; always
    /// JSON for metadata-only reads.
    pub(crate) fn wire<T>(&self) -> Wire<T>
    where
        T: DeserializeOwned + Serialize + Send + 'static,
    {
        if self.metadata_only {
            Wire::json().skipping_managed_fields(self.skip_managed_fields)
        } else {
            Wire::negotiate(self.client.protobuf())
                .skipping_managed_fields(self.skip_managed_fields)
        }
    }

    /// A request accepting JSON (metadata-only Apis: `PartialObjectMetadata`
    /// or its list, `list`).
    pub(crate) fn request(
        &self,
        method: http::Method,
        path: String,
        content_type: Option<&str>,
        body: Vec<u8>,
        list: bool,
    ) -> Result<http::Request<Vec<u8>>> {
        self.request_accepting(method, path, content_type, body, self.json_accept(list))
    }

    /// What a JSON request of this Api accepts.
    fn json_accept(&self, list: bool) -> &'static str {
        match (self.metadata_only, list) {
            (true, true) => META_LIST_ACCEPT,
            (true, false) => META_ACCEPT,
            _ => JSON,
        }
    }

    /// A request with `Accept: accept` (protobuf negotiated) or this Api's
    /// JSON `Accept` otherwise.
    pub(crate) fn request_with<T>(
        &self,
        wire: &Wire<T>,
        method: http::Method,
        path: String,
        body: Option<(&str, Vec<u8>)>,
        list: bool,
    ) -> Result<http::Request<Vec<u8>>>
    where
        T: DeserializeOwned + Serialize + Send + 'static,
    {
        let accept = if wire.is_protobuf() {
            wire.accept()
        } else {
            self.json_accept(list)
        };
        let (content_type, body) = match body {
            Some((ct, body)) => (Some(ct), body),
            None => (None, vec![]),
        };
        self.request_accepting(method, path, content_type, body, accept)
    }

    fn request_accepting(
        &self,
        method: http::Method,
        path: String,
        content_type: Option<&str>,
        body: Vec<u8>,
        accept: &str,
    ) -> Result<http::Request<Vec<u8>>> {
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

    /// Sends `req` and reads the whole answer.
    pub(crate) async fn answer(&self, req: http::Request<Vec<u8>>) -> Result<Answer> {
        self.client.request_answer(req).await
    }
}

/// An open stream: its full URL, the answer's `Content-Type` and its body
/// chunks (transport errors naming that URL).
pub(crate) struct OpenStream {
    pub url: String,
    pub content_type: Option<String>,
    pub chunks: futures::stream::BoxStream<'static, Result<bytes::Bytes>>,
}

impl<K> Api<K> {
    /// GETs `path` as a stream (watches, followed logs) accepting `accept`.
    pub(crate) async fn open_stream(&self, path: String, accept: &str) -> Result<OpenStream> {
        let url = format!("{}{path}", self.client.server_url());
        let req = self.request_accepting(http::Method::GET, path, None, vec![], accept)?;
        let resp = self.client.request_streaming(req).await?;
        let content_type = crate::client::content_type_of(&resp);
        let chunk_url = url.clone();
        let chunks = resp
            .bytes_stream()
            .map(move |r| r.map_err(|e| crate::client::transport_error("GET", &chunk_url, &e)))
            .boxed();
        Ok(OpenStream {
            url,
            content_type,
            chunks,
        })
    }

    /// Sends `obj` with `method` to `path` and decodes the `T` answered:
    /// a protobuf body when negotiated — sent once more as JSON if the
    /// server refuses protobuf bodies (415), and as JSON from then on for
    /// this API group/version on this client — else JSON.
    pub(crate) async fn send_object<T>(
        &self,
        method: http::Method,
        path: String,
        obj: &T,
    ) -> Result<T>
    where
        T: DeserializeOwned + Serialize + Send + 'static,
    {
        let wire = self.wire::<T>();
        let api_version = &self.resource.api_version;
        let body = if self.client.refuses_protobuf_bodies(api_version) {
            (JSON, crate::codec::json_body(obj)?)
        } else {
            wire.body(obj)?
        };
        let sent_protobuf = body.0 != JSON;
        let req = self.request_with(&wire, method.clone(), path.clone(), Some(body), false)?;
        match self.answer(req).await {
            Ok(answer) => wire.object(&answer),
            Err(e) if sent_protobuf && e.code() == Some(415) => {
                tracing::debug!(
                    api_version,
                    "the server refused a protobuf body (415); sending JSON, now and from now on"
                );
                self.client.note_protobuf_bodies_refused(api_version);
                let body = (JSON, crate::codec::json_body(obj)?);
                let req = self.request_with(&wire, method, path, Some(body), false)?;
                wire.object(&self.answer(req).await?)
            }
            Err(e) => Err(e),
        }
    }
}

impl<K> Api<K>
where
    K: Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    /// Reads one object.
    pub async fn get(&self, name: &str) -> Result<K> {
        let wire = self.wire::<K>();
        let path = self.path(Some(name), None, "")?;
        let req = self.request_with(&wire, http::Method::GET, path, None, false)?;
        wire.object(&self.answer(req).await?)
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
        let wire = self.wire::<K>();
        let path = self.path(None, None, &lp.query())?;
        let req = self.request_with(&wire, http::Method::GET, path, None, true)?;
        wire.list(&self.answer(req).await?)
    }

    /// Creates an object.
    pub async fn create(&self, pp: &PostParams, obj: &K) -> Result<K> {
        let path = self.path(None, None, &pp.query())?;
        self.send_object(http::Method::POST, path, obj).await
    }

    /// Replaces an object; a stale `metadata.resourceVersion` is a 409 Conflict.
    pub async fn replace(&self, name: &str, pp: &PostParams, obj: &K) -> Result<K> {
        let path = self.path(Some(name), None, &pp.query())?;
        self.send_object(http::Method::PUT, path, obj).await
    }

    /// Patches an object with any of the four patch kinds (the patch is
    /// sent as JSON; the answer may be protobuf).
    pub async fn patch<P: Serialize + Debug>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let wire = self.wire::<K>();
        let req = self.patch_request(&wire, Some(name), None, pp, patch)?;
        wire.object(&self.answer(req).await?)
    }

    pub(crate) fn patch_request<P: Serialize, T>(
        &self,
        wire: &Wire<T>,
        name: Option<&str>,
        subresource: Option<&str>,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<http::Request<Vec<u8>>>
    where
        T: DeserializeOwned + Serialize + Send + 'static,
    {
        if matches!(patch, Patch::Apply(_)) && pp.field_manager.is_none() {
            return Err(Error::InvalidRequest(
                "server-side apply needs PatchParams::field_manager".into(),
            ));
        }
        let body = patch
            .body()
            .map_err(|e| Error::InvalidRequest(format!("cannot serialize the patch: {e}")))?;
        self.request_with(
            wire,
            http::Method::PATCH,
            self.path(name, subresource, &pp.query())?,
            Some((patch.content_type(), body)),
            false,
        )
    }

    /// Deletes an object. The server answers with the object (still there,
    /// being finalized or deleted in the background) or a success `Status`.
    pub async fn delete(&self, name: &str, dp: &DeleteParams) -> Result<ObjectOrStatus<K>> {
        let wire = self.wire::<K>();
        let path = self.path(Some(name), None, "")?;
        let req = self.request_with(
            &wire,
            http::Method::DELETE,
            path,
            Some((JSON, dp.body())),
            false,
        )?;
        wire.object_or_status(&self.answer(req).await?)
    }

    /// Deletes every object matching `lp`'s selectors.
    pub async fn delete_collection(
        &self,
        dp: &DeleteParams,
        lp: &ListParams,
    ) -> Result<ObjectOrStatus<ObjectList<K>>> {
        let wire = self.wire::<K>();
        let path = self.path(None, None, &lp.query())?;
        let req = self.request_with(
            &wire,
            http::Method::DELETE,
            path,
            Some((JSON, dp.body())),
            true,
        )?;
        wire.list_or_status(&self.answer(req).await?)
    }

    /// Watches changes after `resource_version` (`""`: from now, or with
    /// [`WatchParams::streaming_list`] the current state first). The stream
    /// ends when the server closes it (`timeoutSeconds`); resuming is the
    /// caller's job (kube-runtime's watcher does it). The events come as
    /// JSON lines or protobuf frames, as the server answered (see
    /// [`crate::watch`]).
    pub async fn watch(
        &self,
        wp: &WatchParams,
        resource_version: &str,
    ) -> Result<impl Stream<Item = Result<WatchEvent<K>>> + Send + use<K>> {
        let wire = self.wire::<K>();
        let accept = if wire.is_protobuf() {
            wire.accept()
        } else {
            self.json_accept(false)
        };
        let path = self.path(None, None, &wp.query(resource_version))?;
        let stream = self.open_stream(path, accept).await?;
        Ok(wire.watch_events(
            stream.url,
            stream.content_type.as_deref(),
            stream.chunks,
            self.client.max_event_bytes(),
        ))
    }
}
