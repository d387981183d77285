//! URL path segments: the one gate every name, namespace, plural, group,
//! version and subresource passes before it becomes part of a request URL.
//!
//! A request URL is built from strings that may come from users, from
//! objects or from the server's discovery documents. Put into a URL as they
//! are, some of them change which URL is addressed: the URL library resolves
//! the dot segments `.` and `..` (so the name `..` of a ConfigMap would
//! address the Namespace object, the name `.` the whole collection), `/`
//! adds segments, `?` and `#` start a query or fragment, and `%` lets an
//! encoded `..` through to a server that decodes it.
//!
//! [`segment`] keeps these guarantees:
//! - it refuses what kube-apiserver refuses as a path segment name
//!   (apimachinery's `IsValidPathSegmentName`): `.`, `..`, anything with `/`
//!   or `%` — and the empty string, which would collapse two segments;
//! - it percent-encodes every other byte that is not an unreserved path
//!   character (`A-Z a-z 0-9 - . _ ~`, plus `:` and `@`, which a path segment
//!   may hold as they are), so `?`, `#`, spaces, control characters and
//!   non-ASCII text stay inside their segment;
//! - a refused value is an [`Error::InvalidPathSegment`] naming which segment
//!   was wrong, and nothing is sent.
//!
//! The namespace of an [`Api`](crate::Api) is checked here too, when a
//! request is built (the constructors `Api::namespaced` cannot fail, so an
//! invalid namespace is reported by every request that would use it).
//! Every request builder of this crate (`Api`, its subresources, discovery)
//! goes through [`segment`]; a request built by hand for
//! [`Client::request`](crate::Client::request) should too.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::Error;

/// Checks `value` as a URL path segment and percent-encodes it (see the
/// module docs). `what` names the segment in the error: `"name"`,
/// `"namespace"`, `"plural"`, `"group"`, `"version"`, `"subresource"`, ….
///
/// ```
/// use kube_client::path::segment;
/// assert_eq!(segment("name", "web-1").unwrap(), "web-1");
/// assert_eq!(segment("name", "a b?c").unwrap(), "a%20b%3Fc");
/// assert!(segment("name", "..").is_err());
/// assert!(segment("namespace", "a/b").is_err());
/// ```
pub fn segment<'a>(what: &'static str, value: &'a str) -> Result<Cow<'a, str>, Error> {
    let reason = if value.is_empty() {
        Some("may not be empty")
    } else if value == "." || value == ".." {
        Some("may not be `.` or `..`")
    } else if value.contains('/') {
        Some("may not contain `/`")
    } else if value.contains('%') {
        Some("may not contain `%`")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::InvalidPathSegment {
            what,
            value: shown(value),
            reason,
        });
    }
    if value.bytes().all(is_kept) {
        return Ok(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if is_kept(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Ok(Cow::Owned(out))
}

/// Bytes a path segment carries as they are.
fn is_kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@')
}

/// How a refused value appears in an error: escaped (`{:?}`, so control
/// characters and quotes cannot forge log lines) and cut to a sane length.
fn shown(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    let cut: String = value.chars().take(MAX_CHARS).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < value.len() {
        let _ = write!(out, " (and {} more bytes)", value.len() - cut.len());
    }
    out
}

/// `/api/VERSION` for the core group, `/apis/GROUP/VERSION` otherwise, each
/// part checked by [`segment`].
pub(crate) fn group_version_path(group: &str, version: &str) -> Result<String, Error> {
    let version = segment("version", version)?;
    if group.is_empty() {
        Ok(format!("/api/{version}"))
    } else {
        Ok(format!("/apis/{}/{version}", segment("group", group)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(what: &'static str, value: &str) -> String {
        match segment(what, value) {
            Err(e @ Error::InvalidPathSegment { .. }) => e.to_string(),
            other => panic!("{value:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn what_apimachinery_refuses_is_refused() {
        for value in ["", ".", "..", "a/b", "/", "..%2f", "%2e%2e", "%", "x%y"] {
            let text = refused("name", value);
            assert!(text.starts_with("invalid name "), "{text}");
        }
        assert!(refused("namespace", "..").contains("`.` or `..`"));
        assert!(refused("name", "").contains("empty"));
        assert!(refused("name", "a/b").contains("`/`"));
        assert!(refused("plural", "%2e").contains("`%`"));
        assert!(refused("plural", "%2e").starts_with("invalid plural \"%2e\""));
    }

    #[test]
    fn valid_names_pass_unchanged_and_borrowed() {
        for value in [
            "web-1",
            "a.b.c",
            "...",
            ".a",
            "system:node:x",
            "v1",
            "UPPER_~",
        ] {
            assert!(
                matches!(segment("name", value).unwrap(), Cow::Borrowed(v) if v == value),
                "{value}"
            );
        }
    }

    #[test]
    fn everything_else_is_percent_encoded() {
        let cases = [
            ("x?y", "x%3Fy"),
            ("x#y", "x%23y"),
            (" ", "%20"),
            ("a b", "a%20b"),
            ("ü", "%C3%BC"),
            ("a\nb", "a%0Ab"),
            ("a;b,c", "a%3Bb%2Cc"),
            ("\\..", "%5C.."),
        ];
        for (value, encoded) in cases {
            assert_eq!(segment("name", value).unwrap(), encoded, "{value:?}");
        }
    }

    #[test]
    fn a_refused_value_is_shown_escaped_and_cut() {
        let text = refused("name", "evil\n%0a\u{1b}[31m");
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        assert!(text.contains("\\n"), "{text}");
        let long = format!("{}%", "a".repeat(500));
        let text = refused("name", &long);
        assert!(text.len() < 200, "{text}");
        assert!(text.contains("(and 437 more bytes)"), "{text}");
    }

    #[test]
    fn group_version_paths() {
        assert_eq!(group_version_path("", "v1").unwrap(), "/api/v1");
        assert_eq!(group_version_path("apps", "v1").unwrap(), "/apis/apps/v1");
        assert!(group_version_path("..", "v1").is_err());
        assert!(group_version_path("apps", "").is_err());
    }
}
