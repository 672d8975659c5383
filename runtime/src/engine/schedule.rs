//! Schedules: recurring runs of a workflow ([`Engine::schedule`]), kept in the engine's store
//! so that every engine and worker on it sees them, and what goes wrong with them
//! ([`ScheduleError`]). Their ticks are fired by the workers ([`Worker`](crate::Worker)), or
//! by [`Engine::fire_schedules`]: see `scheduler`.

use std::time::Duration;

use super::Engine;
use crate::store::{ScheduleRecord, Schedules, StoreError};
use crate::types::{
    CatchUp, NoStore, Overlap, RecordError, Rejection, RunId, Spec, SpecError, now_micros,
    to_record,
};
use crate::workflow::Workflow;

/// The longest name a schedule may have, in bytes.
pub const MAX_SCHEDULE_NAME: usize = 200;

/// How a schedule's ticks behave: what a tick does while the previous tick's run is in flight
/// ([`Overlap`]), and what happens to ticks missed while no worker ran ([`CatchUp`]).
///
/// ```
/// # use hookflow_runtime::{CatchUp, Overlap, ScheduleOptions};
/// let options = ScheduleOptions::new()
///     .overlap(Overlap::Allow)
///     .catch_up(CatchUp::Skip);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleOptions {
    pub(crate) overlap: Overlap,
    pub(crate) catch_up: CatchUp,
}

impl ScheduleOptions {
    /// Defaults: [`Overlap::Skip`] and [`CatchUp::Latest`].
    pub fn new() -> Self {
        Self::default()
    }

    /// What a tick does while the previous tick's run is in flight.
    #[must_use]
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// What happens to the ticks missed while no worker ran.
    #[must_use]
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }
}

/// What goes wrong with a schedule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Schedules live in the store, and the engine has none.
    #[error("schedule `{name}` needs a store: {source}")]
    NoStore {
        /// The schedule.
        name: String,
        /// Why.
        #[source]
        source: NoStore,
    },
    /// The schedule's name is empty or longer than [`MAX_SCHEDULE_NAME`] bytes.
    #[error("a schedule's name is 1 to {MAX_SCHEDULE_NAME} bytes, and `{name}` is {} bytes", name.len())]
    Name {
        /// The name.
        name: String,
    },
    /// The schedule's spec cannot be used: a bad cron expression (named, with why), an
    /// interval too short, or a stored spec that does not parse.
    #[error("schedule `{name}`: {source}")]
    Spec {
        /// The schedule.
        name: String,
        /// What is wrong with the spec.
        #[source]
        source: SpecError,
    },
    /// The schedule's input cannot be recorded (too large, too deep, or it does not
    /// serialize).
    #[error("schedule `{name}`: {source}")]
    Input {
        /// The schedule.
        name: String,
        /// Why.
        #[source]
        source: RecordError,
    },
    /// A tick's run could not be recorded: its idempotency key is held by a run with another
    /// input (the schedule's input changed while the tick was being started), or its run id is
    /// taken. Nothing was recorded for it.
    #[error("schedule `{name}`: the run of tick {tick_micros} was refused: {source}")]
    Rejected {
        /// The schedule.
        name: String,
        /// The tick, in microseconds since the Unix epoch.
        tick_micros: u64,
        /// Why.
        #[source]
        source: Rejection,
    },
    /// A stored schedule cannot be read (a hand-edited row, a policy this hookflow does not
    /// know): it does not tick until repaired; the others go on.
    #[error("schedule `{name}` cannot be read: {reason}")]
    Unreadable {
        /// The schedule.
        name: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("schedule `{name}`: {source}")]
    Store {
        /// The schedule (empty when listing them all).
        name: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}

impl Engine {
    /// Registers (or redefines) the schedule `name`: a run of `W` with `input` at each tick
    /// of `spec`, with the default [`ScheduleOptions`]. See [`Engine::schedule_with`].
    ///
    /// # Errors
    /// As [`Engine::schedule_with`].
    pub async fn schedule<W: Workflow>(
        &self,
        name: &str,
        spec: Spec,
        input: W::Input,
    ) -> Result<(), ScheduleError> {
        self.schedule_with::<W>(name, spec, input, ScheduleOptions::default())
            .await
    }

