//! Runtime metrics (feature `metrics`): after the checkout example's four checkouts, the
//! Prometheus text shows each run ended by status, each step's duration histogram with the
//! right count, the compensations and hook handler errors of the journals, and no run in
//! flight; a run crashed mid-way and resumed counts as started once.
//!
//! The recorder: a Prometheus recorder per test, set as the default of the test's thread
//! (`metrics::set_default_local_recorder`). `#[tokio::test]` runs on a current-thread runtime,
//! so the runs, their steps and the tasks the engine spawns all run on that thread and report
//! to that recorder, and to no other test's: tests run in parallel threads of one binary,
//! several of them run the same `checkout` workflow, and a global recorder would mix their
//! counts. An emission from another thread would be missing from the counts, which are exact:
//! the test would fail, not pass by chance. `hookflow::metrics::enable()` is process-wide:
//! once a test called it, the other tests' runs report too, to their thread's recorder (none:
//! the facade's no-op one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hookflow::Worker;
use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{EventKind, Journal, RunId};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use serde_json::json;

use crate::workflow::{Checkout, CheckoutInput, Shop, hooks, shop};

/// A Prometheus recorder whose histograms have buckets (not summaries), as a dashboard's.
fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.01, 0.1, 1.0, 10.0])
        .unwrap()
        .build_recorder()
}

fn engine(store: Arc<dyn Store>, shop: Shop) -> Engine {
    // One worker id for the engines of a test: a restarted application takes its runs back.
    Engine::builder()
        .worker_id("metrics-test")
        .hooks(hooks())
        .service(shop)
        .store(store)
        .workflow::<Checkout>()
        .build()
}

async fn checkout(
    engine: &Engine,
    cart: &str,
    extras: serde_json::Value,
) -> hookflow::Outcome<Checkout> {
    let input = CheckoutInput {
        cart_id: cart.into(),
    };
    let options = RunOptions::new()
        .idempotency_key(format!("checkout-{cart}"))
        .additional_data(extras);
    Checkout::run_with(engine, input, options).await
}

/// The value of the sample `name` with exactly the labels `labels`, in Prometheus text.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            return None;
        }
        let found: BTreeMap<&str, &str> = rest
            .trim_end_matches('}')
            .split(',')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                Some((k, v.trim_matches('"')))
            })
            .collect();
        (found == wanted).then(|| value.parse().ok()).flatten()
    })
}

/// `sample`, or 0 when the series does not exist (a counter never incremented).
fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

