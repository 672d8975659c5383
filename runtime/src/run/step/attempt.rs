//! What one attempt of a step ends with, and how a step's recorded error is read back.

use std::fmt::Display;

use crate::types::{Fault, Panic};

/// How one attempt of a step ended.
#[doc(hidden)]
pub enum Attempt<T, E> {
    /// The body returned `Ok`.
    Ok(T),
    /// The body returned `Err`, or ran past its timeout.
    Err(E),
    /// The body panicked.
    Panicked(Panic),
    /// A fault plan made it fail (feature `testing`; without it, no value has this form).
    Injected(Fault),
    /// The step completed before the run was resumed: its recorded output stands.
    Replayed,
    /// The step failed before the run was resumed: its recorded error stands, given back to
    /// the body rebuilt with the function (`None`: the error type is not serde) that the code
    /// `#[step]` generates adds.
    Failed(Box<RecordedError>, Option<RebuildFn<E>>),
    /// The run stopped before the step could run: it never will.
    Halted,
}

/// How the recorded value of a step's error is read back.
#[doc(hidden)]
pub type RebuildFn<E> = fn(serde_json::Value) -> Result<E, serde_json::Error>;

/// The error of a step that failed before its run was resumed, as the journal recorded it.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct RecordedError {
    /// Its message.
    pub(super) error: String,
    /// Its value, if the step's error type was serde when it was recorded.
    pub(super) data: Option<serde_json::Value>,
    /// Why it could not be rebuilt, once that was tried.
    pub(super) problem: Option<String>,
}

impl RecordedError {
    /// The recorded error as a value of the step's error type, with `from_json` (`None`: the
    /// type is not serde); or, when it cannot be rebuilt, itself, saying why.
    ///
    /// # Errors
    /// The recorded error, with the reason, when it cannot be rebuilt.
    pub(super) fn rebuild<E>(
        mut self: Box<Self>,
        from_json: Option<RebuildFn<E>>,
    ) -> Result<E, Box<Self>> {
        let problem = match (from_json, self.data.take()) {
            (None, _) => format!(
                "its error type is not Serialize + Deserialize, and the journal holds only its message {:?}",
                self.error
            ),
            (Some(_), None) => format!(
                "the journal holds only its message {:?} (recorded when the error type was not Serialize + Deserialize)",
                self.error
            ),
            (Some(from_json), Some(value)) => match from_json(value) {
                Ok(error) => return Ok(error),
                Err(err) => format!(
                    "the recorded value of {:?} does not match the step's error type: {err}",
                    self.error
                ),
            },
        };
        self.problem = Some(problem);
        Err(self)
    }
}

/// What the journal records of a step's error: its message, and its value as JSON when its
/// type is serde. Used by the code `#[step]` generates.
#[doc(hidden)]
pub trait JournalError: Display {
    /// The error's value as JSON; `None` if its type is not `Serialize + Deserialize` (or it
    /// fails to serialize).
    fn to_json(&self) -> Option<serde_json::Value>;
}
