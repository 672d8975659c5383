//! The checkout example's workflow (examples/checkout/workflow/): its four scenarios end
//! as the example says, and its saga holds at every failure point.

use std::time::Duration;

use crate::workflow::{Checkout, CheckoutError, CheckoutInput, Shop, hooks, shop};
use hookflow::prelude::*;
use hookflow::testing::{FailurePoint, check_failure_points, check_saga};
use serde_json::json;

fn engine_with(shop: Shop) -> Engine {
    Engine::builder()
        .hooks(hooks())
        .service(shop)
        .record_data(true)
        .build()
}

async fn checkout(engine: &Engine, cart: &str, extras: serde_json::Value) -> Outcome<Checkout> {
    let input = CheckoutInput {
        cart_id: cart.into(),
    };
    Checkout::run_with(engine, input, RunOptions::new().additional_data(extras)).await
}

#[tokio::test(start_paused = true)]
async fn the_four_scenarios_end_as_the_example_says() {
    let engine = engine_with(shop());
    let shop = engine.service::<Shop>().unwrap();
    {
        let mut s = shop.lock();
        s.provider_unavailable_for = 1;
        s.mail_down = true;
    }
    let ok = checkout(&engine, "cart_ok", json!({ "gift_card": "GIFT-10" })).await;
    assert!(ok.is_completed(), "{:?}", ok.error());
    let order = ok.output().unwrap();
    assert_eq!(
        (order.total, order.tax, order.charged),
        (62_00, 4_96, 56_96)
    );
    assert_eq!(ok.best_effort_failures()[0].step, "send_confirmation_email");
    assert_eq!(ok.jobs().len(), 1);
    check_saga(ok.journal()).unwrap();

    shop.lock().mail_down = false;
    let declined = checkout(&engine, "cart_declined", json!({})).await;
    assert_eq!(declined.status(), RunStatus::Compensated);
    assert_eq!(declined.failed_step(), Some("capture_payment"));
    assert!(declined.jobs().is_empty());
    check_saga(declined.journal()).unwrap();

    let small = checkout(&engine, "cart_small", json!({})).await;
    assert!(matches!(
        small.error(),
        Some(RunError::Failed(CheckoutError::Hook(e))) if e.hook() == "validate"
    ));

    shop.lock().warehouse_down_on_release = Some("west".into());
    let stuck = checkout(&engine, "cart_stuck", json!({})).await;
    assert_eq!(stuck.status(), RunStatus::CompensationFailed);
    let state = shop.lock();
    let flagged = state
        .orders
        .values()
        .filter(|s| s.contains("NEEDS ATTENTION"))
        .count();
    assert_eq!(flagged, 1);
    // Every stock movement of the failed runs was undone, but the stuck west reservation.
    assert_eq!(state.warehouse_stock[&("east".into(), "tshirt".into())], 8);
    assert_eq!(state.warehouse_stock[&("west".into(), "mug".into())], 3);
}

#[tokio::test(start_paused = true)]
async fn a_tax_service_past_its_timeout_fails_the_checkout_cleanly() {
    let shop = shop();
    shop.lock().tax_service_delay_secs = 5;
    let engine = engine_with(shop);
    let started = tokio::time::Instant::now();
    let outcome = checkout(&engine, "cart_ok", json!({})).await;
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(CheckoutError::TimedOut(_)))
    ));
    assert_eq!(outcome.status(), RunStatus::Compensated);
}

