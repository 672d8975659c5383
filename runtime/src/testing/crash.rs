//! The crash-equivalence check: [`check_crash_points`] stops a run at every commit it makes,
//! before and after it, resumes it on a restarted engine over the same store, and compares
//! the resumed run with the uninterrupted one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::crash_store::CrashStore;
use super::ledger::{Deliveries, Ledger};
use crate::engine::{Engine, EngineBuilder};
use crate::run::Outcome;
use crate::store::Store;
use crate::types::{Job, RunId, RunOptions, RunStatus};
use crate::workflow::Workflow;

/// The worker id of every engine of a check: the engine that resumes a run takes back at once
/// the lease the crashed one held, as a restarted process does.
const WORKER: &str = "hookflow-crash-check";

/// Whether a crash point stops the run just before a commit or just after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Moment {
    /// The commit is not written: what it would have recorded happened (a step's side
    /// effects), but the store does not know it.
    Before,
    /// The commit is written, and the process dies before the run goes on.
    After,
}

/// Where a run is stopped: before or after one of the commits the uninterrupted run made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPoint {
    /// Before or after the commit.
    pub moment: Moment,
    /// Which commit, from 1.
    pub commit: usize,
    /// How many commits the uninterrupted run made.
    pub of: usize,
    /// What the commit recorded, in words: "step `reserve` completed".
    pub what: String,
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let moment = match self.moment {
            Moment::Before => "before",
            Moment::After => "after",
        };
        write!(
            f,
            "{moment} commit {} of {} ({})",
            self.commit, self.of, self.what
        )
    }
}

/// What a run did, as the check compares it: for a crash point, the run that crashed and the
/// run that resumed it, together.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// How the run ended.
    pub status: RunStatus,
    /// Its output as JSON, or its error's message.
    pub result: Result<Value, String>,
    /// Its bag at the end, each value as JSON by its type's name; `None` when the run had
    /// ended before the crash (its outcome is then read back from the store, which keeps the
    /// bag's writes, not the bag).
    pub bag: Option<BTreeMap<String, Value>>,
    /// The jobs delivered to the dispatcher, once per id.
    pub jobs: BTreeMap<String, Job>,
    /// How many deliveries repeated a job id delivered before (a dispatch that was not
    /// recorded is made again after a resume, with the same ids).
    pub redelivered: usize,
    /// The side effects the [`Ledger`] applied, counted by description.
    pub effects: BTreeMap<String, usize>,
    /// How many ledger records were absorbed as repeats (a step that ran again with the same
    /// idempotency key).
    pub absorbed: usize,
}

/// An entry of the bag, the jobs or the effects that differs: its key, what the uninterrupted
/// run had, and what the resumed run has (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The bag value's type, the job's id, or the effect's description.
    pub key: String,
    /// In the uninterrupted run.
    pub expected: Option<String>,
    /// In the resumed run.
    pub got: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match (&self.expected, &self.got) {
            (Some(expected), Some(got)) => write!(f, "`{key}` {got}, expected {expected}"),
            (Some(expected), None) => write!(f, "`{key}` missing (expected {expected})"),
            (None, Some(got)) => write!(f, "`{key}` unexpected ({got})"),
            (None, None) => write!(f, "`{key}`"),
        }
    }
}

/// How a resumed run differs from the uninterrupted one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Difference {
    /// The run made fewer commits than the uninterrupted one and never got to the crash
    /// point: the workflow does not do the same thing every time.
    #[error("the crash point was never reached: the run made {commits} commits")]
    NotReached {
        /// How many it made.
        commits: usize,
    },
    /// Another status.
    #[error("status {got}, expected {expected}")]
    Status {
        /// The uninterrupted run's.
        expected: RunStatus,
        /// The resumed run's.
        got: RunStatus,
    },
    /// Another output, or another error.
    #[error("result {got}, expected {expected}")]
    Result {
        /// The uninterrupted run's.
        expected: String,
        /// The resumed run's.
        got: String,
    },
    /// Other values in the bag.
    #[error("bag: {}", list(.0))]
    Bag(Vec<Mismatch>),
    /// Other jobs delivered (compared by id, name and payload).
    #[error("jobs: {}", list(.0))]
    Jobs(Vec<Mismatch>),
    /// Other side effects in the [`Ledger`].
    #[error("effects: {}", list(.0))]
    Effects(Vec<Mismatch>),
}

