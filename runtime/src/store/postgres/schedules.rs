//! The SQL of schedules (table `hookflow_schedules`, migration 3): saving one, listing them
//! row by row (a row that cannot be read is reported, never failing the others), the
//! compare-and-set of a last tick, and deleting one.

use super::{NOW, PostgresStore, get, pg, pg_write};
use crate::store::schedules::{Answer, KeepSchedules, RawSchedule, SCHEDULE_COLUMNS, sql_micros};
use crate::store::{ScheduleRecord, Schedules, StoreError, UnreadableSchedule};
use crate::types::RunId;

impl KeepSchedules for PostgresStore {
    fn keep_schedule<'a>(&'a self, schedule: &'a ScheduleRecord) -> Answer<'a, ()> {
        if let Err(refused) = self.writable("save a schedule") {
            return refused;
        }
        let schedule = schedule.clone();
        let pool = self.pool.clone();
        self.spawn(async move { save(&get(&pool).await?, &schedule).await })
    }

    fn read_schedules(&self) -> Answer<'_, Schedules> {
        let pool = self.pool.clone();
        self.spawn(async move { list(&get(&pool).await?).await })
    }

    fn cas_schedule<'a>(
        &'a self,
        name: &'a str,
        from: Option<u64>,
        tick: u64,
        run_id: Option<RunId>,
    ) -> Answer<'a, bool> {
        if let Err(refused) = self.writable("advance a schedule") {
            return refused;
        }
        let name = name.to_owned();
        let pool = self.pool.clone();
        self.spawn(async move { advance(&get(&pool).await?, &name, from, tick, run_id).await })
    }

    fn mark_schedule_started<'a>(&'a self, name: &'a str, run_id: RunId) -> Answer<'a, ()> {
        if let Err(refused) = self.writable("mark a schedule's run started") {
            return refused;
        }
        let name = name.to_owned();
        let pool = self.pool.clone();
        self.spawn(async move { started(&get(&pool).await?, &name, run_id).await })
    }

    fn drop_schedule<'a>(&'a self, name: &'a str) -> Answer<'a, bool> {
        if let Err(refused) = self.writable("remove a schedule") {
            return refused;
        }
        let name = name.to_owned();
        let pool = self.pool.clone();
        self.spawn(async move { remove(&get(&pool).await?, &name).await })
    }
}

async fn save(client: &deadpool_postgres::Client, s: &ScheduleRecord) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO hookflow_schedules ({SCHEDULE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (name) DO UPDATE SET
                anchor = CASE WHEN hookflow_schedules.spec = excluded.spec
                    THEN hookflow_schedules.anchor ELSE excluded.anchor END,
                workflow = excluded.workflow, version = excluded.version,
                spec = excluded.spec, input = excluded.input, overlap = excluded.overlap,
                catch_up = excluded.catch_up, updated_at = excluded.updated_at"
        ))
        .await
        .map_err(pg("prepare saving a schedule"))?;
    client
        .execute(
            &statement,
            &[
                &s.name,
                &s.workflow,
                &i64::from(s.version),
                &s.spec,
                &s.input.to_string(),
                &s.overlap.as_str(),
                &s.catch_up.as_str(),
                &sql_micros(s.anchor_micros),
                &s.last_tick_micros.map(sql_micros),
                &s.last_run_id.map(|id| id.to_string()),
                &s.started,
                &sql_micros(s.created_at_micros),
                &sql_micros(s.updated_at_micros),
            ],
        )
        .await
        .map_err(pg_write("save a schedule"))?;
    Ok(())
}

async fn list(client: &deadpool_postgres::Client) -> Result<Schedules, StoreError> {
    // Every worker lists them at each poll: prepared once per connection.
    let statement = client
        .prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM hookflow_schedules ORDER BY name"
        ))
        .await
        .map_err(pg("prepare listing schedules"))?;
    let rows = client
        .query(&statement, &[])
        .await
        .map_err(pg("list schedules"))?;
    let mut found = Schedules::default();
    for row in rows {
        let read = raw(&row)
            .map_err(|e| UnreadableSchedule {
                name: row.try_get::<_, String>(0).unwrap_or_default(),
                reason: e.to_string(),
            })
            .and_then(RawSchedule::read);
        match read {
            Ok(schedule) => found.schedules.push(schedule),
            Err(unreadable) => found.unreadable.push(unreadable),
        }
    }
    Ok(found)
}

fn raw(row: &tokio_postgres::Row) -> Result<RawSchedule, tokio_postgres::Error> {
    Ok(RawSchedule {
        name: row.try_get(0)?,
        workflow: row.try_get(1)?,
        version: row.try_get(2)?,
        spec: row.try_get(3)?,
        input: row.try_get(4)?,
        overlap: row.try_get(5)?,
        catch_up: row.try_get(6)?,
        anchor: row.try_get(7)?,
        last_tick: row.try_get(8)?,
        last_run_id: row.try_get(9)?,
        started: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

async fn advance(
    client: &deadpool_postgres::Client,
    name: &str,
    from: Option<u64>,
    tick: u64,
    run_id: Option<RunId>,
) -> Result<bool, StoreError> {
    let statement = client
        .prepare_cached(&format!(
            "UPDATE hookflow_schedules SET last_tick = $3,
                last_run_id = COALESCE($4::TEXT, last_run_id),
                started = CASE WHEN $4::TEXT IS NULL THEN started ELSE FALSE END,
                updated_at = {NOW}
             WHERE name = $1 AND last_tick IS NOT DISTINCT FROM $2::BIGINT"
        ))
        .await
        .map_err(pg("prepare advancing a schedule"))?;
    let changed = client
        .execute(
            &statement,
            &[
                &name,
                &from.map(sql_micros),
                &sql_micros(tick),
                &run_id.map(|id| id.to_string()),
            ],
        )
        .await
        .map_err(pg("advance a schedule"))?;
    Ok(changed == 1)
}

async fn started(
    client: &deadpool_postgres::Client,
    name: &str,
    run_id: RunId,
) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE hookflow_schedules SET started = TRUE WHERE name = $1 AND last_run_id = $2",
            &[&name, &run_id.to_string()],
        )
        .await
        .map_err(pg("mark a schedule's run started"))?;
    Ok(())
}

async fn remove(client: &deadpool_postgres::Client, name: &str) -> Result<bool, StoreError> {
    let deleted = client
        .execute("DELETE FROM hookflow_schedules WHERE name = $1", &[&name])
        .await
        .map_err(pg("remove a schedule"))?;
    Ok(deleted == 1)
}
