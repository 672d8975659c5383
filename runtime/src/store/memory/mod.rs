//! A store in memory: runs survive nothing, but idempotency keys and replay work within one
//! process, and tests can inspect what a durable engine records. How long it keeps the runs
//! that ended is its [`Retention`]: every run for the store's lifetime by default.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

mod retention;
mod schedules;
mod waiting;

pub use retention::Retention;

use super::{
    BoxFuture, Cancelling, Claim, Created, Delivery, Found, Lease, Message, RunRecord, RunUpdate,
    Store, StoreError, StoredRun, StoredStatus, Suspension, Wake, WakeupSignal, Wakeups,
};
use crate::journal::Event;
use crate::types::{CancelRequest, RunId, now_micros};

/// A [`Store`] in memory.
///
/// Finds a run by its idempotency key through an index (a start with a key costs the same
/// however many runs the store holds), and forgets ended runs as its [`Retention`] says
/// (by default, never).
#[derive(Debug, Default)]
pub struct MemoryStore {
    retention: Retention,
    inner: Mutex<Inner>,
    /// Wakes the workers waiting on this store ([`MemoryStore::claimable`]).
    wakeup: WakeupSignal,
    schedules: schedules::MemorySchedules,
}

#[derive(Debug, Default)]
struct Inner {
    runs: HashMap<RunId, (RunRecord, Vec<Event>)>,
    /// Idempotency key -> the run started with it.
    keys: HashMap<String, RunId>,
    /// The ended runs to forget, by when (microseconds since the Unix epoch).
    expiring: BTreeSet<(u64, RunId)>,
    /// The messages sent to each run, in the order they were kept.
    inbox: HashMap<RunId, Vec<Message>>,
}

impl MemoryStore {
    /// An empty store that keeps every run (see [`MemoryStore::retention`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The store, keeping ended runs only as long as `retention` says.
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How many runs the store holds (running, parked, and ended ones not forgotten yet).
    pub fn len(&self) -> usize {
        self.lock(now_micros()).runs.len()
    }

    /// Whether the store holds no run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes the workers waiting on this store ([`Store::wakeups`]): a run became claimable.
    /// Every change of the store that makes a run claimable calls it, after the change is
    /// made (creating a free run, releasing one).
    pub(crate) fn claimable(&self) {
        self.wakeup.claimable();
    }

    /// The store's state, without the runs whose time was up at `now`.
    fn lock(&self, now: u64) -> std::sync::MutexGuard<'_, Inner> {
        let mut inner = crate::types::lock(&self.inner);
        inner.expire(now);
        inner
    }
}

impl Inner {
    /// Forgets the ended runs whose time is up at `now`.
    fn expire(&mut self, now: u64) {
        while let Some(&(at, run_id)) = self.expiring.first() {
            if at > now {
                break;
            }
            self.expiring.pop_first();
            self.forget(run_id);
        }
    }

    /// Removes a run and its idempotency key.
    fn forget(&mut self, run_id: RunId) {
        self.inbox.remove(&run_id);
        if let Some((record, _)) = self.runs.remove(&run_id) {
            if let Some(key) = record.idempotency_key {
                if self.keys.get(&key) == Some(&run_id) {
                    self.keys.remove(&key);
                }
            }
        }
    }

    /// A run just ended at `now`: forgets it at once, later, or never, as `retention` says.
    fn ended(&mut self, run_id: RunId, keyed: bool, retention: Retention, now: u64) {
        match retention.of(keyed) {
            None => {}
            Some(Duration::ZERO) => self.forget(run_id),
            Some(time) => {
                let micros = u64::try_from(time.as_micros()).unwrap_or(u64::MAX);
                self.expiring.insert((now.saturating_add(micros), run_id));
            }
        }
    }
}

