//! Step options: `retry(...)` with backoff and a transient-error test, `timeout`,
//! `best_effort`, `compensate_retry(...)`, and fault plans on a given attempt.
//! Time is tokio's paused clock: no real sleep.

use std::sync::Mutex;
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::testing::{Fault, FaultPlan};
use hookflow::{EventKind, StepTimeout};
use tokio::time::Instant;

#[derive(Default)]
struct Provider {
    /// When each attempt started, since the run began.
    attempts: Mutex<Vec<Duration>>,
    /// Errors to return, one per attempt, then success.
    script: Mutex<Vec<PayError>>,
    log: Mutex<Vec<String>>,
}

impl Provider {
    fn scripted(errors: Vec<PayError>) -> Self {
        Provider {
            script: Mutex::new(errors),
            ..Provider::default()
        }
    }
    fn log(&self, entry: impl Into<String>) {
        self.log.lock().unwrap().push(entry.into());
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum PayError {
    #[error("provider unavailable")]
    Unavailable,
    #[error("card declined")]
    Declined,
    #[error("{0}")]
    TimedOut(String),
    #[error("{0}")]
    Other(String),
}

impl From<StepTimeout> for PayError {
    fn from(t: StepTimeout) -> Self {
        PayError::TimedOut(t.to_string())
    }
}

impl From<hookflow::MissingService> for PayError {
    fn from(e: hookflow::MissingService) -> Self {
        PayError::Other(e.to_string())
    }
}

fn is_transient(err: &PayError) -> bool {
    matches!(err, PayError::Unavailable)
}

struct Clock(Instant);

#[step(retry(max = 4, backoff = "100ms", jitter = false, when = is_transient))]
async fn authorize(ctx: &StepContext, amount: u64) -> Result<String, PayError> {
    let provider = ctx.service::<Provider>()?;
    let started = ctx.service::<Clock>()?.0;
    provider.attempts.lock().unwrap().push(started.elapsed());
    provider.log(format!("attempt {}", ctx.attempt()));
    let next = {
        let mut script = provider.script.lock().unwrap();
        (!script.is_empty()).then(|| script.remove(0))
    };
    match next {
        Some(err) => Err(err),
        None => Ok(format!("auth {amount}")),
    }
}

#[workflow]
async fn pay(ctx: &WorkflowContext, amount: u64) -> Result<String, PayError> {
    authorize(ctx, amount).await
}

fn engine(provider: Provider) -> Engine {
    Engine::builder()
        .service(provider)
        .service(Clock(Instant::now()))
        .build()
}

fn attempts(engine: &Engine) -> Vec<Duration> {
    engine
        .service::<Provider>()
        .unwrap()
        .attempts
        .lock()
        .unwrap()
        .clone()
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_exponential_backoff() {
    let engine = engine(Provider::scripted(vec![
        PayError::Unavailable,
        PayError::Unavailable,
    ]));
    let outcome = Pay::run(&engine, 42).await;
    assert_eq!(outcome.output().map(String::as_str), Some("auth 42"));
    let ms = |m| Duration::from_millis(m);
    // Attempt 1 at 0, retry 1 after 100 ms, retry 2 after 200 ms more.
    assert_eq!(attempts(&engine), [ms(0), ms(100), ms(300)]);
    assert_eq!(log(&engine), ["attempt 1", "attempt 2", "attempt 3"]);
    let retries: Vec<(u32, u64)> = outcome
        .journal()
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepRetrying { attempt, retry, .. } => Some((*attempt, retry.delay_micros)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [(1, 100_000), (2, 200_000)]);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_and_the_step_fails() {
    let engine = engine(Provider::scripted(vec![PayError::Unavailable; 10]));
    let outcome = Pay::run(&engine, 42).await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(
        attempts(&engine).len(),
        5,
        "the first attempt and max = 4 retries"
    );
    assert!(outcome.journal().kinds().any(|k| matches!(
        k,
        EventKind::StepFailed { failure, .. }
            if failure.attempts == 5 && failure.error == "provider unavailable"
    )));
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_retried() {
    let engine = engine(Provider::scripted(vec![
        PayError::Unavailable,
        PayError::Declined,
    ]));
    let outcome = Pay::run(&engine, 42).await;
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(PayError::Declined))
    ));
    assert_eq!(attempts(&engine).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_injected_fault_on_one_attempt_is_retried() {
    let engine = Engine::builder()
        .service(Provider::default())
        .service(Clock(Instant::now()))
        .faults(FaultPlan::new().step("authorize", 1, Fault::Fail))
        .build();
    let outcome = Pay::run(&engine, 7).await;
    assert!(outcome.is_completed());
    // The injected attempt never reached the provider; the second did.
    assert_eq!(attempts(&engine), [Duration::from_millis(100)]);
    assert_eq!(log(&engine), ["attempt 2"]);
}

// --- timeout ---

#[step(timeout = "2s")]
async fn quote_tax(ctx: &StepContext, amount: u64) -> Result<u64, PayError> {
    let slow = ctx.service::<Provider>()?.script.lock().unwrap().len() as u64;
    tokio::time::sleep(Duration::from_secs(slow)).await;
    Ok(amount / 10)
}

#[workflow]
async fn tax(ctx: &WorkflowContext, amount: u64) -> Result<u64, PayError> {
    quote_tax(ctx, amount).await
}

#[tokio::test(start_paused = true)]
async fn a_step_past_its_timeout_fails_with_a_timeout_error() {
    // The script's length is the tax service's delay in seconds.
    let engine = engine(Provider::scripted(vec![PayError::Unavailable; 5]));
    let started = Instant::now();
    let outcome = Tax::run(&engine, 1000).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "dropped at the deadline"
    );
    match outcome.error() {
        Some(RunError::Failed(PayError::TimedOut(msg))) => {
            assert_eq!(msg, "step `quote_tax` timed out after 2s");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }

    let fast = engine_with_delay(1);
    assert_eq!(Tax::run(&fast, 1000).await.output(), Some(&100));
}

fn engine_with_delay(seconds: usize) -> Engine {
    engine(Provider::scripted(vec![PayError::Unavailable; seconds]))
}

// --- best effort, compensate_retry ---

#[step(best_effort)]
async fn send_email(ctx: &StepContext, to: String) -> Result<(), PayError> {
    if to.is_empty() {
        return Err(PayError::Other("no address".into()));
    }
    ctx.service::<Provider>()?.log(format!("email {to}"));
    Ok(())
}

#[step(compensate = refund, compensate_retry(max = 2, backoff = "1s", jitter = false))]
async fn capture(ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PayError> {
    ctx.service::<Provider>()?.log(format!("capture {amount}"));
    Ok(StepResponse::new(amount, amount))
}

async fn refund(ctx: &StepContext, amount: u64) -> Result<(), PayError> {
    let provider = ctx.service::<Provider>()?;
    provider.log(format!("refund {amount} attempt {}", ctx.attempt()));
    let next = {
        let mut script = provider.script.lock().unwrap();
        (!script.is_empty()).then(|| script.remove(0))
    };
    next.map_or(Ok(()), Err)
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Order {
    amount: u64,
    email: String,
    ship: bool,
}

#[step]
async fn ship(_ctx: &StepContext, ok: bool) -> Result<(), PayError> {
    if ok {
        Ok(())
    } else {
        Err(PayError::Other("no carrier".into()))
    }
}

#[workflow]
async fn place(ctx: &WorkflowContext, order: Order) -> Result<bool, PayError> {
    capture(ctx, order.amount).await?;
    let sent = send_email(ctx, order.email).await.is_some();
    ship(ctx, order.ship).await?;
    Ok(sent)
}

fn log(engine: &Engine) -> Vec<String> {
    engine
        .service::<Provider>()
        .unwrap()
        .log
        .lock()
        .unwrap()
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_best_effort_failure_is_recorded_and_the_workflow_goes_on() {
    let engine = engine(Provider::default());
    let outcome = Place::run(
        &engine,
        Order {
            amount: 5,
            email: String::new(),
            ship: true,
        },
    )
    .await;
    assert_eq!(outcome.output(), Some(&false));
    assert_eq!(outcome.best_effort_failures().len(), 1);
    assert_eq!(outcome.best_effort_failures()[0].step, "send_email");
    assert_eq!(outcome.best_effort_failures()[0].error, "no address");
    assert!(outcome.journal().kinds().any(|k| matches!(
        k,
        EventKind::StepFailed { failure, .. } if failure.best_effort
    )));
    assert_eq!(outcome.failed_step(), None);
}

#[tokio::test(start_paused = true)]
async fn a_best_effort_step_is_never_compensated() {
    let engine = engine(Provider::default());
    let outcome = Place::run(
        &engine,
        Order {
            amount: 5,
            email: "a@b.c".into(),
            ship: false,
        },
    )
    .await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(
        log(&engine),
        ["capture 5", "email a@b.c", "refund 5 attempt 1"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_compensation_is_retried_by_its_policy() {
    let engine = engine(Provider::scripted(vec![PayError::Unavailable]));
    let started = Instant::now();
    let outcome = Place::run(
        &engine,
        Order {
            amount: 9,
            email: "a@b.c".into(),
            ship: false,
        },
    )
    .await;
    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(
        log(&engine),
        [
            "capture 9",
            "email a@b.c",
            "refund 9 attempt 1",
            "refund 9 attempt 2"
        ]
    );
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert!(
        outcome
            .journal()
            .kinds()
            .any(|k| matches!(k, EventKind::CompensationRetrying { attempt: 1, .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_compensation_failing_every_attempt_is_recorded() {
    let engine = engine(Provider::scripted(vec![PayError::Unavailable; 3]));
    let outcome = Place::run(
        &engine,
        Order {
            amount: 9,
            email: "a@b.c".into(),
            ship: false,
        },
    )
    .await;
    assert_eq!(outcome.status(), RunStatus::CompensationFailed);
    assert_eq!(outcome.compensation_failures().len(), 1);
    assert_eq!(
        log(&engine)[2..],
        [
            "refund 9 attempt 1",
            "refund 9 attempt 2",
            "refund 9 attempt 3"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_saga_invariant_holds_at_every_failure_point() {
    let report = hookflow::testing::check_failure_points(
        |plan| {
            Engine::builder()
                .service(Provider::default())
                .faults(plan)
                .record_data(true)
                .build()
        },
        |engine| async move {
            Place::run(
                &engine,
                Order {
                    amount: 3,
                    email: "a@b.c".into(),
                    ship: true,
                },
            )
            .await
        },
    )
    .await;
    report.assert_ok();
    let points: Vec<String> = report
        .results
        .iter()
        .map(|(p, _, _)| p.to_string())
        .collect();
    assert_eq!(
        points,
        ["step `capture`", "step `send_email`", "step `ship`"]
    );
    let statuses: Vec<RunStatus> = report.results.iter().map(|(_, s, _)| *s).collect();
    // A best-effort step's failure does not fail the run.
    assert_eq!(
        statuses,
        [
            RunStatus::Compensated,
            RunStatus::Completed,
            RunStatus::Compensated
        ]
    );
}
