//! The state of one run, shared by its contexts: what the run's code reads, and what its
//! execution (the `run` layer) changes. Plain state and its small accessors; no step, hook or
//! compensation logic lives here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::RunEnv;
use super::compensation::CompensationStack;
use super::state_lock::StateLock;
use crate::journal::{EventKind, Journal, Replay};
use crate::store::Store;
use crate::types::{
    BagStore, BestEffortFailure, CancelRequest, CancelSignal, FailedCompensation, HookFailure, Job,
    Key, KeyText, RecordError, RecordedJson, ReplayError, RunId, RunOptions, StoreError, ToRecord,
    now_micros, to_record,
};

/// What a run shares between the workflow body, its steps and its hook handlers.
pub(crate) struct RunShared {
    pub(crate) env: Arc<RunEnv>,
    pub(crate) run_id: RunId,
    /// The options the run was started with; `None` when they say nothing its contexts read
    /// (no request id, actor, additional data; a local origin): most in-memory runs.
    pub(crate) options: Option<Box<RunOptions>>,
    /// Never held across user code or an await: see [`StateLock`].
    pub(crate) state: StateLock<RunState>,
    pub(crate) bag: BagStore,
    /// The last compensation frame handed out (0 is the run's own workflow).
    last_frame: AtomicU32,
    pub(crate) span: tracing::Span,
    /// The store and replay state, when the engine has a store (boxed: a run without one
    /// carries a pointer, not its room).
    pub(crate) durable: Option<Box<Durable>>,
    /// Set once the run must stop ([`RunShared::halt`]): read after every poll of the body.
    halted: AtomicBool,
}

/// What the keys of steps, `parallel!` groups and hook firings count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Step = 0,
    Group = 1,
    Firing = 2,
}

/// What has started so far in one `parallel!` branch: the counts that its steps' and
/// firings' keys are made of. (The run's top level counts in its state: [`Counts`].)
#[derive(Debug, Default)]
pub(crate) struct Counters([AtomicU32; 3]);

impl Counters {
    /// The number of the step, group or firing that starts now.
    #[inline]
    pub(crate) fn next(&self, count: Count) -> u32 {
        self.0[count as usize].fetch_add(1, Ordering::Relaxed)
    }
}

/// What a run counts, behind its lock: taken under the lock that records what starts (a
/// step's `StepStarted`, a firing's `HookFired`), its numbers cost no atomic operation of
/// their own.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    next_position: u32,
    next_firing: u32,
    /// What the body started outside any `parallel!` branch: its steps, groups and
    /// firings, by [`Count`].
    top: [u32; 3],
}

/// `*n`, and `n` counted on (wrapping, as the atomic counts did).
#[inline]
fn bump(n: &mut u32) -> u32 {
    let was = *n;
    *n = was.wrapping_add(1);
    was
}

/// The mutable part of a run, behind one lock that is never held across user code.
#[derive(Default)]
pub(crate) struct RunState {
    pub(crate) journal: Journal,
    pub(crate) compensations: CompensationStack,
    pub(crate) jobs: Vec<Job>,
    /// Its failures that did not fail it and its branches' paths, once it has any (boxed:
    /// most runs have none, and every run in flight holds its state).
    pub(crate) extra: Option<Box<RunExtra>>,
    /// The step a panic went through, set before the panic unwinds the workflow body.
    pub(crate) panicked_step: Option<&'static str>,
    /// Why the run stops, once it must (boxed: most runs never halt).
    halt: Option<Box<Halt>>,
    /// The messages of each event the run's waits took or hold (by index in the inbox), the
    /// journal's first; empty for runs that never wait.
    pub(crate) taken: Option<Box<Taken>>,
    pub(crate) counts: Counts,
}

/// What only some runs have (see [`RunState::extra`]).
#[derive(Default)]
pub(crate) struct RunExtra {
    pub(crate) hook_errors: Vec<HookFailure>,
    pub(crate) compensation_failures: Vec<FailedCompensation>,
    pub(crate) best_effort_failures: Vec<BestEffortFailure>,
    /// The paths of the run's `Branch` keys (steps and firings in `parallel!` branches).
    paths: Vec<Box<str>>,
}

impl RunState {
    /// Its [`RunExtra`], made when first asked for.
    pub(crate) fn extra(&mut self) -> &mut RunExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// `key` as the journal writes it.
    #[inline]
    pub(crate) fn key_text(&self, key: Key) -> KeyText<'_> {
        match key {
            Key::Top(n) => KeyText::Top(n),
            Key::Branch(i) => KeyText::Path(
                self.extra
                    .as_ref()
                    .and_then(|extra| extra.paths.get(i as usize))
                    .map_or("?", |p| &**p),
            ),
        }
    }
}

