//! Target `status`: how a non-2xx answer becomes a typed error
//! ([`Error::from_error_response`]).
//!
//! Properties, for any body and HTTP code:
//! - a body that decodes as a `Status` with a code, reason or message is
//!   [`Error::Api`] carrying that Status, its code filled from HTTP when
//!   absent; anything else is [`Error::HttpStatus`] with the HTTP code,
//!   describing the body by its size and media type, never quoting it;
//! - `code()` is the Status code when it fits a `u16`, else the HTTP one;
//!   `is_not_found`, `is_conflict`, `is_forbidden`, ... agree with `code()`;
//!   `is_gone`, `is_timeout`, `is_resource_version_too_large` never panic;
//! - `Display` names the method and the URL; nothing panics.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube_client::Error;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Target;
use crate::mutate::fnv1a;

const URL: &str = "https://127.0.0.1:6443/api/v1/namespaces/default/configmaps/x";

/// The target.
pub fn target() -> Target {
    Target {
        name: "status",
        about: "HTTP error body (Status JSON or anything) to a typed kube_client::Error",
        check,
        strategy: || body().boxed(),
        dictionary: &[
            b"\"kind\":\"Status\"",
            b"\"apiVersion\":\"v1\"",
            b"\"status\":\"Failure\"",
            b"\"code\":",
            b"\"reason\":\"NotFound\"",
            b"\"reason\":\"Expired\"",
            b"\"message\":\"",
            b"\"details\":{\"causes\":[{\"reason\":\"ResourceVersionTooLarge\"}]}",
            b"\"retryAfterSeconds\":",
            b"Too large resource version",
            b"null",
            b"\\u0000",
        ],
    }
}

/// Runs one input with several HTTP codes and `Content-Type`s (one of
/// each derived from the input).
pub fn check(body: &[u8]) {
    let hash = fnv1a(body);
    let derived = (hash % 65536) as u16;
    let odd_type =
        String::from_utf8_lossy(&body[..body.len().min((hash % 80) as usize)]).into_owned();
    let types = [
        None,
        Some("application/json"),
        Some(" text/html ; charset=utf-8"),
        Some(odd_type.as_str()),
    ];
    for (i, code) in [404, 410, 500, derived].into_iter().enumerate() {
        check_code(code, body, types[i]);
    }
}

/// The media type as the client shows it: before `;`, trimmed, printable
/// ASCII only, at most 64 characters.
fn media(content_type: Option<&str>) -> Option<String> {
    let m: String = content_type?
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    (!m.is_empty()).then_some(m)
}

fn check_code(http: u16, body: &[u8], content_type: Option<&str>) {
    let e = Error::from_error_response("GET", URL, http, body, content_type);
    let text = e.to_string();
    let _ = format!("{e:?}");
    assert!(text.starts_with(&format!("GET {URL}: ")), "{text}");
    let parsed = serde_json::from_slice::<Status>(body)
        .ok()
        .filter(|s| s.code.is_some() || s.reason.is_some() || s.message.is_some());
    match (&e, parsed) {
        (Error::Api { status, .. }, Some(mut want)) => {
            want.code.get_or_insert(i32::from(http));
            assert_eq!(**status, want);
            let want_code = status.code.and_then(|c| u16::try_from(c).ok());
            assert_eq!(e.code(), want_code);
        }
        (
            Error::HttpStatus {
                code, body: prefix, ..
            },
            None,
        ) => {
            assert_eq!(*code, http);
            // Described by size and media type, never quoted.
            let want = match media(content_type) {
                Some(m) => format!("a {}-byte {m} body", body.len()),
                None => format!("a {}-byte body", body.len()),
            };
            assert_eq!(prefix, &want);
            assert_eq!(e.code(), Some(http));
        }
        (other, parsed) => panic!("{other:?} for a body parsing as {parsed:?}"),
    }
    let code = e.code();
    assert_eq!(e.is_not_found(), code == Some(404));
    assert_eq!(e.is_conflict(), code == Some(409));
    assert_eq!(e.is_forbidden(), code == Some(403));
    assert_eq!(e.is_unauthorized(), code == Some(401));
    assert_eq!(e.is_invalid(), code == Some(422));
    assert_eq!(e.is_too_many_requests(), code == Some(429));
    if code == Some(410) {
        assert!(e.is_gone());
    }
    let _ = (
        e.is_already_exists(),
        e.is_timeout(),
        e.is_resource_version_too_large(),
        e.is_transport(),
    );
    let _ = e.clone();
}

// ---- generators --------------------------------------------------------

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field<S: Strategy<Value = Value> + 'static>(typical: S) -> BoxedStrategy<Option<Value>> {
    prop::option::weighted(0.7, prop_oneof![12 => typical, 1 => any_json()]).boxed()
}

fn status() -> impl Strategy<Value = Value> {
    let code = prop_oneof![
        6 => prop::sample::select(vec![400, 401, 403, 404, 409, 410, 422, 429, 500, 503, 504]).prop_map(Value::from),
        1 => any::<i32>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
    ];
    let reason = prop::sample::select(vec![
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Expired",
        "Gone",
        "Timeout",
        "Forbidden",
        "",
    ])
    .prop_map(Value::from);
    let cause = (
        prop::sample::select(vec!["ResourceVersionTooLarge", "FieldValueInvalid", ""]),
        "\\PC{0,20}",
        "[a-z.\\[\\]0-9]{0,12}",
    )
        .prop_map(|(reason, message, field)| json!({"reason": reason, "message": message, "field": field}));
    let details = (
        "[a-z0-9-]{0,10}",
        "[a-z.]{0,10}",
        prop::collection::vec(cause, 0..3),
        prop::option::of(any::<i32>()),
    )
        .prop_map(|(name, group, causes, retry)| {
            json!({"name": name, "group": group, "kind": "configmaps", "causes": causes, "retryAfterSeconds": retry})
        });
    let message = prop_oneof![
        "\\PC{0,40}".prop_map(Value::from),
        Just(Value::from("Too large resource version: 5, current: 3")),
    ];
    (
        field(Just(Value::from("Status"))),
        field(Just(Value::from("v1"))),
        field(Just(Value::from("Failure"))),
        field(code),
        field(reason),
        field(message),
        field(details),
    )
        .prop_map(|(kind, api_version, st, code, reason, message, details)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("kind", kind),
                ("apiVersion", api_version),
                ("status", st),
                ("code", code),
                ("reason", reason),
                ("message", message),
                ("details", details),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

/// An error body: mostly Status-shaped JSON with odd field types, else
/// other JSON, HTML or raw bytes.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => status().prop_map(|v| v.to_string().into_bytes()),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => Just(b"<html><body>502 Bad Gateway</body></html>".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..600),
    ]
}