fn list(mismatches: &[Mismatch]) -> String {
    let shown: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
    shown.join("; ")
}

/// One crash point: the point, what the run did across the crash and the resume, and how it
/// differs from the uninterrupted run (empty when it does not).
#[derive(Debug, Clone)]
pub struct CrashPointResult {
    /// Where the run was stopped.
    pub point: CrashPoint,
    /// What it did, the crashed run and the resumed one together.
    pub resumed: RunSummary,
    /// How that differs from the uninterrupted run.
    pub differences: Vec<Difference>,
}

/// What [`check_crash_points`] found: the uninterrupted run, and one entry per crash point.
#[derive(Debug, Clone)]
pub struct CrashReport {
    /// The workflow's name.
    pub workflow: &'static str,
    /// What the uninterrupted run did.
    pub baseline: RunSummary,
    /// Each crash point, in commit order, before then after each commit.
    pub points: Vec<CrashPointResult>,
}

impl CrashReport {
    /// The crash points whose resumed run differed from the uninterrupted one.
    pub fn failures(&self) -> impl Iterator<Item = &CrashPointResult> {
        self.points.iter().filter(|p| !p.differences.is_empty())
    }

    /// Whether every resumed run matched the uninterrupted one.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// How many job deliveries repeated an id, over all the crash points.
    pub fn redelivered(&self) -> usize {
        self.points.iter().map(|p| p.resumed.redelivered).sum()
    }

    /// How many ledger records were absorbed as repeats, over all the crash points.
    pub fn absorbed(&self) -> usize {
        self.points.iter().map(|p| p.resumed.absorbed).sum()
    }

    /// Panics, listing each crash point whose resumed run differed and how, unless all of
    /// them matched the uninterrupted run.
    ///
    /// # Panics
    /// When a resumed run differed.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "{self}");
    }
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures = self.failures().count();
        write!(
            f,
            "crash check of `{}` ({}): {failures} of {} crash points resumed differently",
            self.workflow,
            self.baseline.status,
            self.points.len()
        )?;
        for failure in self.failures() {
            write!(f, "\n  {}:", failure.point)?;
            for difference in &failure.differences {
                write!(f, "\n    {difference}")?;
            }
        }
        write!(
            f,
            "\n({} job deliveries repeated an id, {} ledger repeats absorbed)",
            self.redelivered(),
            self.absorbed()
        )
    }
}

/// Checks that a run of `W` with `input` is crash-safe: that wherever its process dies, the
/// run resumed by a restarted engine ends as the uninterrupted run does, with the same status,
/// output, bag, jobs and side effects.
///
/// First it runs the workflow once, uninterrupted, over a fresh [`MemoryStore`], and counts
/// the commits it makes (each step's, each hook handler's, each compensation's, the run's
/// failure and its end). Then, for each commit, twice (crashing just before it, and just
/// after it), it runs the workflow again, on a new engine over a new store that stops writing
/// at that point as a process that dies there would: the run halts, still `running` in the
/// store. It then resumes the run on a fresh engine with the same configuration (none of the
/// crashed engine's runs, leases or in-flight state) over what the store kept. Each resumed
/// run is compared with the uninterrupted one:
///
/// - its status, and its output (as JSON) or its error's message;
/// - its bag at the end, each value as JSON (not for a crash after the last commit: the run
///   had ended, and its outcome comes from the store);
/// - the jobs delivered to the dispatcher by the crashed run and the resumed one, by id (with
///   name and payload): a job delivered twice with the same id counts once, and the repeats
///   are counted in [`RunSummary::redelivered`];
/// - the side effects applied in the [`Ledger`], counted by description: a repeat under the
///   same idempotency key is absorbed, and counted in [`RunSummary::absorbed`].
///
/// `engine` configures the engines (hooks, services, options). It is called once for the
/// uninterrupted run and once per crash point; the check then adds its store, a [`Ledger`]
/// service, a job dispatcher that records what it is given, the workflow `W` and a worker id,
/// replacing any `engine` set. The services it registers are the outside world: each crash
/// point has its own, and the crashed run and the resumed one share them (a fake payment
/// provider outlives the process that called it). Every run has the same run id, so the
/// idempotency keys and job ids of all runs match.
///
/// [`MemoryStore`]: crate::MemoryStore
///
/// ```
/// # use hookflow_runtime::testing::check_crash_points;
/// # use hookflow_runtime::{Hooks, Workflow};
/// # async fn demo<Checkout: Workflow<Input = String>>(hooks: fn() -> Hooks) {
/// // In a `#[tokio::test]`:
/// let report = check_crash_points::<Checkout>(
///     |builder| builder.hooks(hooks()),
///     "cart_1".to_owned(),
/// )
/// .await;
/// report.assert_ok(); // panics listing each crash point whose resumed run differed, and how
/// # }
/// ```
pub async fn check_crash_points<W>(
    engine: impl Fn(EngineBuilder) -> EngineBuilder,
    input: W::Input,
) -> CrashReport
where
    W: Workflow,
    W::Input: Clone,
{
    check_crash_points_with::<W>(engine, input, RunOptions::new()).await
}

