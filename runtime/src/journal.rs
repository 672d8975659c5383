//! The journal: every run records what happened, in order, as serde-serializable events.
//!
//! The in-memory engine keeps the journal in the run's [`Outcome`](crate::Outcome); a store
//! (a later addition) persists the same events. Step outputs and compensation data are
//! recorded as JSON only when the engine asks for it
//! ([`EngineBuilder::record_data`](crate::EngineBuilder::record_data)): the default path never
//! serializes them.

use std::borrow::Cow;
use std::fmt;
#[cfg(not(unix))]
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::RunId;
use crate::hook::Slot;
use crate::outcome::RunStatus;

/// A name in the journal: `&'static str` when recorded, owned when read back.
pub type Name = Cow<'static, str>;

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the run's journal, from 0.
    pub seq: u32,
    /// Wall-clock time, in microseconds since the Unix epoch.
    pub at_micros: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What a journal [`Event`] records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The run began.
    RunStarted {
        /// The workflow's name.
        workflow: Name,
        /// The run's id.
        run_id: RunId,
    },
    /// A step began. `position` counts the steps of the run from 0, in start order.
    StepStarted {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
    },
    /// A step completed; its compensation (if any) is now on the run's stack.
    StepCompleted {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
        /// Whether the step has a compensation (now on the run's stack).
        #[serde(default)]
        compensable: bool,
        /// The step's output, when the engine records data.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        output: Option<Value>,
        /// The compensation data, when the step has a compensation and the engine records data.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        compensation: Option<Value>,
    },
    /// A step failed (returned an error or panicked). It is not compensated.
    StepFailed {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
        /// The error's message.
        error: String,
        /// Whether the step panicked.
        panicked: bool,
        /// How many attempts were made.
        #[serde(default = "one")]
        attempts: u32,
        /// Whether the step was best-effort: the workflow went on without it.
        #[serde(default)]
        best_effort: bool,
    },
    /// An attempt of a step with `retry(...)` failed with a transient error; the step runs
    /// again after `delay_micros`.
    StepRetrying {
        /// The step's name.
        step: Name,
        /// The step's position in the run.
        position: u32,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Its error.
        error: String,
        /// The delay before the next attempt, in microseconds.
        delay_micros: u64,
    },
    /// A nested workflow began, as one step of its parent.
    NestedStarted {
        /// The nested workflow.
        workflow: Name,
        /// Its compensation frame.
        frame: u32,
    },
    /// A nested workflow ended. If it failed, its completed steps were compensated first.
    NestedEnded {
        /// The nested workflow.
        workflow: Name,
        /// Its compensation frame.
        frame: u32,
        /// Whether it completed.
        completed: bool,
    },
    /// A hook point with at least one handler fired. (A hook with no handler records nothing.)
    HookFired {
        /// The hook's name.
        hook: Name,
        /// How many handlers it has.
        handlers: u32,
    },
    /// A `before` or `after` handler returned successfully.
    HookHandlerCompleted {
        /// The hook's name.
        hook: Name,
        /// The handler's slot.
        slot: Slot,
        /// The handler's name.
        handler: Name,
    },
    /// A hook handler failed (returned an error or panicked).
    HookHandlerFailed {
        /// The hook's name.
        hook: Name,
        /// The handler's slot.
        slot: Slot,
        /// The handler's name.
        handler: Name,
        /// The error's message.
        error: String,
        /// Whether the handler panicked.
        panicked: bool,
    },
    /// A compensation began.
    CompensationStarted {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
        /// The compensation data, when the engine records data.
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        data: Option<Value>,
    },
    /// An attempt of a compensation with `compensate_retry(...)` failed; it runs again
    /// after `delay_micros`.
    CompensationRetrying {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Its error.
        error: String,
        /// The delay before the next attempt, in microseconds.
        delay_micros: u64,
    },
    /// A compensation completed.
    CompensationCompleted {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
    },
    /// A compensation failed (returned an error or panicked). The others still run.
    CompensationFailed {
        /// The compensated step's name.
        step: Name,
        /// The compensated step's position.
        position: u32,
        /// The error's message.
        error: String,
        /// Whether the compensation panicked.
        panicked: bool,
    },
    /// The jobs enqueued by a completed run were handed to the engine's dispatcher (or, if it
    /// has none, listed in the outcome for the application to dispatch).
    JobsDispatched {
        /// How many.
        count: u32,
    },
    /// The jobs enqueued by a failed run were dropped.
    JobsDiscarded {
        /// How many.
        count: u32,
    },
    /// The workflow body failed: compensation begins. A run resumed after this goes on
    /// compensating.
    RunFailed {
        /// Why.
        error: String,
    },
    /// The run was resumed from its journal after an interruption.
    RunResumed,
    /// A worker took the run's lease: the events after this one, up to the next `Claimed`,
    /// were committed under lease generation `fence` (the store refuses the writes of an
    /// older one). Recorded when a durable run starts or resumes.
    Claimed {
        /// The worker (an engine's worker id).
        worker: String,
        /// The lease generation, the fencing token.
        fence: u64,
    },
    /// The run was parked: its journal cannot be replayed (see `ReplayError`).
    RunParked {
        /// Why.
        reason: String,
    },
    /// The run ended.
    RunEnded {
        /// How it ended.
        status: RunStatus,
    },
}