impl Store for MemoryStore {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move {
            let mut inner = self.lock(now_micros());
            if let Some(key) = &run.idempotency_key {
                let holder = inner.keys.get(key).and_then(|id| inner.runs.get(id));
                if let Some((existing, _)) = holder {
                    if existing.same_request(run) {
                        return Ok(Created::Existing(Box::new(existing.clone())));
                    }
                    return Ok(Created::KeyConflict {
                        run_id: existing.run_id,
                    });
                }
            }
            if inner.runs.contains_key(&run.run_id) {
                return Ok(Created::RunIdTaken);
            }
            if let Some(key) = &run.idempotency_key {
                inner.keys.insert(key.clone(), run.run_id);
            }
            let mut record = run.clone();
            match lease {
                Some(lease) => take(&mut record, lease, 1),
                None => {
                    record.owner = None;
                    record.fence = 0;
                    record.lease_until_micros = None;
                }
            }
            inner.runs.insert(run.run_id, (record, Vec::new()));
            drop(inner);
            if lease.is_none() {
                self.claimable();
            }
            Ok(Created::New)
        })
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            let mut inner = self.lock(now);
            let (record, journal) = inner
                .runs
                .get_mut(&run_id)
                .ok_or(StoreError::NotFound(run_id))?;
            check_fence(record, fence)?;
            journal.extend_from_slice(events);
            record.updated_at_micros = now;
            let Some(update) = update else {
                return Ok(());
            };
            if update.status != StoredStatus::Running {
                record.owner = None;
                record.lease_until_micros = None;
            }
            let ended = update.status.is_finished() && !record.status.is_finished();
            // A retried run runs again: it is no longer to be forgotten.
            let reopened = record.status.is_finished() && !update.status.is_finished();
            record.status = update.status;
            record.output = update.output;
            record.error = update.error;
            if ended {
                let keyed = record.idempotency_key.is_some();
                inner.ended(run_id, keyed, self.retention, now);
            }
            if reopened {
                inner.expiring.retain(|(_, id)| *id != run_id);
            }
            Ok(())
        })
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            let mut inner = self.lock(now);
            let runs = &mut inner.runs;
            let (record, journal) = runs.get_mut(&run_id).ok_or(StoreError::NotFound(run_id))?;
            if record.status.is_finished() {
                return Ok(Claim::Finished(Box::new(record.clone()), journal.clone()));
            }
            if let (Some(owner), Some(until)) = (&record.owner, record.lease_until_micros) {
                if *owner != lease.owner && until > now {
                    return Ok(Claim::Held {
                        owner: owner.clone(),
                        until_micros: until,
                    });
                }
            }
            let fence = record.fence + 1;
            take(record, lease, fence);
            Ok(Claim::Acquired(Box::new(record.clone()), journal.clone()))
        })
    }

    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<StoredRun>, StoreError>> {
        // Runs in memory are never unreadable: nothing to quarantine.
        Box::pin(async move {
            let now = now_micros();
            let mut inner = self.lock(now);
            let runs = &mut inner.runs;
            let mut free: Vec<&mut (RunRecord, Vec<Event>)> = runs
                .values_mut()
                .filter(|(r, _)| {
                    waiting::claimable(r, now)
                        && (r.owner.is_none() || r.lease_until_micros.is_none_or(|u| u <= now))
                        && workflows
                            .iter()
                            .any(|(w, v)| *w == r.workflow && *v == r.version)
                        && !skip.contains(&r.run_id)
                })
                .collect();
            free.sort_by_key(|(r, _)| (r.created_at_micros, r.run_id));
            Ok(Found::readable(
                free.into_iter()
                    .take(limit)
                    .map(|(record, journal)| {
                        let fence = record.fence + 1;
                        take(record, lease, fence);
                        (record.clone(), journal.clone())
                    })
                    .collect(),
            ))
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            let until = now.saturating_add(lease.micros());
            let mut inner = self.lock(now);
            let all = &mut inner.runs;
            let mut renewed = 0;
            for run_id in runs {
                if let Some((record, _)) = all.get_mut(run_id) {
                    if record.owner.as_deref() == Some(&lease.owner) {
                        record.lease_until_micros = Some(until);
                        renewed += 1;
                    }
                }
            }
            Ok(renewed)
        })
    }

    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut inner = self.lock(now_micros());
            let runs = &mut inner.runs;
            let (record, _) = runs.get_mut(&run_id).ok_or(StoreError::NotFound(run_id))?;
            check_fence(record, fence)?;
            record.owner = None;
            record.lease_until_micros = None;
            drop(inner);
            self.claimable();
            Ok(())
        })
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        Box::pin(async move {
            self.lock(now_micros())
                .runs
                .get(&run_id)
                .cloned()
                .ok_or(StoreError::NotFound(run_id))
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Found<RunRecord>, StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            let mut pending: Vec<RunRecord> = self
                .lock(now)
                .runs
                .values()
                .filter(|(r, _)| waiting::claimable(r, now))
                .map(|(r, _)| r.clone())
                .collect();
            pending.sort_by_key(|r| (r.created_at_micros, r.run_id));
            Ok(Found::readable(pending))
        })
    }

    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<RunRecord>, StoreError>> {
        Box::pin(async move {
            let mut runs: Vec<RunRecord> = self
                .lock(now_micros())
                .runs
                .values()
                .map(|(r, _)| r)
                .filter(|r| status.is_none_or(|s| r.status == s))
                .filter(|r| workflow.is_none_or(|w| r.workflow == w))
                .cloned()
                .collect();
            runs.sort_by_key(|r| std::cmp::Reverse((r.created_at_micros, r.run_id)));
            runs.truncate(limit);
            Ok(Found::readable(runs))
        })
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let mut inner = self.lock(now_micros());
            let mut ended: Vec<(u64, RunId)> = inner
                .runs
                .values()
                .map(|(r, _)| r)
                .filter(|r| r.status.is_finished() && r.updated_at_micros < ended_before_micros)
                .map(|r| (r.updated_at_micros, r.run_id))
                .collect();
            ended.sort_unstable();
            ended.truncate(limit);
            for &(_, run_id) in &ended {
                inner.forget(run_id);
            }
            let Inner { runs, expiring, .. } = &mut *inner;
            expiring.retain(|(_, run_id)| runs.contains_key(run_id));
            Ok(ended.len())
        })
    }

    fn suspend<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        suspension: &'a Suspension,
    ) -> BoxFuture<'a, Result<Option<Wake>, StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            waiting::suspend(&mut self.lock(now), run_id, fence, events, suspension, now)
        })
    }

    fn deliver<'a>(
        &'a self,
        run_id: RunId,
        workflow: &'a str,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivery, StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            let delivery = waiting::deliver(&mut self.lock(now), run_id, workflow, message, now);
            if delivery == (Delivery::Accepted { woke: true }) {
                self.claimable();
            }
            Ok(delivery)
        })
    }

    fn message<'a>(
        &'a self,
        run_id: RunId,
        event: &'a str,
        index: u32,
    ) -> BoxFuture<'a, Result<Option<Message>, StoreError>> {
        Box::pin(async move {
            let inner = self.lock(now_micros());
            Ok(waiting::message(&inner, run_id, event, index))
        })
    }

    fn cancel<'a>(
        &'a self,
        run_id: RunId,
        request: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancelling, StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            let cancelling = waiting::cancel(&mut self.lock(now), run_id, request, now);
            if cancelling == (Cancelling::Requested { woke: true }) {
                self.claimable();
            }
            Ok(cancelling)
        })
    }

    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<Vec<(RunId, CancelRequest)>, StoreError>> {
        Box::pin(async move {
            let inner = self.lock(now_micros());
            Ok(runs
                .iter()
                .filter_map(|id| {
                    let (record, _) = inner.runs.get(id)?;
                    Some((*id, record.cancel.clone()?))
                })
                .collect())
        })
    }

    fn list_page<'a>(
        &'a self,
        filter: &'a super::RunFilter,
    ) -> BoxFuture<'a, Result<super::RunPage, StoreError>> {
        Box::pin(async move {
            let inner = self.lock(now_micros());
            let all = inner.runs.values().map(|(r, _)| r);
            Ok(super::RunPage::select(
                all.filter(|r| filter.matches(r)).cloned(),
                filter,
            ))
        })
    }

    fn wakeups(&self) -> Wakeups {
        self.wakeup.subscribe()
    }
    crate::store::schedules::forward_schedules!();
}

