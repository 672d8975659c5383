//! Stores: where a durable engine keeps its runs and their journals.
//!
//! Without a store, runs live in memory and their journal is returned in the outcome. With
//! one ([`EngineBuilder::store`](crate::EngineBuilder::store)), every run is recorded when it
//! starts, each step's completion is committed before the next step starts, and a run that
//! did not finish (the process died) is resumed by replay
//! ([`Engine::resume_pending`](crate::Engine::resume_pending)).
//!
//! - [`MemoryStore`]: in memory, for tests and single-process idempotency (ended runs kept
//!   for as long as its [`Retention`] says);
//! - `SqliteStore` (feature `sqlite`): an embedded SQLite file;
//! - `PostgresStore` (feature `postgres`): a PostgreSQL database, through a connection pool.
//!
//! Both SQL stores also open read-only (`SqliteStore::open_read_only`,
//! `PostgresStore::connect_read_only`): they never create, migrate or write, and refuse what
//! is not a hookflow store ([`StoreError::NotAStore`]). [`redact`] hides the password of a
//! connection string that is to be printed or logged.
//!
//! A run whose row (or a row of its journal) cannot be read, hand-written, damaged or written
//! by a hookflow whose records this one cannot read, never poisons the others: the SQL
//! stores read rows one by one, and [`Store::pending`] and [`Store::claim_next`]
//! **quarantine** such a run (park it, with the reason in its `error`) and report it as
//! [`Unreadable`] in what they return ([`Found`]); [`Store::list`] only reports it.
//!
//! Ended runs are kept until pruned: [`Store::prune`] deletes a batch of those that ended
//! before a time, with their journals, and [`prune_older_than`] (or
//! [`Engine::prune`](crate::Engine::prune)) all of those older than a duration, batch by
//! batch. Running and parked runs are never pruned.
//!
//! A store wakes the workers waiting on it when a run becomes claimable ([`Store::wakeups`]):
//! in memory and SQLite within the process, in PostgreSQL through `LISTEN`/`NOTIFY`.

mod inbox;
mod memory;
mod operator;
mod page;
#[cfg(feature = "postgres")]
pub mod postgres;
mod prune;
mod redact;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod row;
mod schedules;
mod shared;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod transaction;
mod wakeup;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::Event;
use crate::types::{Actor, CancelRequest, Origin, RunId};
pub use crate::types::{StoreError, StoredStatus};

pub use inbox::{Cancelling, Delivery, Message, Suspension, Wake};
pub use memory::{MemoryStore, Retention};
pub use operator::{ForkError, RetryError, fork_run, request_retry};
pub use page::{RunCursor, RunFilter, RunPage};
pub(crate) use prune::prune_periodically;
pub use prune::{PRUNE_BATCH, prune_older_than};
pub use redact::redact;
pub use schedules::{ScheduleRecord, Schedules, UnreadableSchedule};
pub use transaction::{StoreTransaction, Transaction, TransactionError};
pub(crate) use wakeup::WakeupSignal;
pub use wakeup::Wakeups;

/// The future a [`Store`] method returns: boxed, so that stores can be trait objects.
pub use crate::types::BoxFuture;

/// A run as a store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id.
    pub run_id: RunId,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow's version (`#[workflow(version = N)]`).
    pub version: u32,
    /// The input, as JSON.
    pub input: Value,
    /// Where the run is.
    pub status: StoredStatus,
    /// The idempotency key it was started with, if any.
    pub idempotency_key: Option<String>,
    /// The request id it was started with, if any.
    pub request_id: Option<String>,
    /// Who started it.
    pub actor: Option<Actor>,
    /// Where from.
    pub origin: Origin,
    /// The additional data it was started with.
    pub additional_data: Option<Value>,
    /// The output of a completed run, as JSON.
    pub output: Option<Value>,
    /// The error of a failed or parked run.
    pub error: Option<String>,
    /// When the run was created, in microseconds since the Unix epoch.
    pub created_at_micros: u64,
    /// When it last changed.
    pub updated_at_micros: u64,
    /// Who holds the run's lease (an engine's [`worker id`](crate::EngineBuilder::worker_id)),
    /// if anyone: it alone may advance the run until the lease lapses.
    #[serde(default)]
    pub owner: Option<String>,
    /// The lease's generation, the fencing token: every claim of the run increments it, and
    /// a commit made under an older generation is refused ([`StoreError::Fenced`]). 0 for a
    /// run that was never claimed (an enqueued run no worker has taken yet).
    #[serde(default)]
    pub fence: u64,
    /// Until when the lease holds, in microseconds since the Unix epoch (by the store's
    /// clock), unless renewed.
    #[serde(default)]
    pub lease_until_micros: Option<u64>,
    /// For a [`StoredStatus::Waiting`] run: when it is due to be claimed again (its timer,
    /// its timeout, its deadline; the moment it was woken by an event or a cancellation), if
    /// anything will wake it by itself.
    #[serde(default)]
    pub wake_at_micros: Option<u64>,
    /// For a [`StoredStatus::Waiting`] run: the event it waits for, if any.
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// A cancellation asked for and not carried out yet.
    #[serde(default)]
    pub cancel: Option<CancelRequest>,
    /// When the run is cancelled if it has not ended, in microseconds since the Unix epoch
    /// ([`RunOptions::deadline`](crate::RunOptions::deadline)).
    #[serde(default)]
    pub deadline_micros: Option<u64>,
}

