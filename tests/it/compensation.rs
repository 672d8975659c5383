//! Compensation: when a step fails, every completed step is undone in reverse order of
//! completion, each compensation receiving the data its own step returned. The failing step
//! is not compensated. A failing compensation is recorded, the others still run, and the
//! built-in `on_compensation_failed` hook is told.

use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::{CompensationFailure, FailedCompensation, MissingService, RunError};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// The outside world: inventory, payments and shipping, behind one fake backend.
// ---------------------------------------------------------------------------------------------

/// Records every call made to it, in order; the operations named in `failing` fail (after
/// being recorded, so that a failed attempt shows in the log too).
#[derive(Clone, Default)]
struct Backend {
    calls: Arc<Mutex<Vec<String>>>,
    /// What compensations saw of their context: (step, position, compensating).
    undo_contexts: Arc<Mutex<Vec<(String, u32, bool)>>>,
    /// What `on_compensation_failed` handlers received.
    reviews: Arc<Mutex<Vec<CompensationFailure>>>,
    failing: Vec<&'static str>,
}

impl Backend {
    fn failing(ops: &[&'static str]) -> Self {
        Backend {
            failing: ops.to_vec(),
            ..Backend::default()
        }
    }

    fn call(&self, op: &'static str, detail: impl std::fmt::Display) -> Result<(), OrderError> {
        self.calls.lock().unwrap().push(format!("{op} {detail}"));
        if self.failing.contains(&op) {
            return Err(OrderError::Unavailable(op));
        }
        Ok(())
    }

    fn undo(
        &self,
        ctx: &StepContext,
        op: &'static str,
        detail: impl std::fmt::Display,
    ) -> Result<(), OrderError> {
        self.undo_contexts.lock().unwrap().push((
            ctx.step().to_owned(),
            ctx.position(),
            ctx.is_compensating(),
        ));
        self.call(op, detail)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn backend(ctx: &hookflow::RunContext) -> Result<&Backend, MissingService> {
    ctx.service::<Backend>()
}

// ---------------------------------------------------------------------------------------------
// The workflow: reserve inventory, authorize the payment, create the shipment, capture.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    #[error(transparent)]
    MissingService(#[from] MissingService),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct OrderInput {
    order_id: String,
    skus: Vec<String>,
    amount_cents: u64,
    city: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reservation {
    order_id: String,
    skus: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Authorization {
    id: String,
    amount_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Shipment {
    id: String,
    city: String,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PlacedOrder {
    reserved_items: usize,
    authorization: String,
    shipment: String,
    captured_cents: u64,
}

/// Output: how many items were reserved. Undo data: the reservation.
#[step(compensate = release_inventory)]
async fn reserve_inventory(
    ctx: &StepContext,
    order: OrderInput,
) -> Result<StepResponse<usize, Reservation>, OrderError> {
    backend(ctx)?.call("reserve", format!("{} {:?}", order.order_id, order.skus))?;
    let reservation = Reservation {
        order_id: order.order_id.clone(),
        skus: order.skus.clone(),
    };
    Ok(StepResponse::new(order.skus.len(), reservation))
}

async fn release_inventory(ctx: &StepContext, reservation: Reservation) -> Result<(), OrderError> {
    let detail = format!("{} {:?}", reservation.order_id, reservation.skus);
    backend(ctx)?.undo(ctx, "release", detail)
}

/// Output: the authorization id. Undo data: the authorization (id and amount).
#[step(compensate = void_authorization)]
async fn authorize_payment(
    ctx: &StepContext,
    order: OrderInput,
) -> Result<StepResponse<String, Authorization>, OrderError> {
    let id = format!("auth_{}", order.order_id);
    backend(ctx)?.call("authorize", format!("{id} {}", order.amount_cents))?;
    let authorization = Authorization {
        id: id.clone(),
        amount_cents: order.amount_cents,
    };
    Ok(StepResponse::new(id, authorization))
}

async fn void_authorization(ctx: &StepContext, auth: Authorization) -> Result<(), OrderError> {
    backend(ctx)?.undo(ctx, "void", format!("{} {}", auth.id, auth.amount_cents))
}

/// Output: the shipment id. Undo data: the shipment (id and destination).
#[step(compensate = cancel_shipment)]
async fn create_shipment(
    ctx: &StepContext,
    order: OrderInput,
) -> Result<StepResponse<String, Shipment>, OrderError> {
    let id = format!("shp_{}", order.order_id);
    backend(ctx)?.call("ship", format!("{id} to {}", order.city))?;
    let shipment = Shipment {
        id: id.clone(),
        city: order.city.clone(),
    };
    Ok(StepResponse::new(id, shipment))
}

async fn cancel_shipment(ctx: &StepContext, shipment: Shipment) -> Result<(), OrderError> {
    backend(ctx)?.undo(
        ctx,
        "cancel",
        format!("{} to {}", shipment.id, shipment.city),
    )
}

/// The last step. It has a compensation too, which must not run when the capture itself fails.
#[step(compensate = refund_payment)]
async fn capture_payment(
    ctx: &StepContext,
    auth: Authorization,
) -> Result<StepResponse<u64, Authorization>, OrderError> {
    backend(ctx)?.call("capture", auth.id.as_str())?;
    Ok(StepResponse::new(auth.amount_cents, auth))
}

async fn refund_payment(ctx: &StepContext, auth: Authorization) -> Result<(), OrderError> {
    backend(ctx)?.undo(ctx, "refund", &auth.id)
}

#[workflow]
async fn place_order(ctx: &WorkflowContext, order: OrderInput) -> Result<PlacedOrder, OrderError> {
    let reserved_items = reserve_inventory(ctx, order.clone()).await?;
    let authorization = authorize_payment(ctx, order.clone()).await?;
    let shipment = create_shipment(ctx, order.clone()).await?;
    let captured_cents = capture_payment(
        ctx,
        Authorization {
            id: authorization.clone(),
            amount_cents: order.amount_cents,
        },
    )
    .await?;
    Ok(PlacedOrder {
        reserved_items,
        authorization,
        shipment,
        captured_cents,
    })
}

/// The application's reaction to an order whose undo failed: flag it for a human.
async fn flag_for_review(
    ctx: &HookContext,
    failure: &CompensationFailure,
) -> Result<(), OrderError> {
    let backend = backend(ctx)?;
    backend.reviews.lock().unwrap().push(failure.clone());
    backend.call("review", failure.run_id)
}

/// An `on_compensation_failed` handler that itself fails.
async fn page_on_call(ctx: &HookContext, _failure: &CompensationFailure) -> Result<(), OrderError> {
    backend(ctx)?.call("page", "on-call")
}

fn order() -> OrderInput {
    OrderInput {
        order_id: "ord_1".into(),
        skus: vec!["mug".into(), "tee".into()],
        amount_cents: 4200,
        city: "Lyon".into(),
    }
}

fn engine(backend: &Backend) -> Engine {
    let mut hooks = Hooks::new();
    PlaceOrder::hooks(&mut hooks).on_compensation_failed(flag_for_review);
    Engine::builder()
        .hooks(hooks)
        .service(backend.clone())
        .build()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_completed_run_compensates_nothing() {
    let backend = Backend::default();
    let outcome = engine(&backend).run::<PlaceOrder>(order()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert!(outcome.is_completed());
    assert_eq!(
        outcome.output(),
        Some(&PlacedOrder {
            reserved_items: 2,
            authorization: "auth_ord_1".into(),
            shipment: "shp_ord_1".into(),
            captured_cents: 4200,
        })
    );
    assert_eq!(
        backend.calls(),
        [
            r#"reserve ord_1 ["mug", "tee"]"#,
            "authorize auth_ord_1 4200",
            "ship shp_ord_1 to Lyon",
            "capture auth_ord_1",
        ]
    );
    assert!(outcome.failed_step().is_none());
    assert!(outcome.compensation_failures().is_empty());
}

#[tokio::test]
async fn compensations_run_in_reverse_order_each_with_its_own_steps_data() {
    let backend = Backend::failing(&["capture"]);
    let outcome = engine(&backend).run::<PlaceOrder>(order()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), Some("capture_payment"));
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(OrderError::Unavailable("capture")))
    ));
    assert_eq!(
        outcome.error().unwrap().to_string(),
        "capture is unavailable"
    );
    assert!(outcome.output().is_none());

    // The three completed steps are undone last-first, each with the data it returned; the
    // capture, which failed, is not refunded.
    assert_eq!(
        backend.calls(),
        [
            r#"reserve ord_1 ["mug", "tee"]"#,
            "authorize auth_ord_1 4200",
            "ship shp_ord_1 to Lyon",
            "capture auth_ord_1",
            "cancel shp_ord_1 to Lyon",
            "void auth_ord_1 4200",
            r#"release ord_1 ["mug", "tee"]"#,
        ]
    );
    assert!(outcome.compensation_failures().is_empty());
    assert!(
        backend.reviews.lock().unwrap().is_empty(),
        "on_compensation_failed is only for failed compensations"
    );
}

#[tokio::test]
async fn a_compensation_runs_with_a_compensating_context_of_its_own_step() {
    let backend = Backend::failing(&["capture"]);
    let outcome = engine(&backend).run::<PlaceOrder>(order()).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);

    let seen = backend.undo_contexts.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("create_shipment".to_owned(), 2, true),
            ("authorize_payment".to_owned(), 1, true),
            ("reserve_inventory".to_owned(), 0, true),
        ]
    );
}

#[tokio::test]
async fn a_failure_in_the_first_step_has_nothing_to_undo() {
    let backend = Backend::failing(&["reserve"]);
    let outcome = engine(&backend).run::<PlaceOrder>(order()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), Some("reserve_inventory"));
    assert_eq!(backend.calls(), [r#"reserve ord_1 ["mug", "tee"]"#]);
}

#[tokio::test]
async fn a_failure_in_the_middle_undoes_only_the_steps_before_it() {
    let backend = Backend::failing(&["ship"]);
    let outcome = engine(&backend).run::<PlaceOrder>(order()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), Some("create_shipment"));
    assert_eq!(
        backend.calls(),
        [
            r#"reserve ord_1 ["mug", "tee"]"#,
            "authorize auth_ord_1 4200",
            "ship shp_ord_1 to Lyon",
            "void auth_ord_1 4200",
            r#"release ord_1 ["mug", "tee"]"#,
        ]
    );
}

#[tokio::test]
async fn a_failing_compensation_is_recorded_and_the_others_still_run() {
    let backend = Backend::failing(&["capture", "void"]);
    let outcome = engine(&backend).run::<PlaceOrder>(order()).await;

    assert_eq!(outcome.status(), RunStatus::CompensationFailed);
    assert!(!outcome.is_completed());
    // The run's error is still the step's, not the compensation's.
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(OrderError::Unavailable("capture")))
    ));
    assert_eq!(
        outcome.compensation_failures(),
        [FailedCompensation {
            step: "authorize_payment".into(),
            position: 1,
            error: "void is unavailable".into(),
            panicked: false,
        }]
    );
    // The void failed, the release after it still ran, then the handler flagged the order.
    assert_eq!(
        backend.calls()[4..],
        [
            "cancel shp_ord_1 to Lyon".to_owned(),
            "void auth_ord_1 4200".to_owned(),
            r#"release ord_1 ["mug", "tee"]"#.to_owned(),
            format!("review {}", outcome.run_id()),
        ]
    );
}

