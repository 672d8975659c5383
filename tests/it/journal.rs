//! The journal: every run records what happened, event by event, as serde data that a store
//! can persist. With `record_data(true)` step outputs and compensation data are recorded as
//! JSON; without it, they are not.

use hookflow::journal::{Event, FiringDetail, StepFailure};
use hookflow::prelude::*;
use hookflow::{EventKind, Journal, RunError, Slot};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error("card declined: {0}")]
    Declined(&'static str),
    #[error(transparent)]
    Hook(#[from] HookError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payment {
    cents: u64,
    decline: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Hold {
    id: String,
    cents: u64,
}

#[step(compensate = release_funds)]
async fn hold_funds(
    _ctx: &StepContext,
    payment: Payment,
) -> Result<StepResponse<String, Hold>, PayError> {
    let id = "hold_1".to_owned();
    Ok(StepResponse::new(
        id.clone(),
        Hold {
            id,
            cents: payment.cents,
        },
    ))
}

async fn release_funds(_ctx: &StepContext, _hold: Hold) -> Result<(), PayError> {
    Ok(())
}

#[step]
async fn capture(_ctx: &StepContext, payment: Payment, _hold_id: String) -> Result<u64, PayError> {
    if payment.decline {
        Err(PayError::Declined("insufficient funds"))
    } else {
        Ok(payment.cents)
    }
}

#[workflow(hooks(screen: before<Payment>))]
async fn pay(ctx: &WorkflowContext, payment: Payment) -> Result<u64, PayError> {
    let payment = ctx.hook(Pay::SCREEN, payment).await?;
    let hold_id = hold_funds(ctx, payment.clone()).await?;
    capture(ctx, payment, hold_id).await
}

async fn screen_amount(_ctx: &HookContext, payment: Payment) -> Result<Payment, PayError> {
    Ok(payment)
}

fn engine(record_data: bool) -> Engine {
    let mut hooks = Hooks::new();
    Pay::hooks(&mut hooks).screen(screen_amount);
    Engine::builder()
        .hooks(hooks)
        .record_data(record_data)
        .build()
}

fn declined() -> Payment {
    Payment {
        cents: 2_500,
        decline: true,
    }
}

fn kinds(journal: &Journal) -> Vec<EventKind> {
    journal.kinds().cloned().collect()
}

/// The journal of a declined payment, with or without data.
fn expected_failed_run(run_id: hookflow::RunId, data: bool) -> Vec<EventKind> {
    let hold = json!({ "id": "hold_1", "cents": 2500 });
    let when = |value: Value| data.then_some(value);
    vec![
        EventKind::RunStarted {
            workflow: "pay".into(),
            run_id,
        },
        // With record_data, a firing lists its handlers and a `before` handler's data is
        // journaled: a resumed run replays them.
        EventKind::HookFired {
            hook: "screen".into(),
            handlers: 1,
            firing: 0,
            detail: data.then(|| {
                Box::new(FiringDetail {
                    names: vec!["screen_amount".into()],
                    key: None,
                })
            }),
        },
        EventKind::HookHandlerCompleted {
            hook: "screen".into(),
            slot: Slot::Configured,
            handler: "screen_amount".into(),
            firing: 0,
            data: when(json!({ "cents": 2500, "decline": true })).map(Box::new),
        },
        EventKind::StepStarted {
            step: "hold_funds".into(),
            position: 0,
            key: None,
        },
        EventKind::StepCompleted {
            step: "hold_funds".into(),
            position: 0,
            compensable: true,
            output: when(json!("hold_1")).map(|v| Box::new(v.into())),
            compensation: when(hold.clone()).map(|v| Box::new(v.into())),
        },
        EventKind::StepStarted {
            step: "capture".into(),
            position: 1,
            key: None,
        },
        EventKind::StepFailed {
            step: "capture".into(),
            position: 1,
            failure: Box::new(StepFailure {
                error: "card declined: insufficient funds".into(),
                panicked: false,
                attempts: 1,
                best_effort: false,
                error_data: None,
            }),
        },
        EventKind::RunFailed {
            error: "card declined: insufficient funds".into(),
        },
        EventKind::CompensationStarted {
            step: "hold_funds".into(),
            position: 0,
            data: when(hold).map(|v| Box::new(v.into())),
        },
        EventKind::CompensationCompleted {
            step: "hold_funds".into(),
            position: 0,
        },
        EventKind::RunEnded {
            status: RunStatus::Compensated,
        },
    ]
}

#[tokio::test]
async fn a_failed_run_is_journaled_event_by_event() {
    let outcome = engine(false).run::<Pay>(declined()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(PayError::Declined("insufficient funds")))
    ));
    assert_eq!(
        kinds(outcome.journal()),
        expected_failed_run(outcome.run_id(), false)
    );
}

