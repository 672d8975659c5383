//! The bag a context gives: `ctx.bag()`, values of any serde type shared by one run's steps
//! and hook handlers, journaled so that a resumed run has them back.

use serde::Serialize;

use super::RunShared;
use crate::journal::{BagChange, EventKind};
use crate::types::{BagStore, BagValue, Key};

/// Who writes to the bag, for the journal: what a step or a hook handler puts in the bag is
/// recorded with it, and a resumed run that replays the step or handler (without running it)
/// restores it. The body's own writes are not recorded: the body runs again on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// The workflow body.
    Body,
    /// The step at this position, with its key.
    Step { position: u32, key: Key },
    /// The handler at `index` of hook firing `firing`, with the firing's key.
    Handler { firing: u32, index: u32, key: Key },
    /// The compensation of the step at this position, with the step's key.
    Compensation { position: u32, key: Key },
}

impl Writer {
    /// Who wrote, as the journal's events name it: the step's position, the hook handler's
    /// (firing, index), or the compensated step's position; all `None` for the body.
    pub(crate) fn journal_fields(self) -> (Option<u32>, Option<(u32, u32)>, Option<u32>) {
        match self {
            Writer::Body => (None, None, None),
            Writer::Step { position, .. } => (Some(position), None, None),
            Writer::Handler { firing, index, .. } => (None, Some((firing, index)), None),
            Writer::Compensation { position, .. } => (None, None, Some(position)),
        }
    }

    /// The key of the step or firing that writes: `None` for the body.
    pub(crate) fn key(self) -> Option<Key> {
        match self {
            Writer::Body => None,
            Writer::Step { key, .. }
            | Writer::Handler { key, .. }
            | Writer::Compensation { key, .. } => Some(key),
        }
    }
}

/// Values of any serde type, one per type, shared by every step and hook handler of one run:
/// a hook handler can leave a value for a later step, or the body the order id for an
/// `on_compensation_failed` handler. Reach it with `ctx.bag()`.
///
/// With a store, what a step, a hook handler or a compensation puts in the bag is recorded
/// in the run's journal with it, and a resumed run that replays that step (without running
/// it again) has it back, in order: the bag is the same as if the run had not crashed.
///
/// ```
/// # use hookflow_runtime::{StepContext};
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct GiftCard(u64);
///
/// fn apply(ctx: &StepContext) {
///     let bag = ctx.bag();
///     assert_eq!(bag.insert(GiftCard(500)), None);
///     assert_eq!(bag.get::<GiftCard>(), Some(GiftCard(500)));
///     bag.update(|seen: &mut Vec<String>| seen.push("apply".into()));
///     assert_eq!(bag.take::<GiftCard>(), Some(GiftCard(500)));
///     assert!(!bag.contains::<GiftCard>());
/// }
/// ```
pub struct Bag<'a> {
    pub(crate) run: &'a RunShared,
    pub(crate) writer: Writer,
}

impl Bag<'_> {
    fn store(&self) -> &BagStore {
        &self.run.bag
    }

    /// Stores `value`, returning the value of that type stored before, if any.
    pub fn insert<T: BagValue>(&self, value: T) -> Option<T> {
        self.record(Some(&value));
        self.store().insert(value)
    }

    /// A clone of the stored value of type `T`.
    pub fn get<T: BagValue + Clone>(&self) -> Option<T> {
        self.store().with(|v: Option<&T>| v.cloned())
    }

    /// Calls `f` with a reference to the stored value of type `T` (no clone).
    ///
    /// The bag is locked while `f` runs: do not touch the bag from `f`.
    pub fn with<T: BagValue, R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        self.store().with(f)
    }

    /// Changes the stored value of type `T` in place (starting from `T::default()` if there
    /// is none), atomically with respect to other steps of the run, and returns what `f`
    /// returns.
    ///
    /// The bag is locked while `f` runs: do not touch the bag from `f`.
    pub fn update<T: BagValue + Default, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.store().update(f, |value| self.record(Some(value)))
    }

    /// Removes and returns the stored value of type `T`.
    pub fn take<T: BagValue>(&self) -> Option<T> {
        let taken = self.store().take::<T>();
        if taken.is_some() {
            self.record::<T>(None);
        }
        taken
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: BagValue>(&self) -> bool {
        self.store().with(|v: Option<&T>| v.is_some())
    }

    /// Journals a write by a step, a hook handler or a compensation of a run that records
    /// data (it has a store): `Some` the new value, `None` taken out.
    fn record<T: Serialize>(&self, value: Option<&T>) {
        if self.writer == Writer::Body || !self.run.records_data() {
            return;
        }
        let value = match value {
            Some(value) => {
                let what = || format!("the bag value `{}`", std::any::type_name::<T>());
                match self.run.record_json(value, what) {
                    Some(json) => Some(json),
                    // Cannot be recorded: the run halts, to be parked with the reason.
                    None => return,
                }
            }
            None => None,
        };
        let (step, handler, compensation) = self.writer.journal_fields();
        self.run.record(EventKind::BagWritten {
            key: std::any::type_name::<T>().into(),
            change: Box::new(BagChange {
                value,
                step,
                handler,
                compensation,
            }),
        });
    }
}

impl std::fmt::Debug for Bag<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bag")
            .field("values", &self.store().len())
            .finish()
    }
}
