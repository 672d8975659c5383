//! W5, the workload of hookflow's benchmarks, written once for the criterion bench
//! (`benches/w5.rs`) and the bench program (`examples/bench_w5/`).
//!
//! Five steps in sequence; each takes `State { n, items }` (10 items) and returns
//! `State { n: n + 1, items }` with compensation data `Undo { n }`; each compensation counts
//! its calls (and checks that it got its own step's data). A step hook `after_step3` sits
//! between steps 3 and 4; its handler returns `Seen { seen: n }` with compensation data
//! `Undo { n }` and has a compensation.
//!
//! Variants (see [`Variant`]): `direct` (the same bodies as plain async fns, compensations
//! called by hand), `w5`, `w5_fail` (step 5 fails: the handler and steps 1-4 are
//! compensated), `w5_nohandler` (the hook is declared, nothing is registered), `w5_nohook`
//! (no hook), and `direct_fail` (the plain-async counterpart of `w5_fail`). Every run's
//! result is checked, so a fast wrong answer cannot pass.

#![allow(dead_code)] // each includer uses its own part

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hookflow::RunError;
use hookflow::prelude::*;
use serde::{Deserialize, Serialize};

/// Items in every run's state.
pub const ITEMS: u64 = 10;

/// What each step takes and returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Steps done so far.
    pub n: u64,
    /// Carried along untouched.
    pub items: Vec<u64>,
}

/// Compensation data of every step and of the hook handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    /// The `n` the step received.
    pub n: u64,
}

/// What the `after_step3` handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The `n` it saw (3).
    pub seen: u64,
}

/// A W5 run's output: the final state and what the hook handler saw (`None` when nothing
/// handled the hook).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct W5Out {
    /// `n == 5`, 10 items.
    pub state: State,
    /// `Some(3)` when the handler ran.
    pub seen: Option<u64>,
}

