//! porulle's checkout pipeline with hookflow: `cargo run --example porulle_checkout`.
//!
//! Two checkouts over one SQLite file that holds the runs and the shop's tables (see
//! `pipeline.rs`): one that passes the minimum amount (its order, lines and audit row commit
//! with the step's journal record, and the `order_placed` webhook goes out with the input and
//! the order), and one under the minimum (the `before_create` handler refuses it inside the
//! transaction: nothing of the order stays, the stock is released, no webhook).

mod pipeline;

use pipeline::{Checkout, CheckoutData, Line, count, create_tables, engine};

#[tokio::main]
async fn main() {
    let path = std::env::temp_dir().join(format!("hookflow-porulle-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    // The store first (it refuses a file that holds other tables and no hookflow schema),
    // then the shop's tables beside its own.
    let engine = engine(&path, |job| {
        println!("  [webhook] {} {}", job.name(), job.payload());
    });
    create_tables(&path).expect("the shop's tables");

    for (title, lines) in [
        (
            "a checkout over the minimum",
            vec![
                Line {
                    sku: "tee".into(),
                    qty: 2,
                    unit_cents: 1_500,
                },
                Line {
                    sku: "mug".into(),
                    qty: 0,
                    unit_cents: 900,
                },
            ],
        ),
        (
            "a checkout under the minimum",
            vec![Line {
                sku: "sticker".into(),
                qty: 3,
                unit_cents: 150,
            }],
        ),
    ] {
        println!("== {title}");
        let data = CheckoutData {
            customer: "cus_1".into(),
            lines,
        };
        let outcome = engine.run::<Checkout>(data).await;
        match outcome.output() {
            Some(order) => println!(
                "  -> {:?}: order #{} for {} cents",
                outcome.status(),
                order.id,
                order.total_cents
            ),
            None => println!(
                "  -> {:?}: {}",
                outcome.status(),
                outcome.error().map(ToString::to_string).unwrap_or_default()
            ),
        }
    }
    println!(
        "== the shop's tables: {} order(s), {} line(s), {} audit row(s)",
        count(&path, "orders"),
        count(&path, "order_lines"),
        count(&path, "order_audit")
    );
    let _ = std::fs::remove_file(&path);
}
