//! Steps: what `#[step]` generates runs its body through [`StepRun`], which journals it,
//! traces it, captures a panic and pushes its compensation on the run's stack. A step that
//! finds its run must stop (a replay mismatch, a commit the store refused) halts the run
//! ([`super::halt`]) rather than return.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::commit::commit_or_halt;
use super::halt::halted;
use super::transaction::TxContext;
use crate::context::{
    CompensateFn, Compensation, Halt, RunShared, StepContext, WorkflowContext, Writer, action,
};
use crate::journal::{EventKind, Recorded, RecordedFailure};
use crate::types::{
    BestEffortFailure, CatchUnwind, Fault, Key, Panic, ReplayError, StepMeta, StepResponse,
    StepTimeout, lock,
};

/// How one attempt of a step ended.
#[doc(hidden)]
pub enum Attempt<T, E> {
    /// The body returned `Ok`.
    Ok(T),
    /// The body returned `Err`, or ran past its timeout.
    Err(E),
    /// The body panicked.
    Panicked(Panic),
    /// A fault plan made it fail (feature `testing`; without it, no value has this form).
    Injected(Fault),
    /// The step completed before the run was resumed: its recorded output stands.
    Replayed,
    /// The step failed before the run was resumed: its recorded error stands, given back to
    /// the body rebuilt with the function (`None`: the error type is not serde) that the code
    /// `#[step]` generates adds.
    Failed(Box<RecordedError>, Option<RebuildFn<E>>),
    /// The run stopped before the step could run: it never will.
    Halted,
}

/// How the recorded value of a step's error is read back.
#[doc(hidden)]
pub type RebuildFn<E> = fn(serde_json::Value) -> Result<E, serde_json::Error>;

/// The error of a step that failed before its run was resumed, as the journal recorded it.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct RecordedError {
    /// Its message.
    error: String,
    /// Its value, if the step's error type was serde when it was recorded.
    data: Option<serde_json::Value>,
    /// Why it could not be rebuilt, once that was tried.
    problem: Option<String>,
}

impl RecordedError {
    /// The recorded error as a value of the step's error type, with `from_json` (`None`: the
    /// type is not serde); or, when it cannot be rebuilt, itself, saying why.
    ///
    /// # Errors
    /// The recorded error, with the reason, when it cannot be rebuilt.
    fn rebuild<E>(mut self: Box<Self>, from_json: Option<RebuildFn<E>>) -> Result<E, Box<Self>> {
        let problem = match (from_json, self.data.take()) {
            (None, _) => format!(
                "its error type is not Serialize + Deserialize, and the journal holds only its message {:?}",
                self.error
            ),
            (Some(_), None) => format!(
                "the journal holds only its message {:?} (recorded when the error type was not Serialize + Deserialize)",
                self.error
            ),
            (Some(from_json), Some(value)) => match from_json(value) {
                Ok(error) => return Ok(error),
                Err(err) => format!(
                    "the recorded value of {:?} does not match the step's error type: {err}",
                    self.error
                ),
            },
        };
        self.problem = Some(problem);
        Err(self)
    }
}

/// What the journal records of a step's error: its message, and its value as JSON when its
/// type is serde. Used by the code `#[step]` generates.
#[doc(hidden)]
pub trait JournalError: Display {
    /// The error's value as JSON; `None` if its type is not `Serialize + Deserialize` (or it
    /// fails to serialize).
    fn to_json(&self) -> Option<serde_json::Value>;
}

/// One execution of a step, from start to finish. Used by the code `#[step]` generates.
#[doc(hidden)]
pub struct StepRun {
    ctx: StepContext,
    meta: &'static StepMeta,
    frame: u32,
    span: tracing::Span,
    /// Whether the step replays a recorded completion, runs, or never runs.
    mode: Mode,
    /// A transactional step's context, with its transaction.
    tx: Option<Box<TxContext>>,
}

enum Mode {
    Run,
    /// The step ended before the run was resumed: it does not run again. (One box for every
    /// way it ended: the mode stays one word.)
    Ended(Box<Ended>),
    /// The run stopped at (or before) this step.
    Halted,
}

