//! How rusqlite's errors become the store's: the database is unavailable, or refused the data.

use crate::store::StoreError;

/// As [`unavailable`], for a statement that writes a run's data: an error that writing the
/// same data again cannot mend (a value over the length limit, `SQLITE_TOOBIG`; a constraint
/// or type error) is [`StoreError::Refused`].
pub(super) fn refusable(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |err| match err.sqlite_error_code() {
        Some(
            rusqlite::ErrorCode::TooBig
            | rusqlite::ErrorCode::ConstraintViolation
            | rusqlite::ErrorCode::TypeMismatch,
        ) => StoreError::Refused {
            context: context.to_owned(),
            message: err.to_string(),
        },
        _ => unavailable(context)(err),
    }
}

pub(super) fn unavailable(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |err| match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotAStore {
            reason: format!("it is not a SQLite database ({err})"),
        },
        Some(rusqlite::ErrorCode::DatabaseBusy) => StoreError::Unavailable {
            context: context.to_owned(),
            message: format!(
                "{err}: another connection holds the write lock (a write waits for it up to the busy timeout)"
            ),
        },
        _ => StoreError::Unavailable {
            context: context.to_owned(),
            message: err.to_string(),
        },
    }
}
