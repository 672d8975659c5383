//! A resumed run is the same run, failures included: a step that failed, and whose error the
//! body handled, is not run again on replay. Its error comes back to the body as recorded
//! (the same value, when the error type is `Serialize + Deserialize`); when it cannot be
//! rebuilt, the run is parked with `ReplayError::UnreplayableFailure`; a best-effort step's
//! failure replays as `None`. A changed step at a failed or in-flight position parks the run
//! with `ReplayError::Mismatch`. A "crash" is the run's future dropped while a step hangs: what
//! the store holds is then what a killed process leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::store::{Store, StoredStatus};
use hookflow::{Event, EventKind, ReplayError, RunId};
use serde::{Deserialize, Serialize};

// ---- the outside world --------------------------------------------------------------------

/// Counts the calls of each step; a step named in `hang_in` hangs there (to be "killed").
#[derive(Default)]
struct Shop {
    calls: Mutex<HashMap<&'static str, usize>>,
    hang_in: Mutex<Option<&'static str>>,
    hung: tokio::sync::Notify,
}

impl Shop {
    async fn call(&self, step: &'static str) {
        *self.calls.lock().unwrap().entry(step).or_default() += 1;
        let hang = *self.hang_in.lock().unwrap();
        if hang == Some(step) {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
    }

    fn calls(&self, step: &str) -> usize {
        self.calls.lock().unwrap().get(step).copied().unwrap_or(0)
    }
}

fn shop(ctx: &StepContext) -> &Arc<Shop> {
    ctx.service::<Arc<Shop>>().expect("the shop is registered")
}

// ---- a step whose error type is serde -----------------------------------------------------

/// A serde error: the journal records its value, and replay gives the same value back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
enum ChargeError {
    #[error("card declined: {reason} (code {code})")]
    Declined { reason: String, code: u32 },
    #[error("capture refused")]
    CaptureRefused,
}

fn declined() -> ChargeError {
    ChargeError::Declined {
        reason: "insufficient funds".into(),
        code: 51,
    }
}

#[step]
async fn charge(ctx: &StepContext, cents: u64) -> Result<String, ChargeError> {
    shop(ctx).call("charge").await;
    let _ = cents;
    Err(declined())
}

#[step]
async fn fallback(ctx: &StepContext, cents: u64) -> Result<String, ChargeError> {
    shop(ctx).call("fallback").await;
    Ok(format!("invoice for {cents}"))
}

#[step]
async fn ship(ctx: &StepContext, cents: u64) -> Result<u64, ChargeError> {
    shop(ctx).call("ship").await;
    Ok(cents)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    paid_by: String,
    /// The error the body got from `charge`.
    declined: ChargeError,
    shipped: u64,
}

/// Pays by card, and by invoice when the card is declined.
#[workflow(name = "pay")]
async fn pay(ctx: &WorkflowContext, cents: u64) -> Result<Receipt, ChargeError> {
    let declined = match charge(ctx, cents).await {
        Ok(_) => unreachable!("the card is always declined"),
        Err(err) => err,
    };
    let paid_by = fallback(ctx, cents).await?;
    let shipped = ship(ctx, cents).await?;
    Ok(Receipt {
        paid_by,
        declined,
        shipped,
    })
}

/// `pay`, changed: another step at `charge`'s position.
#[step]
async fn charge_by_wallet(ctx: &StepContext, cents: u64) -> Result<String, ChargeError> {
    shop(ctx).call("charge_by_wallet").await;
    Ok(format!("wallet {cents}"))
}

#[workflow(name = "pay")]
async fn pay_changed(ctx: &WorkflowContext, cents: u64) -> Result<Receipt, ChargeError> {
    let paid_by = charge_by_wallet(ctx, cents).await?;
    let shipped = ship(ctx, cents).await?;
    Ok(Receipt {
        paid_by,
        declined: declined(),
        shipped,
    })
}

/// `pay`, with `charge`'s error type changed to one its recorded value does not fit.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("card error {0}")]
struct CardError(u32);

#[step(name = "charge")]
async fn charge_v2(ctx: &StepContext, cents: u64) -> Result<String, CardError> {
    shop(ctx).call("charge_v2").await;
    Err(CardError(u32::try_from(cents).unwrap_or(0)))
}

#[workflow(name = "pay")]
async fn pay_v2(ctx: &WorkflowContext, cents: u64) -> Result<Receipt, ChargeError> {
    let code = match charge_v2(ctx, cents).await {
        Ok(_) => 0,
        Err(CardError(code)) => code,
    };
    let paid_by = fallback(ctx, cents).await?;
    let shipped = ship(ctx, cents).await?;
    Ok(Receipt {
        paid_by,
        declined: ChargeError::Declined {
            reason: "card error".into(),
            code,
        },
        shipped,
    })
}

// ---- a failed run whose body had handled a failure before ----------------------------------

#[step(compensate = release)]
async fn reserve(ctx: &StepContext, cents: u64) -> Result<StepResponse<(), u64>, ChargeError> {
    shop(ctx).call("reserve").await;
    Ok(StepResponse::new((), cents))
}

async fn release(ctx: &StepContext, _cents: u64) -> Result<(), ChargeError> {
    shop(ctx).call("release").await;
    Ok(())
}

#[step(compensate = unhold)]
async fn hold(ctx: &StepContext, cents: u64) -> Result<StepResponse<(), u64>, ChargeError> {
    shop(ctx).call("hold").await;
    Ok(StepResponse::new((), cents))
}

async fn unhold(ctx: &StepContext, _cents: u64) -> Result<(), ChargeError> {
    shop(ctx).call("unhold").await;
    Ok(())
}

#[step]
async fn capture(ctx: &StepContext, _cents: u64) -> Result<(), ChargeError> {
    shop(ctx).call("capture").await;
    Err(ChargeError::CaptureRefused)
}

/// Handles `charge`'s failure with a `hold`, then fails at `capture`: both `hold` and
/// `reserve` are undone.
#[workflow(name = "order")]
async fn order(ctx: &WorkflowContext, cents: u64) -> Result<(), ChargeError> {
    reserve(ctx, cents).await?;
    if charge(ctx, cents).await.is_err() {
        hold(ctx, cents).await?;
    }
    capture(ctx, cents).await
}

// ---- a step whose error type is not serde --------------------------------------------------

#[derive(Debug, thiserror::Error)]
enum PlainError {
    #[error("card declined")]
    Declined,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[step]
async fn charge_plain(ctx: &StepContext, _cents: u64) -> Result<String, PlainError> {
    shop(ctx).call("charge_plain").await;
    Err(PlainError::Declined)
}

#[step]
async fn fallback_plain(ctx: &StepContext, cents: u64) -> Result<String, PlainError> {
    shop(ctx).call("fallback_plain").await;
    Ok(format!("invoice for {cents}"))
}

#[step]
async fn ship_plain(ctx: &StepContext, cents: u64) -> Result<u64, PlainError> {
    shop(ctx).call("ship_plain").await;
    Ok(cents)
}

#[workflow(name = "pay_plain")]
async fn pay_plain(ctx: &WorkflowContext, cents: u64) -> Result<String, PlainError> {
    let paid_by = match charge_plain(ctx, cents).await {
        Ok(card) => card,
        Err(PlainError::Declined) => fallback_plain(ctx, cents).await?,
        Err(err) => return Err(err),
    };
    ship_plain(ctx, cents).await?;
    Ok(paid_by)
}

// ---- a best-effort step --------------------------------------------------------------------

#[step(best_effort)]
async fn notify(ctx: &StepContext, _cents: u64) -> Result<(), PlainError> {
    shop(ctx).call("notify").await;
    Err(PlainError::Declined)
}

#[workflow(name = "pay_and_notify")]
async fn pay_and_notify(ctx: &WorkflowContext, cents: u64) -> Result<(bool, u64), ChargeError> {
    let notified = notify(ctx, cents).await.is_some();
    let shipped = ship(ctx, cents).await?;
    Ok((notified, shipped))
}

// ---- a step in flight while its parallel sibling commits ----------------------------------

#[step]
async fn pack(ctx: &StepContext, cents: u64) -> Result<u64, ChargeError> {
    shop(ctx).call("pack").await;
    Ok(cents)
}

#[step]
async fn label(ctx: &StepContext, cents: u64) -> Result<u64, ChargeError> {
    shop(ctx).call("label").await;
    Ok(cents)
}

#[workflow(name = "dispatch")]
async fn dispatch(ctx: &WorkflowContext, cents: u64) -> Result<u64, ChargeError> {
    let (packed, labelled) = hookflow::parallel!(pack(ctx, cents), label(ctx, cents))?;
    Ok(packed + labelled)
}

/// `dispatch`, changed: another step where `pack` was in flight.
#[step]
async fn wrap(ctx: &StepContext, cents: u64) -> Result<u64, ChargeError> {
    shop(ctx).call("wrap").await;
    Ok(cents)
}

#[workflow(name = "dispatch")]
async fn dispatch_changed(ctx: &WorkflowContext, cents: u64) -> Result<u64, ChargeError> {
    let (packed, labelled) = hookflow::parallel!(wrap(ctx, cents), label(ctx, cents))?;
    Ok(packed + labelled)
}

// ---- harness --------------------------------------------------------------------------------

/// Each scenario runs on a `MemoryStore` and on a SQLite file.
macro_rules! on_each_store {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $scenario() {
                    super::$scenario(std::sync::Arc::new(hookflow::store::MemoryStore::new())).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(start_paused = true)]
                async fn $scenario() {
                    let dir = std::env::temp_dir().join(format!(
                        "hookflow-replay-failures-{}-{}",
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
    };
}

on_each_store!(
    a_handled_failure_is_replayed_with_the_same_error_not_run_again,
    a_failure_is_committed_before_the_body_goes_on,
    a_handled_failure_of_a_non_serde_error_parks_the_run,
    a_non_serde_failure_not_committed_yet_was_in_flight,
    a_recorded_error_that_no_longer_fits_its_type_parks_the_run,
    a_best_effort_failure_replays_as_none,
    a_changed_step_at_a_failed_position_is_a_mismatch,
    a_changed_step_at_an_in_flight_position_is_a_mismatch,
    a_failed_run_resumed_while_compensating_undoes_the_steps_after_a_handled_failure,
);

/// An engine with `W` on `store`: the same worker id for every engine of a test, each
/// standing for the same application restarted.
fn engine<W: Workflow>(store: &Arc<dyn Store>, shop: &Arc<Shop>) -> Engine {
    Engine::builder()
        .worker_id("app")
        .store(Arc::clone(store))
        .service(Arc::clone(shop))
        .workflow::<W>()
        .build()
}

/// Runs `W` until it hangs in `step`, then drops it there, as a killed process would; returns
/// the run's id.
async fn crash_in<W: Workflow<Input = u64>>(
    store: &Arc<dyn Store>,
    shop: &Arc<Shop>,
    step: &'static str,
) -> RunId {
    crash_once::<W>(store, shop, step, |_| true).await
}

/// [`crash_in`], once the store holds what `committed` looks for (the commits of the run's
/// other branches).
async fn crash_once<W: Workflow<Input = u64>>(
    store: &Arc<dyn Store>,
    shop: &Arc<Shop>,
    step: &'static str,
    committed: impl Fn(&[Event]) -> bool,
) -> RunId {
    *shop.hang_in.lock().unwrap() = Some(step);
    let engine = engine::<W>(store, shop);
    let run = engine.run::<W>(500);
    tokio::pin!(run);
    tokio::select! {
        outcome = &mut run => panic!("the run should hang in {step}, it ended: {:?}", outcome.status()),
        () = shop.hung.notified() => {}
    }
    let pending = store.pending().await.unwrap().runs;
    assert_eq!(pending.len(), 1, "the crashed run is pending");
    let run_id = pending[0].run_id;
    while !committed(&store.load(run_id).await.unwrap().1) {
        tokio::select! {
            outcome = &mut run => panic!("the run should hang in {step}, it ended: {:?}", outcome.status()),
            () = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
        }
    }
    *shop.hang_in.lock().unwrap() = None;
    run_id
}

/// Resumes what is pending with an engine that runs `W`: the run's status.
async fn resume<W: Workflow>(store: &Arc<dyn Store>, shop: &Arc<Shop>, run_id: RunId) -> RunStatus {
    let report = engine::<W>(store, shop).resume_pending().await.unwrap();
    assert_eq!(report.resumed.len(), 1, "{report:?}");
    assert_eq!(report.resumed[0].0, run_id);
    report.resumed[0].1
}

fn failures_of(events: &[Event], step: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::StepFailed { step: s, .. } if s == step))
        .count()
}

// ---- scenarios --------------------------------------------------------------------------------

async fn a_handled_failure_is_replayed_with_the_same_error_not_run_again(store: Arc<dyn Store>) {
    // What an uninterrupted run returns.
    let reference = Arc::new(Shop::default());
    let memory: Arc<dyn Store> = Arc::new(hookflow::store::MemoryStore::new());
    let uninterrupted = engine::<Pay>(&memory, &reference).run::<Pay>(500).await;
    let expected = uninterrupted.output().expect("pay completes").clone();
    assert_eq!(expected.declined, declined());

    // The same run, killed in `ship` (after `charge` failed and `fallback` completed).
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<Pay>(&store, &shop, "ship").await;
    assert_eq!(
        resume::<Pay>(&store, &shop, run_id).await,
        RunStatus::Completed
    );

    assert_eq!(shop.calls("charge"), 1, "the failed step did not run again");
    assert_eq!(
        shop.calls("fallback"),
        1,
        "the completed step did not run again"
    );
    assert_eq!(shop.calls("ship"), 2, "the step in flight ran again");
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    // The body got the same error value: the output is the uninterrupted run's.
    assert_eq!(
        record.output,
        Some(serde_json::to_value(&expected).unwrap())
    );
    // The failure is in the journal once, with its value; nothing was recorded again.
    assert_eq!(failures_of(&events, "charge"), 1);
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::StepFailed { step, failure, .. }
            if step == "charge"
                && failure.error_data == Some(serde_json::to_value(declined()).unwrap())
    )));
}