/// How a step ended before its run was resumed.
enum Ended {
    /// It completed: its recorded output stands.
    Completed(Replayed),
    /// It failed, and the body went on (or may have): its error is given back.
    Failed(RecordedError),
    /// The best-effort step failed: it returns `None` again.
    BestEffortFailed(BestEffortFailure),
}

impl Ended {
    /// What the step reports instead of an attempt.
    #[cold]
    fn attempt<T, E>(&self) -> Attempt<T, E> {
        match self {
            Ended::Completed(_) | Ended::BestEffortFailed(_) => Attempt::Replayed,
            Ended::Failed(recorded) => Attempt::Failed(Box::new(recorded.clone()), None),
        }
    }
}

struct Replayed {
    output: Option<serde_json::Value>,
    compensation: Option<serde_json::Value>,
    compensated: bool,
}

impl StepRun {
    /// Journals the step's start and makes its context. A step of a resumed run looks in the
    /// journal first: a completed step replays its output; a failed step replays its failure
    /// ([`failed_mode`]); a step that does not match the journal, or that a run resumed
    /// while compensating never got past, halts the run.
    pub fn start(wf: &WorkflowContext, meta: &'static StepMeta) -> Self {
        let run = wf.shared();
        let name = meta.name();
        let key = super::scope::step_key(run);
        let position = run.position_at(key);
        let mode = if run.is_halted() {
            Mode::Halted
        } else {
            match run.replay().map(|r| (r.steps.get(&position), &r.failure)) {
                // Whatever the journal says happened at this position (completed, failed, in
                // flight), it happened to this step, or the run is parked.
                Some((Some(recorded), _)) if recorded.step != name => {
                    run.halt(Halt::Replay(ReplayError::Mismatch {
                        position,
                        recorded: recorded.step.clone(),
                        called: name.to_owned(),
                    }));
                    Mode::Halted
                }
                Some((Some(recorded), _)) if recorded.completed => {
                    Mode::Ended(Box::new(Ended::Completed(Replayed {
                        output: recorded.output.clone(),
                        compensation: recorded.compensation.clone(),
                        compensated: recorded.compensated,
                    })))
                }
                Some((
                    Some(Recorded {
                        failed: Some(failed),
                        ..
                    }),
                    run_failure,
                )) => failed_mode(run, meta, position, failed, run_failure.as_deref()),
                // A run that was compensating has replayed up to where it failed: this step
                // was never reached (or was in flight when the run failed).
                Some((_, Some(failure))) => {
                    run.halt(Halt::Failed(failure.clone()));
                    Mode::Halted
                }
                // The step was in flight: it runs again (its start is in the journal already),
                // to its end, even when the run is to be cancelled: then it is undone too.
                Some((Some(_), None)) => Mode::Run,
                // A step boundary: a run asked to cancel stops here.
                Some((None, None)) | None if run.durable.is_some() && cancelled(run) => {
                    Mode::Halted
                }
                Some((None, None)) | None => {
                    run.record(EventKind::StepStarted {
                        step: name.into(),
                        position,
                        key: match key {
                            Key::Top(n) if n == position => None,
                            key => run.with_key(key, |k| k.unless_position(position)),
                        },
                    });
                    Mode::Run
                }
            }
        };
        if matches!(mode, Mode::Ended(_)) {
            restore_step_effects(run, position);
        }
        let step_context = || StepContext {
            rc: wf.rc.writing_as(Writer::Step { position, key }),
            step: name,
            position,
            attempt: AtomicU32::new(1),
            compensating: false,
        };
        StepRun {
            mode,
            tx: meta
                .is_transactional()
                .then(|| Box::new(TxContext::new(wf, step_context()))),
            ctx: step_context(),
            meta,
            frame: wf.frame,
            span: tracing::info_span!("step", step = name, position, attempt = 1u32),
        }
    }

    /// The context to hand to the step's body.
    pub fn context(&self) -> &StepContext {
        &self.ctx
    }

