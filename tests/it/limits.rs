//! What a durable run records is what the store can read back: a value nested deeper than
//! `MAX_DEPTH` or larger than `max_record_bytes` is refused where it is made. An input or
//! additional data: the run is rejected before anything is written. A step's output, a bag
//! value, a `before` hook's data, the workflow's output: the run is parked there, to be
//! resumed after a fix. A job's payload: `enqueue` says why. None of it overflows the stack.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{MemoryStore, Store, StoredStatus};
use hookflow::{EventKind, MAX_DEPTH, RecordError, Rejection, RunError};
use serde_json::{Value, json};

use crate::support::small_stack::block_on_small_stack;

/// A JSON value nested `levels` arrays deep.
fn nested(levels: usize) -> Value {
    let mut value = Value::Null;
    for _ in 0..levels {
        value = Value::Array(vec![value]);
    }
    value
}

#[derive(Debug, thiserror::Error)]
enum LimitError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// What the test asks of the run: how large or deep each value it makes is.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Ask {
    /// The output of `make` is a string of this many bytes.
    output_bytes: usize,
    /// `make` puts in the bag an array nested this deep (0: nothing).
    bag_depth: usize,
    /// The job `make` enqueues has a payload nested this deep (0: no job).
    job_depth: usize,
    /// The workflow's output is nested this deep (0: a string).
    output_depth: usize,
    /// Anything.
    note: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Deep(Value);

#[derive(Default)]
struct Counts {
    made: AtomicUsize,
    keys: std::sync::Mutex<Vec<String>>,
}

#[step]
async fn make(ctx: &StepContext, ask: Ask) -> Result<String, LimitError> {
    let counts = ctx.service::<Arc<Counts>>()?;
    counts.made.fetch_add(1, Ordering::SeqCst);
    counts.keys.lock().unwrap().push(ctx.idempotency_key());
    if ask.bag_depth > 0 {
        ctx.bag().insert(Deep(nested(ask.bag_depth)));
    }
    if ask.job_depth > 0 {
        ctx.jobs().enqueue("deep", &nested(ask.job_depth))?;
    }
    Ok("x".repeat(ask.output_bytes))
}

#[workflow(hooks(review: before<Ask>))]
async fn produce(ctx: &WorkflowContext, ask: Ask) -> Result<Value, LimitError> {
    let ask = ctx.hook(Produce::REVIEW, ask).await?;
    let made = make(ctx, ask.clone()).await?;
    if ask.output_depth > 0 {
        return Ok(nested(ask.output_depth));
    }
    Ok(json!(made.len()))
}

fn engine(store: Arc<dyn Store>, counts: &Arc<Counts>, max_bytes: usize, hooks: Hooks) -> Engine {
    Engine::builder()
        .worker_id("limits")
        .store(store)
        .hooks(hooks)
        .service(Arc::clone(counts))
        .max_record_bytes(max_bytes)
        .workflow::<Produce>()
        .build()
}

fn sqlite(name: &str) -> Arc<SqliteStore> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hookflow-limits-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(SqliteStore::open(dir.join("runs.db")).unwrap())
}

fn parked_reason(outcome: &Outcome<Produce>) -> String {
    assert_eq!(outcome.status(), RunStatus::Parked, "{:?}", outcome.error());
    match outcome.error() {
        Some(RunError::Record(err)) => err.to_string(),
        other => panic!("expected a record error, got {other:?}"),
    }
}

