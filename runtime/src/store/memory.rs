//! A store in memory: runs survive nothing, but idempotency keys and replay work within one
//! process, and tests can inspect what a durable engine records.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    BoxFuture, Claim, Created, Lease, RunRecord, RunUpdate, Store, StoreError, StoredRun,
    StoredStatus,
};
use crate::journal::Event;
use crate::types::{RunId, now_micros};

/// A [`Store`] in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    runs: Mutex<HashMap<RunId, (RunRecord, Vec<Event>)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move {
            let mut runs = crate::types::lock(&self.runs);
            if let Some(key) = &run.idempotency_key {
                if let Some((existing, _)) = runs
                    .values()
                    .find(|(r, _)| r.idempotency_key.as_ref() == Some(key))
                {
                    return Ok(Created::Existing(Box::new(existing.clone())));
                }
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
            runs.insert(run.run_id, (record, Vec::new()));
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
            let mut runs = crate::types::lock(&self.runs);
            let (record, journal) = runs.get_mut(&run_id).ok_or(StoreError::NotFound(run_id))?;
            check_fence(record, fence)?;
            journal.extend_from_slice(events);
            if let Some(update) = update {
                if update.status != StoredStatus::Running {
                    record.owner = None;
                    record.lease_until_micros = None;
                }
                record.status = update.status;
                record.output = update.output;
                record.error = update.error;
            }
            record.updated_at_micros = now_micros();
            Ok(())
        })
    }

    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(async move {
            let mut runs = crate::types::lock(&self.runs);
            let (record, journal) = runs.get_mut(&run_id).ok_or(StoreError::NotFound(run_id))?;
            if record.status.is_finished() {
                return Ok(Claim::Finished(Box::new(record.clone()), journal.clone()));
            }
            if let (Some(owner), Some(until)) = (&record.owner, record.lease_until_micros) {
                if *owner != lease.owner && until > now_micros() {
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
    ) -> BoxFuture<'a, Result<Vec<StoredRun>, StoreError>> {
        Box::pin(async move {
            let now = now_micros();
            let mut runs = crate::types::lock(&self.runs);
            let mut free: Vec<&mut (RunRecord, Vec<Event>)> = runs
                .values_mut()
                .filter(|(r, _)| {
                    r.status == StoredStatus::Running
                        && (r.owner.is_none() || r.lease_until_micros.is_none_or(|u| u <= now))
                        && workflows
                            .iter()
                            .any(|(w, v)| *w == r.workflow && *v == r.version)
                        && !skip.contains(&r.run_id)
                })
                .collect();
            free.sort_by_key(|(r, _)| (r.created_at_micros, r.run_id));
            Ok(free
                .into_iter()
                .take(limit)
                .map(|(record, journal)| {
                    let fence = record.fence + 1;
                    take(record, lease, fence);
                    (record.clone(), journal.clone())
                })
                .collect())
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let until = now_micros().saturating_add(lease.micros());
            let mut all = crate::types::lock(&self.runs);
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
            let mut runs = crate::types::lock(&self.runs);
            let (record, _) = runs.get_mut(&run_id).ok_or(StoreError::NotFound(run_id))?;
            check_fence(record, fence)?;
            record.owner = None;
            record.lease_until_micros = None;
            Ok(())
        })
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        Box::pin(async move {
            crate::types::lock(&self.runs)
                .get(&run_id)
                .cloned()
                .ok_or(StoreError::NotFound(run_id))
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<RunRecord>, StoreError>> {
        Box::pin(async move {
            let mut pending: Vec<RunRecord> = crate::types::lock(&self.runs)
                .values()
                .filter(|(r, _)| r.status == StoredStatus::Running)
                .map(|(r, _)| r.clone())
                .collect();
            pending.sort_by_key(|r| (r.created_at_micros, r.run_id));
            Ok(pending)
        })
    }

    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RunRecord>, StoreError>> {
        Box::pin(async move {
            let mut runs: Vec<RunRecord> = crate::types::lock(&self.runs)
                .values()
                .map(|(r, _)| r)
                .filter(|r| status.is_none_or(|s| r.status == s))
                .filter(|r| workflow.is_none_or(|w| r.workflow == w))
                .cloned()
                .collect();
            runs.sort_by_key(|r| std::cmp::Reverse((r.created_at_micros, r.run_id)));
            runs.truncate(limit);
            Ok(runs)
        })
    }
}

/// Gives `record`'s lease to `lease.owner`, at generation `fence`.
fn take(record: &mut RunRecord, lease: &Lease, fence: u64) {
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
