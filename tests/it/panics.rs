//! Panics in user code become failures, never a torn run: a panicking step fails the run
//! (completed steps are compensated), a panicking `before` handler is a `HookError`, a
//! panicking `after` handler is a recorded hook error, a panicking compensation is a failed
//! compensation. The engine keeps working afterwards.

use std::future::Ready;
use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::{EventKind, FailedCompensation, MissingService, PanicError, RunError, Slot};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default)]
struct Terminal {
    log: Arc<Mutex<Vec<String>>>,
}

impl Terminal {
    fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// What the payment should do, to drive each scenario from the input.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum Trouble {
    None,
    StepPanics,
    BodyPanics,
    VoidPanics,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Payment {
    order_id: String,
    cents: u64,
    trouble: Trouble,
}

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error("the bank is down")]
    BankDown,
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    MissingService(#[from] MissingService),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Authorization {
    id: String,
    cents: u64,
    /// Makes the void panic.
    poisoned: bool,
}

#[step(compensate = release_stock)]
async fn reserve_stock(
    ctx: &StepContext,
    order_id: String,
) -> Result<StepResponse<(), String>, PayError> {
    ctx.service::<Terminal>()?
        .record(format!("reserve {order_id}"));
    Ok(StepResponse::new((), order_id.to_owned()))
}

async fn release_stock(ctx: &StepContext, order_id: String) -> Result<(), PayError> {
    ctx.service::<Terminal>()?
        .record(format!("release {order_id}"));
    Ok(())
}

#[step(compensate = void)]
async fn authorize(
    ctx: &StepContext,
    payment: Payment,
) -> Result<StepResponse<String, Authorization>, PayError> {
    let id = format!("auth_{}", payment.order_id);
    ctx.service::<Terminal>()?.record(format!("authorize {id}"));
    let auth = Authorization {
        id: id.clone(),
        cents: payment.cents,
        poisoned: payment.trouble == Trouble::VoidPanics,
    };
    Ok(StepResponse::new(id, auth))
}

async fn void(ctx: &StepContext, auth: Authorization) -> Result<(), PayError> {
    if auth.poisoned {
        panic!("void of {} hit a poisoned terminal", auth.id);
    }
    ctx.service::<Terminal>()?
        .record(format!("void {} {}", auth.id, auth.cents));
    Ok(())
}

#[step(compensate = refund)]
async fn charge_card(
    ctx: &StepContext,
    payment: Payment,
) -> Result<StepResponse<u64, u64>, PayError> {
    if payment.trouble == Trouble::StepPanics {
        panic!("card reader on fire for {}", payment.order_id);
    }
    ctx.service::<Terminal>()?
        .record(format!("charge {}", payment.cents));
    Ok(StepResponse::new(payment.cents, payment.cents))
}

async fn refund(ctx: &StepContext, cents: u64) -> Result<(), PayError> {
    ctx.service::<Terminal>()?.record(format!("refund {cents}"));
    Ok(())
}

/// Fails: the bank is down.
#[step]
async fn settle_with_bank(_ctx: &StepContext) -> Result<(), PayError> {
    Err(PayError::BankDown)
}

#[workflow(hooks(
    screen: before<Payment>,
    settled: after<u64>,
    risk_checks: step<Payment, String>,
))]
async fn pay(ctx: &WorkflowContext, payment: Payment) -> Result<u64, PayError> {
    reserve_stock(ctx, payment.order_id.clone()).await?;
    let payment = ctx.hook(Pay::SCREEN, payment).await?;
    authorize(ctx, payment.clone()).await?;
    ctx.hook(Pay::RISK_CHECKS, payment.clone()).await?;
    let charged = charge_card(ctx, payment.clone()).await?;
    match payment.trouble {
        Trouble::BodyPanics => panic!("the workflow body lost its mind"),
        Trouble::VoidPanics => settle_with_bank(ctx).await?,
        Trouble::None | Trouble::StepPanics => {}
    }
    ctx.hook(Pay::SETTLED, &charged).await;
    Ok(charged)
}

fn payment(trouble: Trouble) -> Payment {
    Payment {
        order_id: "ord_9".into(),
        cents: 2_500,
        trouble,
    }
}

fn engine_with(terminal: &Terminal, hooks: Hooks) -> Engine {
    Engine::builder()
        .hooks(hooks)
        .service(terminal.clone())
        .build()
}

// -- panicking steps and bodies ---------------------------------------------------------------

#[tokio::test]
async fn a_panicking_step_fails_the_run_and_the_completed_steps_are_compensated() {
    let terminal = Terminal::default();
    let engine = engine_with(&terminal, Hooks::new());

    let outcome = engine.run::<Pay>(payment(Trouble::StepPanics)).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    let Some(RunError::Panicked { step, message }) = outcome.error() else {
        panic!("expected a panic, got {:?}", outcome.error());
    };
    assert_eq!(step.as_deref(), Some("charge_card"));
    assert_eq!(message, "card reader on fire for ord_9");
    assert_eq!(
        outcome.error().unwrap().to_string(),
        "step `charge_card` panicked: card reader on fire for ord_9"
    );
    assert_eq!(outcome.failed_step(), Some("charge_card"));
    assert!(outcome.journal().kinds().any(|k| matches!(
        k,
        EventKind::StepFailed { step, position: 2, failure }
            if step == "charge_card" && failure.panicked
                && failure.error == "card reader on fire for ord_9"
    )));
    assert_eq!(
        terminal.log(),
        [
            "reserve ord_9",
            "authorize auth_ord_9",
            "void auth_ord_9 2500",
            "release ord_9",
        ]
    );
}

