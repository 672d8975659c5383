//! The SQL of long-running runs: suspending a run, delivering events to its inbox, cancelling
//! it. Each runs on the writer's connection inside its transaction, so a suspension and a
//! delivery (or a cancellation) to the same run never interleave.

use rusqlite::{Connection, OptionalExtension, params};

use super::queries::{commit_events, refused};
use super::{refusable, unavailable};
use crate::journal::Event;
use crate::store::row::micros;
use crate::store::{Cancelling, Delivery, Message, StoreError, StoredStatus, Suspension, Wake};
use crate::types::{CancelRequest, RunId, now_micros};

/// The parts of a run's row these statements look at.
struct Row {
    workflow: String,
    status: Option<StoredStatus>,
    waiting_for: Option<String>,
    cancel: Option<String>,
    fence: i64,
}

fn row(conn: &Connection, run_id: RunId) -> Result<Option<Row>, StoreError> {
    conn.prepare_cached(
        "SELECT workflow, status, waiting_for, cancel, fence FROM runs WHERE run_id = ?1",
    )
    .and_then(|mut select| {
        select
            .query_row(params![run_id.to_string()], |r| {
                Ok(Row {
                    workflow: r.get(0)?,
                    status: StoredStatus::parse(&r.get::<_, String>(1)?),
                    waiting_for: r.get(2)?,
                    cancel: r.get(3)?,
                    fence: r.get(4)?,
                })
            })
            .optional()
    })
    .map_err(unavailable("read a run"))
}

fn cancel_request(run_id: RunId, text: &str) -> Result<CancelRequest, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        run_id: run_id.to_string(),
        message: format!("cancel: {e}"),
    })
}

/// How many messages of `event` run `run_id` has.
fn count(conn: &Connection, run_id: RunId, event: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT count(*) FROM inbox WHERE run_id = ?1 AND event = ?2")
        .and_then(|mut c| c.query_row(params![run_id.to_string(), event], |r| r.get(0)))
        .map_err(unavailable("read a run's inbox"))
}

pub(super) fn suspend(
    conn: &Connection,
    run_id: RunId,
    fence: u64,
    events: &[Event],
    suspension: &Suspension,
) -> Result<Option<Wake>, StoreError> {
    let Some(run) = row(conn, run_id)? else {
        return Err(StoreError::NotFound(run_id));
    };
    if run.fence != micros(fence) {
        return Err(refused(conn, run_id, fence));
    }
    let now = now_micros();
    let wake = if let Some(text) = &run.cancel {
        Some(Wake::Cancel(cancel_request(run_id, text)?))
    } else if let Some((event, index)) = &suspension.event {
        (count(conn, run_id, event)? > i64::from(*index)).then_some(Wake::Message)
    } else {
        None
    };
    let wake = wake.or_else(|| {
        suspension
            .wake_at_micros
            .is_some_and(|at| at <= now)
            .then_some(Wake::Due)
    });
    if wake.is_none() {
        conn.prepare_cached(
            "UPDATE runs SET status = 'waiting', owner = NULL, lease_until = NULL,
                wake_at = ?3, waiting_for = ?4, updated_at = ?5
             WHERE run_id = ?1 AND fence = ?2",
        )
        .and_then(|mut update| {
            update.execute(params![
                run_id.to_string(),
                micros(fence),
                suspension.wake_at_micros.map(micros),
                suspension.event.as_ref().map(|(event, _)| event),
                micros(now),
            ])
        })
        .map_err(unavailable("suspend a run"))?;
    }
    commit_events(conn, run_id, events)?;
    Ok(wake)
}

