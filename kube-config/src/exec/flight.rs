//! Single flight: one plugin run shared by every caller that needs it.
//!
//! A [`Flight`] is the rendezvous between the one thread that runs a plugin
//! and the callers waiting for its result. Guarantees:
//!
//! - [`Flight::land`] stores the outcome once and wakes every waiter, both
//!   threads blocked in [`Flight::wait_blocking`] and tasks awaiting
//!   [`Flight::wait`]; each waiter gets a copy of the same outcome (the
//!   credential or the failure).
//! - A waiter that starts after the landing returns at once.
//! - No lock is held while waiting: the blocking wait parks on a condition
//!   variable (which releases its mutex), and the async wait awaits a shared
//!   one-shot channel, which needs no particular runtime.

use std::sync::{Condvar, Mutex, MutexGuard};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;

use super::process::{Failure, Outcome};

/// One plugin run that callers wait on.
pub(super) struct Flight {
    outcome: Mutex<Option<Outcome>>,
    landed: Condvar,
    sender: Mutex<Option<oneshot::Sender<Outcome>>>,
    receiver: Shared<oneshot::Receiver<Outcome>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Flight {
    pub(super) fn new() -> Self {
        let (sender, receiver) = oneshot::channel();
        Self {
            outcome: Mutex::new(None),
            landed: Condvar::new(),
            sender: Mutex::new(Some(sender)),
            receiver: receiver.shared(),
        }
    }

    /// Stores the outcome and wakes every waiter. Only the first landing
    /// counts.
    pub(super) fn land(&self, outcome: Outcome) {
        {
            let mut slot = lock(&self.outcome);
            if slot.is_some() {
                return;
            }
            *slot = Some(outcome.clone());
        }
        self.landed.notify_all();
        if let Some(sender) = lock(&self.sender).take() {
            let _ = sender.send(outcome);
        }
    }

    /// Blocks the thread until the outcome is there.
    pub(super) fn wait_blocking(&self) -> Outcome {
        let mut outcome = lock(&self.outcome);
        loop {
            if let Some(o) = outcome.as_ref() {
                return o.clone();
            }
            outcome = self.landed.wait(outcome).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits without blocking the thread until the outcome is there.
    pub(super) async fn wait(&self) -> Outcome {
        // The sender lives as long as `self` and is only dropped after
        // sending, so a cancelled channel cannot happen; answer anyway.
        self.receiver.clone().await.unwrap_or_else(|_| {
            Err(Failure::Spawn {
                kind: std::io::ErrorKind::Other,
                message: "the plugin run ended without a result".to_owned(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_waiter_gets_the_one_outcome() {
        let flight = Arc::new(Flight::new());
        let blocking: Vec<_> = (0..4)
            .map(|_| {
                let f = Arc::clone(&flight);
                std::thread::spawn(move || f.wait_blocking())
            })
            .collect();
        let f = Arc::clone(&flight);
        let awaiting = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            rt.block_on(f.wait())
        });
        std::thread::sleep(Duration::from_millis(50));
        flight.land(Err(Failure::TooLarge));
        flight.land(Err(Failure::NotFound));
        for h in blocking {
            assert!(matches!(h.join().expect("join"), Err(Failure::TooLarge)));
        }
        assert!(matches!(
            awaiting.join().expect("join"),
            Err(Failure::TooLarge)
        ));
        // after landing: at once
        assert!(matches!(flight.wait_blocking(), Err(Failure::TooLarge)));
    }
}
