//! The `hookflow` command: list, show, draw, resume and prune the runs in a hookflow store (SQLite
//! or PostgreSQL).
//!
//! ```text
//! hookflow --db runs.db runs --status compensated
//! hookflow --db postgres://hookflow@db/hookflow show 01938c1e-...
//! hookflow --db runs.db diagram 01938c1e-...
//! hookflow --db runs.db resume 01938c1e-...
//! hookflow --db runs.db prune --older-than 30d
//! hookflow --db runs.db retry 01938c1e-...
//! hookflow --db runs.db fork 01938c1e-... --from-step 2
//! hookflow --db runs.db schedules
//! hookflow --db runs.db serve --bind 127.0.0.1:8080 --token "$TOKEN"
//! ```
//!
//! Looking needs nothing but the store. Resuming runs the workflow's code, which the
//! `hookflow` binary does not have: build an admin binary of your own that registers your
//! workflows (with their hooks and services) and hands the command line to this crate:
//!
//! ```no_run
//! # use hookflow_runtime::EngineBuilder;
//! fn main() -> std::process::ExitCode {
//!     hookflow_cli::Cli::new()
//!         .workflows(|builder: EngineBuilder| builder /* .workflow::<Checkout>().service(db) */)
//!         .main()
//! }
//! ```

mod args;
pub mod dashboard;
mod open;
mod render;
mod schedules;

use std::path::PathBuf;

use clap::Parser;
use hookflow_runtime::store::{Cancelling, Lease, fork_run, prune_older_than};
use hookflow_runtime::{Actor, ActorKind, CancelRequest};
use hookflow_runtime::{Engine, EngineBuilder, Journal, ResumeError, RunId, StoreError};
use hookflow_runtime::{ForkError, Retried, RetryError};

pub use args::{Age, Args, Command, Secret};
pub use open::{open, open_read_only};
pub use render::{duration, runs_table, show, utc};
pub use schedules::schedules_table;

/// What goes wrong, each with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The SQLite file does not exist (its path, with any password hidden: it may have been
    /// meant as a connection string).
    #[error(
        "no database at {}: give the SQLite file an engine writes to, or a postgres:// URL",
        .0.display()
    )]
    NoDatabase(PathBuf),
    /// What `--db` names is not a hookflow store: nothing was written to it.
    #[error("{db} is not a hookflow store ({reason}); it was left as it was")]
    NotAStore {
        /// What `--db` said, its password hidden.
        db: String,
        /// What it is instead.
        reason: String,
    },
    /// The store cannot be opened or reached.
    #[error("cannot open the store {db}: {source}")]
    Open {
        /// What `--db` said, its password hidden.
        db: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// No such run in the store.
    #[error("no run {0} in this store (`hookflow runs` lists them)")]
    UnknownRun(RunId),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The run's workflow is not registered here.
    #[error(
        "run {run_id} is a run of workflow `{workflow}` version {version}, which this binary does not know: resume it from an admin binary that registers it (`hookflow_cli::Cli::new().workflows(|b| b.workflow::<YourWorkflow>())`, see the hookflow-cli docs)"
    )]
    UnknownWorkflow {
        /// The run.
        run_id: RunId,
        /// Its workflow.
        workflow: String,
        /// Its version.
        version: u32,
    },
    /// Resuming failed.
    #[error("cannot resume run {run_id}: {source}")]
    Resume {
        /// The run.
        run_id: RunId,
        /// Why.
        #[source]
        source: ResumeError,
    },
    /// The retry was refused (the run did not end compensation_failed) or could not be
    /// recorded.
    #[error(transparent)]
    Retry(RetryError),
    /// The fork was refused (no such step, a step in a parallel! group) or could not be
    /// recorded.
    #[error(transparent)]
    Fork(ForkError),
    /// The dashboard could not listen, or stopped serving.
    #[error(transparent)]
    Serve(dashboard::ServeError),
}

type Register = std::sync::Arc<dyn Fn(EngineBuilder) -> EngineBuilder + Send + Sync>;

