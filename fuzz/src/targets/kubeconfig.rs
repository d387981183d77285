//! Target `kubeconfig`: parsing a kubeconfig from text
//! ([`Kubeconfig::from_yaml`]) and resolving it ([`Config::from_kubeconfig`]),
//! with the values inside: server and proxy URLs, base64 `*-data` fields,
//! PEM certificates and keys, exec and auth-provider settings.
//!
//! Properties, for any bytes:
//! - parsing gives a `Kubeconfig` or an error, never a panic;
//! - a parsed kubeconfig serializes back to YAML that parses to an equal
//!   kubeconfig (round trip);
//! - resolving every context (and the default one, a missing one, and
//!   cluster/user overrides) gives a `Config` or an error; a `Config` has an
//!   `http(s)` URL with a host;
//! - no `Debug` output and no error shows a token, password or key (the
//!   generators mark them with `SECRET`);
//! - file paths inside are sandboxed: each is replaced by one of a few
//!   fixture files (valid and invalid certificates, keys, tokens, an empty
//!   and a missing file) chosen by the path's hash, so no input reads
//!   arbitrary files; exec plugins are never run.

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine;
use kube_config::{Config, Kubeconfig, KubeconfigOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::exec::{cert_pem, key_pem, secret};
use super::{Target, assert_hidden, marked_secrets};
use crate::mutate::fnv1a;

/// The target.
pub fn target() -> Target {
    Target {
        name: "kubeconfig",
        about: "kubeconfig YAML parse, round trip, and resolution into a Config (URLs, base64, PEM)",
        check,
        strategy: || document().boxed(),
        dictionary: &[
            b"clusters:\n- name: a\n  cluster:\n    server: https://a\n",
            b"users:\n- name: u\n  user:\n    token: SECRET-token-abcdef\n",
            b"contexts:\n- name: c\n  context: {cluster: a, user: u}\n",
            b"current-context: ",
            b"certificate-authority-data: ",
            b"client-certificate-data: ",
            b"client-key-data: ",
            b"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
            b"proxy-url: socks5://",
            b"https://[::1]:",
            b"exec: {command: x, apiVersion: client.authentication.k8s.io/v1beta1}",
            b"auth-provider: {name: oidc, config: {id-token: SECRET-idtoken-abc}}",
            b"&a ",
            b"*a",
            b"<<: ",
            b"!!binary ",
            b"!!str ",
            b"---\n",
            b"null",
            b"~",
            b"%",
        ],
    }
}

const FIXTURES: [(&str, &[u8]); 8] = [
    (
        "ca.crt",
        include_bytes!("../../../kube-config/tests/fixtures/ca.crt"),
    ),
    (
        "ca-bundle.crt",
        include_bytes!("../../../kube-config/tests/fixtures/ca-bundle.crt"),
    ),
    (
        "client-rsa.crt",
        include_bytes!("../../../kube-config/tests/fixtures/client-rsa.crt"),
    ),
    (
        "client-rsa.key",
        include_bytes!("../../../kube-config/tests/fixtures/client-rsa-pkcs1.key"),
    ),
    (
        "client-ec.key",
        include_bytes!("../../../kube-config/tests/fixtures/client-ec.key"),
    ),
    ("token", b"SECRET-token-from-file\n"),
    ("empty", b""),
    ("garbage", b"-----BEGIN CERTIFICATE-----\nnot base64\n"),
];

/// The sandbox directory with the fixture files (created once).
fn sandbox() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kube-fuzz-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the sandbox directory");
        for (name, content) in FIXTURES {
            std::fs::write(dir.join(name), content).expect("write a sandbox fixture");
        }
        dir
    })
}

