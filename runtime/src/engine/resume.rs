//! Resuming stored runs by replay: one by hand ([`Engine::resume`]), every interrupted one
//! ([`Engine::resume_pending`]), or the runs a [`Worker`](crate::Worker) claims
//! ([`Engine::claim_next`]).

use std::sync::Arc;

use super::Engine;
use super::error::ResumeError;
use super::in_flight::InFlightGuard;
use crate::context::Durable;
use crate::journal::{Event, Replay};
use crate::run::{Outcome, execute, park_input};
use crate::store::{Claim, Found, RunRecord, Store, Unreadable};
use crate::types::{BoxFuture, NoStore, RunId, RunOptions, RunStatus, StoreError};
use crate::workflow::Workflow;

/// Resumes a claimed stored run of one workflow type.
pub(super) type Resumer = Box<
    dyn Fn(Engine, RunRecord, Vec<Event>, InFlightGuard) -> BoxFuture<'static, RunStatus>
        + Send
        + Sync,
>;

/// The resumer of workflow `W`.
pub(super) fn resumer<W: Workflow>() -> Resumer {
    Box::new(|engine: Engine, record, events, guard| {
        Box::pin(async move {
            let Some(store) = engine.store().cloned() else {
                return RunStatus::Interrupted;
            };
            engine
                .resume_claimed::<W>(store, record, events, guard)
                .await
                .status()
        })
    })
}

/// What [`Engine::resume_pending`] did.
#[derive(Debug, Default)]
pub struct ResumeReport {
    /// The runs resumed, and how each ended.
    pub resumed: Vec<(RunId, RunStatus)>,
    /// The runs of workflows (or versions) this engine does not know: left in the store.
    pub unknown: Vec<(RunId, String, u32)>,
    /// The runs the store failed to load.
    pub failed: Vec<(RunId, StoreError)>,
    /// The runs another worker (named) holds a live lease on: left to it.
    pub held: Vec<(RunId, String)>,
    /// The runs whose record or journal cannot be read: quarantined (parked in the store,
    /// the reason in their `error`), not resumed. Repair the row, then
    /// [`Engine::resume`] each.
    pub quarantined: Vec<Unreadable>,
}

/// A run a worker claimed through [`Engine::claim_next`].
pub(crate) struct ClaimedRun {
    pub(crate) run_id: RunId,
    /// The lease generation it was claimed under.
    pub(crate) fence: u64,
    /// Its resumption, to drive to its end; `None` when this engine cannot run it (another
    /// workflow, or started here meanwhile): hand it back.
    pub(crate) run: Option<BoxFuture<'static, RunStatus>>,
}

impl Engine {
    /// Resumes a stored run of `W` by replaying its journal, under the lease this engine
    /// claimed (`record.fence`), while `guard` marks it in flight here.
    pub(super) async fn resume_claimed<W: Workflow>(
        &self,
        store: Arc<dyn Store>,
        record: RunRecord,
        events: Vec<Event>,
        guard: InFlightGuard,
    ) -> Outcome<W> {
        let run_id = record.run_id;
        let cancel = guard.signal();
        if let Some(request) = &record.cancel {
            cancel.request(request.clone());
        }
        let durable = Durable {
            store,
            persisted: tokio::sync::Mutex::new(events.len()),
            replay: Some(Box::new(Replay::from_journal(&events))),
            fence: record.fence,
            cancel,
            deadline_micros: record.deadline_micros,
            in_transaction: Default::default(),
            deferred: Default::default(),
        };
        let input: W::Input = match serde_json::from_value(record.input) {
            Ok(input) => input,
            Err(err) => return park_input(&durable, run_id, err.to_string()).await,
        };
        let options = RunOptions {
            request_id: record.request_id,
            actor: record.actor,
            origin: record.origin,
            additional_data: record.additional_data,
            idempotency_key: record.idempotency_key,
            run_id: None,
            deadline_micros: record.deadline_micros,
        };
        let outcome = execute::<W>(
            &self.inner.env,
            run_id,
            input,
            options,
            Some((durable, events)),
            None,
        )
        .await;
        drop(guard);
        outcome
    }

