//! Looking runs up page by page: which runs ([`RunFilter`]), and a page of them with where
//! the next one starts ([`RunPage`], [`RunCursor`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{RunRecord, StoredStatus, Unreadable};

/// Which runs [`Store::list_page`](super::Store::list_page) returns, newest first: those with
/// a status, of a workflow, created in a time range, after a cursor, at most `limit`.
///
/// ```
/// use hookflow_runtime::StoredStatus;
/// use hookflow_runtime::store::RunFilter;
/// let filter = RunFilter::new()
///     .status(StoredStatus::CompensationFailed)
///     .workflow("checkout")
///     .created_from(1_700_000_000_000_000)
///     .limit(20);
/// assert_eq!(filter.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only runs with this status.
    pub status: Option<StoredStatus>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs created at or after this time (microseconds since the Unix epoch).
    pub created_from_micros: Option<u64>,
    /// Only runs created before this time (microseconds since the Unix epoch).
    pub created_before_micros: Option<u64>,
    /// Only runs after this cursor (the [`RunPage::next`] of the previous page).
    pub after: Option<RunCursor>,
    /// At most this many runs (readable or not) in the page; 0 is taken as 1. Default
    /// [`RunFilter::DEFAULT_LIMIT`].
    pub limit: usize,
}

impl RunFilter {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: usize = 50;

    /// Every run, [`RunFilter::DEFAULT_LIMIT`] to a page.
    pub fn new() -> Self {
        RunFilter {
            limit: Self::DEFAULT_LIMIT,
            ..RunFilter::default()
        }
    }

    /// Only runs with `status`.
    #[must_use]
    pub fn status(mut self, status: StoredStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs of `workflow`.
    #[must_use]
    pub fn workflow(mut self, workflow: impl Into<String>) -> Self {
        self.workflow = Some(workflow.into());
        self
    }

    /// Only runs created at or after `micros` (since the Unix epoch).
    #[must_use]
    pub fn created_from(mut self, micros: u64) -> Self {
        self.created_from_micros = Some(micros);
        self
    }

    /// Only runs created before `micros` (since the Unix epoch).
    #[must_use]
    pub fn created_before(mut self, micros: u64) -> Self {
        self.created_before_micros = Some(micros);
        self
    }

    /// The page after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: RunCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// At most `limit` runs to the page.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The page size, at least 1.
    pub fn page_size(&self) -> usize {
        self.limit.max(1)
    }

    /// Whether `record` passes the filter (the cursor included).
    pub fn matches(&self, record: &RunRecord) -> bool {
        self.status.is_none_or(|s| record.status == s)
            && self.workflow.as_ref().is_none_or(|w| record.workflow == *w)
            && self
                .created_from_micros
                .is_none_or(|from| record.created_at_micros >= from)
            && self
                .created_before_micros
                .is_none_or(|before| record.created_at_micros < before)
            && self
                .after
                .as_ref()
                .is_none_or(|cursor| RunCursor::of(record) < *cursor)
    }
}

/// Where a page of runs ended: the creation time and run id (as stored) of its last run. The
/// next page holds the runs that come after it, newest first: created earlier, or at the same
/// time with a smaller run id. Runs created meanwhile never shift the pages.
///
/// Shown as `{created_at_micros}:{run_id}` and read back by [`RunCursor::parse`], for a
/// command line or a URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunCursor {
    /// The last run's creation time, in microseconds since the Unix epoch.
    pub created_at_micros: u64,
    /// The last run's id, as stored.
    pub run_id: String,
}

impl RunCursor {
    /// The cursor just past `record`.
    pub fn of(record: &RunRecord) -> Self {
        RunCursor {
            created_at_micros: record.created_at_micros,
            run_id: record.run_id.to_string(),
        }
    }

    /// Reads a cursor as it is shown (`{created_at_micros}:{run_id}`); `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (at, run_id) = text.split_once(':')?;
        Some(RunCursor {
            created_at_micros: at.parse().ok()?,
            run_id: run_id.to_owned(),
        })
    }
}

impl fmt::Display for RunCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.created_at_micros, self.run_id)
    }
}

/// A page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunPage {
    /// The runs read.
    pub runs: Vec<RunRecord>,
    /// The runs of the page whose row cannot be read: reported, left as they are.
    pub unreadable: Vec<Unreadable>,
    /// Where the next page starts (pass it to [`RunFilter::after`]); `None` when this page is
    /// the last.
    pub next: Option<RunCursor>,
}

impl RunPage {
    /// A page of the runs of `all` (any order) that pass `filter`: what a store that cannot
    /// filter in its database returns.
    pub fn select(all: impl IntoIterator<Item = RunRecord>, filter: &RunFilter) -> RunPage {
        let mut runs: Vec<RunRecord> = all.into_iter().filter(|r| filter.matches(r)).collect();
        runs.sort_by_cached_key(|r| std::cmp::Reverse(RunCursor::of(r)));
        let size = filter.page_size();
        let next = (runs.len() > size).then(|| RunCursor::of(&runs[size - 1]));
        runs.truncate(size);
        RunPage {
            runs,
            unreadable: Vec::new(),
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunCursor;

    #[test]
    fn a_cursor_reads_back_as_it_is_shown() {
        let cursor = RunCursor {
            created_at_micros: 1_700_000_000_000_123,
            run_id: "01900000-0000-7000-8000-000000000000".into(),
        };
        assert_eq!(RunCursor::parse(&cursor.to_string()), Some(cursor));
        for bad in ["", "12", "x:y", ":abc", "-1:abc"] {
            assert_eq!(RunCursor::parse(bad), None, "{bad}");
        }
    }
}
