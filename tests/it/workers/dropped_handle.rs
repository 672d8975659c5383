//! A dropped `WorkerHandle` leaves its worker polling in the background, at its pace.

use super::*;

/// A store that counts the worker's attempts to claim runs.
struct CountingStore {
    inner: hookflow::MemoryStore,
    claims: std::sync::atomic::AtomicUsize,
}

impl Store for CountingStore {
    fn create<'a>(
        &'a self,
        run: &'a hookflow::RunRecord,
        lease: Option<&'a hookflow::Lease>,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Created, StoreError>> {
        self.inner.create(run, lease)
    }
    fn commit<'a>(
        &'a self,
        run_id: hookflow::RunId,
        fence: u64,
        events: &'a [hookflow::Event],
        update: Option<hookflow::store::RunUpdate>,
    ) -> hookflow::store::BoxFuture<'a, Result<(), StoreError>> {
        self.inner.commit(run_id, fence, events, update)
    }
    fn claim<'a>(
        &'a self,
        run_id: hookflow::RunId,
        lease: &'a hookflow::Lease,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::Claim, StoreError>> {
        self.inner.claim(run_id, lease)
    }
    fn claim_next<'a>(
        &'a self,
        lease: &'a hookflow::Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [hookflow::RunId],
        limit: usize,
    ) -> hookflow::store::BoxFuture<
        'a,
        Result<hookflow::store::Found<hookflow::StoredRun>, StoreError>,
    > {
        self.claims
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.claim_next(lease, workflows, skip, limit)
    }
    fn renew<'a>(
        &'a self,
        lease: &'a hookflow::Lease,
        runs: &'a [hookflow::RunId],
    ) -> hookflow::store::BoxFuture<'a, Result<usize, StoreError>> {
        self.inner.renew(lease, runs)
    }
    fn release(
        &self,
        run_id: hookflow::RunId,
        fence: u64,
    ) -> hookflow::store::BoxFuture<'_, Result<(), StoreError>> {
        self.inner.release(run_id, fence)
    }
    fn load(
        &self,
        run_id: hookflow::RunId,
    ) -> hookflow::store::BoxFuture<'_, Result<hookflow::StoredRun, StoreError>> {
        self.inner.load(run_id)
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

#[step]
async fn pong(_ctx: &StepContext, n: u64) -> Result<u64, OrderError> {
    Ok(n + 1)
}

#[workflow]
async fn ping(ctx: &WorkflowContext, n: u64) -> Result<u64, OrderError> {
    pong(ctx, n).await
}

/// A worker whose handle is dropped goes on in the background, polling at its pace: it
/// neither stops nor spins on the closed channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_handle_is_dropped_runs_on_at_its_pace() {
    let store = Arc::new(CountingStore {
        inner: hookflow::MemoryStore::new(),
        claims: std::sync::atomic::AtomicUsize::new(0),
    });
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Ping>()
        .build();
    let handle = Worker::new(&engine)
        .poll_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    drop(handle);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let claims = store.claims.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (2..=20).contains(&claims),
        "{claims} attempts to claim in 500 ms, polling every 50 ms"
    );
    let run_id = engine.enqueue::<Ping>(41).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (record, _) = store.load(run_id).await.unwrap();
        if record.status == StoredStatus::Completed {
            assert_eq!(record.output, Some(serde_json::json!(42)));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not taken: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
