//! When a schedule's ticks fall ([`Spec`]: a cron expression or a fixed interval), and its
//! policies ([`Overlap`], [`CatchUp`]). Pure arithmetic on microseconds since the Unix epoch:
//! the engine's scheduler reads the clock, this never does.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// When a schedule ticks: at the times a cron expression matches (in UTC, to the second), or
/// every fixed interval from the moment the schedule was first registered (its anchor).
///
/// ```
/// # use hookflow_runtime::Spec;
/// # use std::time::Duration;
/// let nightly = Spec::cron("0 3 * * *")?; // 03:00 UTC every day
/// let often = Spec::cron("*/10 * * * * *")?; // every 10 seconds (six fields: seconds first)
/// let every = Spec::every(Duration::from_secs(30))?;
/// assert_eq!(every.to_string(), "every 30s");
/// // The stored form parses back.
/// assert_eq!("every 30s".parse::<Spec>()?, every);
/// assert!(Spec::cron("61 * * * *").is_err());
/// # Ok::<(), hookflow_runtime::SpecError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Spec {
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// The expression as given (trimmed), and as parsed.
    Cron(String, Box<Cron>),
    /// The interval, in microseconds (at least [`Spec::MIN_INTERVAL`]).
    Every(u64),
}

/// A schedule's spec that cannot be used: a cron expression that does not parse, or an
/// interval too short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The cron expression does not parse.
    #[error("bad cron expression `{expression}`: {reason}")]
    Cron {
        /// The expression, as given.
        expression: String,
        /// Why, as the cron parser says it.
        reason: String,
    },
    /// The interval is shorter than [`Spec::MIN_INTERVAL`].
    #[error("a schedule's interval must be at least 1 ms, not {0:?}")]
    Interval(Duration),
    /// A stored spec (`every …`) whose interval does not parse.
    #[error(
        "bad interval `{0}`: an interval is `every ` and a number of ms, s, m or h, as in `every 30s`"
    )]
    IntervalText(String),
}

impl Spec {
    /// The shortest interval [`Spec::every`] accepts.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

    /// Ticks at the times `expression` matches, in UTC: five fields (minute, hour, day of
    /// month, month, day of week), or six with seconds first; `@hourly`, `@daily` and the
    /// other nicknames, ranges, steps, names (`MON`, `JAN`), `L`, `#` and `W` as in
    /// POSIX/Vixie cron (parsed by the `croner` crate).
    ///
    /// # Errors
    /// [`SpecError::Cron`], naming the expression and what is wrong with it.
    pub fn cron(expression: &str) -> Result<Spec, SpecError> {
        let expression = expression.trim();
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| SpecError::Cron {
                expression: expression.to_owned(),
                reason: e.to_string(),
            })?;
        // An expression that parses but never matches (`0 0 30 2 *`: 30 February) is bad too:
        // it would never tick.
        if let Err(e) = cron.find_next_occurrence(&utc(0), false) {
            return Err(SpecError::Cron {
                expression: expression.to_owned(),
                reason: format!("it never matches ({e})"),
            });
        }
        Ok(Spec {
            kind: Kind::Cron(expression.to_owned(), Box::new(cron)),
        })
    }

    /// Ticks every `interval`, counted from the schedule's anchor (when it was first
    /// registered): at anchor + interval, anchor + 2 × interval, and so on.
    ///
    /// # Errors
    /// [`SpecError::Interval`] for an interval shorter than [`Spec::MIN_INTERVAL`].
    pub fn every(interval: Duration) -> Result<Spec, SpecError> {
        if interval < Self::MIN_INTERVAL {
            return Err(SpecError::Interval(interval));
        }
        let micros = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
        Ok(Spec {
            kind: Kind::Every(micros),
        })
    }

    /// The latest tick `t` with `after < t <= now`, if any: the tick due at `now` for a
    /// schedule whose last tick (or anchor, before its first) was `after`. Times in
    /// microseconds since the Unix epoch; `anchor` is where intervals count from.
    pub fn latest_due(&self, anchor: u64, after: u64, now: u64) -> Option<u64> {
        let latest = match &self.kind {
            Kind::Every(every) => {
                let k = now.checked_sub(anchor)? / every;
                if k == 0 {
                    return None;
                }
                anchor + k * every
            }
            Kind::Cron(_, cron) => {
                let at = cron.find_previous_occurrence(&utc(now), true).ok()?;
                micros(&at)?
            }
        };
        (latest > after).then_some(latest)
    }

    /// The first tick strictly after `t`, counting intervals from `anchor`; `None` when there
    /// is none (past the year 5000).
    pub fn next_after(&self, anchor: u64, t: u64) -> Option<u64> {
        match &self.kind {
            Kind::Every(every) => {
                let Some(since) = t.checked_sub(anchor) else {
                    return anchor.checked_add(*every);
                };
                let k = since / every + 1;
                anchor.checked_add(k.checked_mul(*every)?)
            }
            Kind::Cron(_, cron) => {
                let at = cron.find_next_occurrence(&utc(t), false).ok()?;
                micros(&at)
            }
        }
    }

    /// The interval, for a spec made with [`Spec::every`].
    pub fn interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every(micros) => Some(Duration::from_micros(micros)),
            Kind::Cron(..) => None,
        }
    }
}

