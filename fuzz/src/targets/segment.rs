//! Target `segment`: the URL path-segment gate
//! ([`kube_client::path::segment`]) every name, namespace, plural, group,
//! version and subresource passes.
//!
//! Properties, for any string (bytes are read as UTF-8, lossily):
//! - it never panics;
//! - it refuses exactly what apimachinery's `IsValidPathSegmentName`
//!   refuses (`.`, `..`, anything containing `/` or `%`), plus the empty
//!   string, which this client refuses by design (it would collapse two
//!   segments);
//! - a refusal is [`Error::InvalidPathSegment`] naming the segment, whose
//!   message shows the value escaped (no raw control characters) and cut
//!   (bounded length);
//! - an accepted value's output holds only unreserved characters, `:`, `@`
//!   and `%XX` escapes (upper-case hex); it has no `/`, is not `.` or `..`,
//!   percent-decodes back to exactly the input, is borrowed unchanged when
//!   nothing needed escaping, and stays one segment, unchanged, when the
//!   `url` crate parses it inside a URL (no dot-segment resolution, no
//!   query or fragment split).

use std::borrow::Cow;

use kube_client::Error;
use kube_client::path::segment;
use proptest::prelude::*;

use super::Target;

/// The target.
pub fn target() -> Target {
    Target {
        name: "segment",
        about: "URL path-segment check and percent-encoding (kube_client::path::segment)",
        check,
        strategy: || value().prop_map(String::into_bytes).boxed(),
        dictionary: &[
            b"..",
            b".",
            b"/",
            b"%",
            b"%2F",
            b"%2e%2E",
            b"?",
            b"#",
            b" ",
            b"\\",
            b":",
            b"@",
            b"~",
            b"\x00",
            b"\n",
            b"\xc3\xbc",
            b"\xe2\x80\xae",
            b"\xf0\x9f\x9a\x80",
        ],
    }
}

const WHATS: [&str; 6] = [
    "name",
    "namespace",
    "plural",
    "group",
    "version",
    "subresource",
];

/// What apimachinery's `IsValidPathSegmentName` refuses.
fn apimachinery_refuses(v: &str) -> bool {
    v == "." || v == ".." || v.contains('/') || v.contains('%')
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@')
}

/// Percent-decodes `s`, panicking on a malformed or lower-case escape.
fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .unwrap_or_else(|| panic!("a truncated escape in {s:?}"));
            assert!(
                hex.iter()
                    .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)),
                "a bad escape in {s:?}"
            );
            let text = std::str::from_utf8(hex).expect("hex digits are ASCII");
            out.push(u8::from_str_radix(text, 16).expect("checked hex"));
            i += 3;
        } else {
            assert!(
                is_unreserved(b[i]),
                "{:?} left unescaped in {s:?}",
                b[i] as char
            );
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Runs one input.
pub fn check(input: &[u8]) {
    let value = String::from_utf8_lossy(input);
    let what = WHATS[input.len() % WHATS.len()];
    let should_refuse = value.is_empty() || apimachinery_refuses(&value);
    match segment(what, &value) {
        Ok(out) => {
            assert!(!should_refuse, "{value:?} was accepted as {out:?}");
            assert!(
                !out.contains('/') && out != "." && out != ".." && !out.is_empty(),
                "{out:?}"
            );
            assert_eq!(
                decode(&out),
                value.as_bytes(),
                "{out:?} does not decode to {value:?}"
            );
            if value.bytes().all(is_unreserved) {
                assert!(
                    matches!(out, Cow::Borrowed(v) if v == value),
                    "{value:?} was copied or changed"
                );
            }
            let url = url::Url::parse(&format!("https://h/api/{out}/tail"))
                .unwrap_or_else(|e| panic!("{out:?} breaks the URL: {e}"));
            let segments: Vec<&str> = url
                .path_segments()
                .expect("an https URL has a path")
                .collect();
            assert_eq!(
                segments,
                ["api", &*out, "tail"],
                "the URL library changed {out:?}"
            );
            assert!(url.query().is_none() && url.fragment().is_none());
        }
        Err(e) => {
            assert!(should_refuse, "{value:?} was refused: {e}");
            let text = e.to_string();
            assert!(text.starts_with(&format!("invalid {what} ")), "{text}");
            assert!(
                !text.chars().any(char::is_control),
                "a raw control character in {text:?}"
            );
            assert!(
                text.len() <= 64 * 12 + 200,
                "an unbounded message of {} bytes",
                text.len()
            );
            match e {
                Error::InvalidPathSegment { what: w, .. } => assert_eq!(w, what),
                other => panic!("an unexpected error variant: {other:?}"),
            }
        }
    }
}

/// A candidate segment: Kubernetes names, dot names, values with `/`, `%`,
/// `?`, `#`, spaces, controls, non-ASCII and bidi characters, long values,
/// and any string at all.
pub fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?",
        2 => prop::sample::select(vec![".", "..", "...", ".a", "a.", "", " ", "%", "%2e%2e", "..%2f", "%2F", "/", "a/b", "~", ":", "@", "system:node:x"]).prop_map(str::to_owned),
        3 => prop::collection::vec(
            prop_oneof![
                4 => "[a-zA-Z0-9._~:@-]{1,4}",
                1 => prop::sample::select(vec![".", "/", "%", "?", "#", " ", "\\", "\u{0}", "\n", "\u{7f}", "ü", "\u{202e}", "🚀", "%2e", "&", "+", ";", "="]).prop_map(str::to_owned),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat()),
        1 => "[a-z]{60,300}",
        1 => any::<String>(),
    ]
}
