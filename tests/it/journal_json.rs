//! The journal's JSON does not change when an event's in-memory form does (issue 20, fourth
//! pass: the larger kinds' parts boxed to make an `Event` 64 bytes). Each line below is an
//! event as the stores wrote it before, every optional field present and then absent: it
//! reads back, and writes out again byte for byte (the same keys, in the same order).

use hookflow::journal::{Event, EventKind};

/// Events as written before the change, one JSON object a line.
const WRITTEN_BEFORE: &[&str] = &[
    r#"{"seq":0,"at_micros":1,"event":"run_started","workflow":"pay","run_id":"0193f1c2-0000-7000-8000-000000000001"}"#,
    r#"{"seq":1,"at_micros":2,"event":"hook_fired","hook":"screen","handlers":2,"firing":0,"names":["a","b"],"key":"p0.1/0"}"#,
    r#"{"seq":1,"at_micros":2,"event":"hook_fired","hook":"screen","handlers":2,"firing":3,"names":["a","b"]}"#,
    r#"{"seq":1,"at_micros":2,"event":"hook_fired","hook":"screen","handlers":1,"firing":4,"key":"p0.1/0"}"#,
    r#"{"seq":1,"at_micros":2,"event":"hook_fired","hook":"screen","handlers":1,"firing":5}"#,
    r#"{"seq":2,"at_micros":3,"event":"hook_handler_completed","hook":"screen","slot":"configured","handler":"a","firing":0,"data":{"cents":2500}}"#,
    r#"{"seq":2,"at_micros":3,"event":"hook_handler_completed","hook":"screen","slot":"prepended","handler":"a","firing":0,"data":null}"#,
    r#"{"seq":2,"at_micros":3,"event":"hook_handler_completed","hook":"screen","slot":"appended","handler":"a","firing":1}"#,
    r#"{"seq":3,"at_micros":4,"event":"hook_handler_failed","hook":"screen","slot":"configured","handler":"b","error":"too small","panicked":true,"firing":2}"#,
    r#"{"seq":4,"at_micros":5,"event":"step_started","step":"hold","position":0,"key":"p0.0/1"}"#,
    r#"{"seq":5,"at_micros":6,"event":"step_completed","step":"hold","position":0,"compensable":true,"output":"hold_1","compensation":{"id":"hold_1"}}"#,
    r#"{"seq":5,"at_micros":6,"event":"step_completed","step":"hold","position":0,"compensable":false,"output":null}"#,
    r#"{"seq":5,"at_micros":6,"event":"step_completed","step":"hold","position":0,"compensable":true}"#,
    r#"{"seq":6,"at_micros":7,"event":"step_retrying","step":"capture","position":1,"attempt":1,"error":"unavailable","delay_micros":100000}"#,
    r#"{"seq":7,"at_micros":8,"event":"step_failed","step":"capture","position":1,"error":"declined","panicked":false,"attempts":3,"best_effort":true,"error_data":{"Declined":"funds"}}"#,
    r#"{"seq":7,"at_micros":8,"event":"step_failed","step":"capture","position":1,"error":"declined","panicked":true,"attempts":1,"best_effort":false}"#,
    r#"{"seq":8,"at_micros":9,"event":"compensation_started","step":"hold","position":0,"data":{"id":"hold_1"}}"#,
    r#"{"seq":8,"at_micros":9,"event":"compensation_started","step":"hold","position":0}"#,
    r#"{"seq":9,"at_micros":10,"event":"compensation_retrying","step":"hold","position":0,"attempt":2,"error":"busy","delay_micros":5}"#,
    r#"{"seq":10,"at_micros":11,"event":"compensation_failed","step":"hold","position":0,"error":"gone","panicked":false}"#,
    r#"{"seq":11,"at_micros":12,"event":"bag_written","key":"shop::Cart","value":{"items":2},"step":1}"#,
    r#"{"seq":11,"at_micros":12,"event":"bag_written","key":"shop::Cart","value":null,"handler":[0,1]}"#,
    r#"{"seq":11,"at_micros":12,"event":"bag_written","key":"shop::Cart","compensation":0}"#,
    r#"{"seq":12,"at_micros":13,"event":"job_enqueued","job":{"id":"j1","name":"email","payload":{"to":"ada"}},"step":1}"#,
    r#"{"seq":12,"at_micros":13,"event":"job_enqueued","job":{"id":"j2","name":"email","payload":null},"handler":[2,0]}"#,
    r#"{"seq":13,"at_micros":14,"event":"wait_started","position":2,"key":"p1.0/0","awaited":"paid","until_micros":99}"#,
    r#"{"seq":13,"at_micros":14,"event":"wait_started","position":2,"awaited":"paid"}"#,
    r#"{"seq":13,"at_micros":14,"event":"wait_started","position":2,"until_micros":99}"#,
    r#"{"seq":14,"at_micros":15,"event":"run_ended","status":"compensated"}"#,
];

#[test]
fn a_journal_written_before_reads_and_writes_the_same_json() {
    for line in WRITTEN_BEFORE {
        let event: Event =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line} does not read: {e}"));
        let again = serde_json::to_string(&event).unwrap();
        assert_eq!(&again, line, "written again differently");
        let back: Event = serde_json::from_str(&again).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn fields_read_from_the_boxed_parts_are_the_recorded_ones() {
    let read = |line: &str| serde_json::from_str::<Event>(line).unwrap().kind;
    let EventKind::StepFailed {
        step,
        position,
        failure,
    } = read(WRITTEN_BEFORE[14])
    else {
        panic!("not a step failure");
    };
    assert_eq!((step.as_ref(), position), ("capture", 1));
    assert_eq!(
        (
            failure.error.as_str(),
            failure.panicked,
            failure.attempts,
            failure.best_effort
        ),
        ("declined", false, 3, true)
    );
    assert_eq!(
        failure.error_data,
        Some(serde_json::json!({ "Declined": "funds" }))
    );

    // A firing without names or key has no detail: as the run that recorded it made it.
    assert!(matches!(
        read(WRITTEN_BEFORE[4]),
        EventKind::HookFired { detail: None, .. }
    ));
    let EventKind::HookFired {
        detail: Some(detail),
        ..
    } = read(WRITTEN_BEFORE[3])
    else {
        panic!("a keyed firing has its detail");
    };
    assert!(detail.names.is_empty());
    assert_eq!(detail.key.as_deref(), Some("p0.1/0"));

    // A recorded `null` stays a recorded value; an absent one stays absent.
    assert!(matches!(
        read(WRITTEN_BEFORE[11]),
        EventKind::StepCompleted { output: Some(ref v), compensation: None, .. } if v.is_null()
    ));
    assert!(matches!(
        read(WRITTEN_BEFORE[12]),
        EventKind::StepCompleted {
            output: None,
            compensation: None,
            ..
        }
    ));
}