    /// Resumes every unfinished run in the store (not parked ones), each to its end, one after
    /// the other. A run of a workflow this engine does not know (see
    /// [`EngineBuilder::workflow`](crate::EngineBuilder::workflow)), or of another version, is
    /// reported and left in the store. A run whose record or journal cannot be read is
    /// quarantined ([`ResumeReport::quarantined`]) and the others resumed. Without a store,
    /// there is nothing to resume.
    ///
    /// # Errors
    /// When the store cannot list its runs (it is down; never because of what a row holds).
    pub async fn resume_pending(&self) -> Result<ResumeReport, StoreError> {
        let Some(store) = self.store().cloned() else {
            return Ok(ResumeReport::default());
        };
        let pending = store.pending().await?;
        let mut report = ResumeReport {
            quarantined: pending.unreadable,
            ..ResumeReport::default()
        };
        for record in pending.runs {
            if self.inner.in_flight.contains(record.run_id) {
                continue;
            }
            match self.resume(record.run_id).await {
                Ok(status) => report.resumed.push((record.run_id, status)),
                Err(ResumeError::Held { owner, .. } | ResumeError::InFlight { owner, .. }) => {
                    report.held.push((record.run_id, owner));
                }
                Err(ResumeError::UnknownWorkflow { workflow, version }) => {
                    report.unknown.push((record.run_id, workflow, version));
                }
                Err(ResumeError::Store(err)) => report.failed.push((record.run_id, err)),
                // It became unreadable since it was listed.
                Err(ResumeError::Quarantined { run_id, reason }) => {
                    report.quarantined.push(Unreadable {
                        run_id: run_id.to_string(),
                        reason,
                    });
                }
                // The store was there a moment ago.
                Err(ResumeError::NoStore(_)) => {}
            }
        }
        Ok(report)
    }

    /// Resumes one stored run, parked ones included (after a fix of the workflow's code, or
    /// of a quarantined run's row).
    ///
    /// A run whose record or journal cannot be read is quarantined (parked, the reason in
    /// its `error`; it may have been already) and [`ResumeError::Quarantined`] says why,
    /// unless it is finished or another worker's live lease holds it
    /// ([`ResumeError::Store`] with [`StoreError::Corrupt`] then: nothing is written).
    ///
    /// # Errors
    /// [`ResumeError`] when the engine has no store, the store fails, the run cannot be
    /// read, the run's workflow is unknown here, or the run is held by another worker or
    /// already running here.
    pub async fn resume(&self, run_id: RunId) -> Result<RunStatus, ResumeError> {
        let store = self.store().cloned().ok_or(NoStore)?;
        let record = match store.load(run_id).await {
            Ok((record, _)) => record,
            Err(StoreError::Corrupt { .. }) => return self.quarantine(&store, run_id).await,
            Err(err) => return Err(ResumeError::Store(err)),
        };
        if let Some(status) = record.status.finished() {
            return Ok(status);
        }
        let resumer = self
            .inner
            .resumers
            .get(&(record.workflow.clone(), record.version))
            .ok_or_else(|| ResumeError::UnknownWorkflow {
                workflow: record.workflow.clone(),
                version: record.version,
            })?;
        let guard = self
            .inner
            .in_flight
            .enter(run_id)
            .ok_or_else(|| ResumeError::InFlight {
                run_id,
                owner: self.inner.lease.owner.clone(),
            })?;
        self.keep_leases(&store);
        match store
            .claim(run_id, &self.inner.lease)
            .await
            .map_err(ResumeError::Store)?
        {
            Claim::Finished(record, _) => Ok(record.status.run_status()),
            Claim::Held {
                owner,
                until_micros,
            } => Err(ResumeError::Held {
                run_id,
                owner,
                until_micros,
            }),
            Claim::Acquired(record, events) => {
                Ok(resumer(self.clone(), *record, events, guard).await)
            }
            Claim::Quarantined(unreadable) => Err(quarantined(run_id, unreadable)),
        }
    }

