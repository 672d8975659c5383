//! One firing of a hook point, under the replay rule: a fresh run records the firing (its
//! index and, with a store, its handlers' names) and how each handler ended (with what a
//! `before` handler returned); a resumed run finds the firing in its journal, checks that the
//! engine has the same handlers, and gives back what each recorded handler did instead of
//! calling it again. A handler whose end was not recorded (it was in flight at the crash)
//! runs again, with the same `ctx.idempotency_key()`.

use std::num::NonZeroU32;

use super::commit::commit_or_halt;
use super::halt::halted;
use crate::context::{Count, Halt, RunShared};
use crate::hook::{HandlerEntry, same_handler};
use crate::journal::{EventKind, FiringDetail, HandlerFailure, RecordedFiring};
use crate::types::{
    BoxError, HookError, HookFailed, Key, KeyText, PanicError, ReplayError, now_micros,
};

/// A hook firing in progress.
pub(super) struct Firing<'a> {
    run: &'a RunShared,
    workflow: &'static str,
    pub(super) hook: &'static str,
    /// Its index among the run's firings.
    pub(super) index: u32,
    /// Where it is in the run's code.
    pub(super) key: Key,
    /// What the journal recorded of it, for a resumed run.
    recorded: Option<&'a RecordedFiring>,
    /// The position its first handler's step takes if no other step starts first, plus
    /// one (the run's next when it was recorded; `None` for a resumed run): four bytes, so
    /// that the firing, held across its handlers' awaits, is no larger.
    first_step: Option<NonZeroU32>,
}