async fn a_failure_is_committed_before_the_body_goes_on(store: Arc<dyn Store>) {
    // Killed in `fallback`, the first step after the failure: the failure alone is committed.
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<Pay>(&store, &shop, "fallback").await;
    let (_, events) = store.load(run_id).await.unwrap();
    assert_eq!(
        failures_of(&events, "charge"),
        1,
        "committed before `fallback` began"
    );

    assert_eq!(
        resume::<Pay>(&store, &shop, run_id).await,
        RunStatus::Completed
    );
    assert_eq!(shop.calls("charge"), 1, "the failed step did not run again");
    assert_eq!(shop.calls("fallback"), 2, "the step in flight ran again");
    let (record, _) = store.load(run_id).await.unwrap();
    let receipt: Receipt = serde_json::from_value(record.output.unwrap()).unwrap();
    assert_eq!(receipt.declined, declined());
}

async fn a_handled_failure_of_a_non_serde_error_parks_the_run(store: Arc<dyn Store>) {
    // `charge_plain` fails, `fallback_plain` completes (committing the failure), the kill
    // comes in `ship_plain`.
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<PayPlain>(&store, &shop, "ship_plain").await;
    assert_eq!(
        resume::<PayPlain>(&store, &shop, run_id).await,
        RunStatus::Parked
    );

    // Nothing ran again: the run stopped at the failed step.
    assert_eq!(shop.calls("charge_plain"), 1);
    assert_eq!(shop.calls("fallback_plain"), 1);
    assert_eq!(shop.calls("ship_plain"), 1);
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Parked);
    let error = ReplayError::UnreplayableFailure {
        step: "charge_plain".into(),
        position: 0,
        reason: "its error type is not Serialize + Deserialize, and the journal holds only its message \"card declined\"".into(),
    };
    let message = record.error.unwrap();
    assert_eq!(message, error.to_string());
    assert!(
        message.starts_with("step `charge_plain` #0 failed before the run was resumed"),
        "{message}"
    );
    assert!(
        message.ends_with(
            "make the step's error type Serialize + Deserialize to let a resumed run replay a handled failure"
        ),
        "{message}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::RunParked { reason } if *reason == message))
    );
    assert_eq!(failures_of(&events, "charge_plain"), 1);
}

