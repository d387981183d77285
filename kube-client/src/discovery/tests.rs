//! Discovery parsing and resolution on hand-written server documents.
use super::*;

const URL: &str = "https://h/apis";
const RW: &str = r#"["create","delete","deletecollection","get","list","patch","update","watch"]"#;

/// An aggregated `/api`, as kube-apiserver sends it (trimmed).
fn aggregated_core() -> String {
    format!(
        r#"{{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{{}},"items":[
          {{"metadata":{{"creationTimestamp":null}},"versions":[{{"version":"v1","freshness":"Current","resources":[
            {{"resource":"configmaps","responseKind":{{"group":"","version":"","kind":"ConfigMap"}},"scope":"Namespaced","singularResource":"configmap","verbs":{RW},"shortNames":["cm"]}},
            {{"resource":"events","responseKind":{{"group":"","version":"","kind":"Event"}},"scope":"Namespaced","singularResource":"event","verbs":{RW},"shortNames":["ev"]}},
            {{"resource":"namespaces","responseKind":{{"group":"","version":"","kind":"Namespace"}},"scope":"Cluster","singularResource":"namespace","verbs":["create","delete","get","list","patch","update","watch"],"shortNames":["ns"],
              "subresources":[{{"subresource":"finalize","responseKind":{{"group":"","version":"","kind":"Namespace"}},"verbs":["update"]}},{{"subresource":"status","responseKind":{{"group":"","version":"","kind":"Namespace"}},"verbs":["get","patch","update"]}}]}},
            {{"resource":"pods","responseKind":{{"group":"","version":"","kind":"Pod"}},"scope":"Namespaced","singularResource":"pod","verbs":{RW},"shortNames":["po"],"categories":["all"],
              "subresources":[{{"subresource":"log","responseKind":{{"group":"","version":"","kind":"Pod"}},"verbs":["get"]}},{{"subresource":"status","responseKind":{{"group":"","version":"","kind":"Pod"}},"verbs":["get","patch","update"]}}]}}
          ]}}]}}
        ]}}"#
    )
}

/// An aggregated `/apis`: apps, events.k8s.io, a CRD group with two
/// versions (v2 preferred), and an aggregated API server that is down.
fn aggregated_groups() -> String {
    format!(
        r#"{{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{{}},"items":[
          {{"metadata":{{"name":"apps","creationTimestamp":null}},"versions":[{{"version":"v1","freshness":"Current","resources":[
            {{"resource":"deployments","responseKind":{{"group":"","version":"","kind":"Deployment"}},"scope":"Namespaced","singularResource":"deployment","verbs":{RW},"shortNames":["deploy"],"categories":["all"],
              "subresources":[{{"subresource":"scale","responseKind":{{"group":"autoscaling","version":"v1","kind":"Scale"}},"verbs":["get","patch","update"]}},{{"subresource":"status","responseKind":{{"group":"","version":"","kind":"Deployment"}},"verbs":["get","patch","update"]}}]}}
          ]}}]}},
          {{"metadata":{{"name":"events.k8s.io"}},"versions":[{{"version":"v1","resources":[
            {{"resource":"events","responseKind":{{"group":"","version":"","kind":"Event"}},"scope":"Namespaced","singularResource":"event","verbs":{RW},"shortNames":["ev"]}}
          ]}}]}},
          {{"metadata":{{"name":"example.com"}},"versions":[
            {{"version":"v2","resources":[
              {{"resource":"widgets","responseKind":{{"group":"example.com","version":"v2","kind":"Widget"}},"scope":"Cluster","singularResource":"widget","verbs":{RW},"shortNames":["wdg"]}}
            ]}},
            {{"version":"v1","resources":[
              {{"resource":"widgets","responseKind":{{"group":"example.com","version":"v1","kind":"Widget"}},"scope":"Cluster","singularResource":"widget","verbs":{RW},"shortNames":["wdg"]}},
              {{"resource":"gadgets","responseKind":{{"group":"example.com","version":"v1","kind":"Gadget"}},"scope":"Namespaced","singularResource":"","verbs":null}}
            ]}}
          ]}},
          {{"metadata":{{"name":"metrics.k8s.io"}},"versions":[{{"version":"v1beta1","freshness":"Stale","resources":[]}}]}}
        ]}}"#
    )
}