/// Gives `record`'s lease to `lease.owner`, at generation `fence`: a waiting run that is
/// claimed runs again.
fn take(record: &mut RunRecord, lease: &Lease, fence: u64) {
    waiting::resume(record);
    record.owner = Some(lease.owner.clone());
    record.fence = fence;
    record.lease_until_micros = Some(now_micros().saturating_add(lease.micros()));
}

fn check_fence(record: &RunRecord, fence: u64) -> Result<(), StoreError> {
    if record.fence == fence {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            run_id: record.run_id,
            fence,
            current: record.fence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Origin, RunId, StoredStatus};

    fn record(key: &str) -> RunRecord {
        RunRecord {
            run_id: RunId::generate(),
            workflow: "pay".into(),
            version: 1,
            input: serde_json::json!(1),
            status: StoredStatus::Running,
            idempotency_key: Some(key.to_owned()),
            request_id: None,
            actor: None,
            origin: Origin::Local,
            additional_data: None,
            output: None,
            error: None,
            created_at_micros: 0,
            updated_at_micros: 0,
            owner: None,
            fence: 0,
            lease_until_micros: None,
            wake_at_micros: None,
            waiting_for: None,
            cancel: None,
            deadline_micros: None,
        }
    }

    /// A start with a known key finds its run through the index (no scan of the runs), and
    /// a forgotten run takes its key out of the index.
    #[tokio::test]
    async fn keys_lead_to_their_runs_through_the_index_and_leave_it_with_them() {
        let store = MemoryStore::new();
        let first = record("order-1");
        assert_eq!(store.create(&first, None).await.unwrap(), Created::New);
        store.create(&record("order-2"), None).await.unwrap();
        {
            let inner = crate::types::lock(&store.inner);
            assert_eq!(inner.keys.len(), 2);
            assert_eq!(inner.keys.get("order-1"), Some(&first.run_id));
        }
        // Found by the index alone: with the run's own record taken out of the key's way
        // (its stored key changed), the index still answers.
        crate::types::lock(&store.inner)
            .runs
            .get_mut(&first.run_id)
            .unwrap()
            .0
            .idempotency_key = None;
        match store.create(&record("order-1"), None).await.unwrap() {
            Created::Existing(existing) => assert_eq!(existing.run_id, first.run_id),
            other => panic!("a known key with the same input: {other:?}"),
        }
        crate::types::lock(&store.inner)
            .runs
            .get_mut(&first.run_id)
            .unwrap()
            .0
            .idempotency_key = Some("order-1".into());
        // Forgotten, it frees its key.
        crate::types::lock(&store.inner).forget(first.run_id);
        let inner = crate::types::lock(&store.inner);
        assert_eq!(inner.keys.len(), 1);
        assert!(!inner.keys.contains_key("order-1"));
    }
}