async fn a_non_serde_failure_not_committed_yet_was_in_flight(store: Arc<dyn Store>) {
    // Killed in `fallback_plain`: a failure that cannot be replayed is committed with what
    // follows it, so the store holds nothing of `charge_plain`, which runs again.
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<PayPlain>(&store, &shop, "fallback_plain").await;
    let (_, events) = store.load(run_id).await.unwrap();
    assert_eq!(failures_of(&events, "charge_plain"), 0);
    assert_eq!(
        resume::<PayPlain>(&store, &shop, run_id).await,
        RunStatus::Completed
    );
    assert_eq!(shop.calls("charge_plain"), 2);
    assert_eq!(shop.calls("fallback_plain"), 2);
}

async fn a_recorded_error_that_no_longer_fits_its_type_parks_the_run(store: Arc<dyn Store>) {
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<Pay>(&store, &shop, "ship").await;
    // The new code's `charge` has another (serde) error type: the recorded value does not fit.
    assert_eq!(
        resume::<PayV2>(&store, &shop, run_id).await,
        RunStatus::Parked
    );
    assert_eq!(shop.calls("charge"), 1);
    assert_eq!(shop.calls("charge_v2"), 0, "the changed step did not run");
    let (record, _) = store.load(run_id).await.unwrap();
    let message = record.error.unwrap();
    assert!(
        message.starts_with(
            "step `charge` #0 failed before the run was resumed and its error cannot be replayed: the recorded value of \"card declined: insufficient funds (code 51)\" does not match the step's error type"
        ),
        "{message}"
    );
}

