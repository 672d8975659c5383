//! A store whose heartbeats are lost: every call but `renew` goes to the store it wraps, and
//! `renew` renews nothing, as when a worker's heartbeats never reach the database.

use std::sync::Arc;

use hookflow::RunId;
use hookflow::StoredStatus;
use hookflow::store::{Claim, Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredRun};

/// A store whose heartbeats are lost.
pub(super) struct NoHeartbeat(pub(super) Arc<dyn Store>);

impl Store for NoHeartbeat {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> hookflow::store::BoxFuture<'a, Result<Created, StoreError>> {
        self.0.create(run, lease)
    }
    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [hookflow::Event],
        update: Option<RunUpdate>,
    ) -> hookflow::store::BoxFuture<'a, Result<(), StoreError>> {
        self.0.commit(run_id, fence, events, update)
    }
    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> hookflow::store::BoxFuture<'a, Result<Claim, StoreError>> {
        self.0.claim(run_id, lease)
    }
    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Found<StoredRun>, StoreError>> {
        self.0.claim_next(lease, workflows, skip, limit)
    }
    fn renew<'a>(
        &'a self,
        _lease: &'a Lease,
        _runs: &'a [RunId],
    ) -> hookflow::store::BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async { Ok(0) })
    }
    fn release(
        &self,
        run_id: RunId,
        fence: u64,
    ) -> hookflow::store::BoxFuture<'_, Result<(), StoreError>> {
        self.0.release(run_id, fence)
    }
    fn load(&self, run_id: RunId) -> hookflow::store::BoxFuture<'_, Result<StoredRun, StoreError>> {
        self.0.load(run_id)
    }
    fn pending(
        &self,
    ) -> hookflow::store::BoxFuture<
        '_,
        Result<hookflow::store::Found<hookflow::RunRecord>, StoreError>,
    > {
        self.0.pending()
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
        self.0.list(status, workflow, limit)
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> hookflow::store::BoxFuture<'_, Result<usize, StoreError>> {
        self.0.prune(ended_before_micros, limit)
    }
    fn suspend<'a>(
        &'a self,
        run_id: hookflow::RunId,
        fence: u64,
        events: &'a [hookflow::Event],
        suspension: &'a hookflow::store::Suspension,
    ) -> hookflow::store::BoxFuture<'a, Result<Option<hookflow::store::Wake>, StoreError>> {
        self.0.suspend(run_id, fence, events, suspension)
    }
    fn deliver<'a>(
        &'a self,
        run_id: hookflow::RunId,
        workflow: &'a str,
        message: &'a hookflow::store::Message,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Delivery, StoreError>> {
        self.0.deliver(run_id, workflow, message)
    }
    fn message<'a>(
        &'a self,
        run_id: hookflow::RunId,
        event: &'a str,
        index: u32,
    ) -> hookflow::store::BoxFuture<'a, Result<Option<hookflow::store::Message>, StoreError>> {
        self.0.message(run_id, event, index)
    }
    fn cancel<'a>(
        &'a self,
        run_id: hookflow::RunId,
        request: &'a hookflow::CancelRequest,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Cancelling, StoreError>> {
        self.0.cancel(run_id, request)
    }
    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [hookflow::RunId],
    ) -> hookflow::store::BoxFuture<
        'a,
        Result<Vec<(hookflow::RunId, hookflow::CancelRequest)>, StoreError>,
    > {
        self.0.cancel_requests(runs)
    }
}