    /// The context to hand to a transactional step's body (`#[step(transaction)]`, whose
    /// metadata says so: the same attribute makes both).
    pub fn tx_context(&self) -> &TxContext {
        match &self.tx {
            Some(tx) => tx,
            None => unreachable!("`#[step(transaction)]` makes a transactional step's metadata"),
        }
    }

    fn run(&self) -> &RunShared {
        &self.ctx.rc.run
    }

    /// What a step that does not run reports instead of an attempt.
    #[inline]
    fn skipped<T, E>(&self) -> Option<Attempt<T, E>> {
        match &self.mode {
            Mode::Run => None,
            Mode::Ended(ended) => Some(ended.attempt()),
            Mode::Halted => Some(Attempt::Halted),
        }
    }

    /// Runs one attempt of the body: in the step's span, with its timeout, catching a panic.
    pub async fn execute<T, E, Fut>(
        &self,
        body: Fut,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(skipped) = self.skipped() {
            return skipped;
        }
        self.attempt(1, body, on_timeout).await
    }

    /// Runs the body until it succeeds, fails with a permanent error (`transient` says no),
    /// panics, or the step's retry policy has no attempt left, sleeping between attempts.
    pub async fn execute_retrying<T, E, Fut, F>(
        &self,
        mut body: F,
        transient: Option<fn(&E) -> bool>,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        if let Some(skipped) = self.skipped() {
            return skipped;
        }
        let Some(policy) = self.meta.retry().copied() else {
            return self.attempt(1, body(), on_timeout).await;
        };
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(attempt, body(), on_timeout).await;
            let error = match &outcome {
                Attempt::Err(err) if transient.is_none_or(|t| t(err)) => err.to_string(),
                // Injected failures and timeouts are transient.
                Attempt::Injected(fault) => fault.message(),
                _ => return outcome,
            };
            if attempt >= policy.max_attempts() {
                return outcome;
            }
            let delay = policy.jittered_delay(attempt);
            tracing::debug!(parent: &self.span, attempt, %error, ?delay, "hookflow: retrying step");
            self.run().record(EventKind::StepRetrying {
                step: self.meta.name().into(),
                position: self.ctx.position,
                attempt,
                error,
                delay_micros: u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
            });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One attempt; a transactional step's in a transaction of its own, rolled back unless
    /// the body succeeded (the step's commit commits it).
    async fn attempt<T, E, Fut>(
        &self,
        attempt: u32,
        body: Fut,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let Some(tx) = &self.tx else {
            return self.attempt_body(attempt, body, on_timeout).await;
        };
        tx.attempt.store(attempt, Ordering::Relaxed);
        let run = self.run();
        let prefix = run.with_key(self.key(), |key| {
            format!("{}{key}.{attempt}/", crate::context::TRANSACTION_KEY)
        });
        if let Err(halt) = tx.begin(prefix).await {
            run.halt(halt);
            return Attempt::Halted;
        }
        let outcome = self.attempt_body(attempt, body, on_timeout).await;
        if !matches!(outcome, Attempt::Ok(_)) {
            tx.rollback().await;
        }
        outcome
    }

    /// The step's key (its place in the run's code).
    fn key(&self) -> Key {
        self.ctx
            .rc
            .writer
            .key()
            .unwrap_or(Key::Top(self.ctx.position))
    }

    async fn attempt_body<T, E, Fut>(
        &self,
        attempt: u32,
        body: Fut,
        on_timeout: Option<fn(StepTimeout) -> E>,
    ) -> Attempt<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        self.ctx.attempt.store(attempt, Ordering::Relaxed);
        if attempt > 1 {
            self.span.record("attempt", attempt);
        }
        let timeout = self.meta.timeout();
        let timed_out = |after: Duration| StepTimeout {
            step: self.meta.name(),
            after,
        };
        if let Some(fault) = self.run().env.faults.step(self.meta.name(), attempt) {
            return match (timeout, on_timeout) {
                (Some(after), Some(make)) if fault.is_timeout() => {
                    Attempt::Err(make(timed_out(after)))
                }
                _ if fault.is_panic() => Attempt::Panicked(Panic::new(fault.message())),
                _ => Attempt::Injected(fault),
            };
        }
        let body = CatchUnwind::new(body).instrument(self.span.clone());
        let result = match (timeout, on_timeout) {
            // Boxed: only steps with a timeout carry a timer, not every step's future.
            (Some(after), Some(make)) => match Box::pin(tokio::time::timeout(after, body)).await {
                Ok(result) => result,
                Err(_elapsed) => Ok(Err(make(timed_out(after)))),
            },
            _ => body.await,
        };
        match result {
            Ok(Ok(value)) => Attempt::Ok(value),
            Ok(Err(err)) => Attempt::Err(err),
            Err(panic) => Attempt::Panicked(panic),
        }
    }

