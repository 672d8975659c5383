//! Firing schedules: at a given time, each schedule's due tick is decided once across every
//! engine on the store, by compare-and-set of its last tick, and its run recorded with the
//! tick as idempotency key ([`Engine::fire_schedules_at`]); and the loop a
//! [`Worker`](crate::Worker) runs beside its claims, which fires them on time.
//!
//! One tick, as a scheduler sees it:
//! 1. the schedule's row says its last tick `L` and its last run `R` (and whether `R` was
//!    recorded); a run decided and not recorded (its scheduler died in between) is recorded
//!    now, under its tick's key: the key makes that idempotent, whoever does it;
//! 2. the latest tick `T` with `L < T <= now` is due; under
//!    [`CatchUp::Skip`](crate::CatchUp) it runs only if it is on time, and under
//!    [`Overlap::Skip`](crate::Overlap) only if `R` is not in flight;
//! 3. compare-and-set `L -> T` (with a new run id if `T` runs): one scheduler wins, the others
//!    leave `T` to it;
//! 4. the winner records the run (idempotency key `schedule:{name}:{T}`), then marks it
//!    recorded.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::Engine;
use super::schedule::{FireReport, ScheduleError, Tick, TickAction, schedule_key};
use crate::store::{Created, RunRecord, ScheduleRecord, Store, StoreError};
use crate::types::{NoStore, Origin, Overlap, Rejection, RunId, Spec, StoredStatus, now_micros};

impl Engine {
    /// Fires the ticks of the store's schedules that are due now: see
    /// [`Engine::fire_schedules_at`]. Workers call it on time by themselves; call it to drive
    /// schedules without a worker.
    ///
    /// # Errors
    /// As [`Engine::fire_schedules_at`].
    pub async fn fire_schedules(&self) -> Result<FireReport, ScheduleError> {
        self.fire_at_micros(now_micros()).await
    }

    /// Fires the ticks of the store's schedules that are due at `now`: for each schedule, the
    /// latest tick after its last one, at or before `now`, is decided once across every engine
    /// on the store (run, or skipped by its [`Overlap`] or [`CatchUp`](crate::CatchUp)
    /// policy), and its run recorded for a worker to claim. A tick another engine decided
    /// first is left to it.
    /// Ticks are idempotent: calling this again, here or elsewhere, at the same `now` starts
    /// nothing more.
    ///
    /// # Errors
    /// [`ScheduleError::NoStore`] without a store, [`ScheduleError::Store`] when the schedules
    /// cannot be read. What goes wrong with one schedule is in [`FireReport::errors`], and
    /// the others are fired.
    pub async fn fire_schedules_at(&self, now: SystemTime) -> Result<FireReport, ScheduleError> {
        let micros = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.fire_at_micros(micros).await
    }

    async fn fire_at_micros(&self, now: u64) -> Result<FireReport, ScheduleError> {
        let store = self.store().ok_or_else(|| ScheduleError::NoStore {
            name: String::new(),
            source: NoStore,
        })?;
        let found = store
            .schedules()
            .await
            .map_err(|source| ScheduleError::Store {
                name: String::new(),
                source,
            })?;
        let mut report = FireReport::default();
        for unreadable in found.unreadable {
            report.errors.push(ScheduleError::Unreadable {
                name: unreadable.name,
                reason: unreadable.reason,
            });
        }
        for schedule in found.schedules {
            let spec = match schedule.spec.parse::<Spec>() {
                Ok(spec) => spec,
                Err(source) => {
                    report.errors.push(ScheduleError::Spec {
                        name: schedule.name,
                        source,
                    });
                    continue;
                }
            };
            let after = schedule
                .last_tick_micros
                .unwrap_or(0)
                .max(schedule.anchor_micros);
            if let Some(next) = spec.next_after(schedule.anchor_micros, after.max(now)) {
                report.next_micros = Some(report.next_micros.map_or(next, |n| n.min(next)));
            }
            if let Err(err) = fire_one(store, &schedule, &spec, now, &mut report.ticks).await {
                report.errors.push(err);
            }
        }
        Ok(report)
    }
}