async fn a_best_effort_failure_replays_as_none(store: Arc<dyn Store>) {
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<PayAndNotify>(&store, &shop, "ship").await;
    assert_eq!(
        resume::<PayAndNotify>(&store, &shop, run_id).await,
        RunStatus::Completed
    );
    assert_eq!(
        shop.calls("notify"),
        1,
        "the best-effort step did not run again"
    );
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.output, Some(serde_json::json!([false, 500])));
    assert_eq!(failures_of(&events, "notify"), 1);
}

async fn a_changed_step_at_a_failed_position_is_a_mismatch(store: Arc<dyn Store>) {
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<Pay>(&store, &shop, "ship").await;
    assert_eq!(
        resume::<PayChanged>(&store, &shop, run_id).await,
        RunStatus::Parked
    );
    assert_eq!(
        shop.calls("charge_by_wallet"),
        0,
        "the changed step did not run"
    );
    let (record, _) = store.load(run_id).await.unwrap();
    let error = ReplayError::Mismatch {
        position: 0,
        recorded: "charge".into(),
        called: "charge_by_wallet".into(),
    };
    assert_eq!(record.error, Some(error.to_string()));
}

async fn a_changed_step_at_an_in_flight_position_is_a_mismatch(store: Arc<dyn Store>) {
    // `pack` (#0) hangs while `label` (#1) completes: `label`'s commit records `pack`'s start.
    let shop = Arc::new(Shop::default());
    let run_id = crash_once::<Dispatch>(&store, &shop, "pack", |events| {
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::StepCompleted { step, .. } if step == "label"))
    })
    .await;
    let (_, events) = store.load(run_id).await.unwrap();
    assert!(
        events.iter().any(
            |e| matches!(&e.kind, EventKind::StepStarted { step, position: 0, .. } if step == "pack")
        ),
        "pack's start is committed"
    );
    assert_eq!(
        resume::<DispatchChanged>(&store, &shop, run_id).await,
        RunStatus::Parked
    );
    assert_eq!(
        shop.calls("wrap"),
        0,
        "not run under pack's idempotency key"
    );
    let (record, _) = store.load(run_id).await.unwrap();
    let error = ReplayError::Mismatch {
        position: 0,
        recorded: "pack".into(),
        called: "wrap".into(),
    };
    assert_eq!(record.error, Some(error.to_string()));

    // The original code resumes it: `pack`, in flight, runs again.
    assert_eq!(
        engine::<Dispatch>(&store, &shop)
            .resume(run_id)
            .await
            .unwrap(),
        RunStatus::Completed
    );
    assert_eq!((shop.calls("pack"), shop.calls("label")), (2, 1));
}

