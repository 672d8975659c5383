//! Schedules as stores keep them ([`ScheduleRecord`]): the definition of a recurring run and
//! where its ticks are, shared by every engine and worker on the store. The last tick is
//! advanced by compare-and-set ([`Store::advance_schedule`](super::Store::advance_schedule)),
//! so that of the workers that find a tick due at once, one decides what it does.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

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

/// The schedules of a [`MemoryStore`](super::MemoryStore).
#[derive(Debug, Default)]
pub(crate) struct MemorySchedules {
    schedules: Mutex<BTreeMap<String, ScheduleRecord>>,
}

impl MemorySchedules {
    /// Records `schedule`, or replaces the definition of the one of the same name (see
    /// [`Store::save_schedule`](super::Store::save_schedule)).
    pub(crate) fn save(&self, schedule: &ScheduleRecord) {
        let mut schedules = crate::types::lock(&self.schedules);
        match schedules.get_mut(&schedule.name) {
            None => {
                schedules.insert(schedule.name.clone(), schedule.clone());
            }
            Some(existing) => redefine(existing, schedule),
        }
    }

    pub(crate) fn list(&self) -> Schedules {
        Schedules {
            schedules: crate::types::lock(&self.schedules)
                .values()
                .cloned()
                .collect(),
            unreadable: Vec::new(),
        }
    }

    pub(crate) fn advance(
        &self,
        name: &str,
        from: Option<u64>,
        tick: u64,
        run_id: Option<RunId>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut schedules = crate::types::lock(&self.schedules);
        let Some(schedule) = schedules.get_mut(name) else {
            return Ok(false);
        };
        if schedule.last_tick_micros != from {
            return Ok(false);
        }
        schedule.last_tick_micros = Some(tick);
        if let Some(run_id) = run_id {
            schedule.last_run_id = Some(run_id);
            schedule.started = false;
        }
        schedule.updated_at_micros = now;
        Ok(true)
    }

    pub(crate) fn started(&self, name: &str, run_id: RunId) {
        let mut schedules = crate::types::lock(&self.schedules);
        if let Some(schedule) = schedules.get_mut(name) {
            if schedule.last_run_id == Some(run_id) {
                schedule.started = true;
            }
        }
    }

    pub(crate) fn remove(&self, name: &str) -> bool {
        crate::types::lock(&self.schedules).remove(name).is_some()
    }
}

/// Replaces `existing`'s definition with `new`'s, keeping its ticks; a new spec counts from
/// `new`'s anchor.
fn redefine(existing: &mut ScheduleRecord, new: &ScheduleRecord) {
    if existing.spec != new.spec {
        existing.anchor_micros = new.anchor_micros;
    }
    existing.workflow.clone_from(&new.workflow);
    existing.version = new.version;
    existing.spec.clone_from(&new.spec);
    existing.input.clone_from(&new.input);
    existing.overlap = new.overlap;
    existing.catch_up = new.catch_up;
    existing.updated_at_micros = new.updated_at_micros;
}
