//! Which failed requests are tried again, and after how long.
//!
//! A request is resent only when doing so cannot do something twice:
//! - a connection that could not be made is retried for every method: the
//!   request never reached the server;
//! - 429 (TooManyRequests) is retried for every method: the server refused
//!   the request before running it (max-in-flight, priority and fairness);
//! - any other 5xx that carries `Retry-After` is retried for every method:
//!   the server says the request may be sent again (client-go's `checkWait`
//!   retries exactly these, for every verb);
//! - 503 and 504 *without* `Retry-After` are retried only for idempotent
//!   methods (GET, HEAD, OPTIONS, PUT, DELETE). A POST or PATCH may have run
//!   before the gateway gave up: a create with `generateName` sent twice
//!   would make two objects, so those answers go back to the caller;
//! - a GET whose connection was reset, or closed before the whole answer's
//!   head arrived (an early EOF), is retried — as client-go's `rest.Request`
//!   does (`IsConnectionReset` / `IsProbableEOF`, for GET only). The request
//!   may well have reached the server, so nothing else is resent on such a
//!   failure: a POST, PATCH, PUT or DELETE cut off this way goes back to the
//!   caller as [`Error::Transport`](crate::Error::Transport), and so does a
//!   WebSocket upgrade (exec, attach, port-forward), whose GET starts work.
//!   A body cut short *after* a complete head is the caller's error, as in
//!   client-go (the answer had begun; a watch resumes on its own).
//!
//! Beneath these, reqwest resends on its own a request the server said,
//! in HTTP/2, it never processed — a stream refused (`RST_STREAM
//! REFUSED_STREAM`) or above the last stream id of a graceful `GOAWAY` —
//! for every method, as Go's HTTP/2 transport does under client-go; and
//! hyper reports an HTTP/2 connection's I/O failure as the I/O error it is,
//! so the GET rule above covers HTTP/2 too (`tests/http2_faults.rs` pins
//! both against a server scripted frame by frame).
//!
//! These failures and answers share one budget: `max_retries` retries in
//! all, with the same backoff.
//!
//! The delay is the server's `Retry-After` (seconds, capped at `max_delay`)
//! when given, else capped exponential backoff with jitter (backon).

use std::time::Duration;

use backon::BackoffBuilder;

/// How many times, and how patiently, to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Longest delay, for backoff and for `Retry-After` alike.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }

    /// The delay before the next attempt, or `None` to give up.
    pub(crate) fn next_delay(
        &self,
        backoff: &mut impl Iterator<Item = Duration>,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let computed = backoff.next()?;
        Some(retry_after.map_or(computed, |d| d.min(self.max_delay)))
    }
}

/// Whether an answer `code` to a `method` request may be retried, given
/// the server's `Retry-After` (see the module docs).
pub(crate) fn retryable_answer(
    method: &http::Method,
    code: u16,
    retry_after: Option<Duration>,
) -> bool {
    if code == 429 || (code >= 500 && retry_after.is_some()) {
        return true;
    }
    is_idempotent(method) && matches!(code, 503 | 504)
}

/// Whether a request that got no answer (`error`) may be sent again: a
/// connection that was never made (any method; not a TLS failure, which a
/// retry will not cure), or — for a plain GET only — a connection reset or
/// closed before the answer's head was complete (see the module docs).
pub(crate) fn retryable_failure(
    method: &http::Method,
    error: &reqwest::Error,
    tls: bool,
    upgrade: bool,
) -> bool {
    if tls {
        return false;
    }
    if error.is_connect() {
        return true;
    }
    *method == http::Method::GET && !upgrade && !error.is_timeout() && broke_off(error)
}

/// Whether anywhere in `error`'s chain of causes the connection was reset
/// or ended early: client-go's `IsConnectionReset` or `IsProbableEOF`.
fn broke_off(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        // hyper's "connection closed before message completed"
        if let Some(hyper) = e.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Methods whose repetition has the effect of doing them once (RFC 9110
/// §9.2.2). PUT carries the whole object (and usually its resourceVersion),
/// DELETE of a deleted object is a 404: neither does anything twice.
fn is_idempotent(method: &http::Method) -> bool {
    use http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// `Retry-After: <seconds>` (the HTTP-date form is not used by kube-apiserver).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(5),
        };
        let mut backoff = policy.backoff();
        assert_eq!(
            policy.next_delay(&mut backoff, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.next_delay(&mut backoff, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            policy.next_delay(&mut backoff, None),
            None,
            "only max_retries retries"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let delays: Vec<Duration> = policy.backoff().collect();
        assert_eq!(delays.len(), 10);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(2)),
            "{delays:?}"
        );
        assert!(delays[5] > delays[0], "{delays:?}");
    }

    #[test]
    fn extreme_policies_never_panic() {
        for (min_delay, max_delay) in [
            (Duration::MAX, Duration::MAX),
            (Duration::ZERO, Duration::ZERO),
            (Duration::from_secs(10), Duration::from_millis(1)),
            (Duration::from_nanos(1), Duration::MAX),
        ] {
            let policy = RetryPolicy {
                max_retries: 100,
                min_delay,
                max_delay,
            };
            let mut backoff = policy.backoff();
            for _ in 0..100 {
                let delay = policy.next_delay(&mut backoff, Some(Duration::MAX));
                assert!(delay.is_some_and(|d| d <= max_delay));
            }
            assert_eq!(policy.next_delay(&mut backoff, None), None);
        }
        let mut huge = reqwest::header::HeaderMap::new();
        huge.insert(
            reqwest::header::RETRY_AFTER,
            "99999999999999999999999".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&huge),
            None,
            "not a number of seconds we can wait"
        );
    }

    #[test]
    fn resets_and_early_ends_are_found_anywhere_in_the_chain() {
        use std::io::{Error as IoError, ErrorKind};
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrapped(#[source] IoError);
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
        ] {
            assert!(broke_off(&IoError::from(kind)), "{kind:?}");
            assert!(broke_off(&Wrapped(IoError::from(kind))), "{kind:?} wrapped");
        }
        for kind in [
            ErrorKind::TimedOut,
            ErrorKind::InvalidData,
            ErrorKind::PermissionDenied,
        ] {
            assert!(!broke_off(&Wrapped(IoError::from(kind))), "{kind:?}");
        }
    }

    #[test]
    fn which_answers_are_retried() {
        use http::Method;
        let after = Some(Duration::from_secs(1));
        for m in [Method::GET, Method::PUT, Method::DELETE] {
            for code in [429, 503, 504] {
                assert!(retryable_answer(&m, code, None), "{m} {code}");
            }
            assert!(!retryable_answer(&m, 500, None), "{m}");
            assert!(retryable_answer(&m, 500, after), "{m}");
        }
        for m in [Method::POST, Method::PATCH] {
            assert!(retryable_answer(&m, 429, None), "{m}");
            assert!(!retryable_answer(&m, 503, None), "{m}");
            assert!(!retryable_answer(&m, 504, None), "{m}");
            assert!(!retryable_answer(&m, 500, None), "{m}");
            for code in [500, 502, 503, 504] {
                assert!(retryable_answer(&m, code, after), "{m} {code}");
            }
        }
        for code in [400, 401, 404, 409, 410, 422] {
            assert!(!retryable_answer(&Method::GET, code, after), "{code}");
        }
    }
}