fn legacy_core() -> &'static str {
    r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]}"#
}

/// The same groups as `aggregated_groups`, as a legacy `APIGroupList`.
/// example.com lists v1 first but prefers v2.
fn legacy_groups() -> &'static str {
    r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[
      {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}},
      {"name":"events.k8s.io","versions":[{"groupVersion":"events.k8s.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"events.k8s.io/v1","version":"v1"}},
      {"name":"example.com","versions":[{"groupVersion":"example.com/v1","version":"v1"},{"groupVersion":"example.com/v2"}],"preferredVersion":{"groupVersion":"example.com/v2","version":"v2"}},
      {"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}}
    ]}"#
}

/// The legacy `APIResourceList` of a group version; `None` where the
/// server answers with an error.
fn legacy_list(gv: &str) -> Option<String> {
    let rw = RW;
    let resources = match gv {
        "v1" => format!(
            r#"[{{"name":"configmaps","singularName":"configmap","namespaced":true,"kind":"ConfigMap","verbs":{rw},"shortNames":["cm"]}},
               {{"name":"events","singularName":"event","namespaced":true,"kind":"Event","verbs":{rw},"shortNames":["ev"]}},
               {{"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["create","delete","get","list","patch","update","watch"],"shortNames":["ns"]}},
               {{"name":"namespaces/finalize","singularName":"","namespaced":false,"kind":"Namespace","verbs":["update"]}},
               {{"name":"namespaces/status","singularName":"","namespaced":false,"kind":"Namespace","verbs":["get","patch","update"]}},
               {{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":{rw},"shortNames":["po"],"categories":["all"]}},
               {{"name":"pods/log","singularName":"","namespaced":true,"kind":"Pod","verbs":["get"]}},
               {{"name":"pods/status","singularName":"","namespaced":true,"kind":"Pod","verbs":["get","patch","update"]}}]"#
        ),
        "apps/v1" => format!(
            r#"[{{"name":"deployments","singularName":"deployment","namespaced":true,"kind":"Deployment","verbs":{rw},"shortNames":["deploy"]}},
               {{"name":"deployments/scale","singularName":"","namespaced":true,"group":"autoscaling","version":"v1","kind":"Scale","verbs":["get","patch","update"]}},
               {{"name":"deployments/status","singularName":"","namespaced":true,"kind":"Deployment","verbs":["get","patch","update"]}}]"#
        ),
        "events.k8s.io/v1" => format!(
            r#"[{{"name":"events","singularName":"event","namespaced":true,"kind":"Event","verbs":{rw},"shortNames":["ev"]}}]"#
        ),
        "example.com/v2" => format!(
            r#"[{{"name":"widgets","singularName":"widget","namespaced":false,"kind":"Widget","verbs":{rw},"shortNames":["wdg"]}}]"#
        ),
        "example.com/v1" => format!(
            r#"[{{"name":"widgets","singularName":"widget","namespaced":false,"kind":"Widget","verbs":{rw},"shortNames":["wdg"]}},
               {{"name":"gadgets","namespaced":true,"kind":"Gadget","verbs":null}}]"#
        ),
        _ => return None,
    };
    Some(format!(
        r#"{{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"{gv}","resources":{resources}}}"#
    ))
}

fn aggregated_part(body: &str, root: Root) -> Part {
    match parse_root(URL, body, root).unwrap() {
        RootAnswer::Aggregated(list) => from_aggregated(list),
        other => panic!("expected an aggregated answer, got {other:?}"),
    }
}

fn legacy_part(body: &str, root: Root) -> Part {
    let groups = match parse_root(URL, body, root).unwrap() {
        RootAnswer::Legacy(groups) => groups,
        other => panic!("expected a legacy answer, got {other:?}"),
    };
    let lists = groups
        .iter()
        .map(|g| {
            g.versions
                .iter()
                .map(|v| {
                    let gv = group_version(&g.name, v);
                    legacy_list(&gv)
                        .map(|body| parse_resource_list(URL, &body, &g.name, v).unwrap())
                })
                .collect()
        })
        .collect();
    from_legacy(groups, lists)
}

fn aggregated() -> Discovery {
    Discovery::from_parts([
        aggregated_part(&aggregated_core(), Root::Core),
        aggregated_part(&aggregated_groups(), Root::Groups),
    ])
}

fn legacy() -> Discovery {
    Discovery::from_parts([
        legacy_part(legacy_core(), Root::Core),
        legacy_part(legacy_groups(), Root::Groups),
    ])
}

fn gvr(ar: &ApiResource) -> (&str, &str, &str) {
    (&ar.group, &ar.version, &ar.plural)
}

#[test]
fn aggregated_documents_become_groups_in_priority_order() {
    let d = aggregated();
    assert!(d.is_aggregated());
    let names: Vec<&str> = d.groups().iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["", "apps", "events.k8s.io", "example.com"]);

    let core = d.group("").unwrap();
    assert_eq!(
        (core.preferred_version.as_str(), core.versions.as_slice()),
        ("v1", &["v1".to_string()][..])
    );
    let pods = core
        .resources
        .iter()
        .find(|r| r.resource.plural == "pods")
        .unwrap();
    assert_eq!(
        pods.resource,
        ApiResource::new("", "v1", "Pod", "pods", Scope::Namespaced)
    );
    assert_eq!(pods.subresources, ["log", "status"]);
    assert_eq!(pods.short_names, ["po"]);
    assert_eq!(pods.singular, "pod");
    assert!(pods.supports("watch") && !pods.supports("proxy"));
    let ns = core
        .resources
        .iter()
        .find(|r| r.resource.plural == "namespaces")
        .unwrap();
    assert_eq!(ns.resource.scope, Scope::Cluster);
    // Subresources never appear as resources.
    assert!(
        d.groups()
            .iter()
            .flat_map(|g| &g.resources)
            .all(|r| !r.resource.plural.contains('/'))
    );

    let deploy = d.resolve_gvk("apps", "v1", "Deployment").unwrap();
    assert_eq!(deploy.api_version, "apps/v1");
    assert_eq!(
        deploy.collection_path(Some("x")).unwrap(),
        "/apis/apps/v1/namespaces/x/deployments"
    );
    assert_eq!(
        d.group("apps").unwrap().resources[0].subresources,
        ["scale", "status"]
    );

    let example = d.group("example.com").unwrap();
    assert_eq!(example.preferred_version, "v2");
    assert_eq!(example.versions, ["v2", "v1"]);
    let gadget = example
        .resources
        .iter()
        .find(|r| r.resource.kind == "Gadget")
        .unwrap();
    assert_eq!(
        gadget.singular, "gadget",
        "singular falls back to the lowercased kind"
    );
    assert!(gadget.verbs.is_empty(), "null verbs are none");
}

#[test]
fn stale_or_unreadable_group_versions_are_recorded_not_served() {
    for d in [aggregated(), legacy()] {
        assert_eq!(d.unavailable(), ["metrics.k8s.io/v1beta1"]);
        assert!(d.group("metrics.k8s.io").is_none());
        assert!(d.resolve_plural(Some("metrics.k8s.io"), "pods").is_none());
    }
}

#[test]
fn legacy_documents_give_the_same_model() {
    let (a, l) = (aggregated(), legacy());
    assert!(!l.is_aggregated());
    assert_eq!(a.groups(), l.groups());
    assert_eq!(
        l.group("example.com").unwrap().versions,
        ["v2", "v1"],
        "preferred version first"
    );
    assert_eq!(
        l.group("")
            .unwrap()
            .resources
            .iter()
            .find(|r| r.resource.plural == "namespaces")
            .unwrap()
            .subresources,
        ["finalize", "status"]
    );
}

#[test]
fn kinds_resolve_in_the_preferred_version() {
    let d = aggregated();
    assert_eq!(
        gvr(&d.resolve_kind("example.com", "Widget").unwrap()),
        ("example.com", "v2", "widgets")
    );
    assert_eq!(
        gvr(&d.resolve_kind("example.com", "Gadget").unwrap()),
        ("example.com", "v1", "gadgets")
    );
    assert_eq!(
        gvr(&d.resolve_gvk("example.com", "v1", "Widget").unwrap()),
        ("example.com", "v1", "widgets")
    );
    assert_eq!(
        gvr(&d.resolve_kind("", "ConfigMap").unwrap()),
        ("", "v1", "configmaps")
    );
    assert!(d.resolve_kind("", "Deployment").is_none());
    assert!(d.resolve_gvk("example.com", "v2", "Gadget").is_none());
    assert!(
        d.resolve_gvk("apps", "v1", "deployment").is_none(),
        "kinds are case-sensitive"
    );
    assert!(d.resolve_kind("nope.io", "Widget").is_none());
}

#[test]
fn names_resolve_like_kubectl() {
    let d = aggregated();
    let resolve = |group: Option<&str>, name: &str| {
        d.resolve_plural(group, name)
            .map(|ar| gvr(&ar).0.to_string() + "/" + gvr(&ar).1 + "/" + gvr(&ar).2)
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(resolve(None, "deploy"), some("apps/v1/deployments"));
    assert_eq!(resolve(None, "deployments"), some("apps/v1/deployments"));
    assert_eq!(resolve(None, "Deployment"), some("apps/v1/deployments"));
    assert_eq!(
        resolve(None, "deployments.apps"),
        some("apps/v1/deployments")
    );
    assert_eq!(resolve(None, "deploy.apps"), some("apps/v1/deployments"));
    assert_eq!(
        resolve(None, "deployments.v1.apps"),
        some("apps/v1/deployments")
    );
    assert_eq!(resolve(Some("apps"), "deploy"), some("apps/v1/deployments"));
    assert_eq!(resolve(None, "cm"), some("/v1/configmaps"));
    assert_eq!(resolve(None, "pods.v1."), some("/v1/pods"));
    assert_eq!(
        resolve(None, "pods."),
        some("/v1/pods"),
        "an empty group after the dot is the core group"
    );
    // The core group wins a name served by two groups.
    assert_eq!(resolve(None, "events"), some("/v1/events"));
    assert_eq!(resolve(None, "ev"), some("/v1/events"));
    assert_eq!(
        resolve(None, "events.events.k8s.io"),
        some("events.k8s.io/v1/events")
    );
    assert_eq!(
        resolve(Some("events.k8s.io"), "ev"),
        some("events.k8s.io/v1/events")
    );
    // The preferred version wins; a version can be asked for.
    assert_eq!(resolve(None, "wdg"), some("example.com/v2/widgets"));
    assert_eq!(
        resolve(None, "widgets.v1.example.com"),
        some("example.com/v1/widgets")
    );
    assert_eq!(
        resolve(None, "widgets.example.com"),
        some("example.com/v2/widgets")
    );
    for missing in [
        "",
        "nope",
        "deploy.batch",
        "deployments.v2.apps",
        ".",
        "..",
        "pods.apps",
        "scale",
        "pods/log",
    ] {
        assert_eq!(resolve(None, missing), None, "{missing:?}");
    }
    assert_eq!(resolve(Some("apps"), "pods"), None);
}

#[test]
fn a_plural_or_singular_name_wins_over_a_short_name() {
    let body = format!(
        r#"{{"kind":"APIGroupDiscoveryList","items":[
          {{"metadata":{{"name":"a.io"}},"versions":[{{"version":"v1","resources":[
            {{"resource":"things","responseKind":{{"kind":"Thing"}},"scope":"Cluster","verbs":{RW},"shortNames":["stuff"]}}]}}]}},
          {{"metadata":{{"name":"b.io"}},"versions":[{{"version":"v1","resources":[
            {{"resource":"stuff","responseKind":{{"kind":"Stuff"}},"scope":"Cluster","verbs":{RW}}}]}}]}}]}}"#
    );
    let d = Discovery::from_parts([aggregated_part(&body, Root::Groups)]);
    assert_eq!(d.resolve_plural(None, "stuff").unwrap().group, "b.io");
    assert_eq!(d.resolve_plural(None, "thing").unwrap().group, "a.io");
    assert_eq!(
        d.resolve_plural(Some("a.io"), "stuff").unwrap().kind,
        "Thing"
    );
}

