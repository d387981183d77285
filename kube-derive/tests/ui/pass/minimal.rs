//! The least: a cluster-scoped kind with a spec.
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(group = "example.com", version = "v1", kind = "Gateway")]
struct GatewaySpec {
    port: u16,
}

fn main() {
    let gw = Gateway::new("g", GatewaySpec { port: 80 });
    assert_eq!(gw.spec.port, 80);
    let crd = Gateway::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("gateways.example.com"));
    assert_eq!(crd.spec.scope, "Cluster");
    let ar = kube_client::ApiResource::of::<Gateway>();
    assert_eq!(ar.scope, kube_client::Scope::Cluster);
    assert_eq!(ar.plural, "gateways");
}