/// A run and its journal, as a store returns them.
pub type StoredRun = (RunRecord, Vec<Event>);

/// A run a store could not read: its row, or a row of its journal, does not parse (corrupt on
/// disk, written by hand, or by a hookflow whose records this one cannot read).
///
/// [`Store::pending`] and [`Store::claim_next`] **quarantine** such a run: they park it in the
/// store (status `parked`, its lease released, its `error` set to `quarantined: ` and the
/// reason) and report it here, and every other run goes on. [`Store::list`] only reports it.
/// Once the row is repaired, [`Engine::resume`](crate::Engine::resume) resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unreadable {
    /// The run's id as stored: it may itself be what does not parse, so it is not a
    /// [`RunId`].
    pub run_id: String,
    /// Why it cannot be read, e.g. "the record cannot be read: actor: key must be a string
    /// at line 1 column 2" or "event 3 cannot be read: EOF while parsing a value at line 1
    /// column 1".
    pub reason: String,
}

impl Unreadable {
    /// What a quarantined run's `error` says: `quarantined: ` and the reason.
    pub fn error(&self) -> String {
        quarantined(&self.reason)
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {}: {}", self.run_id, self.reason)
    }
}

/// The `error` of a run quarantined for `reason`.
pub(crate) fn quarantined(reason: &str) -> String {
    format!("quarantined: {reason}")
}

/// What a store read, row by row: the runs it could read, and those it could not (each
/// reported, never failing the rest). [`Store::pending`] and [`Store::claim_next`] have
/// quarantined the unreadable ones (parked them in the store); [`Store::list`] only reports
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    /// The runs read, in the order the method gives.
    pub runs: Vec<T>,
    /// The runs that could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl<T> Default for Found<T> {
    fn default() -> Self {
        Found {
            runs: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

impl<T> Found<T> {
    /// Runs that could all be read.
    pub fn readable(runs: Vec<T>) -> Self {
        Found {
            runs,
            unreadable: Vec::new(),
        }
    }

    /// Whether nothing was found, readable or not.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.unreadable.is_empty()
    }
}

/// A lease to take or renew: who takes it, and for how long without renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The owner: an engine's worker id.
    pub owner: String,
    /// How long the lease holds unless renewed (a heartbeat) or released.
    pub duration: Duration,
}

impl Lease {
    /// The duration in microseconds, as stores keep it.
    pub fn micros(&self) -> u64 {
        u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX)
    }
}

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The lease is ours: the run (its `fence` is the new generation) and its journal, read
    /// after the claim.
    Acquired(Box<RunRecord>, Vec<Event>),
    /// Another owner holds a lease that has not lapsed.
    Held {
        /// The owner.
        owner: String,
        /// Until when, in microseconds since the Unix epoch.
        until_micros: u64,
    },
    /// The run is over: there is nothing to claim. Its record and journal.
    Finished(Box<RunRecord>, Vec<Event>),
    /// The run's record or journal cannot be read, and it was neither finished nor held by
    /// another live lease: it was quarantined instead (parked, its lease released, the
    /// reason in its `error`).
    Quarantined(Unreadable),
}

/// A change to a run's row, committed with its events.
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    /// The new status.
    pub status: StoredStatus,
    /// The output, for a completed run.
    pub output: Option<Value>,
    /// The error, for a failed or parked run.
    pub error: Option<String>,
}

