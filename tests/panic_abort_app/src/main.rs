//! A hookflow application built with `panic = "abort"` (the workspace's `panic-abort`
//! profile): a three-step workflow on a store whose commits fail after the first step. The
//! run must end `Interrupted` and the process must go on and exit normally: a run that stops
//! returns from its future, it does not unwind. `tests/panic_abort.rs` builds and runs it.
//!
//! Prints `status: <status>` and `steps run: <n>`, then exits 0; a second run (with the store
//! healthy again) resumes the interrupted one to its end and prints `resumed: <status>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookflow::prelude::*;
use hookflow::store::{BoxFuture, Created, RunUpdate, StoredRun};
use hookflow::{
    Claim, Event, Lease, MemoryStore, RunId, RunRecord, Store, StoreError, StoredStatus,
};

static STEPS_RUN: AtomicUsize = AtomicUsize::new(0);

#[step]
async fn work(_ctx: &StepContext, n: u32) -> Result<u32, std::convert::Infallible> {
    STEPS_RUN.fetch_add(1, Ordering::SeqCst);
    Ok(n + 1)
}

#[workflow]
async fn three_steps(ctx: &WorkflowContext, n: u32) -> Result<u32, std::convert::Infallible> {
    let n = work(ctx, n).await?;
    let n = work(ctx, n).await?;
    work(ctx, n).await
}

/// A store that accepts `commits_left` more commits, then fails every commit (the database
/// went down).
struct Outage {
    inner: MemoryStore,
    commits_left: AtomicUsize,
}

impl Store for Outage {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        self.inner.create(run, lease)
    }
    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let left = self.commits_left.load(Ordering::SeqCst);
        if left == 0 {
            return Box::pin(async {
                Err(StoreError::Unavailable {
                    context: "commit".into(),
                    message: "the database is down".into(),
                })
            });
        }
        self.commits_left.store(left - 1, Ordering::SeqCst);
        self.inner.commit(run_id, fence, events, update)
    }
    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.inner.claim(run_id, lease)
    }
    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<hookflow::store::Found<StoredRun>, StoreError>> {
        self.inner.claim_next(lease, workflows, skip, limit)
    }
    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        self.inner.renew(lease, runs)
    }
    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.release(run_id, fence)
    }
    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        self.inner.load(run_id)
    }
    fn pending(
        &self,
    ) -> BoxFuture<'_, Result<hookflow::store::Found<hookflow::RunRecord>, StoreError>> {
        self.inner.pending()
    }
    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<hookflow::store::Found<hookflow::RunRecord>, StoreError>> {
        self.inner.list(status, workflow, limit)
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The first step's completion is committed, then the database goes down.
    let store = Arc::new(Outage {
        inner: MemoryStore::default(),
        commits_left: AtomicUsize::new(1),
    });
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<ThreeSteps>()
        .build();
    let outcome = engine.run::<ThreeSteps>(1).await;
    println!("status: {}", outcome.status());
    println!("steps run: {}", STEPS_RUN.load(Ordering::SeqCst));
    if let Some(error) = outcome.error() {
        println!("error: {error}");
    }

    // The database is back: the interrupted run resumes from its journal.
    store.commits_left.store(usize::MAX, Ordering::SeqCst);
    let report = engine.resume_pending().await.expect("the store answers");
    for (_, status) in &report.resumed {
        println!("resumed: {status}");
    }
    println!("steps run: {}", STEPS_RUN.load(Ordering::SeqCst));
}