/// A run's events, in the order they happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Journal {
    events: Vec<Event>,
}

impl Journal {
    /// The events, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Iterates over the events' kinds, in order.
    pub fn kinds(&self) -> impl DoubleEndedIterator<Item = &EventKind> + ExactSizeIterator {
        self.events.iter().map(|e| &e.kind)
    }

    /// The number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// A journal holding `events`, as a store returns them.
    pub fn from_events(events: Vec<Event>) -> Self {
        Journal { events }
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.events.reserve(additional);
    }

    pub(crate) fn push(&mut self, kind: EventKind) -> &Event {
        let seq = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        self.events.push(Event {
            seq,
            at_micros: now_micros(),
            kind,
        });
        &self.events[self.events.len() - 1]
    }
}

impl<'a> IntoIterator for &'a Journal {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.events.iter()
    }
}

/// A recorded value, `null` included: only an absent field means "not recorded".
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn one() -> u32 {
    1
}

/// The wall clock in microseconds since the Unix epoch: read for every journal event, so
/// read directly (`SystemTime` adds a checked subtraction and 128-bit arithmetic per call).
#[cfg(unix)]
pub(crate) fn now_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; CLOCK_REALTIME always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000
}

/// The wall clock in microseconds since the Unix epoch.
#[cfg(not(unix))]
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One line per event, as in a trace: `step reserve_inventory #2 completed`.
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::RunStarted { workflow, run_id } => {
                write!(f, "run started: {workflow} ({run_id})")
            }
            EventKind::StepStarted { step, position } => {
                write!(f, "step {step} #{position} started")
            }
            EventKind::StepCompleted {
                step,
                position,
                compensation,
                ..
            } => {
                write!(f, "step {step} #{position} completed")?;
                if let Some(data) = compensation {
                    write!(f, ", undo data {data}")?;
                }
                Ok(())
            }
            EventKind::StepFailed {
                step,
                position,
                error,
                panicked,
                attempts,
                best_effort,
            } => {
                write!(f, "step {step} #{position} FAILED{}", panic_tag(*panicked))?;
                if *attempts > 1 {
                    write!(f, " after {attempts} attempts")?;
                }
                write!(f, ": {error}")?;
                if *best_effort {
                    write!(f, " (best effort: the workflow goes on)")?;
                }
                Ok(())
            }
            EventKind::StepRetrying {
                step,
                position,
                attempt,
                error,
                delay_micros,
            } => write!(
                f,
                "step {step} #{position} attempt {attempt} failed: {error}; retrying in {:.1}ms",
                *delay_micros as f64 / 1000.0
            ),
            EventKind::NestedStarted { workflow, frame } => {
                write!(f, "nested workflow {workflow} (frame {frame}) started")
            }
            EventKind::NestedEnded {
                workflow,
                frame,
                completed,
            } => {
                let how = if *completed {
                    "completed"
                } else {
                    "failed, its steps undone"
                };
                write!(f, "nested workflow {workflow} (frame {frame}) {how}")
            }
            EventKind::HookFired { hook, handlers } => {
                let s = if *handlers == 1 { "" } else { "s" };
                write!(f, "hook {hook} fired ({handlers} handler{s})")
            }
            EventKind::HookHandlerCompleted {
                hook,
                slot,
                handler,
            } => write!(f, "  {hook} <- {handler} [{slot}] ok"),
            EventKind::HookHandlerFailed {
                hook,
                slot,
                handler,
                error,
                panicked,
            } => write!(
                f,
                "  {hook} <- {handler} [{slot}] FAILED{}: {error}",
                panic_tag(*panicked)
            ),
            EventKind::CompensationStarted {
                step,
                position,
                data,
            } => {
                write!(f, "compensate {step} #{position}")?;
                if let Some(data) = data {
                    write!(f, " with {data}")?;
                }
                Ok(())
            }
            EventKind::CompensationRetrying {
                step,
                position,
                attempt,
                error,
                delay_micros,
            } => write!(
                f,
                "compensate {step} #{position} attempt {attempt} failed: {error}; retrying in {:.1}ms",
                *delay_micros as f64 / 1000.0
            ),
            EventKind::CompensationCompleted { step, position } => {
                write!(f, "compensate {step} #{position} done")
            }
            EventKind::CompensationFailed {
                step,
                position,
                error,
                panicked,
            } => write!(
                f,
                "compensate {step} #{position} FAILED{}: {error}",
                panic_tag(*panicked)
            ),
            EventKind::JobsDispatched { count } => write!(f, "{count} job(s) dispatched"),
            EventKind::JobsDiscarded { count } => {
                write!(f, "{count} job(s) discarded (the run failed)")
            }
            EventKind::RunFailed { error } => write!(f, "run failed: {error}; compensating"),
            EventKind::RunResumed => write!(f, "run resumed from its journal"),
            EventKind::Claimed { worker, fence } => {
                write!(f, "claimed by worker {worker} (lease generation {fence})")
            }
            EventKind::RunParked { reason } => write!(f, "run PARKED: {reason}"),
            EventKind::RunEnded { status } => write!(f, "run ended: {status}"),
        }
    }
}

