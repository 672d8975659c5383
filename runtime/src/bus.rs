//! The engine's channel of journal events: runs publish every event they record, and
//! subscribers ([`Engine::subscribe`](crate::Engine::subscribe)) receive them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::broadcast;

use crate::journal::Event;
use crate::types::RunId;

/// How many events a slow subscriber may fall behind before it misses some.
const CAPACITY: usize = 4096;

/// The engine's channel of journal events. Publishing costs one atomic load while nobody
/// subscribes.
pub(crate) struct Bus {
    sender: broadcast::Sender<(RunId, Event)>,
    subscribers: Arc<AtomicUsize>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            sender: broadcast::channel(CAPACITY).0,
            subscribers: Arc::default(),
        }
    }
}

impl Bus {
    /// Inlined always: one load and a branch where every event is recorded; the sending
    /// is out of line.
    #[inline(always)]
    pub(crate) fn publish(&self, run_id: RunId, event: &Event) {
        if self.subscribers.load(Ordering::Relaxed) > 0 {
            self.send(run_id, event);
        }
    }

    #[inline(never)]
    fn send(&self, run_id: RunId, event: &Event) {
        // No receiver left is not an error: the subscriber went away.
        let _ = self.sender.send((run_id, event.clone()));
    }

    /// A receiver of every event published from now on, while the returned guard lives.
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<(RunId, Event)>, Subscriber) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        let guard = Subscriber {
            subscribers: Arc::clone(&self.subscribers),
        };
        (self.sender.subscribe(), guard)
    }
}

/// Counts a subscriber while it lives, so that publishing stops when nobody listens.
pub(crate) struct Subscriber {
    subscribers: Arc<AtomicUsize>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}
