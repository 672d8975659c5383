//! A checkout that waits for the payment provider's webhook: `cargo run --example
//! webhook_checkout`. See `app.rs` for the workflow and the routes.
//!
//! The runs are kept in a SQLite file (`HOOKFLOW_WEBHOOK_DB`, `webhook_checkout.db` by
//! default) and the shop's effects appended to `HOOKFLOW_WEBHOOK_EFFECTS`
//! (`webhook_checkout.effects`): stop the server while a checkout waits, start it again, and
//! the webhook still completes it. It listens on 127.0.0.1, port 3001 (`PORT` to change it; 0
//! picks a free one).

mod app;

use std::path::PathBuf;

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() {
    let db = PathBuf::from(var("HOOKFLOW_WEBHOOK_DB", "webhook_checkout.db"));
    let effects = PathBuf::from(var("HOOKFLOW_WEBHOOK_EFFECTS", "webhook_checkout.effects"));
    let port: u16 = match var("PORT", "3001").parse() {
        Ok(port) => port,
        Err(_) => {
            eprintln!("webhook_checkout: PORT is a number from 0 to 65535");
            std::process::exit(2);
        }
    };
    let service = match app::service(db.clone(), effects) {
        Ok(service) => service,
        Err(err) => {
            eprintln!("webhook_checkout: cannot open {}: {err}", db.display());
            std::process::exit(1);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("webhook_checkout: cannot listen on 127.0.0.1:{port}: {err}");
            std::process::exit(1);
        }
    };
    let url = listener
        .local_addr()
        .map(|addr| format!("http://{addr}"))
        .unwrap_or_default();
    println!("webhook checkout listening on {url}");
    println!(
        "  curl -s -X POST {url}/checkouts -H 'content-type: application/json' -d '{{\"order\": \"o1\", \"total\": 4200}}'"
    );
    println!(
        "  curl -s -X POST {url}/webhooks/payment -H 'content-type: application/json' -d '{{\"run_id\": \"RUN\", \"payment_id\": \"pay_1\", \"amount\": 4200}}'"
    );
    println!("  curl -s {url}/checkouts/RUN");
    if let Err(err) = axum::serve(listener, app::router(&service)).await {
        eprintln!("webhook_checkout: {err}");
        std::process::exit(1);
    }
}
