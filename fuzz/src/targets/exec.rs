//! Target `exec`: the `ExecCredential` a credential plugin prints
//! ([`ExecProvider::parse_output`]).
//!
//! Properties, for any output and both protocol versions:
//! - accepted output is a JSON object with `kind: ExecCredential`, the
//!   provider's `apiVersion` and a `status` object, and the credential has
//!   the status's token and/or a client identity from both
//!   `clientCertificateData` and `clientKeyData`;
//! - rejected output is [`Error::ExecOutput`] naming the command and user;
//! - no error and no `Debug` output shows a token or key (the generators
//!   mark them with `SECRET`); nothing panics.

use std::sync::OnceLock;

use kube_config::{Auth, Config, Error, ExecProvider, Kubeconfig, KubeconfigOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Target, assert_hidden, marked_secrets};

/// The target.
pub fn target() -> Target {
    Target {
        name: "exec",
        about: "exec credential plugin output (ExecCredential JSON, PEM, RFC 3339)",
        check,
        strategy: || output().boxed(),
        dictionary: &[
            b"\"kind\":\"ExecCredential\"",
            b"\"apiVersion\":\"client.authentication.k8s.io/v1\"",
            b"\"apiVersion\":\"client.authentication.k8s.io/v1beta1\"",
            b"\"status\":{",
            b"\"token\":\"",
            b"\"clientCertificateData\":\"",
            b"\"clientKeyData\":\"",
            b"\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"",
            b"-----BEGIN CERTIFICATE-----\\n",
            b"-----END CERTIFICATE-----\\n",
            b"-----BEGIN EC PRIVATE KEY-----\\n",
            b"-----BEGIN PRIVATE KEY-----\\n",
            b"T23:59:60.999999999999+14:00",
            b"null",
        ],
    }
}

/// Two providers (v1 and v1beta1) from a kubeconfig; never run.
fn providers() -> &'static [ExecProvider; 2] {
    static PROVIDERS: OnceLock<[ExecProvider; 2]> = OnceLock::new();
    PROVIDERS.get_or_init(|| {
        let kc = Kubeconfig::from_yaml(
            r#"
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users:
- {name: v1, user: {exec: {command: /nonexistent/plugin, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never}}}
- {name: v1beta1, user: {exec: {command: /nonexistent/plugin, apiVersion: client.authentication.k8s.io/v1beta1}}}
contexts:
- {name: v1, context: {cluster: c, user: v1}}
- {name: v1beta1, context: {cluster: c, user: v1beta1}}
"#,
        )
        .expect("the fixed kubeconfig parses");
        ["v1", "v1beta1"].map(|context| {
            let options = KubeconfigOptions { context: Some(context.into()), ..Default::default() };
            match Config::from_kubeconfig(&kc, &options).expect("the fixed kubeconfig resolves").auth {
                Auth::Exec(p) => p,
                other => panic!("expected an exec provider, got {}", other.kind()),
            }
        })
    })
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out);
        }),
        _ => {}
    }
}

/// Runs one input.
pub fn check(output: &[u8]) {
    let json: Option<Value> = serde_json::from_slice(output).ok();
    let status = json
        .as_ref()
        .and_then(|v| v.get("status"))
        .and_then(Value::as_object);
    // The token and key must stay hidden, unless the same text is also
    // somewhere else in the output (where it may legitimately be quoted).
    let secrets = {
        let secret_fields: Vec<&str> = ["token", "clientKeyData"]
            .iter()
            .filter_map(|k| status.and_then(|s| s.get(*k)).and_then(Value::as_str))
            .collect();
        let mut all = Vec::new();
        if let Some(v) = &json {
            strings(v, &mut all);
        }
        let mut secrets = marked_secrets(secret_fields.iter().copied());
        secrets.retain(|s| all.iter().filter(|x| x.contains(s.as_str())).count() == 1);
        secrets
    };
    for provider in providers() {
        let result = provider.parse_output(output);
        match &result {
            Ok(cred) => {
                let v = json.as_ref().expect("accepted output is JSON");
                assert_eq!(
                    v.get("kind").and_then(Value::as_str),
                    Some("ExecCredential")
                );
                assert_eq!(
                    v.get("apiVersion").and_then(Value::as_str),
                    Some(provider.api_version())
                );
                let status = status.expect("accepted output has a status object");
                let token = status
                    .get("token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty());
                assert_eq!(cred.token.as_ref().map(|t| t.expose()), token);
                assert!(
                    cred.token.is_some() || cred.identity.is_some(),
                    "a credential with nothing"
                );
                if let Some(identity) = &cred.identity {
                    let cert = status.get("clientCertificateData").and_then(Value::as_str);
                    assert_eq!(Some(identity.cert_pem()), cert.map(str::as_bytes));
                    let key = status.get("clientKeyData").and_then(Value::as_str);
                    assert_eq!(Some(identity.key_pem().expose()), key.map(str::as_bytes));
                }
                assert!(cred.basic.is_none());
                assert_hidden(&secrets, &format!("{cred:?}"), "Debug of the credential");
            }
            Err(Error::ExecOutput {
                command,
                user,
                reason,
            }) => {
                assert_eq!(command, provider.command());
                assert!(user == "v1" || user == "v1beta1", "{user}");
                assert!(!reason.is_empty());
            }
            Err(other) => panic!("an unexpected error variant: {other:?}"),
        }
        if let Err(e) = &result {
            assert_hidden(&secrets, &e.to_string(), "the error message");
            assert_hidden(&secrets, &format!("{e:?}"), "Debug of the error");
        }
    }
}

// ---- generators --------------------------------------------------------

const CA_PEM: &str = include_str!("../../../kube-config/tests/fixtures/ca.crt");
const RSA_CERT: &str = include_str!("../../../kube-config/tests/fixtures/client-rsa.crt");
const RSA_KEY_PKCS1: &str =
    include_str!("../../../kube-config/tests/fixtures/client-rsa-pkcs1.key");
const RSA_KEY_PKCS8: &str =
    include_str!("../../../kube-config/tests/fixtures/client-rsa-pkcs8.key");
const EC_CERT: &str = include_str!("../../../kube-config/tests/fixtures/client-ec.crt");
const EC_KEY: &str = include_str!("../../../kube-config/tests/fixtures/client-ec.key");

/// A secret marked so that leak checks can find it.
pub(crate) fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/-]{4,24}".prop_map(|s| format!("SECRET-{s}"))
}

