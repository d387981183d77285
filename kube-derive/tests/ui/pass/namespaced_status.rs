//! A namespaced kind with a status: the status field and subresource, and
//! `Api<Foo>` in both scopes.
use kube_client::{Api, Client};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(group = "example.com", version = "v1", kind = "Foo", namespaced, status = "FooStatus")]
pub struct FooSpec {
    pub size: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
pub struct FooStatus {
    pub ready: bool,
}

#[allow(dead_code)]
fn apis(client: Client) -> (Api<Foo>, Api<Foo>) {
    (Api::namespaced(client.clone(), "ns"), Api::all(client))
}

fn main() {
    let mut foo = Foo::new("f", FooSpec { size: 1 });
    foo.status = Some(FooStatus { ready: true });
    assert!(foo.status.as_ref().is_some_and(|s| s.ready));
    let crd = Foo::crd();
    assert_eq!(crd.spec.scope, "Namespaced");
    let subresources = crd.spec.versions[0].subresources.clone().unwrap();
    assert!(subresources.status.is_some() && subresources.scale.is_none());
}
