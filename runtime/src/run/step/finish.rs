//! How a step finishes: what the journal recalls of a step that ended before its run was
//! resumed, how its attempt settles, what is journaled and committed.

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Attempt, Ended, JournalError, Mode, RebuildFn, RecordedError, StepRun};
use crate::context::{CompensateFn, Compensation, Halt, action};
use crate::journal::{EventKind, StepFailure};
use crate::run::commit::{commit_or_halt, defer_commit};
use crate::run::halt::halted;
use crate::types::{
    BestEffortFailure, Fault, Key, RecordedJson, ReplayError, StepResponse, ToRecord, message,
};

impl StepRun<'_> {
    /// Finishes a step that has a compensation: journals it and, on success, pushes the
    /// compensation with its data. A panic goes on unwinding once recorded.
    pub async fn finish<O, C, E, F>(
        &mut self,
        attempt: Attempt<StepResponse<O, C>, E>,
        compensate: F,
    ) -> Result<O, E>
    where
        O: Serialize + DeserializeOwned + ToRecord,
        C: Serialize + DeserializeOwned + ToRecord + Send + 'static,
        E: JournalError,
        F: for<'a> CompensateFn<'a, C> + Clone,
    {
        // What was recalled is gone before the step awaits anything.
        let halt = match self.recall::<O, C>(true) {
            Recalled::Completed(output, data) => {
                if let Some(data) = data {
                    let compensation = self.compensation(data, compensate);
                    self.run().state.lock().compensations.push(compensation);
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
                        run.recorded_json(&output, || format!("the output of step `{name}`"));
                    let data = run
                        .recorded_json(&data, || format!("the compensation data of step `{name}`"));
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
                    let mut state = run.state.lock();
                    run.push(
                        &mut state,
                        EventKind::StepCompleted {
                            step: self.meta.name().into(),
                            position: self.ctx.position,
                            compensable: true,
                            output: output_json.map(Box::new),
                            compensation: data_json.map(Box::new),
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
        if output.is_ok() && self.deferrable() {
            // Rides on the run's next commit, made before anything with effects runs.
            defer_commit(self.run());
        } else {
            // A recorded error is committed before the body sees it.
            self.commit().await;
        }
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
                self.run()
                    .state
                    .lock()
                    .extra()
                    .best_effort_failures
                    .push(failure);
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
            meta: self.meta,
            position: self.ctx.position,
            key: self.key(),
            frame: self.frame,
            action: action(data, compensate),
        }
    }

    /// Commits the step's completion before the workflow goes on; if the store fails, the
    /// run stops here, to be resumed.
    async fn commit(&self) {
        commit_or_halt(self.run()).await;
    }

    /// Whether the step's completion may ride on the run's next commit: a step of the body's
    /// own sequence, which nothing of the run runs beside. A step in a `parallel!` branch is
    /// committed at once: its siblings may still be running, with effects of their own.
    #[inline]
    fn deferrable(&self) -> bool {
        matches!(self.key(), Key::Top(_))
    }

    /// A recorded value; `None`, with the run halted to be parked, when it no longer fits
    /// its type.
    fn recorded<T: DeserializeOwned>(&self, value: Option<&RecordedJson>) -> Option<T> {
        match serde_json::from_str(value.map_or("null", RecordedJson::get)) {
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
        O: Serialize + DeserializeOwned + ToRecord,
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
        if output.is_ok() && self.deferrable() {
            // Rides on the run's next commit, made before anything with effects runs.
            defer_commit(self.run());
        } else {
            // A recorded error is committed before the body sees it.
            self.commit().await;
        }
        output.map_err(|err| *err)
    }

    /// Finishes a best-effort step: a failure (an error, a timeout, a panic) is recorded and
    /// the workflow goes on with `None`.
    pub async fn finish_best_effort<O, E>(&mut self, attempt: Attempt<O, E>) -> Option<O>
    where
        O: Serialize + DeserializeOwned + ToRecord,
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
                if self.deferrable() {
                    defer_commit(self.run());
                } else {
                    self.commit().await;
                }
                return Some(output);
            }
            Attempt::Replayed | Attempt::Failed(..) | Attempt::Halted => {
                self.not_run();
                return halted().await;
            }
            Attempt::Err(err) => (message(&err), false),
            Attempt::Panicked(panic) => (panic.message(), true),
            Attempt::Injected(fault) => (fault.message(), false),
        };
        if self.span.is_disabled() {
            // The step's span is DEBUG: at INFO the warning names the step itself.
            let (step, position) = (self.ctx.step, self.ctx.position);
            tracing::warn!(step, position, %error, "hookflow: best-effort step failed; the workflow goes on");
        } else {
            tracing::warn!(parent: &self.span, %error, "hookflow: best-effort step failed; the workflow goes on");
        }
        {
            let run = self.run();
            let mut state = run.state.lock();
            run.push(
                &mut state,
                EventKind::StepFailed {
                    step: self.meta.name().into(),
                    position: self.ctx.position,
                    failure: Box::new(StepFailure {
                        error: error.clone(),
                        panicked,
                        attempts: self.ctx.attempt(),
                        best_effort: true,
                        error_data: None,
                    }),
                },
            );
            state.extra().best_effort_failures.push(BestEffortFailure {
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
    fn completed<O: ToRecord>(&self, output: &O) -> bool {
        let run = self.run();
        let output_json = if run.records_data() {
            let name = self.meta.name();
            let json = run.recorded_json(output, || format!("the output of step `{name}`"));
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
            output: output_json.map(Box::new),
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
            failure: Box::new(StepFailure {
                error,
                panicked,
                attempts: self.ctx.attempt(),
                best_effort: false,
                error_data,
            }),
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
                run.record(failed(message(&err), false, data));
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
                let mut state = run.state.lock();
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