#[tokio::test]
async fn a_failed_run_matched_variant_by_variant() {
    // The same journal, read as a consumer would: one `match` per event.
    let outcome = engine(false).run::<Pay>(declined()).await;
    let events = outcome.journal().events();
    assert_eq!(events.len(), 11);

    let mut kinds = outcome.journal().kinds();
    let mut next = || kinds.next().expect("another event");
    assert!(matches!(next(), EventKind::RunStarted { workflow, run_id }
        if workflow == "pay" && *run_id == outcome.run_id()));
    assert!(matches!(next(), EventKind::HookFired { hook, handlers: 1, .. } if hook == "screen"));
    assert!(
        matches!(next(), EventKind::HookHandlerCompleted { hook, slot: Slot::Configured, handler, .. }
        if hook == "screen" && handler == "screen_amount")
    );
    assert!(
        matches!(next(), EventKind::StepStarted { step, position: 0, .. } if step == "hold_funds")
    );
    assert!(
        matches!(next(), EventKind::StepCompleted { step, position: 0, compensable: true, output: None, compensation: None }
        if step == "hold_funds")
    );
    assert!(
        matches!(next(), EventKind::StepStarted { step, position: 1, .. } if step == "capture")
    );
    assert!(
        matches!(next(), EventKind::StepFailed { step, position: 1, failure }
        if step == "capture" && **failure == StepFailure {
            error: "card declined: insufficient funds".into(),
            panicked: false,
            attempts: 1,
            best_effort: false,
            error_data: None,
        })
    );
    assert!(
        matches!(next(), EventKind::RunFailed { error } if error == "card declined: insufficient funds")
    );
    assert!(
        matches!(next(), EventKind::CompensationStarted { step, position: 0, data: None }
        if step == "hold_funds")
    );
    assert!(
        matches!(next(), EventKind::CompensationCompleted { step, position: 0 }
        if step == "hold_funds")
    );
    assert!(matches!(
        next(),
        EventKind::RunEnded {
            status: RunStatus::Compensated
        }
    ));
}

#[tokio::test]
async fn with_record_data_the_journal_carries_outputs_and_compensation_data() {
    let outcome = engine(true).run::<Pay>(declined()).await;

    assert_eq!(
        kinds(outcome.journal()),
        expected_failed_run(outcome.run_id(), true)
    );
}

#[tokio::test]
async fn a_completed_run_records_the_output_of_a_plain_step_and_no_compensation_data() {
    let outcome = engine(true)
        .run::<Pay>(Payment {
            cents: 2_500,
            decline: false,
        })
        .await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    let journal = kinds(outcome.journal());
    assert_eq!(
        journal[journal.len() - 3..],
        [
            EventKind::StepStarted {
                step: "capture".into(),
                position: 1,
                key: None,
            },
            EventKind::StepCompleted {
                step: "capture".into(),
                position: 1,
                compensable: false,
                output: Some(Box::new(json!(2500).into())),
                compensation: None,
            },
            EventKind::RunEnded {
                status: RunStatus::Completed,
            },
        ]
    );
}

#[tokio::test]
async fn events_are_numbered_in_order_and_timestamped() {
    let outcome = engine(false).run::<Pay>(declined()).await;
    let events = outcome.journal().events();

    assert!(!outcome.journal().is_empty());
    assert_eq!(outcome.journal().len(), events.len());
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq as usize, i);
    }
    assert!(events.windows(2).all(|w| w[0].at_micros <= w[1].at_micros));
    // Microseconds since the epoch: after 2020-01-01.
    assert!(events[0].at_micros > 1_577_836_800_000_000);
    // The journal iterates as its events.
    let seqs: Vec<u32> = outcome.journal().into_iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..11).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_journal_round_trips_through_json() {
    for record_data in [false, true] {
        let outcome = engine(record_data).run::<Pay>(declined()).await;

        let text = serde_json::to_string(outcome.journal()).expect("serializes");
        let back: Journal = serde_json::from_str(&text).expect("deserializes");

        assert_eq!(&back, outcome.journal(), "record_data = {record_data}");
    }
}

#[tokio::test]
async fn the_json_form_is_a_flat_list_of_tagged_events() {
    let outcome = engine(false).run::<Pay>(declined()).await;

    let value = serde_json::to_value(outcome.journal()).unwrap();
    let events = value.as_array().expect("a JSON array");
    assert_eq!(events.len(), 11);
    assert_eq!(events[0]["seq"], 0);
    assert_eq!(events[0]["event"], "run_started");
    assert_eq!(events[0]["workflow"], "pay");
    assert_eq!(events[0]["run_id"], outcome.run_id().to_string());
    assert_eq!(events[2]["slot"], "configured");
    // Without recorded data, the data fields are absent, not null.
    assert_eq!(events[4]["event"], "step_completed");
    assert!(events[4].get("output").is_none());
    assert!(events[4].get("compensation").is_none());
    assert_eq!(events[7]["event"], "run_failed");
    assert_eq!(events[10]["event"], "run_ended");
    assert_eq!(events[10]["status"], "compensated");

    // One event read back on its own.
    let event: Event = serde_json::from_value(events[6].clone()).unwrap();
    assert_eq!(
        event.kind,
        EventKind::StepFailed {
            step: "capture".into(),
            position: 1,
            failure: Box::new(StepFailure {
                error: "card declined: insufficient funds".into(),
                panicked: false,
                attempts: 1,
                best_effort: false,
                error_data: None,
            }),
        }
    );
}

// -- a step whose output is `()` --------------------------------------------------------------

#[step]
async fn send_receipt(_ctx: &StepContext, _cents: u64) -> Result<(), PayError> {
    Ok(())
}

#[workflow]
async fn receipt(ctx: &WorkflowContext, cents: u64) -> Result<(), PayError> {
    send_receipt(ctx, cents).await
}

#[tokio::test]
async fn a_unit_output_is_recorded_as_json_null() {
    let outcome = Engine::builder()
        .record_data(true)
        .build()
        .run::<Receipt>(100)
        .await;

    assert!(outcome.journal().kinds().any(|k| matches!(
        k,
        EventKind::StepCompleted { step, output: Some(output), .. }
            if step == "send_receipt" && **output == Value::Null
    )));
}

#[tokio::test]
async fn a_unit_output_round_trips_through_json() {
    let outcome = Engine::builder()
        .record_data(true)
        .build()
        .run::<Receipt>(100)
        .await;

    let text = serde_json::to_string(outcome.journal()).unwrap();
    let back: Journal = serde_json::from_str(&text).unwrap();

    assert_eq!(&back, outcome.journal());
}
