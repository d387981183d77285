//! Subresources: `status`, `scale`, Pod `log` and Pod `eviction`.
//!
//! - status: read, patch or replace only the status of an object, as
//!   controllers do (the main endpoint ignores status changes for kinds
//!   with a status subresource);
//! - scale: the autoscaling/v1 `Scale` of Deployments, StatefulSets,
//!   ReplicaSets and custom resources that declare one;
//! - log: a Pod container's log, whole or followed as a stream of lines;
//! - eviction: a policy/v1 `Eviction`, which respects PodDisruptionBudgets
//!   (429 when a budget forbids it).

use std::fmt::Debug;

use futures::Stream;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, Time};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Api, JSON};
use crate::client::ObjectOrStatus;
use crate::codec::{Wire, json_body};
use crate::error::{Error, Result};
use crate::params::{DeleteParams, Patch, PatchParams, PostParams, push_query};

impl<K> Api<K>
where
    K: Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    /// Reads an object through its `status` subresource.
    pub async fn get_status(&self, name: &str) -> Result<K> {
        let wire = self.wire::<K>();
        let path = self.path(Some(name), Some("status"), "")?;
        let req = self.request_with(&wire, http::Method::GET, path, None, false)?;
        wire.object(&self.answer(req).await?)
    }

    /// Patches only the status.
    pub async fn patch_status<P: Serialize + Debug>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let wire = self.wire::<K>();
        let req = self.patch_request(&wire, Some(name), Some("status"), pp, patch)?;
        wire.object(&self.answer(req).await?)
    }

    /// Replaces only the status (the object's resourceVersion must be current).
    pub async fn replace_status(&self, name: &str, pp: &PostParams, obj: &K) -> Result<K> {
        let path = self.path(Some(name), Some("status"), &pp.query())?;
        self.send_object(http::Method::PUT, path, obj).await
    }

    /// The encoding of a `scale` request: protobuf only when `K` itself is
    /// a built-in kind (a custom resource's scale is served as JSON).
    fn scale_wire(&self) -> Wire<Scale> {
        if self.wire::<K>().is_protobuf() {
            self.wire::<Scale>()
        } else {
            Wire::json()
        }
    }

    /// Reads the `scale` subresource.
    pub async fn get_scale(&self, name: &str) -> Result<Scale> {
        let wire = self.scale_wire();
        let path = self.path(Some(name), Some("scale"), "")?;
        let req = self.request_with(&wire, http::Method::GET, path, None, false)?;
        wire.object(&self.answer(req).await?)
    }

    /// Patches the `scale` subresource (e.g. `{"spec":{"replicas":3}}`).
    pub async fn patch_scale<P: Serialize + Debug>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Scale> {
        let wire = self.scale_wire();
        let req = self.patch_request(&wire, Some(name), Some("scale"), pp, patch)?;
        wire.object(&self.answer(req).await?)
    }
}

/// Options of a Pod log read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogParams {
    /// The container (required when the Pod has several).
    pub container: Option<String>,
    /// Keep the stream open and send new lines as they are written.
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// Only lines newer than this many seconds (not with `since_time`).
    pub since_seconds: Option<i64>,
    /// Only lines written at or after this time (not with
    /// `since_seconds`); sent to the second, as kubectl does.
    pub since_time: Option<Time>,
    /// Prefix each line with its RFC3339 timestamp.
    pub timestamps: bool,
    /// The previous (terminated) instance of the container.
    pub previous: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<i64>,
}

impl LogParams {
    /// The query string; both `since_seconds` and `since_time`, or a
    /// negative count, is an [`Error::InvalidRequest`] (the server would
    /// refuse them too).
    fn query(&self) -> Result<String> {
        if self.since_seconds.is_some() && self.since_time.is_some() {
            return Err(Error::InvalidRequest(
                "LogParams: at most one of since_seconds and since_time".into(),
            ));
        }
        for (name, value) in [
            ("tail_lines", self.tail_lines),
            ("since_seconds", self.since_seconds),
            ("limit_bytes", self.limit_bytes),
        ] {
            if value.is_some_and(|v| v < 0 || (v == 0 && name != "tail_lines")) {
                return Err(Error::InvalidRequest(format!(
                    "LogParams: {name} must be positive, got {}",
                    value.unwrap_or_default()
                )));
            }
        }
        let mut q = String::new();
        if let Some(c) = &self.container {
            push_query(&mut q, "container", c);
        }
        if self.follow {
            push_query(&mut q, "follow", "true");
        }
        if let Some(n) = self.tail_lines {
            push_query(&mut q, "tailLines", &n.to_string());
        }
        if let Some(s) = self.since_seconds {
            push_query(&mut q, "sinceSeconds", &s.to_string());
        }
        if let Some(t) = &self.since_time {
            push_query(&mut q, "sinceTime", &format!("{:.0}", t.0));
        }
        if self.timestamps {
            push_query(&mut q, "timestamps", "true");
        }
        if self.previous {
            push_query(&mut q, "previous", "true");
        }
        if let Some(b) = self.limit_bytes {
            push_query(&mut q, "limitBytes", &b.to_string());
        }
        Ok(q)
    }
}

