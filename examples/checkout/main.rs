//! A commerce checkout written with hookflow: `cargo run --example checkout`.
//!
//! Four runs of the same workflow (see `workflow.rs`), each printed as a trace from its
//! journal: a success (a retried authorization, a gift card, two warehouses in parallel, a
//! best-effort email that fails), a capture declined (the completed steps undone in reverse
//! order, with their data), a rejection by the `validate` hook, and a capture declined while
//! a warehouse is down (the order is flagged for support by `on_compensation_failed`).

mod workflow;

use hookflow::Job;
use hookflow::prelude::*;
use serde_json::json;

use workflow::{Checkout, CheckoutInput, Shop, hooks, money, shop};

fn engine() -> Engine {
    Engine::builder()
        .hooks(hooks())
        .service(shop())
        .jobs(|job: Job| println!("  [job queue] received {} {}", job.name(), job.payload()))
        .record_data(true)
        .build()
}

fn shop_of(engine: &Engine) -> &Shop {
    engine.service::<Shop>().expect("the shop is registered")
}

async fn run(engine: &Engine, title: &str, cart_id: &str, extras: serde_json::Value) {
    println!("== {title}");
    let options = RunOptions::new()
        .request_id(format!("req-{cart_id}"))
        .actor(Actor::user("usr_1").with_role("customer"))
        .origin(Origin::Api)
        .additional_data(extras);
    let input = CheckoutInput {
        cart_id: cart_id.into(),
    };
    let outcome = Checkout::run_with(engine, input, options).await;
    print!("{}", outcome.journal());
    match outcome.result() {
        Ok(order) => println!(
            "  => {}: order {} total {} + tax {}, charged {} (the gift card paid the rest)",
            outcome.status(),
            order.id,
            money(order.total),
            money(order.tax),
            money(order.charged)
        ),
        Err(err) => println!("  => {}: {err}", outcome.status()),
    }
    for failure in outcome.best_effort_failures() {
        println!(
            "  best-effort step {} failed: {}",
            failure.step, failure.error
        );
    }
    let state = shop_of(engine).lock();
    println!(
        "  shop: stock {:?}\n        payments {:?}\n        orders {:?}\n",
        state.warehouse_stock, state.payments, state.orders
    );
}

#[tokio::main]
async fn main() {
    let engine = engine();

    {
        let mut shop = shop_of(&engine).lock();
        shop.provider_unavailable_for = 1;
        shop.mail_down = true;
    }
    run(
        &engine,
        "1. success: authorization retried, gift card applied, stock reserved in two warehouses, email failed (best effort)",
        "cart_ok",
        json!({ "gift_card": "GIFT-10" }),
    )
    .await;
    shop_of(&engine).lock().mail_down = false;
    run(
        &engine,
        "2. capture declined: completed steps undone in reverse order, with their data",
        "cart_declined",
        json!({}),
    )
    .await;
    run(
        &engine,
        "3. rejected by the `validate` hook: below the minimum amount",
        "cart_small",
        json!({}),
    )
    .await;
    shop_of(&engine).lock().warehouse_down_on_release = Some("west".into());
    run(
        &engine,
        "4. capture declined and the west warehouse is down: the order is flagged for support",
        "cart_stuck",
        json!({}),
    )
    .await;
}
