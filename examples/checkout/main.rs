//! A commerce checkout written with hookflow: `cargo run --example checkout`.
//!
//! Four runs of the same workflow (see `workflow/`), each printed as a trace from its
//! journal: a success (a retried authorization, a gift card, two warehouses in parallel, a
//! best-effort email that fails), a capture declined (the completed steps undone in reverse
//! order, with their data), a rejection by the `validate` hook, and a capture declined while
//! a warehouse is down (the order is flagged for support by `on_compensation_failed`).
//!
//! `cargo run --example checkout -- --db checkout.db` makes the runs durable in a SQLite
//! file, each started with an idempotency key. Kill it mid-way (add `--slow` to give yourself
//! time: the tax service then takes a second) and run it again: it first resumes the
//! interrupted run from its journal, then each scenario returns its recorded outcome instead
//! of running twice.

mod workflow;

use hookflow::Job;
use hookflow::prelude::*;
use serde_json::json;

use hookflow::store::sqlite::SqliteStore;
use workflow::{Checkout, CheckoutInput, Shop, hooks, money, shop};

fn engine(db: Option<&str>, slow: bool) -> Engine {
    let shop = shop();
    if slow {
        shop.lock().tax_service_delay_secs = 1;
    }
    // One process at a time uses the file: a stable worker id lets a restart take back the
    // runs it left at once, without waiting for their leases to lapse.
    let builder = Engine::builder()
        .worker_id("checkout-example")
        .hooks(hooks())
        .service(shop)
        .jobs(|job: Job| println!("  [job queue] received {} {}", job.name(), job.payload()))
        .record_data(true);
    match db {
        Some(path) => match SqliteStore::open(path) {
            Ok(store) => builder.store(store).workflow::<Checkout>().build(),
            Err(err) => {
                eprintln!("cannot open {path}: {err}");
                std::process::exit(1);
            }
        },
        None => builder.build(),
    }
}

fn shop_of(engine: &Engine) -> &Shop {
    engine.service::<Shop>().expect("the shop is registered")
}

async fn run(engine: &Engine, title: &str, cart_id: &str, extras: serde_json::Value) {
    println!("== {title}");
    let options = RunOptions::new()
        .idempotency_key(format!("checkout-{cart_id}"))
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
    // `RUST_LOG=hookflow_runtime=debug cargo run --example checkout` shows the runtime's spans
    // and events on stderr; nothing by default.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let db = args
        .iter()
        .position(|a| a == "--db")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let engine = engine(db, args.iter().any(|a| a == "--slow"));
    if let Some(path) = db {
        match engine.resume_pending().await {
            Ok(report) if report.resumed.is_empty() => println!("{path}: nothing to resume\n"),
            Ok(report) => {
                for (run_id, status) in &report.resumed {
                    println!("{path}: resumed interrupted run {run_id}: {status}");
                }
                println!();
            }
            Err(err) => eprintln!("{path}: cannot resume: {err}"),
        }
    }

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