#[tokio::test]
async fn on_compensation_failed_receives_the_failure() {
    let backend = Backend::failing(&["capture", "void", "cancel"]);
    let outcome = engine(&backend).run::<PlaceOrder>(order()).await;

    assert_eq!(outcome.status(), RunStatus::CompensationFailed);
    let reviews = backend.reviews.lock().unwrap().clone();
    assert_eq!(reviews.len(), 1, "the handler runs once per failed run");
    let failure = &reviews[0];
    assert_eq!(failure.workflow, "place_order");
    assert_eq!(failure.run_id, outcome.run_id());
    assert_eq!(failure.cause, "capture is unavailable");
    // Both failed compensations, in the order they ran.
    assert_eq!(
        failure.failed,
        [
            FailedCompensation {
                step: "create_shipment".into(),
                position: 2,
                error: "cancel is unavailable".into(),
                panicked: false,
            },
            FailedCompensation {
                step: "authorize_payment".into(),
                position: 1,
                error: "void is unavailable".into(),
                panicked: false,
            },
        ]
    );
    assert_eq!(failure.failed, outcome.compensation_failures());
    // The handler succeeded: nothing in the hook errors.
    assert!(outcome.hook_errors().is_empty());
}

#[tokio::test]
async fn a_failing_on_compensation_failed_handler_is_a_hook_error() {
    let backend = Backend::failing(&["capture", "void", "page"]);
    let mut hooks = Hooks::new();
    PlaceOrder::hooks(&mut hooks)
        .on_compensation_failed(page_on_call)
        .on_compensation_failed(flag_for_review);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(backend.clone())
        .build();

    let outcome = engine.run::<PlaceOrder>(order()).await;

    assert_eq!(outcome.status(), RunStatus::CompensationFailed);
    let [error] = outcome.hook_errors() else {
        panic!("expected one hook error, got {:?}", outcome.hook_errors());
    };
    assert_eq!(error.hook, "on_compensation_failed");
    assert_eq!(error.slot, hookflow::Slot::Configured);
    assert_eq!(error.handler, "page_on_call");
    assert_eq!(error.plugin, None);
    assert_eq!(error.error, "page is unavailable");
    assert!(!error.panicked);
    // The next handler still ran.
    assert_eq!(backend.reviews.lock().unwrap().len(), 1);
}
