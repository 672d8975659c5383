//! Following a run as it goes: [`Engine::subscribe`](crate::Engine::subscribe).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::broadcast;

use crate::context::RunId;
use crate::journal::{Event, EventKind};

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
    pub(crate) fn publish(&self, run_id: RunId, event: &Event) {
        if self.subscribers.load(Ordering::Relaxed) > 0 {
            // No receiver left is not an error: the subscriber went away.
            let _ = self.sender.send((run_id, event.clone()));
        }
    }

    pub(crate) fn subscribe(&self, run_id: RunId) -> RunEvents {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        RunEvents {
            run_id,
            receiver: self.sender.subscribe(),
            subscribers: Arc::clone(&self.subscribers),
            missed: 0,
            ended: false,
        }
    }
}

/// The events of one run, as they are journaled, from the moment of subscribing; the last
/// one is `RunEnded` (or `RunParked`). Events journaled before subscribing are in the
/// outcome's journal, or in the store.
///
/// ```
/// # use hookflow_runtime::{Engine, RunId};
/// # async fn follow(engine: &Engine, run_id: RunId) {
/// let mut events = engine.subscribe(run_id);
/// while let Some(event) = events.next().await {
///     println!("{}", event.kind);
/// }
/// # }
/// ```
pub struct RunEvents {
    run_id: RunId,
    receiver: broadcast::Receiver<(RunId, Event)>,
    subscribers: Arc<AtomicUsize>,
    missed: u64,
    ended: bool,
}

impl RunEvents {
    /// The next event of the run, or `None` once it has ended.
    pub async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            match self.receiver.recv().await {
                Ok((run_id, event)) if run_id == self.run_id => {
                    self.ended = matches!(
                        event.kind,
                        EventKind::RunEnded { .. } | EventKind::RunParked { .. }
                    );
                    return Some(event);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// How many events (of any run) this subscriber missed by falling too far behind; the
    /// run's journal still has them all.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

impl Drop for RunEvents {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for RunEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEvents")
            .field("run_id", &self.run_id)
            .field("missed", &self.missed)
            .field("ended", &self.ended)
            .finish()
    }
}
