//! hookflow's integration tests, in one test crate (`cargo test --test it`): a module per
//! feature, each of them a test crate of its own until they were put together so that the
//! tests link once instead of once per file. The trybuild suite (`tests/compiletest.rs`,
//! cases in `tests/ui/`) stays a crate of its own.
//!
//! The modules share one process: nothing here may set process-wide state (environment
//! variables, the panic hook, a global subscriber) for every test, and a module's statics
//! are its own. `crash` and `workers` run this binary again as their child processes: the
//! entry points they run (`crash::child_worker`, `workers::worker_process`) are ignored
//! tests, selected with `--ignored --exact`, not tests of their own.

/// Helpers shared by the modules: `support::postgres` is the PostgreSQL server the tests
/// use (one per run of this binary).
mod support {
    pub mod postgres;
}

/// The checkout example's workflow, as `checkout_example` and `axum_checkout` use it. It sits
/// at the root of the crate because the axum example's modules (`axum_checkout::app`,
/// `axum_checkout::plugin`) name it `crate::workflow`, as in the example's own binary.
#[path = "../../examples/checkout/workflow.rs"]
mod workflow;

mod after_hooks;
mod axum_checkout;
mod before_hooks;
mod checkout_example;
mod compensation;
mod context;
mod crash;
mod diagram;
mod durable;
mod hook_order;
mod jobs;
mod journal;
mod leases;
mod nested;
mod panics;
mod parallel;
mod postgres_store;
mod saga_properties;
mod spawn;
mod sqlite_store;
mod step_hooks;
mod step_options;
mod subscribe;
mod workers;
