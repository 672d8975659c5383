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

use super::commit::commit;
use crate::context::{
    CompensateFn, Compensation, Halt, RunShared, StepContext, WorkflowContext, Writer, action,
};
use crate::journal::EventKind;
use crate::types::{
    BestEffortFailure, CatchUnwind, Fault, Panic, ReplayError, StepMeta, StepResponse, StepTimeout,
    lock, to_json,
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
    /// The run stopped before the step could run: it never will.
    Halted,
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
}

enum Mode {
    Run,
    /// The step completed before the run was resumed.
    Replayed(Box<Replayed>),
    /// The run stopped at (or before) this step.
    Halted,
}

struct Replayed {
    output: Option<serde_json::Value>,
    compensation: Option<serde_json::Value>,
    compensated: bool,
}

impl StepRun {
    /// Journals the step's start and makes its context. A step of a resumed run looks in the
    /// journal first: a completed step replays its output; a step that does not match the
    /// journal, or that a run resumed while compensating never got past, halts the run.
    pub fn start(wf: &WorkflowContext, meta: &'static StepMeta) -> Self {
        let run = wf.shared();
        let name = meta.name();
        let position = run.next_position();
        let mode = if run.is_halted() {
            Mode::Halted
        } else {
            match run.replay().map(|r| (r.steps.get(&position), &r.failure)) {
                Some((Some(recorded), _)) if recorded.step != name => {
                    run.halt(Halt::Replay(ReplayError::Mismatch {
                        position,
                        recorded: recorded.step.clone(),
                        called: name.to_owned(),
                    }));
                    Mode::Halted
                }
                Some((Some(recorded), _)) if recorded.completed => {
                    Mode::Replayed(Box::new(Replayed {
                        output: recorded.output.clone(),
                        compensation: recorded.compensation.clone(),
                        compensated: recorded.compensated,
                    }))
                }
                // A run that was compensating has replayed up to where it failed: this step
                // failed (or was never reached).
                Some((_, Some(failure))) => {
                    run.halt(Halt::Failed(failure.clone()));
                    Mode::Halted
                }
                // The step was in flight: it runs again (its start is in the journal already).
                Some((Some(_), None)) => Mode::Run,
                Some((None, None)) | None => {
                    run.record(EventKind::StepStarted {
                        step: name.into(),
                        position,
                    });
                    Mode::Run
                }
            }
        };
        StepRun {
            mode,
            ctx: StepContext {
                rc: wf.rc.writing_as(Writer::Step(position)),
                step: name,
                position,
                attempt: AtomicU32::new(1),
                compensating: false,
            },
            meta,
            frame: wf.frame,
            span: tracing::info_span!("step", step = name, position, attempt = 1u32),
        }
    }

    /// The context to hand to the step's body.
    pub fn context(&self) -> &StepContext {
        &self.ctx
    }

    fn run(&self) -> &RunShared {
        &self.ctx.rc.run
    }

