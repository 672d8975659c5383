//! The SQL of each write but the grouped commits: creating, claiming, renewing, releasing
//! and pruning runs (reading them back is in `read`).

use super::read::{load_readable, park, read_journals, record, stored_id};
use super::wakeup::notify_claimable;
use super::{NOW, pg, pg_write};
use crate::store::row::{self, RECORD_COLUMNS, micros, origin_str};
use crate::store::{Claim, Created, Found, Lease, RunRecord, StoreError, StoredRun};
use crate::types::RunId;

pub(super) async fn create(
    client: &deadpool_postgres::Client,
    run: &RunRecord,
    lease: Option<&Lease>,
) -> Result<Created, StoreError> {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
    let actor = run
        .actor
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO hookflow_runs (run_id, workflow, version, input, status,
                idempotency_key, request_id, actor, origin, additional_data, output, error,
                created_at, updated_at, owner, fence, lease_until, lease_micros, deadline)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                $15, $16, CASE WHEN $15::TEXT IS NULL THEN NULL ELSE {NOW} + $17 END, $17, $18)
             ON CONFLICT DO NOTHING"
        ))
        .await
        .map_err(pg("prepare an insert"))?;
    let inserted = client
        .execute(
            &statement,
            &[
                &run.run_id.to_string(),
                &run.workflow,
                &i64::from(run.version),
                &run.input.to_string(),
                &run.status.as_str(),
                &run.idempotency_key,
                &run.request_id,
                &actor,
                &origin_str(run.origin),
                &json(&run.additional_data),
                &json(&run.output),
                &run.error,
                &micros(run.created_at_micros),
                &micros(run.updated_at_micros),
                &lease.map(|l| &l.owner),
                &i64::from(lease.is_some()),
                &micros(lease.map_or(0, Lease::micros)),
                &run.deadline_micros.map(micros),
            ],
        )
        .await
        .map_err(pg_write("record a new run"))?;
    if inserted == 1 {
        if lease.is_none() {
            notify_claimable(client).await;
        }
        return Ok(Created::New);
    }
    // A run with this idempotency key or this run id exists (the insert waited for it to be
    // committed), and nothing was written: the key first.
    if run.idempotency_key.is_some() {
        let row = client
            .query_opt(
                &format!("SELECT {RECORD_COLUMNS} FROM hookflow_runs WHERE idempotency_key = $1"),
                &[&run.idempotency_key],
            )
            .await
            .map_err(pg("look up an idempotency key"))?;
        if let Some(row) = row {
            let existing = record(&row)?;
            if existing.same_request(run) {
                return Ok(Created::Existing(Box::new(existing)));
            }
            return Ok(Created::KeyConflict {
                run_id: existing.run_id,
            });
        }
    }
    let taken = client
        .query_opt(
            "SELECT 1 FROM hookflow_runs WHERE run_id = $1",
            &[&run.run_id.to_string()],
        )
        .await
        .map_err(pg("look up a run id"))?;
    match taken {
        Some(_) => Ok(Created::RunIdTaken),
        None => Err(StoreError::Unavailable {
            context: "record a new run".into(),
            message: "the run holding its idempotency key or run id disappeared".into(),
        }),
    }
}

/// Why a fenced write to `run_id` changed nothing: the run is gone, or its lease moved on.
pub(super) async fn refused(
    client: &tokio_postgres::Client,
    run_id: RunId,
    fence: u64,
) -> StoreError {
    match client
        .query_opt(
            "SELECT fence FROM hookflow_runs WHERE run_id = $1",
            &[&run_id.to_string()],
        )
        .await
    {
        Ok(None) => StoreError::NotFound(run_id),
        Ok(Some(row)) => StoreError::Fenced {
            run_id,
            fence,
            current: row
                .try_get::<_, i64>(0)
                .ok()
                .and_then(|f| u64::try_from(f).ok())
                .unwrap_or(0),
        },
        Err(err) => pg("read a run's lease")(err),
    }
}

