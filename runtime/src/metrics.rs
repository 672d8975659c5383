//! Runtime metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): what runs started and how they ended, per workflow, how long runs and steps
//! take, compensations, hook handler errors, worker claims and store errors.
//!
//! hookflow only emits: install a recorder in the application (for example
//! `metrics-exporter-prometheus`'s), then call [`enable`] once: from then on the runtime
//! reports, and each metric has its help text and unit. Until [`enable`] is called, the
//! feature costs one atomic load per journal event and run (nothing is built, nothing
//! allocated); without the feature, none of this is compiled in.
//!
//! # Where they come from
//!
//! Almost all of them are read from the journal: the runtime passes each event a run records
//! to the module once, as it appends it (the same place for an engine without a store,
//! memory, SQLite and PostgreSQL). Replayed events are never seen again: a resumed run starts
//! from its recorded journal and only its new events come here, so a resumed run is counted
//! as started once. (An event whose commit failed is recorded again by the run's next
//! attempt, as the step it records runs again: it counts again.) Runs in flight are counted
//! by a guard the run's driver holds while it executes, worker claims where a worker claims
//! runs, store errors where the runtime meets them.
//!
//! # Metrics
//!
//! Labels are bounded: `workflow`, `step`, `hook` and `handler` are names from the code,
//! `status`, `operation` and `kind` come from fixed lists. A run id is never a label.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `hookflow_runs_started_total` | counter | `workflow` | runs started (a resumed run is not started again) |
//! | `hookflow_runs_resumed_total` | counter | `workflow` | runs resumed from their journal (after a crash, a wait, a claim by a worker) |
//! | `hookflow_runs_ended_total` | counter | `workflow`, `status` | runs ended: `status` is `completed`, `compensated`, `compensation_failed`, `cancelled` or `parked` |
//! | `hookflow_runs_in_flight` | gauge | `workflow` | runs executing in this process now (a run waiting for an event or a timer holds no task: it is not in flight) |
//! | `hookflow_run_duration_seconds` | histogram | `workflow`, `status` | from the run's start to its end, across resumes (a run that waited a day took a day) |
//! | `hookflow_step_duration_seconds` | histogram | `workflow`, `step`, `status` | each step that ended, from its start to its end (retries included): `status` is `completed` or `failed` |
//! | `hookflow_compensations_total` | counter | `workflow`, `step` | compensations that ran to their end (completed or failed, after their retries) |
//! | `hookflow_compensation_failures_total` | counter | `workflow`, `step` | compensations that failed |
//! | `hookflow_hook_handler_errors_total` | counter | `workflow`, `hook`, `handler` | hook handlers that failed (returned an error or panicked) |
//! | `hookflow_worker_claims_total` | counter | `workflow` | runs a [`Worker`](crate::Worker) claimed to run them |
//! | `hookflow_store_errors_total` | counter | `operation`, `kind` | store calls that failed: `operation` is `commit`, `create`, `claim`, `renew`, `cancel_requests`, `release` or `prune`; `kind` the [`StoreError`] (`unavailable`, `fenced`, `refused`, ...) |
//!
//! Steps and hooks of a nested workflow count under the workflow of the run they are part
//! of. A run refused before it starts (`RunStatus::Rejected`) never started: it is not
//! counted.

use std::sync::atomic::{AtomicBool, Ordering};

use metrics::{
    SharedString, Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram,
};

use crate::journal::{Event, EventKind, Name};
use crate::types::{RunStatus, StoreError};

/// Runs started: counter, label `workflow`.
pub const RUNS_STARTED: &str = "hookflow_runs_started_total";
/// Runs resumed from their journal: counter, label `workflow`.
pub const RUNS_RESUMED: &str = "hookflow_runs_resumed_total";
/// Runs ended: counter, labels `workflow` and `status`.
pub const RUNS_ENDED: &str = "hookflow_runs_ended_total";
/// Runs executing in this process: gauge, label `workflow`.
pub const RUNS_IN_FLIGHT: &str = "hookflow_runs_in_flight";
/// Run durations in seconds, start to end: histogram, labels `workflow` and `status`.
pub const RUN_DURATION: &str = "hookflow_run_duration_seconds";
/// Step durations in seconds: histogram, labels `workflow`, `step` and `status`.
pub const STEP_DURATION: &str = "hookflow_step_duration_seconds";
/// Compensations that ran to their end: counter, labels `workflow` and `step`.
pub const COMPENSATIONS: &str = "hookflow_compensations_total";
/// Compensations that failed: counter, labels `workflow` and `step`.
pub const COMPENSATION_FAILURES: &str = "hookflow_compensation_failures_total";
/// Hook handlers that failed: counter, labels `workflow`, `hook` and `handler`.
pub const HOOK_HANDLER_ERRORS: &str = "hookflow_hook_handler_errors_total";
/// Runs a worker claimed: counter, label `workflow`.
pub const WORKER_CLAIMS: &str = "hookflow_worker_claims_total";
/// Store calls that failed: counter, labels `operation` and `kind`.
pub const STORE_ERRORS: &str = "hookflow_store_errors_total";

