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

mod scenarios;

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
