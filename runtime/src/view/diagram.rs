//! Mermaid diagrams of a workflow, from its metadata and an engine's registered handlers.

use std::fmt::Write as _;

use crate::engine::Engine;
use crate::types::{BodyCall, StepEntry};
use crate::workflow::Workflow;

impl Engine {
    /// Workflow `W` as a Mermaid flowchart: the steps, hook firings and nested workflows its
    /// body calls, in source order, each hook with its kind and payload type and the handlers
    /// this engine has registered on it, by slot. A step with a compensation shows it
    /// (`undo: release_inventory`), and dashed `undo` edges go back from each such step to the
    /// one before it: the order in which a failure undoes them. A step is found by its name
    /// among the program's `#[step]`s (the one nearest the workflow's module first); a call that is
    /// not a step's (a helper) is drawn as a step without compensation.
    pub fn diagram<W: Workflow>(&self) -> String {
        flowchart::<W>(self)
    }
}

fn flowchart<W: Workflow>(engine: &Engine) -> String {
    let meta = W::META;
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    start([\"{}\"])", text(meta.name()));
    let mut drawing = Drawing {
        next: 0,
        compensable: Vec::new(),
    };
    let ends = draw::<W>(
        &mut out,
        engine,
        meta.body(),
        vec!["start".to_owned()],
        &mut drawing,
    );
    out.push_str("    done([\"Output\"])\n");
    for end in ends {
        let _ = writeln!(out, "    {end} --> done");
    }
    // The undo path: from the last compensable step back to the first.
    for pair in drawing.compensable.windows(2).rev() {
        let _ = writeln!(out, "    {} -. undo .-> {}", pair[1], pair[0]);
    }
    out
}

/// The drawing's state: the next node's number, and the compensable steps' nodes in order.
struct Drawing {
    next: usize,
    compensable: Vec<String>,
}

/// Draws `calls` one after the other, after the nodes `from`; returns the last nodes (more
/// than one after a `parallel!`, whose branches are drawn side by side in a subgraph).
fn draw<W: Workflow>(
    out: &mut String,
    engine: &Engine,
    calls: &[BodyCall],
    from: Vec<String>,
    drawing: &mut Drawing,
) -> Vec<String> {
    let meta = W::META;
    let mut previous = from;
    for call in calls {
        let node = format!("n{}", drawing.next);
        drawing.next += 1;
        match call {
            BodyCall::Parallel(branches) => {
                let _ = writeln!(out, "    subgraph {node} [\"parallel\"]");
                let mut ends = Vec::new();
                for branch in *branches {
                    ends.extend(draw::<W>(out, engine, branch, previous.clone(), drawing));
                }
                out.push_str("    end\n");
                previous = ends;
                continue;
            }
            BodyCall::Step(step) => {
                match StepEntry::find(meta.module(), step).and_then(StepEntry::compensation) {
                    Some(undo) => {
                        let _ = writeln!(
                            out,
                            "    {node}[\"{}<br/>undo: {}\"]",
                            text(step),
                            text(undo)
                        );
                        drawing.compensable.push(node.clone());
                    }
                    None => {
                        let _ = writeln!(out, "    {node}[\"{}\"]", text(step));
                    }
                }
            }
            BodyCall::Workflow(workflow) => {
                let _ = writeln!(out, "    {node}[[\"{}\"]]", text(workflow));
            }
            BodyCall::Hook(hook) => {
                let declared = meta.hooks().iter().find(|h| h.name() == *hook);
                let label = match declared {
                    Some(h) => format!("{}: {}#lt;{}#gt;", h.name(), h.kind(), h.payload()),
                    None => (*hook).to_owned(),
                };
                let _ = writeln!(out, "    {node}{{{{\"{}\"}}}}", text(&label));
                for (j, (slot, handler, plugin)) in
                    engine.handlers_of::<W>(hook).into_iter().enumerate()
                {
                    let by = plugin.map(|p| format!(", plugin {p}")).unwrap_or_default();
                    let _ = writeln!(out, "    {node}_h{j}[/\"{} ({slot}{by})\"/]", text(handler));
                    let _ = writeln!(out, "    {node} -.- {node}_h{j}");
                }
            }
        }
        for p in &previous {
            let _ = writeln!(out, "    {p} --> {node}");
        }
        previous = vec![node];
    }
    previous
}

/// Text that cannot break out of a quoted Mermaid label.
fn text(s: &str) -> String {
    s.replace('"', "#quot;")
}