/// Whether [`enable`] was called.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns hookflow's metrics on, for the whole process, and describes them ([`describe`]). Call
/// it once after installing the recorder; before it, the runtime reports nothing. Calling it
/// again is harmless; it never fails, and there is no way back.
pub fn enable() {
    describe();
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether the runtime reports metrics ([`enable`] was called).
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Gives every hookflow metric its help text and unit in the current recorder ([`enable`] does
/// it too). Descriptions given before a recorder is installed go to no recorder; calling it
/// again is harmless. It never fails.
pub fn describe() {
    describe_counter!(RUNS_STARTED, Unit::Count, "Runs started");
    describe_counter!(RUNS_RESUMED, Unit::Count, "Runs resumed from their journal");
    describe_counter!(RUNS_ENDED, Unit::Count, "Runs ended, by status");
    describe_gauge!(
        RUNS_IN_FLIGHT,
        Unit::Count,
        "Runs executing in this process"
    );
    describe_histogram!(
        RUN_DURATION,
        Unit::Seconds,
        "Run durations from start to end, across resumes"
    );
    describe_histogram!(STEP_DURATION, Unit::Seconds, "Step durations, by status");
    describe_counter!(
        COMPENSATIONS,
        Unit::Count,
        "Compensations that ran to their end"
    );
    describe_counter!(
        COMPENSATION_FAILURES,
        Unit::Count,
        "Compensations that failed"
    );
    describe_counter!(
        HOOK_HANDLER_ERRORS,
        Unit::Count,
        "Hook handlers that failed"
    );
    describe_counter!(WORKER_CLAIMS, Unit::Count, "Runs claimed by a worker");
    describe_counter!(STORE_ERRORS, Unit::Count, "Store calls that failed");
}

/// Emits the metrics of the event a run just recorded, the last of `events` (the run's
/// journal so far), once metrics are enabled. Called once per new event, never for a replayed
/// one. Never fails: a journal without a start counts under the workflow `unknown`.
#[inline]
pub(crate) fn on_event(events: &[Event]) {
    if is_enabled() {
        emit(events);
    }
}

fn emit(events: &[Event]) {
    let Some(event) = events.last() else {
        return;
    };
    match &event.kind {
        EventKind::RunStarted { workflow, .. } => {
            counter!(RUNS_STARTED, "workflow" => label(workflow)).increment(1);
        }
        EventKind::RunResumed => {
            counter!(RUNS_RESUMED, "workflow" => workflow_of(events)).increment(1);
        }
        EventKind::StepCompleted { step, position, .. } => {
            step_ended(events, event, label(step), *position, "completed");
        }
        EventKind::StepFailed { step, position, .. } => {
            step_ended(events, event, label(step), *position, "failed");
        }
        EventKind::CompensationCompleted { step, .. } => {
            counter!(COMPENSATIONS, "workflow" => workflow_of(events), "step" => label(step))
                .increment(1);
        }
        EventKind::CompensationFailed { step, .. } => {
            let workflow = workflow_of(events);
            counter!(COMPENSATIONS, "workflow" => workflow.clone(), "step" => label(step))
                .increment(1);
            counter!(COMPENSATION_FAILURES, "workflow" => workflow, "step" => label(step))
                .increment(1);
        }
        EventKind::HookHandlerFailed { hook, handler, .. } => {
            counter!(
                HOOK_HANDLER_ERRORS,
                "workflow" => workflow_of(events),
                "hook" => label(hook),
                "handler" => label(handler)
            )
            .increment(1);
        }
        EventKind::RunEnded { status } => run_ended(events, event, status_name(*status)),
        EventKind::RunParked { .. } => run_ended(events, event, "parked"),
        _ => {}
    }
}

/// Counts a run that ended with `status`, and how long it took since it started.
fn run_ended(events: &[Event], end: &Event, status: &'static str) {
    let workflow = workflow_of(events);
    counter!(RUNS_ENDED, "workflow" => workflow.clone(), "status" => status).increment(1);
    if let Some(start) = events.first() {
        histogram!(RUN_DURATION, "workflow" => workflow, "status" => status)
            .record(seconds(start, end));
    }
}

/// Records the duration of step `position`, which ended with `end`: from the last time it
/// started (a step run again after a crash started again).
fn step_ended(
    events: &[Event],
    end: &Event,
    step: SharedString,
    position: u32,
    status: &'static str,
) {
    let started = events
        .iter()
        .rev()
        .find(|e| matches!(&e.kind, EventKind::StepStarted { position: p, .. } if *p == position));
    if let Some(start) = started {
        histogram!(
            STEP_DURATION,
            "workflow" => workflow_of(events),
            "step" => step,
            "status" => status
        )
        .record(seconds(start, end));
    }
}

/// The time from `start` to `end`, in seconds (0 if the clock went back).
fn seconds(start: &Event, end: &Event) -> f64 {
    end.at_micros.saturating_sub(start.at_micros) as f64 / 1e6
}

/// The workflow of the run whose journal is `events`: the one its start names (the first
/// event, or near it for a forked run).
fn workflow_of(events: &[Event]) -> SharedString {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RunStarted { workflow, .. } => Some(label(workflow)),
            _ => None,
        })
        .unwrap_or(SharedString::const_str("unknown"))
}