/// [`check_crash_points`] with [`RunOptions`] (actor, additional data...). Without a run id
/// or an idempotency key in `options`, the check gives its runs one.
pub async fn check_crash_points_with<W>(
    engine: impl Fn(EngineBuilder) -> EngineBuilder,
    input: W::Input,
    mut options: RunOptions,
) -> CrashReport
where
    W: Workflow,
    W::Input: Clone,
{
    let run_id = *options.run_id.get_or_insert_with(RunId::generate);
    // The run that resumes is started again with the same key: the engine then resumes the
    // interrupted run, and returns its outcome.
    options
        .idempotency_key
        .get_or_insert_with(|| format!("crash-check-{run_id}"));
    let check = Check {
        engine,
        input,
        options,
        run_id,
    };

    let world = World::default();
    let store = Arc::new(CrashStore::new(None));
    let outcome = check
        .engine::<W>(Arc::clone(&store), &world)
        .run_with::<W>(check.input.clone(), check.options.clone())
        .await;
    let baseline = world.summary(&outcome, true);
    drop(outcome);
    let commits = store.commits();

    let mut points = Vec::with_capacity(commits.len() * 2);
    for (index, what) in commits.iter().enumerate() {
        for moment in [Moment::Before, Moment::After] {
            let point = CrashPoint {
                moment,
                commit: index + 1,
                of: commits.len(),
                what: what.clone(),
            };
            let (resumed, mut differences) = check.crash_at::<W>(&point).await;
            differences.extend(compare(&baseline, &resumed));
            points.push(CrashPointResult {
                point,
                resumed,
                differences,
            });
        }
    }
    CrashReport {
        workflow: W::META.name(),
        baseline,
        points,
    }
}

/// What every run of one check is made of.
struct Check<B, I> {
    engine: B,
    input: I,
    options: RunOptions,
    run_id: RunId,
}

impl<B: Fn(EngineBuilder) -> EngineBuilder, I: Clone> Check<B, I> {
    /// An engine as the user configures it, over `store`, with `world`'s ledger and dispatcher.
    fn engine<W: Workflow<Input = I>>(&self, store: Arc<CrashStore>, world: &World) -> Engine {
        (self.engine)(Engine::builder())
            .store(store)
            .service(world.ledger.clone())
            .jobs(world.deliveries.dispatcher())
            .workflow::<W>()
            .worker_id(WORKER)
            .build()
    }