/// The whole second `t` (microseconds) falls in, in UTC: cron matches to the second.
fn utc(t: u64) -> DateTime<Utc> {
    let seconds = i64::try_from(t / 1_000_000).unwrap_or(i64::MAX);
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn micros(at: &DateTime<Utc>) -> Option<u64> {
    u64::try_from(at.timestamp_micros()).ok()
}

/// The stored form: the cron expression, or `every ` and the interval (`every 30s`,
/// `every 1500ms`).
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cron(expression, _) => f.write_str(expression),
            Kind::Every(micros) => {
                let ms = micros / 1_000;
                if micros % 1_000 != 0 {
                    write!(f, "every {micros}us")
                } else if ms % 3_600_000 == 0 {
                    write!(f, "every {}h", ms / 3_600_000)
                } else if ms % 60_000 == 0 {
                    write!(f, "every {}m", ms / 60_000)
                } else if ms % 1_000 == 0 {
                    write!(f, "every {}s", ms / 1_000)
                } else {
                    write!(f, "every {ms}ms")
                }
            }
        }
    }
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spec({self})")
    }
}

/// Parses the stored form ([`Spec`]'s `Display`): `every ` and an interval with its unit
/// (`us`, `ms`, `s`, `m`, `h`), or a cron expression.
impl FromStr for Spec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(interval) = s.trim().strip_prefix("every ") else {
            return Spec::cron(s);
        };
        let bad = || SpecError::IntervalText(s.to_owned());
        let interval = interval.trim();
        let split = interval
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(bad)?;
        let (count, unit) = interval.split_at(split);
        let count: u64 = count.parse().map_err(|_| bad())?;
        let micros = match unit {
            "us" => Some(count),
            "ms" => count.checked_mul(1_000),
            "s" => count.checked_mul(1_000_000),
            "m" => count.checked_mul(60_000_000),
            "h" => count.checked_mul(3_600_000_000),
            _ => None,
        }
        .ok_or_else(bad)?;
        Spec::every(Duration::from_micros(micros))
    }
}

/// What a schedule does with a tick that comes due while the run of its previous tick is
/// still in flight (not finished: running, interrupted, or parked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overlap {
    /// The tick is skipped: no run for it (the default).
    #[default]
    Skip,
    /// The tick starts its run anyway: runs of one schedule may overlap.
    Allow,
}

impl Overlap {
    /// The name stored in a database column.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Allow => "allow",
        }
    }

    /// The policy named `s` in a database column.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(Overlap::Skip),
            "allow" => Some(Overlap::Allow),
            _ => None,
        }
    }
}

/// What a schedule does with the ticks it missed while no scheduler ran (every worker down).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CatchUp {
    /// The most recent missed tick runs, once; the earlier ones are skipped (the default).
    #[default]
    Latest,
    /// Missed ticks are skipped: a tick runs only if it is fired on time, less than half its
    /// period (the time to the next tick) and less than [`CatchUp::LATE_AFTER`] after its
    /// time; otherwise it is skipped, and the schedule goes on with the next one.
    Skip,
}

impl CatchUp {
    /// The latest a tick may be fired and still count as on time, under [`CatchUp::Skip`]
    /// (unless half its period is shorter).
    pub const LATE_AFTER: Duration = Duration::from_secs(60);

