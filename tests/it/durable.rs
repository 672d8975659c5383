//! Durable runs on a store: each step committed before the next, resume by replay, a
//! compensating run resumed where it stopped, idempotent starts, replay errors that park a
//! run, corrupt rows, and a store that fails mid-run. A "crash" is the run's future dropped
//! mid-way: what the store holds is then exactly what a killed process leaves.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::store::{
    Claim, Created, Lease, MemoryStore, RunRecord, RunUpdate, Store, StoreError, StoredRun,
    StoredStatus,
};
use hookflow::{Event, EventKind, ReplayError, RunId};
use serde::{Deserialize, Serialize};

/// The outside world the steps act on: counts every call, keyed by idempotency key.
#[derive(Default)]
struct Bank {
    calls: Mutex<Vec<String>>,
    /// Steps that hang (to be "killed" there).
    hang_in: Mutex<Option<String>>,
    fail_credit: AtomicBool,
    /// Told when a call hangs.
    hung: tokio::sync::Notify,
}

impl Bank {
    async fn call(&self, what: String) {
        let hang = self.hang_in.lock().unwrap().clone();
        self.calls.lock().unwrap().push(what.clone());
        if hang.is_some_and(|h| what.starts_with(&h)) {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[derive(Debug, thiserror::Error)]
enum TransferError {
    #[error("credit refused")]
    Refused,
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TransferRequest {
    from: String,
    to: String,
    cents: u64,
}

#[step(compensate = undo_debit)]
async fn debit(
    ctx: &StepContext,
    t: TransferRequest,
) -> Result<StepResponse<String, TransferRequest>, TransferError> {
    ctx.service::<Arc<Bank>>()?
        .call(format!("debit {} {}", t.from, ctx.idempotency_key()))
        .await;
    Ok(StepResponse::new(format!("debited {}", t.from), t))
}

async fn undo_debit(ctx: &StepContext, t: TransferRequest) -> Result<(), TransferError> {
    ctx.service::<Arc<Bank>>()?
        .call(format!("undo-debit {} {}", t.from, ctx.idempotency_key()))
        .await;
    Ok(())
}

#[step(compensate = undo_hold)]
async fn hold(
    ctx: &StepContext,
    t: TransferRequest,
) -> Result<StepResponse<(), u64>, TransferError> {
    ctx.service::<Arc<Bank>>()?
        .call(format!("hold {} {}", t.cents, ctx.idempotency_key()))
        .await;
    Ok(StepResponse::new((), t.cents))
}

async fn undo_hold(ctx: &StepContext, cents: u64) -> Result<(), TransferError> {
    ctx.service::<Arc<Bank>>()?
        .call(format!("undo-hold {cents} {}", ctx.idempotency_key()))
        .await;
    Ok(())
}

#[step]
async fn credit(ctx: &StepContext, t: TransferRequest) -> Result<String, TransferError> {
    let bank = ctx.service::<Arc<Bank>>()?;
    bank.call(format!("credit {} {}", t.to, ctx.idempotency_key()))
        .await;
    if bank.fail_credit.load(Ordering::SeqCst) {
        return Err(TransferError::Refused);
    }
    Ok(format!("credited {}", t.to))
}

#[workflow(name = "transfer")]
async fn transfer(ctx: &WorkflowContext, t: TransferRequest) -> Result<Vec<String>, TransferError> {
    let a = debit(ctx, t.clone()).await?;
    hold(ctx, t.clone()).await?;
    let b = credit(ctx, t).await?;
    Ok(vec![a, b])
}

/// The same workflow name with its steps in another order: a changed workflow.
#[workflow(name = "transfer")]
async fn transfer_reordered(
    ctx: &WorkflowContext,
    t: TransferRequest,
) -> Result<Vec<String>, TransferError> {
    hold(ctx, t.clone()).await?;
    let a = debit(ctx, t.clone()).await?;
    let b = credit(ctx, t).await?;
    Ok(vec![a, b])
}

fn transfer_input() -> TransferRequest {
    TransferRequest {
        from: "alice".into(),
        to: "bob".into(),
        cents: 500,
    }
}

on_every_store!(
    #[tokio::test(start_paused = true)]
    each_step_is_committed_and_a_finished_run_is_recorded,
    a_crashed_run_resumes_without_running_completed_steps_again,
    a_run_that_crashed_while_compensating_goes_on_compensating,
    an_idempotency_key_returns_the_recorded_outcome,
    an_idempotent_start_of_an_interrupted_run_resumes_it,
    a_changed_workflow_parks_the_run_with_a_replay_error,
    a_run_of_an_unknown_workflow_or_version_is_reported_not_dropped,
);

fn engine(store: Arc<dyn Store>, bank: &Arc<Bank>) -> Engine {
    // The same worker id for every engine of a test: each stands for the same application
    // restarted, which takes its runs back at once.
    Engine::builder()
        .worker_id("app")
        .store(store)
        .service(Arc::clone(bank))
        .workflow::<Transfer>()
        .build()
}

/// Runs a transfer until `step` is reached, then drops it there, as a killed process would.
async fn crash_in(engine: &Engine, bank: &Bank, step: &str, options: RunOptions) {
    *bank.hang_in.lock().unwrap() = Some(step.to_owned());
    let run = engine.run_with::<Transfer>(transfer_input(), options);
    tokio::select! {
        outcome = run => panic!("the run should hang in {step}, it ended: {:?}", outcome.status()),
        () = bank.hung.notified() => {}
    }
    *bank.hang_in.lock().unwrap() = None;
}

async fn each_step_is_committed_and_a_finished_run_is_recorded(store: Arc<dyn Store>) {
    let bank = Arc::new(Bank::default());
    let outcome = engine(store.clone(), &bank)
        .run::<Transfer>(transfer_input())
        .await;
    assert!(outcome.is_completed());
    let (record, events) = store.load(outcome.run_id()).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    assert_eq!(record.workflow, "transfer");
    assert_eq!(record.version, 1);
    assert_eq!(
        record.output,
        Some(serde_json::json!(["debited alice", "credited bob"]))
    );
    assert_eq!(
        &events,
        outcome.journal().events(),
        "the store holds the whole journal"
    );
}

async fn a_crashed_run_resumes_without_running_completed_steps_again(store: Arc<dyn Store>) {
    let bank = Arc::new(Bank::default());
    crash_in(
        &engine(store.clone(), &bank),
        &bank,
        "credit",
        RunOptions::new(),
    )
    .await;
    let pending = store.pending().await.unwrap().runs;
    assert_eq!(pending.len(), 1);
    let run_id = pending[0].run_id;

    // A new engine (a new process) resumes it.
    let report = engine(store.clone(), &bank).resume_pending().await.unwrap();
    assert_eq!(report.resumed, [(run_id, RunStatus::Completed)]);
    let calls = bank.calls();
    // debit and hold ran once; credit, in flight at the crash, ran again with the same key.
    assert_eq!(
        calls,
        [
            format!("debit alice {run_id}:0:debit"),
            format!("hold 500 {run_id}:1:hold"),
            format!("credit bob {run_id}:2:credit"),
            format!("credit bob {run_id}:2:credit"),
        ]
    );
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    assert_eq!(
        record.output,
        Some(serde_json::json!(["debited alice", "credited bob"]))
    );
    assert!(events.iter().any(|e| e.kind == EventKind::RunResumed));
    assert!(store.pending().await.unwrap().runs.is_empty());
}

async fn a_run_that_crashed_while_compensating_goes_on_compensating(store: Arc<dyn Store>) {
    let bank = Arc::new(Bank::default());
    bank.fail_credit.store(true, Ordering::SeqCst);
    // credit fails; undo-hold completes; the crash comes in undo-debit.
    crash_in(
        &engine(store.clone(), &bank),
        &bank,
        "undo-debit",
        RunOptions::new(),
    )
    .await;
    let run_id = store.pending().await.unwrap().runs[0].run_id;

    let report = engine(store.clone(), &bank).resume_pending().await.unwrap();
    assert_eq!(report.resumed, [(run_id, RunStatus::Compensated)]);
    assert_eq!(
        bank.calls(),
        [
            format!("debit alice {run_id}:0:debit"),
            format!("hold 500 {run_id}:1:hold"),
            format!("credit bob {run_id}:2:credit"),
            format!("undo-hold 500 {run_id}:1:hold:undo"),
            format!("undo-debit alice {run_id}:0:debit:undo"),
            // The resumed run replays its body up to the failure, then compensates what is
            // left: undo-debit again (it was in flight), never undo-hold again, never credit.
            format!("undo-debit alice {run_id}:0:debit:undo"),
        ]
    );
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Compensated);
    assert_eq!(record.error.as_deref(), Some("credit refused"));
    hookflow::testing::check_saga(&hookflow::Journal::from_events(events)).unwrap();
}

async fn an_idempotency_key_returns_the_recorded_outcome(store: Arc<dyn Store>) {
    let bank = Arc::new(Bank::default());
    let engine = engine(store.clone(), &bank);
    let options = || RunOptions::new().idempotency_key("transfer-42");
    let first = engine
        .run_with::<Transfer>(transfer_input(), options())
        .await;
    let second = engine
        .run_with::<Transfer>(transfer_input(), options())
        .await;
    assert_eq!(second.run_id(), first.run_id());
    assert_eq!(second.output(), first.output());
    assert_eq!(bank.calls().len(), 3, "the second start ran nothing");

    // A failed run's recorded error comes back as its message.
    bank.fail_credit.store(true, Ordering::SeqCst);
    let key = || RunOptions::new().idempotency_key("transfer-43");
    let failed = engine.run_with::<Transfer>(transfer_input(), key()).await;
    let again = engine.run_with::<Transfer>(transfer_input(), key()).await;
    assert_eq!(failed.status(), RunStatus::Compensated);
    assert_eq!(again.status(), RunStatus::Compensated);
    assert!(
        matches!(again.error(), Some(RunError::Recorded { message }) if message == "credit refused")
    );
}

async fn an_idempotent_start_of_an_interrupted_run_resumes_it(store: Arc<dyn Store>) {
    let bank = Arc::new(Bank::default());
    let options = || RunOptions::new().idempotency_key("transfer-44");
    crash_in(&engine(store.clone(), &bank), &bank, "hold", options()).await;
    let outcome = engine(store.clone(), &bank)
        .run_with::<Transfer>(transfer_input(), options())
        .await;
    assert!(outcome.is_completed());
    let debits = bank
        .calls()
        .iter()
        .filter(|c| c.starts_with("debit"))
        .count();
    assert_eq!(debits, 1);
}

async fn a_changed_workflow_parks_the_run_with_a_replay_error(store: Arc<dyn Store>) {
    let bank = Arc::new(Bank::default());
    crash_in(
        &engine(store.clone(), &bank),
        &bank,
        "credit",
        RunOptions::new(),
    )
    .await;
    let run_id = store.pending().await.unwrap().runs[0].run_id;

    let changed = Engine::builder()
        .worker_id("app")
        .store(store.clone())
        .service(Arc::clone(&bank))
        .workflow::<TransferReordered>()
        .build();
    let report = changed.resume_pending().await.unwrap();
    assert_eq!(report.resumed, [(run_id, RunStatus::Parked)]);
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Parked);
    let error = ReplayError::Mismatch {
        position: 0,
        recorded: "debit".into(),
        called: "hold".into(),
    };
    assert_eq!(record.error, Some(error.to_string()));
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::RunParked { .. }))
    );
    // Nothing ran, nothing was compensated: the journal is intact for a fix.
    assert_eq!(bank.calls().len(), 3);
    // A parked run is not resumed automatically...
    assert!(changed.resume_pending().await.unwrap().resumed.is_empty());
    // ...but after the fix (the original code), it can be.
    let fixed = engine(store.clone(), &bank);
    assert_eq!(fixed.resume(run_id).await.unwrap(), RunStatus::Completed);
}

