//! Mermaid diagrams of a workflow, from its metadata and an engine's registered handlers.

use std::fmt::Write as _;

use crate::engine::Engine;
use crate::types::BodyCall;
use crate::workflow::Workflow;

impl Engine {
    /// Workflow `W` as a Mermaid flowchart: the steps, hook firings and nested workflows its
    /// body calls, in source order, each hook with its kind and payload type and the handlers
    /// this engine has registered on it, by slot.
    pub fn diagram<W: Workflow>(&self) -> String {
        flowchart::<W>(self)
    }
}

fn flowchart<W: Workflow>(engine: &Engine) -> String {
    let meta = W::META;
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    start([\"{}\"])", text(meta.name()));
    let mut next = 0;
    let ends = draw::<W>(
        &mut out,
        engine,
        meta.body(),
        vec!["start".to_owned()],
        &mut next,
    );
    out.push_str("    done([\"Output\"])\n");
    for end in ends {
        let _ = writeln!(out, "    {end} --> done");
    }
    out
}

/// Draws `calls` one after the other, after the nodes `from`; returns the last nodes (more
/// than one after a `parallel!`, whose branches are drawn side by side in a subgraph).
fn draw<W: Workflow>(
    out: &mut String,
    engine: &Engine,
    calls: &[BodyCall],
    from: Vec<String>,
    next: &mut usize,
) -> Vec<String> {
    let meta = W::META;
    let mut previous = from;
    for call in calls {
        let node = format!("n{next}");
        *next += 1;
        match call {
            BodyCall::Parallel(branches) => {
                let _ = writeln!(out, "    subgraph {node} [\"parallel\"]");
                let mut ends = Vec::new();
                for branch in *branches {
                    ends.extend(draw::<W>(out, engine, branch, previous.clone(), next));
                }
                out.push_str("    end\n");
                previous = ends;
                continue;
            }
            BodyCall::Step(step) => {
                let _ = writeln!(out, "    {node}[\"{}\"]", text(step));
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
