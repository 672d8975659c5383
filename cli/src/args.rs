//! The command line: `hookflow --db <PATH|URL> <runs|show|diagram|resume|cancel|prune|retry|fork|schedules|serve> ...`.

use std::fmt;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hookflow_runtime::{RunId, StoredStatus};

/// Look at the runs in a hookflow store, draw them, resume them, prune the ended ones, retry
/// the failed compensations of a run, and fork a run from a step.
///
/// `runs`, `show`, `diagram` and `schedules` open the store read-only; only `resume`,
/// `cancel`, `prune`, `retry` and `fork` write.
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
        /// Only runs with this status: running, waiting, completed, compensated,
        /// compensation_failed, cancelled or parked.
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
    /// Ask a run to cancel: a worker running it stops it at its next step boundary, a waiting
    /// or sleeping one is woken and cancelled by the first worker that claims it; its
    /// completed steps are undone and it ends `cancelled`. Recorded with the reason and the
    /// operator (`$USER`).
    Cancel {
        /// The run's id.
        #[arg(value_parser = parse_run_id)]
        run: RunId,
        /// Why, as the run's error will say it.
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
    /// Delete the ended runs (completed, compensated, compensation failed) that last changed
    /// more than `--older-than` ago, with their journals, in batches. Running and parked
    /// runs are never deleted.
    Prune {
        /// How old an ended run must be to go: a number and a unit, `d` (days), `h`
        /// (hours), `m` (minutes) or `s` (seconds), as in `30d` or `12h`.
        #[arg(long, value_parser = parse_age)]
        older_than: Age,
    },
    /// Ask for the failed compensations of a run that ended compensation_failed to run
    /// again, once their cause is fixed. The request is recorded in the run's journal (with
    /// who asked) and the run made running again: this binary has no workflow code, so a
    /// worker or engine that registers the workflow carries it out (an admin binary with
    /// `hookflow_cli::Cli::workflows` carries it out at once).
    Retry {
        /// The run's id.
        #[arg(value_parser = parse_run_id)]
        run: RunId,
        /// Who asks, recorded in the journal.
        #[arg(
            long = "as",
            env = "USER",
            default_value = "operator",
            value_name = "NAME"
        )]
        actor: String,
    },
    /// Fork a run from one of its steps into a new run: the same workflow and input, the
    /// steps before `--from-step` replaying what the run recorded, the steps from it running
    /// again. Prints the new run's id; a worker or engine that registers the workflow runs
    /// it (an admin binary with `hookflow_cli::Cli::workflows` at once).
    Fork {
        /// The run's id.
        #[arg(value_parser = parse_run_id)]
        run: RunId,
        /// The position of the first step to run again, from 0 (`hookflow show` lists the
        /// steps with their positions).
        #[arg(long)]
        from_step: u32,
        /// Who asks, recorded in the new run's journal.
        #[arg(
            long = "as",
            env = "USER",
            default_value = "operator",
            value_name = "NAME"
        )]
        actor: String,
    },
    /// List the schedules (recurring runs), by name: workflow, spec, policies, last tick and
    /// next tick.
    Schedules,
    /// Serve the run dashboard (HTML pages: the runs, each run's timeline) until stopped.
    /// Read-only without a token; with one, whoever logs in with it can resume (from an admin
    /// binary that registers the workflows) and cancel runs.
    Serve {
        /// The address to listen on: this machine only unless told otherwise.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
        /// The token that allows resuming and cancelling runs (never shown).
        #[arg(long, env = "HOOKFLOW_DASHBOARD_TOKEN", hide_env_values = true)]
        token: Option<Secret>,
    },
}

/// A value never shown: its `Debug` is `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// An age, as `--older-than` gives it: a number of days, hours, minutes or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age {
    count: u64,
    unit: char,
}

impl Age {
    /// The age as a duration.
    pub fn duration(self) -> Duration {
        let seconds = match self.unit {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            _ => 1,
        };
        Duration::from_secs(self.count.saturating_mul(seconds))
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit)
    }
}

fn parse_age(s: &str) -> Result<Age, String> {
    let usage = "a number and a unit: d (days), h (hours), m (minutes) or s (seconds), as in 30d";
    let Some(unit) = s.chars().last() else {
        return Err(format!("an age is {usage}"));
    };
    if !matches!(unit, 'd' | 'h' | 'm' | 's') {
        return Err(format!("`{s}` is not an age: it is {usage}"));
    }
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not an age: it is {usage}"));
    }
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is too large an age"))?;
    let seconds = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        _ => 1,
    };
    if count.checked_mul(seconds).is_none() {
        return Err(format!("`{s}` is too large an age"));
    }
    Ok(Age { count, unit })
}

fn parse_status(s: &str) -> Result<StoredStatus, String> {
    StoredStatus::parse(s).ok_or_else(|| {
        format!(
            "unknown status `{s}`: one of running, waiting, completed, compensated, compensation_failed, cancelled, parked"
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
    use std::time::Duration;

    use clap::Parser;

    use super::{Age, Args, parse_age};

    #[test]
    fn ages_are_a_number_and_a_unit() {
        for (text, secs) in [
            ("30d", 30 * 86_400),
            ("12h", 12 * 3_600),
            ("90m", 90 * 60),
            ("45s", 45),
            ("0s", 0),
        ] {
            let age: Age = parse_age(text).unwrap();
            assert_eq!(age.duration(), Duration::from_secs(secs), "{text}");
            assert_eq!(age.to_string(), text);
        }
        for bad in [
            "", "30", "d", "30x", "-1d", "+1d", "1.5h", " 3d", "3 d", "3dd", "30D", "ten d",
        ] {
            let err = parse_age(bad).unwrap_err();
            assert!(err.contains("age"), "{bad:?}: {err}");
        }
        let err = parse_age("99999999999999999999d").unwrap_err();
        assert!(err.contains("too large"), "{err}");
        let err = parse_age("999999999999999999d").unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }

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