pub(super) fn deliver(
    conn: &Connection,
    run_id: RunId,
    workflow: &str,
    message: &Message,
) -> Result<Delivery, StoreError> {
    let Some(run) = row(conn, run_id)? else {
        return Ok(Delivery::UnknownRun);
    };
    if run.workflow != workflow {
        return Ok(Delivery::OtherWorkflow(run.workflow));
    }
    let id = run_id.to_string();
    if let Some(key) = &message.delivery_key {
        let kept: Option<i64> = conn
            .prepare_cached("SELECT seq FROM inbox WHERE run_id = ?1 AND delivery_key = ?2")
            .and_then(|mut s| s.query_row(params![id, key], |r| r.get(0)).optional())
            .map_err(unavailable("read a run's inbox"))?;
        if kept.is_some() {
            return Ok(Delivery::Duplicate);
        }
    }
    if let Some(status) = run.status.filter(|s| s.is_finished()) {
        return Ok(Delivery::Ended(status));
    }
    let body = serde_json::to_string(message).map_err(|e| StoreError::Refused {
        context: "deliver an event".into(),
        message: e.to_string(),
    })?;
    conn.prepare_cached(
        "INSERT INTO inbox (run_id, seq, event, delivery_key, message)
         VALUES (?1, (SELECT coalesce(max(seq), -1) + 1 FROM inbox WHERE run_id = ?1), ?2, ?3, ?4)",
    )
    .and_then(|mut insert| insert.execute(params![id, message.event, message.delivery_key, body]))
    .map_err(refusable("deliver an event"))?;
    let woke = run.status == Some(StoredStatus::Waiting)
        && run.waiting_for.as_deref() == Some(&message.event);
    if woke {
        wake_now(conn, run_id)?;
    }
    Ok(Delivery::Accepted { woke })
}

/// Makes a waiting run due to be claimed now.
fn wake_now(conn: &Connection, run_id: RunId) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE runs SET wake_at = ?2 WHERE run_id = ?1 AND status = 'waiting'")
        .and_then(|mut wake| wake.execute(params![run_id.to_string(), micros(now_micros())]))
        .map_err(unavailable("wake a run"))?;
    Ok(())
}

pub(super) fn message(
    conn: &Connection,
    run_id: RunId,
    event: &str,
    index: u32,
) -> Result<Option<Message>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached(
            "SELECT message FROM inbox WHERE run_id = ?1 AND event = ?2
             ORDER BY seq LIMIT 1 OFFSET ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![run_id.to_string(), event, index], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable("read a run's inbox"))?;
    body.map(|body| {
        serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
            run_id: run_id.to_string(),
            message: format!("message {index} of event `{event}` cannot be read: {e}"),
        })
    })
    .transpose()
}

pub(super) fn cancel(
    conn: &Connection,
    run_id: RunId,
    request: &CancelRequest,
) -> Result<Cancelling, StoreError> {
    let Some(run) = row(conn, run_id)? else {
        return Ok(Cancelling::UnknownRun);
    };
    if let Some(status) = run.status.filter(|s| s.is_finished()) {
        return Ok(Cancelling::Ended(status));
    }
    if let Some(text) = &run.cancel {
        return Ok(Cancelling::AlreadyRequested(cancel_request(run_id, text)?));
    }
    let body = serde_json::to_string(request).map_err(|e| StoreError::Refused {
        context: "cancel a run".into(),
        message: e.to_string(),
    })?;
    conn.prepare_cached("UPDATE runs SET cancel = ?2, updated_at = ?3 WHERE run_id = ?1")
        .and_then(|mut update| {
            update.execute(params![run_id.to_string(), body, micros(now_micros())])
        })
        .map_err(refusable("cancel a run"))?;
    let woke = run.status == Some(StoredStatus::Waiting);
    if woke {
        wake_now(conn, run_id)?;
    }
    Ok(Cancelling::Requested { woke })
}

pub(super) fn cancel_requests(
    conn: &Connection,
    runs: &[RunId],
) -> Result<Vec<(RunId, CancelRequest)>, StoreError> {
    let mut select = conn
        .prepare_cached("SELECT cancel FROM runs WHERE run_id = ?1 AND cancel IS NOT NULL")
        .map_err(unavailable("look for cancellations"))?;
    let mut found = Vec::new();
    for run_id in runs {
        let text: Option<String> = select
            .query_row(params![run_id.to_string()], |r| r.get(0))
            .optional()
            .map_err(unavailable("look for cancellations"))?;
        if let Some(text) = text {
            found.push((*run_id, cancel_request(*run_id, &text)?));
        }
    }
    Ok(found)
}