    /// What a step that does not run reports instead of an attempt.
    fn skipped<T, E>(&self) -> Option<Attempt<T, E>> {
        match self.mode {
            Mode::Run => None,
            Mode::Replayed(_) => Some(Attempt::Replayed),
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

    async fn attempt<T, E, Fut>(
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
        E: Display,
        F: for<'a> CompensateFn<'a, C> + Clone,
    {
        if let Some(replayed) = self.take_replayed() {
            let Some(output) = self.recorded::<O>(replayed.output.as_ref()) else {
                return halted().await;
            };
            if !replayed.compensated {
                let Some(data) = self.recorded::<C>(replayed.compensation.as_ref()) else {
                    return halted().await;
                };
                let compensation = self.compensation(data, compensate);
                lock(&self.run().state).compensations.push(compensation);
            }
            return Ok(output);
        }
        let response = match self.settle(attempt) {
            Settled::Ok(response) => response,
            Settled::Err(err) => return Err(err),
            Settled::Halted => return halted().await,
        };
        let (output, data) = response.into_parts();
        let run = self.run();
        let (output_json, data_json) = if run.records_data() {
            (to_json(&output), to_json(&data))
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
        self.commit().await;
        Ok(output)
    }

    /// What the journal recorded of this step, if it completed before the run was resumed;
    /// the bag gets back what the step put in it, and the run the jobs it enqueued.
    fn take_replayed(&mut self) -> Option<Box<Replayed>> {
        if !matches!(self.mode, Mode::Replayed(_)) {
            return None;
        }
        match std::mem::replace(&mut self.mode, Mode::Run) {
            Mode::Replayed(replayed) => {
                let run = self.run();
                if let Some(replay) = run.replay() {
                    let position = self.ctx.position;
                    for (key, value) in replay.bag_by_step.get(&position).into_iter().flatten() {
                        run.bag.restore(key, value.clone());
                    }
                    if let Some(jobs) = replay.jobs_by_step.get(&position) {
                        lock(&run.state).jobs.extend(jobs.iter().cloned());
                    }
                }
                Some(replayed)
            }
            mode => {
                self.mode = mode;
                None
            }
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
            frame: self.frame,
            retry: self.meta.compensate_retry().copied(),
            action: action(data, compensate),
        }
    }

    /// Commits the step's completion before the workflow goes on; if the store fails, the
    /// run stops here, to be resumed.
    async fn commit(&self) {
        if let Err(err) = commit(self.run(), None).await {
            self.run().halt(Halt::Store(err));
            halted::<()>().await;
        }
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
        E: Display,
    {
        if let Some(replayed) = self.take_replayed() {
            return match self.recorded(replayed.output.as_ref()) {
                Some(output) => Ok(output),
                None => halted().await,
            };
        }
        let output = match self.settle(attempt) {
            Settled::Ok(output) => output,
            Settled::Err(err) => return Err(err),
            Settled::Halted => return halted().await,
        };
        self.completed(&output);
        self.commit().await;
        Ok(output)
    }

    /// Finishes a best-effort step: a failure (an error, a timeout, a panic) is recorded and
    /// the workflow goes on with `None`.
    pub async fn finish_best_effort<O, E>(&mut self, attempt: Attempt<O, E>) -> Option<O>
    where
        O: Serialize + DeserializeOwned,
        E: Display,
    {
        if let Some(replayed) = self.take_replayed() {
            return match self.recorded(replayed.output.as_ref()) {
                Some(output) => Some(output),
                None => halted().await,
            };
        }
        let (error, panicked) = match attempt {
            Attempt::Ok(output) => {
                self.completed(&output);
                self.commit().await;
                return Some(output);
            }
            Attempt::Replayed | Attempt::Halted => {
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

    fn completed<O: Serialize>(&self, output: &O) {
        let run = self.run();
        let output_json = if run.records_data() {
            to_json(output)
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
    /// `parallel!` finish, then the run fails).
    fn settle<T, E: Display>(&self, attempt: Attempt<T, E>) -> Settled<T, E> {
        let run = self.run();
        let failed = |error: String, panicked: bool| EventKind::StepFailed {
            step: self.meta.name().into(),
            position: self.ctx.position,
            error,
            panicked,
            attempts: self.ctx.attempt(),
            best_effort: false,
        };
        match attempt {
            Attempt::Ok(value) => Settled::Ok(value),
            Attempt::Err(err) => {
                run.record(failed(err.to_string(), false));
                Settled::Err(err)
            }
            Attempt::Replayed | Attempt::Halted => {
                self.not_run();
                Settled::Halted
            }
            Attempt::Injected(fault) => {
                run.record(failed(fault.message(), false));
                self.injected(fault);
                Settled::Halted
            }
            Attempt::Panicked(panic) => {
                let mut state = lock(&run.state);
                run.push(&mut state, failed(panic.message(), true));
                state.panicked_step = Some(self.meta.name());
                drop(state);
                panic.resume()
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

/// How a step's attempt settles.
enum Settled<T, E> {
    Ok(T),
    Err(E),
    /// The run halted: the step waits to be dropped.
    Halted,
}

/// Waits for the run's driver to see its halt and drop the body.
fn halted<T>() -> std::future::Pending<T> {
    std::future::pending()
}
