//! Property test of the saga invariant on random workflows: sequences of steps with and
//! without compensation, parallel groups, nested children, failing and panicking steps and
//! failing compensations, in random places.
//!
//! For every generated workflow: if the run fails, every step that completed with a
//! compensation is compensated exactly once, in reverse order of completion, with its own
//! data, and nothing else is; the status says whether every undo succeeded; and the journal
//! passes `hookflow::testing::check_saga`.

use std::sync::Mutex;

use hookflow::RunError;
use hookflow::prelude::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Act {
    id: u32,
    compensable: bool,
    fails: bool,
    panics: bool,
    undo_fails: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Op {
    One(Act),
    Parallel(Vec<Act>),
    Nested(Vec<Act>),
}

#[derive(Default)]
struct Ledger(Mutex<Vec<String>>);

impl Ledger {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
}

#[derive(Debug, thiserror::Error)]
enum ScriptError {
    #[error("act {0} failed")]
    Act(u32),
    #[error("undo of {0} failed")]
    Undo(u32),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

fn perform(ctx: &StepContext, act: &Act) -> Result<(), ScriptError> {
    if act.panics {
        panic!("act {} panicked", act.id);
    }
    if act.fails {
        return Err(ScriptError::Act(act.id));
    }
    ctx.service::<Ledger>()?.push(format!("do {}", act.id));
    Ok(())
}

#[step(compensate = undo)]
async fn undoable(ctx: &StepContext, act: Act) -> Result<StepResponse<u32, Act>, ScriptError> {
    tokio::task::yield_now().await;
    perform(ctx, &act)?;
    Ok(StepResponse::new(act.id, act))
}

async fn undo(ctx: &StepContext, act: Act) -> Result<(), ScriptError> {
    if act.undo_fails {
        return Err(ScriptError::Undo(act.id));
    }
    ctx.service::<Ledger>()?.push(format!("undo {}", act.id));
    Ok(())
}

#[step]
async fn plain(ctx: &StepContext, act: Act) -> Result<u32, ScriptError> {
    tokio::task::yield_now().await;
    perform(ctx, &act)?;
    Ok(act.id)
}

async fn run_act(ctx: &WorkflowContext, act: Act) -> Result<u32, ScriptError> {
    if act.compensable {
        undoable(ctx, act).await
    } else {
        plain(ctx, act).await
    }
}

#[workflow]
async fn child(ctx: &WorkflowContext, acts: Vec<Act>) -> Result<(), ScriptError> {
    for act in acts {
        run_act(ctx, act).await?;
    }
    Ok(())
}

#[workflow]
async fn script(ctx: &WorkflowContext, ops: Vec<Op>) -> Result<(), ScriptError> {
    for op in ops {
        match op {
            Op::One(act) => {
                run_act(ctx, act).await?;
            }
            Op::Parallel(acts) => match <[Act; 2]>::try_from(acts) {
                Ok([a, b]) => {
                    hookflow::parallel!(run_act(ctx, a), run_act(ctx, b))?;
                }
                Err(acts) => {
                    let [a, b, c] = <[Act; 3]>::try_from(acts).expect("2 or 3 branches");
                    hookflow::parallel!(run_act(ctx, a), run_act(ctx, b), run_act(ctx, c))?;
                }
            },
            Op::Nested(acts) => Child::call(ctx, acts).await?,
        }
    }
    Ok(())
}

fn act() -> impl Strategy<Value = Act> {
    (any::<bool>(), 0..100u8, 0..100u8).prop_map(|(compensable, fate, undo_fate)| Act {
        id: 0,
        compensable,
        fails: fate < 8,
        panics: (8..12).contains(&fate),
        undo_fails: undo_fate < 10,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => act().prop_map(Op::One),
        2 => prop::collection::vec(act(), 2..=3).prop_map(Op::Parallel),
        2 => prop::collection::vec(act(), 1..=4).prop_map(Op::Nested),
    ]
}

/// Numbers every act, so that the ledger names each one.
fn numbered(mut ops: Vec<Op>) -> Vec<Op> {
    let mut id = 0;
    let mut number = |act: &mut Act| {
        id += 1;
        act.id = id;
    };
    for op in &mut ops {
        match op {
            Op::One(act) => number(act),
            Op::Parallel(acts) | Op::Nested(acts) => acts.iter_mut().for_each(&mut number),
        }
    }
    ops
}

fn all_acts(ops: &[Op]) -> Vec<&Act> {
    ops.iter()
        .flat_map(|op| match op {
            Op::One(act) => std::slice::from_ref(act),
            Op::Parallel(acts) | Op::Nested(acts) => acts.as_slice(),
        })
        .collect()
}

fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let acts: Vec<Act> = all_acts(&ops).into_iter().cloned().collect();
    let by_id = |id: u32| acts.iter().find(|a| a.id == id).expect("known act");
    let engine = Engine::builder()
        .service(Ledger::default())
        .record_data(true)
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(Script::run(&engine, ops));
    let ledger = engine
        .service::<Ledger>()
        .unwrap()
        .0
        .lock()
        .unwrap()
        .clone();

    let done: Vec<u32> = ledger
        .iter()
        .filter_map(|e| e.strip_prefix("do ")?.parse().ok())
        .collect();
    let undone: Vec<u32> = ledger
        .iter()
        .filter_map(|e| e.strip_prefix("undo ")?.parse().ok())
        .collect();

    hookflow::testing::check_saga(outcome.journal())
        .map_err(|v| TestCaseError::fail(format!("check_saga: {v}")))?;

    if outcome.is_completed() {
        prop_assert!(undone.is_empty(), "a completed run compensated {undone:?}");
        prop_assert!(acts.iter().all(|a| !a.fails && !a.panics));
        return Ok(());
    }
    prop_assert!(
        acts.iter().any(|a| a.fails || a.panics),
        "a run failed with no failing act"
    );
    // Reverse order of completion, each compensable completed act once, nothing else.
    let to_undo: Vec<&Act> = done
        .iter()
        .rev()
        .map(|id| by_id(*id))
        .filter(|a| a.compensable)
        .collect();
    let expected: Vec<u32> = to_undo
        .iter()
        .filter(|a| !a.undo_fails)
        .map(|a| a.id)
        .collect();
    prop_assert_eq!(&undone, &expected, "ledger {:?}", ledger);
    let failed_undos: Vec<u32> = to_undo
        .iter()
        .filter(|a| a.undo_fails)
        .map(|a| a.id)
        .collect();
    let reported: Vec<u32> = outcome
        .compensation_failures()
        .iter()
        .map(|f| {
            f.error
                .trim_start_matches("undo of ")
                .trim_end_matches(" failed")
                .parse()
                .unwrap()
        })
        .collect();
    prop_assert_eq!(&reported, &failed_undos);
    let status = if failed_undos.is_empty() {
        RunStatus::Compensated
    } else {
        RunStatus::CompensationFailed
    };
    prop_assert_eq!(outcome.status(), status);
    match outcome.error() {
        Some(RunError::Failed(ScriptError::Act(id))) => prop_assert!(by_id(*id).fails),
        Some(RunError::Panicked { message, .. }) => prop_assert!(message.ends_with("panicked")),
        other => prop_assert!(false, "unexpected error {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_saga_invariant_holds_for_random_workflows(ops in prop::collection::vec(op(), 1..8)) {
        let _quiet = silence_panics();
        check(numbered(ops))?;
    }
}

/// The generated panics are expected: keep them off the test output. The panic hook is the
/// whole process's, and the other tests of this binary run in it at the same time: the hook
/// installed here stays silent only on a thread that holds a [`Quiet`] (the case's runtime
/// is current-thread, so its panics happen on the thread running the case), and hands every
/// other panic, another test's failure among them, to the hook it replaced.
fn silence_panics() -> Quiet {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
    Quiet
}

thread_local! {
    /// Whether this thread's panics are expected ones, kept off the output.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// This thread's panics are silenced until it is dropped.
struct Quiet;

impl Drop for Quiet {
    fn drop(&mut self) {
        QUIET.with(|quiet| quiet.set(false));
    }
}
