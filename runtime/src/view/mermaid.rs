//! A run's journal as Mermaid diagrams: a Gantt chart of its steps and compensations, and a
//! sequence diagram of its calls. Views of the journal, kept out of it.

use crate::journal::{EventKind, Journal};

impl Journal {
    /// The workflow the run's `RunStarted` names, for diagram titles.
    fn workflow_name(&self) -> String {
        self.events()
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::RunStarted { workflow, .. } => Some(workflow.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "workflow".to_owned())
    }

    /// The run as a Mermaid Gantt chart: each step and each compensation as a bar from its
    /// start to its end (failed ones marked critical), on a millisecond time axis.
    ///
    /// ```
    /// # use hookflow_runtime::Journal;
    /// let chart = Journal::default().to_mermaid_gantt();
    /// assert!(chart.starts_with("gantt\n"));
    /// ```
    pub fn to_mermaid_gantt(&self) -> String {
        use std::collections::HashMap;
        use std::fmt::Write as _;

        let mut out = String::from("gantt\n");
        let _ = writeln!(out, "    title {}", gantt_text(&self.workflow_name()));
        out.push_str("    dateFormat x\n    axisFormat %S.%L s\n");
        let mut started: HashMap<u32, (u64, String)> = HashMap::new();
        let mut undo_started: HashMap<u32, (u64, String)> = HashMap::new();
        let (mut steps, mut undos) = (Vec::new(), Vec::new());
        // Whole milliseconds for Mermaid's `x` format, a bar at least 1 ms long.
        let bar = |name: &str, tag: &str, id: String, from: u64, to: u64| {
            let (from, to) = (from / 1000, (to / 1000).max(from / 1000 + 1));
            format!("    {name} :{tag}{id}, {from}, {to}")
        };
        for event in self.events() {
            let at = event.at_micros;
            match &event.kind {
                EventKind::StepStarted { step, position, .. } => {
                    started.insert(*position, (at, gantt_text(step)));
                }
                EventKind::StepCompleted { position, .. }
                | EventKind::StepFailed { position, .. } => {
                    if let Some((from, name)) = started.remove(position) {
                        let tag = if matches!(event.kind, EventKind::StepFailed { .. }) {
                            "crit, "
                        } else {
                            "done, "
                        };
                        let name = format!("{name} ({position})");
                        steps.push(bar(&name, tag, format!("s{position}"), from, at));
                    }
                }
                EventKind::CompensationStarted { step, position, .. } => {
                    undo_started.insert(*position, (at, gantt_text(step)));
                }
                EventKind::CompensationCompleted { position, .. }
                | EventKind::CompensationFailed { position, .. } => {
                    if let Some((from, name)) = undo_started.remove(position) {
                        let tag = if matches!(event.kind, EventKind::CompensationFailed { .. }) {
                            "crit, "
                        } else {
                            ""
                        };
                        let name = format!("undo {name} ({position})");
                        undos.push(bar(&name, tag, format!("u{position}"), from, at));
                    }
                }
                _ => {}
            }
        }
        for (section, bars) in [("steps", steps), ("compensations", undos)] {
            if !bars.is_empty() {
                let _ = writeln!(out, "    section {section}");
                for line in bars {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The run as a Mermaid sequence diagram: the workflow calls its steps and hooks, each
    /// answer labelled with its outcome and duration, then the compensations in the order they
    /// ran. Paste it into any Mermaid renderer (GitHub renders ```mermaid blocks).
    ///
    /// ```
    /// # use hookflow_runtime::Journal;
    /// let diagram = Journal::default().to_mermaid_sequence();
    /// assert!(diagram.starts_with("sequenceDiagram"));
    /// ```
    pub fn to_mermaid_sequence(&self) -> String {
        use std::collections::HashMap;
        use std::fmt::Write as _;

        let mut out = String::from("sequenceDiagram\n");
        let _ = writeln!(
            out,
            "    participant W as {}",
            mermaid_text(&self.workflow_name())
        );
        out.push_str("    participant S as steps\n    participant H as hooks\n");
        let mut started: HashMap<u32, u64> = HashMap::new();
        let mut undo_started: HashMap<u32, u64> = HashMap::new();
        let ms = |micros: u64| format!("{}.{:03} ms", micros / 1000, micros % 1000);
        for event in self.events() {
            let at = event.at_micros;
            let line = match &event.kind {
                EventKind::StepStarted { step, position, .. } => {
                    started.insert(*position, at);
                    format!("W->>S: {} #{position}", mermaid_text(step))
                }
                EventKind::StepCompleted { position, .. } => {
                    let took = at.saturating_sub(started.get(position).copied().unwrap_or(at));
                    format!("S-->>W: #{position} completed ({})", ms(took))
                }
                EventKind::StepFailed {
                    position, failure, ..
                } => {
                    let took = at.saturating_sub(started.get(position).copied().unwrap_or(at));
                    let tag = if failure.best_effort {
                        " (best effort)"
                    } else {
                        ""
                    };
                    format!(
                        "S--xW: #{position} FAILED{tag}: {} ({})",
                        mermaid_text(&failure.error),
                        ms(took)
                    )
                }
                EventKind::StepRetrying {
                    position, attempt, ..
                } => format!("S-->>S: #{position} attempt {attempt} failed, retrying"),
                EventKind::HookFired { hook, handlers, .. } => {
                    format!("W->>H: {} ({handlers} handlers)", mermaid_text(hook))
                }
                EventKind::HookHandlerCompleted { handler, slot, .. } => {
                    format!("H-->>W: {} [{slot}] ok", mermaid_text(handler))
                }
                EventKind::HookHandlerFailed {
                    handler,
                    slot,
                    failure,
                    ..
                } => format!(
                    "H--xW: {} [{slot}] FAILED: {}",
                    mermaid_text(handler),
                    mermaid_text(&failure.error)
                ),
                EventKind::RunFailed { error } => {
                    format!("Note over W: failed: {}, compensating", mermaid_text(error))
                }
                EventKind::CompensationStarted { step, position, .. } => {
                    undo_started.insert(*position, at);
                    format!("W->>S: undo {} #{position}", mermaid_text(step))
                }
                EventKind::CompensationCompleted { position, .. } => {
                    let took = at.saturating_sub(undo_started.get(position).copied().unwrap_or(at));
                    format!("S-->>W: #{position} undone ({})", ms(took))
                }
                EventKind::CompensationFailed {
                    position, error, ..
                } => format!("S--xW: undo #{position} FAILED: {}", mermaid_text(error)),
                EventKind::NestedStarted { workflow, .. } => {
                    format!("Note over W: nested {} starts", mermaid_text(workflow))
                }
                EventKind::NestedEnded {
                    workflow,
                    completed,
                    ..
                } => {
                    let how = if *completed { "completed" } else { "failed" };
                    format!("Note over W: nested {} {how}", mermaid_text(workflow))
                }
                EventKind::RunEnded { status } => {
                    let total = self
                        .events()
                        .first()
                        .map_or(0, |first| at.saturating_sub(first.at_micros));
                    format!("Note over W: {status} after {}", ms(total))
                }
                EventKind::RunParked { reason } => {
                    format!("Note over W: PARKED: {}", mermaid_text(reason))
                }
                _ => continue,
            };
            let _ = writeln!(out, "    {line}");
        }
        out
    }
}

/// Text that cannot break a Mermaid line: no newlines, no `;` or `#` (entity syntax).
/// A Gantt task or title: no `:` (it ends a task's name), and [`mermaid_text`]'s rules.
fn gantt_text(text: &str) -> String {
    mermaid_text(text).replace(':', " ")
}

fn mermaid_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | ';' | '#' => ' ',
            c => c,
        })
        .collect()
}