    /// Runs the workflow until it crashes at `point`, then resumes it on the engine restarted
    /// over what the store kept: what the two did together, and whether the crash happened.
    async fn crash_at<W: Workflow<Input = I>>(
        &self,
        point: &CrashPoint,
    ) -> (RunSummary, Vec<Difference>) {
        let world = World::default();
        let store = Arc::new(CrashStore::new(Some((point.moment, point.commit))));
        let engine = self.engine::<W>(Arc::clone(&store), &world);
        let crashed = engine
            .run_with::<W>(self.input.clone(), self.options.clone())
            .await;
        if !store.crashed() {
            let commits = store.commits().len();
            return (
                world.summary(&crashed, true),
                vec![Difference::NotReached { commits }],
            );
        }
        drop(crashed);
        store.recover();
        let restarted = engine.restarted();
        drop(engine);
        // A run that had ended is not resumed: its outcome is read back from the store.
        let ended = store
            .load(self.run_id)
            .await
            .is_ok_and(|(record, _)| record.status.is_finished());
        // Started again with the same idempotency key, the run is resumed, and its outcome
        // returned.
        let resumed = restarted
            .run_with::<W>(self.input.clone(), self.options.clone())
            .await;
        (world.summary(&resumed, !ended), Vec::new())
    }
}

/// The outside world of the runs of one crash point (or of the uninterrupted run): what
/// survives the crash.
#[derive(Default)]
struct World {
    ledger: Ledger,
    deliveries: Deliveries,
}

impl World {
    /// What a run did: its outcome's status, result and bag (`with_bag`), and what the world
    /// saw of it.
    fn summary<W: Workflow>(&self, outcome: &Outcome<W>, with_bag: bool) -> RunSummary {
        let result = match outcome.result() {
            Ok(output) => Ok(serde_json::to_value(output)
                .unwrap_or_else(|err| Value::String(format!("(not serializable: {err})")))),
            Err(err) => Err(err.to_string()),
        };
        let delivered = self.deliveries.all();
        let count = delivered.len();
        let mut jobs = BTreeMap::new();
        for job in delivered {
            jobs.entry(job.id().to_owned()).or_insert(job);
        }
        let mut effects = BTreeMap::new();
        for (_, what) in self.ledger.applied() {
            *effects.entry(what).or_default() += 1;
        }
        RunSummary {
            status: outcome.status(),
            result,
            bag: with_bag.then(|| outcome.bag_json()),
            redelivered: count - jobs.len(),
            jobs,
            effects,
            absorbed: self.ledger.absorbed(),
        }
    }
}

/// How `got` differs from `expected`.
fn compare(expected: &RunSummary, got: &RunSummary) -> Vec<Difference> {
    let mut differences = Vec::new();
    if expected.status != got.status {
        differences.push(Difference::Status {
            expected: expected.status,
            got: got.status,
        });
    }
    if expected.result != got.result {
        differences.push(Difference::Result {
            expected: show_result(&expected.result),
            got: show_result(&got.result),
        });
    }
    if let (Some(expected), Some(got)) = (&expected.bag, &got.bag) {
        let bag = mismatches(expected, got, Value::to_string);
        if !bag.is_empty() {
            differences.push(Difference::Bag(bag));
        }
    }
    let show_job = |job: &Job| format!("`{}` {}", job.name(), job.payload());
    let jobs = mismatches(&expected.jobs, &got.jobs, show_job);
    if !jobs.is_empty() {
        differences.push(Difference::Jobs(jobs));
    }
    let times = |n: &usize| format!("applied {n} time{}", if *n == 1 { "" } else { "s" });
    let effects = mismatches(&expected.effects, &got.effects, times);
    if !effects.is_empty() {
        differences.push(Difference::Effects(effects));
    }
    differences
}

/// The keys whose values differ between two maps, each value shown by `show`.
fn mismatches<V: PartialEq>(
    expected: &BTreeMap<String, V>,
    got: &BTreeMap<String, V>,
    show: impl Fn(&V) -> String,
) -> Vec<Mismatch> {
    let mut keys: Vec<&String> = expected.keys().chain(got.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| expected.get(*key) != got.get(*key))
        .map(|key| Mismatch {
            key: key.clone(),
            expected: expected.get(key).map(&show),
            got: got.get(key).map(&show),
        })
        .collect()
}

fn show_result(result: &Result<Value, String>) -> String {
    match result {
        Ok(output) => format!("output {output}"),
        Err(error) => format!("error \"{error}\""),
    }
}