/// Removes the sandbox directory, if this process made one.
pub fn remove_sandbox() {
    let dir = std::env::temp_dir().join(format!("kube-fuzz-sandbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(dir);
}

fn sandboxed(path: &mut Option<String>) {
    if let Some(p) = path.as_mut().filter(|p| !p.is_empty()) {
        let pick = fnv1a(p.as_bytes()) as usize % (FIXTURES.len() + 1);
        let file = FIXTURES.get(pick).map_or("missing", |(name, _)| name);
        *p = sandbox().join(file).to_string_lossy().into_owned();
    }
}

/// Every secret value of a kubeconfig that carries the marker.
fn secrets_of(kc: &Kubeconfig) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for u in &kc.users {
        let u = &u.user;
        values.extend(u.token.iter().map(|t| t.expose().to_owned()));
        values.extend(u.password.iter().map(|t| t.expose().to_owned()));
        values.extend(u.client_key_data.iter().map(|t| t.expose().to_owned()));
        if let Some(exec) = &u.exec {
            values.extend(exec.env.iter().flatten().map(|e| e.value.clone()));
        }
        if let Some(p) = &u.auth_provider {
            for key in ["id-token", "refresh-token", "client-secret"] {
                values.extend(p.config.get(key).cloned());
            }
        }
    }
    marked_secrets(values.iter().map(String::as_str))
}

/// Runs one input.
pub fn check(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let kc = match Kubeconfig::from_yaml(&text) {
        Ok(kc) => kc,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = format!("{e:?}");
            return;
        }
    };
    // A secret also written in a non-secret place may show from there.
    let secrets: Vec<String> = secrets_of(&kc)
        .into_iter()
        .filter(|s| text.matches(s.as_str()).count() == 1)
        .collect();
    assert_hidden(&secrets, &format!("{kc:?}"), "Debug of the Kubeconfig");

    let yaml = kc
        .to_yaml()
        .unwrap_or_else(|e| panic!("a parsed kubeconfig does not serialize: {e}"));
    let again = Kubeconfig::from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("the serialized kubeconfig does not parse: {e}\n{yaml}"));
    assert_eq!(
        again, kc,
        "the round trip changed the kubeconfig; YAML:\n{yaml}"
    );

    let mut kc = kc;
    for c in &mut kc.clusters {
        sandboxed(&mut c.cluster.certificate_authority);
    }
    for u in &mut kc.users {
        sandboxed(&mut u.user.client_certificate);
        sandboxed(&mut u.user.client_key);
        sandboxed(&mut u.user.token_file);
    }

    let mut options = vec![KubeconfigOptions::default()];
    for c in kc.contexts.iter().take(6) {
        options.push(KubeconfigOptions {
            context: Some(c.name.clone()),
            ..Default::default()
        });
    }
    options.push(KubeconfigOptions {
        context: Some("no-such-context".into()),
        ..Default::default()
    });
    if let (Some(c), Some(u)) = (kc.clusters.first(), kc.users.last()) {
        options.push(KubeconfigOptions {
            cluster: Some(c.name.clone()),
            user: Some(u.name.clone()),
            namespace: Some("ns".into()),
            ..Default::default()
        });
    }
    for o in &options {
        match Config::from_kubeconfig(&kc, o) {
            Ok(config) => {
                let url = &config.cluster_url;
                assert!(matches!(url.scheme(), "http" | "https"), "{url}");
                assert!(
                    url.host_str().is_some_and(|h| !h.is_empty()),
                    "no host in {url}"
                );
                assert_hidden(&secrets, &format!("{config:?}"), "Debug of the Config");
                // Exec plugins are never run; other credentials are read
                // from the input or a sandboxed file.
                if config.auth.kind() != "exec" {
                    match config.auth.current_credential() {
                        Ok(c) => {
                            assert_hidden(&secrets, &format!("{c:?}"), "Debug of the credential")
                        }
                        Err(e) => assert_hidden(&secrets, &e.to_string(), "a credential error"),
                    }
                }
            }
            Err(e) => {
                assert_hidden(&secrets, &e.to_string(), "the error message");
                assert_hidden(&secrets, &format!("{e:?}"), "Debug of the error");
            }
        }
    }
}

// ---- generators --------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "dev", "prod"]).prop_map(str::to_owned),
        1 => "[a-z0-9@:/._-]{0,12}",
        1 => Just("ünï côde".to_owned()),
    ]
}

/// A server or proxy URL: valid in many shapes, or subtly not.
fn url() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        8 => "[a-z0-9-]{1,10}(\\.[a-z]{2,5}){0,2}",
        2 => Just("127.0.0.1".to_owned()),
        2 => Just("[::1]".to_owned()),
        1 => Just("[fd00::1%25eth0]".to_owned()),
        1 => Just("xn--nxasmq6b.example".to_owned()),
        1 => Just("ドメイン.jp".to_owned()),
        1 => Just("ex%41mple.com".to_owned()),
        1 => Just("user:SECRET-in-url@host".to_owned()),
        1 => Just("".to_owned()),
    ]
    .boxed();
    let built = (
        prop_oneof![
            8 => Just("https://"), 3 => Just("http://"), 1 => Just("socks5://"), 1 => Just("ftp://"),
            1 => Just(""), 1 => Just("https:/"), 1 => Just("HTTPS://"),
        ],
        host,
        prop::option::of(prop_oneof![1 => 0u32..70000, 3 => Just(6443), 1 => Just(443)]),
        prop::sample::select(vec!["", "/", "/prefix", "/a/../b", "/%zz", "?q=1", "#frag"]),
        prop::sample::select(vec!["", " ", "\t"]),
    )
        .prop_map(|(scheme, host, port, path, pad)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{pad}{scheme}{host}{port}{path}{pad}")
        });
    prop_oneof![6 => built, 1 => "\\PC{0,24}"]
}