pub(super) async fn claim(
    client: &deadpool_postgres::Client,
    run_id: RunId,
    lease: &Lease,
) -> Result<Claim, StoreError> {
    let id = run_id.to_string();
    let taken = client
        .execute(
            &format!(
                "UPDATE hookflow_runs SET owner = $2, fence = fence + 1,
                    lease_until = {NOW} + $3, lease_micros = $3,
                    status = CASE WHEN status = 'waiting' THEN 'running' ELSE status END,
                    wake_at = NULL, waiting_for = NULL
                 WHERE run_id = $1 AND status IN ('running', 'parked', 'waiting')
                    AND (owner IS NULL OR owner = $2 OR lease_until IS NULL
                        OR lease_until <= {NOW})"
            ),
            &[&id, &lease.owner, &micros(lease.micros())],
        )
        .await
        .map_err(pg("claim a run"))?;
    let (record, events) = match load_readable(client, run_id).await? {
        Ok(run) => run,
        Err(unreadable) => {
            // The record (or the journal) cannot be read: quarantine it, unless it is
            // finished or another owner's live lease holds it.
            let pg_client: &tokio_postgres::Client = client;
            if park(pg_client, &unreadable, Some(&lease.owner)).await? {
                return Ok(Claim::Quarantined(unreadable));
            }
            return Err(row::corrupt(unreadable));
        }
    };
    if taken == 1 {
        return Ok(Claim::Acquired(Box::new(record), events));
    }
    if record.status.is_finished() {
        return Ok(Claim::Finished(Box::new(record), events));
    }
    Ok(Claim::Held {
        owner: record.owner.clone().unwrap_or_default(),
        until_micros: record.lease_until_micros.unwrap_or(0),
    })
}

/// The claim's planner settings ([`claim_next`]): its runs found by index scans only, so that
/// it reads the ready runs in `hookflow_runs_by_status_created`'s order (no sort then) and
/// stops at its limit. (`enable_sort = off` instead would weigh on every plan of the
/// statement, which sorts the runs of both kinds it found: it then lost its other choices.)
const IN_INDEX_ORDER: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off";

/// Claims up to `limit` free runs in one transaction: the claim, the journals of the runs
/// claimed before (generation > 1), and the quarantine of those that cannot be read.
pub(super) async fn claim_next(
    client: &mut deadpool_postgres::Client,
    lease: &Lease,
    workflows: &[(String, u32)],
    skip: &[String],
    limit: usize,
) -> Result<Found<StoredRun>, StoreError> {
    // Each workflow and version the worker runs as one key, `name version`, matched by a
    // filter on the runs read, not by a join: a join (a hash semi join where the planner
    // expected a few rows) loses the index's order, and the claim then read and sorted every
    // ready run again. One key per pair: the version is what follows the key's last space.
    let keys: Vec<String> = workflows.iter().map(|(w, v)| format!("{w} {v}")).collect();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let tx = client.transaction().await.map_err(pg("begin a claim"))?;
    // The runs ready (`hookflow_runs_by_status_created`, oldest first, in the statement's
    // whole order: it stops after `limit`, past the runs in flight only, never the ended ones,
    // and sorts nothing, whatever the planner's statistics) and the parked runs due
    // (`hookflow_runs_waking`), each locked apart (a locking clause cannot go with UNION),
    // then the oldest `limit` of both taken. The limit is a parameter, one statement for all
    // limits: written into the statement instead (one prepared per limit, so that each kept
    // its generic plan), it cost the workers 10-25% of their throughput in more server CPU a
    // run (BENCHMARKS.md, issue 20, third pass). Past the plan cache's fifth execution the
    // claims still read only the runs they take (`postgres_plans` tests).
    let free = |condition: &str| {
        format!(
            "SELECT run_id, created_at FROM hookflow_runs
             WHERE {condition}
                AND (owner IS NULL OR lease_until IS NULL OR lease_until <= {NOW})
                AND workflow || ' ' || version::TEXT = ANY($3::TEXT[])
                AND run_id <> ALL($5)
             ORDER BY created_at, run_id
             LIMIT $4
             FOR UPDATE SKIP LOCKED"
        )
    };
    let statement = tx
        .prepare_cached(&format!(
            "WITH ready AS ({}), due AS ({})
                UPDATE hookflow_runs SET owner = $1, fence = fence + 1,
                    lease_until = {NOW} + $2, lease_micros = $2,
                    status = 'running', wake_at = NULL, waiting_for = NULL
                 WHERE run_id IN (
                    SELECT run_id FROM (SELECT * FROM ready UNION ALL SELECT * FROM due) c
                    ORDER BY created_at, run_id
                    LIMIT $4)
                 RETURNING {RECORD_COLUMNS}",
            free("status = 'running'"),
            free(&format!("status = 'waiting' AND wake_at <= {NOW}")),
        ))
        .await
        .map_err(pg("prepare a claim"))?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&lease.owner, &micros(lease.micros()), &keys, &limit, &skip];
    // The claim reads the ready runs in the index's order, never all of them sorted: the
    // planner's choice when its statistics say there are few (a table just filled, a backlog
    // enqueued since the last `ANALYZE`), which then cost every claim the whole backlog. Sent
    // with the claim, in one round trip; for this transaction only.
    let settings = tx.batch_execute(IN_INDEX_ORDER);
    let claim = tx.query(&statement, &params);
    let (_, rows) = tokio::try_join!(settings, claim).map_err(pg("claim runs"))?;
    if rows.is_empty() {
        // Nothing changed: the transaction rolls back as it is dropped.
        return Ok(Found::default());
    }
    let mut found = Found::default();
    for row in &rows {
        match record(row) {
            Ok(record) => found.runs.push((record, Vec::new())),
            Err(err) => found
                .unreadable
                .push(row::unreadable_record(&stored_id(row), err)?),
        }
    }
    found
        .runs
        .sort_by_key(|(r, _)| (r.created_at_micros, r.run_id));
    // A run claimed for the first time (generation 1: enqueued, never started) has no
    // journal yet: read only the others'.
    let pg_tx: &tokio_postgres::Transaction<'_> = &tx;
    let mut broken = read_journals(pg_tx, &mut found.runs, true).await?;
    let unreadable = &mut found.unreadable;
    found
        .runs
        .retain(|(r, _)| match broken.remove(&r.run_id.to_string()) {
            Some(this) => {
                unreadable.push(this);
                false
            }
            None => true,
        });
    for this in &found.unreadable {
        park(pg_tx, this, Some(&lease.owner)).await?;
    }
    tx.commit().await.map_err(pg("claim runs"))?;
    Ok(found)
}

