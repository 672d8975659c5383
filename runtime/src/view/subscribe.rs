//! Following a run as it goes: [`Engine::subscribe`] and the [`RunEvents`] it returns.

use tokio::sync::broadcast;

use crate::bus::Subscriber;
use crate::engine::Engine;
use crate::journal::{Event, EventKind};
use crate::types::RunId;

impl Engine {
    /// Follows run `run_id`: its journal events as they happen, until it ends. Subscribe
    /// before starting the run (with [`Engine::spawn`], whose run id is in the outcome, or by
    /// an idempotency key) or while it runs; earlier events are in its journal.
    pub fn subscribe(&self, run_id: RunId) -> RunEvents {
        let (receiver, subscriber) = self.env().bus.subscribe();
        RunEvents {
            run_id,
            receiver,
            _subscriber: subscriber,
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
    _subscriber: Subscriber,
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

impl std::fmt::Debug for RunEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEvents")
            .field("run_id", &self.run_id)
            .field("missed", &self.missed)
            .field("ended", &self.ended)
            .finish()
    }
}
