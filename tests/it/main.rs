//! hookflow's integration tests, in one test crate (`cargo test --test it`): a module per
//! feature, each of them a test crate of its own until they were put together so that the
//! tests link once instead of once per file. A new behaviour test is a module here. Crates
//! of their own are the tests that build or time things, or test no behaviour: the trybuild
//! suite (`tests/compiletest.rs`, cases in `tests/ui/`) and `tests/panic_abort.rs` run cargo
//! (their builds would take the CPU from the tests of this binary, which run beside each
//! other, while separate test binaries run one after the other); the crash test
//! (`tests/crash.rs`) times its kills in milliseconds and needs the CPU to itself; and
//! `tests/layers.rs` checks the import layers of the sources without using hookflow.
//!
//! The modules share one process: nothing here may set process-wide state (environment
//! variables, the panic hook, a global subscriber) for every test, and a module's statics
//! are its own. `workers` runs this binary again as its worker processes: the entry point
//! they run (`workers::worker_process`) is an ignored test, selected with `--ignored
//! --exact`, not a test of its own.

/// Helpers shared by the modules: `support::postgres` is the PostgreSQL server the tests
/// use (one per run of this binary), `support::child` starts this binary again as a child
/// process.
mod support {
    pub mod child;
    pub mod dirs;
    pub mod pg_client;
    pub mod postgres;
    /// The PostgreSQL server with TLS of `postgres_tls`, and CAs of the tests' own.
    pub mod postgres_tls;
    pub mod records;
    pub mod small_stack;
}

/// Runs each scenario (an `async fn(Arc<dyn Store>-like store)` of the calling module) against
/// every store: in memory, a SQLite file of its own, and a PostgreSQL database of its own (a
/// server started once for this test binary: see tests/it/support/postgres.rs), each as a test
/// with the given attribute: `on_every_store!(#[tokio::test] scenario_a, scenario_b);`.
macro_rules! on_every_store {
    (#[$test:meta] $($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[$test]
                async fn $scenario() {
                    super::$scenario(std::sync::Arc::new(hookflow::store::MemoryStore::new())).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[$test]
                async fn $scenario() {
                    let dir = std::env::temp_dir().join(format!(
                        "hookflow-{}-{}-{}",
                        module_path!().replace("::", "-"),
                        std::process::id(),
                        stringify!($scenario)
                    ));
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::create_dir_all(&dir).unwrap();
                    let store = hookflow::store::sqlite::SqliteStore::open(dir.join("runs.db")).unwrap();
                    super::$scenario(std::sync::Arc::new(store)).await;
                    let _ = std::fs::remove_dir_all(dir);
                }
            )*
        }
        mod postgres {
            use crate::support::postgres::pg_database;
            $(
                #[$test]
                async fn $scenario() {
                    let url = pg_database(stringify!($scenario));
                    let store = hookflow::store::postgres::PostgresStore::connect(&url).await.unwrap();
                    super::$scenario(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

/// The checkout example's workflow, as `checkout_example` and `axum_checkout` use it. It sits
/// at the root of the crate because the axum example's modules (`axum_checkout::app`,
/// `axum_checkout::plugin`) name it `crate::workflow`, as in the example's own binary.
#[path = "../../examples/checkout/workflow/mod.rs"]
mod workflow;

mod after_hooks;
mod axum_checkout;
mod before_hooks;
mod cancel;
mod checkout_example;
mod compensation;
mod context;
mod crash_equivalence;
mod diagram;
mod durable;
mod flowchart_modules;
mod hook_order;
mod jobs;
mod journal;
mod leases;
mod limits;
mod memory_store;
mod nested;
mod panics;
mod parallel;
mod porulle_example;
mod postgres_connect;
mod postgres_plans;
mod postgres_store;
mod prune;
mod quarantine;
mod quarantine_postgres;
mod quarantine_properties;
mod refused_writes;
mod rejects;
mod replay;
mod replay_failures;
mod replay_parallel;
mod retention;
mod saga_properties;
mod schedule_workers;
mod schedules;
mod spawn;
mod sqlite_processes;
mod sqlite_read_only;
mod sqlite_store;
mod step_hooks;
mod step_options;
mod subscribe;
mod timers;
mod transaction_crashes;
mod transactions;
mod waits;
mod wakeups;
mod webhook;
mod workers;
// Operator actions and run lookups.
mod failed_at;
mod fork;
mod lookup;
mod retry;
// Hook handlers: `after<I, O>`, time limits, names and registrar modifiers.
mod after_result_hooks;
mod hook_names;
mod hook_timeouts;
mod metrics;
mod step_methods;
mod typed_context;
// Performance (issue 20): a step's completion rides on the run's next commit.
mod deferred_commits;

// TLS to PostgreSQL (issue 19).
mod postgres_tls;
// Store::find_by_idempotency_key (the dashboard's search).
mod find_by_key;

// Hook points without handlers: the fast path (issue 20, second pass).
mod unhandled_hooks;
// Performance (issue 20, second pass): the SQLite store groups the writes of concurrent runs.
mod sqlite_groups;
mod sqlite_upgrade;
// Performance (issue 20, third pass): a run started in place begins at its first poll.
mod run_start;
// Performance (issue 20, fourth pass): a smaller `Event`, the same JSON.
mod journal_json;
// Performance (issue 20, fourth pass): the SQLite store checkpoints off the committing thread.
mod sqlite_checkpoints;
// Performance (issue 20, fifth pass): the run's future in the run's own span.
mod run_span;
// Performance (issue 20, fifth pass): a SQLite commit is in the files when it returns; a
// dropped store closes its connections (its statements kept prepared are finalized).
mod sqlite_wal_frames;
// Performance (issue 20, sixth pass): a new SQLite store's pages are 2 KiB; an older store
// keeps its own.
mod sqlite_page_size;
// Performance (issue 20, sixth pass): a SQLite connection finds the run it created by its key,
// a hint checked against the run's id.
mod sqlite_run_key;
// Performance (issue 20, sixth pass): a step's context borrows its run; a clone of it holds
// the run on its own.
mod step_context_kept;
// Performance (issue 20, seventh pass): a step's output and compensation data recorded as the
// JSON text written once.
mod recorded_json;
// Performance (issue 20, seventh pass): a step hook's handler that ends at once ends when its
// step completed (one clock reading).
mod hook_handler_clock;