#[tokio::test(start_paused = true)]
async fn the_saga_holds_at_every_failure_point_of_the_checkout() {
    let report =
        check_failure_points(
            |plan| {
                Engine::builder()
                    .hooks(hooks())
                    .service(shop())
                    .faults(plan)
                    .record_data(true)
                    .build()
            },
            |engine| async move {
                checkout(&engine, "cart_ok", json!({ "gift_card": "GIFT-10" })).await
            },
        )
        .await;
    report.assert_ok();
    let points: Vec<&FailurePoint> = report.results.iter().map(|(p, _, _)| p).collect();
    for step in [
        "load_cart",
        "calculate_tax",
        "authorize_payment",
        "create_order",
        "reserve_inventory",
        "capture_payment",
        "send_confirmation_email",
        "request_fulfillment",
    ] {
        assert!(
            points.contains(&&FailurePoint::Step(step.into())),
            "{step} missing"
        );
    }
    assert!(
        points
            .iter()
            .any(|p| matches!(p, FailurePoint::Handler(h) if h.ends_with("apply_gift_card")))
    );
    assert!(
        points
            .iter()
            .any(|p| matches!(p, FailurePoint::Handler(h) if h.ends_with("sync_to_crm")))
    );
    // Failing a best-effort step or an after-hook handler does not fail the checkout.
    for (point, status, _) in &report.results {
        let tolerated = match point {
            FailurePoint::Step(s) => s == "send_confirmation_email" || s == "request_fulfillment",
            FailurePoint::Handler(h) => h.ends_with("sync_to_crm"),
        };
        let expected = if tolerated {
            RunStatus::Completed
        } else {
            RunStatus::Compensated
        };
        assert_eq!(*status, expected, "failing {point}");
    }
}

#[test]
fn the_metadata_lists_hooks_and_steps_in_source_order() {
    use hookflow::{BodyCall, HookKind};
    let meta = <Checkout as Workflow>::META;
    let hooks: Vec<(&str, HookKind, &str)> = meta
        .hooks()
        .iter()
        .map(|h| (h.name(), h.kind(), h.payload()))
        .collect();
    assert_eq!(
        hooks,
        [
            ("validate", HookKind::Before, "CheckoutData"),
            ("before_payment", HookKind::Before, "PaymentRequest"),
            ("order_created", HookKind::After, "Order"),
        ]
    );
    assert_eq!(
        meta.body(),
        [
            BodyCall::Step("load_cart"),
            BodyCall::Step("price_cart"),
            BodyCall::Step("check_inventory"),
            BodyCall::Step("calculate_tax"),
            BodyCall::Hook("validate"),
            BodyCall::Hook("before_payment"),
            BodyCall::Step("authorize_payment"),
            BodyCall::Step("create_order"),
            BodyCall::Parallel(&[
                &[BodyCall::Step("reserve_inventory")],
                &[BodyCall::Step("reserve_inventory")]
            ]),
            BodyCall::Step("capture_payment"),
            BodyCall::Step("send_confirmation_email"),
            BodyCall::Step("request_fulfillment"),
            BodyCall::Hook("order_created"),
        ]
    );
}

#[test]
fn the_checkout_draws_as_a_flowchart_with_its_handlers() {
    let engine = engine_with(shop());
    let diagram = engine.diagram::<Checkout>();
    assert_eq!(
        diagram,
        r#"flowchart TD
    start(["checkout"])
    n0["load_cart"]
    start --> n0
    n1["price_cart"]
    n0 --> n1
    n2["check_inventory"]
    n1 --> n2
    n3["calculate_tax"]
    n2 --> n3
    n4{{"validate: before#lt;CheckoutData#gt;"}}
    n4_h0[/"validate_minimum_amount (configured)"/]
    n4 -.- n4_h0
    n3 --> n4
    n5{{"before_payment: before#lt;PaymentRequest#gt;"}}
    n5_h0[/"apply_gift_card (configured, plugin gift-cards)"/]
    n5 -.- n5_h0
    n4 --> n5
    n6["authorize_payment<br/>undo: Self::void_authorization"]
    n5 --> n6
    n7["create_order<br/>undo: cancel_order"]
    n6 --> n7
    subgraph n8 ["parallel"]
    n9["reserve_inventory<br/>undo: release_inventory"]
    n7 --> n9
    n10["reserve_inventory<br/>undo: release_inventory"]
    n7 --> n10
    end
    n11["capture_payment<br/>undo: Self::refund_payment"]
    n9 --> n11
    n10 --> n11
    n12["send_confirmation_email"]
    n11 --> n12
    n13["request_fulfillment"]
    n12 --> n13
    n14{{"order_created: after#lt;Order#gt;"}}
    n14_h0[/"sync_to_crm (configured)"/]
    n14 -.- n14_h0
    n13 --> n14
    done(["Output"])
    n14 --> done
    n11 -. undo .-> n10
    n10 -. undo .-> n9
    n9 -. undo .-> n7
    n7 -. undo .-> n6
"#
    );
}