/// What the journals say happened, counted as the metrics count it.
#[derive(Default)]
struct Expected {
    steps: BTreeMap<(String, &'static str), u64>,
    compensations: BTreeMap<String, u64>,
    compensation_failures: BTreeMap<String, u64>,
    handler_errors: BTreeMap<(String, String), u64>,
}

impl Expected {
    fn add(&mut self, journal: &Journal) {
        for kind in journal.kinds() {
            match kind {
                EventKind::StepCompleted { step, .. } => {
                    *self
                        .steps
                        .entry((step.to_string(), "completed"))
                        .or_default() += 1;
                }
                EventKind::StepFailed { step, .. } => {
                    *self.steps.entry((step.to_string(), "failed")).or_default() += 1;
                }
                EventKind::CompensationCompleted { step, .. } => {
                    *self.compensations.entry(step.to_string()).or_default() += 1;
                }
                EventKind::CompensationFailed { step, .. } => {
                    *self.compensations.entry(step.to_string()).or_default() += 1;
                    *self
                        .compensation_failures
                        .entry(step.to_string())
                        .or_default() += 1;
                }
                EventKind::HookHandlerFailed { hook, handler, .. } => {
                    *self
                        .handler_errors
                        .entry((hook.to_string(), handler.to_string()))
                        .or_default() += 1;
                }
                _ => {}
            }
        }
    }
}

const WF: (&str, &str) = ("workflow", "checkout");

async fn the_four_checkouts_are_counted_by_status_step_and_compensation(store: Arc<dyn Store>) {
    let recorder = recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    hookflow::metrics::enable();

    // The four cases of `cargo run --example checkout`.
    let engine = engine(store, shop());
    let shop = engine.service::<Shop>().unwrap();
    {
        let mut s = shop.lock();
        s.provider_unavailable_for = 1;
        s.mail_down = true;
    }
    let ok = checkout(&engine, "cart_ok", json!({ "gift_card": "GIFT-10" })).await;
    shop.lock().mail_down = false;
    let declined = checkout(&engine, "cart_declined", json!({})).await;
    let small = checkout(&engine, "cart_small", json!({})).await;
    shop.lock().warehouse_down_on_release = Some("west".into());
    let stuck = checkout(&engine, "cart_stuck", json!({})).await;
    let statuses = [&ok, &declined, &small, &stuck].map(|o| o.status());
    assert_eq!(
        statuses,
        [
            RunStatus::Completed,
            RunStatus::Compensated,
            RunStatus::Compensated,
            RunStatus::CompensationFailed
        ]
    );

    let text = handle.render();
    assert!(
        text.contains("# HELP hookflow_runs_started_total Runs started"),
        "{text}"
    );
    let ended = |status| {
        count(
            &text,
            "hookflow_runs_ended_total",
            &[WF, ("status", status)],
        )
    };
    assert_eq!(count(&text, "hookflow_runs_started_total", &[WF]), 4.0);
    assert_eq!(ended("completed"), 1.0, "{text}");
    assert_eq!(ended("compensated"), 2.0, "{text}");
    assert_eq!(ended("compensation_failed"), 1.0, "{text}");
    assert_eq!(ended("parked") + ended("cancelled"), 0.0, "{text}");
    assert_eq!(count(&text, "hookflow_runs_resumed_total", &[WF]), 0.0);
    assert_eq!(sample(&text, "hookflow_runs_in_flight", &[WF]), Some(0.0));
    assert_eq!(
        count(
            &text,
            "hookflow_run_duration_seconds_count",
            &[WF, ("status", "compensated")]
        ),
        2.0
    );

    let mut expected = Expected::default();
    for outcome in [&ok, &declined, &small, &stuck] {
        expected.add(outcome.journal());
    }
    // Not vacuous: the example's runs have steps that complete and fail, compensations that
    // complete and fail, a handler that refuses.
    assert!(expected.steps.len() > 10);
    assert!(
        expected
            .steps
            .contains_key(&("capture_payment".into(), "failed"))
    );
    assert!(expected.compensation_failures.values().sum::<u64>() >= 1);
    assert!(!expected.handler_errors.is_empty());
    for ((step, status), n) in &expected.steps {
        let labels = [WF, ("step", step.as_str()), ("status", status)];
        assert_eq!(
            count(&text, "hookflow_step_duration_seconds_count", &labels),
            *n as f64,
            "step {step} {status}\n{text}"
        );
        // The histogram's largest bucket holds every one of them (no step takes 10 s).
        let bucket = [WF, ("step", step), ("status", status), ("le", "10")];
        assert_eq!(
            count(&text, "hookflow_step_duration_seconds_bucket", &bucket),
            *n as f64
        );
    }
    let series = text
        .lines()
        .filter(|l| l.starts_with("hookflow_step_duration_seconds_count"))
        .count();
    assert_eq!(series, expected.steps.len(), "{text}");
    for (step, n) in &expected.compensations {
        let labels = [WF, ("step", step.as_str())];
        assert_eq!(
            count(&text, "hookflow_compensations_total", &labels),
            *n as f64
        );
        let failed = expected.compensation_failures.get(step).copied();
        assert_eq!(
            count(&text, "hookflow_compensation_failures_total", &labels),
            failed.unwrap_or(0) as f64
        );
    }
    for ((hook, handler), n) in &expected.handler_errors {
        let labels = [WF, ("hook", hook.as_str()), ("handler", handler.as_str())];
        assert_eq!(
            count(&text, "hookflow_hook_handler_errors_total", &labels),
            *n as f64,
            "{text}"
        );
    }
    // No run id anywhere among the labels.
    for outcome in [&ok, &declined, &small, &stuck] {
        assert!(!text.contains(&outcome.run_id().to_string()));
    }
}

/// Until the store holds the completion of step `step` of run `run_id`.
async fn committed(store: &Arc<dyn Store>, run_id: RunId, step: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = store.load(run_id).await.map(|(_, events)| events);
        let done = events.is_ok_and(|events| {
            events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::StepCompleted { step: s, .. } if s == step))
        });
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "step {step} never committed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_resumed_run_is_started_once_and_its_replayed_steps_are_not_counted_again(
    store: Arc<dyn Store>,
) {
    let recorder = recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    hookflow::metrics::enable();

    // The tax service takes a second: the run is "killed" (its future dropped) there, after
    // check_inventory was committed.
    let slow = shop();
    slow.lock().tax_service_delay_secs = 1;
    let run_id = RunId::generate();
    let input = CheckoutInput {
        cart_id: "cart_ok".into(),
    };
    {
        let engine = engine(store.clone(), slow);
        let run = Checkout::run_with(&engine, input, RunOptions::new().run_id(run_id));
        tokio::select! {
            outcome = run => panic!("the run ended before the crash: {:?}", outcome.status()),
            () = committed(&store, run_id, "check_inventory") => {}
        }
    }
    let text = handle.render();
    assert_eq!(count(&text, "hookflow_runs_started_total", &[WF]), 1.0);
    assert_eq!(sample(&text, "hookflow_runs_in_flight", &[WF]), Some(0.0));

    // The application restarts: it resumes the run, which replays its first three steps.
    let report = engine(store.clone(), shop())
        .resume_pending()
        .await
        .unwrap();
    assert_eq!(report.resumed, [(run_id, RunStatus::Completed)]);

    let text = handle.render();
    let step = |name| {
        count(
            &text,
            "hookflow_step_duration_seconds_count",
            &[WF, ("step", name), ("status", "completed")],
        )
    };
    assert_eq!(
        count(&text, "hookflow_runs_started_total", &[WF]),
        1.0,
        "{text}"
    );
    assert_eq!(count(&text, "hookflow_runs_resumed_total", &[WF]), 1.0);
    let ended = [WF, ("status", "completed")];
    assert_eq!(count(&text, "hookflow_runs_ended_total", &ended), 1.0);
    assert_eq!(
        count(&text, "hookflow_run_duration_seconds_count", &ended),
        1.0
    );
    assert_eq!(sample(&text, "hookflow_runs_in_flight", &[WF]), Some(0.0));
    // Each step ended once: the replayed ones before the crash, the others after it (the tax
    // step, in flight at the crash, ended only in the resumed run).
    for name in [
        "load_cart",
        "price_cart",
        "check_inventory",
        "calculate_tax",
        "capture_payment",
    ] {
        assert_eq!(step(name), 1.0, "step {name}\n{text}");
    }
}

