//! The SQL of schedules (table `schedules`, migration 3): saving one, listing them row by row
//! (a row that cannot be read is reported, never failing the others), the compare-and-set of
//! a last tick, and deleting one.

use rusqlite::{Connection, params};

use super::writer::Request;
use super::{SqliteStore, refusable, unavailable};
use crate::store::schedules::{Answer, KeepSchedules, RawSchedule, SCHEDULE_COLUMNS, sql_micros};
use crate::store::{ScheduleRecord, Schedules, StoreError, UnreadableSchedule};
use crate::types::{RunId, now_micros};

impl KeepSchedules for SqliteStore {
    fn keep_schedule<'a>(&'a self, schedule: &'a ScheduleRecord) -> Answer<'a, ()> {
        self.write(
            "save a schedule",
            |conn| save(conn, schedule),
            || {
                let schedule = schedule.clone();
                move |conn: &super::fixed::Db| save(conn, &schedule)
            },
        )
    }

    fn read_schedules(&self) -> Answer<'_, Schedules> {
        // A read: through the writer thread, in a store opened read-only too.
        self.send(|reply| {
            Request::Read(Box::new(move |conn: &Connection| {
                let _ = reply.send(list(conn));
            }))
        })
    }

    fn cas_schedule<'a>(
        &'a self,
        name: &'a str,
        from: Option<u64>,
        tick: u64,
        run_id: Option<RunId>,
    ) -> Answer<'a, bool> {
        let now = now_micros();
        self.write(
            "advance a schedule",
            |conn| advance(conn, name, from, tick, run_id, now),
            || {
                let name = name.to_owned();
                move |conn: &super::fixed::Db| advance(conn, &name, from, tick, run_id, now)
            },
        )
    }

    fn mark_schedule_started<'a>(&'a self, name: &'a str, run_id: RunId) -> Answer<'a, ()> {
        self.write(
            "mark a schedule's run started",
            |conn| started(conn, name, run_id),
            || {
                let name = name.to_owned();
                move |conn: &super::fixed::Db| started(conn, &name, run_id)
            },
        )
    }

    fn drop_schedule<'a>(&'a self, name: &'a str) -> Answer<'a, bool> {
        self.write(
            "remove a schedule",
            |conn| remove(conn, name),
            || {
                let name = name.to_owned();
                move |conn: &super::fixed::Db| remove(conn, &name)
            },
        )
    }
}

fn save(conn: &Connection, s: &ScheduleRecord) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO schedules ({SCHEDULE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (name) DO UPDATE SET
            anchor = CASE WHEN schedules.spec = excluded.spec THEN schedules.anchor
                ELSE excluded.anchor END,
            workflow = excluded.workflow, version = excluded.version, spec = excluded.spec,
            input = excluded.input, overlap = excluded.overlap, catch_up = excluded.catch_up,
            updated_at = excluded.updated_at"
    ))
    .and_then(|mut insert| {
        insert.execute(params![
            s.name,
            s.workflow,
            s.version,
            s.spec,
            s.input.to_string(),
            s.overlap.as_str(),
            s.catch_up.as_str(),
            sql_micros(s.anchor_micros),
            s.last_tick_micros.map(sql_micros),
            s.last_run_id.map(|id| id.to_string()),
            s.started,
            sql_micros(s.created_at_micros),
            sql_micros(s.updated_at_micros),
        ])
    })
    .map_err(refusable("save a schedule"))?;
    Ok(())
}

fn list(conn: &Connection) -> Result<Schedules, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name"
        ))
        .map_err(unavailable("list schedules"))?;
    let rows = stmt
        .query_map([], |row| {
            // Each column read on its own: a value of the wrong type makes this row
            // unreadable, never the list.
            let name = match row.get_ref(0)? {
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                other => format!("{other:?}"),
            };
            Ok(raw(row).map_err(|e| UnreadableSchedule {
                name,
                reason: e.to_string(),
            }))
        })
        .map_err(unavailable("list schedules"))?;
    let mut found = Schedules::default();
    for row in rows {
        match row
            .map_err(unavailable("list schedules"))?
            .and_then(RawSchedule::read)
        {
            Ok(schedule) => found.schedules.push(schedule),
            Err(unreadable) => found.unreadable.push(unreadable),
        }
    }
    Ok(found)
}

fn raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSchedule> {
    Ok(RawSchedule {
        name: row.get(0)?,
        workflow: row.get(1)?,
        version: row.get(2)?,
        spec: row.get(3)?,
        input: row.get(4)?,
        overlap: row.get(5)?,
        catch_up: row.get(6)?,
        anchor: row.get(7)?,
        last_tick: row.get(8)?,
        last_run_id: row.get(9)?,
        started: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
    })
}

fn advance(
    conn: &Connection,
    name: &str,
    from: Option<u64>,
    tick: u64,
    run_id: Option<RunId>,
    now: u64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE schedules SET last_tick = ?3,
                last_run_id = COALESCE(?4, last_run_id),
                started = CASE WHEN ?4 IS NULL THEN started ELSE 0 END,
                updated_at = ?5
             WHERE name = ?1 AND last_tick IS ?2",
        )
        .and_then(|mut update| {
            update.execute(params![
                name,
                from.map(sql_micros),
                sql_micros(tick),
                run_id.map(|id| id.to_string()),
                sql_micros(now),
            ])
        })
        .map_err(unavailable("advance a schedule"))?;
    Ok(changed == 1)
}

fn started(conn: &Connection, name: &str, run_id: RunId) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE schedules SET started = 1 WHERE name = ?1 AND last_run_id = ?2")
        .and_then(|mut update| update.execute(params![name, run_id.to_string()]))
        .map_err(unavailable("mark a schedule's run started"))?;
    Ok(())
}

fn remove(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM schedules WHERE name = ?1")
        .and_then(|mut delete| delete.execute(params![name]))
        .map_err(unavailable("remove a schedule"))?;
    Ok(deleted == 1)
}
