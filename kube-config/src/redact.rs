//! Hiding the password in a URL's userinfo before the URL is shown.
//!
//! A cluster `server` or `proxy-url` may carry credentials in its userinfo
//! (`https://user:password@host`). Those credentials are still sent — the
//! URL used for connecting is never changed — but wherever such a URL is
//! shown (error messages, `Debug`, logs) it goes through [`redact_url`]
//! first.
//!
//! Guarantees:
//!
//! - `user:password@` becomes `user:REDACTED@` (the user name stays, to tell
//!   which account was meant); a lone `name@` becomes `REDACTED@`, since a
//!   single userinfo value is often a token.
//! - A string that parses as a URL is shown as parsed (normalised), with
//!   its userinfo redacted as above.
//! - Strings that do not parse as a URL with a host (a broken `server`
//!   value, `user:pw@host` without a scheme, an error message quoting URLs)
//!   are redacted too: after every `://`, everything up to the last `@` of
//!   that word is replaced; a single word without `://` loses everything
//!   before its last `@`. This may hide more than the userinfo, never less.
//! - Text without userinfo is returned unchanged and unallocated.

use std::borrow::Cow;

use url::Url;

/// What replaces a hidden password or lone userinfo.
pub const REDACTED: &str = "REDACTED";

/// `text` with the userinfo password of every URL in it replaced by
/// [`REDACTED`], for showing a URL that may carry credentials.
///
/// A URL with a host is shown as parsed, `user:password@` as
/// `user:REDACTED@` and a lone `name@` (often a token) as `REDACTED@`.
/// Text that is not such a URL loses, after each `://`, its word up to the
/// last `@` (a lone word without `://`: everything before its last `@`).
/// Text without `@` is returned as is.
///
/// ```
/// use kube_config::redact_url;
/// assert_eq!(redact_url("https://alice:pw@h:6443/x"), "https://alice:REDACTED@h:6443/x");
/// assert_eq!(redact_url("https://tok@h"), "https://REDACTED@h/");
/// assert_eq!(redact_url("https://h:6443"), "https://h:6443"); // unchanged
/// // Not a URL (no host), still redacted:
/// assert_eq!(redact_url("https://alice:pw@"), "https://REDACTED@");
/// ```
pub fn redact_url(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    if let Ok(mut url) = Url::parse(text)
        && url.has_host()
    {
        let replaced = if url.password().is_some() {
            url.set_password(Some(REDACTED)).is_ok()
        } else if !url.username().is_empty() {
            url.set_username(REDACTED).is_ok()
        } else {
            false
        };
        return if replaced {
            Cow::Owned(url.into())
        } else {
            Cow::Borrowed(text)
        };
    }
    redact_words(text)
}

/// Characters that end a word of free text.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '`' | '\'' | '"' | '<' | '>')
}

/// The conservative rule for text that is not one URL with a host: after
/// each `://` (or in a lone word without one), the word up to its last `@`
/// is replaced.
fn redact_words(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return match text.rfind('@') {
            Some(last_at) if !text.contains(ends_word) => {
                Cow::Owned(format!("{REDACTED}{}", &text[last_at..]))
            }
            _ => Cow::Borrowed(text),
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let word_len = tail.find(ends_word).unwrap_or(tail.len());
        let word = &tail[..word_len];
        match word.rfind('@') {
            Some(last_at) => {
                out.push_str(REDACTED);
                out.push_str(&word[last_at..]);
                changed = true;
            }
            None => out.push_str(word),
        }
        rest = &tail[word_len..];
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_user_and_lose_the_password() {
        for (input, shown) in [
            (
                "https://u:hunter2@h:1/p?q=1",
                "https://u:REDACTED@h:1/p?q=1",
            ),
            (
                "http://u:hunter2@127.0.0.1:2",
                "http://u:REDACTED@127.0.0.1:2/",
            ),
            ("socks5://u:hunter2@p:1080", "socks5://u:REDACTED@p:1080"),
            ("https://hunter2@h", "https://REDACTED@h/"),
            ("https://:hunter2@h/", "https://:REDACTED@h/"),
        ] {
            assert_eq!(redact_url(input), shown, "{input}");
            let parsed: Url = input.parse().unwrap();
            assert_eq!(redact_url(parsed.as_str()), redact_url(input));
        }
    }

    #[test]
    fn text_without_userinfo_is_borrowed_unchanged() {
        for input in [
            "https://h:6443/api/v1/x",
            "https://h/a@b",
            "mail me@example.com",
            "no-at-sign",
            "",
            "GET https://h/x: connection refused",
        ] {
            assert!(
                matches!(redact_url(input), Cow::Borrowed(s) if s == input),
                "{input}"
            );
        }
    }

    #[test]
    fn strings_that_are_not_urls_are_redacted_too() {
        for (input, shown) in [
            ("https://user:hunter2@", "https://REDACTED@"),
            ("ftp://user:hunter2@h", "ftp://user:REDACTED@h/"),
            // Parses, with the space encoded: shown as parsed.
            ("https://user:hun ter2@h", "https://user:REDACTED@h/"),
            ("https://u:pa/ss@h:x", "https://REDACTED@h:x"),
            ("user:hunter2@h", "REDACTED@h"),
            ("u:hunter3@p:3128", "REDACTED@p:3128"),
            (
                "proxy `http://u:hunter3@p:99999`: bad, also https://t@h x",
                "proxy `http://REDACTED@p:99999`: bad, also https://REDACTED@h x",
            ),
        ] {
            assert_eq!(redact_url(input), shown, "{input}");
        }
    }
}