/// The messages each event's waits took or hold, by their index in the run's inbox.
pub(crate) type Taken = std::collections::HashMap<String, std::collections::BTreeSet<u32>>;

/// Why a run stops without running more of its body. The code that finds it calls
/// [`RunShared::halt`] and waits forever; the run's driver, which polls the body, sees it
/// after that poll, drops the body and ends the run: no unwinding.
#[derive(Debug)]
pub(crate) enum Halt {
    /// A commit failed (the store is down, or refused a fence that is no longer the run's):
    /// the run stops, still `running` in the store, and the next resume picks it up.
    Store(StoreError),
    /// The body does not match its journal, or the journal cannot be read: park the run.
    Replay(ReplayError),
    /// A run resumed while compensating reached the point where it had failed.
    Failed(String),
    /// A value the run made cannot be recorded (too deep or too large for the engine, or
    /// refused by the store): park the run there.
    Unrecordable(RecordError),
    /// A resumed run reached a step that had panicked (and was recorded so by a commit of a
    /// sibling branch before the run's failure was): the run fails there, as it did.
    Panicked {
        /// The step.
        step: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The run suspended in the store (it waits for an event or a timer): it stops here, to
    /// be resumed by replay once woken. `what` says what it waits for.
    Suspended {
        /// "waits for event `payment_captured`", "sleeps until ...".
        what: String,
    },
    /// The run is cancelled: it stops where it is, and its completed steps are compensated.
    Cancelled(Box<CancelRequest>),
    /// A fault plan made a step fail: the run fails there, as if its error had been
    /// propagated with `?` (feature `testing`).
    #[cfg(feature = "testing")]
    Injected {
        /// The step.
        step: &'static str,
        /// The fault's message.
        message: String,
    },
}

/// The durable side of a run: its store, how much of its journal is committed, and what a
/// resumed run replays.
pub(crate) struct Durable {
    pub(crate) store: Arc<dyn Store>,
    /// How many events of the journal are in the store. Its lock also orders the commits of
    /// concurrent branches.
    pub(crate) persisted: tokio::sync::Mutex<usize>,
    /// Boxed: it is large, and a run's futures carry their `Durable` by value.
    pub(crate) replay: Option<Box<Replay>>,
    /// The lease generation this process holds the run under: every commit carries it.
    pub(crate) fence: u64,
    /// Set when the run is asked to cancel (by this process, or seen in the store): read at
    /// every step boundary and wait.
    pub(crate) cancel: Arc<CancelSignal>,
    /// When the run is cancelled if it has not ended (microseconds since the Unix epoch).
    pub(crate) deadline_micros: Option<u64>,
    /// Set while a transactional step's transaction is open: the run's commits wait for it,
    /// and ride on its commit (the store's connection is the transaction's meanwhile).
    pub(crate) in_transaction: AtomicBool,
    /// Set when a step's completion is left to ride on the run's next commit: committed
    /// before anything with effects runs next (a step's body, a hook handler, the run's
    /// jobs), or with the run's end (`run::commit::defer_commit`).
    pub(crate) deferred: AtomicBool,
}

impl Durable {
    /// The cancellation the run must carry out now, if any: one asked for, or its deadline
    /// passing.
    #[inline]
    pub(crate) fn cancel_now(&self) -> Option<CancelRequest> {
        if let Some(request) = self.cancel.get() {
            return Some(request.clone());
        }
        let deadline = self.deadline_micros?;
        (now_micros() >= deadline).then(|| CancelRequest::new(DEADLINE_PASSED, None))
    }
}

/// What the keys of the hook firings inside a transactional step start with.
pub(crate) const TRANSACTION_KEY: &str = "tx";

/// The reason of a cancellation by deadline.
pub(crate) const DEADLINE_PASSED: &str = "the deadline passed";

impl RunShared {
    /// A run of `env` starting from `journal` (empty, or what a resumed run recorded).
    pub(crate) fn new(
        env: Arc<RunEnv>,
        run_id: RunId,
        options: RunOptions,
        journal: Journal,
        span: tracing::Span,
        durable: Option<Durable>,
    ) -> Self {
        // A resumed run's new steps and firings come after the recorded ones.
        let (next_position, next_firing) = durable
            .as_ref()
            .and_then(|d| d.replay.as_ref())
            .map_or((0, 0), |r| (r.next_position, r.next_firing));
        let reads_options = options.request_id.is_some()
            || options.actor.is_some()
            || options.additional_data.is_some()
            || options.origin != crate::types::Origin::default();
        // Boxed before the state is built: with no call left among its fields, the state is
        // written where it is returned, not built beside it and copied.
        let options = if reads_options {
            Some(Box::new(options))
        } else {
            None
        };
        let durable = durable.map(Box::new);
        RunShared {
            env,
            run_id,
            options,
            // Each field by name (not `..RunState::default()`): the default state would be
            // built whole, then copied.
            state: StateLock::new(RunState {
                journal,
                compensations: CompensationStack::new(),
                jobs: Vec::new(),
                extra: None,
                panicked_step: None,
                halt: None,
                taken: None,
                counts: Counts {
                    next_position,
                    next_firing,
                    top: [0; 3],
                },
            }),
            bag: BagStore::default(),
            last_frame: AtomicU32::new(0),
            span,
            durable,
            halted: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn record(&self, kind: EventKind) {
        self.push(&mut self.state.lock(), kind);
    }

    /// Appends an event to the journal (whose lock the caller holds) and passes it to the
    /// run's subscribers, if the engine has any.
    #[inline]
    pub(crate) fn push(&self, state: &mut RunState, kind: EventKind) {
        self.push_at(state, kind, now_micros());
    }

    /// [`RunShared::push`] of an event that happened at `at_micros`.
    #[inline(always)]
    pub(crate) fn push_at(&self, state: &mut RunState, kind: EventKind, at_micros: u64) {
        append(&self.env, self.run_id, &mut state.journal, kind, at_micros);
    }

    /// The number of the step, group or firing that starts now at the run's top level
    /// (outside any `parallel!` branch).
    pub(crate) fn top(&self, count: Count) -> u32 {
        bump(&mut self.state.lock().counts.top[count as usize])
    }

    fn next_position(&self) -> u32 {
        bump(&mut self.state.lock().counts.next_position)
    }

    /// The index of the next hook firing (the body fires hooks in the same order on replay).
    fn next_firing(&self) -> u32 {
        bump(&mut self.state.lock().counts.next_firing)
    }

    /// Starts a step of a run that replays nothing, under one lock: its key (`branch`, its
    /// key in a `parallel!` branch, or else the next top-level step's), its position (the
    /// next), and its `StepStarted`, made by `event` from the position and the key's text,
    /// recorded. Returns the key and the position.
    #[inline]
    pub(crate) fn start_step(
        &self,
        branch: Option<Key>,
        event: impl FnOnce(u32, KeyText<'_>) -> EventKind,
    ) -> (Key, u32) {
        self.start_fresh(branch, Count::Step, event, &mut 0)
    }

    /// [`RunShared::start_step`] for a hook firing: its key, its index (the next) and its
    /// `HookFired`. Returns the key, the index, and the position the next step of the run
    /// will take (its first handler's, unless another step starts first).
    #[inline]
    pub(crate) fn start_firing(
        &self,
        branch: Option<Key>,
        event: impl FnOnce(u32, KeyText<'_>) -> EventKind,
    ) -> (Key, u32, u32) {
        let mut next_step = 0;
        let (key, index) = self.start_fresh(branch, Count::Firing, event, &mut next_step);
        (key, index, next_step)
    }

    #[inline(always)]
    fn start_fresh(
        &self,
        branch: Option<Key>,
        count: Count,
        event: impl FnOnce(u32, KeyText<'_>) -> EventKind,
        next_position: &mut u32,
    ) -> (Key, u32) {
        let mut state = self.state.lock();
        let counts = &mut state.counts;
        let key = match branch {
            Some(key) => key,
            None => Key::Top(bump(&mut counts.top[count as usize])),
        };
        let at = match count {
            Count::Firing => bump(&mut counts.next_firing),
            Count::Step | Count::Group => bump(&mut counts.next_position),
        };
        *next_position = counts.next_position;
        let kind = event(at, state.key_text(key));
        self.push_at(&mut state, kind, now_micros());
        (key, at)
    }

    pub(crate) fn new_frame(&self) -> u32 {
        self.last_frame.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether step data is serialized into the journal: when asked, or for a store.
    #[inline]
    pub(crate) fn records_data(&self) -> bool {
        self.env.record_data || self.durable.is_some()
    }

    /// The cancellation the run must carry out at this boundary, if any (a durable run only).
    #[inline]
    pub(crate) fn cancel_now(&self) -> Option<CancelRequest> {
        self.durable.as_ref()?.cancel_now()
    }

    /// What the journal recorded, if this run is being replayed.
    #[inline]
    pub(crate) fn replay(&self) -> Option<&Replay> {
        self.durable.as_ref()?.replay.as_deref()
    }

    /// The key of a step or firing in a `parallel!` branch at `path`.
    pub(crate) fn branch_key(&self, path: String) -> Key {
        let mut state = self.state.lock();
        let paths = &mut state.extra().paths;
        paths.push(path.into());
        Key::Branch(u32::try_from(paths.len() - 1).unwrap_or(u32::MAX))
    }

    /// Calls `f` with `key` as the journal writes it (holding the run's state for a path:
    /// `f` must not lock it).
    pub(crate) fn with_key<R>(&self, key: Key, f: impl FnOnce(KeyText<'_>) -> R) -> R {
        match key {
            Key::Top(n) => f(KeyText::Top(n)),
            Key::Branch(_) => f(self.state.lock().key_text(key)),
        }
    }

    /// The position of the step at `key`: the journal's, for a step a resumed run recorded,
    /// or the next one.
    #[inline]
    pub(crate) fn position_at(&self, key: Key) -> u32 {
        self.replay()
            .and_then(|replay| self.with_key(key, |k| replay.position(k)))
            .unwrap_or_else(|| self.next_position())
    }

    /// The index of the hook firing at `key`: the journal's, or the next one.
    #[inline]
    pub(crate) fn firing_at(&self, key: Key) -> u32 {
        self.replay()
            .and_then(|replay| {
                self.with_key(key, |k| match k {
                    // A firing inside a transactional step: the step runs again only if its
                    // transaction never committed, so whatever its handlers did then was
                    // rolled back, and they run again.
                    KeyText::Path(path) if path.starts_with(TRANSACTION_KEY) => None,
                    k => replay.firing(k),
                })
            })
            .unwrap_or_else(|| self.next_firing())
    }

    /// `value` as JSON for the journal, within the record limits
    /// ([`to_record`](crate::types::to_record)). A value that cannot be recorded halts the
    /// run, to be parked with the reason; `what` names it there.
    pub(crate) fn record_json<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        what: impl FnOnce() -> String,
    ) -> Option<serde_json::Value> {
        match to_record(value, self.env.max_record_bytes, what) {
            Ok(json) => Some(json),
            Err(err) => {
                self.halt(Halt::Unrecordable(err));
                None
            }
        }
    }

    /// [`record_json`](Self::record_json) of a step's output or data, as the JSON text the
    /// journal keeps, written once ([`ToRecord`]).
    pub(crate) fn recorded_json<T: ToRecord + ?Sized>(
        &self,
        value: &T,
        what: impl Fn() -> String,
    ) -> Option<RecordedJson> {
        match value.to_recorded(self.env.max_record_bytes, &what) {
            Ok(json) => Some(json),
            Err(err) => {
                self.halt(Halt::Unrecordable(err));
                None
            }
        }
    }

    /// Stops the run: the first reason given stands.
    pub(crate) fn halt(&self, halt: Halt) {
        let mut state = self.state.lock();
        if state.halt.is_none() {
            state.halt = Some(Box::new(halt));
            self.halted.store(true, Ordering::Release);
        }
    }

    /// Whether the run must stop.
    #[inline]
    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Why the run must stop, taken once.
    #[inline]
    pub(crate) fn take_halt(&self) -> Option<Halt> {
        if !self.is_halted() {
            return None;
        }
        self.state.lock().halt.take().map(|halt| *halt)
    }
}

/// Appends an event that happened at `at_micros` to the journal of run `run_id` in `env`, and
/// passes it to the run's subscribers, if the engine has any: what recording an event does,
/// also for a run whose shared state is not made yet (its start, recorded in the journal it
/// is made with: no lock to take).
#[inline(always)]
pub(crate) fn append(
    env: &RunEnv,
    run_id: RunId,
    journal: &mut Journal,
    kind: EventKind,
    at_micros: u64,
) {
    let event = journal.push_at(kind, at_micros);
    env.bus.publish(run_id, event);
    #[cfg(feature = "metrics")]
    crate::metrics::on_event(journal.events());
}

impl std::fmt::Debug for RunShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}
#[cfg(test)]
mod tests {
    use std::mem::size_of;

    #[test]
    fn a_runs_shared_state_is_680_bytes() {
        // Every run in flight holds one (in an `Arc`): the bag's maps boxed (104 -> 24 bytes)
        // and six compensations inline, not eight, took it from 992 bytes; the failures that
        // do not fail a run and the branches' paths boxed, to 680.
        assert_eq!(size_of::<super::RunShared>(), 680);
    }
}