async fn a_failed_run_resumed_while_compensating_undoes_the_steps_after_a_handled_failure(
    store: Arc<dyn Store>,
) {
    // reserve, charge (fails, handled), hold, capture (fails: the run fails); the kill comes
    // in unhold, the first compensation.
    let shop = Arc::new(Shop::default());
    let run_id = crash_in::<Order>(&store, &shop, "unhold").await;
    assert_eq!(
        resume::<Order>(&store, &shop, run_id).await,
        RunStatus::Compensated
    );
    let calls: Vec<_> = ["reserve", "charge", "hold", "capture", "unhold", "release"]
        .iter()
        .map(|s| shop.calls(s))
        .collect();
    // Nothing ran again but `unhold`, in flight at the kill; `hold`, after the handled
    // failure, is undone too.
    assert_eq!(calls, [1, 1, 1, 1, 2, 1]);
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Compensated);
    assert_eq!(record.error.as_deref(), Some("capture refused"));
    hookflow::testing::check_saga(&hookflow::Journal::from_events(events)).unwrap();
}

// ---- without a store ------------------------------------------------------------------------

#[tokio::test]
async fn an_error_value_is_journaled_only_when_the_run_records_data() {
    let shop = Arc::new(Shop::default());
    for record_data in [false, true] {
        let engine = Engine::builder()
            .record_data(record_data)
            .service(Arc::clone(&shop))
            .build();
        let outcome = engine.run::<Pay>(500).await;
        assert!(outcome.is_completed());
        let data = outcome.journal().kinds().find_map(|k| match k {
            EventKind::StepFailed { failure, .. } => Some(failure.error_data.clone()),
            _ => None,
        });
        let expected = record_data.then(|| serde_json::to_value(declined()).unwrap());
        assert_eq!(data, Some(expected), "record_data({record_data})");
    }
    // A non-serde error is journaled as its message only.
    let engine = Engine::builder()
        .record_data(true)
        .service(Arc::clone(&shop))
        .build();
    let outcome = engine.run::<PayPlain>(500).await;
    assert!(outcome.journal().kinds().any(|k| matches!(
        k,
        EventKind::StepFailed { step, failure, .. }
            if step == "charge_plain" && failure.error_data.is_none()
    )));
}

#[tokio::test]
async fn a_step_failed_event_without_error_data_reads_as_before() {
    // A journal written before `error_data` existed.
    let event: hookflow::Event = serde_json::from_value(serde_json::json!({
        "seq": 3, "at_micros": 0, "event": "step_failed", "step": "charge", "position": 0,
        "error": "card declined", "panicked": false, "attempts": 1, "best_effort": false
    }))
    .unwrap();
    assert!(matches!(
        event.kind,
        EventKind::StepFailed { ref failure, .. } if failure.error_data.is_none()
    ));
    // And a failure without data is written without the field.
    let json = serde_json::to_value(&event).unwrap();
    assert!(json.get("error_data").is_none());
}