/// A journal name as a label value: borrowed when it is a `&'static str`.
fn label(name: &Name) -> SharedString {
    match name.as_static() {
        Some(s) => SharedString::const_str(s),
        None => SharedString::from_owned(name.to_string()),
    }
}

/// A run's end status as a label value.
fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Compensated => "compensated",
        RunStatus::CompensationFailed => "compensation_failed",
        RunStatus::Parked => "parked",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Rejected => "rejected",
        RunStatus::Waiting => "waiting",
        RunStatus::Cancelled => "cancelled",
    }
}

/// A run executing in this process, counted in `hookflow_runs_in_flight` from its creation
/// to its drop: whether the run ends, stops (interrupted, suspended, parked) or its future is
/// dropped, the gauge goes back down.
pub(crate) struct InFlight(metrics::Gauge);

impl InFlight {
    /// Counts a run of `workflow` in flight until the returned guard is dropped (once
    /// metrics are enabled: `None` before).
    #[inline]
    pub(crate) fn enter(workflow: &'static str) -> Option<Self> {
        if !is_enabled() {
            return None;
        }
        let gauge = metrics::gauge!(RUNS_IN_FLIGHT, "workflow" => workflow);
        gauge.increment(1.0);
        Some(InFlight(gauge))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Counts a run of `workflow` that a worker claimed to run it.
pub(crate) fn worker_claimed(workflow: &str) {
    if !is_enabled() {
        return;
    }
    counter!(WORKER_CLAIMS, "workflow" => workflow.to_owned()).increment(1);
}

/// Counts a store call that failed: `operation` is what the runtime asked of the store.
pub(crate) fn store_error(operation: &'static str, error: &StoreError) {
    if !is_enabled() {
        return;
    }
    counter!(STORE_ERRORS, "operation" => operation, "kind" => store_error_kind(error))
        .increment(1);
}

/// The kind of a store error, as a label value.
fn store_error_kind(error: &StoreError) -> &'static str {
    match error {
        StoreError::Unavailable { .. } => "unavailable",
        StoreError::Corrupt { .. } => "corrupt",
        StoreError::IncompatibleSchema { .. } => "incompatible_schema",
        StoreError::NotFound(_) => "not_found",
        StoreError::Fenced { .. } => "fenced",
        StoreError::NotAStore { .. } => "not_a_store",
        StoreError::SchemaOutdated { .. } => "schema_outdated",
        StoreError::ReadOnly { .. } => "read_only",
        StoreError::NoAnswer { .. } => "no_answer",
        StoreError::Refused { .. } => "refused",
        _ => "other",
    }
}

/// Counts the failure of a store call, if `result` is one.
pub(crate) fn store_error_of<T>(operation: &'static str, result: &Result<T, StoreError>) {
    if let Err(error) = result {
        store_error(operation, error);
    }
}
