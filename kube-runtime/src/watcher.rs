//! The watcher: list once, then watch forever, resuming where it left off.
//!
//! Kubernetes offers two primitives: a *list* returns every object at some
//! `resourceVersion`, and a *watch* streams every change after a given
//! `resourceVersion`. A watcher stitches them together so that its consumer
//! sees the full state once and then each change, with no gap:
//!
//! 1. **Initial state.** By default a **streaming list**
//!    (`sendInitialEvents=true`), as client-go does since its WatchList
//!    feature became the default: one watch that first replays the current
//!    objects, one event at a time, and marks the end with a bookmark
//!    annotated `k8s.io/initial-events-end` — no list response of the whole
//!    data set is ever held in memory. A server that refuses it makes the
//!    watcher fall back, for good, to a **list**: paginated (`limit`, 500 by
//!    default, following `continue` tokens), the first at
//!    `resourceVersion=0` so that the API server can serve it from its cache
//!    (which then answers in one page whatever the limit), as client-go does.
//!    [`WatcherConfig::list_then_watch`] asks for the list directly. Either
//!    way the objects come out between [`Event::Init`] and [`Event::InitDone`].
//! 2. **Watch** from the list's resourceVersion, with bookmarks on. Every
//!    event and bookmark advances the last-seen resourceVersion.
//! 3. When a watch **ends** — the server's `timeoutSeconds`, a cut
//!    connection, or no event at all for longer than the watch timeout plus
//!    a margin — the watcher watches again **from the last-seen version**:
//!    no relist, nothing missed, nothing repeated.
//! 4. When the server says that version is **gone** (410 Gone / Expired, or
//!    "too large resource version"), the watcher **relists** (a consistent
//!    read) and emits a new `Init … InitDone` sequence; the
//!    [`Store`](crate::Store) turns it into Added / Modified / Deleted
//!    events for what changed meanwhile.
//!    This is expected (an API server that restarts starts with an empty
//!    watch cache and answers it to every resume), so it is no failure: the
//!    error is returned once, logged at info level, and the relist starts
//!    at once, without backoff — once per healthy spell: a second 410
//!    before any watch delivered again meets the backoff like any error,
//!    so a server answering nothing but 410 is not relisted in a loop.
//! 5. Other **errors** (refused connections, 429, 5xx, a cut mid-list) are
//!    returned from [`Watcher::next`] and the next call waits out a backoff
//!    ([`BackoffConfig`]: exponential, capped at `max`, jitter included)
//!    before trying again from the same place.
//! 6. A watch that delivers an event or a bookmark again, or a list that
//!    succeeds, proves the watcher **healthy**: the backoff starts from its
//!    first step at the next failure. So each API server restart costs a
//!    watcher the first step or two, never the accumulated ones.
//!
//! Timeouts saturate: `watch_timeout` beyond `u32::MAX` seconds asks the
//! server for `u32::MAX`, and `watch_timeout + idle_margin` beyond 2^30 s
//! (34 years; an overflowing sum too) means "never presume the watch dead"
//! — no setting panics. The silence is timed by one timer per watch, not
//! one per event: an event only notes when it came.

use std::fmt::Debug;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube_client::params::{ListParams, Selector, WatchParams};
use kube_client::{Api, Error, Resource, WatchEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::{Backoff, BackoffConfig};

/// What a watcher reports, one at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// A (re)list starts: what follows until [`Event::InitDone`] is the
    /// complete state.
    Init,
    /// One object of the complete state.
    InitApply(K),
    /// The complete state has been delivered; anything not in it is gone.
    InitDone,
    /// An object was created or changed.
    Apply(K),
    /// An object was deleted (its last state).
    Delete(K),
}

/// How a watcher lists and watches.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Label selector.
    pub label_selector: Option<Selector>,
    /// Field selector.
    pub field_selector: Option<Selector>,
    /// Page size of lists (default 500).
    pub page_size: u32,
    /// Server-side timeout of each watch (default 290 s; whole seconds, at
    /// least 1, at most `u32::MAX`).
    pub watch_timeout: Duration,
    /// A watch silent for `watch_timeout + idle_margin` is presumed dead
    /// (the sum saturates: a huge value means never).
    pub idle_margin: Duration,
    /// Use a streaming list (`sendInitialEvents`) for the initial state and
    /// relists (default), falling back to list + watch if the server refuses.
    pub streaming_list: bool,
    /// Backoff after errors.
    pub backoff: BackoffConfig,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        Self {
            label_selector: None,
            field_selector: None,
            page_size: 500,
            watch_timeout: Duration::from_secs(290),
            idle_margin: Duration::from_secs(30),
            streaming_list: true,
            backoff: BackoffConfig::default(),
        }
    }
}

