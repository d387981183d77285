//! The client's metrics: client-go's `rest_client_requests_total` and
//! `rest_client_request_duration_seconds`, fed by kube-client's
//! [`RequestObserver`] hook.
//!
//! kube-client does not depend on a metrics library (nor on this crate):
//! it calls an observer once per HTTP attempt, and [`ClientMetrics`] is that
//! observer. `code` is the status code, or `<error>` when no answer came
//! (client-go's value); `method` and `verb` are the HTTP method; `host` is
//! the API server's `host:port`.

use std::fmt;

use kube_client::client::{RequestAttempt, RequestObserver};
use prometheus_client::encoding::EncodeLabelSet;

use super::Families;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    code: String,
    method: String,
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DurationLabels {
    verb: String,
    host: String,
}

/// Records a client's requests; see the module docs. Give it to
/// [`ClientBuilder::request_observer`](kube_client::ClientBuilder::request_observer).
pub struct ClientMetrics {
    families: std::sync::Arc<Families>,
}

impl fmt::Debug for ClientMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientMetrics").finish_non_exhaustive()
    }
}

impl ClientMetrics {
    pub(super) fn new(families: &std::sync::Arc<Families>) -> Self {
        Self {
            families: families.clone(),
        }
    }
}

impl RequestObserver for ClientMetrics {
    fn observe(&self, attempt: &RequestAttempt<'_>) {
        let code = attempt
            .status
            .map_or_else(|| "<error>".to_string(), |c| c.to_string());
        self.families
            .rest_requests
            .get_or_create(&RequestLabels {
                code,
                method: attempt.method.to_string(),
                host: attempt.host.to_string(),
            })
            .inc();
        self.families
            .rest_duration
            .get_or_create(&DurationLabels {
                verb: attempt.method.to_string(),
                host: attempt.host.to_string(),
            })
            .observe(attempt.duration.as_secs_f64());
    }
}
