//! `after` hooks: handlers observe the value; a failing handler is recorded in the outcome's
//! hook errors (hook, slot, handler, plugin) and nothing is rolled back: the run completes,
//! no compensation runs, and the other handlers still run.

use std::sync::{Arc, Mutex};

use hookflow::journal::HandlerFailure;
use hookflow::prelude::*;
use hookflow::{EventKind, HookFailure, MissingService, Slot};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default)]
struct Outbox {
    log: Arc<Mutex<Vec<String>>>,
}

impl Outbox {
    fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: String,
    email: String,
    total_cents: u64,
}

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error(transparent)]
    MissingService(#[from] MissingService),
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("CRM timed out after {0} ms")]
    Timeout(u32),
    #[error("warehouse rejected order {0}")]
    Rejected(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    order_id: String,
    cents: u64,
}

#[step(compensate = refund)]
async fn take_payment(
    ctx: &StepContext,
    cents: u64,
) -> Result<StepResponse<String, Payment>, OrderError> {
    let order_id = "ord_7".to_owned();
    ctx.service::<Outbox>()?.record(format!("pay {cents}"));
    Ok(StepResponse::new(
        order_id.clone(),
        Payment { order_id, cents },
    ))
}

async fn refund(ctx: &StepContext, payment: Payment) -> Result<(), OrderError> {
    ctx.service::<Outbox>()?
        .record(format!("refund {} {}", payment.order_id, payment.cents));
    Ok(())
}

#[workflow(hooks(order_placed: after<Order>))]
async fn place_order(ctx: &WorkflowContext, total_cents: u64) -> Result<Order, OrderError> {
    let id = take_payment(ctx, total_cents).await?;
    let order = Order {
        id,
        email: "ada@example.com".into(),
        total_cents,
    };
    ctx.hook(PlaceOrder::ORDER_PLACED, &order).await;
    Ok(order)
}

// -- handlers ---------------------------------------------------------------------------------

async fn send_confirmation(ctx: &HookContext, order: &Order) -> Result<(), SyncError> {
    if let Ok(outbox) = ctx.service::<Outbox>() {
        outbox.record(format!("email {} about {}", order.email, order.id));
    }
    Ok(())
}

async fn sync_crm(_ctx: &HookContext, _order: &Order) -> Result<(), SyncError> {
    Err(SyncError::Timeout(3_000))
}

async fn notify_warehouse(_ctx: &HookContext, order: &Order) -> Result<(), SyncError> {
    Err(SyncError::Rejected(order.id.clone()))
}

async fn record_revenue(ctx: &HookContext, order: &Order) -> Result<(), SyncError> {
    if let Ok(outbox) = ctx.service::<Outbox>() {
        outbox.record(format!("revenue {}", order.total_cents));
    }
    Ok(())
}

/// A fulfilment plugin: its handler fails.
struct Fulfilment;

impl Plugin for Fulfilment {
    fn name(&self) -> &str {
        "fulfilment"
    }
    fn register(&self, hooks: &mut Hooks) {
        PlaceOrder::hooks(hooks).order_placed(notify_warehouse);
    }
}

#[tokio::test]
async fn failing_handlers_are_collected_and_nothing_is_rolled_back() {
    let outbox = Outbox::default();
    let mut hooks = Hooks::new();
    PlaceOrder::hooks(&mut hooks)
        .order_placed(sync_crm)
        .order_placed(send_confirmation)
        .appended()
        .order_placed(record_revenue);
    hooks.plugin(Fulfilment);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(outbox.clone())
        .build();

    let outcome = engine.run::<PlaceOrder>(4_200).await;

    // The run completed with its output.
    assert_eq!(outcome.status(), RunStatus::Completed);
    assert!(outcome.error().is_none());
    assert_eq!(
        outcome.output(),
        Some(&Order {
            id: "ord_7".into(),
            email: "ada@example.com".into(),
            total_cents: 4_200,
        })
    );
    // Both failures are recorded, in the order the handlers ran, with who registered them.
    assert_eq!(
        outcome.hook_errors(),
        [
            HookFailure {
                hook: "order_placed",
                slot: Slot::Configured,
                handler: "sync_crm",
                plugin: None,
                error: "CRM timed out after 3000 ms".into(),
                panicked: false,
            },
            HookFailure {
                hook: "order_placed",
                slot: Slot::Configured,
                handler: "notify_warehouse",
                plugin: Some("fulfilment".into()),
                error: "warehouse rejected order ord_7".into(),
                panicked: false,
            },
        ]
    );
    // The handlers after the failing ones still ran, and nothing was refunded.
    assert_eq!(
        outbox.log(),
        [
            "pay 4200",
            "email ada@example.com about ord_7",
            "revenue 4200",
        ]
    );
    assert!(
        !outcome
            .journal()
            .kinds()
            .any(|k| matches!(k, EventKind::CompensationStarted { .. })),
        "an after-hook failure is never compensated"
    );
    assert!(outcome.compensation_failures().is_empty());
}

#[tokio::test]
async fn a_hook_failure_reads_as_a_sentence() {
    let mut hooks = Hooks::new();
    hooks.plugin(Fulfilment);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(Outbox::default())
        .build();

    let outcome = engine.run::<PlaceOrder>(100).await;

    let [failure] = outcome.hook_errors() else {
        panic!("expected one hook error, got {:?}", outcome.hook_errors());
    };
    assert_eq!(
        failure.to_string(),
        format!(
            "hook `order_placed`: handler `{}` (configured slot, plugin `fulfilment`) failed: \
             warehouse rejected order ord_7",
            "notify_warehouse"
        )
    );
}

#[tokio::test]
async fn successful_handlers_leave_no_hook_errors_and_are_journaled() {
    let outbox = Outbox::default();
    let mut hooks = Hooks::new();
    PlaceOrder::hooks(&mut hooks)
        .order_placed(send_confirmation)
        .order_placed(sync_crm);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(outbox.clone())
        .build();

    let outcome = engine.run::<PlaceOrder>(990).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(outcome.hook_errors().len(), 1);
    let hook_events: Vec<EventKind> = outcome
        .journal()
        .kinds()
        .filter(|k| {
            matches!(
                k,
                EventKind::HookFired { .. }
                    | EventKind::HookHandlerCompleted { .. }
                    | EventKind::HookHandlerFailed { .. }
            )
        })
        .cloned()
        .collect();
    assert_eq!(
        hook_events,
        [
            EventKind::HookFired {
                hook: "order_placed".into(),
                handlers: 2,
                firing: 0,
                detail: None,
            },
            EventKind::HookHandlerCompleted {
                hook: "order_placed".into(),
                slot: Slot::Configured,
                handler: "send_confirmation".into(),
                firing: 0,
                data: None,
            },
            EventKind::HookHandlerFailed {
                hook: "order_placed".into(),
                slot: Slot::Configured,
                handler: "sync_crm".into(),
                failure: Box::new(HandlerFailure {
                    error: "CRM timed out after 3000 ms".into(),
                    panicked: false,
                    firing: 0,
                }),
            },
        ]
    );
}
