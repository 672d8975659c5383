//! An admin binary for the checkout example's store, which can also resume its runs:
//! `cargo run -p hookflow-cli --example checkout_admin -- --db checkout.db resume RUN`.
//!
//! It registers the checkout workflow with its hooks and services, as the application does,
//! and hands the command line to `hookflow_cli`.

#[path = "../../examples/checkout/workflow/mod.rs"]
mod workflow;

use hookflow::EngineBuilder;

fn main() -> std::process::ExitCode {
    hookflow_cli::Cli::new()
        .workflows(|builder: EngineBuilder| {
            builder
                .worker_id("checkout-admin")
                .hooks(workflow::hooks())
                .service(workflow::shop())
                .workflow::<workflow::Checkout>()
        })
        .main()
}