impl WatcherConfig {
    /// Sets the label selector.
    pub fn labels(mut self, selector: impl Into<Selector>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }
    /// Sets the field selector.
    pub fn fields(mut self, selector: impl Into<Selector>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }
    /// Uses a streaming list for the initial state (the default).
    pub fn streaming_list(mut self) -> Self {
        self.streaming_list = true;
        self
    }
    /// Uses a paginated list, then a watch, for the initial state.
    pub fn list_then_watch(mut self) -> Self {
        self.streaming_list = false;
        self
    }
}

type EventStream<K> = Pin<Box<dyn Stream<Item = kube_client::Result<WatchEvent<K>>> + Send>>;

enum State<K> {
    /// Nothing in hand: list (first time at rv "0", after a 410 at "").
    Empty { consistent: bool },
    /// Between pages of a list.
    Listing {
        continue_token: String,
        pending: std::vec::IntoIter<K>,
        list_rv: String,
        last_page: bool,
    },
    /// Between a list and its watch, or after a watch ended.
    Listed { rv: String },
    /// A watch is open.
    Watching {
        rv: String,
        stream: EventStream<K>,
        initial: bool,
    },
}

/// List + watch with resumption; see the module docs.
pub struct Watcher<K> {
    api: Api<K>,
    config: WatcherConfig,
    state: State<K>,
    backoff: Backoff,
    wait_before_next: Option<Duration>,
    streaming_refused: bool,
    /// A 410 now relists without backoff; spent by that relist, re-armed
    /// when a watch delivers again (so a server answering nothing but 410
    /// still meets the backoff).
    free_relist_armed: bool,
    /// The last error was a 410 that spent the free relist.
    relisting_for_free: bool,
    /// Tells when the open watch has been silent for too long.
    idle: IdleWatch,
}

impl<K> Debug for Watcher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("api", &self.api)
            .field("rv", &self.resource_version())
            .finish_non_exhaustive()
    }
}

impl<K> Watcher<K> {
    /// The last resourceVersion seen, if any.
    pub fn resource_version(&self) -> Option<&str> {
        match &self.state {
            State::Empty { .. } | State::Listing { .. } => None,
            State::Listed { rv } | State::Watching { rv, .. } => Some(rv),
        }
    }
}

