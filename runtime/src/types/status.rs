//! Where a run is: [`RunStatus`], how a run ended as its caller sees it, and
//! [`StoredStatus`], as a store keeps it. One mapping between them, both ways.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// The workflow returned its output.
    Completed,
    /// The workflow failed and every completed step was undone.
    Compensated,
    /// The workflow failed and some compensation failed too: needs attention.
    CompensationFailed,
    /// The run's journal could not be replayed (see `RunError::Replay`), or a value it made
    /// cannot be recorded (see `RunError::Record`: too large or too deep for the engine, or
    /// refused by the store): parked in the store, resumable after a fix, never resumed by
    /// itself.
    Parked,
    /// The store failed mid-run: the run stopped, is still `running` in the store, and the
    /// next resume goes on with it.
    Interrupted,
    /// The run was refused before it started (see `RunError::Rejected`): its input cannot be
    /// recorded, its run id is taken, or its idempotency key is held by a run with another
    /// input. Nothing of it ran, and nothing new was recorded.
    Rejected,
    /// The run waits for an event or a timer (`ctx.wait`, `ctx.sleep`): it is suspended in
    /// the store, holding no task and no memory here, and is resumed by replay when the event
    /// is sent or the timer is due (by a [`Worker`](crate::Worker), or by
    /// [`Engine::send`](crate::Engine::send) in the process that sends it).
    Waiting,
    /// The run was cancelled ([`Engine::cancel`](crate::Engine::cancel), or its deadline
    /// passed) and every completed step was undone. A cancelled run whose compensations
    /// failed ends [`RunStatus::CompensationFailed`] instead.
    Cancelled,
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Completed => "completed",
            RunStatus::Compensated => "compensated",
            RunStatus::CompensationFailed => "compensation failed",
            RunStatus::Parked => "parked",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Rejected => "rejected",
            RunStatus::Waiting => "waiting",
            RunStatus::Cancelled => "cancelled",
        })
    }
}

/// Where a stored run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoredStatus {
    /// Started and not finished: running here or elsewhere, or interrupted (resume it).
    Running,
    /// Completed.
    Completed,
    /// Failed and fully compensated.
    Compensated,
    /// Failed, and some compensation failed too.
    CompensationFailed,
    /// Stopped on a replay error, a corrupt journal or a value that cannot be recorded (a
    /// write the store refused); resumable after a fix
    /// ([`Engine::resume`](crate::Engine::resume)), never resumed automatically.
    Parked,
    /// Suspended: waits for an event or a timer, holding no lease. A worker claims it again
    /// once it is woken (the event is sent, the timer or deadline is due, it is cancelled).
    Waiting,
    /// Cancelled, and every completed step undone.
    Cancelled,
}

impl StoredStatus {
    /// Whether the run is over (completed, compensated, compensation failed, or cancelled).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            StoredStatus::Completed
                | StoredStatus::Compensated
                | StoredStatus::CompensationFailed
                | StoredStatus::Cancelled
        )
    }

    /// The name stored in a database column.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Running => "running",
            StoredStatus::Completed => "completed",
            StoredStatus::Compensated => "compensated",
            StoredStatus::CompensationFailed => "compensation_failed",
            StoredStatus::Parked => "parked",
            StoredStatus::Waiting => "waiting",
            StoredStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `s` in a database column.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => StoredStatus::Running,
            "completed" => StoredStatus::Completed,
            "compensated" => StoredStatus::Compensated,
            "compensation_failed" => StoredStatus::CompensationFailed,
            "parked" => StoredStatus::Parked,
            "waiting" => StoredStatus::Waiting,
            "cancelled" => StoredStatus::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for StoredStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RunStatus {
    /// The status a store records for a run that stopped with this status: an interrupted
    /// run is still `running` in the store (the next resume goes on with it).
    pub(crate) fn stored(self) -> StoredStatus {
        match self {
            RunStatus::Completed => StoredStatus::Completed,
            RunStatus::Compensated => StoredStatus::Compensated,
            RunStatus::CompensationFailed => StoredStatus::CompensationFailed,
            RunStatus::Parked => StoredStatus::Parked,
            RunStatus::Interrupted => StoredStatus::Running,
            RunStatus::Waiting => StoredStatus::Waiting,
            RunStatus::Cancelled => StoredStatus::Cancelled,
            // Never stored: a rejected run has no record of its own.
            RunStatus::Rejected => StoredStatus::Running,
        }
    }
}

impl StoredStatus {
    /// How a run whose stored status is this one stands for its caller: a `running` run that
    /// is not running here was interrupted.
    pub(crate) fn run_status(self) -> RunStatus {
        match self {
            StoredStatus::Running => RunStatus::Interrupted,
            StoredStatus::Completed => RunStatus::Completed,
            StoredStatus::Compensated => RunStatus::Compensated,
            StoredStatus::CompensationFailed => RunStatus::CompensationFailed,
            StoredStatus::Parked => RunStatus::Parked,
            StoredStatus::Waiting => RunStatus::Waiting,
            StoredStatus::Cancelled => RunStatus::Cancelled,
        }
    }

    /// The status of a finished run, `None` if it is not finished.
    pub(crate) fn finished(self) -> Option<RunStatus> {
        self.is_finished().then(|| self.run_status())
    }
}

impl StoredStatus {
    /// Every stored status. The SQL stores build their lists of statuses from it (ended runs
    /// are those [`StoredStatus::is_finished`] says), so that a new status is added here and
    /// nowhere else; the test `every_stored_status_is_listed` fails to build until it is.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) const ALL: [StoredStatus; 7] = [
        StoredStatus::Running,
        StoredStatus::Completed,
        StoredStatus::Compensated,
        StoredStatus::CompensationFailed,
        StoredStatus::Parked,
        StoredStatus::Waiting,
        StoredStatus::Cancelled,
    ];
}

#[cfg(test)]
mod tests {
    use super::{RunStatus, StoredStatus};

    #[test]
    fn every_stored_status_is_listed() {
        // Exhaustive: a new status does not build until it has a place in `ALL`.
        let place = |status: StoredStatus| match status {
            StoredStatus::Running => 0,
            StoredStatus::Completed => 1,
            StoredStatus::Compensated => 2,
            StoredStatus::CompensationFailed => 3,
            StoredStatus::Parked => 4,
            StoredStatus::Waiting => 5,
            StoredStatus::Cancelled => 6,
        };
        for (i, status) in StoredStatus::ALL.into_iter().enumerate() {
            assert_eq!(
                place(status),
                i,
                "{status} is out of place in StoredStatus::ALL"
            );
            assert_eq!(StoredStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn every_run_status_round_trips_through_the_store_but_interrupted() {
        for status in [
            RunStatus::Completed,
            RunStatus::Compensated,
            RunStatus::CompensationFailed,
            RunStatus::Parked,
            RunStatus::Interrupted,
            RunStatus::Waiting,
            RunStatus::Cancelled,
        ] {
            assert_eq!(status.stored().run_status(), status);
        }
        assert_eq!(RunStatus::Interrupted.stored(), StoredStatus::Running);
    }
}
