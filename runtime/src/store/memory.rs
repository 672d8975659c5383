//! A store in memory: runs survive nothing, but idempotency keys and replay work within one
//! process, and tests can inspect what a durable engine records.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{BoxFuture, Created, RunRecord, RunUpdate, Store, StoreError, StoredStatus};
use crate::context::RunId;
use crate::journal::Event;

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
    fn create<'a>(&'a self, run: &'a RunRecord) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move {
            let mut runs = crate::lock(&self.runs);
            if let Some(key) = &run.idempotency_key {
                if let Some((existing, _)) = runs
                    .values()
                    .find(|(r, _)| r.idempotency_key.as_ref() == Some(key))
                {
                    return Ok(Created::Existing(Box::new(existing.clone())));
                }
            }
            runs.insert(run.run_id, (run.clone(), Vec::new()));
            Ok(Created::New)
        })
    }

    fn commit<'a>(
        &'a self,
        run_id: RunId,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut runs = crate::lock(&self.runs);
            let (record, journal) = runs.get_mut(&run_id).ok_or(StoreError::NotFound(run_id))?;
            journal.extend_from_slice(events);
            if let Some(update) = update {
                record.status = update.status;
                record.output = update.output;
                record.error = update.error;
            }
            record.updated_at_micros = crate::journal::now_micros();
            Ok(())
        })
    }

    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>> {
        Box::pin(async move {
            crate::lock(&self.runs)
                .get(&run_id)
                .cloned()
                .ok_or(StoreError::NotFound(run_id))
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<RunRecord>, StoreError>> {
        Box::pin(async move {
            let mut pending: Vec<RunRecord> = crate::lock(&self.runs)
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
            let mut runs: Vec<RunRecord> = crate::lock(&self.runs)
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