impl<K> Watcher<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    /// A watcher over `api` (its namespace, or all).
    pub fn new(api: Api<K>, config: WatcherConfig) -> Self {
        let backoff = Backoff::new(config.backoff.clone());
        let config_idle_limit = config.watch_timeout.saturating_add(config.idle_margin);
        Self {
            api,
            config,
            state: State::Empty { consistent: false },
            backoff,
            wait_before_next: None,
            streaming_refused: false,
            free_relist_armed: true,
            relisting_for_free: false,
            idle: IdleWatch::new(config_idle_limit),
        }
    }

    fn list_params(&self) -> ListParams {
        ListParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            limit: Some(self.config.page_size),
            ..ListParams::default()
        }
    }

    fn watch_params(&self) -> WatchParams {
        WatchParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            timeout_seconds: Some(timeout_seconds(self.config.watch_timeout)),
            bookmarks: true,
            send_initial_events: false,
        }
    }

    /// The next event. Errors are returned once; the call after an error
    /// first waits out the backoff, then resumes from the same place (or
    /// relists, when the error said the version is gone).
    pub async fn next(&mut self) -> Result<Event<K>, Error> {
        if let Some(delay) = self.wait_before_next.take() {
            tracing::debug!(?delay, "watcher backing off");
            tokio::time::sleep(delay).await;
        }
        let result = self.step().await;
        if let Err(e) = &result {
            if std::mem::take(&mut self.relisting_for_free) {
                tracing::info!(error = %e, "resourceVersion expired; relisting");
            } else {
                let delay = self.backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "watcher error; retrying after the delay");
                self.wait_before_next = Some(delay);
            }
        }
        result
    }

    /// Turns the watcher into an endless stream of results.
    pub fn into_stream(self) -> impl Stream<Item = Result<Event<K>, Error>> + Send {
        futures::stream::unfold(self, |mut w| async move { Some((w.next().await, w)) })
    }

    async fn step(&mut self) -> Result<Event<K>, Error> {
        loop {
            match std::mem::replace(&mut self.state, State::Empty { consistent: false }) {
                State::Empty { consistent } => {
                    if self.config.streaming_list && !self.streaming_refused {
                        match self.open_watch("", true).await {
                            Ok(stream) => {
                                self.state = State::Watching {
                                    rv: String::new(),
                                    stream,
                                    initial: true,
                                };
                                return Ok(Event::Init);
                            }
                            Err(e) if refuses_streaming(&e) => {
                                tracing::info!(error = %e, "streaming list refused; using list + watch");
                                self.streaming_refused = true;
                                self.state = State::Empty { consistent };
                                continue;
                            }
                            Err(e) => {
                                self.state = State::Empty { consistent };
                                return Err(e);
                            }
                        }
                    }
                    let mut lp = self.list_params();
                    // The first list may come from the API server's cache;
                    // after a 410 it must be a consistent read.
                    lp.resource_version = if consistent { None } else { Some("0".into()) };
                    let api = self.api.clone();
                    match api.list(&lp).await {
                        Ok(page) => {
                            self.backoff.reset();
                            let continue_token =
                                page.metadata.continue_.clone().unwrap_or_default();
                            self.state = State::Listing {
                                last_page: continue_token.is_empty(),
                                continue_token,
                                pending: page.items.into_iter(),
                                list_rv: page.metadata.resource_version.unwrap_or_default(),
                            };
                            return Ok(Event::Init);
                        }
                        Err(e) => {
                            self.state = State::Empty {
                                consistent: consistent || e.is_gone(),
                            };
                            return Err(e);
                        }
                    }
                }
                State::Listing {
                    continue_token,
                    mut pending,
                    list_rv,
                    last_page,
                } => {
                    if let Some(obj) = pending.next() {
                        self.state = State::Listing {
                            continue_token,
                            pending,
                            list_rv,
                            last_page,
                        };
                        return Ok(Event::InitApply(obj));
                    }
                    if last_page {
                        self.state = State::Listed { rv: list_rv };
                        return Ok(Event::InitDone);
                    }
                    let mut lp = self.list_params();
                    lp.continue_token = Some(continue_token.clone());
                    let api = self.api.clone();
                    match api.list(&lp).await {
                        Ok(page) => {
                            self.backoff.reset();
                            let next = page.metadata.continue_.clone().unwrap_or_default();
                            self.state = State::Listing {
                                last_page: next.is_empty(),
                                continue_token: next,
                                pending: page.items.into_iter(),
                                list_rv: page.metadata.resource_version.unwrap_or(list_rv),
                            };
                        }
                        Err(e) if e.is_gone() => {
                            self.note_relist();
                            // The snapshot the pages came from was compacted:
                            // start the list over, consistently. The store
                            // sees a fresh Init and forgets the partial one.
                            self.state = State::Empty { consistent: true };
                            return Err(e);
                        }
                        Err(e) => {
                            self.state = State::Listing {
                                continue_token,
                                pending,
                                list_rv,
                                last_page,
                            };
                            return Err(e);
                        }
                    }
                }
                State::Listed { rv } => match self.open_watch(&rv, false).await {
                    Ok(stream) => {
                        self.state = State::Watching {
                            rv,
                            stream,
                            initial: false,
                        }
                    }
                    Err(e) if requires_relist(&e) => {
                        self.note_relist();
                        self.state = State::Empty { consistent: true };
                        return Err(e);
                    }
                    Err(e) => {
                        self.state = State::Listed { rv };
                        return Err(e);
                    }
                },
                State::Watching {
                    rv,
                    mut stream,
                    initial,
                } => {
                    let item = match self.idle.next_or_silent(&mut stream).await {
                        Some(item) => item,
                        None => {
                            let idle = self.idle.limit;
                            tracing::info!(?idle, "watch silent for too long; watching again");
                            self.state = State::Listed { rv };
                            continue;
                        }
                    };
                    if let Some(Ok(event)) = &item
                        && !matches!(event, WatchEvent::Error(_))
                    {
                        // The watch delivers again: healthy.
                        self.backoff.reset();
                        self.free_relist_armed = true;
                    }
                    match item {
                        None => {
                            // Server timeout or clean close: resume.
                            self.state = self.after_watch_end(rv, initial);
                        }
                        Some(Ok(WatchEvent::Added(obj) | WatchEvent::Modified(obj))) => {
                            let rv = obj.meta().resource_version.clone().unwrap_or(rv);
                            self.state = State::Watching {
                                rv,
                                stream,
                                initial,
                            };
                            return Ok(if initial {
                                Event::InitApply(obj)
                            } else {
                                Event::Apply(obj)
                            });
                        }
                        Some(Ok(WatchEvent::Deleted(obj))) => {
                            let rv = obj.meta().resource_version.clone().unwrap_or(rv);
                            self.state = State::Watching {
                                rv,
                                stream,
                                initial,
                            };
                            return Ok(Event::Delete(obj));
                        }
                        Some(Ok(WatchEvent::Bookmark(b))) => {
                            let end = initial && b.is_initial_events_end();
                            self.state = State::Watching {
                                rv: b.metadata.resource_version,
                                stream,
                                initial: initial && !end,
                            };
                            if end {
                                return Ok(Event::InitDone);
                            }
                        }
                        Some(Ok(WatchEvent::Error(status))) => {
                            let err = Error::WatchError {
                                url: self
                                    .api
                                    .resource()
                                    .collection_path(self.api.namespace())
                                    .unwrap_or_default(),
                                status,
                            };
                            self.state = if requires_relist(&err) {
                                self.note_relist();
                                State::Empty { consistent: true }
                            } else {
                                self.after_watch_end(rv, initial)
                            };
                            return Err(err);
                        }
                        Some(Err(e)) => {
                            // A cut connection or an undecodable event: resume
                            // from the last good version.
                            self.state = self.after_watch_end(rv, initial);
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    /// A 410 sends the watcher to relist: free of backoff if armed.
    fn note_relist(&mut self) {
        self.relisting_for_free = std::mem::take(&mut self.free_relist_armed);
    }

    /// Where to go when a watch ends: resume from `rv`, unless it was a
    /// streaming list that never finished (then start it over).
    fn after_watch_end(&self, rv: String, initial: bool) -> State<K> {
        if initial || rv.is_empty() {
            State::Empty { consistent: false }
        } else {
            State::Listed { rv }
        }
    }

    async fn open_watch(&mut self, rv: &str, streaming: bool) -> Result<EventStream<K>, Error> {
        let mut wp = self.watch_params();
        wp.send_initial_events = streaming;
        let api = self.api.clone();
        let stream = Box::pin(api.watch(&wp, rv).await?);
        self.idle.restart();
        Ok(stream)
    }
}

/// The silence detector of an open watch: a watch that delivers nothing
/// for `limit` is presumed dead.
///
/// One timer serves the whole watch instead of one per event: each event
/// only notes when it arrived (a clock read), and the timer, set for the
/// first possible deadline, is moved on to the real one when it fires
/// early. So a busy watch costs no timer registration per event, and a
/// silent one is still given up `limit` after its last event.
struct IdleWatch {
    /// Silence longer than this ends the watch; `None`: never (the sum of
    /// the timeouts overflowed).
    limit: Option<Duration>,
    /// When the open watch last delivered (or opened).
    last_activity: tokio::time::Instant,
    /// The timer, created at the first wait and reused after.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleWatch {
    fn new(limit: Duration) -> Self {
        Self {
            // Beyond ~30 years a deadline is "never" (and tokio's clock
            // could not add it).
            limit: (limit < Duration::from_secs(1 << 30)).then_some(limit),
            last_activity: tokio::time::Instant::now(),
            timer: None,
        }
    }

    /// A watch opened: silence counts from now.
    fn restart(&mut self) {
        self.last_activity = tokio::time::Instant::now();
    }

    /// What `stream.next()` gives, or `None` once the stream has been
    /// silent for longer than the limit.
    async fn next_or_silent<S: Stream + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Option<Option<S::Item>> {
        let Some(limit) = self.limit else {
            return Some(stream.next().await);
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(self.last_activity + limit)));
        loop {
            let deadline = self.last_activity + limit;
            if timer.deadline() < deadline && timer.is_elapsed() {
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                biased;
                item = stream.next() => {
                    self.last_activity = tokio::time::Instant::now();
                    return Some(item);
                }
                () = timer.as_mut() => {
                    if tokio::time::Instant::now() >= deadline {
                        return None;
                    }
                    // Fired for an older deadline: wait for the real one.
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

/// True for the errors that mean "relist": the resourceVersion is gone
/// (410 Gone / Expired) or ahead of the server ("too large resource
/// version"). They are expected — after compaction, and after every API
/// server restart — so the watcher relists at once instead of backing off,
/// and callers should log them as information, not as warnings.
pub fn requires_relist(e: &Error) -> bool {
    e.is_gone() || e.is_resource_version_too_large()
}

/// `timeoutSeconds` for a watch: whole seconds, at least 1, saturating at
/// `u32::MAX`.
fn timeout_seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}

/// The server does not do streaming lists (older, or the feature is off).
fn refuses_streaming(e: &Error) -> bool {
    matches!(e.code(), Some(400 | 403 | 422 | 501))
        || e.status()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains("sendInitialEvents"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_timeouts_saturate() {
        assert_eq!(timeout_seconds(Duration::from_secs(290)), 290);
        assert_eq!(timeout_seconds(Duration::ZERO), 1);
        assert_eq!(timeout_seconds(Duration::from_millis(1500)), 1);
        // 2^32 s used to wrap to 0 (then 1 s); now the longest a u32 holds.
        assert_eq!(timeout_seconds(Duration::from_secs(1 << 32)), u32::MAX);
        assert_eq!(timeout_seconds(Duration::MAX), u32::MAX);
    }
}
