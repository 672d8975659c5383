//! A run's tracing span (named after the workflow, with the run's id): the run's code runs in
//! it, `ctx.span()` is it, what a run dropped before its end drops is dropped in it, and the
//! fmt subscriber writes it as `traced{run_id=<the run's id>}`; a workflow called inside
//! another's run has a span named after it too, `refunded{nested=true frame=1}`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookflow::RunId;
use hookflow::prelude::*;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// What the fmt subscriber wrote.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl Written {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Written {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Written {
    type Writer = Written;
    fn make_writer(&'a self) -> Written {
        self.clone()
    }
}

/// Logs when dropped.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        tracing::info!("guard dropped");
    }
}

#[step]
async fn logged(_ctx: &StepContext, n: u64) -> Result<u64, Never> {
    tracing::info!(n, "in the step");
    Ok(n + 1)
}

#[workflow]
async fn traced(ctx: &WorkflowContext, n: u64) -> Result<u64, Never> {
    // The run's span is the current one, and the one its context gives.
    let current = tracing::Span::current();
    assert_eq!(current.id(), ctx.span().id());
    assert_eq!(
        current.metadata().map(|m| m.name()),
        Some("traced"),
        "the run's span, named after the workflow, is current in its body"
    );
    assert_eq!(
        current.metadata().map(|m| m.target()),
        Some("hookflow_runtime::run"),
        "the run's span has the runtime's target, whatever crate the workflow is in"
    );
    let n = logged(ctx, n).await?;
    if n > 100 {
        // Held across an await that never ends: dropped with the run's future.
        let _guard = Guard;
        std::future::pending::<()>().await;
    }
    Ok(n)
}

/// Runs `f` on a current-thread runtime with a fmt subscriber at INFO, without ANSI styles
/// and times, writing to what it returns.
fn with_fmt(f: impl AsyncFnOnce()) -> Vec<String> {
    let written = Written::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(written.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || rt.block_on(f()));
    written.lines()
}

fn engine() -> Engine {
    Engine::builder().workflow::<Traced>().build()
}

#[test]
fn a_run_runs_in_a_span_named_after_its_workflow() {
    let mut run_id = None;
    let lines = with_fmt(async || {
        let id = RunId::generate();
        run_id = Some(id);
        let outcome = engine()
            .run_with::<Traced>(1, RunOptions::default().run_id(id))
            .await;
        assert_eq!(outcome.into_result().unwrap(), 2);
    });
    let run_id = run_id.unwrap();
    assert_eq!(
        lines,
        [format!(" INFO traced{{run_id={run_id}}}: in the step n=1")]
    );
}

#[test]
fn a_run_dropped_before_its_end_drops_its_future_in_its_span() {
    let mut run_id = None;
    let lines = with_fmt(async || {
        let id = RunId::generate();
        run_id = Some(id);
        let engine = engine();
        let run = engine.run_with::<Traced>(200, RunOptions::default().run_id(id));
        // The run waits forever after its step: the timeout drops it there.
        let ended = tokio::time::timeout(Duration::from_millis(20), run).await;
        assert!(ended.is_err(), "the run never ends");
    });
    let run_id = run_id.unwrap();
    let span = format!("traced{{run_id={run_id}}}");
    assert_eq!(
        lines,
        [
            format!(" INFO {span}: in the step n=200"),
            format!(" INFO {span}: guard dropped"),
        ]
    );
}

#[workflow]
async fn refunded(_ctx: &WorkflowContext, n: u64) -> Result<u64, Never> {
    let current = tracing::Span::current();
    assert_eq!(
        current.metadata().map(|m| (m.name(), m.target())),
        Some(("refunded", "hookflow_runtime::run::nested"))
    );
    tracing::info!(n, "in the nested workflow");
    Ok(n * 10)
}

#[workflow]
async fn refunding(ctx: &WorkflowContext, n: u64) -> Result<u64, Never> {
    Refunded::call(ctx, n).await
}

#[test]
fn a_nested_workflow_runs_in_a_span_named_after_it_inside_its_parents() {
    let mut run_id = None;
    let lines = with_fmt(async || {
        let id = RunId::generate();
        run_id = Some(id);
        let engine = Engine::builder()
            .workflow::<Refunding>()
            .workflow::<Refunded>()
            .build();
        let outcome = engine
            .run_with::<Refunding>(3, RunOptions::default().run_id(id))
            .await;
        assert_eq!(outcome.into_result().unwrap(), 30);
    });
    let run_id = run_id.unwrap();
    assert_eq!(
        lines,
        [format!(
            " INFO refunding{{run_id={run_id}}}:refunded{{nested=true frame=1}}: in the nested workflow n=3"
        )]
    );
}
