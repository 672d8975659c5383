//! What the SQL stores (SQLite, PostgreSQL) share: how a run is laid out in columns, how
//! a row and a journal row are read back, with the same errors for corrupt data, and how a
//! run that cannot be read is told apart from a store that fails (quarantine).

use super::{RunRecord, StoreError, StoredStatus, Unreadable};
use crate::journal::Event;
use crate::types::{Actor, Origin, RunId};

/// The columns of a run, in the order [`RawRun`] reads them.
pub(crate) const RECORD_COLUMNS: &str =
    "run_id, workflow, version, input, status, idempotency_key, request_id,
    actor, origin, additional_data, output, error, created_at, updated_at, owner, fence,
    lease_until, wake_at, waiting_for, cancel, deadline";

/// The names of [`RECORD_COLUMNS`].
pub(crate) fn record_columns() -> impl Iterator<Item = &'static str> {
    RECORD_COLUMNS.split(',').map(str::trim)
}

/// The statuses of ended runs ([`StoredStatus::is_finished`]) as an SQL list, for
/// `status IN (...)`: `'completed', 'compensated', 'compensation_failed'`. The SQL stores'
/// tests check the conditions their migrations find ended runs by against it (SQLite's prune
/// says its own as `sqlite::schema::ended`, from the same statuses).
#[cfg(test)]
pub(crate) fn finished_statuses() -> String {
    StoredStatus::ALL
        .into_iter()
        .filter(|status| status.is_finished())
        .map(|status| format!("'{}'", status.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `runs` row before its JSON columns are read.
pub(crate) struct RawRun {
    pub(crate) run_id: String,
    pub(crate) workflow: String,
    pub(crate) version: i64,
    pub(crate) input: String,
    pub(crate) status: String,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) origin: String,
    pub(crate) additional_data: Option<String>,
    pub(crate) output: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) owner: Option<String>,
    pub(crate) fence: i64,
    pub(crate) lease_until: Option<i64>,
    pub(crate) wake_at: Option<i64>,
    pub(crate) waiting_for: Option<String>,
    pub(crate) cancel: Option<String>,
    pub(crate) deadline: Option<i64>,
}

impl RawRun {
    /// The record, with its JSON columns parsed; a column that does not parse is
    /// [`StoreError::Corrupt`].
    pub(crate) fn into_record(self) -> Result<RunRecord, StoreError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt {
            run_id: self.run_id.clone(),
            message: format!("{what}: {e}"),
        };
        let json =
            |what: &str, s: &Option<String>| -> Result<Option<serde_json::Value>, StoreError> {
                s.as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| corrupt(what, &e))
            };
        Ok(RunRecord {
            run_id: parse_run_id(&self.run_id)?,
            workflow: self.workflow.clone(),
            version: u32::try_from(self.version).map_err(|e| corrupt("version", &e))?,
            input: serde_json::from_str(&self.input).map_err(|e| corrupt("input", &e))?,
            status: StoredStatus::parse(&self.status)
                .ok_or_else(|| corrupt("status", &format!("unknown status `{}`", self.status)))?,
            idempotency_key: self.idempotency_key.clone(),
            request_id: self.request_id.clone(),
            actor: self
                .actor
                .as_deref()
                .map(serde_json::from_str::<Actor>)
                .transpose()
                .map_err(|e| corrupt("actor", &e))?,
            origin: match self.origin.as_str() {
                "api" => Origin::Api,
                "local" => Origin::Local,
                other => return Err(corrupt("origin", &format!("unknown origin `{other}`"))),
            },
            additional_data: json("additional_data", &self.additional_data)?,
            output: json("output", &self.output)?,
            error: self.error.clone(),
            created_at_micros: u64::try_from(self.created_at).unwrap_or(0),
            updated_at_micros: u64::try_from(self.updated_at).unwrap_or(0),
            owner: self.owner.clone(),
            fence: u64::try_from(self.fence).map_err(|e| corrupt("fence", &e))?,
            lease_until_micros: self.lease_until.and_then(|u| u64::try_from(u).ok()),
            wake_at_micros: self.wake_at.map(|at| u64::try_from(at).unwrap_or(0)),
            waiting_for: self.waiting_for.clone(),
            cancel: self
                .cancel
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt("cancel", &e))?,
            deadline_micros: self.deadline.map(|at| u64::try_from(at).unwrap_or(0)),
        })
    }
}

