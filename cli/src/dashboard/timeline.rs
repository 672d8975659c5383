//! A run's timeline as an SVG drawn on the server: a time axis from the run's first event to
//! its last, each step and each compensation a bar from its start to its end, each hook
//! handler a tick at its time; what failed is red, with the error in its `<title>`.

use std::collections::HashMap;

use hookflow_runtime::{Event, EventKind};

use super::html::escape;
use crate::render::duration;

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Step,
    Compensation,
    Handler,
    Wait,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Step => "step",
            Kind::Compensation => "compensation",
            Kind::Handler => "handler",
            Kind::Wait => "wait",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Kind::Step => "#2563eb",
            Kind::Compensation => "#d97706",
            Kind::Handler => "#059669",
            Kind::Wait => "#94a3b8",
        }
    }
}

/// One row of the timeline.
#[derive(Debug)]
struct Bar {
    kind: Kind,
    label: String,
    start: u64,
    /// `None` while it has not ended (drawn to the run's last event), or for a tick.
    end: Option<u64>,
    tick: bool,
    failed: bool,
    /// The tooltip: what it is, how long it took, its error.
    title: String,
}

const WIDTH: u64 = 960;
const LABEL: u64 = 260;
const ROW: u64 = 22;
const TOP: u64 = 30;

fn bars(events: &[Event]) -> Vec<Bar> {
    let mut bars: Vec<Bar> = Vec::new();
    let mut open_steps: HashMap<u32, usize> = HashMap::new();
    let mut open_undos: HashMap<u32, usize> = HashMap::new();
    let mut open_waits: HashMap<u32, usize> = HashMap::new();
    let last = events.last().map_or(0, |e| e.at_micros);
    for event in events {
        let at = event.at_micros;
        match &event.kind {
            EventKind::StepStarted { step, position, .. } => {
                open_steps.insert(*position, bars.len());
                bars.push(Bar {
                    kind: Kind::Step,
                    label: format!("#{position} {step}"),
                    start: at,
                    end: None,
                    tick: false,
                    failed: false,
                    title: format!("step #{position} {step}: running"),
                });
            }
            EventKind::StepCompleted { position, .. } => {
                if let Some(bar) = open_steps.remove(position).and_then(|i| bars.get_mut(i)) {
                    bar.end = Some(at);
                    bar.title = format!(
                        "{}: completed in {}",
                        bar.label,
                        duration(at.saturating_sub(bar.start))
                    );
                }
            }
            EventKind::StepFailed {
                position, failure, ..
            } => {
                let error = &failure.error;
                if let Some(bar) = open_steps.remove(position).and_then(|i| bars.get_mut(i)) {
                    bar.end = Some(at);
                    bar.failed = true;
                    bar.title = format!(
                        "{}: failed after {}: {error}",
                        bar.label,
                        duration(at.saturating_sub(bar.start))
                    );
                }
            }
            EventKind::CompensationStarted { step, position, .. } => {
                open_undos.insert(*position, bars.len());
                bars.push(Bar {
                    kind: Kind::Compensation,
                    label: format!("undo #{position} {step}"),
                    start: at,
                    end: None,
                    tick: false,
                    failed: false,
                    title: format!("compensation of #{position} {step}: running"),
                });
            }
            EventKind::CompensationCompleted { position, .. } => {
                if let Some(bar) = open_undos.remove(position).and_then(|i| bars.get_mut(i)) {
                    bar.end = Some(at);
                    bar.title = format!(
                        "{}: undone in {}",
                        bar.label,
                        duration(at.saturating_sub(bar.start))
                    );
                }
            }
            EventKind::CompensationFailed {
                position, error, ..
            } => {
                if let Some(bar) = open_undos.remove(position).and_then(|i| bars.get_mut(i)) {
                    bar.end = Some(at);
                    bar.failed = true;
                    bar.title = format!(
                        "{}: compensation failed after {}: {error}",
                        bar.label,
                        duration(at.saturating_sub(bar.start))
                    );
                }
            }
            EventKind::HookHandlerCompleted {
                hook,
                slot,
                handler,
                ..
            } => bars.push(Bar {
                kind: Kind::Handler,
                label: format!("{hook} [{slot}] {handler}"),
                start: at,
                end: None,
                tick: true,
                failed: false,
                title: format!("hook {hook} [{slot}] handler {handler}: completed"),
            }),
            EventKind::HookHandlerFailed {
                hook,
                slot,
                handler,
                failure,
            } => bars.push(Bar {
                kind: Kind::Handler,
                label: format!("{hook} [{slot}] {handler}"),
                start: at,
                end: None,
                tick: true,
                failed: true,
                title: format!(
                    "hook {hook} [{slot}] handler {handler} failed: {}",
                    failure.error
                ),
            }),
            EventKind::WaitStarted { position, .. } => {
                open_waits.insert(*position, bars.len());
                bars.push(Bar {
                    kind: Kind::Wait,
                    label: format!("#{position} wait"),
                    start: at,
                    end: None,
                    tick: false,
                    failed: false,
                    title: format!("wait #{position}"),
                });
            }
            EventKind::WaitEnded { position, .. } => {
                if let Some(bar) = open_waits.remove(position).and_then(|i| bars.get_mut(i)) {
                    bar.end = Some(at);
                }
            }
            _ => {}
        }
    }
    for bar in &mut bars {
        if !bar.tick && bar.end.is_none() {
            bar.end = Some(last);
            bar.title.push_str(" (not ended)");
        }
    }
    bars
}