/// A base64 `*-data` value: of valid PEM, of junk, wrapped, unpadded, or
/// not base64.
fn base64_of<S: Strategy<Value = String>>(pem: S) -> impl Strategy<Value = String> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    (pem, 0u8..10).prop_map(move |(pem, how)| match how {
        0..=5 => b64(pem.as_bytes()),
        6 => b64(pem.as_bytes())
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
        7 => b64(pem.as_bytes()).trim_end_matches('=').to_owned(),
        8 => pem,
        _ => format!("{}!", b64(pem.as_bytes())),
    })
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof!["/[a-z/]{1,12}", "[a-z.]{1,8}", Just(String::new())]
}

fn exec() -> impl Strategy<Value = Value> {
    (
        prop_oneof![6 => Just("aws"), 2 => Just("./rel/plugin"), 2 => Just("/abs/plugin"), 1 => Just("")],
        prop_oneof![
            4 => Just(Some("client.authentication.k8s.io/v1beta1")),
            4 => Just(Some("client.authentication.k8s.io/v1")),
            1 => Just(Some("client.authentication.k8s.io/v1alpha1")),
            1 => Just(Some("")),
            1 => Just(None),
        ],
        prop_oneof![
            3 => Just(Some("Never")), 2 => Just(Some("IfAvailable")), 1 => Just(Some("Always")),
            1 => Just(Some("Sometimes")), 1 => Just(Some("")), 2 => Just(None),
        ],
        prop::collection::vec((prop_oneof![6 => Just("A"), 3 => Just("TOKEN"), 1 => Just("")], secret()), 0..3),
        prop::collection::vec("[a-z-]{0,8}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(command, api, mode, env, args, info)| {
            let env: Vec<Value> = env.into_iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
            json!({"command": command, "apiVersion": api, "interactiveMode": mode, "env": env,
                "args": args, "provideClusterInfo": info, "installHint": "install it"})
        })
}

fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect(),
    )
}

/// Any subset of the user fields, conflicting ones included.
fn user_fields() -> impl Strategy<Value = Value> {
    let opt = |p: f64, s: BoxedStrategy<Value>| prop::option::weighted(p, s);
    (
        (
            opt(0.3, secret().prop_map(Value::from).boxed()),
            opt(0.1, path().prop_map(Value::from).boxed()),
            opt(0.15, name().prop_map(Value::from).boxed()),
            opt(0.15, secret().prop_map(Value::from).boxed()),
        ),
        (
            opt(0.2, base64_of(cert_pem()).prop_map(Value::from).boxed()),
            opt(0.2, base64_of(key_pem()).prop_map(Value::from).boxed()),
            opt(0.1, path().prop_map(Value::from).boxed()),
            opt(0.1, path().prop_map(Value::from).boxed()),
        ),
        (opt(0.2, exec().boxed()), opt(0.1, auth_provider().boxed())),
    )
        .prop_map(
            |(
                (token, token_file, username, password),
                (cert, key, cert_file, key_file),
                (exec, provider),
            )| {
                object(vec![
                    ("token", token),
                    ("tokenFile", token_file),
                    ("username", username),
                    ("password", password),
                    ("client-certificate-data", cert),
                    ("client-key-data", key),
                    ("client-certificate", cert_file),
                    ("client-key", key_file),
                    ("exec", exec),
                    ("auth-provider", provider),
                ])
            },
        )
}

fn auth_provider() -> impl Strategy<Value = Value> {
    (prop_oneof![4 => Just("oidc"), 1 => Just("gcp"), 1 => Just("")], prop::option::weighted(0.8, secret()), prop::option::of(secret()))
        .prop_map(|(n, id, refresh)| json!({"name": n, "config": {"id-token": id, "refresh-token": refresh, "client-id": "kubectl"}}))
}

/// A user: mostly one coherent way to authenticate, sometimes any mix;
/// maybe impersonating someone.
fn user() -> impl Strategy<Value = Value> {
    let one = |k: &'static str, s: BoxedStrategy<Value>| {
        s.prop_map(move |v| object(vec![(k, Some(v))])).boxed()
    };
    let auth = prop_oneof![
        2 => one("token", secret().prop_map(Value::from).boxed()),
        1 => one("tokenFile", path().prop_map(Value::from).boxed()),
        2 => (name(), secret()).prop_map(|(u, p)| json!({"username": u, "password": p})),
        2 => (base64_of(cert_pem()), base64_of(key_pem())).prop_map(|(c, k)| json!({"client-certificate-data": c, "client-key-data": k})),
        1 => (path(), path()).prop_map(|(c, k)| json!({"client-certificate": c, "client-key": k})),
        2 => one("exec", exec().boxed()),
        2 => one("auth-provider", auth_provider().boxed()),
        1 => Just(json!({})),
        3 => user_fields(),
    ];
    let impersonate = prop::option::weighted(
        0.15,
        (
            name(),
            prop::option::of(prop::collection::vec(name(), 0..3)),
            prop::option::weighted(0.3, "[a-z0-9-]{0,8}"),
        ),
    );
    (auth, impersonate).prop_map(|(mut user, imp)| {
        if let (Some((who, groups, uid)), Some(m)) = (imp, user.as_object_mut()) {
            m.insert("as".into(), json!(who));
            m.insert("as-groups".into(), json!(groups));
            m.insert("as-uid".into(), json!(uid));
        }
        user
    })
}

