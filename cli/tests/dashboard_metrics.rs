//! `/metrics` after the checkout example's runs: the counts by status and the step-duration
//! histograms, as Prometheus scrapes them. A test binary of its own: it installs the process's
//! recorder, as `hookflow serve` (or an application mounting the dashboard) does.

mod dashboard_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use dashboard_support::{fill, http, start};
use hookflow::store::sqlite::SqliteStore;
use hookflow::{Store, StoredStatus};
use hookflow_cli::dashboard::{Dashboard, install_prometheus};

/// The value of the series `name{labels}` (exactly those labels) in Prometheus text.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_example_checkouts_metrics_shows_runs_by_status_and_step_durations() {
    let handle = install_prometheus().expect("the first recorder of this process");
    // The example's four checkouts (completed, compensated twice, compensation failed), a run
    // whose cart id is markup, and one cut off mid-way.
    let filled = fill("dashboard-metrics", "checkouts").await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&filled.db).unwrap());
    let addr = start(Dashboard::new(Arc::clone(&store)).metrics(handle)).await;

    let metrics = http(addr, "GET", "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    let text = &metrics.body;

    // Runs ended, by status: what the store says of each run that ended.
    let runs = store.list(None, None, 100).await.unwrap().runs;
    for (status, name) in [
        (StoredStatus::Completed, "completed"),
        (StoredStatus::Compensated, "compensated"),
        (StoredStatus::CompensationFailed, "compensation_failed"),
    ] {
        let stored = runs.iter().filter(|r| r.status == status).count() as f64;
        assert!(stored >= 1.0, "the example ends a run {name}");
        assert_eq!(
            sample(
                text,
                "hookflow_runs_ended_total",
                &[("workflow", "checkout"), ("status", name)]
            ),
            Some(stored),
            "runs ended {name}:\n{text}"
        );
    }
    assert_eq!(
        sample(
            text,
            "hookflow_runs_started_total",
            &[("workflow", "checkout")]
        ),
        Some(runs.len() as f64),
        "{text}"
    );

    // A step-duration histogram with buckets: capture_payment completed once (cart_ok) and
    // failed twice (the declined card and the stuck order).
    let capture = |status: &str, le: &str| {
        sample(
            text,
            "hookflow_step_duration_seconds_bucket",
            &[
                ("workflow", "checkout"),
                ("step", "capture_payment"),
                ("status", status),
                ("le", le),
            ],
        )
    };
    assert_eq!(capture("completed", "+Inf"), Some(1.0), "{text}");
    assert_eq!(capture("failed", "+Inf"), Some(2.0), "{text}");
    assert_eq!(capture("completed", "60"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            text,
            "hookflow_step_duration_seconds_count",
            &[
                ("workflow", "checkout"),
                ("step", "capture_payment"),
                ("status", "completed")
            ]
        ),
        Some(1.0)
    );
}