/// The run's timeline as an `<svg class="timeline">`: every label and tooltip escaped. Each
/// item is a `<g class="bar KIND[ failed]">` (KIND: step, compensation, handler, wait) whose
/// first child is its `<title>`.
pub(crate) fn svg(events: &[Event]) -> String {
    let bars = bars(events);
    let first = events.first().map_or(0, |e| e.at_micros);
    let last = events.last().map_or(0, |e| e.at_micros);
    let span = last.saturating_sub(first).max(1);
    let plot = WIDTH - LABEL - 20;
    let x = |at: u64| LABEL + at.saturating_sub(first).saturating_mul(plot) / span;
    let height = TOP + ROW * (bars.len() as u64).max(1) + 10;
    let mut out = format!(
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline\">"
    );
    // The axis: five ticks, labelled with the time since the run's first event.
    out.push_str(&format!(
        "<g class=\"axis\"><line x1=\"{LABEL}\" y1=\"{y}\" x2=\"{end}\" y2=\"{y}\" stroke=\"#555\"/>",
        y = TOP - 8,
        end = LABEL + plot
    ));
    for i in 0..=4u64 {
        let at = first + span * i / 4;
        let tx = x(at);
        out.push_str(&format!(
            "<line x1=\"{tx}\" y1=\"{a}\" x2=\"{tx}\" y2=\"{b}\" stroke=\"#e5e7eb\"/><text x=\"{tx}\" y=\"12\" font-size=\"10\" text-anchor=\"middle\" fill=\"#555\">{label}</text>",
            a = TOP - 12,
            b = height - 5,
            label = escape(&duration(at - first)),
        ));
    }
    out.push_str("</g>");
    for (row, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * row as u64;
        let colour = if bar.failed {
            "#dc2626"
        } else {
            bar.kind.colour()
        };
        let class = if bar.failed {
            format!("bar {} failed", bar.kind.class())
        } else {
            format!("bar {}", bar.kind.class())
        };
        out.push_str(&format!(
            "<g class=\"{class}\" data-label=\"{label}\"><title>{title}</title><text x=\"4\" y=\"{ty}\" font-size=\"12\" fill=\"{text}\">{label}</text>",
            label = escape(&bar.label),
            title = escape(&bar.title),
            ty = y + 14,
            text = if bar.failed { "#b91c1c" } else { "#222" },
        ));
        let start = x(bar.start);
        if bar.tick {
            out.push_str(&format!(
                "<circle cx=\"{start}\" cy=\"{cy}\" r=\"5\" fill=\"{colour}\"/>",
                cy = y + 10
            ));
        } else {
            let end = x(bar.end.unwrap_or(last));
            let w = end.saturating_sub(start).max(3);
            out.push_str(&format!(
                "<rect x=\"{start}\" y=\"{ry}\" width=\"{w}\" height=\"14\" rx=\"2\" fill=\"{colour}\"/>",
                ry = y + 3
            ));
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}
