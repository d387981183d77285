//! How many watches the API server is serving, from its own metrics: the
//! `apiserver_longrunning_requests` gauge, which counts open long-running
//! requests by verb, resource and scope ("cluster" for a watch across all
//! namespaces, "namespace" for one namespace).

use std::time::Duration;

use kube_client::Client;

/// The open WATCH requests on `resource` with `scope`, summed over groups
/// and versions.
pub async fn open_watches(client: &Client, resource: &str, scope: &str) -> u64 {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.expect("GET /metrics");
    let mut total = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_longrunning_requests{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let has = |k: &str, v: &str| labels.split(',').any(|l| l == format!("{k}=\"{v}\""));
        if has("verb", "WATCH") && has("resource", resource) && has("scope", scope) {
            total += value.trim().parse::<f64>().expect("gauge value") as u64;
        }
    }
    total
}

/// Waits (bounded, 30 s) until `open_watches` equals `want`; returns the
/// last count seen.
pub async fn settles_at(client: &Client, resource: &str, scope: &str, want: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = open_watches(client, resource, scope).await;
        if n == want || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