/// The workload's error.
#[derive(Debug, thiserror::Error)]
pub enum W5Error {
    /// The failure of `w5_fail`.
    #[error("step 5 failed at n = {n}")]
    Step5 {
        /// The `n` step 5 received (4).
        n: u64,
    },
    /// A compensation got data that is not its step's.
    #[error("compensation #{slot} got n = {n}")]
    WrongUndo {
        /// Which counter.
        slot: usize,
        /// What it got.
        n: u64,
    },
    /// The hook aborted the run.
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// A fresh input: `n = 0`, 10 items (one allocation, in every variant alike).
pub fn input() -> State {
    State {
        n: 0,
        items: (0..ITEMS).collect(),
    }
}

// -------------------------------------------------------------------------------------------
// Compensation counters

/// Calls of each compensation: `UNDONE[k - 1]` for step k, `UNDONE[HANDLER]` for the hook
/// handler's.
pub static UNDONE: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
/// The hook handler's counter.
pub const HANDLER: usize = 5;
/// What one failing run (step 5 fails) adds to [`UNDONE`]: steps 1-4 and the handler.
pub const UNDONE_BY_FAILURE: [u64; 6] = [1, 1, 1, 1, 0, 1];

/// The counters now.
pub fn undone() -> [u64; 6] {
    std::array::from_fn(|k| UNDONE[k].load(Ordering::Relaxed))
}

// -------------------------------------------------------------------------------------------
// The bodies, shared by the steps and the direct variant

fn advance(s: State) -> (State, Undo) {
    let n = s.n;
    (
        State {
            n: n + 1,
            items: s.items,
        },
        Undo { n },
    )
}

fn see(s: &State) -> (Seen, Undo) {
    (Seen { seen: s.n }, Undo { n: s.n })
}

/// Counts a compensation's call after checking it got its step's data (`expected_n`).
fn count_undo(slot: usize, expected_n: u64, u: Undo) -> Result<(), W5Error> {
    if u.n != expected_n {
        return Err(W5Error::WrongUndo { slot, n: u.n });
    }
    UNDONE[slot].fetch_add(1, Ordering::Relaxed);
    Ok(())
}

// -------------------------------------------------------------------------------------------
// The steps

macro_rules! w5_step {
    ($step:ident, $undo:ident, $slot:expr) => {
        #[step(compensate = $undo)]
        async fn $step(_ctx: &StepContext, s: State) -> Result<StepResponse<State, Undo>, W5Error> {
            let (s, u) = advance(s);
            Ok(StepResponse::new(s, u))
        }

        async fn $undo(_ctx: &StepContext, u: Undo) -> Result<(), W5Error> {
            count_undo($slot, $slot as u64, u)
        }
    };
}

w5_step!(step1, undo1, 0);
w5_step!(step2, undo2, 1);
w5_step!(step3, undo3, 2);
w5_step!(step4, undo4, 3);
w5_step!(step5, undo5, 4);

/// Step 5 of `w5_fail`: same shape, fails.
#[step(compensate = undo5, name = "step5")]
async fn step5_fail(_ctx: &StepContext, s: State) -> Result<StepResponse<State, Undo>, W5Error> {
    Err(W5Error::Step5 { n: s.n })
}

/// The `after_step3` handler.
#[step(compensate = unsee)]
async fn seen(_ctx: &StepContext, s: State) -> Result<StepResponse<Seen, Undo>, W5Error> {
    let (seen, u) = see(&s);
    Ok(StepResponse::new(seen, u))
}

async fn unsee(_ctx: &StepContext, u: Undo) -> Result<(), W5Error> {
    count_undo(HANDLER, 3, u)
}

// -------------------------------------------------------------------------------------------
// The workflows

/// W5.
#[workflow(hooks(after_step3: step<State, Seen>))]
pub async fn w5(ctx: &WorkflowContext, input: State) -> Result<W5Out, W5Error> {
    let s = step1(ctx, input).await?;
    let s = step2(ctx, s).await?;
    let s = step3(ctx, s).await?;
    let seen = ctx.hook(W5::AFTER_STEP3, s.clone()).await?;
    let s = step4(ctx, s).await?;
    let s = step5(ctx, s).await?;
    Ok(W5Out {
        state: s,
        seen: seen.first().map(|x| x.seen),
    })
}

/// W5 whose step 5 fails.
#[workflow(hooks(after_step3: step<State, Seen>))]
pub async fn w5_fail(ctx: &WorkflowContext, input: State) -> Result<W5Out, W5Error> {
    let s = step1(ctx, input).await?;
    let s = step2(ctx, s).await?;
    let s = step3(ctx, s).await?;
    let seen = ctx.hook(W5Fail::AFTER_STEP3, s.clone()).await?;
    let s = step4(ctx, s).await?;
    let s = step5_fail(ctx, s).await?;
    Ok(W5Out {
        state: s,
        seen: seen.first().map(|x| x.seen),
    })
}

/// W5 without the hook.
#[workflow]
pub async fn w5_nohook(ctx: &WorkflowContext, input: State) -> Result<W5Out, W5Error> {
    let s = step1(ctx, input).await?;
    let s = step2(ctx, s).await?;
    let s = step3(ctx, s).await?;
    let s = step4(ctx, s).await?;
    let s = step5(ctx, s).await?;
    Ok(W5Out {
        state: s,
        seen: None,
    })
}

// -------------------------------------------------------------------------------------------
// direct: the same bodies as plain async fns

async fn d_step1(s: State) -> Result<(State, Undo), W5Error> {
    Ok(advance(s))
}
async fn d_step2(s: State) -> Result<(State, Undo), W5Error> {
    Ok(advance(s))
}
async fn d_step3(s: State) -> Result<(State, Undo), W5Error> {
    Ok(advance(s))
}
async fn d_step4(s: State) -> Result<(State, Undo), W5Error> {
    Ok(advance(s))
}
async fn d_step5(s: State) -> Result<(State, Undo), W5Error> {
    Ok(advance(s))
}
async fn d_step5_fail(s: State) -> Result<(State, Undo), W5Error> {
    Err(W5Error::Step5 { n: s.n })
}
async fn d_seen(s: State) -> Result<(Seen, Undo), W5Error> {
    Ok(see(&s))
}
async fn d_undo1(u: Undo) -> Result<(), W5Error> {
    count_undo(0, 0, u)
}
async fn d_undo2(u: Undo) -> Result<(), W5Error> {
    count_undo(1, 1, u)
}
async fn d_undo3(u: Undo) -> Result<(), W5Error> {
    count_undo(2, 2, u)
}
async fn d_undo4(u: Undo) -> Result<(), W5Error> {
    count_undo(3, 3, u)
}
async fn d_unsee(u: Undo) -> Result<(), W5Error> {
    count_undo(HANDLER, 3, u)
}

/// Undoes what completed, in reverse order: `done` holds the undo data of step 1, step 2,
/// step 3, the hook handler and step 4, in completion order (`None` for what did not run).
/// Every compensation runs even if one fails; the first compensation error wins over `cause`.
async fn d_rollback(cause: W5Error, done: [Option<Undo>; 5]) -> Result<W5Out, W5Error> {
    let mut first_error = None;
    for (i, u) in done.into_iter().enumerate().rev() {
        let Some(u) = u else { continue };
        let result = match i {
            0 => d_undo1(u).await,
            1 => d_undo2(u).await,
            2 => d_undo3(u).await,
            3 => d_unsee(u).await,
            _ => d_undo4(u).await,
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    Err(first_error.unwrap_or(cause))
}

/// The direct variant: W5 as plain async calls; `fail` makes step 5 fail.
pub async fn direct(input: State, fail: bool) -> Result<W5Out, W5Error> {
    let (s, u1) = d_step1(input).await?;
    let (s, u2) = match d_step2(s).await {
        Ok(v) => v,
        Err(e) => return d_rollback(e, [Some(u1), None, None, None, None]).await,
    };
    let (s, u3) = match d_step3(s).await {
        Ok(v) => v,
        Err(e) => return d_rollback(e, [Some(u1), Some(u2), None, None, None]).await,
    };
    let (seen, uh) = match d_seen(s.clone()).await {
        Ok(v) => v,
        Err(e) => return d_rollback(e, [Some(u1), Some(u2), Some(u3), None, None]).await,
    };
    let (s, u4) = match d_step4(s).await {
        Ok(v) => v,
        Err(e) => return d_rollback(e, [Some(u1), Some(u2), Some(u3), Some(uh), None]).await,
    };
    let last = if fail {
        d_step5_fail(s).await
    } else {
        d_step5(s).await
    };
    match last {
        Ok((s, _u5)) => Ok(W5Out {
            state: s,
            seen: Some(seen.seen),
        }),
        Err(e) => d_rollback(e, [Some(u1), Some(u2), Some(u3), Some(uh), Some(u4)]).await,
    }
}

// -------------------------------------------------------------------------------------------
// Variants, engines, checks

/// One measured variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Plain async calls.
    Direct,
    /// Plain async calls, step 5 fails, compensations by hand.
    DirectFail,
    /// The workflow, one handler on `after_step3`.
    W5,
    /// Step 5 fails: the handler and steps 1-4 are compensated.
    W5Fail,
    /// The hook is declared, nothing registered.
    W5NoHandler,
    /// No hook.
    W5NoHook,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 6] = [
        Variant::Direct,
        Variant::W5,
        Variant::W5Fail,
        Variant::W5NoHandler,
        Variant::W5NoHook,
        Variant::DirectFail,
    ];

    /// The variant's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Direct => "direct",
            Variant::DirectFail => "direct_fail",
            Variant::W5 => "w5",
            Variant::W5Fail => "w5_fail",
            Variant::W5NoHandler => "w5_nohandler",
            Variant::W5NoHook => "w5_nohook",
        }
    }

    /// The variant named `name`.
    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Whether its runs fail at step 5.
    pub fn fails(self) -> bool {
        matches!(self, Variant::DirectFail | Variant::W5Fail)
    }

    /// The engine its runs use (`direct` ignores it).
    pub fn engine(self) -> Engine {
        let mut hooks = Hooks::new();
        match self {
            Variant::W5 => {
                W5::hooks(&mut hooks).after_step3(seen);
            }
            Variant::W5Fail => {
                W5Fail::hooks(&mut hooks).after_step3(seen);
            }
            _ => {}
        }
        Engine::builder().hooks(hooks).build()
    }

    /// One run, its result checked (not the compensation counters: see [`Checker`]).
    pub async fn run(self, engine: &Engine) -> Result<(), String> {
        let input = black_box(input());
        match self {
            Variant::Direct => check_ok(black_box(direct(input, false).await), Some(3)),
            Variant::DirectFail => check_failed(black_box(direct(input, true).await)),
            Variant::W5 => check_run(
                black_box(W5::run(engine, input).await),
                Expect::Completed(Some(3)),
            ),
            Variant::W5Fail => check_run(
                black_box(W5Fail::run(engine, input).await),
                Expect::Step5Failed,
            ),
            Variant::W5NoHandler => check_run(
                black_box(W5::run(engine, input).await),
                Expect::Completed(None),
            ),
            Variant::W5NoHook => check_run(
                black_box(W5Nohook::run(engine, input).await),
                Expect::Completed(None),
            ),
        }
    }
}