fn cluster() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.95, url()),
        prop::option::weighted(0.3, base64_of(cert_pem())),
        prop::option::weighted(0.1, path()),
        prop::option::weighted(0.2, name()),
        any::<bool>(),
        prop::option::weighted(0.2, url()),
        any::<bool>(),
    )
        .prop_map(|(server, ca, ca_file, tls_name, insecure, proxy, ext)| {
            let mut c = json!({"server": server, "certificate-authority-data": ca, "certificate-authority": ca_file,
                "tls-server-name": tls_name, "insecure-skip-tls-verify": insecure, "proxy-url": proxy});
            if ext {
                c["extensions"] = json!([{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x"}}]);
            }
            c
        })
}

/// Makes `name` unique among `taken` (appending a number) unless
/// `collide`: duplicate names are an error worth reaching, but rarely.
fn unique(name: String, taken: &mut Vec<String>, collide: bool) -> String {
    let mut n = name.clone();
    let mut i = 2;
    while !collide && taken.contains(&n) {
        n = format!("{name}{i}");
        i += 1;
    }
    taken.push(n.clone());
    n
}

/// A kubeconfig document: random clusters, users and contexts that mostly
/// refer to each other (sometimes to names that do not exist, sometimes
/// with duplicate names), as block YAML, flow YAML or JSON.
pub fn document() -> impl Strategy<Value = Vec<u8>> {
    let collide = || prop::bool::weighted(0.03);
    (
        prop::collection::vec((name(), collide(), cluster()), 1..4),
        prop::collection::vec((name(), collide(), user()), 1..4),
        prop::collection::vec(
            (name(), collide(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), prop::bool::weighted(0.08), prop::option::of("[a-z0-9-]{0,10}")),
            0..4,
        ),
        prop::option::weighted(0.8, (any::<prop::sample::Index>(), prop::bool::weighted(0.05))),
        0u8..3,
        prop::bool::weighted(0.05),
    )
        .prop_map(|(clusters, users, contexts, current, style, empty)| {
            let (clusters, users) = if empty { (Vec::new(), Vec::new()) } else { (clusters, users) };
            let mut taken = Vec::new();
            let clusters: Vec<(String, Value)> =
                clusters.into_iter().map(|(n, c, v)| (unique(n, &mut taken, c), v)).collect();
            let mut taken = Vec::new();
            let users: Vec<(String, Value)> =
                users.into_iter().map(|(n, c, v)| (unique(n, &mut taken, c), v)).collect();
            let mut taken = Vec::new();
            let pick = |names: &[String], at: &prop::sample::Index, dangling: bool| {
                if dangling || names.is_empty() { "missing".to_owned() } else { at.get(names).clone() }
            };
            let cluster_names: Vec<String> = clusters.iter().map(|(n, _)| n.clone()).collect();
            let user_names: Vec<String> = users.iter().map(|(n, _)| n.clone()).collect();
            let contexts: Vec<Value> = contexts
                .into_iter()
                .map(|(n, c, ci, ui, dangling, ns)| {
                    json!({"name": unique(n, &mut taken, c), "context": {
                        "cluster": pick(&cluster_names, &ci, dangling),
                        "user": pick(&user_names, &ui, false),
                        "namespace": ns}})
                })
                .collect();
            let context_names: Vec<String> = taken;
            let current = current.map(|(at, dangling)| pick(&context_names, &at, dangling));
            let doc = json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": clusters.into_iter().map(|(n, c)| json!({"name": n, "cluster": c})).collect::<Vec<_>>(),
                "users": users.into_iter().map(|(n, u)| json!({"name": n, "user": u})).collect::<Vec<_>>(),
                "contexts": contexts,
                "current-context": current,
            });
            match style {
                0 => serde_yaml_ng::to_string(&doc).unwrap_or_default(),
                1 => serde_json::to_string_pretty(&doc).unwrap_or_default(),
                _ => doc.to_string(),
            }
            .into_bytes()
        })
}
