//! A step's output and compensation data are recorded as the JSON text their serializer
//! wrote, once: with the record's limits (depth, size) checked in that one pass, written into
//! the event as the JSON it is, read back (and replayed) from it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoredStatus};
use hookflow::{EventKind, RecordError, RecordedJson, RunError};
use serde_json::Value;

use crate::support::small_stack::block_on_small_stack;

/// Fields in an order that is not sorted, with text that needs escapes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Shape {
    zeta: u32,
    alpha: String,
    middle: Vec<i64>,
}

fn shape() -> Shape {
    Shape {
        zeta: 7,
        alpha: "a \"quoted\" line\n".into(),
        middle: vec![-1, 0, 1],
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// How many times `first` ran with the `n` of each test (they run side by side).
static FIRST_RAN: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

#[step(compensate = unshape)]
async fn first(_ctx: &StepContext, n: usize) -> Result<StepResponse<Shape, Shape>, Never> {
    if let Some(count) = FIRST_RAN.get(n.wrapping_sub(5_000)) {
        count.fetch_add(1, Ordering::SeqCst);
    }
    Ok(StepResponse::new(shape(), shape()))
}

async fn unshape(_ctx: &StepContext, _data: Shape) -> Result<(), Never> {
    Ok(())
}

#[step]
async fn second(_ctx: &StepContext, n: usize) -> Result<Value, Never> {
    if n >= 10_000 {
        // Nested 10,000 levels: refused before serializing it recurses that deep.
        let mut value = Value::Null;
        for _ in 0..n {
            value = Value::Array(vec![value]);
        }
        return Ok(value);
    }
    Ok(Value::String("x".repeat(n)))
}

#[workflow]
async fn shaped(ctx: &WorkflowContext, n: usize) -> Result<Shape, Never> {
    let shape = first(ctx, n).await?;
    second(ctx, n).await?;
    Ok(shape)
}

fn sqlite(name: &str) -> (Arc<SqliteStore>, PathBuf) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hookflow-recorded-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    (Arc::new(SqliteStore::open(&path).unwrap()), path)
}

fn engine(store: Arc<dyn Store>, max_bytes: usize) -> Engine {
    Engine::builder()
        .worker_id("recorded")
        .store(store)
        .max_record_bytes(max_bytes)
        .workflow::<Shaped>()
        .build()
}

#[tokio::test]
async fn a_step_output_is_recorded_as_its_json_once_and_replayed_from_it() {
    let (store, path) = sqlite("replay");
    // Over the bound at `second` (5,000 bytes and two quotes): parked there, with its size.
    let outcome = engine(store.clone(), 1_000).run::<Shaped>(5_000).await;
    assert_eq!(outcome.status(), RunStatus::Parked);
    match outcome.error() {
        Some(RunError::Record(RecordError::TooLarge { what, size, limit })) => {
            assert_eq!(
                (what.as_str(), *size, *limit),
                ("the output of step `second`", 5_002, 1_000)
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let run_id = outcome.run_id();

    // `first`'s output and data are in its event as the JSON they are: an object, its fields
    // in the order the type wrote them.
    let written = serde_json::to_string(&shape()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let texts: Vec<String> = conn
        .prepare("SELECT event FROM events WHERE event LIKE '%\"step_completed\"%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains(&format!(
            ",\"output\":{written},\"compensation\":{written}}}"
        )),
        "{}",
        texts[0]
    );
    let (_, events) = store.load(run_id).await.unwrap();
    let recorded = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StepCompleted { output, .. } => output.clone(),
            _ => None,
        })
        .unwrap();
    assert_eq!(*recorded, RecordedJson::new(&shape()).unwrap());
    assert_eq!(recorded.parse::<Shape>().unwrap(), shape());

    // Resumed with a larger bound: `first` is replayed from its record, not run again.
    assert_eq!(FIRST_RAN[0].load(Ordering::SeqCst), 1);
    let large = engine(store.clone(), 1 << 20);
    assert_eq!(large.resume(run_id).await.unwrap(), RunStatus::Completed);
    assert_eq!(FIRST_RAN[0].load(Ordering::SeqCst), 1);
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.output, Some(serde_json::to_value(shape()).unwrap()));
}

#[test]
fn a_step_output_nested_ten_thousand_levels_parks_the_run_without_overflowing_the_stack() {
    let ended = block_on_small_stack(|| async {
        let (store, _) = sqlite("deep");
        let outcome = engine(store.clone(), 1 << 20).run::<Shaped>(10_000).await;
        let too_deep = matches!(
            outcome.error(),
            Some(RunError::Record(RecordError::TooDeep { what, .. }))
                if what == "the output of step `second`"
        );
        let (record, _) = store.load(outcome.run_id()).await.unwrap();
        (outcome.status(), too_deep, record.status)
    });
    assert_eq!(ended, (RunStatus::Parked, true, StoredStatus::Parked));
}

#[tokio::test]
async fn a_recorded_output_that_is_not_json_is_an_error_when_read_back() {
    let (store, path) = sqlite("bad");
    let outcome = engine(store.clone(), 1_000).run::<Shaped>(5_001).await;
    assert_eq!(outcome.status(), RunStatus::Parked);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let changed = conn
        .execute(
            "UPDATE events SET event = replace(event, '\"output\":{', '\"output\":{,') \
             WHERE event LIKE '%\"step_completed\"%'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    // Read back, it is an error (the store's), not a panic; resuming it does not run it.
    assert!(store.load(outcome.run_id()).await.is_err());
    assert_eq!(FIRST_RAN[1].load(Ordering::SeqCst), 1);
    assert!(
        engine(store.clone(), 1 << 20)
            .resume(outcome.run_id())
            .await
            .is_err()
    );
    assert_eq!(FIRST_RAN[1].load(Ordering::SeqCst), 1);
}
