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
//!
//! Whatever built it, every request's URI is checked once more when the
//! client sends it ([`check_request_uri`]): a path (not a full URL, whose
//! host would otherwise be silently replaced by the cluster's), starting
//! with `/`, with no `.` or `..` segment and no empty one, raw or
//! percent-encoded, and no percent-encoded `/`. So a path pasted together
//! by hand cannot address another object than it names either; the
//! request is refused with [`Error::InvalidPathSegment`] (`what` is
//! `"path"`) and nothing is sent.

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

/// Checks the URI of a request about to be sent (see the module docs):
/// only a path and query, the path absolute, without dot segments, empty
/// segments (a trailing `/` is allowed) or an encoded `/`.
///
/// ```
/// use kube_client::path::check_request_uri;
/// let ok: http::Uri = "/api/v1/namespaces/default/pods?limit=1".parse().unwrap();
/// assert!(check_request_uri(&ok).is_ok());
/// for bad in ["/api/v1/namespaces/default/configmaps/..", "/api/v1/namespaces/%2E%2e",
///             "/api//v1", "/api/v1/namespaces/a%2fb", "https://example.com/api/v1"] {
///     assert!(check_request_uri(&bad.parse().unwrap()).is_err(), "{bad}");
/// }
/// ```
pub fn check_request_uri(uri: &http::Uri) -> Result<(), Error> {
    let refuse = |reason| {
        Err(Error::InvalidPathSegment {
            what: "path",
            value: shown(&uri.to_string()),
            reason,
        })
    };
    if uri.scheme().is_some() || uri.authority().is_some() {
        return refuse("must be a path, not a URL with a scheme or host");
    }
    let path = uri.path();
    let Some(rest) = path.strip_prefix('/') else {
        return refuse("must start with `/`");
    };
    if rest.is_empty() {
        return Ok(());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for part in rest.split('/') {
        let decoded_dots = decode_dots(part);
        if part.is_empty() {
            return refuse("may not contain an empty segment (`//`)");
        }
        if decoded_dots == "." || decoded_dots == ".." {
            return refuse("may not contain a `.` or `..` segment");
        }
        if part
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f'))
        {
            return refuse("may not contain an encoded `/` (`%2F`)");
        }
    }
    Ok(())
}

/// `part` with each `%2E`/`%2e` read as `.` (only what makes a dot segment
/// matters here).
fn decode_dots(part: &str) -> Cow<'_, str> {
    if !part.contains('%') {
        return Cow::Borrowed(part);
    }
    let lower = part.to_ascii_lowercase();
    Cow::Owned(lower.replace("%2e", "."))
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

    fn uri_refused(uri: &str) -> String {
        match check_request_uri(&uri.parse().expect("a URI")) {
            Err(e @ Error::InvalidPathSegment { what: "path", .. }) => e.to_string(),
            other => panic!("{uri:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn request_uris_that_would_address_something_else_are_refused() {
        for (uri, reason) in [
            ("/api/v1/namespaces/default/configmaps/..", "`..` segment"),
            ("/api/v1/namespaces/default/configmaps/./x", "`..` segment"),
            (
                "/api/v1/namespaces/default/configmaps/%2E%2e",
                "`..` segment",
            ),
            ("/api/v1/namespaces/%2e/configmaps", "`..` segment"),
            ("/api/v1/namespaces/../configmaps?limit=1", "`..` segment"),
            ("/api//v1", "empty segment"),
            ("/api/v1/namespaces/a%2Fb/pods", "encoded `/`"),
            ("/api/v1/namespaces/a%2fb/pods", "encoded `/`"),
            ("https://example.com/api/v1", "scheme or host"),
            ("//example.com/api/v1", "empty segment"),
        ] {
            let text = uri_refused(uri);
            assert!(text.starts_with("invalid path "), "{text}");
            assert!(text.contains(reason), "{uri}: {text}");
        }
    }

    #[test]
    fn request_uris_this_crate_builds_pass() {
        for uri in [
            "/",
            "/version",
            "/apis/",
            "/api/v1/namespaces/default/pods/web-1/exec?command=ls&stdout=true",
            "/api/v1/namespaces/default/configmaps/a%20b%3Fc",
            "/api/v1/namespaces/default/configmaps/...",
            "/api/v1/namespaces/default/configmaps/a.b%2e",
            "/apis/apps/v1/namespaces/x/deployments/web/scale",
            "/openapi/v3/apis/apps/v1?hash=ABC",
        ] {
            assert!(check_request_uri(&uri.parse().unwrap()).is_ok(), "{uri}");
        }
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
