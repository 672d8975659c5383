//! The scenarios of `replay_failures`, each run on a `MemoryStore` and on a SQLite file: a
//! run crashed (its future dropped) at a step, then resumed, against what an uninterrupted run
//! does.

use super::*;

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