/// Decides `schedule`'s tick due at `now`, if any (see the module's steps).
async fn fire_one(
    store: &Arc<dyn Store>,
    schedule: &ScheduleRecord,
    spec: &Spec,
    now: u64,
    ticks: &mut Vec<Tick>,
) -> Result<(), ScheduleError> {
    let name = &schedule.name;
    let failed = |source: StoreError| ScheduleError::Store {
        name: name.clone(),
        source,
    };
    // 1. A run decided and not recorded: record it now.
    if let (false, Some(run_id), Some(tick)) = (
        schedule.started,
        schedule.last_run_id,
        schedule.last_tick_micros,
    ) {
        if start(store, schedule, tick, run_id).await? {
            ticks.push(Tick {
                schedule: name.clone(),
                at_micros: tick,
                action: TickAction::Recovered(run_id),
            });
        }
    }
    // 2. The tick due, and whether it runs.
    let after = schedule
        .last_tick_micros
        .unwrap_or(0)
        .max(schedule.anchor_micros);
    let Some(tick) = spec.latest_due(schedule.anchor_micros, after, now) else {
        return Ok(());
    };
    let next = spec.next_after(schedule.anchor_micros, tick);
    let action = if !schedule.catch_up.runs(tick, next, now) {
        TickAction::Missed
    } else if schedule.overlap == Overlap::Allow {
        TickAction::Started(RunId::new())
    } else {
        match in_flight(store, schedule).await.map_err(failed)? {
            Some(running) => TickAction::Overlapped { running },
            None => TickAction::Started(RunId::new()),
        }
    };
    // 3. Compare-and-set: one scheduler decides the tick.
    let run_id = match action {
        TickAction::Started(run_id) => Some(run_id),
        _ => None,
    };
    let won = store
        .advance_schedule(name, schedule.last_tick_micros, tick, run_id)
        .await
        .map_err(failed)?;
    if !won {
        return Ok(());
    }
    // 4. The winner records the run.
    if let Some(run_id) = run_id {
        start(store, schedule, tick, run_id).await?;
    }
    ticks.push(Tick {
        schedule: name.clone(),
        at_micros: tick,
        action,
    });
    Ok(())
}

/// The run of the schedule's last tick, if it is in flight (not finished: running,
/// interrupted, parked). A run that is gone (pruned) is not in flight; one that was decided
/// and not recorded yet is.
async fn in_flight(
    store: &Arc<dyn Store>,
    schedule: &ScheduleRecord,
) -> Result<Option<RunId>, StoreError> {
    let Some(run_id) = schedule.last_run_id else {
        return Ok(None);
    };
    match store.load(run_id).await {
        Ok((record, _)) => Ok((!record.status.is_finished()).then_some(run_id)),
        Err(StoreError::NotFound(_)) => Ok((!schedule.started).then_some(run_id)),
        Err(err) => Err(err),
    }
}

/// Records the run `run_id` of the schedule's tick `tick` (idempotently: under the tick's
/// key), then marks it recorded. Returns whether this call recorded it.
async fn start(
    store: &Arc<dyn Store>,
    schedule: &ScheduleRecord,
    tick: u64,
    run_id: RunId,
) -> Result<bool, ScheduleError> {
    let name = &schedule.name;
    let failed = |source: StoreError| ScheduleError::Store {
        name: name.clone(),
        source,
    };
    let key = schedule_key(name, tick);
    let now = now_micros();
    let record = RunRecord {
        run_id,
        workflow: schedule.workflow.clone(),
        version: schedule.version,
        input: schedule.input.clone(),
        status: StoredStatus::Running,
        idempotency_key: Some(key.clone()),
        request_id: None,
        actor: None,
        origin: Origin::Local,
        additional_data: None,
        output: None,
        error: None,
        created_at_micros: now,
        updated_at_micros: now,
        owner: None,
        fence: 0,
        lease_until_micros: None,
        wake_at_micros: None,
        waiting_for: None,
        cancel: None,
        deadline_micros: None,
    };
    let created = match store.create(&record, None).await.map_err(failed)? {
        Created::New => true,
        Created::Existing(_) => false,
        // The tick's own run, recorded before the schedule's input changed.
        Created::KeyConflict { run_id: holder } if holder == run_id => false,
        Created::KeyConflict { run_id: holder } => {
            return Err(ScheduleError::Rejected {
                name: name.clone(),
                tick_micros: tick,
                source: Rejection::IdempotencyConflict {
                    key,
                    run_id: holder,
                },
            });
        }
        Created::RunIdTaken => {
            return Err(ScheduleError::Rejected {
                name: name.clone(),
                tick_micros: tick,
                source: Rejection::RunIdTaken { run_id },
            });
        }
    };
    store.schedule_started(name, run_id).await.map_err(failed)?;
    Ok(created)
}

/// The scheduler a [`Worker`](crate::Worker) runs beside its claims: fires the schedules at
/// each tick (waking when the next one is due) and at least every `refresh` (to see
/// schedules registered elsewhere), until `stopping` says so; reports what goes wrong to
/// `report` and goes on. On a store that keeps no schedules ([`StoreError::Unsupported`]),
/// it stops at once, quietly.
pub(crate) async fn run_scheduler(
    engine: Engine,
    refresh: Duration,
    mut stopping: watch::Receiver<Option<Duration>>,
    report: impl Fn(ScheduleError) + Send + 'static,
) {
    let refresh = refresh.max(Duration::from_millis(10));
    loop {
        if stopping.borrow().is_some() {
            return;
        }
        let wait = match engine.fire_schedules().await {
            Ok(fired) => {
                let wait = fired.wait(now_micros());
                for error in fired.errors {
                    report(error);
                }
                wait.map_or(refresh, |wait| wait.min(refresh))
            }
            // A store of your own that keeps no schedules: nothing to fire, ever.
            Err(ScheduleError::Store {
                source: StoreError::Unsupported { .. },
                ..
            }) => {
                tracing::debug!("hookflow: the store keeps no schedules: no scheduler");
                return;
            }
            Err(error) => {
                report(error);
                refresh
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            // `Ok(())` only: a dropped handle leaves the worker, and this, running.
            Ok(()) = stopping.changed() => {}
        }
    }
}