#[tokio::test]
async fn a_panic_in_the_workflow_body_names_no_step_and_everything_is_compensated() {
    let terminal = Terminal::default();
    let engine = engine_with(&terminal, Hooks::new());

    let outcome = engine.run::<Pay>(payment(Trouble::BodyPanics)).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(matches!(
        outcome.error(),
        Some(RunError::Panicked { step: None, message }) if message == "the workflow body lost its mind"
    ));
    assert_eq!(
        terminal.log()[3..],
        ["refund 2500", "void auth_ord_9 2500", "release ord_9"]
    );
}

// -- panicking hook handlers ------------------------------------------------------------------

async fn screen_panics(_ctx: &HookContext, payment: Payment) -> Result<Payment, PayError> {
    panic!("fraud model missing for {}", payment.order_id);
}

#[tokio::test]
async fn a_panicking_before_handler_is_a_hook_error_and_the_run_is_compensated() {
    let terminal = Terminal::default();
    let mut hooks = Hooks::new();
    Pay::hooks(&mut hooks).prepended().screen(screen_panics);
    let engine = engine_with(&terminal, hooks);

    let outcome = engine.run::<Pay>(payment(Trouble::None)).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    let Some(RunError::Failed(PayError::Hook(error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    assert!(error.is_panic());
    assert_eq!(error.hook(), "screen");
    assert_eq!(error.slot(), Slot::Prepended);
    assert_eq!(error.handler(), "screen_panics");
    assert_eq!(
        error
            .source_error()
            .downcast_ref::<PanicError>()
            .map(PanicError::message),
        Some("fraud model missing for ord_9")
    );
    assert_eq!(terminal.log(), ["reserve ord_9", "release ord_9"]);
}

async fn settled_panics(_ctx: &HookContext, cents: &u64) -> Result<(), PayError> {
    panic!("ledger export crashed on {cents}");
}

async fn settled_ok(ctx: &HookContext, cents: &u64) -> Result<(), PayError> {
    ctx.service::<Terminal>()?
        .record(format!("receipt {cents}"));
    Ok(())
}

#[tokio::test]
async fn a_panicking_after_handler_is_recorded_and_the_run_still_completes() {
    let terminal = Terminal::default();
    let mut hooks = Hooks::new();
    Pay::hooks(&mut hooks)
        .settled(settled_panics)
        .settled(settled_ok);
    let engine = engine_with(&terminal, hooks);

    let outcome = engine.run::<Pay>(payment(Trouble::None)).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(outcome.output(), Some(&2_500));
    let [failure] = outcome.hook_errors() else {
        panic!("expected one hook error, got {:?}", outcome.hook_errors());
    };
    assert_eq!(failure.hook, "settled");
    assert_eq!(failure.handler, "settled_panics");
    assert!(failure.panicked);
    assert_eq!(failure.error, "panicked: ledger export crashed on 2500");
    // The next handler ran, and nothing was undone.
    assert_eq!(
        terminal.log().last().map(String::as_str),
        Some("receipt 2500")
    );
    assert!(!terminal.log().iter().any(|l| l.starts_with("void")));
}

#[step(compensate = drop_hold)]
async fn velocity_check(
    ctx: &StepContext,
    payment: Payment,
) -> Result<StepResponse<String, String>, PayError> {
    ctx.service::<Terminal>()?
        .record(format!("hold {}", payment.order_id));
    Ok(StepResponse::new("velocity ok".into(), payment.order_id))
}

async fn drop_hold(ctx: &StepContext, order_id: String) -> Result<(), PayError> {
    ctx.service::<Terminal>()?
        .record(format!("drop hold {order_id}"));
    Ok(())
}

#[step]
async fn geo_check(_ctx: &StepContext, payment: Payment) -> Result<String, PayError> {
    panic!("geo database corrupt near {}", payment.order_id);
}

#[tokio::test]
async fn a_panicking_step_hook_handler_is_a_hook_error_not_a_body_panic() {
    let terminal = Terminal::default();
    let mut hooks = Hooks::new();
    Pay::hooks(&mut hooks)
        .risk_checks(velocity_check)
        .risk_checks(geo_check);
    let engine = engine_with(&terminal, hooks);

    let outcome = engine.run::<Pay>(payment(Trouble::None)).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    let Some(RunError::Failed(PayError::Hook(error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    assert!(error.is_panic());
    assert_eq!(error.hook(), "risk_checks");
    assert_eq!(error.handler(), "geo_check");
    assert_eq!(outcome.failed_step(), Some("geo_check"));
    assert_eq!(
        terminal.log(),
        [
            "reserve ord_9",
            "authorize auth_ord_9",
            "hold ord_9",
            "drop hold ord_9",
            "void auth_ord_9 2500",
            "release ord_9",
        ]
    );
}

// -- panicking compensations ------------------------------------------------------------------

#[tokio::test]
async fn a_panicking_compensation_is_recorded_and_the_others_still_run() {
    let terminal = Terminal::default();
    let engine = engine_with(&terminal, Hooks::new());

    let outcome = engine.run::<Pay>(payment(Trouble::VoidPanics)).await;

    assert_eq!(outcome.status(), RunStatus::CompensationFailed);
    assert_eq!(outcome.failed_step(), Some("settle_with_bank"));
    assert_eq!(
        outcome.compensation_failures(),
        [FailedCompensation {
            step: "authorize".into(),
            position: 1,
            error: "void of auth_ord_9 hit a poisoned terminal".into(),
            panicked: true,
        }]
    );
    // The refund before it and the release after it ran.
    assert_eq!(
        terminal.log(),
        [
            "reserve ord_9",
            "authorize auth_ord_9",
            "charge 2500",
            "refund 2500",
            "release ord_9",
        ]
    );
}

// -- the engine after panics ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_working_after_panics() {
    let terminal = Terminal::default();
    let mut hooks = Hooks::new();
    Pay::hooks(&mut hooks).settled(settled_panics);
    let engine = engine_with(&terminal, hooks);

    for trouble in [
        Trouble::StepPanics,
        Trouble::BodyPanics,
        Trouble::VoidPanics,
    ] {
        let outcome = engine.run::<Pay>(payment(trouble)).await;
        assert!(!outcome.is_completed(), "{trouble:?} should fail the run");
    }

    // The same engine, on other tasks, concurrently: every run completes.
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.run::<Pay>(payment(Trouble::None)).await })
        })
        .collect();
    for run in runs {
        let outcome = run.await.expect("a run never panics out of the engine");
        assert_eq!(outcome.status(), RunStatus::Completed);
        assert_eq!(outcome.output(), Some(&2_500));
        // The panicking after-handler is recorded on every run, not only the first.
        assert_eq!(outcome.hook_errors().len(), 1);
    }
}

// -- panics before the future exists ---------------------------------------------------------
//
// A compensation or handler need not be an `async fn`: any `Fn(&Ctx, T) -> impl Future` fits
// the bounds. If such a function panics while building its future, the panic must still be
// captured.

/// A compensation written as a plain function returning a ready future.
fn void_sync(_ctx: &StepContext, auth: Authorization) -> Ready<Result<(), PayError>> {
    if auth.poisoned {
        panic!("void client not configured for {}", auth.id);
    }
    std::future::ready(Ok(()))
}

#[step(compensate = void_sync)]
async fn authorize_sync(
    ctx: &StepContext,
    payment: Payment,
) -> Result<StepResponse<(), Authorization>, PayError> {
    ctx.service::<Terminal>()?.record("authorize sync".into());
    let auth = Authorization {
        id: format!("auth_{}", payment.order_id),
        cents: payment.cents,
        poisoned: true,
    };
    Ok(StepResponse::new((), auth))
}

#[workflow]
async fn pay_sync(ctx: &WorkflowContext, payment: Payment) -> Result<(), PayError> {
    reserve_stock(ctx, payment.order_id.clone()).await?;
    authorize_sync(ctx, payment).await?;
    settle_with_bank(ctx).await
}

#[tokio::test]
async fn a_compensation_panicking_while_building_its_future_is_recorded() {
    let terminal = Terminal::default();
    let engine = engine_with(&terminal, Hooks::new());

    // Run on its own task, so that a panic escaping the engine shows as a JoinError.
    let run = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run::<PaySync>(payment(Trouble::None)).await }
    });
    let outcome = run
        .await
        .expect("the panic escaped engine.run: the run is torn, no outcome, no journal");

    assert_eq!(outcome.status(), RunStatus::CompensationFailed);
    assert_eq!(outcome.compensation_failures().len(), 1);
    assert!(outcome.compensation_failures()[0].panicked);
    assert_eq!(
        terminal.log(),
        ["reserve ord_9", "authorize sync", "release ord_9"]
    );
}

fn settled_sync(_ctx: &HookContext, cents: &u64) -> Ready<Result<(), PayError>> {
    panic!("exporter not configured for {cents}");
}

#[tokio::test]
async fn an_after_handler_panicking_while_building_its_future_is_recorded() {
    let terminal = Terminal::default();
    let mut hooks = Hooks::new();
    Pay::hooks(&mut hooks).settled(settled_sync);
    let engine = engine_with(&terminal, hooks);

    let outcome = engine.run::<Pay>(payment(Trouble::None)).await;

    assert_eq!(
        outcome.status(),
        RunStatus::Completed,
        "an after-hook panic must not fail the run: {:?}",
        outcome.error()
    );
    assert_eq!(outcome.hook_errors().len(), 1);
    assert!(outcome.hook_errors()[0].panicked);
}