    /// Quarantines run `run_id`, which cannot be read, through a claim (which parks it
    /// unless it is finished or held by another worker).
    async fn quarantine(
        &self,
        store: &Arc<dyn Store>,
        run_id: RunId,
    ) -> Result<RunStatus, ResumeError> {
        let _guard = self
            .inner
            .in_flight
            .enter(run_id)
            .ok_or_else(|| ResumeError::InFlight {
                run_id,
                owner: self.inner.lease.owner.clone(),
            })?;
        match store
            .claim(run_id, &self.inner.lease)
            .await
            .map_err(ResumeError::Store)?
        {
            Claim::Quarantined(unreadable) => Err(quarantined(run_id, unreadable)),
            Claim::Held {
                owner,
                until_micros,
            } => Err(ResumeError::Held {
                run_id,
                owner,
                until_micros,
            }),
            Claim::Finished(record, _) => Ok(record.status.run_status()),
            // Repaired since it was read: hand it back, and let the caller try again.
            Claim::Acquired(record, _) => {
                let _ = store.release(run_id, record.fence).await;
                Err(ResumeError::Store(StoreError::Unavailable {
                    context: format!("resume run {run_id}"),
                    message: "its row changed while it was read: try again".into(),
                }))
            }
        }
    }

    /// Whether this engine can feed a worker: it has a store and knows workflows to run.
    pub(crate) fn can_work(&self) -> Result<(), WorkReadiness> {
        if self.store().is_none() {
            return Err(WorkReadiness::NoStore);
        }
        if self.inner.resumers.is_empty() {
            return Err(WorkReadiness::NoWorkflows);
        }
        Ok(())
    }

    /// Claims up to `limit` free runs of the workflows this engine knows (never the runs in
    /// flight here), each ready to be driven to its end; and the runs the store quarantined
    /// on the way (their record or journal cannot be read).
    pub(crate) async fn claim_next(&self, limit: usize) -> Result<Found<ClaimedRun>, StoreError> {
        let store = self.store().cloned().ok_or(StoreError::Unavailable {
            context: "claiming runs".to_owned(),
            message: NoStore.to_string(),
        })?;
        let workflows: Vec<(String, u32)> = self.inner.resumers.keys().cloned().collect();
        // Runs still in flight here are not claimed again, even if their lease lapsed (the
        // heartbeat could not reach the store): another worker may take them over, this one
        // goes on until its commits are refused.
        let skip = self.inner.in_flight.ids();
        self.keep_leases(&store);
        let claimed = store
            .claim_next(&self.inner.lease, &workflows, &skip, limit)
            .await?;
        let runs = claimed
            .runs
            .into_iter()
            .map(|(record, events)| {
                let run_id = record.run_id;
                let fence = record.fence;
                // Started here meanwhile (resumed by hand), or not one of the workflows asked
                // for: not ours to run.
                let run = self.inner.in_flight.enter(run_id).and_then(|guard| {
                    let key = (record.workflow.clone(), record.version);
                    let resumer = self.inner.resumers.get(&key)?;
                    #[cfg(feature = "metrics")]
                    crate::metrics::worker_claimed(&record.workflow);
                    Some(resumer(self.clone(), record, events, guard))
                });
                ClaimedRun { run_id, fence, run }
            })
            .collect();
        Ok(Found {
            runs,
            unreadable: claimed.unreadable,
        })
    }

    /// Hands a run back, unfinished, if `fence` is still its lease: any worker may claim it.
    pub(crate) async fn release(&self, run_id: RunId, fence: u64) -> Result<(), StoreError> {
        match self.store() {
            Some(store) => store.release(run_id, fence).await,
            None => Ok(()),
        }
    }
}

/// The error of resuming run `run_id`, which the store quarantined.
fn quarantined(run_id: RunId, unreadable: Unreadable) -> ResumeError {
    ResumeError::Quarantined {
        run_id,
        reason: unreadable.reason,
    }
}

/// Why an engine cannot feed a worker.
pub(crate) enum WorkReadiness {
    NoStore,
    NoWorkflows,
}
