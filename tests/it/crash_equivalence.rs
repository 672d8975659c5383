//! The crash-equivalence harness (`hookflow::testing::check_crash_points`): a run stopped
//! before or after any of its commits and resumed on a fresh engine ends as the uninterrupted
//! run did (status, output, bag, jobs, side effects), for the checkout example and for a
//! workflow that uses every kind of replayed event; and the harness catches a workflow that
//! is not crash-safe.

use std::time::Duration;

use crate::workflow::{Checkout, CheckoutInput, hooks, shop};
use hookflow::prelude::*;
use hookflow::testing::{
    CrashReport, Difference, Ledger, Mismatch, Moment, check_crash_points, check_crash_points_with,
};
use hookflow::{EventKind, MemoryStore};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The crash points' descriptions, in order.
fn points(report: &CrashReport) -> Vec<String> {
    report.points.iter().map(|p| p.point.to_string()).collect()
}

/// Every commit of the run has its two crash points, and the last one ends the run.
fn assert_every_commit_checked(report: &CrashReport) {
    let commits = report.points.len() / 2;
    assert!(commits > 0, "no commit: {report}");
    for (i, pair) in report.points.chunks(2).enumerate() {
        assert_eq!(
            (pair[0].point.moment, pair[1].point.moment),
            (Moment::Before, Moment::After)
        );
        assert_eq!((pair[0].point.commit, pair[0].point.of), (i + 1, commits));
    }
    let last = &report.points.last().unwrap().point.what;
    assert!(last.contains("the run ended"), "{last}");
}

// ---- the checkout example ------------------------------------------------------------------

