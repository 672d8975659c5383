//! The command line: `hookflow --db <PATH|URL> <runs|show|diagram|resume> ...`.

use clap::{Parser, Subcommand};
use hookflow_runtime::{RunId, StoredStatus};

/// Look at the runs in a hookflow store, draw them, and resume them.
///
/// `runs`, `show` and `diagram` open the store read-only; only `resume` writes.
#[derive(Parser)]
#[command(name = "hookflow", version)]
pub struct Args {
    /// The store: a SQLite file an engine writes to, or a `postgres://` URL.
    #[arg(long, env = "HOOKFLOW_DATABASE", value_name = "PATH|URL")]
    pub db: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `--db` without its password.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("db", &hookflow_runtime::store::redact(&self.db))
            .field("command", &self.command)
            .finish()
    }
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runs, newest first, as a table.
    Runs {
        /// Only runs with this status: running, completed, compensated,
        /// compensation_failed or parked.
        #[arg(long, value_parser = parse_status)]
        status: Option<StoredStatus>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One run: its record, its timeline, its steps with durations and outcomes, its
    /// compensations and hook errors.
    Show {
        /// The run's id.
        #[arg(value_parser = parse_run_id)]
        run: RunId,
    },
    /// One run as a Mermaid sequence diagram, with step durations (or a Gantt chart).
    Diagram {
        /// The run's id.
        #[arg(value_parser = parse_run_id)]
        run: RunId,
        /// A Gantt chart: each step and compensation as a bar on a time axis.
        #[arg(long)]
        gantt: bool,
    },
    /// Resume an interrupted or parked run, to its end (needs its workflow: see
    /// `hookflow_cli::Cli::workflows`).
    Resume {
        /// The run's id.
        #[arg(value_parser = parse_run_id)]
        run: RunId,
    },
}

fn parse_status(s: &str) -> Result<StoredStatus, String> {
    StoredStatus::parse(s).ok_or_else(|| {
        format!(
            "unknown status `{s}`: one of running, completed, compensated, compensation_failed, parked"
        )
    })
}

fn parse_run_id(s: &str) -> Result<RunId, String> {
    RunId::parse(s).map_err(|e| {
        format!(
            "`{s}` is not a run id ({e}): run ids look like 01900000-0000-7000-8000-000000000000"
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    #[test]
    fn debug_hides_the_password() {
        for db in [
            "postgres://alice:TopSecret123@db/shop",
            "host=db user=alice password=TopSecret123",
        ] {
            let args = Args::parse_from(["hookflow", "--db", db, "runs"]);
            let shown = format!("{args:?}");
            assert!(!shown.contains("TopSecret123"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
            assert!(shown.contains("Runs"), "{shown}");
        }
    }
}
