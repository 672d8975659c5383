//! The checkout behind HTTP, with axum: `cargo run --example axum_checkout [-- --port 3000]`.
//!
//! See `app.rs` for the route and what it answers, and `plugin.rs` for the loyalty plugin.

mod app;
mod plugin;
#[path = "../checkout/workflow.rs"]
mod workflow;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {err} (try --port 0)");
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");
    println!("checkout service on http://{addr}. Try:");
    println!(
        "  curl -s -X POST http://{addr}/carts/cart_ok/complete -H 'Authorization: Bearer usr_1' -H 'x-request-id: req-1' -H 'content-type: application/json' -d '{{\"additional_data\": {{\"gift_card\": \"GIFT-10\", \"loyalty_member\": \"m_42\"}}}}'"
    );
    println!("  curl -s -X POST http://{addr}/carts/cart_declined/complete   # a problem response");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(err) = axum::serve(listener, app::router(app::engine()))
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("server error: {err}");
    }
}
