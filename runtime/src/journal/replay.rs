//! Reading a recorded journal back: what it says of each step position, for a resumed run
//! that replays its body.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::{BagChange, Event, EventKind, FiringDetail, WaitOutcome};
use crate::types::{Job, KeyText, RecordedJson};

/// What a resumed run's journal says about each step position and each hook firing.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) steps: HashMap<u32, Recorded>,
    /// The hook firings, by firing index.
    pub(crate) firings: HashMap<u32, RecordedFiring>,
    /// What each step put in the bag (or took out), by position, in order.
    pub(crate) bag_by_step: HashMap<u32, Vec<BagWrite>>,
    /// What each hook handler put in the bag, by (firing, handler), in order.
    pub(crate) bag_by_handler: HashMap<(u32, u32), Vec<BagWrite>>,
    /// What compensations put in the bag, in order.
    pub(crate) bag_by_compensation: Vec<BagWrite>,
    /// The jobs each step enqueued, by position, in order.
    pub(crate) jobs_by_step: HashMap<u32, Vec<Job>>,
    /// The jobs each hook handler enqueued, by (firing, handler), in order.
    pub(crate) jobs_by_handler: HashMap<(u32, u32), Vec<Job>>,
    /// The recorded failure, if the run had failed (or was cancelled) and was compensating.
    pub(crate) failure: Option<String>,
    /// Whether that failure is a cancellation.
    pub(crate) cancelled: bool,
    /// The waits (events and timers), by position.
    pub(crate) waits: HashMap<u32, RecordedWait>,
    /// The messages of each event the run took (received or failed), by their index.
    pub(crate) taken: HashMap<String, BTreeSet<u32>>,
    /// The position of each recorded step, by its key: a number (`Top`) or a path.
    top_steps: HashMap<u32, u32>,
    path_steps: HashMap<Box<str>, u32>,
    /// The index of each recorded hook firing, by its key.
    top_firings: HashMap<u32, u32>,
    path_firings: HashMap<Box<str>, u32>,
    /// Whether the journal records keys. One written before keys existed matched its steps
    /// and firings by the order they started in, and is replayed so.
    keyed: bool,
    /// The first position a step that is not in the journal takes.
    pub(crate) next_position: u32,
    /// The first index a hook firing that is not in the journal takes.
    pub(crate) next_firing: u32,
}

#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) step: String,
    pub(crate) completed: bool,
    pub(crate) output: Option<RecordedJson>,
    pub(crate) compensation: Option<RecordedJson>,
    pub(crate) compensated: bool,
    /// How the step failed, if it did.
    pub(crate) failed: Option<Box<RecordedFailure>>,
}

/// A step's recorded failure (its `StepFailed` event).
#[derive(Debug)]
pub(crate) struct RecordedFailure {
    /// The error's message.
    pub(crate) error: String,
    /// The error's value, if its type is serde and the run recorded it.
    pub(crate) data: Option<Value>,
    pub(crate) panicked: bool,
    pub(crate) best_effort: bool,
    /// A step started after the failure was recorded: the body went on past it.
    pub(crate) went_on: bool,
}

/// A recorded wait: what it waited for, until when, and how it ended, if it did.
#[derive(Debug)]
pub(crate) struct RecordedWait {
    pub(crate) event: Option<String>,
    pub(crate) until_micros: Option<u64>,
    pub(crate) ended: Option<WaitOutcome>,
}

/// A recorded bag write: the value's type name, and its value (`None`: taken out).
pub(crate) type BagWrite = (String, Option<Value>);

/// A recorded hook firing: its handlers, and how each that ran ended.
#[derive(Debug)]
pub(crate) struct RecordedFiring {
    pub(crate) hook: String,
    /// The handlers it had, in run order (empty in journals that did not record them).
    pub(crate) names: Vec<String>,
    /// The handlers that ended, in run order.
    pub(crate) ended: Vec<RecordedHandler>,
}

/// How a recorded hook handler ended.
#[derive(Debug)]
pub(crate) struct RecordedHandler {
    pub(crate) handler: String,
    /// `Ok(data)`: completed, with what a `before` handler returned; `Err((error, panicked))`:
    /// failed.
    pub(crate) outcome: Result<Option<Value>, (String, bool)>,
}