fn panic_tag(panicked: bool) -> &'static str {
    if panicked { " (panic)" } else { "" }
}

/// The journal as a trace, one event a line, with the time since the run started.
///
/// ```text
///   +0.000ms  run started: checkout (0193f1c2-...)
///   +0.004ms  step load_cart #0 started
///   +0.006ms  step load_cart #0 completed
/// ```
impl fmt::Display for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = self.events.first().map_or(0, |e| e.at_micros);
        for event in &self.events {
            let micros = event.at_micros.saturating_sub(start);
            writeln!(
                f,
                "  +{}.{:03}ms  {}",
                micros / 1000,
                micros % 1000,
                event.kind
            )?;
        }
        Ok(())
    }
}

impl Journal {
    /// The workflow the run's `RunStarted` names, for diagram titles.
    fn workflow_name(&self) -> String {
        self.events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::RunStarted { workflow, .. } => Some(workflow.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "workflow".to_owned())
    }

    /// The run as a Mermaid Gantt chart: each step and each compensation as a bar from its
    /// start to its end (failed ones marked critical), on a millisecond time axis.
    ///
    /// ```
    /// # use hookflow_runtime::Journal;
    /// let chart = Journal::default().to_mermaid_gantt();
    /// assert!(chart.starts_with("gantt\n"));
    /// ```
    pub fn to_mermaid_gantt(&self) -> String {
        use std::collections::HashMap;
        use std::fmt::Write as _;

        let mut out = String::from("gantt\n");
        let _ = writeln!(out, "    title {}", gantt_text(&self.workflow_name()));
        out.push_str("    dateFormat x\n    axisFormat %S.%L s\n");
        let mut started: HashMap<u32, (u64, String)> = HashMap::new();
        let mut undo_started: HashMap<u32, (u64, String)> = HashMap::new();
        let (mut steps, mut undos) = (Vec::new(), Vec::new());
        // Whole milliseconds for Mermaid's `x` format, a bar at least 1 ms long.
        let bar = |name: &str, tag: &str, id: String, from: u64, to: u64| {
            let (from, to) = (from / 1000, (to / 1000).max(from / 1000 + 1));
            format!("    {name} :{tag}{id}, {from}, {to}")
        };
        for event in &self.events {
            let at = event.at_micros;
            match &event.kind {
                EventKind::StepStarted { step, position } => {
                    started.insert(*position, (at, gantt_text(step)));
                }
                EventKind::StepCompleted { position, .. }
                | EventKind::StepFailed { position, .. } => {
                    if let Some((from, name)) = started.remove(position) {
                        let tag = if matches!(event.kind, EventKind::StepFailed { .. }) {
                            "crit, "
                        } else {
                            "done, "
                        };
                        let name = format!("{name} ({position})");
                        steps.push(bar(&name, tag, format!("s{position}"), from, at));
                    }
                }
                EventKind::CompensationStarted { step, position, .. } => {
                    undo_started.insert(*position, (at, gantt_text(step)));
                }
                EventKind::CompensationCompleted { position, .. }
                | EventKind::CompensationFailed { position, .. } => {
                    if let Some((from, name)) = undo_started.remove(position) {
                        let tag = if matches!(event.kind, EventKind::CompensationFailed { .. }) {
                            "crit, "
                        } else {
                            ""
                        };
                        let name = format!("undo {name} ({position})");
                        undos.push(bar(&name, tag, format!("u{position}"), from, at));
                    }
                }
                _ => {}
            }
        }
        for (section, bars) in [("steps", steps), ("compensations", undos)] {
            if !bars.is_empty() {
                let _ = writeln!(out, "    section {section}");
                for line in bars {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The run as a Mermaid sequence diagram: the workflow calls its steps and hooks, each
    /// answer labelled with its outcome and duration, then the compensations in the order they
    /// ran. Paste it into any Mermaid renderer (GitHub renders ```mermaid blocks).
    ///
    /// ```
    /// # use hookflow_runtime::Journal;
    /// let diagram = Journal::default().to_mermaid_sequence();
    /// assert!(diagram.starts_with("sequenceDiagram"));
    /// ```
    pub fn to_mermaid_sequence(&self) -> String {
        use std::collections::HashMap;
        use std::fmt::Write as _;

        let mut out = String::from("sequenceDiagram\n");
        let _ = writeln!(
            out,
            "    participant W as {}",
            mermaid_text(&self.workflow_name())
        );
        out.push_str("    participant S as steps\n    participant H as hooks\n");
        let mut started: HashMap<u32, u64> = HashMap::new();
        let mut undo_started: HashMap<u32, u64> = HashMap::new();
        let ms = |micros: u64| format!("{}.{:03} ms", micros / 1000, micros % 1000);
        for event in &self.events {
            let at = event.at_micros;
            let line = match &event.kind {
                EventKind::StepStarted { step, position } => {
                    started.insert(*position, at);
                    format!("W->>S: {} #{position}", mermaid_text(step))
                }
                EventKind::StepCompleted { position, .. } => {
                    let took = at.saturating_sub(started.get(position).copied().unwrap_or(at));
                    format!("S-->>W: #{position} completed ({})", ms(took))
                }
                EventKind::StepFailed {
                    position,
                    error,
                    best_effort,
                    ..
                } => {
                    let took = at.saturating_sub(started.get(position).copied().unwrap_or(at));
                    let tag = if *best_effort { " (best effort)" } else { "" };
                    format!(
                        "S--xW: #{position} FAILED{tag}: {} ({})",
                        mermaid_text(error),
                        ms(took)
                    )
                }
                EventKind::StepRetrying {
                    position, attempt, ..
                } => format!("S-->>S: #{position} attempt {attempt} failed, retrying"),
                EventKind::HookFired { hook, handlers } => {
                    format!("W->>H: {} ({handlers} handlers)", mermaid_text(hook))
                }
                EventKind::HookHandlerCompleted { handler, slot, .. } => {
                    format!("H-->>W: {} [{slot}] ok", mermaid_text(short(handler)))
                }
                EventKind::HookHandlerFailed {
                    handler,
                    slot,
                    error,
                    ..
                } => format!(
                    "H--xW: {} [{slot}] FAILED: {}",
                    mermaid_text(short(handler)),
                    mermaid_text(error)
                ),
                EventKind::RunFailed { error } => {
                    format!("Note over W: failed: {}, compensating", mermaid_text(error))
                }
                EventKind::CompensationStarted { step, position, .. } => {
                    undo_started.insert(*position, at);
                    format!("W->>S: undo {} #{position}", mermaid_text(step))
                }
                EventKind::CompensationCompleted { position, .. } => {
                    let took = at.saturating_sub(undo_started.get(position).copied().unwrap_or(at));
                    format!("S-->>W: #{position} undone ({})", ms(took))
                }
                EventKind::CompensationFailed {
                    position, error, ..
                } => format!("S--xW: undo #{position} FAILED: {}", mermaid_text(error)),
                EventKind::NestedStarted { workflow, .. } => {
                    format!("Note over W: nested {} starts", mermaid_text(workflow))
                }
                EventKind::NestedEnded {
                    workflow,
                    completed,
                    ..
                } => {
                    let how = if *completed { "completed" } else { "failed" };
                    format!("Note over W: nested {} {how}", mermaid_text(workflow))
                }
                EventKind::RunEnded { status } => {
                    let total = self
                        .events
                        .first()
                        .map_or(0, |first| at.saturating_sub(first.at_micros));
                    format!("Note over W: {status} after {}", ms(total))
                }
                EventKind::RunParked { reason } => {
                    format!("Note over W: PARKED: {}", mermaid_text(reason))
                }
                _ => continue,
            };
            let _ = writeln!(out, "    {line}");
        }
        out
    }
}

/// The last path segment of a handler's name (`checkout::validate_minimum_amount` ->
/// `validate_minimum_amount`).
pub(crate) fn short(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// Text that cannot break a Mermaid line: no newlines, no `;` or `#` (entity syntax).
/// A Gantt task or title: no `:` (it ends a task's name), and [`mermaid_text`]'s rules.
fn gantt_text(text: &str) -> String {
    mermaid_text(text).replace(':', " ")
}

fn mermaid_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | ';' | '#' => ' ',
            c => c,
        })
        .collect()
}
