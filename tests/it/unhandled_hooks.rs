//! Hook points without handlers (issue 20's fast path): firing one returns at once, without
//! building the hook kind's future and without recording a firing, whether the workflow has
//! no hook table at all or a table with handlers at other points only; the points that do
//! have handlers still fire, with the firing indices they had before.

use std::sync::{Arc, Mutex};

use hookflow::EventKind;
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// What the `seen` step hook's handler saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<u64>>>);

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Fired {
    /// What `before` gave back.
    checked: u64,
    /// What the unhandled step hook returned.
    unhandled_results: usize,
    /// What the handled step hook returned.
    handled_results: Vec<u64>,
}

#[step]
async fn record_seen(ctx: &StepContext, n: u64) -> Result<u64, ProbeError> {
    if let Ok(seen) = ctx.service::<Seen>() {
        seen.0.lock().unwrap().push(n);
    }
    Ok(n * 10)
}

#[workflow(hooks(
    check: before<u64>,
    observe: after<u64>,
    observe_pair: after<u64, u64>,
    unhandled_step: step<u64, u64>,
    handled_step: step<u64, u64>,
))]
async fn many_hooks(ctx: &WorkflowContext, n: u64) -> Result<Fired, ProbeError> {
    let checked = ctx.hook(ManyHooks::CHECK, n).await?;
    ctx.hook(ManyHooks::OBSERVE, &checked).await;
    ctx.hook(ManyHooks::OBSERVE_PAIR, (&n, &checked)).await;
    let unhandled = ctx.hook(ManyHooks::UNHANDLED_STEP, n).await?;
    let handled = ctx.hook(ManyHooks::HANDLED_STEP, n + 1).await?;
    Ok(Fired {
        checked,
        unhandled_results: unhandled.len(),
        handled_results: handled,
    })
}

fn firings(outcome: &Outcome<ManyHooks>) -> Vec<(String, u32)> {
    outcome
        .journal()
        .kinds()
        .filter_map(|k| match k {
            EventKind::HookFired { hook, firing, .. } => Some((hook.to_string(), *firing)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn hooks_without_a_hook_table_pass_through_and_record_nothing() {
    let outcome = Engine::new().run::<ManyHooks>(7).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        outcome.output(),
        Some(&Fired {
            checked: 7,
            unhandled_results: 0,
            handled_results: Vec::new(),
        })
    );
    assert_eq!(firings(&outcome), Vec::<(String, u32)>::new());
    assert!(outcome.hook_errors().is_empty());
}

#[tokio::test]
async fn with_a_table_only_the_points_with_handlers_fire() {
    let seen = Seen::default();
    let mut hooks = Hooks::new();
    ManyHooks::hooks(&mut hooks).handled_step(record_seen);
    let engine = Engine::builder().hooks(hooks).service(seen.clone()).build();

    let outcome = engine.run::<ManyHooks>(7).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        outcome.output(),
        Some(&Fired {
            checked: 7,
            unhandled_results: 0,
            handled_results: vec![80],
        })
    );
    // The four points without handlers recorded no firing; the handled one is the run's
    // first firing, as it was before the fast path.
    assert_eq!(firings(&outcome), [("handled_step".to_owned(), 0)]);
    assert_eq!(*seen.0.lock().unwrap(), [8]);
}
