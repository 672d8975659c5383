//! Starting runs: in place ([`Engine::run_with`]), or recorded for a worker
//! ([`Engine::enqueue_with`]); an idempotency key the store knows gives back that run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::in_flight::InFlightGuard;
use super::{Engine, EnqueueError};
use crate::context::Durable;
use crate::run::{Begin, Outcome, Started, execute};
use crate::store::{Claim, Created, RunRecord, Store};
use crate::types::{
    NoStore, RecordError, Rejection, RunId, RunOptions, RunStatus, StoreError, StoredStatus,
    check_value, now_micros, to_record,
};
use crate::workflow::Workflow;

impl Engine {
    /// Runs workflow `W` with `input` and `options` (request id, actor, origin, additional
    /// data, idempotency key), to its end: completed, or failed and compensated.
    ///
    /// With a store, the run is recorded before it starts and each step's completion is
    /// committed before the next step starts. A start with an idempotency key that the store
    /// knows, and the same input, returns that run's outcome instead of running again
    /// (waiting for it if it is in flight here, resuming it if it was interrupted). A start
    /// that cannot be recorded ends [`RunStatus::Rejected`] with nothing written
    /// ([`RunError::Rejected`](crate::RunError::Rejected)): its key is held by a run with
    /// another input ([`Rejection::IdempotencyConflict`]), its run id is taken
    /// ([`Rejection::RunIdTaken`]), or its input cannot be recorded ([`Rejection::Record`]).
    /// A workflow that declares the type of its additional data
    /// (`#[workflow(additional_data = T)]`) has it checked first, with or without a store:
    /// missing or not a `T`, the run ends `Rejected` ([`Rejection::AdditionalData`], naming the
    /// bad field's path) before anything is recorded or any step runs.
    ///
    /// The run begins when the returned future is first polled: a future that is never
    /// polled starts nothing (nothing is checked, recorded or run).
    pub fn run_with<W: Workflow>(
        &self,
        input: W::Input,
        options: RunOptions,
    ) -> impl Future<Output = Outcome<W>> + '_ {
        // The arguments wait in `Begin`, and give way to the run's future once it starts.
        Begin::new(move || self.begin::<W>(input, options))
    }

    /// The start of a run of [`Engine::run_with`], at its future's first poll: the additional
    /// data checked, then a run without a store set up and run in place; a run with a store
    /// is recorded first, boxed (its record and the store's future are held across the
    /// `create`: a run without a store must not carry their room).
    ///
    /// Inlined into the first poll (`Begin`): called out of line, the run's future (1.3 KB)
    /// was built, then copied into `Started`, into the return slot and into `Begin`; inlined,
    /// the copies fold into one (about 200 instructions a run, with callgrind).
    #[inline(always)]
    fn begin<W: Workflow>(
        &self,
        input: W::Input,
        mut options: RunOptions,
    ) -> Started<
        Outcome<W>,
        impl Future<Output = Outcome<W>> + '_,
        impl Future<Output = Outcome<W>> + '_,
    > {
        // An id made here and the run's start share one reading of the clock (a run started
        // in place records its start at once).
        let (run_id, started_at) = match options.run_id.take() {
            Some(run_id) => (run_id, None),
            None => {
                let now = now_micros();
                (RunId::at(now), Some(now))
            }
        };
        // A declared type of additional data is checked before anything is recorded.
        if let Err(err) = W::__check_additional_data(options.additional_data.as_ref()) {
            return Started::ready(Outcome::stopped(
                run_id,
                RunStatus::Rejected,
                Rejection::from(err).into(),
            ));
        }
        match self.store().cloned() {
            None => Started::running(execute::<W>(
                &self.inner.env,
                run_id,
                input,
                options,
                None,
                started_at,
            )),
            Some(store) => {
                Started::recorded(self.start_recorded::<W>(store, run_id, input, options))
            }
        }
    }

    /// A run with a store: recorded, then run.
    async fn start_recorded<W: Workflow>(
        &self,
        store: Arc<dyn Store>,
        run_id: RunId,
        input: W::Input,
        options: RunOptions,
    ) -> Outcome<W> {
        // Boxed: the record is held across the `create` below.
        let record = match new_record::<W>(self, run_id, &input, &options) {
            Ok(record) => Box::new(record),
            Err(rejection) => {
                return Outcome::stopped(run_id, RunStatus::Rejected, rejection.into());
            }
        };
        let mut _in_flight = self.inner.in_flight.enter(run_id);
        self.keep_leases(&store);
        let durable = match store.create(&record, Some(&self.inner.lease)).await {
            Err(err) => {
                #[cfg(feature = "metrics")]
                crate::metrics::store_error("create", &err);
                let (status, error) = match refused::<W>(err) {
                    Ok(rejection) => (RunStatus::Rejected, rejection.into()),
                    Err(err) => (RunStatus::Interrupted, err.into()),
                };
                return Outcome::stopped(run_id, status, error);
            }
            Ok(Created::Existing(existing)) => {
                _in_flight = None;
                return Box::pin(self.existing::<W>(store, *existing)).await;
            }
            Ok(conflict @ (Created::RunIdTaken | Created::KeyConflict { .. })) => {
                let rejection = conflict_of(conflict, run_id, &options);
                return Outcome::stopped(run_id, RunStatus::Rejected, rejection.into());
            }
            Ok(Created::New) => Durable {
                store,
                persisted: tokio::sync::Mutex::new(0),
                replay: None,
                fence: 1,
                cancel: _in_flight
                    .as_ref()
                    .map(InFlightGuard::signal)
                    .unwrap_or_default(),
                deadline_micros: options.deadline_micros,
                in_transaction: Default::default(),
                deferred: Default::default(),
            },
        };
        drop(record);
        execute::<W>(
            &self.inner.env,
            run_id,
            input,
            options,
            Some((durable, Vec::new())),
            None,
        )
        .await
    }

    /// The outcome of a run that exists with the same idempotency key: recorded if it is
    /// over, awaited if it runs here or under another worker's lease, resumed here if it was
    /// interrupted.
    async fn existing<W: Workflow>(&self, store: Arc<dyn Store>, record: RunRecord) -> Outcome<W> {
        let run_id = record.run_id;
        let mut wait = Duration::from_millis(5);
        loop {
            if let Some(guard) = self.inner.in_flight.enter(run_id) {
                self.keep_leases(&store);
                match store.claim(run_id, &self.inner.lease).await {
                    Err(err) => {
                        return Outcome::stopped(run_id, RunStatus::Interrupted, err.into());
                    }
                    Ok(Claim::Finished(record, events)) => {
                        return Outcome::from_record(*record, events);
                    }
                    Ok(Claim::Acquired(record, events)) => {
                        if record.status == StoredStatus::Parked {
                            drop(guard);
                            // Parked runs are resumed by hand only: hand the lease back.
                            let _ = store.release(run_id, record.fence).await;
                            return Outcome::from_record(*record, events);
                        }
                        // Nobody was running it: it was interrupted. Go on with it.
                        return self
                            .resume_claimed::<W>(store, *record, events, guard)
                            .await;
                    }
                    // Another worker runs it: wait for it.
                    Ok(Claim::Held { .. }) => {}
                    // Its row cannot be read: parked, like any run that cannot go on.
                    Ok(Claim::Quarantined(unreadable)) => {
                        let err = crate::store::StoreError::Corrupt {
                            run_id: unreadable.run_id,
                            message: unreadable.reason,
                        };
                        return Outcome::stopped(run_id, RunStatus::Parked, err.into());
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(200));
        }
    }

    /// Records a run of `W` with `input` for any worker to run ([`Worker`](crate::Worker)),
    /// and returns its id at once. With an idempotency key the store already knows (and the
    /// same input), returns that run's id instead.
    ///
    /// # Errors
    /// [`EnqueueError`] when the engine has no store, the store fails, or the run is refused
    /// ([`EnqueueError::Rejected`]: its input cannot be recorded, its idempotency key is held
    /// by a run with another input, its run id is taken).
    pub async fn enqueue<W: Workflow>(&self, input: W::Input) -> Result<RunId, EnqueueError> {
        self.enqueue_with::<W>(input, RunOptions::default()).await
    }

    /// [`Engine::enqueue`] with [`RunOptions`] (request id, actor, additional data,
    /// idempotency key, run id).
    ///
    /// # Errors
    /// As [`Engine::enqueue`].
    pub async fn enqueue_with<W: Workflow>(
        &self,
        input: W::Input,
        mut options: RunOptions,
    ) -> Result<RunId, EnqueueError> {
        let store = self.store().ok_or(EnqueueError::NoStore {
            workflow: W::META.name(),
            source: NoStore,
        })?;
        W::__check_additional_data(options.additional_data.as_ref()).map_err(Rejection::from)?;
        let run_id = options.run_id.take().unwrap_or_else(RunId::new);
        let record = new_record::<W>(self, run_id, &input, &options)?;
        match store.create(&record, None).await {
            Ok(Created::New) => Ok(run_id),
            Ok(Created::Existing(existing)) => Ok(existing.run_id),
            Ok(conflict) => Err(conflict_of(conflict, run_id, &options).into()),
            Err(err) => {
                #[cfg(feature = "metrics")]
                crate::metrics::store_error("create", &err);
                Err(match refused::<W>(err) {
                    Ok(rejection) => rejection.into(),
                    Err(err) => err.into(),
                })
            }
        }
    }
}

/// Why a start was refused, from what [`Store::create`] found instead of recording it.
fn conflict_of(created: Created, run_id: RunId, options: &RunOptions) -> Rejection {
    match created {
        Created::KeyConflict { run_id: holder } => Rejection::IdempotencyConflict {
            key: options.idempotency_key.clone().unwrap_or_default(),
            run_id: holder,
        },
        _ => Rejection::RunIdTaken { run_id },
    }
}

/// A new run's record that the store refused for good (too large for it, not valid for it)
/// rejects the start, as nothing was written; any other store error is returned as it is.
fn refused<W: Workflow>(err: StoreError) -> Result<Rejection, StoreError> {
    match err {
        StoreError::Refused { message, .. } => Ok(Rejection::Record(RecordError::Refused {
            what: format!("the record of a new run of `{}`", W::META.name()),
            message,
        })),
        other => Err(other),
    }
}

/// The record of a new run of `W`, or why it cannot be recorded: an input or additional data
/// that could not be read back is refused here, before anything is written.
fn new_record<W: Workflow>(
    engine: &Engine,
    run_id: RunId,
    input: &W::Input,
    options: &RunOptions,
) -> Result<RunRecord, Rejection> {
    let max_bytes = engine.env().max_record_bytes;
    let workflow = W::META.name();
    let input = to_record(input, max_bytes, || {
        format!("the input of a run of `{workflow}`")
    })?;
    if let Some(data) = &options.additional_data {
        check_value(data, max_bytes, || {
            format!("the additional data of a run of `{workflow}`")
        })?;
    }
    let now = now_micros();
    Ok(RunRecord {
        run_id,
        workflow: W::META.name().to_owned(),
        version: W::VERSION,
        input,
        status: StoredStatus::Running,
        idempotency_key: options.idempotency_key.clone(),
        request_id: options.request_id.clone(),
        actor: options.actor.clone(),
        origin: options.origin,
        additional_data: options.additional_data.clone(),
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
        deadline_micros: options.deadline_micros,
    })
}
