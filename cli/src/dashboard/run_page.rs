//! `/runs/{id}`: one run: its record, its timeline, its steps with their output and
//! compensation data, its compensations, the bag, the jobs, the hook errors, and the actions
//! the visitor may take.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hookflow_runtime::{
    Event, EventKind, RecordedJson, RunId, RunRecord, StoreError, StoredStatus,
};
use serde_json::Value;

use super::html::{escape, page};
use super::{Shared, State as DashboardState, auth, timeline};
use crate::render::{duration, utc};

/// What the page says when the dashboard has no workflow to resume runs with.
pub(crate) const CANNOT_RESUME: &str = "this dashboard cannot resume runs: it registers no workflow. Serve it from an admin binary that registers them (hookflow_cli::Cli::new().workflows(...), then `serve`)";

/// `GET /runs/{id}`.
pub(crate) async fn run(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(run_id) = RunId::parse(&id) else {
        return state.problem(StatusCode::NOT_FOUND, &format!("`{id}` is not a run id"));
    };
    let (record, events) = match state.store.load(run_id).await {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => {
            return state.problem(StatusCode::NOT_FOUND, &format!("no run {run_id}"));
        }
        Err(err) => {
            return state.problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot read run {run_id}: {err}"),
            );
        }
    };
    let root = state.root();
    let live = !record.status.is_finished();
    let mut body = if live {
        format!(
            "<div id=\"run\" data-live=\"{root}runs/{run_id}/events?seen={}\">",
            events.len()
        )
    } else {
        String::from("<div id=\"run\">")
    };
    body.push_str(&format!(
        "<h1>Run {run_id} <span class=\"status status-{s}\" id=\"status\">{s}</span></h1>",
        s = record.status.as_str()
    ));
    body.push_str(&actions(&state, &headers, &record));
    body.push_str(&record_list(&record));
    body.push_str("<h2>Timeline</h2>");
    body.push_str(&timeline::svg(&events));
    body.push_str(&sections(&events));
    body.push_str("</div>");
    page(&format!("run {run_id}"), &root, &state.db, &body, live)
}

fn json(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("<pre>{}</pre>", escape(&text))
}

fn record_list(record: &RunRecord) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("workflow", escape(&record.workflow)),
        ("version", record.version.to_string()),
        ("created", format!("{} UTC", utc(record.created_at_micros))),
    ];
    let took = record
        .updated_at_micros
        .saturating_sub(record.created_at_micros);
    if record.status.is_finished() {
        rows.push((
            "ended",
            format!(
                "{} UTC (after {})",
                utc(record.updated_at_micros),
                duration(took)
            ),
        ));
    } else {
        rows.push((
            "last change",
            format!("{} UTC", utc(record.updated_at_micros)),
        ));
    }
    if let Some(key) = &record.idempotency_key {
        rows.push(("idempotency key", escape(key)));
    }
    if let Some(id) = &record.request_id {
        rows.push(("request id", escape(id)));
    }
    if let Some(actor) = &record.actor {
        rows.push(("actor", escape(actor.id())));
    }
    if let (Some(owner), Some(until)) = (&record.owner, record.lease_until_micros) {
        rows.push((
            "lease",
            format!("held by {} until {} UTC", escape(owner), utc(until)),
        ));
    }
    if let Some(waiting) = &record.waiting_for {
        rows.push(("waiting for", escape(waiting)));
    }
    if let Some(cancel) = &record.cancel {
        rows.push(("cancel requested", escape(&cancel.reason)));
    }
    if let Some(error) = &record.error {
        rows.push((
            "error",
            format!("<span class=\"failed\">{}</span>", escape(error)),
        ));
    }
    rows.push(("input", json(&record.input)));
    if let Some(data) = &record.additional_data {
        rows.push(("additional data", json(data)));
    }
    if let Some(output) = &record.output {
        rows.push(("output", json(output)));
    }
    let mut out = String::from("<dl class=\"record\" id=\"record\">");
    for (key, value) in rows {
        out.push_str(&format!("<dt>{key}</dt><dd>{value}</dd>"));
    }
    out.push_str("</dl>");
    out
}

/// The resume and cancel forms, or why there are none.
fn actions(state: &DashboardState, headers: &HeaderMap, record: &RunRecord) -> String {
    let root = state.root();
    let run_id = record.run_id;
    if state.token.is_none() {
        return "<p class=\"note\" id=\"read-only\">Read-only dashboard: start it with a token (--token or HOOKFLOW_DASHBOARD_TOKEN) to resume or cancel runs.</p>".to_owned();
    }
    if record.status.is_finished() {
        return String::new();
    }
    let Some(csrf) = auth::csrf_of(state, headers) else {
        return format!(
            "<p class=\"note\"><a id=\"login\" href=\"{root}login\">Log in</a> to resume or cancel this run.</p>"
        );
    };
    let form = |action: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{root}runs/{run_id}/{action}\" style=\"display:inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" id=\"{action}\">{label}</button></form> ",
            csrf = escape(&csrf)
        )
    };
    let mut out = String::from("<p class=\"actions\">");
    if matches!(record.status, StoredStatus::Running | StoredStatus::Parked) {
        if state.register.is_some() {
            out.push_str(&form("resume", "Resume"));
        } else {
            out.push_str(&format!(
                "<span class=\"note\" id=\"cannot-resume\">{}</span> ",
                escape(CANNOT_RESUME)
            ));
        }
    }
    out.push_str(&form("cancel", "Cancel"));
    out.push_str("</p>");
    out
}

