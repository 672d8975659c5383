//! A store that counts the write transactions a run asks of the store it wraps: the runs it
//! creates (`create`), the journal commits (`commit`, `suspend`) and the claims and lease
//! writes. Everything is passed to the wrapped store unchanged.
//!
//! Included by the bench programs with `#[path = "../benches/counting_store.rs"]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hookflow::store::{
    BoxFuture, Cancelling, Claim, Created, Delivery, Found, Lease, Message, RunFilter, RunPage,
    RunRecord, RunUpdate, Store, StoreError, StoreTransaction, StoredRun, Suspension, Wake,
    Wakeups,
};
use hookflow::{CancelRequest, Event, RunId};

/// The counts, shared with the bench program.
#[derive(Default)]
pub struct Counts {
    /// `Store::create` calls.
    pub creates: AtomicU64,
    /// `Store::commit` calls (with or without the run's end).
    pub commits: AtomicU64,
    /// `Store::commit` calls that carried the run's end.
    pub ends: AtomicU64,
    /// Other writes: claims, renewals, releases, suspensions.
    pub other_writes: AtomicU64,
}

impl Counts {
    /// Creates, commits and other writes: the write transactions asked of the store.
    #[allow(dead_code)] // not every program that counts reads it
    pub fn transactions(&self) -> u64 {
        self.creates.load(Ordering::Relaxed)
            + self.commits.load(Ordering::Relaxed)
            + self.other_writes.load(Ordering::Relaxed)
    }
}

/// A store, counting its writes in [`Counts`].
pub struct Counting {
    inner: Arc<dyn Store>,
    counts: Arc<Counts>,
}

impl Counting {
    /// `inner`, counting into `counts`.
    pub fn new(inner: Arc<dyn Store>, counts: Arc<Counts>) -> Self {
        Counting { inner, counts }
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Store for Counting {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        self.count(&self.counts.creates);
        self.inner.create(run, lease)
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.count(&self.counts.commits);
        if update.is_some() {
            self.count(&self.counts.ends);
        }
        self.inner.commit(run_id, fence, events, update)
    }

    fn commit_encoded<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &[Event],
        update: Option<&RunUpdate>,
    ) -> Option<BoxFuture<'a, Result<(), StoreError>>> {
        // Counted only if the store takes it: otherwise the engine calls `commit`.
        let commit = self.inner.commit_encoded(run_id, fence, events, update)?;
        self.count(&self.counts.commits);
        if update.is_some() {
            self.count(&self.counts.ends);
        }
        Some(commit)
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.count(&self.counts.other_writes);
        self.inner.claim(run_id, lease)
    }

    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<StoredRun>, StoreError>> {
        self.count(&self.counts.other_writes);
        self.inner.claim_next(lease, workflows, skip, limit)
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        self.count(&self.counts.other_writes);
        self.inner.renew(lease, runs)
    }

    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.count(&self.counts.other_writes);
        self.inner.release(run_id, fence)
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        self.inner.load(run_id)
    }

    fn pending(&self) -> BoxFuture<'_, Result<Found<RunRecord>, StoreError>> {
        self.inner.pending()
    }

    fn list<'a>(
        &'a self,
        status: Option<hookflow::store::StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<RunRecord>, StoreError>> {
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
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        suspension: &'a Suspension,
    ) -> BoxFuture<'a, Result<Option<Wake>, StoreError>> {
        self.count(&self.counts.other_writes);
        self.inner.suspend(run_id, fence, events, suspension)
    }

    fn deliver<'a>(
        &'a self,
        run_id: RunId,
        workflow: &'a str,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivery, StoreError>> {
        self.inner.deliver(run_id, workflow, message)
    }

    fn message<'a>(
        &'a self,
        run_id: RunId,
        event: &'a str,
        index: u32,
    ) -> BoxFuture<'a, Result<Option<Message>, StoreError>> {
        self.inner.message(run_id, event, index)
    }

    fn cancel<'a>(
        &'a self,
        run_id: RunId,
        request: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancelling, StoreError>> {
        self.inner.cancel(run_id, request)
    }

    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<Vec<(RunId, CancelRequest)>, StoreError>> {
        self.inner.cancel_requests(runs)
    }

    fn list_page<'a>(
        &'a self,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, Result<RunPage, StoreError>> {
        self.inner.list_page(filter)
    }

    fn wakeups(&self) -> Wakeups {
        self.inner.wakeups()
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, StoreError>> {
        self.inner.begin()
    }
}