fn check_ok(result: Result<W5Out, W5Error>, seen: Option<u64>) -> Result<(), String> {
    match result {
        Ok(out) if out.state.n == 5 && out.state.items.len() == 10 && out.seen == seen => Ok(()),
        other => Err(format!("expected n = 5 and seen = {seen:?}, got {other:?}")),
    }
}

fn check_failed(result: Result<W5Out, W5Error>) -> Result<(), String> {
    match result {
        Err(W5Error::Step5 { n: 4 }) => Ok(()),
        other => Err(format!("expected step 5 to fail at n = 4, got {other:?}")),
    }
}

/// What a run must end with.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Completed, `n == 5`, the handler saw this.
    Completed(Option<u64>),
    /// Step 5 failed at `n == 4`, everything before it compensated.
    Step5Failed,
}

/// Checks an engine run against what it must end with.
fn check_run<W>(outcome: Outcome<W>, expect: Expect) -> Result<(), String>
where
    W: Workflow<Output = W5Out, Error = W5Error>,
{
    match (expect, outcome.status()) {
        (Expect::Completed(seen), RunStatus::Completed) => {
            check_ok(outcome.into_result().map_err(unwrap_failed), seen)
        }
        (Expect::Step5Failed, RunStatus::Compensated) => match outcome.into_result() {
            Err(RunError::Failed(W5Error::Step5 { n: 4 })) => Ok(()),
            other => Err(format!(
                "expected step 5 to fail at n = 4, got {:?}",
                other.err()
            )),
        },
        (expect, status) => Err(format!(
            "{}: expected {expect:?}, got {status:?}: {:?}",
            W::META.name(),
            outcome.error()
        )),
    }
}