/// The command, with the workflows it can resume.
pub struct Cli {
    register: Register,
    /// Whether [`Cli::workflows`] registered any.
    registered: bool,
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli").finish_non_exhaustive()
    }
}

impl Cli {
    /// The command knowing no workflow: it lists, shows and draws runs, and cannot resume.
    pub fn new() -> Self {
        Cli {
            register: std::sync::Arc::new(|builder| builder),
            registered: false,
        }
    }

    /// Registers what `resume` needs on the engine it builds over the store: the workflows,
    /// and their hooks and services (`|b| b.hooks(hooks()).service(db).workflow::<Checkout>()`).
    #[must_use]
    pub fn workflows(
        mut self,
        register: impl Fn(EngineBuilder) -> EngineBuilder + Send + Sync + 'static,
    ) -> Self {
        self.register = std::sync::Arc::new(register);
        self.registered = true;
        self
    }

    /// Runs `args` and returns what to print.
    ///
    /// # Errors
    /// [`CliError`], with what to do.
    pub async fn execute(&self, args: Args) -> Result<String, CliError> {
        // Looking never writes: only `resume`, `prune`, `retry` and `fork` open the store for
        // writing.
        let store = match args.command {
            Command::Resume { .. }
            | Command::Cancel { .. }
            | Command::Prune { .. }
            | Command::Retry { .. }
            | Command::Fork { .. }
            | Command::Serve { token: Some(_), .. } => open(&args.db).await?,
            _ => open_read_only(&args.db).await?,
        };
        let load = |run_id: RunId| {
            let store = store.clone();
            async move {
                store.load(run_id).await.map_err(|err| match err {
                    StoreError::NotFound(id) => CliError::UnknownRun(id),
                    other => CliError::Store(other),
                })
            }
        };
        match args.command {
            Command::Runs {
                status,
                workflow,
                limit,
            } => {
                // Runs whose row cannot be read are listed as such: the others still are.
                let found = store
                    .list(status, workflow.as_deref(), limit)
                    .await
                    .map_err(CliError::Store)?;
                Ok(runs_table(&found.runs, &found.unreadable))
            }
            Command::Show { run } => {
                let (record, events) = load(run).await?;
                Ok(show(&record, &events))
            }
            Command::Diagram { run, gantt } => {
                let (_, events) = load(run).await?;
                let journal = Journal::from_events(events);
                Ok(if gantt {
                    journal.to_mermaid_gantt()
                } else {
                    journal.to_mermaid_sequence()
                })
            }
            Command::Cancel { run, reason } => {
                let operator = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
                let request =
                    CancelRequest::new(reason, Some(Actor::new(ActorKind::User, operator)));
                match store.cancel(run, &request).await.map_err(CliError::Store)? {
                    Cancelling::Requested { woke } => Ok(if woke {
                        format!(
                            "run {run}: cancel requested; it was waiting, and is woken to be cancelled by a worker\n"
                        )
                    } else {
                        format!("run {run}: cancel requested; it stops at its next step boundary\n")
                    }),
                    Cancelling::AlreadyRequested(earlier) => Ok(format!(
                        "run {run}: already asked to cancel ({})\n",
                        earlier.reason
                    )),
                    Cancelling::UnknownRun => Err(CliError::UnknownRun(run)),
                    Cancelling::Ended(status) => Ok(format!(
                        "run {run} has ended ({status}): there is nothing to cancel\n"
                    )),
                }
            }
            Command::Prune { older_than } => {
                let pruned = prune_older_than(&*store, older_than.duration())
                    .await
                    .map_err(CliError::Store)?;
                let runs = if pruned == 1 { "run" } else { "runs" };
                Ok(format!(
                    "pruned {pruned} ended {runs} older than {older_than}\n"
                ))
            }
            Command::Retry { run, actor } => {
                let (record, _) = load(run).await?;
                let engine: Engine = (self.register)(Engine::builder().store(store)).build();
                let retried = engine
                    .retry(run, Actor::user(actor))
                    .await
                    .map_err(CliError::Retry)?;
                Ok(match retried {
                    Retried::Ran(status) => {
                        format!("run {run}: its failed compensations ran again: {status}\n")
                    }
                    Retried::Requested(not_here) => {
                        let why = not_here.map_or(String::new(), |e| format!(" ({e})"));
                        format!(
                            "run {run}: retry of its failed compensations recorded{why}; a worker or engine that registers workflow `{}` version {} carries it out\n",
                            record.workflow, record.version
                        )
                    }
                    _ => format!("run {run}: retry recorded\n"),
                })
            }
            Command::Fork {
                run,
                from_step,
                actor,
            } => {
                let engine: Engine =
                    (self.register)(Engine::builder().store(store.clone())).build();
                let lease = Lease {
                    owner: engine.worker_id().to_owned(),
                    duration: engine.lease_duration(),
                };
                let forked = fork_run(&*store, run, from_step, Actor::user(actor), &lease)
                    .await
                    .map_err(CliError::Fork)?;
                let new_id = forked.run_id;
                let mut out =
                    format!("run {run} forked from step #{from_step}: new run {new_id}\n");
                // Run here when this binary knows the workflow; left to a worker otherwise.
                match engine.resume(new_id).await {
                    Ok(status) => out.push_str(&format!("run {new_id}: {status}\n")),
                    Err(ResumeError::UnknownWorkflow { workflow, version }) => out.push_str(
                        &format!("a worker or engine that registers workflow `{workflow}` version {version} runs it\n"),
                    ),
                    Err(err) => out.push_str(&format!("not run here ({err}): a worker runs it\n")),
                }
                Ok(out)
            }
            Command::Schedules => {
                let found = store.schedules().await.map_err(CliError::Store)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
                Ok(schedules_table(&found.schedules, &found.unreadable, now))
            }
            Command::Serve { bind, token } => {
                let register = self.registered.then(|| self.register.clone());
                let mut dashboard = dashboard::Dashboard::new(store)
                    .database(&args.db)
                    .register(register);
                let mode = if token.is_some() {
                    "actions need the token"
                } else {
                    "read-only"
                };
                if let Some(token) = token {
                    dashboard = dashboard.token(token.0);
                }
                // `/metrics`: the process's recorder (no listener of its own). Another
                // recorder installed first (an application's) leaves the route out: 404.
                if let Ok(handle) = dashboard::install_prometheus() {
                    dashboard = dashboard.metrics(handle);
                }
                dashboard::serve(dashboard.router(), bind, |addr| {
                    println!("hookflow dashboard: http://{addr}/ ({mode})");
                    use std::io::Write as _;
                    let _ = std::io::stdout().flush();
                })
                .await
                .map_err(CliError::Serve)?;
                Ok(String::new())
            }
            Command::Resume { run } => {
                load(run).await?;
                let engine: Engine = (self.register)(Engine::builder().store(store)).build();
                match engine.resume(run).await {
                    Ok(status) => Ok(format!("run {run}: {status}\n")),
                    Err(ResumeError::UnknownWorkflow { workflow, version }) => {
                        Err(CliError::UnknownWorkflow {
                            run_id: run,
                            workflow,
                            version,
                        })
                    }
                    Err(source) => Err(CliError::Resume {
                        run_id: run,
                        source,
                    }),
                }
            }
        }
    }

    /// Parses the process's arguments, runs them on a tokio runtime, prints the result (or
    /// the error, on stderr) and returns the exit code: 0, 1 on an error, 2 on bad usage.
    pub fn main(self) -> std::process::ExitCode {
        let args = Args::parse();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("hookflow: cannot start a runtime: {err}");
                return std::process::ExitCode::FAILURE;
            }
        };
        match runtime.block_on(self.execute(args)) {
            Ok(out) => {
                print!("{out}");
                std::process::ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("hookflow: {err}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}
