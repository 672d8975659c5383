//! The `hookflow` command against a SQLite store filled by the checkout example's workflow:
//! the four scenarios of `cargo run --example checkout` and one run interrupted mid-way.

#[path = "../../examples/checkout/workflow/mod.rs"]
mod workflow;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{EngineBuilder, Store, StoredStatus};
use workflow::{Checkout, CheckoutInput};

fn engine_builder() -> EngineBuilder {
    Engine::builder()
        .worker_id("cli-test")
        .hooks(workflow::hooks())
        .service(workflow::shop())
        .record_data(true)
        .workflow::<Checkout>()
}

struct Filled {
    db: PathBuf,
    /// The run ids by idempotency key (`checkout-cart_ok`, ..., `interrupted`).
    ids: std::collections::HashMap<String, String>,
}

/// A store filled like `cargo run --example checkout -- --db FILE`, plus an interrupted run.
async fn fill(name: &str) -> Filled {
    let dir = std::env::temp_dir().join(format!("hookflow-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("checkout.db");
    let engine = engine_builder()
        .store(SqliteStore::open(&db).unwrap())
        .build();
    let shop = engine.service::<workflow::Shop>().unwrap();
    {
        let mut state = shop.lock();
        state.provider_unavailable_for = 1;
        state.mail_down = true;
    }
    let run = |cart: &'static str, extras: serde_json::Value| {
        let engine = engine.clone();
        async move {
            let options = RunOptions::new()
                .idempotency_key(format!("checkout-{cart}"))
                .request_id(format!("req-{cart}"))
                .actor(Actor::user("usr_1").with_role("customer"))
                .additional_data(extras);
            let input = CheckoutInput {
                cart_id: cart.into(),
            };
            engine.run_with::<Checkout>(input, options).await.status()
        }
    };
    assert_eq!(
        run("cart_ok", serde_json::json!({ "gift_card": "GIFT-10" })).await,
        RunStatus::Completed
    );
    shop.lock().mail_down = false;
    assert_eq!(
        run("cart_declined", serde_json::json!({})).await,
        RunStatus::Compensated
    );
    assert_eq!(
        run("cart_small", serde_json::json!({})).await,
        RunStatus::Compensated
    );
    shop.lock().warehouse_down_on_release = Some("west".into());
    assert_eq!(
        run("cart_stuck", serde_json::json!({})).await,
        RunStatus::CompensationFailed
    );
    // A run whose process stops while the tax service is slow: it stays `running`.
    shop.lock().warehouse_down_on_release = None;
    shop.lock().tax_service_delay_secs = 30;
    let interrupted = tokio::time::timeout(
        Duration::from_millis(500),
        engine.run_with::<Checkout>(
            CheckoutInput {
                cart_id: "cart_ok".into(),
            },
            RunOptions::new().idempotency_key("interrupted"),
        ),
    )
    .await;
    assert!(interrupted.is_err(), "the run was cut off mid-way");
    drop(engine);

    let store = SqliteStore::open(&db).unwrap();
    let ids = store
        .list(None, None, 100)
        .await
        .unwrap()
        .runs
        .into_iter()
        .map(|r| (r.idempotency_key.unwrap(), r.run_id.to_string()))
        .collect();
    Filled { db, ids }
}

/// Runs the `hookflow` binary: (exit code, stdout, stderr).
fn hookflow(db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The output with what changes from run to run replaced: run ids, dates, times,
/// durations (`12.3 ms` becomes `<d>`).
fn normalize(text: &str) -> String {
    let number = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.');
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut kept: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let word = words[i];
            let bare = word.trim_start_matches(['(', '+']);
            let unit = words.get(i + 1).copied().unwrap_or_default();
            let unit_name = unit.trim_end_matches([')', ':', ',']);
            if number(bare) && ["µs", "ms", "s"].contains(&unit_name) {
                let prefix = &word[..word.len() - bare.len()];
                kept.push(format!("{prefix}<d>{}", &unit[unit_name.len()..]));
                i += 2;
                continue;
            }
            kept.push(
                if word.len() >= 36 && hookflow::RunId::parse(&word[..36]).is_ok() {
                    format!("<run>{}", &word[36..])
                } else if word.len() == 10 && word.as_bytes().get(4) == Some(&b'-') {
                    "<date>".to_owned()
                } else if word.len() == 12 && word.as_bytes().get(2) == Some(&b':') {
                    "<time>".to_owned()
                } else {
                    word.to_owned()
                },
            );
            i += 1;
        }
        out.push_str(kept.join(" ").trim_end());
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_lists_every_run_with_its_status_and_filters() {
    let filled = fill("runs").await;
    let (code, out, err) = hookflow(&filled.db, &["runs"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[0].starts_with("RUN"), "{out}");
    for (key, status) in [
        ("checkout-cart_ok", "completed"),
        ("checkout-cart_declined", "compensated"),
        ("checkout-cart_small", "compensated"),
        ("checkout-cart_stuck", "compensation_failed"),
        ("interrupted", "running"),
    ] {
        let id = &filled.ids[key];
        let line = lines.iter().find(|l| l.starts_with(id.as_str())).unwrap();
        assert!(line.contains(&format!(" {status} ")), "{key}: {line}");
        assert!(line.contains("checkout v1"), "{line}");
    }
    // The newest first.
    assert!(lines[1].starts_with(filled.ids["interrupted"].as_str()));

    let (_, out, _) = hookflow(&filled.db, &["runs", "--status", "compensated"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains(&filled.ids["checkout-cart_declined"]));
    assert!(out.contains(&filled.ids["checkout-cart_small"]));
    let (_, out, _) = hookflow(&filled.db, &["runs", "--workflow", "refund"]);
    assert_eq!(
        out,
        "RUN  WORKFLOW  STATUS  CREATED (UTC)  TOOK  ERROR\n(no runs)\n"
    );
    let (_, out, _) = hookflow(&filled.db, &["runs", "--limit", "2"]);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_the_record_timeline_steps_compensations_and_hook_errors() {
    let filled = fill("show").await;
    let (code, out, err) = hookflow(&filled.db, &["show", &filled.ids["checkout-cart_stuck"]]);
    assert_eq!(code, 0, "{err}");
    let text = normalize(&out);
    // The parts that are the same every time (the timeline's offsets and the durations
    // normalized away), reviewed by eye.
    for expected in [
        "run         <run>",
        "workflow    checkout v1",
        "status      compensation_failed",
        "request id  req-cart_stuck",
        "actor       user usr_1 (roles: customer)",
        "idempotency checkout-cart_stuck",
        "lease       free (generation 1)",
        "\ntimeline\n",
        "claimed by worker cli-test (lease generation 1)",
        "\nsteps\n",
        "\ncompensations\n",
        "\nhook errors\n  (none)\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let steps = section(&text, "steps");
    assert!(steps[0].starts_with("#0   load_cart"), "{steps:?}");
    assert!(
        steps
            .iter()
            .all(|s| s.contains("completed") || s.contains("FAILED"))
    );
    let failed: Vec<&String> = steps.iter().filter(|s| s.contains("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{steps:?}");
    assert!(failed[0].contains("capture_payment"), "{failed:?}");
    let undos = section(&text, "compensations");
    assert!(undos.iter().any(|u| u.contains("UNDO FAILED")), "{undos:?}");
    assert!(undos.iter().any(|u| u.contains("undone")), "{undos:?}");
    // Every completed step and compensation has a duration.
    for line in steps.iter().chain(&undos) {
        assert!(line.contains("<d>"), "no duration in {line:?}");
    }

    // The validate hook's rejection is a hook error.
    let (_, out, _) = hookflow(&filled.db, &["show", &filled.ids["checkout-cart_small"]]);
    let hooks = section(&normalize(&out), "hook errors");
    assert_eq!(hooks.len(), 1, "{out}");
    assert!(
        hooks[0].starts_with("validate [configured] validate_minimum_amount:"),
        "{hooks:?}"
    );
}

/// The lines of a section of `show`'s output.
fn section(text: &str, title: &str) -> Vec<String> {
    text.split(&format!("\n{title}\n"))
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagram_draws_the_run_as_a_sequence() {
    let filled = fill("diagram").await;
    let (code, out, err) = hookflow(
        &filled.db,
        &["diagram", &filled.ids["checkout-cart_declined"]],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sequenceDiagram\n"), "{out}");
    assert!(out.contains("capture_payment"), "{out}");
    assert!(out.contains("undone"), "{out}");
    let (code, out, err) = hookflow(
        &filled.db,
        &["diagram", "--gantt", &filled.ids["checkout-cart_declined"]],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("gantt\n"), "{out}");
    assert!(
        out.contains(" :crit, s"),
        "the failed step is critical: {out}"
    );
    assert!(out.contains("section compensations"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_clear_errors() {
    let filled = fill("errors").await;
    let missing = filled.db.with_file_name("nope.db");
    let (code, _, err) = hookflow(&missing, &["runs"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "hookflow: no database at {}: give the SQLite file an engine writes to, or a postgres:// URL\n",
            missing.display()
        )
    );
    assert!(!missing.exists(), "no empty database left behind");

    let unknown = "01900000-0000-7000-8000-000000000000";
    let (code, _, err) = hookflow(&filled.db, &["show", unknown]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("hookflow: no run {unknown} in this store (`hookflow runs` lists them)\n")
    );

    let (code, _, err) = hookflow(&filled.db, &["show", "order-17"]);
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("`order-17` is not a run id"), "{err}");

    let (code, _, err) = hookflow(&filled.db, &["runs", "--status", "done"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown status `done`: one of running"),
        "{err}"
    );

    let (code, _, err) = hookflow(Path::new("postgres://nobody@127.0.0.1:1/none"), &["runs"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "hookflow: cannot open the store postgres://nobody@127.0.0.1:1/none: store unavailable"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_needs_the_workflow_and_finishes_the_run() {
    let filled = fill("resume").await;
    let run = filled.ids["interrupted"].clone();
    // The bare binary knows no workflow.
    let (code, _, err) = hookflow(&filled.db, &["resume", &run]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is a run of workflow `checkout` version 1, which this binary does not know"),
        "{err}"
    );

    // An admin binary that registers it (as cli/examples/checkout_admin.rs does).
    let admin = hookflow_cli::Cli::new().workflows(|b| {
        b.worker_id("cli-test")
            .hooks(workflow::hooks())
            .service(workflow::shop())
            .workflow::<Checkout>()
    });
    let db = filled.db.to_str().unwrap();
    let out = admin
        .execute(hookflow_cli::Args::parse_from([
            "hookflow", "--db", db, "resume", &run,
        ]))
        .await
        .unwrap();
    assert_eq!(out, format!("run {run}: completed\n"));
    let store = SqliteStore::open(&filled.db).unwrap();
    let running = store
        .list(Some(StoredStatus::Running), None, 10)
        .await
        .unwrap()
        .runs;
    assert!(running.is_empty(), "{running:?}");
    let (_, out, _) = hookflow(&filled.db, &["show", &run]);
    assert!(out.contains("run resumed from its journal"), "{out}");
}

/// The same commands over a PostgreSQL store (a throw-away server: tests/it/support/postgres.rs).
mod postgres {
    include!("../../tests/it/support/postgres.rs");

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_and_show_read_a_postgres_store() {
        let url = pg_database("cli");
        let engine = engine_builder()
            .store(
                hookflow::store::postgres::PostgresStore::connect(&url)
                    .await
                    .unwrap(),
            )
            .build();
        let declined = engine
            .run_with::<Checkout>(
                CheckoutInput {
                    cart_id: "cart_declined".into(),
                },
                RunOptions::new().request_id("req-pg"),
            )
            .await;
        assert_eq!(declined.status(), RunStatus::Compensated);
        let id = declined.run_id().to_string();
        let (code, out, err) = hookflow(Path::new(&url), &["runs"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(&format!("{id}  checkout v1  compensated")),
            "{out}"
        );
        let (code, out, err) = hookflow(Path::new(&url), &["show", &id]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("request id  req-pg"), "{out}");
        assert!(out.contains("capture_payment"), "{out}");
        let unknown = "01900000-0000-7000-8000-000000000001";
        let (code, _, err) = hookflow(Path::new(&url), &["diagram", unknown]);
        assert_eq!(code, 1);
        assert!(err.contains("no run"), "{err}");
    }
}