async fn a_run_of_an_unknown_workflow_or_version_is_reported_not_dropped(store: Arc<dyn Store>) {
    let bank = Arc::new(Bank::default());
    crash_in(
        &engine(store.clone(), &bank),
        &bank,
        "credit",
        RunOptions::new(),
    )
    .await;
    let run_id = store.pending().await.unwrap().runs[0].run_id;
    let stranger = Engine::builder().store(store.clone()).build();
    let report = stranger.resume_pending().await.unwrap();
    assert_eq!(report.unknown, [(run_id, "transfer".to_owned(), 1)]);
    assert_eq!(store.pending().await.unwrap().runs.len(), 1, "still there");
    let err = stranger.resume(run_id).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown workflow `transfer` version 1: register it with `Engine::builder().workflow::<W>()`"
    );
}

/// A store whose journals can be tampered with, and which can fail its commits.
#[derive(Default)]
struct Faulty {
    inner: MemoryStore,
    commits_before_failure: Mutex<Option<usize>>,
    corrupt_outputs: AtomicBool,
    commits: AtomicUsize,
}

impl Faulty {
    fn tamper(&self, events: &mut [Event]) {
        if self.corrupt_outputs.load(Ordering::SeqCst) {
            for event in events {
                if let EventKind::StepCompleted { output, .. } = &mut event.kind {
                    *output = Some(Box::new(serde_json::json!({ "not": "a string" }).into()));
                }
            }
        }
    }
}