#[tokio::test]
async fn additional_data_nested_too_deep_is_rejected_and_nothing_is_written() {
    let store = sqlite("deep-data");
    let counts = Arc::new(Counts::default());
    let engine = engine(store.clone(), &counts, 1 << 20, Hooks::new());
    // 200 levels: serde_json would write it and never read it back.
    let options = RunOptions::new().additional_data(json!({ "payload": nested(200) }));
    let outcome = engine.run_with::<Produce>(Ask::default(), options).await;
    assert_eq!(outcome.status(), RunStatus::Rejected);
    match outcome.error() {
        Some(RunError::Rejected(Rejection::Record(RecordError::TooDeep { what, limit }))) => {
            assert_eq!(*limit, MAX_DEPTH);
            assert!(what.contains("additional data"), "{what}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(counts.made.load(Ordering::SeqCst), 0, "the run started");
    assert!(store.list(None, None, 10).await.unwrap().runs.is_empty());

    // The deepest accepted additional data is written and read back.
    let fits = nested(MAX_DEPTH - 1);
    let options = RunOptions::new().additional_data(json!({ "payload": fits }));
    let outcome = engine.run_with::<Produce>(Ask::default(), options).await;
    assert_eq!(
        outcome.status(),
        RunStatus::Completed,
        "{:?}",
        outcome.error()
    );
    let (record, _) = store.load(outcome.run_id()).await.unwrap();
    assert_eq!(
        record.additional_data.unwrap()["payload"],
        nested(MAX_DEPTH - 1)
    );
}

#[test]
fn an_input_nested_ten_thousand_levels_is_rejected_without_overflowing_the_stack() {
    let ended = block_on_small_stack(|| async {
        let store = Arc::new(MemoryStore::default());
        let engine = Engine::builder().store(store.clone()).build();
        let outcome = engine.run::<Echo>(nested(10_000)).await;
        let rejected = matches!(
            outcome.error(),
            Some(RunError::Rejected(Rejection::Record(
                RecordError::TooDeep { .. }
            )))
        );
        let nothing = store.list(None, None, 10).await.unwrap().runs.is_empty();
        // The outcome holds no copy of the input: dropping it is cheap. The input
        // itself was moved into the run and dropped there... level by level below.
        (outcome.status(), rejected, nothing)
    });
    assert_eq!(ended, (RunStatus::Rejected, true, true));
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[workflow]
async fn echo(_ctx: &WorkflowContext, input: Value) -> Result<u32, Never> {
    // Dropped level by level: a 10,000-level `Value` dropped recursively could itself
    // overflow a small stack.
    let mut stack = vec![input];
    let mut levels = 0;
    while let Some(value) = stack.pop() {
        if let Value::Array(items) = value {
            levels += 1;
            stack.extend(items);
        }
    }
    Ok(levels)
}

#[tokio::test]
async fn a_step_output_over_the_bound_parks_the_run_which_resumes_after_a_fix() {
    let store: Arc<dyn Store> = sqlite("big-output");
    let counts = Arc::new(Counts::default());
    let small = engine(store.clone(), &counts, 1_000, Hooks::new());
    let ask = Ask {
        output_bytes: 5_000,
        ..Ask::default()
    };
    let outcome = small.run::<Produce>(ask).await;
    let reason = parked_reason(&outcome);
    assert!(
        reason.contains("the output of step `make`")
            && reason.contains("max_record_bytes")
            && reason.contains("1000"),
        "{reason}"
    );
    let run_id = outcome.run_id();
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Parked);
    assert!(record.error.unwrap().contains("the output of step `make`"));
    // Nothing of the output was written: the step is in flight in the journal.
    assert!(!events.iter().any(|e| matches!(
        &e.kind,
        EventKind::StepCompleted { step, .. } if step == "make"
    )));
    // A parked run is not resumed by itself.
    assert!(store.pending().await.unwrap().runs.is_empty());
    assert_eq!(small.resume_pending().await.unwrap().resumed, []);

    // With a larger bound, resumed by hand: the step runs again, under the same key.
    let large = engine(store.clone(), &counts, 1 << 20, Hooks::new());
    assert_eq!(large.resume(run_id).await.unwrap(), RunStatus::Completed);
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.output, Some(json!(5_000)));
    let keys = counts.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
}

#[tokio::test]
async fn a_bag_value_too_deep_parks_the_run() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let counts = Arc::new(Counts::default());
    let engine = engine(store.clone(), &counts, 1 << 20, Hooks::new());
    let ask = Ask {
        bag_depth: 300,
        ..Ask::default()
    };
    let reason = parked_reason(&engine.run::<Produce>(ask).await);
    assert!(
        reason.contains("the bag value") && reason.contains("Deep") && reason.contains("levels"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_workflow_output_too_deep_parks_the_run() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let counts = Arc::new(Counts::default());
    let engine = engine(store.clone(), &counts, 1 << 20, Hooks::new());
    let ask = Ask {
        output_depth: MAX_DEPTH + 1,
        ..Ask::default()
    };
    let outcome = engine.run::<Produce>(ask).await;
    let reason = parked_reason(&outcome);
    assert!(reason.contains("the workflow's output"), "{reason}");
    assert!(outcome.jobs().is_empty());
    // One level less is recorded.
    let ask = Ask {
        output_depth: MAX_DEPTH,
        ..Ask::default()
    };
    let outcome = engine.run::<Produce>(ask).await;
    assert_eq!(
        outcome.status(),
        RunStatus::Completed,
        "{:?}",
        outcome.error()
    );
    let (record, _) = store.load(outcome.run_id()).await.unwrap();
    assert_eq!(record.output, Some(nested(MAX_DEPTH)));
}

#[tokio::test]
async fn a_before_hook_whose_data_is_too_large_parks_the_run() {
    async fn pad(_ctx: &HookContext, mut ask: Ask) -> Result<Ask, LimitError> {
        // What a `before` handler returns is journaled: this is over the engine's bound.
        ask.note = "x".repeat(500);
        Ok(ask)
    }
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let counts = Arc::new(Counts::default());
    let mut hooks = Hooks::new();
    Produce::hooks(&mut hooks).review(pad);
    let engine = engine(store.clone(), &counts, 300, hooks);
    let outcome = engine.run::<Produce>(Ask::default()).await;
    let reason = parked_reason(&outcome);
    assert!(
        reason.contains("the data handler") && reason.contains("hook `review`"),
        "{reason}"
    );
    assert_eq!(counts.made.load(Ordering::SeqCst), 0, "the body went on");
}

#[tokio::test]
async fn a_job_payload_too_deep_is_refused_by_enqueue() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let counts = Arc::new(Counts::default());
    let engine = engine(store.clone(), &counts, 1 << 20, Hooks::new());
    let ask = Ask {
        job_depth: MAX_DEPTH + 1,
        ..Ask::default()
    };
    let outcome = engine.run::<Produce>(ask).await;
    // The step's own `?` turned it into the step's error: the run failed, nothing enqueued.
    assert_eq!(outcome.status(), RunStatus::Compensated);
    let message = outcome.error().unwrap().to_string();
    assert!(
        message.contains("the payload of job `deep`") && message.contains("levels"),
        "{message}"
    );
    assert!(outcome.jobs().is_empty());
}