    /// Finishes a step that has a compensation: journals it and, on success, pushes the
    /// compensation with its data. A panic goes on unwinding once recorded.
    pub async fn finish<O, C, E, F>(
        &mut self,
        attempt: Attempt<StepResponse<O, C>, E>,
        compensate: F,
    ) -> Result<O, E>
    where
        O: Serialize + DeserializeOwned,
        C: Serialize + DeserializeOwned + Send + 'static,
        E: JournalError,
        F: for<'a> CompensateFn<'a, C> + Clone,
    {
        // What was recalled is gone before the step awaits anything.
        let halt = match self.recall::<O, C>(true) {
            Recalled::Completed(output, data) => {
                if let Some(data) = data {
                    let compensation = self.compensation(data, compensate);
                    lock(&self.run().state).compensations.push(compensation);
                }
                return Ok(output);
            }
            Recalled::Halted => true,
            Recalled::No | Recalled::BestEffortFailed => false,
        };
        if halt {
            return halted().await;
        }
        let output = match self.settle(attempt) {
            Settled::Ok(response) => {
                let (output, data) = response.into_parts();
                let run = self.run();
                let (output_json, data_json) = if run.records_data() {
                    let name = self.meta.name();
                    let output =
                        run.record_json(&output, || format!("the output of step `{name}`"));
                    let data = run
                        .record_json(&data, || format!("the compensation data of step `{name}`"));
                    if run.is_halted() {
                        // Not recorded: the run parks here, the step in flight.
                        return halted().await;
                    }
                    (output, data)
                } else {
                    (None, None)
                };
                let compensation = self.compensation(data, compensate);
                {
                    // One lock for the event and the compensation: they are one fact.
                    let mut state = lock(&run.state);
                    run.push(
                        &mut state,
                        EventKind::StepCompleted {
                            step: self.meta.name().into(),
                            position: self.ctx.position,
                            compensable: true,
                            output: output_json,
                            compensation: data_json,
                        },
                    );
                    state.compensations.push(compensation);
                }
                Ok(output)
            }
            Settled::Err(err) => return Err(err),
            // Boxed: only runs that record data get here, and the others' futures need not
            // hold the error across the commit.
            Settled::Recorded(err) => Err(Box::new(err)),
            Settled::Halted => return halted().await,
        };
        self.commit().await;
        output.map_err(|err| *err)
    }

    /// What the journal says of the step, if it ended before the run was resumed, read at
    /// once (nothing of it is held across an await): its output and, `with_data` and unless
    /// it was compensated, its compensation data. A failure is carried by the attempt
    /// (`Attempt::Failed`) instead.
    #[inline]
    fn recall<O: DeserializeOwned, C: DeserializeOwned>(
        &mut self,
        with_data: bool,
    ) -> Recalled<O, C> {
        if matches!(self.mode, Mode::Ended(_)) {
            self.recall_ended(with_data)
        } else {
            Recalled::No
        }
    }