async fn a_worker_counts_the_runs_it_claims(store: Arc<dyn Store>) {
    let recorder = recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    hookflow::metrics::enable();

    let engine = engine(store, shop());
    for cart in ["cart_ok", "cart_declined"] {
        let input = CheckoutInput {
            cart_id: cart.into(),
        };
        engine.enqueue::<Checkout>(input).await.unwrap();
    }
    let text = handle.render();
    assert_eq!(count(&text, "hookflow_runs_started_total", &[WF]), 0.0);
    let worker = Worker::new(&engine)
        .poll_interval(Duration::from_millis(10))
        .start()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while worker.report().finished() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            worker.report()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.claimed, 2);

    let text = handle.render();
    let ended = |status| {
        count(
            &text,
            "hookflow_runs_ended_total",
            &[WF, ("status", status)],
        )
    };
    assert_eq!(
        count(&text, "hookflow_worker_claims_total", &[WF]),
        2.0,
        "{text}"
    );
    assert_eq!(count(&text, "hookflow_runs_started_total", &[WF]), 2.0);
    assert_eq!((ended("completed"), ended("compensated")), (1.0, 1.0));
    assert_eq!(sample(&text, "hookflow_runs_in_flight", &[WF]), Some(0.0));
}

on_every_store!(
    #[tokio::test]
    the_four_checkouts_are_counted_by_status_step_and_compensation,
    a_resumed_run_is_started_once_and_its_replayed_steps_are_not_counted_again,
    a_worker_counts_the_runs_it_claims,
);

/// Store errors are counted by operation and kind: a start on a read-only store fails its
/// `create`, and so does every claim of a worker on it.
#[tokio::test]
async fn store_errors_are_counted_by_operation_and_kind() {
    let recorder = recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    hookflow::metrics::enable();

    let dir = std::env::temp_dir().join(format!("hookflow-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    drop(SqliteStore::open(&path).unwrap());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_read_only(&path).unwrap());
    let engine = engine(store, shop());

    let input = CheckoutInput {
        cart_id: "cart_ok".into(),
    };
    let outcome = Checkout::run(&engine, input).await;
    assert_eq!(outcome.status(), RunStatus::Interrupted);
    let text = handle.render();
    let errors = |operation| {
        count(
            &text,
            "hookflow_store_errors_total",
            &[("operation", operation), ("kind", "read_only")],
        )
    };
    assert_eq!(errors("create"), 1.0, "{text}");
    assert_eq!(count(&text, "hookflow_runs_started_total", &[WF]), 0.0);

    let worker = Worker::new(&engine)
        .poll_interval(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(10))
        .start()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while worker.report().store_errors < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            worker.report()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = worker.shutdown(Duration::from_secs(5)).await;
    let text = handle.render();
    assert_eq!(
        count(
            &text,
            "hookflow_store_errors_total",
            &[("operation", "claim"), ("kind", "read_only")],
        ),
        report.store_errors as f64,
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