fn unwrap_failed(e: RunError<W5Error>) -> W5Error {
    match e {
        RunError::Failed(e) => e,
        other => panic!("unexpected run error: {other:?}"),
    }
}

/// Checks the compensation counters after each run (sequential) or after many (concurrent).
#[derive(Debug)]
pub struct Checker {
    per_run: [u64; 6],
    base: [u64; 6],
    runs: u64,
}

impl Checker {
    /// Starts counting runs of `variant` from now.
    pub fn new(variant: Variant) -> Self {
        Checker {
            per_run: if variant.fails() {
                UNDONE_BY_FAILURE
            } else {
                [0; 6]
            },
            base: undone(),
            runs: 0,
        }
    }

    /// `runs` more runs ended: the counters must say so exactly.
    pub fn ran(&mut self, runs: u64) -> Result<(), String> {
        self.runs += runs;
        let now = undone();
        for (k, (&now, (&base, &per_run))) in now
            .iter()
            .zip(self.base.iter().zip(&self.per_run))
            .enumerate()
        {
            let expected = base + per_run * self.runs;
            if now != expected {
                return Err(format!(
                    "compensation counter {k}: {now} after {} runs, expected {expected}",
                    self.runs
                ));
            }
        }
        Ok(())
    }
}

// -------------------------------------------------------------------------------------------
// Hook probe and gated W5, in modules of their own

mod gated;
mod hook_probe;

#[allow(unused_imports)] // each includer uses its own part
pub use gated::*;
#[allow(unused_imports)] // each includer uses its own part
pub use hook_probe::*;
