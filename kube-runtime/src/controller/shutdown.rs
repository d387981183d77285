//! Stopping a controller: gracefully (stop taking keys, let reconciles in
//! flight finish within the shutdown timeout, end the stream), or at once
//! (end the stream now, cancelling reconciles in flight).
//!
//! [`Controller::shutdown_on_signal`](super::Controller::shutdown_on_signal)
//! wires both to SIGTERM and SIGINT (Ctrl-C): the first asks for a graceful
//! shutdown, a second one for an immediate one. The signal handlers are
//! installed when that method is called, so a signal that arrives any time
//! after it is never the default action (process death).

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

/// The graceful and forceful shutdown requests of one controller.
#[derive(Default)]
pub(crate) struct Shutdown {
    graceful: Vec<BoxFuture<'static, ()>>,
    forceful: Vec<BoxFuture<'static, ()>>,
}

/// A future that any number of waiters can await; never completes if
/// nothing was asked for.
pub(crate) type Request = Shared<BoxFuture<'static, ()>>;

impl Shutdown {
    pub(crate) fn graceful_on(&mut self, trigger: BoxFuture<'static, ()>) {
        self.graceful.push(trigger);
    }

    /// SIGTERM/SIGINT: first graceful, second forceful.
    pub(crate) fn on_signal(&mut self) {
        let mut signals = Signals::install();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.graceful.push(
            async move {
                // The sender lives as long as the forceful future; if that
                // is dropped, no signal can come any more.
                if rx.await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            .boxed(),
        );
        self.forceful.push(
            async move {
                signals.next().await;
                tracing::info!(
                    "shutdown signal: finishing the reconciles in flight; signal again to stop at once"
                );
                let _ = tx.send(());
                signals.next().await;
                tracing::warn!("second shutdown signal: stopping at once");
            }
            .boxed(),
        );
    }

    /// (graceful, forceful), each completing at the first request.
    pub(crate) fn into_requests(self) -> (Request, Request) {
        (first_of(self.graceful), first_of(self.forceful))
    }
}

fn first_of(futures: Vec<BoxFuture<'static, ()>>) -> Request {
    if futures.is_empty() {
        std::future::pending::<()>().boxed().shared()
    } else {
        futures::future::select_all(futures)
            .map(|_| ())
            .boxed()
            .shared()
    }
}

/// SIGTERM and SIGINT, as one source.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot handle {name}; it will not shut the controller down");
                    None
                }
            };
            Self {
                term: install(SignalKind::terminate(), "SIGTERM"),
                int: install(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.term) => {}
                () = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