impl Store for Faulty {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> hookflow::store::BoxFuture<'a, Result<Created, StoreError>> {
        self.inner.create(run, lease)
    }
    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> hookflow::store::BoxFuture<'a, Result<(), StoreError>> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        if self
            .commits_before_failure
            .lock()
            .unwrap()
            .is_some_and(|limit| n >= limit)
        {
            return Box::pin(async {
                Err(StoreError::Unavailable {
                    context: "commit".into(),
                    message: "disk full".into(),
                })
            });
        }
        self.inner.commit(run_id, fence, events, update)
    }
    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> hookflow::store::BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(async move {
            Ok(match self.inner.claim(run_id, lease).await? {
                Claim::Acquired(record, mut events) => {
                    self.tamper(&mut events);
                    Claim::Acquired(record, events)
                }
                other => other,
            })
        })
    }
    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Found<StoredRun>, StoreError>> {
        self.inner.claim_next(lease, workflows, skip, limit)
    }
    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> hookflow::store::BoxFuture<'a, Result<usize, StoreError>> {
        self.inner.renew(lease, runs)
    }
    fn release(
        &self,
        run_id: RunId,
        fence: u64,
    ) -> hookflow::store::BoxFuture<'_, Result<(), StoreError>> {
        self.inner.release(run_id, fence)
    }
    fn load(
        &self,
        run_id: RunId,
    ) -> hookflow::store::BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        Box::pin(async move {
            let (record, mut events) = self.inner.load(run_id).await?;
            self.tamper(&mut events);
            Ok((record, events))
        })
    }
    fn pending(
        &self,
    ) -> hookflow::store::BoxFuture<
        '_,
        Result<hookflow::store::Found<hookflow::RunRecord>, StoreError>,
    > {
        self.inner.pending()
    }
    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> hookflow::store::BoxFuture<
        'a,
        Result<hookflow::store::Found<hookflow::RunRecord>, StoreError>,
    > {
        self.inner.list(status, workflow, limit)
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> hookflow::store::BoxFuture<'_, Result<usize, StoreError>> {
        self.inner.prune(ended_before_micros, limit)
    }
    fn suspend<'a>(
        &'a self,
        run_id: hookflow::RunId,
        fence: u64,
        events: &'a [hookflow::Event],
        suspension: &'a hookflow::store::Suspension,
    ) -> hookflow::store::BoxFuture<'a, Result<Option<hookflow::store::Wake>, StoreError>> {
        self.inner.suspend(run_id, fence, events, suspension)
    }
    fn deliver<'a>(
        &'a self,
        run_id: hookflow::RunId,
        workflow: &'a str,
        message: &'a hookflow::store::Message,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Delivery, StoreError>> {
        self.inner.deliver(run_id, workflow, message)
    }
    fn message<'a>(
        &'a self,
        run_id: hookflow::RunId,
        event: &'a str,
        index: u32,
    ) -> hookflow::store::BoxFuture<'a, Result<Option<hookflow::store::Message>, StoreError>> {
        self.inner.message(run_id, event, index)
    }
    fn cancel<'a>(
        &'a self,
        run_id: hookflow::RunId,
        request: &'a hookflow::CancelRequest,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Cancelling, StoreError>> {
        self.inner.cancel(run_id, request)
    }
    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [hookflow::RunId],
    ) -> hookflow::store::BoxFuture<
        'a,
        Result<Vec<(hookflow::RunId, hookflow::CancelRequest)>, StoreError>,
    > {
        self.inner.cancel_requests(runs)
    }
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_journal_row_parks_the_run() {
    let store = Arc::new(Faulty::default());
    let bank = Arc::new(Bank::default());
    crash_in(
        &engine(store.clone(), &bank),
        &bank,
        "credit",
        RunOptions::new(),
    )
    .await;
    let run_id = store.pending().await.unwrap().runs[0].run_id;
    store.corrupt_outputs.store(true, Ordering::SeqCst);
    let report = engine(store.clone(), &bank).resume_pending().await.unwrap();
    assert_eq!(report.resumed, [(run_id, RunStatus::Parked)]);
    let (record, _) = store.inner.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Parked);
    let error = record.error.unwrap();
    assert!(
        error.starts_with("the recorded data of step `debit` #0 does not match its type"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_store_failing_mid_run_interrupts_it_and_the_next_resume_finishes_it() {
    let store = Arc::new(Faulty::default());
    let bank = Arc::new(Bank::default());
    // The creation and the first step's commit succeed; the second step's commit fails.
    *store.commits_before_failure.lock().unwrap() = Some(1);
    let outcome = engine(store.clone(), &bank)
        .run::<Transfer>(transfer_input())
        .await;
    assert_eq!(outcome.status(), RunStatus::Interrupted);
    match outcome.error() {
        Some(RunError::Store(StoreError::Unavailable { message, .. })) => {
            assert_eq!(message, "disk full")
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    // Nothing was compensated: the run is not lost, it is still running in the store.
    assert_eq!(bank.calls().len(), 2);
    let (record, events) = store.inner.load(outcome.run_id()).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::StepCompleted { step, .. } if step == "debit"))
    );

    *store.commits_before_failure.lock().unwrap() = None;
    let report = engine(store.clone(), &bank).resume_pending().await.unwrap();
    assert_eq!(report.resumed, [(outcome.run_id(), RunStatus::Completed)]);
    // debit once; hold twice (its completion was never committed); credit once.
    let calls = bank.calls();
    assert_eq!(calls.iter().filter(|c| c.starts_with("debit")).count(), 1);
    assert_eq!(calls.iter().filter(|c| c.starts_with("hold")).count(), 2);
    assert_eq!(calls.iter().filter(|c| c.starts_with("credit")).count(), 1);
}
