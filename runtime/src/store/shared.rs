//! A shared store is a store: `Arc<S>` forwards every method to `S`.

use super::{
    BoxFuture, CancelRequest, Cancelling, Claim, Created, Delivery, Event, Found, Lease, Message,
    RunFilter, RunId, RunPage, RunRecord, RunUpdate, Store, StoreError, StoredRun, StoredStatus,
    Suspension, Wake, Wakeups,
};

/// A shared store is a store: keep an `Arc` to inspect what the engine records.
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        (**self).create(run, lease)
    }
    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).commit(run_id, fence, events, update)
    }
    fn commit_encoded<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &[Event],
        update: Option<&RunUpdate>,
    ) -> Option<BoxFuture<'a, Result<(), StoreError>>> {
        (**self).commit_encoded(run_id, fence, events, update)
    }
    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        (**self).claim(run_id, lease)
    }
    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<StoredRun>, StoreError>> {
        (**self).claim_next(lease, workflows, skip, limit)
    }
    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        (**self).renew(lease, runs)
    }
    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).release(run_id, fence)
    }
    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        (**self).load(run_id)
    }
    fn pending(&self) -> BoxFuture<'_, Result<Found<RunRecord>, StoreError>> {
        (**self).pending()
    }
    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<RunRecord>, StoreError>> {
        (**self).list(status, workflow, limit)
    }
    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        (**self).prune(ended_before_micros, limit)
    }
    fn suspend<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        suspension: &'a Suspension,
    ) -> BoxFuture<'a, Result<Option<Wake>, StoreError>> {
        (**self).suspend(run_id, fence, events, suspension)
    }
    fn deliver<'a>(
        &'a self,
        run_id: RunId,
        workflow: &'a str,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivery, StoreError>> {
        (**self).deliver(run_id, workflow, message)
    }
    fn message<'a>(
        &'a self,
        run_id: RunId,
        event: &'a str,
        index: u32,
    ) -> BoxFuture<'a, Result<Option<Message>, StoreError>> {
        (**self).message(run_id, event, index)
    }
    fn cancel<'a>(
        &'a self,
        run_id: RunId,
        request: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancelling, StoreError>> {
        (**self).cancel(run_id, request)
    }
    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<Vec<(RunId, CancelRequest)>, StoreError>> {
        (**self).cancel_requests(runs)
    }
    fn list_page<'a>(
        &'a self,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, Result<RunPage, StoreError>> {
        (**self).list_page(filter)
    }

    fn wakeups(&self) -> Wakeups {
        (**self).wakeups()
    }
    super::schedules::forward_schedules!();
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn super::StoreTransaction>, StoreError>> {
        (**self).begin()
    }
}