impl Replay {
    pub(crate) fn from_journal(events: &[Event]) -> Self {
        let mut replay = Replay::default();
        // The failures no step has started after yet.
        let mut last_failures: Vec<u32> = Vec::new();
        // What an operator's retry runs again: the compensations that failed, and the hook
        // firings since the run failed (`on_compensation_failed`), which fire anew.
        let mut retry = RetryScope::default();
        for event in events {
            match &event.kind {
                EventKind::StepStarted {
                    step,
                    position,
                    key,
                } => {
                    replay.keyed |= key.is_some();
                    match key
                        .as_deref()
                        .map_or(KeyText::Top(*position), KeyText::parse)
                    {
                        KeyText::Top(n) => replay.top_steps.insert(n, *position),
                        KeyText::Path(path) => replay.path_steps.insert(path.into(), *position),
                    };
                    replay.next_position = replay.next_position.max(position.saturating_add(1));
                    for failed in last_failures.drain(..) {
                        if let Some(f) = replay
                            .steps
                            .get_mut(&failed)
                            .and_then(|r| r.failed.as_mut())
                        {
                            f.went_on = true;
                        }
                    }
                    replay.steps.insert(
                        *position,
                        Recorded {
                            step: step.to_string(),
                            completed: false,
                            output: None,
                            compensation: None,
                            compensated: false,
                            failed: None,
                        },
                    );
                }
                EventKind::StepCompleted {
                    position,
                    output,
                    compensation,
                    ..
                } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.completed = true;
                        r.output = output.as_deref().cloned();
                        r.compensation = compensation.as_deref().cloned();
                    }
                }
                EventKind::StepFailed {
                    position, failure, ..
                } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.failed = Some(Box::new(RecordedFailure {
                            error: failure.error.clone(),
                            data: failure.error_data.clone(),
                            panicked: failure.panicked,
                            best_effort: failure.best_effort,
                            went_on: false,
                        }));
                        last_failures.push(*position);
                    }
                }
                EventKind::CompensationCompleted { position, .. }
                | EventKind::CompensationFailed { position, .. } => {
                    if let Some(r) = replay.steps.get_mut(position) {
                        r.compensated = true;
                    }
                    retry.compensation_ended(&event.kind);
                }
                EventKind::HookFired {
                    hook,
                    firing,
                    detail,
                    ..
                } => {
                    let (names, key) = match detail.as_deref() {
                        Some(FiringDetail { names, key }) => (&names[..], key),
                        None => (&[][..], &None),
                    };
                    replay.keyed |= key.is_some();
                    match key.as_deref().map_or(KeyText::Top(*firing), KeyText::parse) {
                        KeyText::Top(n) => replay.top_firings.insert(n, *firing),
                        KeyText::Path(path) => replay.path_firings.insert(path.into(), *firing),
                    };
                    replay.next_firing = replay.next_firing.max(firing.saturating_add(1));
                    if replay.failure.is_some() {
                        retry.firings.push(*firing);
                    }
                    replay.firings.insert(
                        *firing,
                        RecordedFiring {
                            hook: hook.to_string(),
                            names: names.iter().map(ToString::to_string).collect(),
                            ended: Vec::new(),
                        },
                    );
                }
                EventKind::HookHandlerCompleted {
                    handler,
                    firing,
                    data,
                    ..
                } => {
                    if let Some(f) = replay.firings.get_mut(firing) {
                        f.ended.push(RecordedHandler {
                            handler: handler.to_string(),
                            outcome: Ok(data.as_deref().cloned()),
                        });
                    }
                }
                EventKind::HookHandlerFailed {
                    handler, failure, ..
                } => {
                    if let Some(f) = replay.firings.get_mut(&failure.firing) {
                        f.ended.push(RecordedHandler {
                            handler: handler.to_string(),
                            outcome: Err((failure.error.clone(), failure.panicked)),
                        });
                    }
                }
                EventKind::BagWritten { key, change } => {
                    let BagChange {
                        value,
                        step,
                        handler,
                        compensation,
                    } = &**change;
                    let write = (key.to_string(), value.clone());
                    match (step, handler, compensation) {
                        (Some(position), _, _) => {
                            replay.bag_by_step.entry(*position).or_default().push(write);
                        }
                        (_, Some(handler), _) => {
                            replay
                                .bag_by_handler
                                .entry(*handler)
                                .or_default()
                                .push(write);
                        }
                        (_, _, Some(_)) => replay.bag_by_compensation.push(write),
                        _ => {}
                    }
                }
                EventKind::JobEnqueued { job, step, handler } => match (step, handler) {
                    (Some(position), _) => {
                        replay
                            .jobs_by_step
                            .entry(*position)
                            .or_default()
                            .push(Job::clone(job));
                    }
                    (_, Some(handler)) => {
                        replay
                            .jobs_by_handler
                            .entry(*handler)
                            .or_default()
                            .push(Job::clone(job));
                    }
                    _ => {}
                },
                EventKind::RunFailed { error } => replay.failure = Some(error.clone()),
                EventKind::RunCancelled { reason, .. } => {
                    replay.failure = Some(format!("cancelled: {reason}"));
                    replay.cancelled = true;
                }
                EventKind::WaitStarted {
                    position,
                    key,
                    wait,
                } => {
                    replay.keyed |= key.is_some();
                    match key
                        .as_deref()
                        .map_or(KeyText::Top(*position), KeyText::parse)
                    {
                        KeyText::Top(n) => replay.top_steps.insert(n, *position),
                        KeyText::Path(path) => replay.path_steps.insert(path.into(), *position),
                    };
                    replay.next_position = replay.next_position.max(position.saturating_add(1));
                    replay.waits.insert(
                        *position,
                        RecordedWait {
                            event: wait.event.as_deref().map(str::to_owned),
                            until_micros: wait.until_micros,
                            ended: None,
                        },
                    );
                }
                EventKind::WaitEnded { position, outcome } => {
                    if let Some(wait) = replay.waits.get_mut(position) {
                        if let (
                            Some(event),
                            WaitOutcome::Received { message, .. }
                            | WaitOutcome::Failed { message, .. },
                        ) = (&wait.event, &**outcome)
                        {
                            replay
                                .taken
                                .entry(event.clone())
                                .or_default()
                                .insert(*message);
                        }
                        wait.ended = Some((**outcome).clone());
                    }
                }
                EventKind::RetryRequested { .. } => retry.apply(&mut replay),
                _ => {}
            }
        }
        if !replay.keyed {
            // Steps and firings take positions in the order they start, from 0, as they
            // did when the journal was written.
            replay.next_position = 0;
            replay.next_firing = 0;
        }
        replay
    }

    /// Forgets the hook firings at `indices`: the body fires them anew, at new indices.
    fn forget_firings(&mut self, indices: &[u32]) {
        for index in indices {
            self.firings.remove(index);
        }
        self.top_firings.retain(|_, index| !indices.contains(index));
        self.path_firings
            .retain(|_, index| !indices.contains(index));
    }

    /// The recorded position of the step at `key`, if the journal has it. A journal without
    /// keys answers `None`: its steps take positions in start order.
    pub(crate) fn position(&self, key: KeyText<'_>) -> Option<u32> {
        if !self.keyed {
            return None;
        }
        match key {
            KeyText::Top(n) => self.top_steps.get(&n).copied(),
            KeyText::Path(path) => self.path_steps.get(path).copied(),
        }
    }

    /// The recorded index of the hook firing at `key`, if the journal has it.
    pub(crate) fn firing(&self, key: KeyText<'_>) -> Option<u32> {
        if !self.keyed {
            return None;
        }
        match key {
            KeyText::Top(n) => self.top_firings.get(&n).copied(),
            KeyText::Path(path) => self.path_firings.get(path).copied(),
        }
    }
}

/// What an operator's retry ([`EventKind::RetryRequested`]) undoes of the journal before it,
/// for the replay after it: the compensations that failed are not compensated (they run
/// again; those that completed stay done), and the hook firings since the run failed (its
/// `on_compensation_failed`) fire again if the compensations fail again.
#[derive(Debug, Default)]
struct RetryScope {
    /// The positions whose compensation failed (and has not completed since).
    failed: Vec<u32>,
    /// The hook firings recorded since the run failed.
    firings: Vec<u32>,
}

impl RetryScope {
    fn compensation_ended(&mut self, kind: &EventKind) {
        match kind {
            EventKind::CompensationFailed { position, .. } if !self.failed.contains(position) => {
                self.failed.push(*position);
            }
            EventKind::CompensationCompleted { position, .. } => {
                self.failed.retain(|p| p != position);
            }
            _ => {}
        }
    }

    fn apply(&mut self, replay: &mut Replay) {
        for position in self.failed.drain(..) {
            if let Some(r) = replay.steps.get_mut(&position) {
                r.compensated = false;
            }
        }
        replay.forget_firings(&self.firings);
        self.firings.clear();
    }
}
