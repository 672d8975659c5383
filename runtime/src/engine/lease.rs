//! Leases: the heartbeat that keeps the leases of a process's in-flight runs alive.
//!
//! A durable run is advanced under a lease ([`Store::claim`], [`Store::claim_next`]); while
//! the engine runs it, a heartbeat renews the lease of every run in flight here, every third of
//! the lease's duration, in one store call. If the process dies, its leases lapse and other
//! workers take its runs over. The heartbeat runs on its own thread with its own clock, so
//! that a busy executor or a test's paused clock cannot starve it. Every second it also asks
//! the store for cancellation requests made elsewhere for those runs, and passes them on.

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use super::in_flight::InFlight;
use crate::store::{Lease, Store};

/// How often the runs in flight here are looked up for cancellation requests made in other
/// processes ([`Store::cancel_requests`]).
pub(crate) const CANCEL_POLL: Duration = Duration::from_secs(1);

/// The default lease duration ([`EngineBuilder::lease`](crate::EngineBuilder::lease)).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The heartbeat thread; dropping this stops it.
pub(crate) struct Heartbeat {
    _stop: mpsc::Sender<()>,
}

impl Heartbeat {
    /// Starts renewing, every `lease.duration / 3`, the leases of the runs in `in_flight`.
    /// `None` if the thread cannot start (the leases then lapse unless runs are short; a
    /// warning is logged).
    pub(crate) fn start(
        store: Arc<dyn Store>,
        lease: Lease,
        in_flight: Arc<InFlight>,
    ) -> Option<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = (lease.duration / 3).max(Duration::from_millis(10));
        // Cancellation requests are looked for more often than leases are renewed.
        let tick = every.min(CANCEL_POLL);
        let started = thread::Builder::new()
            .name("hookflow-heartbeat".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    tracing::warn!("hookflow: cannot start the lease heartbeat's runtime");
                    return;
                };
                let mut renewed = std::time::Instant::now();
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    let runs = in_flight.ids();
                    if runs.is_empty() {
                        continue;
                    }
                    if renewed.elapsed() >= every {
                        renewed = std::time::Instant::now();
                        if let Err(error) = runtime.block_on(store.renew(&lease, &runs)) {
                            #[cfg(feature = "metrics")]
                            crate::metrics::store_error("renew", &error);
                            tracing::warn!(%error, runs = runs.len(), "hookflow: cannot renew leases");
                        }
                    }
                    match runtime.block_on(store.cancel_requests(&runs)) {
                        Ok(requests) => {
                            for (run_id, request) in requests {
                                in_flight.cancel(run_id, &request);
                            }
                        }
                        Err(error) => {
                            #[cfg(feature = "metrics")]
                            crate::metrics::store_error("cancel_requests", &error);
                            tracing::warn!(%error, "hookflow: cannot look for cancellations");
                        }
                    }
                }
            });
        match started {
            Ok(_) => Some(Heartbeat { _stop: stop }),
            Err(error) => {
                tracing::warn!(%error, "hookflow: cannot start the lease heartbeat");
                None
            }
        }
    }
}
