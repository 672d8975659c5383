//! Wake-ups: how a store tells the workers waiting on it that a run became claimable, so that
//! they claim it at once rather than at their next poll.
//!
//! A store holds one [`WakeupSignal`] and calls [`WakeupSignal::claimable`] whenever a run
//! becomes claimable (a free run created, a run released); [`Store::wakeups`] hands out
//! [`Wakeups`], which a worker awaits beside its poll interval. In memory and in SQLite the
//! signal reaches the workers of the same process only (processes sharing a SQLite file still
//! find each other's runs by polling); the PostgreSQL store sends it to every process through
//! `NOTIFY`/`LISTEN`. A wake-up is a hint, never a promise: a lost one only delays a run until
//! the next poll, which is why workers keep polling.
//!
//! Store code that makes a run claimable in a new way (an event delivered to a waiting run, a
//! cancellation of a suspended one) calls its store's one function, once the change is
//! committed: `MemoryStore::claimable`, `SqliteStore::claimable`, and in PostgreSQL
//! `wakeup::notify_claimable(client)` after the statement (or the `wakeup::NOTIFY`
//! statement inside the transaction, so that it leaves with the commit). Timers falling due
//! need nothing: the workers' polls find them.
//!
//! [`Store::wakeups`]: super::Store::wakeups

use tokio::sync::watch;

/// The sending side of a store's wake-ups: one per store, shared by everything in the store
/// that makes a run claimable.
#[derive(Debug)]
pub(crate) struct WakeupSignal {
    /// A counter bumped on every signal: a waiter compares it with the last value it saw, so
    /// that a signal sent while it was busy (claiming) is not lost.
    sender: watch::Sender<u64>,
}

impl Default for WakeupSignal {
    fn default() -> Self {
        WakeupSignal {
            sender: watch::Sender::new(0),
        }
    }
}

impl WakeupSignal {
    /// Wakes every worker waiting on this store's [`Wakeups`]: a run became claimable. Cheap,
    /// never blocks, and does nothing when nobody listens.
    pub(crate) fn claimable(&self) {
        self.sender
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A new receiver of this signal, having seen every signal sent so far.
    pub(crate) fn subscribe(&self) -> Wakeups {
        Wakeups {
            receiver: Some(self.sender.subscribe()),
        }
    }
}

/// What a worker awaits to learn that a run became claimable in its store
/// ([`Store::wakeups`](super::Store::wakeups)): each receiver sees every signal sent after
/// it last called [`Wakeups::mark_seen`].
///
/// A store without wake-ups (or one that stopped) gives [`Wakeups::never`], whose
/// [`Wakeups::changed`] never returns: the worker then finds runs by polling alone.
#[derive(Debug, Clone)]
pub struct Wakeups {
    receiver: Option<watch::Receiver<u64>>,
}

impl Default for Wakeups {
    fn default() -> Self {
        Self::never()
    }
}

impl Wakeups {
    /// Wake-ups that never come: for a store that has none.
    pub const fn never() -> Self {
        Wakeups { receiver: None }
    }

    /// Whether these wake-ups can ever come (`false` for [`Wakeups::never`]).
    pub fn is_live(&self) -> bool {
        self.receiver.is_some()
    }

    /// Marks every signal sent so far as seen: call it before looking for runs, so that a
    /// run made claimable while looking wakes the next [`Wakeups::changed`] at once.
    pub fn mark_seen(&mut self) {
        if let Some(receiver) = &mut self.receiver {
            receiver.borrow_and_update();
        }
    }

    /// Returns once a run became claimable since the last [`Wakeups::mark_seen`] (at once if
    /// one did already). Never returns for [`Wakeups::never`] or once the store is dropped.
    /// Cancel-safe: dropping the future loses no signal.
    pub async fn changed(&mut self) {
        match &mut self.receiver {
            Some(receiver) => {
                if receiver.changed().await.is_err() {
                    // The store is gone: nothing will ever wake us again.
                    self.receiver = None;
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{WakeupSignal, Wakeups};

    async fn woken(wakeups: &mut Wakeups) -> bool {
        tokio::time::timeout(Duration::from_millis(50), wakeups.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_signal_sent_after_mark_seen_wakes_every_receiver_once() {
        let signal = WakeupSignal::default();
        let (mut a, mut b) = (signal.subscribe(), signal.subscribe());
        assert!(!woken(&mut a).await, "woken without a signal");
        a.mark_seen();
        // Sent while `a` was not waiting (claiming): not lost.
        signal.claimable();
        assert!(woken(&mut a).await);
        assert!(woken(&mut b).await);
        assert!(!woken(&mut a).await, "woken twice by one signal");
    }

    #[tokio::test]
    async fn never_and_a_dropped_store_never_wake() {
        assert!(!woken(&mut Wakeups::never()).await);
        let signal = WakeupSignal::default();
        let mut wakeups = signal.subscribe();
        drop(signal);
        assert!(!woken(&mut wakeups).await);
    }
}
