//! Schedules as stores keep them ([`ScheduleRecord`]): the definition of a recurring run and
//! where its ticks are, shared by every engine and worker on the store. The last tick is
//! advanced by compare-and-set ([`Store::advance_schedule`](super::Store::advance_schedule)),
//! so that of the workers that find a tick due at once, one decides what it does.

use serde_json::Value;

use super::{BoxFuture, Store};
use crate::types::{CatchUp, Overlap, RunId, StoreError};

/// A schedule as a store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    /// Its name, unique in the store.
    pub name: String,
    /// The workflow each tick runs.
    pub workflow: String,
    /// The workflow's version.
    pub version: u32,
    /// When it ticks: a [`Spec`](crate::Spec)'s stored form (a cron expression, or
    /// `every 30s`).
    pub spec: String,
    /// The input of each run, as JSON.
    pub input: Value,
    /// What a tick does while the previous tick's run is in flight.
    pub overlap: Overlap,
    /// What happens to the ticks missed while no scheduler ran.
    pub catch_up: CatchUp,
    /// Where intervals count from: when the schedule was first registered with this spec, in
    /// microseconds since the Unix epoch. No tick at or before it runs.
    pub anchor_micros: u64,
    /// The last tick decided (run or skipped), if any.
    pub last_tick_micros: Option<u64>,
    /// The run of the last tick that was run, if any.
    pub last_run_id: Option<RunId>,
    /// Whether the run of `last_run_id` was recorded: `false` between the decision to run a
    /// tick and the run's creation, so that a scheduler that died in between is made good by
    /// the next one.
    pub started: bool,
    /// When the schedule was first registered.
    pub created_at_micros: u64,
    /// When its definition or its ticks last changed.
    pub updated_at_micros: u64,
}

/// A stored schedule that cannot be read (a hand-edited row, a policy this hookflow does not
/// know): reported, never failing the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableSchedule {
    /// The schedule's name.
    pub name: String,
    /// Why it cannot be read.
    pub reason: String,
}

/// The schedules of a store, by name, and those that cannot be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedules {
    /// The schedules read, by name.
    pub schedules: Vec<ScheduleRecord>,
    /// The rows that could not be read.
    pub unreadable: Vec<UnreadableSchedule>,
}

/// What a schedule's row holds as text, read back into a record: its policies must be known
/// and its input JSON (the SQL stores read each column, then this).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct RawSchedule {
    pub(crate) name: String,
    pub(crate) workflow: String,
    pub(crate) version: i64,
    pub(crate) spec: String,
    pub(crate) input: String,
    pub(crate) overlap: String,
    pub(crate) catch_up: String,
    pub(crate) anchor: i64,
    pub(crate) last_tick: Option<i64>,
    pub(crate) last_run_id: Option<String>,
    pub(crate) started: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// The columns of a schedule's row, in [`RawSchedule`]'s order.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const SCHEDULE_COLUMNS: &str = "name, workflow, version, spec, input, overlap, \
    catch_up, anchor, last_tick, last_run_id, started, created_at, updated_at";

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl RawSchedule {
    /// The record, or why it cannot be read.
    pub(crate) fn read(self) -> Result<ScheduleRecord, UnreadableSchedule> {
        let bad = |reason: String| UnreadableSchedule {
            name: self.name.clone(),
            reason,
        };
        let micros = |v: i64, what: &str| {
            u64::try_from(v).map_err(|_| bad(format!("{what} is negative: {v}")))
        };
        Ok(ScheduleRecord {
            name: self.name.clone(),
            workflow: self.workflow.clone(),
            version: u32::try_from(self.version)
                .map_err(|_| bad(format!("version {} is out of range", self.version)))?,
            spec: self.spec.clone(),
            input: serde_json::from_str(&self.input).map_err(|e| bad(format!("input: {e}")))?,
            overlap: Overlap::parse(&self.overlap)
                .ok_or_else(|| bad(format!("unknown overlap policy `{}`", self.overlap)))?,
            catch_up: CatchUp::parse(&self.catch_up)
                .ok_or_else(|| bad(format!("unknown catch-up policy `{}`", self.catch_up)))?,
            anchor_micros: micros(self.anchor, "anchor")?,
            last_tick_micros: self.last_tick.map(|t| micros(t, "last tick")).transpose()?,
            last_run_id: self
                .last_run_id
                .as_deref()
                .map(|id| RunId::parse(id).map_err(|e| bad(format!("last run id: {e}"))))
                .transpose()?,
            started: self.started,
            created_at_micros: micros(self.created_at, "created_at")?,
            updated_at_micros: micros(self.updated_at, "updated_at")?,
        })
    }
}

