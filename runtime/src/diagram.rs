//! Mermaid diagrams of a workflow, from its metadata and an engine's registered handlers.

use std::fmt::Write as _;

use crate::engine::Engine;
use crate::journal::short;
use crate::workflow::{BodyCall, Workflow};

/// See [`Engine::diagram`].
pub(crate) fn flowchart<W: Workflow>(engine: &Engine) -> String {
    let meta = W::META;
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    start([\"{}\"])", text(meta.name()));
    let mut previous = "start".to_owned();
    for (i, call) in meta.body().iter().enumerate() {
        let node = format!("n{i}");
        match call {
            BodyCall::Step(step) => {
                let _ = writeln!(out, "    {node}[\"{}\"]", text(step));
            }
            BodyCall::Workflow(workflow) => {
                let _ = writeln!(out, "    {node}[[\"{}\"]]", text(workflow));
            }
            BodyCall::Hook(hook) => {
                let declared = meta.hooks().iter().find(|h| h.name == *hook);
                let label = match declared {
                    Some(h) => format!("{}: {}#lt;{}#gt;", h.name, h.kind, h.payload),
                    None => (*hook).to_owned(),
                };
                let _ = writeln!(out, "    {node}{{{{\"{}\"}}}}", text(&label));
                for (j, (slot, handler, plugin)) in
                    engine.handlers_of::<W>(hook).into_iter().enumerate()
                {
                    let by = plugin.map(|p| format!(", plugin {p}")).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    {node}_h{j}[/\"{} ({slot}{by})\"/]",
                        text(short(handler))
                    );
                    let _ = writeln!(out, "    {node} -.- {node}_h{j}");
                }
            }
        }
        let _ = writeln!(out, "    {previous} --> {node}");
        previous = node;
    }
    let _ = writeln!(out, "    done([\"Output\"])\n    {previous} --> done");
    out
}

/// Text that cannot break out of a quoted Mermaid label.
fn text(s: &str) -> String {
    s.replace('"', "#quot;")
}