impl<'a> Firing<'a> {
    /// Starts a firing of `hook` with `entries`: records it, or, for a resumed run that
    /// recorded it, checks that the handlers are the ones that ran. `None` when they are not:
    /// the run is halted, to be parked.
    pub(super) fn start<H: ?Sized>(
        run: &'a RunShared,
        workflow: &'static str,
        hook: &'static str,
        entries: &[HandlerEntry<H>],
    ) -> Option<Self> {
        let names = || {
            if run.records_data() {
                entries.iter().map(|e| e.name.into()).collect()
            } else {
                Vec::new()
            }
        };
        let handlers = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let fired = |names, index, key: KeyText<'_>| EventKind::HookFired {
            hook: hook.into(),
            handlers,
            firing: index,
            detail: FiringDetail::of(names, key.unless_position(index)),
        };
        if run.replay().is_none() {
            // A run that replays nothing: the firing's key, index and `HookFired` under one
            // lock.
            let names = names();
            let branch = super::scope::in_branch(run, Count::Firing);
            let (key, index, next_step) =
                run.start_firing(branch, |index, key| fired(names, index, key));
            return Some(Firing {
                run,
                workflow,
                hook,
                index,
                key,
                recorded: None,
                first_step: NonZeroU32::new(next_step.wrapping_add(1)),
            });
        }
        let key = super::scope::in_branch(run, Count::Firing)
            .unwrap_or_else(|| Key::Top(run.top(Count::Firing)));
        let index = run.firing_at(key);
        let recorded = run.replay().and_then(|r| r.firings.get(&index));
        let firing = Firing {
            run,
            workflow,
            hook,
            index,
            key,
            recorded,
            first_step: None,
        };
        match recorded {
            None => {
                let names = names();
                run.record(run.with_key(key, |k| fired(names, index, k)));
                Some(firing)
            }
            Some(recorded) => {
                let now: Vec<&str> = entries.iter().map(|e| e.name).collect();
                // The handlers recorded for this firing, or (in a journal that did not list
                // them) the ones that ended.
                let before: Vec<&str> = if recorded.names.is_empty() {
                    recorded.ended.iter().map(|h| h.handler.as_str()).collect()
                } else {
                    recorded.names.iter().map(String::as_str).collect()
                };
                // A name recorded by an older build is the function's full path.
                let same_names = |now: &[&str]| {
                    now.len() == before.len()
                        && now.iter().zip(&before).all(|(n, b)| same_handler(b, n))
                };
                let same = recorded.hook == hook
                    && if recorded.names.is_empty() {
                        now.len() >= before.len() && same_names(&now[..before.len()])
                    } else {
                        same_names(&now)
                    };
                if same {
                    return Some(firing);
                }
                run.halt(Halt::Replay(ReplayError::HandlersChanged {
                    hook: hook.to_owned(),
                    firing: index,
                    recorded: before.iter().map(|s| (*s).to_owned()).collect(),
                    now: now.iter().map(|s| (*s).to_owned()).collect(),
                }));
                None
            }
        }
    }

    /// How handler `i` ended, if the journal recorded it: `Ok(data)` or `Err((error,
    /// panicked))`. A handler that is not called again because of it has its bag writes
    /// restored with [`Firing::restore_bag`].
    #[allow(clippy::type_complexity)] // the recorded outcome, as the journal keeps it
    pub(super) fn recorded(
        &self,
        i: usize,
    ) -> Option<&'a Result<Option<serde_json::Value>, (String, bool)>> {
        self.recorded?.ended.get(i).map(|h| &h.outcome)
    }

    /// Commits what the firing's handlers did so far, before the body goes on: a handler
    /// whose end is committed does not run again on resume (one in flight at a crash does,
    /// with the same idempotency key, as a step does). If the store fails, the run halts.
    pub(super) async fn commit(&self) {
        commit_or_halt(self.run).await;
    }

    /// Puts back in the bag what handler `i` put there before the run was resumed, and in
    /// the run the jobs it enqueued.
    pub(super) fn restore_bag(&self, i: usize) {
        let Some(replay) = self.run.replay() else {
            return;
        };
        let key = (self.index, u32::try_from(i).unwrap_or(u32::MAX));
        let bag = replay.bag_by_handler.get(&key);
        super::restore_effects(self.run, bag, replay.jobs_by_handler.get(&key));
    }

    /// Records that handler `i` completed (with what a `before` handler returned), unless
    /// the journal has it already.
    pub(super) fn completed<H: ?Sized>(
        &self,
        i: usize,
        entry: &HandlerEntry<H>,
        data: Option<serde_json::Value>,
    ) {
        if self.recorded(i).is_some() {
            return;
        }
        self.run.record(EventKind::HookHandlerCompleted {
            hook: self.hook.into(),
            slot: entry.slot,
            handler: entry.name.into(),
            firing: self.index,
            data: data.map(Box::new),
        });
    }

    /// Records that handler `i` of a step hook, a step, completed. In a run without a store
    /// nothing awaits after a step recorded its completion (its commits are no-ops), and no
    /// user code runs there either (what follows a step's `StepCompleted` is the runtime's:
    /// the step's return, the handler's wrapper, this). So the first handler's end is
    /// recorded at the time its step's completion was: the journal's last event, when that
    /// is the completion of the step at the position the handler's step took. One clock
    /// reading fewer a firing.
    pub(super) fn completed_step<H: ?Sized>(&self, i: usize, entry: &HandlerEntry<H>) {
        if self.recorded(i).is_some() {
            return;
        }
        let kind = EventKind::HookHandlerCompleted {
            hook: self.hook.into(),
            slot: entry.slot,
            handler: entry.name.into(),
            firing: self.index,
            data: None,
        };
        let run = self.run;
        let mut state = run.state.lock();
        let step_ended = match (state.journal.events().last(), self.first_step) {
            (Some(last), Some(first)) if i == 0 && run.durable.is_none() => match last.kind {
                EventKind::StepCompleted { position, .. } if position == first.get() - 1 => {
                    Some(last.at_micros)
                }
                _ => None,
            },
            _ => None,
        };
        let at = step_ended.unwrap_or_else(now_micros);
        run.push_at(&mut state, kind, at);
    }

    /// Records that handler `i` failed (unless the journal has it already) and makes the
    /// error that reports it.
    pub(super) fn failed<H: ?Sized>(
        &self,
        i: usize,
        entry: &HandlerEntry<H>,
        outcome: Result<BoxError, PanicError>,
    ) -> HookError {
        let (source, panicked): (BoxError, bool) = match outcome {
            Ok(err) => (err, false),
            Err(panic) => (Box::new(panic), true),
        };
        if self.recorded(i).is_none() {
            self.run.record(EventKind::HookHandlerFailed {
                hook: self.hook.into(),
                slot: entry.slot,
                handler: entry.name.into(),
                failure: Box::new(HandlerFailure {
                    error: source.to_string(),
                    panicked,
                    firing: self.index,
                }),
            });
        }
        self.error(entry, source)
    }

    /// The error of a handler whose failure the journal recorded: its message (a panic stays
    /// a panic), without running it again.
    pub(super) fn replayed_failure<H: ?Sized>(
        &self,
        entry: &HandlerEntry<H>,
        error: &str,
        panicked: bool,
    ) -> HookError {
        let source: BoxError = if panicked {
            let message = error.strip_prefix("panicked: ").unwrap_or(error);
            Box::new(PanicError {
                message: message.to_owned(),
            })
        } else {
            error.to_owned().into()
        };
        self.error(entry, source)
    }

    fn error<H: ?Sized>(&self, entry: &HandlerEntry<H>, source: BoxError) -> HookError {
        HookFailed {
            workflow: self.workflow,
            hook: self.hook,
            slot: entry.slot,
            handler: entry.name,
            source,
        }
        .into()
    }

    /// Parks the run: what a `before` handler returned no longer reads as the hook's data.
    pub(super) async fn corrupt<H: ?Sized, T>(
        &self,
        entry: &HandlerEntry<H>,
        message: String,
    ) -> T {
        self.run.halt(Halt::Replay(ReplayError::Corrupt {
            step: format!("{} <- {}", self.hook, entry.name),
            position: self.index,
            message,
        }));
        halted().await
    }
}
