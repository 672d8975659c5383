//! The SQL of long-running runs: suspending a run, delivering events to its inbox, cancelling
//! it. Each locks the run's row first (`FOR UPDATE`), then reads the inbox in a statement of
//! its own: a suspension and a delivery (or a cancellation) to the same run are serialized on
//! that lock, and the second sees what the first committed, so that an event sent as the run
//! suspends always wakes it.

use deadpool_postgres::GenericClient;

use super::queries::refused;
use super::{NOW, pg, pg_write};
use crate::journal::Event;
use crate::store::row::micros;
use crate::store::{Cancelling, Delivery, Message, StoreError, StoredStatus, Suspension, Wake};
use crate::types::{CancelRequest, RunId, now_micros};

/// The parts of a run's row these statements look at, the row locked.
struct Row {
    workflow: String,
    status: Option<StoredStatus>,
    waiting_for: Option<String>,
    cancel: Option<String>,
    fence: i64,
}

async fn lock_row(client: &impl GenericClient, run_id: RunId) -> Result<Option<Row>, StoreError> {
    let row = client
        .query_opt(
            "SELECT workflow, status, waiting_for, cancel, fence FROM hookflow_runs
             WHERE run_id = $1 FOR UPDATE",
            &[&run_id.to_string()],
        )
        .await
        .map_err(pg("lock a run"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text = |i: usize| -> Result<Option<String>, StoreError> {
        row.try_get(i).map_err(|e| StoreError::Corrupt {
            run_id: run_id.to_string(),
            message: e.to_string(),
        })
    };
    Ok(Some(Row {
        workflow: text(0)?.unwrap_or_default(),
        status: text(1)?.as_deref().and_then(StoredStatus::parse),
        waiting_for: text(2)?,
        cancel: text(3)?,
        fence: row.try_get(4).map_err(|e| StoreError::Corrupt {
            run_id: run_id.to_string(),
            message: e.to_string(),
        })?,
    }))
}

fn cancel_request(run_id: RunId, text: &str) -> Result<CancelRequest, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        run_id: run_id.to_string(),
        message: format!("cancel: {e}"),
    })
}

pub(super) async fn suspend(
    client: &mut deadpool_postgres::Client,
    run_id: RunId,
    fence: u64,
    events: &[Event],
    suspension: &Suspension,
) -> Result<Option<Wake>, StoreError> {
    let id = run_id.to_string();
    let tx = client
        .transaction()
        .await
        .map_err(pg("begin a suspension"))?;
    let Some(run) = lock_row(&tx, run_id).await? else {
        return Err(StoreError::NotFound(run_id));
    };
    if run.fence != micros(fence) {
        drop(tx);
        return Err(refused(client, run_id, fence).await);
    }
    let wake = if let Some(text) = &run.cancel {
        Some(Wake::Cancel(cancel_request(run_id, text)?))
    } else if let Some((event, index)) = &suspension.event {
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM hookflow_inbox WHERE run_id = $1 AND event = $2",
                &[&id, event],
            )
            .await
            .map_err(pg("read a run's inbox"))?
            .get(0);
        (count > i64::from(*index)).then_some(Wake::Message)
    } else {
        None
    };
    let wake = wake.or_else(|| {
        suspension
            .wake_at_micros
            .is_some_and(|at| at <= now_micros())
            .then_some(Wake::Due)
    });
    if wake.is_none() {
        tx.execute(
            "UPDATE hookflow_runs SET status = 'waiting', owner = NULL, lease_until = NULL,
                wake_at = $2, waiting_for = $3, updated_at = $4
             WHERE run_id = $1",
            &[
                &id,
                &suspension.wake_at_micros.map(micros),
                &suspension.event.as_ref().map(|(event, _)| event),
                &micros(now_micros()),
            ],
        )
        .await
        .map_err(pg("suspend a run"))?;
    }
    let mut seqs = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for event in events {
        seqs.push(i64::from(event.seq));
        bodies.push(
            serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
                run_id: id.clone(),
                message: format!("event {} cannot be serialized: {e}", event.seq),
            })?,
        );
    }
    tx.execute(
        "INSERT INTO hookflow_events (run_id, seq, event)
         SELECT $1, ev.seq, ev.event FROM UNNEST($2::BIGINT[], $3::TEXT[]) AS ev (seq, event)
         ON CONFLICT (run_id, seq) DO UPDATE SET event = EXCLUDED.event",
        &[&id, &seqs, &bodies],
    )
    .await
    .map_err(pg_write("suspend a run"))?;
    tx.commit().await.map_err(pg_write("suspend a run"))?;
    Ok(wake)
}