fn sections(events: &[Event]) -> String {
    let mut steps = String::new();
    let mut undos = String::new();
    let mut jobs = String::new();
    let mut hook_errors = String::new();
    let mut bag: BTreeMap<String, Option<Value>> = BTreeMap::new();
    let none = || "<td></td>".to_owned();
    let cell = |v: &Option<Value>| {
        v.as_ref()
            .map_or_else(none, |v| format!("<td>{}</td>", json(v)))
    };
    // A recorded value, shown as its JSON value (pretty-printed, its keys in order).
    let recorded = |v: &Option<Box<RecordedJson>>| cell(&v.as_deref().map(RecordedJson::to_value));
    for event in events {
        match &event.kind {
            EventKind::StepCompleted {
                step,
                position,
                output,
                compensation,
                ..
            } => steps.push_str(&format!(
                "<tr class=\"step\"><td>#{position}</td><td>{}</td><td>completed</td>{}{}</tr>",
                escape(step.as_ref()),
                recorded(output),
                recorded(compensation)
            )),
            EventKind::StepFailed {
                step,
                position,
                failure,
            } => steps.push_str(&format!(
                "<tr class=\"step failed\"><td>#{position}</td><td>{}</td><td>failed after {} attempt(s): {}</td><td></td><td></td></tr>",
                escape(step.as_ref()),
                failure.attempts,
                escape(&failure.error)
            )),
            EventKind::CompensationStarted {
                step,
                position,
                data,
            } => undos.push_str(&format!(
                "<tr class=\"compensation\"><td>#{position}</td><td>{}</td><td>started</td>{}</tr>",
                escape(step.as_ref()),
                recorded(data)
            )),
            EventKind::CompensationCompleted { step, position } => undos.push_str(&format!(
                "<tr class=\"compensation\"><td>#{position}</td><td>{}</td><td>undone</td><td></td></tr>",
                escape(step.as_ref())
            )),
            EventKind::CompensationFailed {
                step,
                position,
                error,
                ..
            } => undos.push_str(&format!(
                "<tr class=\"compensation failed\"><td>#{position}</td><td>{}</td><td>failed: {}</td><td></td></tr>",
                escape(step.as_ref()),
                escape(error)
            )),
            EventKind::BagWritten { key, change } => {
                bag.insert(key.to_string(), change.value.clone());
            }
            EventKind::JobEnqueued { job, .. } => jobs.push_str(&format!(
                "<tr class=\"job\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(job.name()),
                escape(job.id()),
                json(job.payload())
            )),
            EventKind::HookHandlerFailed {
                hook,
                slot,
                handler,
                failure,
            } => hook_errors.push_str(&format!(
                "<tr class=\"hook-error failed\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(hook.as_ref()),
                escape(&slot.to_string()),
                escape(handler.as_ref()),
                escape(&failure.error)
            )),
            _ => {}
        }
    }
    let bag: String = bag
        .iter()
        .map(|(key, value)| {
            format!(
                "<tr class=\"bag\"><td>{}</td>{}</tr>",
                escape(key),
                value.as_ref().map_or_else(
                    || "<td>(taken out)</td>".to_owned(),
                    |v| format!("<td>{}</td>", json(v))
                )
            )
        })
        .collect();
    let table = |id: &str, title: &str, head: &str, rows: &str| {
        if rows.is_empty() {
            format!("<h2>{title}</h2><p class=\"note\" id=\"{id}\">none</p>")
        } else {
            format!(
                "<h2>{title}</h2><table id=\"{id}\"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            )
        }
    };
    [
        table(
            "steps",
            "Steps",
            "<th>#</th><th>step</th><th>outcome</th><th>output</th><th>compensation data</th>",
            &steps,
        ),
        table(
            "compensations",
            "Compensations",
            "<th>#</th><th>step</th><th>outcome</th><th>data</th>",
            &undos,
        ),
        table("bag", "Bag", "<th>type</th><th>value</th>", &bag),
        table(
            "jobs",
            "Jobs",
            "<th>job</th><th>id</th><th>payload</th>",
            &jobs,
        ),
        table(
            "hook-errors",
            "Hook errors",
            "<th>hook</th><th>slot</th><th>handler</th><th>error</th>",
            &hook_errors,
        ),
    ]
    .concat()
}