#[test]
fn wrong_kinds_and_malformed_json_are_decode_errors() {
    let cases: [(&str, Root); 7] = [
        ("not json", Root::Core),
        ("[1,2]", Root::Core),
        ("", Root::Groups),
        (r#"{"kind":"Status","status":"Failure"}"#, Root::Core),
        (r#"{"kind":"APIGroupList","groups":[]}"#, Root::Core),
        (r#"{"versions":["v1"]}"#, Root::Core),
        (
            r#"{"kind":"APIGroupDiscoveryList","items":{"not":"a list"}}"#,
            Root::Groups,
        ),
    ];
    for (body, root) in cases {
        match parse_root(URL, body, root) {
            Err(Error::Decode {
                url,
                body: described,
                ..
            }) => {
                assert_eq!(url, URL);
                assert_eq!(described, format!("a {}-byte body", body.len()));
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    let err = parse_root(URL, r#"{"kind":"Pod"}"#, Root::Groups)
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("expected a discovery document of kind APIGroupDiscoveryList or APIGroupList, got kind `Pod`"), "{err}");

    for body in [
        r#"{"kind":"APIVersions"}"#,
        r#"{"kind":"APIResourceList","resources":[{"name":7}]}"#,
        "{",
    ] {
        assert!(
            matches!(
                parse_resource_list(URL, body, "", "v1"),
                Err(Error::Decode { .. })
            ),
            "{body}"
        );
    }
    let deep = "[".repeat(100_000);
    assert!(matches!(
        parse_root(URL, &deep, Root::Core),
        Err(Error::Decode { .. })
    ));
}

#[test]
fn entries_the_model_cannot_hold_are_skipped() {
    let body = r#"{"kind":"APIGroupDiscoveryList","items":[
      {"metadata":{"name":"ok.io"},"versions":[
        {"version":"v1","resources":[
          {"resource":"good","responseKind":{"kind":"Good"},"scope":"Namespaced"},
          {"resource":"nokind","scope":"Namespaced"},
          {"resource":"weird","responseKind":{"kind":"Weird"},"scope":"Galaxy"},
          {"resource":"a?b","responseKind":{"kind":"Query"},"scope":"Cluster"},
          {"resource":"..","responseKind":{"kind":"Dots"},"scope":"Cluster"},
          null
        ]},
        {"version":"v/2","resources":[]},
        {"version":"v1","resources":[{"resource":"dup","responseKind":{"kind":"Dup"},"scope":"Cluster"}]}
      ]},
      {"metadata":{"name":"bad/group"},"versions":[{"version":"v1"}]},
      {"metadata":null,"versions":null}
    ]}"#;
    // A null resource is a shape error, not something to skip.
    assert!(matches!(
        parse_root(URL, body, Root::Groups),
        Err(Error::Decode { .. })
    ));
    let null_item = body
        .find(",\n          null")
        .expect("the null item is in the document");
    let body = format!(
        "{}{}",
        &body[..null_item],
        &body[null_item + ",\n          null".len()..]
    );
    let d = Discovery::from_parts([aggregated_part(&body, Root::Groups)]);
    assert_eq!(d.groups().len(), 1);
    let g = &d.groups()[0];
    assert_eq!(
        (g.name.as_str(), g.versions.as_slice()),
        ("ok.io", &["v1".to_string()][..])
    );
    let plurals: Vec<&str> = g
        .resources
        .iter()
        .map(|r| r.resource.plural.as_str())
        .collect();
    assert_eq!(plurals, ["good"]);

    let list = r#"{"kind":"APIResourceList","groupVersion":"x.io/v1","resources":[
      {"name":"orphans/status","kind":"Orphan"},
      {"name":"things","kind":"Thing","namespaced":null,"verbs":["get"],"shortNames":null,"singularName":null},
      {"name":"things/","kind":"Thing"},
      {"name":"nokind","kind":""}
    ]}"#;
    let resources = parse_resource_list(URL, list, "x.io", "v1").unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(
        resources[0].resource,
        ApiResource::new("x.io", "v1", "Thing", "things", Scope::Cluster)
    );
    assert_eq!(resources[0].singular, "thing");
    assert!(resources[0].subresources.is_empty());
}

#[test]
fn legacy_roots_keep_valid_groups_and_versions() {
    let body = r#"{"kind":"APIGroupList","groups":[
      {"name":"a.io","versions":[{"groupVersion":"a.io/v1beta1","version":"v1beta1"},{"groupVersion":"a.io/v1","version":"v1"},{"groupVersion":"a.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"a.io/v1","version":"v1"}},
      {"name":"b.io","versions":[{"groupVersion":"b.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"b.io/v9","version":"v9"}},
      {"name":"","versions":[{"groupVersion":"v1","version":"v1"}]},
      {"name":"c.io","versions":[]},
      {"name":"d.io","versions":[{"groupVersion":"d.io/v 1"}]}
    ]}"#;
    let RootAnswer::Legacy(groups) = parse_root(URL, body, Root::Groups).unwrap() else {
        panic!("legacy expected")
    };
    assert_eq!(
        groups,
        [
            LegacyGroup {
                name: "a.io".into(),
                versions: vec!["v1".into(), "v1beta1".into()]
            },
            LegacyGroup {
                name: "b.io".into(),
                versions: vec!["v1".into()]
            },
        ]
    );
    let RootAnswer::Legacy(core) =
        parse_root(URL, r#"{"kind":"APIVersions","versions":null}"#, Root::Core).unwrap()
    else {
        panic!("legacy expected")
    };
    assert!(core.is_empty());
}

#[test]
fn groups_of_the_same_name_merge() {
    let core = Part {
        groups: ApiGroup::from_versions(
            "".into(),
            vec![(
                "v1".into(),
                vec![discovered(
                    "",
                    "v1",
                    "Pod",
                    "pods".into(),
                    Scope::Namespaced,
                    vec![],
                    vec![],
                    String::new(),
                    vec![],
                )],
            )],
        )
        .into_iter()
        .collect(),
        unavailable: vec![],
        aggregated: true,
    };
    let again = Part {
        groups: ApiGroup::from_versions(
            "".into(),
            vec![
                ("v1".into(), vec![]),
                (
                    "v2".into(),
                    vec![discovered(
                        "",
                        "v2",
                        "Pod",
                        "pods".into(),
                        Scope::Namespaced,
                        vec![],
                        vec![],
                        String::new(),
                        vec![],
                    )],
                ),
            ],
        )
        .into_iter()
        .collect(),
        unavailable: vec!["v3".into()],
        aggregated: false,
    };
    let d = Discovery::from_parts([core, again]);
    assert!(!d.is_aggregated());
    assert_eq!(d.groups().len(), 1);
    assert_eq!(d.groups()[0].versions, ["v1", "v2"]);
    assert_eq!(d.groups()[0].resources.len(), 2);
    assert_eq!(d.resolve_kind("", "Pod").unwrap().version, "v1");
    assert_eq!(d.unavailable(), ["v3"]);
}