/// A time as a SQL store keeps it (`BIGINT`/`INTEGER`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn sql_micros(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// What a [`Store`] answers about schedules.
pub(crate) type Answer<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// How a store keeps schedules, in its own `schedules` module: the [`Store`] methods for
/// schedules forward to it (`forward_schedules!()` in the store's `impl Store`). See the
/// [`Store`] methods of the same purpose for what each does.
pub(crate) trait KeepSchedules {
    fn keep_schedule<'a>(&'a self, schedule: &'a ScheduleRecord) -> Answer<'a, ()>;
    fn read_schedules(&self) -> Answer<'_, Schedules>;
    fn cas_schedule<'a>(
        &'a self,
        name: &'a str,
        from: Option<u64>,
        tick: u64,
        run_id: Option<RunId>,
    ) -> Answer<'a, bool>;
    fn mark_schedule_started<'a>(&'a self, name: &'a str, run_id: RunId) -> Answer<'a, ()>;
    fn drop_schedule<'a>(&'a self, name: &'a str) -> Answer<'a, bool>;
}

/// The [`Store`] methods for schedules, forwarded to the store's [`KeepSchedules`].
macro_rules! forward_schedules {
    () => {
        fn save_schedule<'a>(
            &'a self,
            schedule: &'a $crate::store::ScheduleRecord,
        ) -> $crate::store::schedules::Answer<'a, ()> {
            $crate::store::schedules::KeepSchedules::keep_schedule(self, schedule)
        }
        fn schedules(&self) -> $crate::store::schedules::Answer<'_, $crate::store::Schedules> {
            $crate::store::schedules::KeepSchedules::read_schedules(self)
        }
        fn advance_schedule<'a>(
            &'a self,
            name: &'a str,
            from: Option<u64>,
            tick: u64,
            run_id: Option<$crate::types::RunId>,
        ) -> $crate::store::schedules::Answer<'a, bool> {
            $crate::store::schedules::KeepSchedules::cas_schedule(self, name, from, tick, run_id)
        }
        fn schedule_started<'a>(
            &'a self,
            name: &'a str,
            run_id: $crate::types::RunId,
        ) -> $crate::store::schedules::Answer<'a, ()> {
            $crate::store::schedules::KeepSchedules::mark_schedule_started(self, name, run_id)
        }
        fn remove_schedule<'a>(
            &'a self,
            name: &'a str,
        ) -> $crate::store::schedules::Answer<'a, bool> {
            $crate::store::schedules::KeepSchedules::drop_schedule(self, name)
        }
    };
}
pub(crate) use forward_schedules;

/// A shared store keeps the schedules of the store it shares.
impl<S: Store + ?Sized> KeepSchedules for std::sync::Arc<S> {
    fn keep_schedule<'a>(&'a self, schedule: &'a ScheduleRecord) -> Answer<'a, ()> {
        (**self).save_schedule(schedule)
    }
    fn read_schedules(&self) -> Answer<'_, Schedules> {
        (**self).schedules()
    }
    fn cas_schedule<'a>(
        &'a self,
        name: &'a str,
        from: Option<u64>,
        tick: u64,
        run_id: Option<RunId>,
    ) -> Answer<'a, bool> {
        (**self).advance_schedule(name, from, tick, run_id)
    }
    fn mark_schedule_started<'a>(&'a self, name: &'a str, run_id: RunId) -> Answer<'a, ()> {
        (**self).schedule_started(name, run_id)
    }
    fn drop_schedule<'a>(&'a self, name: &'a str) -> Answer<'a, bool> {
        (**self).remove_schedule(name)
    }
}

/// What a store that keeps no schedules answers (the [`Store`] defaults), whatever it was
/// asked (`_asked`).
pub(crate) fn unsupported<T: Send + 'static, A>(_asked: A) -> Answer<'static, T> {
    let err = StoreError::Unsupported {
        context: "keep schedules".to_owned(),
    };
    Box::pin(std::future::ready(Err(err)))
}
