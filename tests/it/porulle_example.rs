//! The porulle checkout example (`examples/porulle_checkout`): an order over the minimum
//! commits its order, lines and audit row with the step and sends one webhook with the
//! checkout's input and the order; one under the minimum leaves no row of its order (the
//! handler's refusal rolled the transaction back), releases its stock, and sends nothing.

#[path = "../../examples/porulle_checkout/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

use std::sync::{Arc, Mutex};

use hookflow::RunStatus;
use pipeline::{Checkout, CheckoutData, Line, count, create_tables, engine};

#[tokio::test]
async fn the_minimum_amount_check_rolls_the_order_back_inside_its_transaction() {
    let dir = std::env::temp_dir().join(format!("hookflow-porulle-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shop.db");
    let webhooks = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&webhooks);
    let engine = engine(&path, move |job| {
        seen.lock().unwrap().push(job.payload().clone())
    });
    create_tables(&path).unwrap();

    let line = |sku: &str, qty, unit_cents| Line {
        sku: sku.into(),
        qty,
        unit_cents,
    };
    let over = engine
        .run::<Checkout>(CheckoutData {
            customer: "cus_1".into(),
            lines: vec![line("tee", 2, 1_500), line("mug", 0, 900)],
        })
        .await;
    assert_eq!(over.status(), RunStatus::Completed, "{:?}", over.error());
    let order = over.output().unwrap().clone();
    assert_eq!(order.total_cents, 3_000);

    let under = engine
        .run::<Checkout>(CheckoutData {
            customer: "cus_2".into(),
            lines: vec![line("sticker", 3, 150)],
        })
        .await;
    assert_eq!(under.status(), RunStatus::Compensated);
    let error = under.error().map(ToString::to_string).unwrap_or_default();
    assert!(error.contains("under the minimum"), "{error}");

    assert_eq!(count(&path, "orders"), 1, "the refused order rolled back");
    assert_eq!(
        count(&path, "order_lines"),
        1,
        "the mug's empty line was dropped"
    );
    assert_eq!(
        count(&path, "order_audit"),
        1,
        "the refused check rolled back too"
    );
    let webhooks = webhooks.lock().unwrap().clone();
    assert_eq!(
        webhooks,
        vec![serde_json::json!({ "order": order.id, "customer": "cus_1", "lines": 1 })],
        "one webhook, with the input (after validation) and the order"
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
}