/// A stored run id, as hookflow writes them (lowercase, hyphenated): another spelling of the
/// same UUID would not match the run's journal rows, nor the run id a load looks it up by.
pub(crate) fn parse_run_id(s: &str) -> Result<RunId, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        run_id: s.to_owned(),
        message,
    };
    let run_id = RunId::parse(s).map_err(|e| corrupt(format!("bad run id: {e}")))?;
    if run_id.to_string() != s {
        return Err(corrupt(format!(
            "bad run id: not written as hookflow writes it (`{run_id}`)"
        )));
    }
    Ok(run_id)
}

/// The origin as stored.
pub(crate) fn origin_str(origin: Origin) -> &'static str {
    match origin {
        Origin::Api => "api",
        _ => "local",
    }
}

/// Microseconds as a SQL integer.
pub(crate) fn micros(m: u64) -> i64 {
    i64::try_from(m).unwrap_or(i64::MAX)
}

/// The run `run_id` (as stored) whose record cannot be read for `err`, if `err` says so
/// ([`StoreError::Corrupt`]); any other error is the store failing, and is given back.
pub(crate) fn unreadable_record(run_id: &str, err: StoreError) -> Result<Unreadable, StoreError> {
    match err {
        StoreError::Corrupt { message, .. } => Ok(Unreadable {
            run_id: run_id.to_owned(),
            reason: record_reason(&message),
        }),
        other => Err(other),
    }
}

/// Why a run whose record does not parse (`message` says which column, and how) cannot be
/// read.
pub(crate) fn record_reason(message: &str) -> String {
    format!("the record cannot be read: {message}")
}

/// The run `run_id` (as stored) whose journal cannot be read for `err`, if `err` says so
/// ([`StoreError::Corrupt`], from [`event`]); any other error is given back.
pub(crate) fn unreadable_journal(run_id: &str, err: StoreError) -> Result<Unreadable, StoreError> {
    match err {
        StoreError::Corrupt { message, .. } => Ok(Unreadable {
            run_id: run_id.to_owned(),
            reason: message,
        }),
        other => Err(other),
    }
}

/// The error a claim gives for a run it found unreadable and did not quarantine (finished,
/// or held by another live lease).
pub(crate) fn corrupt(unreadable: Unreadable) -> StoreError {
    StoreError::Corrupt {
        run_id: unreadable.run_id,
        message: unreadable.reason,
    }
}

/// A journal row of run `run_id`.
pub(crate) fn event(run_id: &str, seq: i64, body: &str) -> Result<Event, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        run_id: run_id.to_owned(),
        message: format!("event {seq} cannot be read: {e}"),
    })
}

/// The migrations a schema at `version` still needs, each with the version it leads to.
///
/// # Errors
/// [`StoreError::IncompatibleSchema`] when `version` is newer than `migrations` know.
pub(crate) fn pending_migrations(
    migrations: &'static [&'static str],
    version: i64,
) -> Result<impl Iterator<Item = (i64, &'static str)>, StoreError> {
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if version > supported {
        return Err(StoreError::IncompatibleSchema {
            found: version,
            supported,
        });
    }
    Ok(migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
        .map(|(i, sql)| (i64::try_from(i).unwrap_or(i64::MAX) + 1, *sql)))
}

/// Checks, for a store opened read-only (which never migrates), that its schema is this
/// build's.
///
/// # Errors
/// [`StoreError::IncompatibleSchema`] when `version` is newer than `migrations` know,
/// [`StoreError::SchemaOutdated`] when it is older.
pub(crate) fn current_schema(
    migrations: &'static [&'static str],
    version: i64,
) -> Result<(), StoreError> {
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    match version.cmp(&supported) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(StoreError::IncompatibleSchema {
            found: version,
            supported,
        }),
        std::cmp::Ordering::Less => Err(StoreError::SchemaOutdated {
            found: version,
            supported,
        }),
    }
}