    /// Registers the schedule `name` in the engine's store: a run of `W` with `input` at
    /// each tick of `spec` (a cron expression, in UTC, or an interval counted from now), for
    /// any worker on the store to fire ([`Worker`](crate::Worker)). Registering a name that
    /// exists redefines it and keeps where its ticks are: call this at every start of the
    /// application. No tick before this call runs.
    ///
    /// Each tick is started once, however many workers fire it: the run's idempotency key is
    /// `schedule:{name}:{tick}` (the tick in microseconds since the Unix epoch), and the tick
    /// is recorded by compare-and-set before its run is enqueued. The tick is a time of the
    /// clock of the worker that fires it: keep the workers' clocks in sync.
    ///
    /// # Errors
    /// [`ScheduleError::NoStore`] without a store, [`ScheduleError::Name`] for an empty or too
    /// long name, [`ScheduleError::Input`] for an input that cannot be recorded,
    /// [`ScheduleError::Store`] when the store fails. Nothing is recorded then.
    pub async fn schedule_with<W: Workflow>(
        &self,
        name: &str,
        spec: Spec,
        input: W::Input,
        options: ScheduleOptions,
    ) -> Result<(), ScheduleError> {
        if name.is_empty() || name.len() > MAX_SCHEDULE_NAME {
            return Err(ScheduleError::Name {
                name: name.to_owned(),
            });
        }
        let store = self.store().ok_or_else(|| ScheduleError::NoStore {
            name: name.to_owned(),
            source: NoStore,
        })?;
        let workflow = W::META.name();
        let input = to_record(&input, self.env().max_record_bytes, || {
            format!("the input of schedule `{name}` of `{workflow}`")
        })
        .map_err(|source| ScheduleError::Input {
            name: name.to_owned(),
            source,
        })?;
        let now = now_micros();
        let record = ScheduleRecord {
            name: name.to_owned(),
            workflow: workflow.to_owned(),
            version: W::VERSION,
            spec: spec.to_string(),
            input,
            overlap: options.overlap,
            catch_up: options.catch_up,
            anchor_micros: now,
            last_tick_micros: None,
            last_run_id: None,
            started: true,
            created_at_micros: now,
            updated_at_micros: now,
        };
        store
            .save_schedule(&record)
            .await
            .map_err(|source| ScheduleError::Store {
                name: name.to_owned(),
                source,
            })
    }

    /// Deletes the schedule `name`: no tick of it fires any more (its runs stay, and a run in
    /// flight goes on). Returns whether there was one.
    ///
    /// # Errors
    /// [`ScheduleError::NoStore`] without a store, [`ScheduleError::Store`] when it fails.
    pub async fn unschedule(&self, name: &str) -> Result<bool, ScheduleError> {
        let store = self.store().ok_or_else(|| ScheduleError::NoStore {
            name: name.to_owned(),
            source: NoStore,
        })?;
        store
            .remove_schedule(name)
            .await
            .map_err(|source| ScheduleError::Store {
                name: name.to_owned(),
                source,
            })
    }

    /// The schedules in the engine's store, by name (and those that cannot be read).
    ///
    /// # Errors
    /// [`ScheduleError::NoStore`] without a store, [`ScheduleError::Store`] when it fails.
    pub async fn schedules(&self) -> Result<Schedules, ScheduleError> {
        let store = self.store().ok_or_else(|| ScheduleError::NoStore {
            name: String::new(),
            source: NoStore,
        })?;
        store
            .schedules()
            .await
            .map_err(|source| ScheduleError::Store {
                name: String::new(),
                source,
            })
    }
}

/// The idempotency key of the run of schedule `name`'s tick at `tick` (microseconds since the
/// Unix epoch): `schedule:{name}:{tick}`.
pub fn schedule_key(name: &str, tick_micros: u64) -> String {
    format!("schedule:{name}:{tick_micros}")
}

/// What a scheduler did with one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TickAction {
    /// The tick's run was recorded, for a worker to run.
    Started(RunId),
    /// The tick was skipped: the run of the previous tick was still in flight
    /// ([`Overlap::Skip`]).
    Overlapped {
        /// The run in flight.
        running: RunId,
    },
    /// The tick was skipped: it was missed while no scheduler ran ([`CatchUp::Skip`]).
    Missed,
    /// Another scheduler decided to run the tick and had not recorded its run yet (it died
    /// in between, or was about to): this call recorded it, under the run id and the
    /// idempotency key that scheduler would have used.
    Recovered(RunId),
}

/// A tick a scheduler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// The schedule.
    pub schedule: String,
    /// The tick, in microseconds since the Unix epoch.
    pub at_micros: u64,
    /// What was done with it.
    pub action: TickAction,
}

/// What [`Engine::fire_schedules`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct FireReport {
    /// The ticks this call decided (another worker's are not here), and the runs it recorded
    /// for ticks another scheduler decided ([`TickAction::Recovered`]).
    pub ticks: Vec<Tick>,
    /// The schedules that could not be fired (unreadable, a stored spec that does not parse,
    /// the store failing for one of them); the others were.
    pub errors: Vec<ScheduleError>,
    /// The earliest tick still to come, over every schedule: when to fire again.
    pub next_micros: Option<u64>,
}

impl FireReport {
    /// How long from `now_micros` until the next tick, if any.
    pub fn wait(&self, now_micros: u64) -> Option<Duration> {
        self.next_micros
            .map(|next| Duration::from_micros(next.saturating_sub(now_micros)))
    }
}
