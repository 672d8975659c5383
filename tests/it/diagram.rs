//! A run's journal as a Mermaid sequence diagram and a Gantt chart.

use hookflow::{Event, Journal};

fn event(seq: u32, at_micros: u64, kind: serde_json::Value) -> Event {
    let mut value = kind;
    value["seq"] = seq.into();
    value["at_micros"] = at_micros.into();
    serde_json::from_value(value).unwrap()
}

/// A declined payment: `reserve` (1.25 ms), `capture` failing after 0.5 ms, `reserve` undone.
fn declined() -> Journal {
    use serde_json::json;
    let t0 = 1_700_000_000_000_000;
    Journal::from_events(vec![
        event(
            0,
            t0,
            json!({"event": "run_started", "workflow": "checkout", "run_id": "01a21009-8e2e-7596-a1ac-4dd0bb5fdced"}),
        ),
        event(
            1,
            t0 + 10,
            json!({"event": "hook_fired", "hook": "validate", "handlers": 1}),
        ),
        event(
            2,
            t0 + 30,
            json!({"event": "hook_handler_completed", "hook": "validate", "slot": "configured", "handler": "validate_minimum_amount"}),
        ),
        event(
            3,
            t0 + 40,
            json!({"event": "step_started", "step": "reserve", "position": 0}),
        ),
        event(
            4,
            t0 + 1_290,
            json!({"event": "step_completed", "step": "reserve", "position": 0, "compensable": true}),
        ),
        event(
            5,
            t0 + 1_300,
            json!({"event": "step_started", "step": "capture", "position": 1}),
        ),
        event(
            6,
            t0 + 1_800,
            json!({"event": "step_failed", "step": "capture", "position": 1, "error": "card declined; try again", "panicked": false}),
        ),
        event(
            7,
            t0 + 1_810,
            json!({"event": "run_failed", "error": "card declined; try again"}),
        ),
        event(
            8,
            t0 + 1_820,
            json!({"event": "compensation_started", "step": "reserve", "position": 0}),
        ),
        event(
            9,
            t0 + 2_020,
            json!({"event": "compensation_completed", "step": "reserve", "position": 0}),
        ),
        event(
            10,
            t0 + 2_500,
            json!({"event": "run_ended", "status": "compensated"}),
        ),
    ])
}

#[test]
fn a_failed_run_reads_as_a_sequence_with_durations() {
    assert_eq!(
        declined().to_mermaid_sequence(),
        "sequenceDiagram
    participant W as checkout
    participant S as steps
    participant H as hooks
    W->>H: validate (1 handlers)
    H-->>W: validate_minimum_amount [configured] ok
    W->>S: reserve #0
    S-->>W: #0 completed (1.250 ms)
    W->>S: capture #1
    S--xW: #1 FAILED: card declined  try again (0.500 ms)
    Note over W: failed: card declined  try again, compensating
    W->>S: undo reserve #0
    S-->>W: #0 undone (0.200 ms)
    Note over W: compensated after 2.500 ms
"
    );
}

#[test]
fn a_failed_run_draws_as_a_gantt_chart() {
    assert_eq!(
        declined().to_mermaid_gantt(),
        "gantt
    title checkout
    dateFormat x
    axisFormat %S.%L s
    section steps
    reserve (0) :done, s0, 1700000000000, 1700000000001
    capture (1) :crit, s1, 1700000000001, 1700000000002
    section compensations
    undo reserve (0) :u0, 1700000000001, 1700000000002
"
    );
}
