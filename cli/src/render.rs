//! Runs as text: the `runs` table and the `show` report.

use std::collections::HashMap;
use std::fmt::Write as _;

use hookflow_runtime::{ActorKind, Event, EventKind, Journal, RunRecord, Unreadable};

/// The `runs` table: one line per run, columns aligned; then a line per run whose row cannot
/// be read: its id as stored and `unreadable: ` with the reason.
pub fn runs_table(runs: &[RunRecord], unreadable: &[Unreadable]) -> String {
    let mut rows = vec![[
        "RUN".to_owned(),
        "WORKFLOW".to_owned(),
        "STATUS".to_owned(),
        "CREATED (UTC)".to_owned(),
        "TOOK".to_owned(),
        "ERROR".to_owned(),
    ]];
    for run in runs {
        rows.push([
            run.run_id.to_string(),
            format!("{} v{}", run.workflow, run.version),
            run.status.to_string(),
            utc(run.created_at_micros),
            duration(run.updated_at_micros.saturating_sub(run.created_at_micros)),
            run.error.as_deref().map(first_line).unwrap_or_default(),
        ]);
    }
    let mut widths = [0; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for run in unreadable {
        let _ = writeln!(
            out,
            "{}  unreadable: {}",
            printable(&run.run_id),
            printable(&run.reason)
        );
    }
    if runs.is_empty() && unreadable.is_empty() {
        out.push_str("(no runs)\n");
    }
    out
}

/// `text` with control characters escaped: a run id or a reason read from a corrupt row may
/// hold anything, and must not drive the terminal.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `show` report: the record, the timeline, then steps, compensations and hook errors.
pub fn show(record: &RunRecord, events: &[Event]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, key: &str, value: &str| {
        let _ = writeln!(out, "{key:<12}{value}");
    };
    line(&mut out, "run", &record.run_id.to_string());
    line(
        &mut out,
        "workflow",
        &format!("{} v{}", record.workflow, record.version),
    );
    line(&mut out, "status", record.status.as_str());
    line(
        &mut out,
        "created",
        &format!(
            "{} UTC (last change {} later)",
            utc(record.created_at_micros),
            duration(
                record
                    .updated_at_micros
                    .saturating_sub(record.created_at_micros)
            )
        ),
    );
    if let Some(id) = &record.request_id {
        line(&mut out, "request id", id);
    }
    if let Some(actor) = &record.actor {
        let kind = match actor.kind() {
            ActorKind::User => "user",
            ActorKind::ApiKey => "API key",
            _ => "system",
        };
        let roles = if actor.roles().is_empty() {
            String::new()
        } else {
            format!(" (roles: {})", actor.roles().join(", "))
        };
        line(&mut out, "actor", &format!("{kind} {}{roles}", actor.id()));
    }
    if let Some(key) = &record.idempotency_key {
        line(&mut out, "idempotency", key);
    }
    let lease = match (&record.owner, record.lease_until_micros) {
        (Some(owner), Some(until)) => format!(
            "held by {owner} until {} UTC (generation {})",
            utc(until),
            record.fence
        ),
        _ => format!("free (generation {})", record.fence),
    };
    line(&mut out, "lease", &lease);
    if let Some(output) = &record.output {
        line(&mut out, "output", &output.to_string());
    }
    if let Some(error) = &record.error {
        line(&mut out, "error", error);
    }

    out.push_str("\ntimeline\n");
    let journal = Journal::from_events(events.to_vec());
    for trace_line in journal.to_string().lines() {
        let _ = writeln!(out, "  {trace_line}");
    }

    let mut started: HashMap<u32, u64> = HashMap::new();
    let mut undo_started: HashMap<u32, u64> = HashMap::new();
    let mut retries: HashMap<u32, u32> = HashMap::new();
    let (mut steps, mut undos, mut hook_errors) = (Vec::new(), Vec::new(), Vec::new());
    for event in events {
        match &event.kind {
            EventKind::StepStarted { position, .. } => {
                started.insert(*position, event.at_micros);
            }
            EventKind::StepRetrying { position, .. } => {
                *retries.entry(*position).or_default() += 1;
            }
            EventKind::StepCompleted { step, position, .. } => {
                let took = since(&started, *position, event.at_micros);
                let tries = retries
                    .get(position)
                    .map_or(String::new(), |r| format!(" after {} attempts", r + 1));
                steps.push(format!(
                    "#{position:<3} {step:<28} completed{tries}  {took}"
                ));
            }
            EventKind::StepFailed {
                step,
                position,
                failure,
            } => {
                let (error, attempts) = (&failure.error, failure.attempts);
                let (best_effort, panicked) = (failure.best_effort, failure.panicked);
                let took = since(&started, *position, event.at_micros);
                let what = match (best_effort, panicked) {
                    (true, _) => "FAILED (best effort, went on)",
                    (false, true) => "PANICKED",
                    (false, false) => "FAILED",
                };
                steps.push(format!(
                    "#{position:<3} {step:<28} {what} after {attempts} attempt(s)  {took}: {error}"
                ));
            }
            EventKind::CompensationStarted { position, .. } => {
                undo_started.insert(*position, event.at_micros);
            }
            EventKind::CompensationCompleted { step, position } => {
                let took = since(&undo_started, *position, event.at_micros);
                undos.push(format!("#{position:<3} {step:<28} undone  {took}"));
            }
            EventKind::CompensationFailed {
                step,
                position,
                error,
                ..
            } => {
                let took = since(&undo_started, *position, event.at_micros);
                undos.push(format!(
                    "#{position:<3} {step:<28} UNDO FAILED  {took}: {error}"
                ));
            }
            EventKind::HookHandlerFailed {
                hook,
                slot,
                handler,
                failure,
            } => {
                let error = &failure.error;
                hook_errors.push(format!("{hook} [{slot}] {handler}: {error}"));
            }
            _ => {}
        }
    }
    for (title, lines) in [
        ("steps", steps),
        ("compensations", undos),
        ("hook errors", hook_errors),
    ] {
        let _ = writeln!(out, "\n{title}");
        if lines.is_empty() {
            out.push_str("  (none)\n");
        }
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    }
    out
}

fn since(started: &HashMap<u32, u64>, position: u32, at: u64) -> String {
    started
        .get(&position)
        .map(|s| duration(at.saturating_sub(*s)))
        .unwrap_or_default()
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(59).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// Microseconds as a short duration: `850 µs`, `12.3 ms`, `4.20 s`.
pub fn duration(micros: u64) -> String {
    match micros {
        m if m < 1_000 => format!("{m} µs"),
        m if m < 1_000_000 => format!("{:.1} ms", m as f64 / 1e3),
        m => format!("{:.2} s", m as f64 / 1e6),
    }
}

/// Microseconds since the Unix epoch as `2026-11-25 03:05:01.123`, in UTC.
pub fn utc(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        micros % 1_000_000 / 1_000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations_read_as_people_write_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        // 2024-02-29 12:34:56.789 UTC, a leap day.
        assert_eq!(utc(1_709_210_096_789_000), "2024-02-29 12:34:56.789");
        assert_eq!(utc(1_796_083_200_000_000), "2026-12-01 00:00:00.000");
        assert_eq!(duration(850), "850 µs");
        assert_eq!(duration(12_345), "12.3 ms");
        assert_eq!(duration(4_200_000), "4.20 s");
    }
}
