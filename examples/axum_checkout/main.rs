//! The checkout workflow behind an HTTP route, with axum: `cargo run --example axum_checkout`.
//!
//! `POST /carts/{id}/complete` runs the checkout of `examples/checkout/workflow/` with the
//! request's actor (`Authorization: Bearer usr_1`), request id (`x-request-id`, made if
//! absent and echoed) and additional data (`{"additional_data": {...}}`), and answers with
//! the order or an RFC 9457 problem (see `app.rs`). A loyalty plugin (`plugin.rs`) hooks into
//! the checkout beside the application's own handlers.
//!
//! It listens on 127.0.0.1, port 3000: `-- --port 8080` or `PORT=8080` to change it (0 picks
//! a free port). `RUST_LOG=debug` shows the runtime's spans and events inside each request's
//! span.

mod app;
mod plugin;
mod problem;
#[path = "../checkout/workflow/mod.rs"]
mod workflow;

use hookflow::Job;
use hookflow::prelude::*;

/// The engine: the shop, the application's hooks with the gift-card plugin, the loyalty
/// plugin and its program, and an in-memory store for idempotency keys (`app::store`: it
/// keeps only keyed runs, for `app::IDEMPOTENCY_WINDOW` after their end).
fn engine() -> Engine {
    let shop = workflow::shop();
    {
        // Plenty of stock, so that the curl lines below can be pasted again and again.
        let mut state = shop.lock();
        state.stock.values_mut().for_each(|qty| *qty = 1_000_000);
        state
            .warehouse_stock
            .values_mut()
            .for_each(|qty| *qty = 1_000_000);
    }
    let mut hooks = workflow::hooks();
    hooks.plugin(plugin::LoyaltyPlugin);
    Engine::builder()
        .hooks(hooks)
        .service(shop)
        .service(plugin::LoyaltyProgram::demo())
        .store(app::store())
        .jobs(
            |job: Job| tracing::info!(job = job.name(), payload = %job.payload(), "job dispatched"),
        )
        .build()
}

/// The port from `--port N`, `--port=N` or `PORT`; 3000 by default.
fn port() -> Result<u16, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut given = std::env::var("PORT").ok();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--port" {
            given = Some(args.next().ok_or("--port needs a value")?.clone());
        } else if let Some(port) = arg.strip_prefix("--port=") {
            given = Some(port.to_owned());
        } else {
            return Err(format!(
                "unknown argument `{arg}` (usage: axum_checkout [--port N])"
            ));
        }
    }
    given.map_or(Ok(3000), |port| {
        port.parse()
            .map_err(|_| format!("invalid port `{port}`: expected a number from 0 to 65535"))
    })
}

#[tokio::main]
async fn main() {
    // Each request is logged at INFO with its request id; `RUST_LOG` overrides the default.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("axum_checkout=info,hookflow_runtime=warn")
            }),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let port = port().unwrap_or_else(|err| {
        eprintln!("axum_checkout: {err}");
        std::process::exit(2);
    });
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("axum_checkout: cannot listen on 127.0.0.1:{port}: {err}");
            std::process::exit(1);
        }
    };
    let url = match listener.local_addr() {
        Ok(addr) => format!("http://{addr}"),
        Err(err) => {
            eprintln!("axum_checkout: {err}");
            std::process::exit(1);
        }
    };
    println!("checkout service listening on {url}\n");
    println!("A checkout by customer usr_1, with a gift card and a loyalty card (200, the order):");
    println!(
        "  curl -i -X POST {url}/carts/cart_ok/complete -H 'Authorization: Bearer usr_1' \
         -H 'x-request-id: req-1' -H 'content-type: application/json' \
         -d '{{\"additional_data\": {{\"gift_card\": \"GIFT-10\", \"loyalty_card\": \"LC-1001\"}}}}'"
    );
    println!("A declined payment (402, the completed steps undone):");
    println!(
        "  curl -i -X POST {url}/carts/cart_declined/complete -H 'Authorization: Bearer usr_1'"
    );
    println!("A rejection by the `validate` hook (422, below the minimum amount):");
    println!("  curl -i -X POST {url}/carts/cart_small/complete");
    if let Err(err) = axum::serve(listener, app::router(engine())).await {
        eprintln!("axum_checkout: {err}");
        std::process::exit(1);
    }
}