impl RunRecord {
    /// Whether `new`, a run to create with this run's idempotency key, asks for the same
    /// thing: the same workflow and the same input, compared as JSON values. A store that keeps
    /// JSON as text reads this run's input back from its text; `new`'s is compared as it
    /// reads back too, so that numbers that do not survive a round trip exactly (a float's
    /// last digit) compare as they are stored. [`Store::create`] answers
    /// [`Created::Existing`] when it does, [`Created::KeyConflict`] when it does not.
    pub fn same_request(&self, new: &RunRecord) -> bool {
        self.workflow == new.workflow
            && (self.input == new.input
                || serde_json::from_str::<Value>(&new.input.to_string())
                    .is_ok_and(|read_back| read_back == self.input))
    }
}

/// What [`Store::create`] did.
///
/// Only [`Created::New`] recorded anything: the other answers leave the store as it was.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// The run was recorded.
    New,
    /// A run with the same idempotency key, of the same workflow and with the same input
    /// ([`RunRecord::same_request`]), exists: this one.
    Existing(Box<RunRecord>),
    /// A run with the same run id exists (and does not hold the new run's idempotency key).
    RunIdTaken,
    /// A run with the same idempotency key exists, started with another input or of another
    /// workflow.
    KeyConflict {
        /// The run that holds the key.
        run_id: RunId,
    },
}

