//! The store's connections and its errors: taking a connection from the pool, and what a
//! tokio-postgres error becomes (never with the URL's password).

use deadpool_postgres::Pool;

use super::PostgresStore;
use crate::store::StoreError;

pub(super) async fn get(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    use deadpool_postgres::{HookError, PoolError, TimeoutType};
    let context = || "connect to the database".to_owned();
    let no_answer = || StoreError::NoAnswer {
        context: context(),
        timeout: pool.timeouts().create.unwrap_or(PostgresStore::TIMEOUT),
    };
    pool.get().await.map_err(|e| match &e {
        PoolError::Timeout(TimeoutType::Create | TimeoutType::Recycle) => no_answer(),
        PoolError::Backend(err) | PoolError::PostCreateHook(HookError::Backend(err))
            if timed_out(err) =>
        {
            no_answer()
        }
        PoolError::Backend(err) | PoolError::PostCreateHook(HookError::Backend(err)) => {
            StoreError::Unavailable {
                context: context(),
                message: db_message(err),
            }
        }
        other => StoreError::Unavailable {
            context: context(),
            message: other.to_string(),
        },
    })
}

/// Whether `err` is tokio-postgres's own `connect_timeout` elapsing on a socket connect.
fn timed_out(err: &tokio_postgres::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

/// A tokio-postgres error's message, with the server's or the socket's error it wraps (or
/// the words of a server certificate the store's TLS check refused).
pub(super) fn db_message(err: &tokio_postgres::Error) -> String {
    if let Some(refused) = std::error::Error::source(err).and_then(super::tls::refusal) {
        return format!("{err}: {refused}");
    }
    match (err.as_db_error(), std::error::Error::source(err)) {
        (Some(db), _) => format!("{err}: {}", db.message()),
        (None, Some(source)) => format!("{err}: {source}"),
        (None, None) => err.to_string(),
    }
}

/// As [`pg`], for a statement that writes a run's data: a data exception of the server
/// (SQLSTATE class 22: a value too long for its column, a NUL byte in text, ...) or
/// `program_limit_exceeded` (54000: a value over 1 GB, an index row too large) is
/// [`StoreError::Refused`], as writing the same data again cannot succeed.
pub(super) fn pg_write(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |err| {
        let refused = err.code().is_some_and(|state| {
            state.code().starts_with("22")
                || *state == tokio_postgres::error::SqlState::PROGRAM_LIMIT_EXCEEDED
        });
        if refused {
            StoreError::Refused {
                context: context.to_owned(),
                message: db_message(&err),
            }
        } else {
            pg(context)(err)
        }
    }
}

pub(super) fn pg(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |err| StoreError::Unavailable {
        context: context.to_owned(),
        message: db_message(&err),
    }
}

pub(super) fn stopped() -> StoreError {
    StoreError::Unavailable {
        context: "reach the store's thread".into(),
        message: "the PostgreSQL store stopped".into(),
    }
}