pub(super) async fn renew(
    client: &tokio_postgres::Client,
    lease: &Lease,
    ids: &[String],
) -> Result<usize, StoreError> {
    // Rows a commit is writing are skipped (that commit renews them): no lock waits,
    // no deadlock with the committers.
    let renewed = client
        .execute(
            &format!(
                "UPDATE hookflow_runs SET lease_until = {NOW} + $2, lease_micros = $2
                 WHERE run_id IN (SELECT run_id FROM hookflow_runs
                     WHERE run_id = ANY($3) AND owner = $1 FOR UPDATE SKIP LOCKED)"
            ),
            &[&lease.owner, &micros(lease.micros()), &ids],
        )
        .await
        .map_err(pg("renew leases"))?;
    Ok(usize::try_from(renewed).unwrap_or(usize::MAX))
}

pub(super) async fn release(
    client: &tokio_postgres::Client,
    run_id: RunId,
    fence: u64,
) -> Result<(), StoreError> {
    let changed = client
        .execute(
            "UPDATE hookflow_runs SET owner = NULL, lease_until = NULL
             WHERE run_id = $1 AND fence = $2",
            &[&run_id.to_string(), &micros(fence)],
        )
        .await
        .map_err(pg("release a run"))?;
    if changed == 0 {
        return Err(refused(client, run_id, fence).await);
    }
    notify_claimable(client).await;
    Ok(())
}

/// Deletes up to `limit` ended runs that last changed before `ended_before`, oldest first,
/// with their journals, in one transaction; returns how many. Running and parked runs are
/// never selected; rows another transaction holds are skipped (the next batch takes them).
pub(super) async fn prune(
    client: &mut deadpool_postgres::Client,
    ended_before: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let context = "prune ended runs";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let tx = client.transaction().await.map_err(pg(context))?;
    let runs = tx
        .prepare_cached(
            "DELETE FROM hookflow_runs WHERE run_id IN (
                SELECT run_id FROM hookflow_runs
                WHERE ended_at < $1
                ORDER BY ended_at, run_id
                LIMIT $2
                FOR UPDATE SKIP LOCKED)
             RETURNING run_id",
        )
        .await
        .map_err(pg(context))?;
    let events = tx
        .prepare_cached("DELETE FROM hookflow_events WHERE run_id = ANY($1)")
        .await
        .map_err(pg(context))?;
    let ids: Vec<String> = tx
        .query(&runs, &[&micros(ended_before), &limit])
        .await
        .map_err(pg(context))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    tx.execute(&events, &[&ids]).await.map_err(pg(context))?;
    tx.execute("DELETE FROM hookflow_inbox WHERE run_id = ANY($1)", &[&ids])
        .await
        .map_err(pg(context))?;
    tx.commit().await.map_err(pg(context))?;
    Ok(ids.len())
}
