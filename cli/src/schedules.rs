//! Schedules as text: the `schedules` table.

use std::fmt::Write as _;

use hookflow_runtime::Spec;
use hookflow_runtime::store::{ScheduleRecord, UnreadableSchedule};

use crate::render::{printable, utc};

/// The `schedules` table, by name: its workflow, spec, policies, last tick and next tick
/// (after `now_micros`, microseconds since the Unix epoch); then a line per schedule whose
/// row cannot be read: its name and `unreadable: ` with the reason.
pub fn schedules_table(
    schedules: &[ScheduleRecord],
    unreadable: &[UnreadableSchedule],
    now_micros: u64,
) -> String {
    if schedules.is_empty() && unreadable.is_empty() {
        return "(no schedules)\n".to_owned();
    }
    let mut rows = vec![[
        "SCHEDULE".to_owned(),
        "WORKFLOW".to_owned(),
        "SPEC".to_owned(),
        "OVERLAP".to_owned(),
        "CATCH-UP".to_owned(),
        "LAST TICK (UTC)".to_owned(),
        "NEXT TICK (UTC)".to_owned(),
    ]];
    for schedule in schedules {
        let after = schedule
            .last_tick_micros
            .unwrap_or(0)
            .max(schedule.anchor_micros)
            .max(now_micros);
        let next = match schedule.spec.parse::<Spec>() {
            Ok(spec) => spec
                .next_after(schedule.anchor_micros, after)
                .map_or_else(|| "never".to_owned(), utc),
            Err(err) => format!("never: {err}"),
        };
        rows.push([
            schedule.name.clone(),
            format!("{} v{}", schedule.workflow, schedule.version),
            schedule.spec.clone(),
            schedule.overlap.as_str().to_owned(),
            schedule.catch_up.as_str().to_owned(),
            schedule
                .last_tick_micros
                .map_or_else(|| "-".to_owned(), utc),
            next,
        ]);
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| row.iter().map(|cell| printable(cell)).collect())
        .collect();
    let mut widths = [0; 7];
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
    for schedule in unreadable {
        let _ = writeln!(
            out,
            "{}  unreadable: {}",
            printable(&schedule.name),
            printable(&schedule.reason)
        );
    }
    out
}