impl Api<Pod> {
    /// A container's log, whole.
    pub async fn logs(&self, name: &str, lp: &LogParams) -> Result<String> {
        let mut lp = lp.clone();
        lp.follow = false;
        let req = self.request(
            http::Method::GET,
            self.path(Some(name), Some("log"), &lp.query()?)?,
            None,
            vec![],
            false,
        )?;
        self.client.request_text(req).await
    }

    /// A container's log as a stream of lines (without the newline),
    /// following new output when `lp.follow` is set.
    pub async fn log_lines(
        &self,
        name: &str,
        lp: &LogParams,
    ) -> Result<impl Stream<Item = Result<String>> + Send + use<>> {
        let path = self.path(Some(name), Some("log"), &lp.query()?)?;
        let stream = self.open_stream(path, JSON).await?;
        Ok(crate::watch::lines_with_limit(
            stream.url,
            stream.chunks,
            self.client.max_event_bytes(),
        ))
    }

    /// Evicts a Pod (policy/v1 `Eviction`): like a delete, but refused with
    /// 429 when a PodDisruptionBudget does not allow it.
    pub async fn evict(&self, name: &str, dp: &DeleteParams) -> Result<Status> {
        let delete_options: serde_json::Value = serde_json::from_slice(&dp.body())
            .map_err(|e| Error::InvalidRequest(format!("delete options: {e}")))?;
        let eviction = serde_json::json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": self.namespace()},
            "deleteOptions": delete_options,
        });
        let path = self.path(Some(name), Some("eviction"), "")?;
        let req = self.request(
            http::Method::POST,
            path,
            Some(JSON),
            json_body(&eviction)?,
            false,
        )?;
        match self
            .client
            .request_object_or_status::<serde_json::Value>(req)
            .await?
        {
            ObjectOrStatus::Status(status) => Ok(*status),
            ObjectOrStatus::Object(other) => Ok(Status {
                message: Some(format!(
                    "eviction accepted (answered with a {} object)",
                    other
                        .get("kind")
                        .and_then(|k| k.as_str())
                        .unwrap_or("kindless")
                )),
                ..Status::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_query() {
        let lp = LogParams {
            container: Some("app".into()),
            follow: true,
            tail_lines: Some(10),
            ..LogParams::default()
        };
        assert_eq!(
            lp.query().unwrap(),
            "?container=app&follow=true&tailLines=10"
        );
        let at: k8s_openapi::jiff::Timestamp = "2026-11-25T16:30:05.123456Z".parse().unwrap();
        let lp = LogParams {
            since_time: Some(Time(at)),
            timestamps: true,
            previous: true,
            limit_bytes: Some(100),
            ..LogParams::default()
        };
        assert_eq!(
            lp.query().unwrap(),
            "?sinceTime=2026-11-25T16%3A30%3A05Z&timestamps=true&previous=true&limitBytes=100"
        );
        let both = LogParams {
            since_seconds: Some(5),
            ..lp
        };
        assert!(matches!(both.query(), Err(Error::InvalidRequest(_))));
        let negative = LogParams {
            tail_lines: Some(-1),
            ..LogParams::default()
        };
        assert!(matches!(negative.query(), Err(Error::InvalidRequest(_))));
        let zero_tail = LogParams {
            tail_lines: Some(0),
            since_seconds: Some(60),
            ..LogParams::default()
        };
        assert_eq!(zero_tail.query().unwrap(), "?tailLines=0&sinceSeconds=60");
    }
}
