//! Nested workflows: `Child::call(ctx, input)` runs a workflow as one step of its parent.

use std::sync::Mutex;

use hookflow::prelude::*;
use hookflow::{EventKind, RunError};

#[derive(Default)]
struct Ledger(Mutex<Vec<String>>);

impl Ledger {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

#[derive(Debug, thiserror::Error)]
enum ReturnError {
    #[error("{0} failed")]
    Step(String),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

/// Records `do {name}`; fails when `name` starts with `fail`, panics when it starts with
/// `panic`.
#[step(compensate = undo)]
async fn act(ctx: &StepContext, name: String) -> Result<StepResponse<(), String>, ReturnError> {
    if name.starts_with("fail") {
        return Err(ReturnError::Step(name));
    }
    if name.starts_with("panic") {
        panic!("{name} exploded");
    }
    ctx.service::<Ledger>()?.push(format!("do {name}"));
    Ok(StepResponse::new((), name))
}

async fn undo(ctx: &StepContext, name: String) -> Result<(), ReturnError> {
    ctx.service::<Ledger>()?.push(format!("undo {name}"));
    Ok(())
}

/// The child: refunds, with a hook of its own.
#[workflow(hooks(refunded: after<Vec<String>>))]
async fn refund(ctx: &WorkflowContext, steps: Vec<String>) -> Result<(), ReturnError> {
    for step in &steps {
        act(ctx, step.clone()).await?;
    }
    ctx.hook(Refund::REFUNDED, &steps).await;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ReturnPlan {
    child: Vec<String>,
    after: String,
    tolerate_child_failure: bool,
}

/// The parent: receives the return, refunds it through the child, restocks.
#[workflow]
async fn process_return(ctx: &WorkflowContext, plan: ReturnPlan) -> Result<(), ReturnError> {
    act(ctx, "receive".into()).await?;
    match Refund::call(ctx, plan.child).await {
        Ok(()) => {}
        Err(_) if plan.tolerate_child_failure => ctx
            .service::<Ledger>()?
            .push("child failed, parent goes on"),
        Err(err) => return Err(err),
    }
    act(ctx, plan.after).await?;
    Ok(())
}

// An `after<Vec<String>>` handler takes `&Vec<String>`: the hook's payload type, by reference.
#[allow(clippy::ptr_arg)]
async fn note_refund(ctx: &HookContext, steps: &Vec<String>) -> Result<(), ReturnError> {
    ctx.service::<Ledger>()?.push(format!(
        "hook {}:{} in {}",
        ctx.hook(),
        steps.len(),
        ctx.workflow()
    ));
    Ok(())
}

fn engine() -> Engine {
    let mut hooks = Hooks::new();
    Refund::hooks(&mut hooks).refunded(note_refund);
    Engine::builder()
        .hooks(hooks)
        .service(Ledger::default())
        .record_data(true)
        .build()
}

fn plan(child: &[&str], after: &str, tolerate: bool) -> ReturnPlan {
    ReturnPlan {
        child: child.iter().map(|s| (*s).to_owned()).collect(),
        after: after.to_owned(),
        tolerate_child_failure: tolerate,
    }
}

#[tokio::test]
async fn a_completed_child_is_compensated_with_its_parent_when_the_parent_fails_later() {
    let engine = engine();
    let outcome =
        ProcessReturn::run(&engine, plan(&["credit", "notify"], "fail-restock", false)).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(
        engine.service::<Ledger>().unwrap().take(),
        [
            "do receive",
            "do credit",
            "do notify",
            "hook refunded:2 in refund",
            "undo notify",
            "undo credit",
            "undo receive",
        ]
    );
    let kinds: Vec<&EventKind> = outcome.journal().kinds().collect();
    assert!(
        kinds.iter().any(
            |k| matches!(k, EventKind::NestedStarted { workflow, .. } if workflow == "refund")
        )
    );
    assert!(kinds.iter().any(|k| matches!(
        k,
        EventKind::NestedEnded {
            completed: true,
            ..
        }
    )));
    hookflow::testing::check_saga(outcome.journal()).unwrap();
}

#[tokio::test]
async fn a_failing_child_undoes_its_own_steps_before_the_parent_goes_on() {
    let engine = engine();
    let outcome =
        ProcessReturn::run(&engine, plan(&["credit", "fail-notify"], "restock", false)).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(
        matches!(outcome.error(), Some(RunError::Failed(ReturnError::Step(s))) if s == "fail-notify")
    );
    assert_eq!(
        engine.service::<Ledger>().unwrap().take(),
        ["do receive", "do credit", "undo credit", "undo receive"]
    );
    hookflow::testing::check_saga(outcome.journal()).unwrap();
}

#[tokio::test]
async fn a_parent_may_handle_a_child_failure_and_complete() {
    let engine = engine();
    let outcome =
        ProcessReturn::run(&engine, plan(&["credit", "fail-notify"], "restock", true)).await;
    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        engine.service::<Ledger>().unwrap().take(),
        [
            "do receive",
            "do credit",
            "undo credit",
            "child failed, parent goes on",
            "do restock",
        ]
    );
    hookflow::testing::check_saga(outcome.journal()).unwrap();
}

#[tokio::test]
async fn a_panicking_child_fails_the_run_and_everything_is_undone() {
    let engine = engine();
    let outcome =
        ProcessReturn::run(&engine, plan(&["credit", "panic-notify"], "restock", true)).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(matches!(
        outcome.error(),
        Some(RunError::Panicked { step: Some(step), message }) if step == "act" && message == "panic-notify exploded"
    ));
    assert_eq!(
        engine.service::<Ledger>().unwrap().take(),
        ["do receive", "do credit", "undo credit", "undo receive"]
    );
}
