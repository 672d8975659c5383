//! Looking stored runs up without reaching into the store: one run's summary
//! ([`Engine::status`]) and pages of runs ([`Engine::runs`]).

use super::Engine;
use crate::journal::CurrentStep;
use crate::store::{RunFilter, RunPage, StoreError, StoredStatus};
use crate::types::{NoStore, RunId};

/// A stored run at a glance ([`Engine::status`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run.
    pub run_id: RunId,
    /// Its workflow.
    pub workflow: String,
    /// The workflow's version.
    pub version: u32,
    /// Where it is, as the store keeps it.
    pub status: StoredStatus,
    /// When it was created, in microseconds since the Unix epoch.
    pub created_at_micros: u64,
    /// When it last changed.
    pub updated_at_micros: u64,
    /// Whether it recorded an output (a completed run).
    pub has_output: bool,
    /// Its error, for a failed or parked run.
    pub error: Option<String>,
    /// The step it is at, as its journal in the store says: the one in flight, or else the
    /// last that ended; `None` before its first step. A step's start is committed with its
    /// end (or with a commit of another `parallel!` branch, or a retry), so a step running
    /// now shows once it ends, and one shown in flight was running when the run stopped, or
    /// is running in a branch.
    pub current_step: Option<CurrentStep>,
    /// For a waiting run: the event it waits for, if any (`ctx.wait`).
    pub waiting_for: Option<String>,
    /// For a waiting run: when it wakes by itself (a timer, a wait's timeout, its deadline),
    /// in microseconds since the Unix epoch.
    pub wakes_at_micros: Option<u64>,
    /// A cancellation asked for and not carried out yet.
    pub cancel_requested: Option<crate::types::CancelRequest>,
}

/// Why a run could not be looked up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The engine has no store.
    #[error(transparent)]
    NoStore(#[from] NoStore),
    /// No such run in the store.
    #[error("no run {0} in the store")]
    UnknownRun(RunId),
    /// The store failed, or the run's record or journal cannot be read
    /// ([`StoreError::Corrupt`]).
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for LookupError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(run_id) => LookupError::UnknownRun(run_id),
            err => LookupError::Store(err),
        }
    }
}

impl Engine {
    /// Run `run_id` at a glance: its workflow and version, its stored status, when it was
    /// created and last changed, whether it has an output or an error, and the step it is
    /// at, read from its journal. Reads only: never claims, resumes or writes the run.
    ///
    /// # Errors
    /// [`LookupError::NoStore`] without a store, [`LookupError::UnknownRun`] when the store
    /// has no such run, [`LookupError::Store`] when it fails or cannot read the run.
    pub async fn status(&self, run_id: RunId) -> Result<RunSummary, LookupError> {
        let store = self.store().ok_or(NoStore)?;
        let (record, events) = store.load(run_id).await?;
        Ok(RunSummary {
            run_id: record.run_id,
            workflow: record.workflow,
            version: record.version,
            status: record.status,
            created_at_micros: record.created_at_micros,
            updated_at_micros: record.updated_at_micros,
            has_output: record.output.is_some(),
            error: record.error,
            current_step: CurrentStep::of(&events),
            waiting_for: record.waiting_for,
            wakes_at_micros: record.wake_at_micros,
            cancel_requested: record.cancel,
        })
    }

    /// A page of the stored runs that pass `filter` (status, workflow, creation time range),
    /// newest first, with the cursor of the next page ([`RunPage::next`]; give it back with
    /// [`RunFilter::after`]). Paging on sees every run once, none twice. A run whose row
    /// cannot be read is reported in [`RunPage::unreadable`], never fails the page. Reads
    /// only.
    ///
    /// # Errors
    /// [`LookupError::NoStore`] without a store, [`LookupError::Store`] when it fails.
    pub async fn runs(&self, filter: &RunFilter) -> Result<RunPage, LookupError> {
        let store = self.store().ok_or(NoStore)?;
        Ok(store.list_page(filter).await?)
    }
}