    /// The name stored in a database column.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Latest => "latest",
            CatchUp::Skip => "skip",
        }
    }

    /// The policy named `s` in a database column.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "latest" => Some(CatchUp::Latest),
            "skip" => Some(CatchUp::Skip),
            _ => None,
        }
    }

    /// Whether the tick at `tick`, whose next tick is at `next` (`None`: none), fired at
    /// `now`, runs under this policy.
    pub fn runs(self, tick: u64, next: Option<u64>, now: u64) -> bool {
        match self {
            CatchUp::Latest => true,
            CatchUp::Skip => {
                let late_after = u64::try_from(Self::LATE_AFTER.as_micros()).unwrap_or(u64::MAX);
                let half_period = next.map_or(u64::MAX, |next| next.saturating_sub(tick) / 2);
                now.saturating_sub(tick) < late_after.min(half_period)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;
    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: u64 = 1_767_225_600 * S;

    #[test]
    fn intervals_count_from_the_anchor() {
        let spec = Spec::every(Duration::from_secs(10)).unwrap();
        let anchor = 5 * S;
        assert_eq!(spec.latest_due(anchor, anchor, 14 * S), None);
        assert_eq!(spec.latest_due(anchor, anchor, 15 * S), Some(15 * S));
        // Three ticks missed: the latest.
        assert_eq!(spec.latest_due(anchor, anchor, 47 * S), Some(45 * S));
        // Already fired.
        assert_eq!(spec.latest_due(anchor, 45 * S, 54 * S), None);
        assert_eq!(spec.next_after(anchor, 45 * S), Some(55 * S));
        assert_eq!(spec.next_after(anchor, 46 * S), Some(55 * S));
        assert_eq!(spec.next_after(anchor, 0), Some(15 * S));
        // Before the anchor, nothing is due.
        assert_eq!(spec.latest_due(anchor, 0, 4 * S), None);
    }

    #[test]
    fn cron_ticks_are_utc_seconds() {
        let hourly = Spec::cron("0 * * * *").unwrap();
        let half_past = NEW_YEAR + 1_800 * S + 123;
        assert_eq!(hourly.latest_due(0, 0, half_past), Some(NEW_YEAR));
        assert_eq!(hourly.latest_due(0, NEW_YEAR, half_past), None);
        assert_eq!(hourly.next_after(0, NEW_YEAR), Some(NEW_YEAR + 3_600 * S));
        assert_eq!(hourly.next_after(0, half_past), Some(NEW_YEAR + 3_600 * S));
        // On the tick itself: due.
        assert_eq!(hourly.latest_due(0, 0, NEW_YEAR), Some(NEW_YEAR));
        let every_second = Spec::cron("* * * * * *").unwrap();
        assert_eq!(
            every_second.latest_due(0, NEW_YEAR, NEW_YEAR + 2 * S + 999_999),
            Some(NEW_YEAR + 2 * S)
        );
        assert_eq!(every_second.next_after(0, NEW_YEAR + 1), Some(NEW_YEAR + S));
    }

    #[test]
    fn bad_specs_say_what_and_why() {
        let err = Spec::cron("61 * * * *").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("bad cron expression `61 * * * *`: "),
            "{message}"
        );
        assert!(matches!(Spec::cron(""), Err(SpecError::Cron { .. })));
        assert!(matches!(Spec::cron("* * *"), Err(SpecError::Cron { .. })));
        let never = Spec::cron("0 0 30 2 *").unwrap_err().to_string();
        assert!(never.contains("never matches"), "{never}");
        assert_eq!(
            Spec::every(Duration::ZERO).unwrap_err(),
            SpecError::Interval(Duration::ZERO)
        );
        assert!(matches!(
            "every 3 fortnights".parse::<Spec>(),
            Err(SpecError::IntervalText(_))
        ));
        assert!(matches!(
            "every 99999999999999999999h".parse::<Spec>(),
            Err(SpecError::IntervalText(_))
        ));
    }

    #[test]
    fn specs_round_trip_through_their_stored_form() {
        for text in [
            "every 1500ms",
            "every 1s",
            "every 2m",
            "every 3h",
            "every 1500us",
            "*/5 * * * *",
            "@daily",
        ] {
            let spec: Spec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(spec.to_string().parse::<Spec>().unwrap(), spec);
        }
    }

    #[test]
    fn skipping_missed_ticks_runs_only_those_on_time() {
        assert!(CatchUp::Latest.runs(0, Some(S), 3_600 * S));
        // A daily tick: on time for a minute.
        let day = 86_400 * S;
        assert!(CatchUp::Skip.runs(day, Some(2 * day), day + 59 * S));
        assert!(!CatchUp::Skip.runs(day, Some(2 * day), day + 60 * S));
        // A tick every 10 s: on time for 5 s.
        assert!(CatchUp::Skip.runs(10 * S, Some(20 * S), 14 * S));
        assert!(!CatchUp::Skip.runs(10 * S, Some(20 * S), 15 * S));
        // The last tick there is: a minute.
        assert!(CatchUp::Skip.runs(10 * S, None, 69 * S));
        assert!(!CatchUp::Skip.runs(10 * S, None, 70 * S));
    }
}