    #[inline(never)]
    fn recall_ended<O: DeserializeOwned, C: DeserializeOwned>(
        &mut self,
        with_data: bool,
    ) -> Recalled<O, C> {
        let ended = match std::mem::replace(&mut self.mode, Mode::Run) {
            Mode::Ended(ended) => ended,
            mode => {
                self.mode = mode;
                return Recalled::No;
            }
        };
        match *ended {
            Ended::Completed(replayed) => {
                let Some(output) = self.recorded::<O>(replayed.output.as_ref()) else {
                    return Recalled::Halted;
                };
                let data = if with_data && !replayed.compensated {
                    match self.recorded::<C>(replayed.compensation.as_ref()) {
                        Some(data) => Some(data),
                        None => return Recalled::Halted,
                    }
                } else {
                    None
                };
                Recalled::Completed(output, data)
            }
            Ended::BestEffortFailed(failure) => {
                // Reported again in the outcome; the journal has it already.
                lock(&self.run().state).best_effort_failures.push(failure);
                Recalled::BestEffortFailed
            }
            Ended::Failed(_) => Recalled::No,
        }
    }

    fn compensation<C, F>(&self, data: C, compensate: F) -> Compensation
    where
        C: Serialize + DeserializeOwned + Send + 'static,
        F: for<'a> CompensateFn<'a, C> + Clone,
    {
        Compensation {
            step: self.meta.name(),
            position: self.ctx.position,
            key: self.key(),
            frame: self.frame,
            retry: self.meta.compensate_retry().copied(),
            action: action(data, compensate),
        }
    }

