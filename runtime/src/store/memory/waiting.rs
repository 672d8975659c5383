//! The memory store's side of long-running runs: suspending, delivering events, cancelling,
//! and which waiting runs are due to be claimed.

use super::Inner;
use crate::journal::Event;
use crate::store::{Cancelling, Delivery, Message, RunRecord, StoreError, Suspension, Wake};
use crate::types::{CancelRequest, RunId, StoredStatus};

/// Whether a worker may claim `record` (lease aside): it is running, or waiting and due.
pub(super) fn claimable(record: &RunRecord, now: u64) -> bool {
    match record.status {
        StoredStatus::Running => true,
        StoredStatus::Waiting => record.wake_at_micros.is_some_and(|at| at <= now),
        _ => false,
    }
}

/// A claimed waiting run runs again: it waits no more.
pub(super) fn resume(record: &mut RunRecord) {
    if record.status == StoredStatus::Waiting {
        record.status = StoredStatus::Running;
    }
    record.wake_at_micros = None;
    record.waiting_for = None;
}

/// How many messages of `event` run `run_id` has.
fn count(inner: &Inner, run_id: RunId, event: &str) -> usize {
    inner
        .inbox
        .get(&run_id)
        .map_or(0, |all| all.iter().filter(|m| m.event == event).count())
}

pub(super) fn suspend(
    inner: &mut Inner,
    run_id: RunId,
    fence: u64,
    events: &[Event],
    suspension: &Suspension,
    now: u64,
) -> Result<Option<Wake>, StoreError> {
    let woken_by = {
        let (record, _) = inner
            .runs
            .get(&run_id)
            .ok_or(StoreError::NotFound(run_id))?;
        super::check_fence(record, fence)?;
        if let Some(request) = &record.cancel {
            Some(Wake::Cancel(request.clone()))
        } else if suspension
            .event
            .as_ref()
            .is_some_and(|(event, taken)| count(inner, run_id, event) > *taken as usize)
        {
            Some(Wake::Message)
        } else if suspension.wake_at_micros.is_some_and(|at| at <= now) {
            Some(Wake::Due)
        } else {
            None
        }
    };
    let (record, journal) = inner
        .runs
        .get_mut(&run_id)
        .ok_or(StoreError::NotFound(run_id))?;
    journal.extend_from_slice(events);
    record.updated_at_micros = now;
    if woken_by.is_none() {
        record.status = StoredStatus::Waiting;
        record.owner = None;
        record.lease_until_micros = None;
        record.wake_at_micros = suspension.wake_at_micros;
        record.waiting_for = suspension.event.as_ref().map(|(event, _)| event.clone());
    }
    Ok(woken_by)
}

pub(super) fn deliver(
    inner: &mut Inner,
    run_id: RunId,
    workflow: &str,
    message: &Message,
    now: u64,
) -> Delivery {
    let Some((record, _)) = inner.runs.get_mut(&run_id) else {
        return Delivery::UnknownRun;
    };
    if record.workflow != workflow {
        return Delivery::OtherWorkflow(record.workflow.clone());
    }
    let inbox = inner.inbox.entry(run_id).or_default();
    if let Some(key) = &message.delivery_key {
        if inbox.iter().any(|m| m.delivery_key.as_ref() == Some(key)) {
            return Delivery::Duplicate;
        }
    }
    if record.status.is_finished() {
        return Delivery::Ended(record.status);
    }
    inbox.push(message.clone());
    let woke = record.status == StoredStatus::Waiting
        && record.waiting_for.as_deref() == Some(&message.event);
    if woke {
        record.wake_at_micros = Some(now);
    }
    Delivery::Accepted { woke }
}

pub(super) fn message(inner: &Inner, run_id: RunId, event: &str, index: u32) -> Option<Message> {
    inner
        .inbox
        .get(&run_id)?
        .iter()
        .filter(|m| m.event == event)
        .nth(index as usize)
        .cloned()
}

pub(super) fn cancel(
    inner: &mut Inner,
    run_id: RunId,
    request: &CancelRequest,
    now: u64,
) -> Cancelling {
    let Some((record, _)) = inner.runs.get_mut(&run_id) else {
        return Cancelling::UnknownRun;
    };
    if record.status.is_finished() {
        return Cancelling::Ended(record.status);
    }
    if let Some(earlier) = &record.cancel {
        return Cancelling::AlreadyRequested(earlier.clone());
    }
    record.cancel = Some(request.clone());
    record.updated_at_micros = now;
    let woke = record.status == StoredStatus::Waiting;
    if woke {
        record.wake_at_micros = Some(now);
    }
    Cancelling::Requested { woke }
}