pub(super) async fn deliver(
    client: &mut deadpool_postgres::Client,
    run_id: RunId,
    workflow: &str,
    message: &Message,
) -> Result<Delivery, StoreError> {
    let id = run_id.to_string();
    let tx = client.transaction().await.map_err(pg("begin a delivery"))?;
    let Some(run) = lock_row(&tx, run_id).await? else {
        return Ok(Delivery::UnknownRun);
    };
    if run.workflow != workflow {
        return Ok(Delivery::OtherWorkflow(run.workflow));
    }
    if let Some(key) = &message.delivery_key {
        let kept = tx
            .query_opt(
                "SELECT seq FROM hookflow_inbox WHERE run_id = $1 AND delivery_key = $2",
                &[&id, key],
            )
            .await
            .map_err(pg("read a run's inbox"))?;
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
    tx.execute(
        "INSERT INTO hookflow_inbox (run_id, seq, event, delivery_key, message)
         VALUES ($1, (SELECT coalesce(max(seq), -1) + 1 FROM hookflow_inbox WHERE run_id = $1),
            $2, $3, $4)",
        &[&id, &message.event, &message.delivery_key, &body],
    )
    .await
    .map_err(pg_write("deliver an event"))?;
    let woke = run.status == Some(StoredStatus::Waiting)
        && run.waiting_for.as_deref() == Some(&message.event);
    if woke {
        wake_now(&tx, &id).await?;
    }
    tx.commit().await.map_err(pg_write("deliver an event"))?;
    Ok(Delivery::Accepted { woke })
}

/// Makes a waiting run due to be claimed now.
async fn wake_now(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
    client
        .execute(
            &format!(
                "UPDATE hookflow_runs SET wake_at = {NOW} WHERE run_id = $1 AND status = 'waiting'"
            ),
            &[&id],
        )
        .await
        .map_err(pg("wake a run"))?;
    Ok(())
}

pub(super) async fn message(
    client: &deadpool_postgres::Client,
    run_id: RunId,
    event: &str,
    index: u32,
) -> Result<Option<Message>, StoreError> {
    let row = client
        .query_opt(
            "SELECT message FROM hookflow_inbox WHERE run_id = $1 AND event = $2
             ORDER BY seq LIMIT 1 OFFSET $3",
            &[&run_id.to_string(), &event, &i64::from(index)],
        )
        .await
        .map_err(pg("read a run's inbox"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt {
        run_id: run_id.to_string(),
        message: format!("message {index} of event `{event}` cannot be read: {e}"),
    };
    let body: String = row.try_get(0).map_err(|e| corrupt(&e))?;
    serde_json::from_str(&body)
        .map(Some)
        .map_err(|e| corrupt(&e))
}

pub(super) async fn cancel(
    client: &mut deadpool_postgres::Client,
    run_id: RunId,
    request: &CancelRequest,
) -> Result<Cancelling, StoreError> {
    let id = run_id.to_string();
    let tx = client
        .transaction()
        .await
        .map_err(pg("begin a cancellation"))?;
    let Some(run) = lock_row(&tx, run_id).await? else {
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
    tx.execute(
        "UPDATE hookflow_runs SET cancel = $2, updated_at = $3 WHERE run_id = $1",
        &[&id, &body, &micros(now_micros())],
    )
    .await
    .map_err(pg_write("cancel a run"))?;
    let woke = run.status == Some(StoredStatus::Waiting);
    if woke {
        wake_now(&tx, &id).await?;
    }
    tx.commit().await.map_err(pg_write("cancel a run"))?;
    Ok(Cancelling::Requested { woke })
}

pub(super) async fn cancel_requests(
    client: &deadpool_postgres::Client,
    runs: &[RunId],
) -> Result<Vec<(RunId, CancelRequest)>, StoreError> {
    let ids: Vec<String> = runs.iter().map(ToString::to_string).collect();
    let rows = client
        .query(
            "SELECT run_id, cancel FROM hookflow_runs
             WHERE run_id = ANY($1) AND cancel IS NOT NULL",
            &[&ids],
        )
        .await
        .map_err(pg("look for cancellations"))?;
    let mut found = Vec::new();
    for row in rows {
        let (Ok(id), Ok(text)) = (row.try_get::<_, String>(0), row.try_get::<_, String>(1)) else {
            continue;
        };
        let Some(run_id) = runs.iter().copied().find(|r| r.to_string() == id) else {
            continue;
        };
        found.push((run_id, cancel_request(run_id, &text)?));
    }
    Ok(found)
}
