//! A [`MemoryStore`]'s schedules: a map by name, behind its own lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::MemoryStore;
use crate::store::schedules::{Answer, KeepSchedules};
use crate::store::{ScheduleRecord, Schedules};
use crate::types::{RunId, StoreError, now_micros};

impl KeepSchedules for MemoryStore {
    fn keep_schedule<'a>(&'a self, schedule: &'a ScheduleRecord) -> Answer<'a, ()> {
        self.schedules.save(schedule);
        Box::pin(std::future::ready(Ok(())))
    }
    fn read_schedules(&self) -> Answer<'_, Schedules> {
        Box::pin(std::future::ready(Ok(self.schedules.list())))
    }
    fn cas_schedule<'a>(
        &'a self,
        name: &'a str,
        from: Option<u64>,
        tick: u64,
        run_id: Option<RunId>,
    ) -> Answer<'a, bool> {
        let advanced = self
            .schedules
            .advance(name, from, tick, run_id, now_micros());
        Box::pin(std::future::ready(advanced))
    }
    fn mark_schedule_started<'a>(&'a self, name: &'a str, run_id: RunId) -> Answer<'a, ()> {
        self.schedules.started(name, run_id);
        Box::pin(std::future::ready(Ok(())))
    }
    fn drop_schedule<'a>(&'a self, name: &'a str) -> Answer<'a, bool> {
        Box::pin(std::future::ready(Ok(self.schedules.remove(name))))
    }
}

/// The schedules of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(crate) struct MemorySchedules {
    schedules: Mutex<BTreeMap<String, ScheduleRecord>>,
}

impl MemorySchedules {
    /// Records `schedule`, or replaces the definition of the one of the same name (see
    /// [`Store::save_schedule`](crate::store::Store::save_schedule)).
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