/// A PEM certificate: valid, a bundle, mangled or not PEM at all.
pub(crate) fn cert_pem() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![RSA_CERT, EC_CERT, CA_PEM]).prop_map(str::to_owned),
        1 => Just(format!("{CA_PEM}{EC_CERT}")),
        1 => (prop::sample::select(vec![RSA_CERT, EC_CERT]), any::<u16>()).prop_map(|(p, cut)| p[..usize::from(cut) % p.len()].to_owned()),
        1 => "[A-Za-z0-9+/=]{0,40}".prop_map(|b| format!("-----BEGIN CERTIFICATE-----\n{b}\n-----END CERTIFICATE-----\n")),
        1 => Just("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_owned()),
        1 => "\\PC{0,30}",
    ]
}

/// A PEM private key: valid (three formats), mangled, or not PEM; the
/// base64 body of fake keys carries the secret marker.
pub(crate) fn key_pem() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![RSA_KEY_PKCS1, RSA_KEY_PKCS8, EC_KEY]).prop_map(str::to_owned),
        1 => (prop::sample::select(vec!["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY"]), "[A-Za-z0-9+/]{8,40}")
            .prop_map(|(label, b)| format!("-----BEGIN {label}-----\nSECRETSECRET{b}\n-----END {label}-----\n")),
        1 => secret(),
    ]
}

/// An RFC 3339-ish timestamp: mostly valid (with fractions, offsets,
/// leap seconds), sometimes out of range or malformed.
pub(crate) fn timestamp() -> impl Strategy<Value = String> {
    let offsets = || prop::sample::select(vec!["Z", "z", "+00:00", "-23:59", "+14:00", "+05:30"]);
    prop_oneof![
        4 => (1970u32..2500, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..61, prop::option::of("[0-9]{1,12}"), offsets())
            .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}")
            }),
        1 => (0u32..10000, 0u32..14, 0u32..33, 0u32..25, 0u32..61, 0u32..62, prop::option::of("[0-9]{1,14}"), prop::sample::select(vec!["Z", "+24:00", "", "+0100", "-00:60"]))
            .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}")
            }),
        1 => prop::sample::select(vec!["2099-01-01T00:00:00Z", "2016-12-31T23:59:60Z", "2024-02-29T12:00:00.5+01:00", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59"]).prop_map(str::to_owned),
        1 => "\\PC{0,26}",
    ]
}

fn maybe<S: Strategy<Value = Value> + 'static>(s: S) -> BoxedStrategy<Option<Value>> {
    prop::option::weighted(
        0.9,
        prop_oneof![16 => s, 1 => Just(Value::Null), 1 => Just(json!(5)), 1 => Just(json!("")), 1 => Just(json!({}))],
    )
    .boxed()
}

/// Plugin output: an ExecCredential with every field possibly missing,
/// empty, mistyped or invalid; or something else entirely.
pub fn output() -> impl Strategy<Value = Vec<u8>> {
    let token = || secret().prop_map(Value::from);
    let cert = || cert_pem().prop_map(Value::from);
    let key = || key_pem().prop_map(Value::from);
    let some = |v: BoxedStrategy<Value>| v.prop_map(Some).boxed();
    let none = || Just(None::<Value>).boxed();
    // Mostly the shapes plugins print (token; certificate and key; both),
    // sometimes any subset with odd values.
    let status = prop_oneof![
        2 => (some(token().boxed()), none(), none()),
        2 => (none(), some(cert().boxed()), some(key().boxed())),
        1 => (some(token().boxed()), some(cert().boxed()), some(key().boxed())),
        2 => (maybe(token()), maybe(cert()), maybe(key())),
    ];
    let status = (status, prop::option::weighted(0.5, prop_oneof![4 => timestamp().prop_map(Value::from), 1 => Just(Value::Null), 1 => Just(json!(1700000000))]))
        .prop_map(|((token, cert, key), ts)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [("token", token), ("clientCertificateData", cert), ("clientKeyData", key), ("expirationTimestamp", ts)] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        });
    let credential = (
        maybe(prop_oneof![9 => Just("ExecCredential"), 1 => Just("Status")].prop_map(Value::from)),
        maybe(
            prop::sample::select(vec![
                "client.authentication.k8s.io/v1",
                "client.authentication.k8s.io/v1",
                "client.authentication.k8s.io/v1beta1",
                "client.authentication.k8s.io/v1beta1",
                "client.authentication.k8s.io/v1alpha1",
            ])
            .prop_map(Value::from),
        ),
        maybe(status),
    )
        .prop_map(|(kind, api, status)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [("kind", kind), ("apiVersion", api), ("status", status)] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        });
    prop_oneof![
        16 => credential.prop_map(|v| if v.to_string().len() % 2 == 0 { v.to_string() } else { serde_json::to_string_pretty(&v).unwrap_or_default() }.into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => Just(b"Error: could not get token: SECRET-notprinted-abcdef\n".to_vec()),
    ]
}