/// Where runs and their journals are kept, and who may advance each run.
///
/// Implementations must make each [`Store::commit`] atomic (its events and its update are
/// all recorded, or none is) and fenced: a commit is recorded only if `fence` is still the
/// run's lease generation. A claim (of one run, or of the next free ones) increments the
/// generation, so that once a worker takes a run over, the writes of the worker whose lease
/// lapsed fail with [`StoreError::Fenced`] and the two never both advance the run.
pub trait Store: Send + Sync + 'static {
    /// Records a new run, unless a run with the same idempotency key exists, in which case
    /// it returns that run if it asks for the same ([`RunRecord::same_request`]:
    /// [`Created::Existing`]) and records nothing otherwise ([`Created::KeyConflict`]); or a
    /// run with the same run id exists ([`Created::RunIdTaken`], nothing recorded). The
    /// idempotency key is looked at first. With `lease`, the run is created claimed by its
    /// owner (fence 1); without, it is created free (fence 0), for any worker to claim
    /// ([`Store::claim_next`]). A record the store cannot hold (too large, not valid for it)
    /// is [`StoreError::Refused`].
    fn create<'a>(
        &'a self,
        run: &'a RunRecord,
        lease: Option<&'a Lease>,
    ) -> BoxFuture<'a, Result<Created, StoreError>>;

    /// Appends `events` to the run's journal and applies `update`, atomically, if `fence` is
    /// still the run's lease generation ([`StoreError::Fenced`] otherwise). An update to a
    /// finished or parked status also releases the lease. Data the store cannot hold (a value
    /// too large for it, or not valid for it) is [`StoreError::Refused`], with nothing
    /// written: the engine then parks the run instead of trying again.
    fn commit<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        update: Option<RunUpdate>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// [`Store::commit`], for a store that is done with `events` and `update` once this
    /// returns (it encoded them): its future does not borrow them, so that the engine lends
    /// them from the run's journal instead of copying them, and nothing is written before it
    /// is polled. `None` (the default): the store keeps them, and the engine calls
    /// [`Store::commit`]. A wrapper store that does something on each commit forwards both.
    fn commit_encoded<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &[Event],
        update: Option<&RunUpdate>,
    ) -> Option<BoxFuture<'a, Result<(), StoreError>>> {
        let _ = (run_id, fence, events, update);
        None
    }

    /// Takes the lease of one run (running, waiting or parked; a waiting run becomes running)
    /// that nobody else holds, or whose lease
    /// lapsed: increments its generation and returns it with its journal. A run whose record
    /// or journal cannot be read is quarantined instead ([`Claim::Quarantined`]) unless it is
    /// finished or another owner's live lease holds it ([`StoreError::Corrupt`] then).
    fn claim<'a>(
        &'a self,
        run_id: RunId,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    /// Claims up to `limit` running runs that nobody holds (enqueued, released, or whose
    /// lease lapsed) and waiting runs that are due (woken, or their wake-up time passed: they
    /// become running), oldest first, of the given `(workflow, version)`s only and not in
    /// `skip` (the runs still in flight in the claiming process under a lapsed lease),
    /// without waiting for runs other workers are claiming at the same moment. Each comes
    /// with its journal, read after the claim.
    ///
    /// The rows are read one by one: a free running run whose record or journal cannot be
    /// read is quarantined (parked in the store, its lease released, in the same transaction
    /// where the store has them) and reported in [`Found::unreadable`]; it does not count
    /// towards `limit`, and the readable runs are claimed as if it were not there.
    fn claim_next<'a>(
        &'a self,
        lease: &'a Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [RunId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<StoredRun>, StoreError>>;

    /// Renews the lease of `runs` (those still held by `lease.owner`) for another
    /// `lease.duration`: the heartbeat of the runs a worker is advancing. Returns how many
    /// were renewed.
    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<usize, StoreError>>;

    /// Hands a run back, unfinished, if `fence` is still its generation: any worker may claim
    /// it at once (graceful shutdown, or a run its worker cannot go on with).
    fn release(&self, run_id: RunId, fence: u64) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The run and its journal.
    fn load(&self, run_id: RunId) -> BoxFuture<'_, Result<(RunRecord, Vec<Event>), StoreError>>;

    /// The runs that are not finished, not parked and not suspended (waiting runs are, once
    /// they are due to be claimed), oldest first.
    ///
    /// The rows are read one by one, each run's journal too: a run whose record or journal
    /// cannot be read is quarantined (parked in the store, whoever held its lease fenced out)
    /// and reported in [`Found::unreadable`], and the others are returned. A store opened
    /// read-only writes nothing: it only reports them.
    fn pending(&self) -> BoxFuture<'_, Result<Found<RunRecord>, StoreError>>;

    /// Runs, newest first, optionally only those with `status` or of `workflow`. Read-only:
    /// a row that cannot be read is reported in [`Found::unreadable`] (it counts towards
    /// `limit`) and left as it is.
    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Found<RunRecord>, StoreError>>;

    /// Deletes up to `limit` ended runs (completed, compensated, or compensation failed:
    /// [`StoredStatus::is_finished`]) that last changed before `ended_before_micros`
    /// (microseconds since the Unix epoch), oldest first, with their journals, in one
    /// transaction; returns how many. Runs that are running (started, interrupted, or enqueued
    /// and not started yet) or parked are never deleted, however old. A store opened
    /// read-only refuses it ([`StoreError::ReadOnly`]).
    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Appends `events` to the run's journal and suspends the run, if `fence` is still its
    /// lease generation ([`StoreError::Fenced`] otherwise): status
    /// [`StoredStatus::Waiting`], its lease released, [`RunRecord::wake_at_micros`] and
    /// [`RunRecord::waiting_for`] set from `suspension`. Unless something would wake it at
    /// once: a cancellation request, a message of its event beyond the ones it took, a wake-up
    /// time already past; then only the events are appended, and that is returned. Checked
    /// and applied atomically with [`Store::deliver`] and [`Store::cancel`], so that a message
    /// or a request that comes as the run suspends is never missed.
    fn suspend<'a>(
        &'a self,
        run_id: RunId,
        fence: u64,
        events: &'a [Event],
        suspension: &'a Suspension,
    ) -> BoxFuture<'a, Result<Option<Wake>, StoreError>>;

    /// Keeps `message` in the inbox of run `run_id`, a run of `workflow`, unless a message
    /// with its delivery key is there ([`Delivery::Duplicate`], even once the run is over: a
    /// retried delivery is answered as the first was), the run is over
    /// ([`Delivery::Ended`]), of another workflow ([`Delivery::OtherWorkflow`]) or unknown.
    /// A run suspended waiting for the message's event is woken: due to be claimed now.
    fn deliver<'a>(
        &'a self,
        run_id: RunId,
        workflow: &'a str,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivery, StoreError>>;

    /// The message of `event` number `index` (from 0) in the run's inbox, in the order they
    /// were kept, if there is one.
    fn message<'a>(
        &'a self,
        run_id: RunId,
        event: &'a str,
        index: u32,
    ) -> BoxFuture<'a, Result<Option<Message>, StoreError>>;

    /// Keeps a cancellation request with the run ([`RunRecord::cancel`]), unless it has one
    /// ([`Cancelling::AlreadyRequested`]), is over or unknown. A suspended run is woken: due
    /// to be claimed now, and cancelled by whoever claims it; a running one stops at its next
    /// step boundary once its engine sees the request ([`Store::cancel_requests`]).
    fn cancel<'a>(
        &'a self,
        run_id: RunId,
        request: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancelling, StoreError>>;

    /// The cancellation requests kept with `runs`, for those that have one.
    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [RunId],
    ) -> BoxFuture<'a, Result<Vec<(RunId, CancelRequest)>, StoreError>>;

    /// A page of the runs that pass `filter`, newest first (by creation time, then run id),
    /// at most [`RunFilter::page_size`] of them, with the cursor of the next page
    /// ([`RunPage::next`], `None` on the last). Paging on with that cursor sees every run
    /// once, none twice, whatever is created meanwhile. Read-only: the rows are read one by
    /// one, and a row that cannot be read is reported in [`RunPage::unreadable`] (it counts
    /// towards the page size) and left as it is; it never fails the page.
    ///
    /// The default reads every run through [`Store::list`] and filters them here; the
    /// stores of this crate filter in their database.
    fn list_page<'a>(
        &'a self,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, Result<RunPage, StoreError>> {
        Box::pin(async move {
            let found = self
                .list(filter.status, filter.workflow.as_deref(), usize::MAX)
                .await?;
            let mut page = RunPage::select(found.runs, filter);
            // Without a key to page on, the unreadable runs are reported on the first page.
            if filter.after.is_none() {
                page.unreadable = found.unreadable;
            }
            Ok(page)
        })
    }

    /// What a worker awaits, beside its poll interval, to claim a run as soon as it becomes
    /// claimable (a free run created, a run released) rather than at its next poll. In
    /// memory and SQLite, the runs made claimable through this store object (in this
    /// process); in PostgreSQL, through any process connected to the database (`LISTEN`).
    /// Wake-ups are hints: one may be lost (a dropped connection), so workers keep polling.
    /// By default, and for a store opened read-only, [`Wakeups::never`].
    fn wakeups(&self) -> Wakeups {
        Wakeups::never()
    }

    /// Records a schedule, or replaces the definition (workflow, version, spec, input,
    /// policies) of the one of the same name, keeping its ticks; a new spec takes
    /// `schedule`'s anchor. Refused by a read-only store ([`StoreError::ReadOnly`]). This
    /// method and the next four default to [`StoreError::Unsupported`] (no schedules).
    fn save_schedule<'a>(
        &'a self,
        schedule: &'a ScheduleRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        schedules::unsupported(schedule)
    }

    /// Every schedule, by name; a row that cannot be read is reported, and left as it is.
    fn schedules(&self) -> BoxFuture<'_, Result<Schedules, StoreError>> {
        schedules::unsupported(())
    }

    /// Compare-and-set of schedule `name`'s last tick: if it is `from` (`None`: never ticked),
    /// sets it to `tick`, and with `run_id` (the tick runs) records that run as its last, not
    /// yet [`started`](ScheduleRecord::started); returns `false`, changing nothing, if another
    /// worker moved the tick first or the schedule is gone.
    fn advance_schedule<'a>(
        &'a self,
        name: &'a str,
        from: Option<u64>,
        tick: u64,
        run_id: Option<RunId>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        schedules::unsupported((name, from, tick, run_id))
    }

    /// Marks run `run_id` of schedule `name` recorded, if it is still its last run.
    fn schedule_started<'a>(
        &'a self,
        name: &'a str,
        run_id: RunId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        schedules::unsupported((name, run_id))
    }

    /// Deletes the schedule `name` (its runs stay); returns whether there was one.
    fn remove_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        schedules::unsupported(name)
    }

    /// Opens a transaction on the store's own database for a transactional step
    /// (`#[step(transaction)]`): the step writes the application's tables in it, and the
    /// engine commits it with the step's journal events ([`StoreTransaction::commit`]), so
    /// that both are recorded or neither is. Defaults to [`StoreError::Unsupported`]: a store
    /// without a database (the memory store) has no transactions. Refused by a read-only
    /// store ([`StoreError::ReadOnly`]).
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, StoreError>> {
        Box::pin(std::future::ready(Err(StoreError::Unsupported {
            context: "open a transaction for a transactional step".into(),
        })))
    }

    /// The run that holds idempotency key `key`, if one does (its record, without its
    /// journal). Read-only. The SQL stores look it up in the key's unique index; the default
    /// reads every run through [`Store::list`] (what the memory store does).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the run's row cannot be read; the store's errors.
    fn find_by_idempotency_key<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(async move {
            let found = self.list(None, None, usize::MAX).await?;
            Ok(found
                .runs
                .into_iter()
                .find(|run| run.idempotency_key.as_deref() == Some(key)))
        })
    }
}