async fn check_checkout(cart: &str, extras: serde_json::Value) -> CrashReport {
    check_crash_points_with::<Checkout>(
        |builder| builder.hooks(hooks()).service(shop()),
        CheckoutInput {
            cart_id: cart.into(),
        },
        RunOptions::new().additional_data(extras),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn the_checkout_resumes_from_every_crash_point_as_if_uninterrupted() {
    let report = check_checkout("cart_ok", json!({ "gift_card": "GIFT-10" })).await;
    report.assert_ok();
    assert_every_commit_checked(&report);
    assert_eq!(report.baseline.status, RunStatus::Completed);
    assert_eq!(report.baseline.result.as_ref().unwrap()["charged"], 56_96);
    assert_eq!(report.baseline.jobs.len(), 1, "{:?}", report.baseline.jobs);
    assert!(
        report
            .baseline
            .bag
            .as_ref()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("OrderId")),
        "{:?}",
        report.baseline.bag
    );
    let points = points(&report);
    for what in [
        "step `load_cart` completed",
        "handler `apply_gift_card` of hook `before_payment` completed",
        "step `reserve_inventory` completed",
        "step `send_confirmation_email` completed",
        "handler `sync_to_crm` of hook `order_created` completed",
    ] {
        assert!(
            points.iter().any(|p| p.contains(what)),
            "{what}: {points:#?}"
        );
    }
    // A crash after the jobs were dispatched and before the end was committed dispatches them
    // again, with the same ids: the comparison by id absorbs it.
    assert_eq!(report.redelivered(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_declined_checkout_resumes_from_every_crash_point_as_if_uninterrupted() {
    let report = check_checkout("cart_declined", json!({})).await;
    report.assert_ok();
    assert_every_commit_checked(&report);
    assert_eq!(report.baseline.status, RunStatus::Compensated);
    let error = report.baseline.result.as_ref().unwrap_err();
    assert!(error.starts_with("payment declined"), "{error}");
    assert!(report.baseline.jobs.is_empty());
    let points = points(&report);
    for what in [
        "step `capture_payment` failed, the run failed",
        "compensation of step `reserve_inventory` completed",
        "compensation of step `authorize_payment` completed",
        "the run ended compensated",
    ] {
        assert!(
            points.iter().any(|p| p.contains(what)),
            "{what}: {points:#?}"
        );
    }
    assert_eq!(report.redelivered(), 0);
}

// ---- a workflow with every kind of replayed event ------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    number: u64,
    amount: u64,
    /// Whether the order is confirmed at the end; if not, the run fails and is compensated.
    confirm: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    number: u64,
    charged: u64,
    parcel: String,
    carrier: String,
    refused_by: String,
    invoice: String,
    notified: Vec<String>,
}

/// A step error that is serde: a resumed run gives the body back the same value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
enum ShipError {
    #[error("carrier {0} refused the parcel")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error(transparent)]
    Ship(#[from] ShipError),
    #[error("order {0}: nothing reserved in the bag")]
    NotReserved(u64),
    #[error("order {0} was not confirmed")]
    NotConfirmed(u64),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

/// Applies `what` in the ledger, under the step's idempotency key.
fn effect(ctx: &StepContext, what: impl Into<String>) -> Result<(), hookflow::MissingService> {
    ctx.service::<Ledger>()?.record(ctx.idempotency_key(), what);
    Ok(())
}

/// What `reserve` leaves in the bag for `pack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reserved(String);

#[step(compensate = release)]
async fn reserve(ctx: &StepContext, order: Order) -> Result<StepResponse<(), u64>, OrderError> {
    effect(ctx, "reserve stock")?;
    ctx.bag().insert(Reserved(format!("R-{}", order.number)));
    Ok(StepResponse::new((), order.number))
}

async fn release(ctx: &StepContext, _number: u64) -> Result<(), OrderError> {
    effect(ctx, "release stock")?;
    Ok(())
}

#[step(compensate = refund)]
async fn charge(ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, OrderError> {
    effect(ctx, format!("charge {amount}"))?;
    Ok(StepResponse::new(amount, amount))
}

async fn refund(ctx: &StepContext, amount: u64) -> Result<(), OrderError> {
    effect(ctx, format!("refund {amount}"))?;
    Ok(())
}

/// Reads what `reserve` left in the bag, and enqueues the parcel's label.
#[step]
async fn pack(ctx: &StepContext, number: u64) -> Result<String, OrderError> {
    let Some(Reserved(reservation)) = ctx.bag().get::<Reserved>() else {
        return Err(OrderError::NotReserved(number));
    };
    effect(ctx, "pack")?;
    ctx.jobs()
        .enqueue("print_label", &json!({ "reservation": reservation }))
        .map_err(|e| OrderError::Ship(ShipError::Other(e.to_string())))?;
    Ok(format!("parcel of {reservation}"))
}

/// The slow carrier refuses every parcel; the other ships it.
#[step]
async fn ship_with(ctx: &StepContext, carrier: String) -> Result<String, ShipError> {
    effect(ctx, format!("ask {carrier}")).map_err(|e| ShipError::Other(e.to_string()))?;
    if carrier == "slowpost" {
        return Err(ShipError::Refused(carrier));
    }
    Ok(carrier)
}

/// Notifies through `channel`; the step itself takes `takes_ms`.
#[step]
async fn notify(ctx: &StepContext, channel: String, takes_ms: u64) -> Result<String, OrderError> {
    tokio::time::sleep(Duration::from_millis(takes_ms)).await;
    effect(ctx, format!("notify by {channel}"))?;
    Ok(channel)
}

#[step]
async fn confirm(_ctx: &StepContext, order: Order) -> Result<(), OrderError> {
    if !order.confirm {
        return Err(OrderError::NotConfirmed(order.number));
    }
    Ok(())
}

#[step(compensate = void_invoice)]
async fn issue_invoice(
    ctx: &StepContext,
    order: Order,
) -> Result<StepResponse<String, u64>, OrderError> {
    effect(ctx, "issue invoice")?;
    Ok(StepResponse::new(
        format!("INV-{}", order.number),
        order.number,
    ))
}

async fn void_invoice(ctx: &StepContext, _number: u64) -> Result<(), OrderError> {
    effect(ctx, "void invoice")?;
    Ok(())
}

/// The nested workflow: invoices the order, as one step of its parent.
#[workflow]
async fn invoicing(ctx: &WorkflowContext, order: Order) -> Result<String, OrderError> {
    issue_invoice(ctx, order).await
}

#[workflow(hooks(review: before<Order>, shipped: after<Receipt>))]
async fn fulfil(ctx: &WorkflowContext, order: Order) -> Result<Receipt, OrderError> {
    reserve(ctx, order.clone()).await?;
    let order = ctx.hook(Fulfil::REVIEW, order).await?;
    let charged = charge(ctx, order.amount).await?;
    let parcel = pack(ctx, order.number).await?;
    // A failure the body handles: the error comes back as recorded on replay.
    let refused_by = match ship_with(ctx, "slowpost".into()).await {
        Err(ShipError::Refused(carrier)) => carrier,
        other => return Err(OrderError::Ship(ShipError::Other(format!("{other:?}")))),
    };
    let carrier = ship_with(ctx, "fastpost".into()).await?;
    let invoice = Invoicing::call(ctx, order.clone()).await?;
    // The email branch starts its step first, the sms branch waits before its own; the sms
    // step ends first.
    let (email, sms) = hookflow::parallel!(notify(ctx, "email".into(), 20), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        notify(ctx, "sms".into(), 0).await
    })?;
    confirm(ctx, order.clone()).await?;
    let receipt = Receipt {
        number: order.number,
        charged,
        parcel,
        carrier,
        refused_by,
        invoice,
        notified: vec![email, sms],
    };
    ctx.hook(Fulfil::SHIPPED, &receipt).await;
    Ok(receipt)
}

/// `review` (before): takes 10 off the amount, with an effect of its own.
async fn apply_discount(ctx: &HookContext, mut order: Order) -> Result<Order, OrderError> {
    ctx.service::<Ledger>()?
        .record(ctx.idempotency_key(), "review discount");
    order.amount -= 10;
    Ok(order)
}

/// `shipped` (after): announces the parcel, with an effect of its own.
async fn announce(ctx: &HookContext, receipt: &Receipt) -> Result<(), OrderError> {
    ctx.service::<Ledger>()?.record(
        ctx.idempotency_key(),
        format!("announce {}", receipt.parcel),
    );
    Ok(())
}

fn fulfil_hooks() -> Hooks {
    let mut hooks = Hooks::new();
    Fulfil::hooks(&mut hooks)
        .review(apply_discount)
        .shipped(announce);
    hooks
}

async fn check_fulfil(confirm: bool) -> CrashReport {
    check_crash_points::<Fulfil>(
        |builder| builder.hooks(fulfil_hooks()),
        Order {
            number: 7,
            amount: 100,
            confirm,
        },
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_run_with_every_kind_of_replayed_event_resumes_from_every_crash_point() {
    let report = check_fulfil(true).await;
    report.assert_ok();
    assert_every_commit_checked(&report);
    let baseline = &report.baseline;
    assert_eq!(baseline.status, RunStatus::Completed);
    let receipt: Receipt = serde_json::from_value(baseline.result.clone().unwrap()).unwrap();
    assert_eq!(
        receipt,
        Receipt {
            number: 7,
            charged: 90,
            parcel: "parcel of R-7".into(),
            carrier: "fastpost".into(),
            refused_by: "slowpost".into(),
            invoice: "INV-7".into(),
            notified: vec!["email".into(), "sms".into()],
        }
    );
    let effects: Vec<(&str, usize)> = baseline
        .effects
        .iter()
        .map(|(what, n)| (what.as_str(), *n))
        .collect();
    assert_eq!(
        effects,
        [
            ("announce parcel of R-7", 1),
            ("ask fastpost", 1),
            ("ask slowpost", 1),
            ("charge 90", 1),
            ("issue invoice", 1),
            ("notify by email", 1),
            ("notify by sms", 1),
            ("pack", 1),
            ("reserve stock", 1),
            ("review discount", 1),
        ]
    );
    let jobs: Vec<&str> = baseline.jobs.values().map(|j| j.name()).collect();
    assert_eq!(jobs, ["print_label"]);
    assert!(
        baseline
            .bag
            .as_ref()
            .unwrap()
            .values()
            .any(|v| *v == json!("R-7")),
        "{:?}",
        baseline.bag
    );
    let points = points(&report);
    let at = |what: &str| {
        points
            .iter()
            .position(|p| p.contains(what))
            .unwrap_or_else(|| panic!("{what}: {points:#?}"))
    };
    assert!(at("step `ship_with` failed") < at("step `ship_with` completed"));
    assert!(at("step `issue_invoice` completed") < at("step `notify` completed"));
    assert!(at("handler `apply_discount` of hook `review` completed") < at("step `charge`"));
    assert!(at("handler `announce` of hook `shipped` completed") < at("the run ended"));
    // Steps in flight at a crash ran again, their effects absorbed by their keys; a crash
    // between the dispatch and the end's commit delivered the label again, with its id.
    assert!(report.absorbed() >= 10, "{}", report.absorbed());
    assert_eq!(report.redelivered(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_resumes_its_compensation_from_every_crash_point() {
    let report = check_fulfil(false).await;
    report.assert_ok();
    assert_every_commit_checked(&report);
    let baseline = &report.baseline;
    assert_eq!(baseline.status, RunStatus::Compensated);
    assert_eq!(baseline.result, Err("order 7 was not confirmed".to_owned()));
    assert!(baseline.jobs.is_empty());
    for undo in ["release stock", "refund 90", "void invoice"] {
        assert_eq!(baseline.effects.get(undo), Some(&1), "{undo}");
    }
    let points = points(&report);
    for what in [
        "compensation of step `issue_invoice` completed",
        "compensation of step `charge` completed",
        "compensation of step `reserve` completed",
    ] {
        assert!(
            points.iter().any(|p| p.contains(what)),
            "{what}: {points:#?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_parallel_branches_of_the_checked_run_complete_out_of_start_order() {
    let engine = Engine::builder()
        .hooks(fulfil_hooks())
        .service(Ledger::new())
        .store(MemoryStore::new())
        .build();
    let order = Order {
        number: 7,
        amount: 100,
        confirm: true,
    };
    let outcome = Fulfil::run(&engine, order).await;
    assert!(outcome.is_completed(), "{:?}", outcome.error());
    let notify_step = |kind: &EventKind| match kind {
        EventKind::StepStarted { step, position, .. } if step == "notify" => Some(*position),
        _ => None,
    };
    let started: Vec<u32> = outcome.journal().kinds().filter_map(notify_step).collect();
    let completed: Vec<u32> = outcome
        .journal()
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepCompleted { step, position, .. } if step == "notify" => Some(*position),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 2);
    let reversed: Vec<u32> = started.iter().rev().copied().collect();
    assert_eq!(completed, reversed);
}

// ---- the harness catches a workflow that is not crash-safe ---------------------------------

/// Charges with a key of its own each time it runs, instead of its idempotency key: a step
/// that runs again after a crash charges again.
#[step]
async fn charge_carelessly(ctx: &StepContext, amount: u64) -> Result<u64, OrderError> {
    ctx.service::<Ledger>()?
        .record(hookflow::RunId::generate().to_string(), "charge card");
    Ok(amount)
}

#[step]
async fn ship_carefully(ctx: &StepContext, amount: u64) -> Result<u64, OrderError> {
    ctx.service::<Ledger>()?
        .record(ctx.idempotency_key(), "ship");
    Ok(amount)
}

#[workflow]
async fn careless(ctx: &WorkflowContext, amount: u64) -> Result<u64, OrderError> {
    let charged = charge_carelessly(ctx, amount).await?;
    ship_carefully(ctx, charged).await
}

#[tokio::test(start_paused = true)]
async fn the_harness_names_the_crash_points_where_a_careless_step_doubles_its_effect() {
    let report = check_crash_points::<Careless>(|builder| builder, 100).await;
    assert!(!report.is_ok());
    let failing: Vec<String> = report.failures().map(|f| f.point.to_string()).collect();
    // Only a crash before the careless step's completion is committed runs it again. (Two
    // commits: the careless step's completion, before the careful step runs, and the run's
    // end, which the careful step's completion rides on.)
    assert_eq!(
        failing,
        ["before commit 1 of 2 (step `charge_carelessly` completed)"]
    );
    let failure = report.failures().next().unwrap();
    assert_eq!(
        failure.differences,
        [Difference::Effects(vec![Mismatch {
            key: "charge card".into(),
            expected: Some("applied 1 time".into()),
            got: Some("applied 2 times".into()),
        }])]
    );
    // The careful step's repeat (a crash before its commit) is absorbed by its key.
    assert_eq!(report.absorbed(), 1);
    let shown = report.to_string();
    assert!(
        shown.contains(
            "before commit 1 of 2 (step `charge_carelessly` completed):\n    effects: `charge card` applied 2 times, expected applied 1 time"
        ),
        "{shown}"
    );
}