    /// Commits the step's completion before the workflow goes on; if the store fails, the
    /// run stops here, to be resumed.
    async fn commit(&self) {
        if let Some(tx) = &self.tx {
            match tx.commit().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(failed) => {
                    self.run().halt(failed.into());
                    return halted().await;
                }
            }
        }
        commit_or_halt(self.run()).await;
    }

    /// A recorded value; `None`, with the run halted to be parked, when it no longer fits
    /// its type.
    fn recorded<T: DeserializeOwned>(&self, value: Option<&serde_json::Value>) -> Option<T> {
        let value = value.cloned().unwrap_or(serde_json::Value::Null);
        match serde_json::from_value(value) {
            Ok(value) => Some(value),
            Err(err) => {
                self.run().halt(Halt::Replay(ReplayError::Corrupt {
                    step: self.meta.name().to_owned(),
                    position: self.ctx.position,
                    message: err.to_string(),
                }));
                None
            }
        }
    }

    /// Finishes a step with nothing to undo.
    pub async fn finish_plain<O, E>(&mut self, attempt: Attempt<O, E>) -> Result<O, E>
    where
        O: Serialize + DeserializeOwned,
        E: JournalError,
    {
        let halt = match self.recall::<O, ()>(false) {
            Recalled::Completed(output, _) => return Ok(output),
            Recalled::Halted => true,
            Recalled::No | Recalled::BestEffortFailed => false,
        };
        if halt {
            return halted().await;
        }
        let output = match self.settle(attempt) {
            Settled::Ok(output) => {
                if !self.completed(&output) {
                    return halted().await;
                }
                Ok(output)
            }
            Settled::Err(err) => return Err(err),
            Settled::Recorded(err) => Err(Box::new(err)),
            Settled::Halted => return halted().await,
        };
        self.commit().await;
        output.map_err(|err| *err)
    }

    /// Finishes a best-effort step: a failure (an error, a timeout, a panic) is recorded and
    /// the workflow goes on with `None`.
    pub async fn finish_best_effort<O, E>(&mut self, attempt: Attempt<O, E>) -> Option<O>
    where
        O: Serialize + DeserializeOwned,
        E: Display,
    {
        let halt = match self.recall::<O, ()>(false) {
            Recalled::Completed(output, _) => return Some(output),
            Recalled::BestEffortFailed => return None,
            Recalled::Halted => true,
            Recalled::No => false,
        };
        if halt {
            return halted().await;
        }
        let (error, panicked) = match attempt {
            Attempt::Ok(output) => {
                if !self.completed(&output) {
                    return halted().await;
                }
                self.commit().await;
                return Some(output);
            }
            Attempt::Replayed | Attempt::Failed(..) | Attempt::Halted => {
                self.not_run();
                return halted().await;
            }
            Attempt::Err(err) => (err.to_string(), false),
            Attempt::Panicked(panic) => (panic.message(), true),
            Attempt::Injected(fault) => (fault.message(), false),
        };
        tracing::warn!(parent: &self.span, %error, "hookflow: best-effort step failed; the workflow goes on");
        {
            let run = self.run();
            let mut state = lock(&run.state);
            run.push(
                &mut state,
                EventKind::StepFailed {
                    step: self.meta.name().into(),
                    position: self.ctx.position,
                    error: error.clone(),
                    panicked,
                    attempts: self.ctx.attempt(),
                    best_effort: true,
                    error_data: None,
                },
            );
            state.best_effort_failures.push(BestEffortFailure {
                step: self.meta.name().to_owned(),
                position: self.ctx.position,
                error,
                panicked,
            });
        }
        self.commit().await;
        None
    }

    /// Records the completion of a step without compensation; `false` when its output
    /// cannot be recorded (the run halts, to be parked there).
    fn completed<O: Serialize>(&self, output: &O) -> bool {
        let run = self.run();
        let output_json = if run.records_data() {
            let name = self.meta.name();
            let json = run.record_json(output, || format!("the output of step `{name}`"));
            if json.is_none() {
                return false;
            }
            json
        } else {
            None
        };
        run.record(EventKind::StepCompleted {
            step: self.meta.name().into(),
            position: self.ctx.position,
            compensable: false,
            output: output_json,
            compensation: None,
        });
        true
    }

    /// A step that did not run: its run halted. `Replayed` attempts are taken before
    /// settling, so an attempt that gets here without a halt is an internal slip, which stops
    /// the run rather than invent a result.
    fn not_run(&self) {
        if !self.run().is_halted() {
            let message = format!(
                "internal: step `{}` #{} was settled without running",
                self.meta.name(),
                self.ctx.position
            );
            self.run().halt(Halt::Failed(message));
        }
    }

    /// Journals a failure and returns the error, or halts the run (the step did not run, or
    /// an injected fault failed it); re-raises a user panic once recorded (its siblings in
    /// `parallel!` finish, then the run fails). A step that failed before the run was resumed
    /// returns its rebuilt error and records nothing, or parks the run if it cannot be rebuilt.
    fn settle<T, E: JournalError>(&self, attempt: Attempt<T, E>) -> Settled<T, E> {
        let run = self.run();
        let failed = |error: String, panicked: bool, error_data| EventKind::StepFailed {
            step: self.meta.name().into(),
            position: self.ctx.position,
            error,
            panicked,
            attempts: self.ctx.attempt(),
            best_effort: false,
            error_data,
        };
        match attempt {
            Attempt::Ok(value) => Settled::Ok(value),
            Attempt::Err(err) => {
                // Only a run that records data serializes the error (never the in-memory path).
                let data = if run.records_data() {
                    err.to_json()
                } else {
                    None
                };
                let replayable = data.is_some();
                run.record(failed(err.to_string(), false, data));
                if replayable {
                    Settled::Recorded(err)
                } else {
                    Settled::Err(err)
                }
            }
            Attempt::Failed(recorded, rebuild) => self.refail(recorded, rebuild),
            Attempt::Replayed | Attempt::Halted => {
                self.not_run();
                Settled::Halted
            }
            Attempt::Injected(fault) => {
                run.record(failed(fault.message(), false, None));
                self.injected(fault);
                Settled::Halted
            }
            Attempt::Panicked(panic) => {
                let mut state = lock(&run.state);
                run.push(&mut state, failed(panic.message(), true, None));
                state.panicked_step = Some(self.meta.name());
                drop(state);
                panic.resume()
            }
        }
    }

    /// A step that failed before the run was resumed: its recorded error, rebuilt, to give
    /// back to the body; or, if it cannot be rebuilt, the run parked rather than run the step
    /// again. Nothing is recorded.
    #[cold]
    #[inline(never)]
    fn refail<T, E>(
        &self,
        recorded: Box<RecordedError>,
        rebuild: Option<RebuildFn<E>>,
    ) -> Settled<T, E> {
        match recorded.rebuild(rebuild) {
            Ok(err) => Settled::Err(err),
            Err(recorded) => {
                let reason = recorded
                    .problem
                    .unwrap_or_else(|| format!("{:?} was not rebuilt", recorded.error));
                self.run()
                    .halt(Halt::Replay(ReplayError::UnreplayableFailure {
                        step: self.meta.name().to_owned(),
                        position: self.ctx.position,
                        reason,
                    }));
                Settled::Halted
            }
        }
    }

    /// An injected failure fails the run at this step, as if its error had been propagated
    /// with `?` (a step's own error type cannot be made from a fault).
    #[cfg(feature = "testing")]
    fn injected(&self, fault: Fault) {
        self.run().halt(Halt::Injected {
            step: self.meta.name(),
            message: fault.message(),
        });
    }

    #[cfg(not(feature = "testing"))]
    fn injected(&self, fault: Fault) {
        match fault {}
    }
}

