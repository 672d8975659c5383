//! Run records made by hand, for the tests that drive a store directly.

use hookflow::store::{RunRecord, StoredStatus};
use hookflow::{Origin, RunId};

/// A record of a running run of `workflow` version 1, never claimed: input `1`, created and
/// changed at 1 µs, no key, owner, lease or wait.
pub fn running(run_id: RunId, workflow: &str) -> RunRecord {
    RunRecord {
        run_id,
        workflow: workflow.into(),
        version: 1,
        input: serde_json::json!(1),
        status: StoredStatus::Running,
        idempotency_key: None,
        request_id: None,
        actor: None,
        origin: Origin::Local,
        additional_data: None,
        output: None,
        error: None,
        created_at_micros: 1,
        updated_at_micros: 1,
        owner: None,
        fence: 0,
        lease_until_micros: None,
        wake_at_micros: None,
        waiting_for: None,
        cancel: None,
        deadline_micros: None,
    }
}