/// What [`StepRun::recall`] found.
enum Recalled<O, C> {
    /// The step did not end before the run was resumed: its attempt settles.
    No,
    /// It completed: its output and its compensation data, if it is to be pushed.
    Completed(O, Option<C>),
    /// The best-effort step failed: it returns `None` again.
    BestEffortFailed,
    /// A recorded value no longer fits its type: the run is halted.
    Halted,
}

/// How a step's attempt settles.
enum Settled<T, E> {
    Ok(T),
    Err(E),
    /// Failed, with its error's value in the journal: committed before the body sees it, so
    /// that what the body does with it is replayed with the same error.
    Recorded(E),
    /// The run halted: the step waits to be dropped.
    Halted,
}

/// What a step whose position the journal recorded as failed does on replay. It never runs
/// again, and records nothing:
/// - a best-effort step returns `None` again;
/// - a step that panicked fails the run again (a panic is never handled);
/// - a step whose failure ended the run (the run failed, and no step started after the
///   failure), with no recorded value, fails the run there with the run's recorded error:
///   nothing after it needs the body to go on;
/// - any other step gives its recorded error back to the body, rebuilt from its JSON (the
///   error type is serde); when it cannot be rebuilt, the run is parked
///   (`ReplayError::UnreplayableFailure`).
fn failed_mode(
    run: &RunShared,
    meta: &'static StepMeta,
    position: u32,
    failed: &RecordedFailure,
    run_failure: Option<&str>,
) -> Mode {
    if meta.is_best_effort() {
        return Mode::Ended(Box::new(Ended::BestEffortFailed(BestEffortFailure {
            step: meta.name().to_owned(),
            position,
            error: failed.error.clone(),
            panicked: failed.panicked,
        })));
    }
    let ended_run = !failed.best_effort && !failed.went_on;
    match run_failure {
        Some(failure) if failed.panicked || (ended_run && failed.data.is_none()) => {
            run.halt(Halt::Failed(failure.to_owned()));
            Mode::Halted
        }
        None if failed.panicked => {
            run.halt(Halt::Panicked {
                step: meta.name(),
                message: failed.error.clone(),
            });
            Mode::Halted
        }
        _ => Mode::Ended(Box::new(Ended::Failed(RecordedError {
            error: failed.error.clone(),
            data: failed.data.clone(),
            problem: None,
        }))),
    }
}

/// A step that ended before the run was resumed does not run again: the bag gets back what it
/// put there, and the run the jobs it enqueued, from the journal.
#[inline(never)]
/// Whether the run must stop at this step boundary to be cancelled: if so, it is halted.
#[cold]
fn cancelled(run: &RunShared) -> bool {
    match run.cancel_now() {
        Some(request) => {
            run.halt(Halt::Cancelled(Box::new(request)));
            true
        }
        None => false,
    }
}

fn restore_step_effects(run: &RunShared, position: u32) {
    if let Some(replay) = run.replay() {
        let bag = replay.bag_by_step.get(&position);
        super::restore_effects(run, bag, replay.jobs_by_step.get(&position));
    }
}
