//! `/`: the runs, newest first, a page at a time, filtered by status and workflow, searched
//! by run id or idempotency key.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookflow_runtime::store::{RunCursor, RunFilter};
use hookflow_runtime::{RunId, StoredStatus};
use serde::Deserialize;

use super::Shared;
use super::html::{escape, page, secure, url_component};
use crate::render::{duration, utc};

/// The statuses to filter by, as the store names them.
const STATUSES: [&str; 7] = [
    "running",
    "waiting",
    "parked",
    "completed",
    "compensated",
    "compensation_failed",
    "cancelled",
];

/// The query string of the runs page; empty values count as absent.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsQuery {
    status: Option<String>,
    workflow: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /?status=&workflow=&q=&after=`.
pub(crate) async fn runs(State(state): Shared, Query(query): Query<RunsQuery>) -> Response {
    let root = state.root();
    if let Some(q) = given(&query.q) {
        return search(&state, q).await;
    }
    let mut filter = RunFilter::new().limit(state.page_size);
    let status = given(&query.status);
    if let Some(status) = status {
        match StoredStatus::parse(status) {
            Some(s) => filter = filter.status(s),
            None => {
                return state.problem(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown status `{status}`"),
                );
            }
        }
    }
    let workflow = given(&query.workflow);
    if let Some(workflow) = workflow {
        filter = filter.workflow(workflow);
    }
    if let Some(after) = given(&query.after) {
        match RunCursor::parse(after) {
            Some(cursor) => filter = filter.after(cursor),
            None => return state.problem(StatusCode::BAD_REQUEST, "not a page cursor"),
        }
    }
    let found = match state.store.list_page(&filter).await {
        Ok(found) => found,
        Err(err) => {
            return state.problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot read the runs: {err}"),
            );
        }
    };

    let mut body = String::from("<h1>Runs</h1>");
    body.push_str(&filters_form(&root, status, workflow));
    body.push_str(
        "<table id=\"runs\"><thead><tr><th>run</th><th>status</th><th>workflow</th><th>created (UTC)</th><th>duration</th><th>error</th></tr></thead><tbody>",
    );
    for run in &found.runs {
        let took = if run.status.is_finished() {
            duration(run.updated_at_micros.saturating_sub(run.created_at_micros))
        } else {
            String::from("…")
        };
        body.push_str(&format!(
            "<tr class=\"run\" data-status=\"{status}\"><td><a href=\"{root}runs/{id}\">{id}</a></td>\
             <td><span class=\"status status-{status}\">{status}</span></td><td>{workflow} v{version}</td>\
             <td>{created}</td><td>{took}</td><td class=\"error\">{error}</td></tr>",
            id = run.run_id,
            status = run.status.as_str(),
            workflow = escape(&run.workflow),
            version = run.version,
            created = utc(run.created_at_micros),
            error = escape(run.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("")),
        ));
    }
    for bad in &found.unreadable {
        body.push_str(&format!(
            "<tr class=\"unreadable\"><td>{}</td><td colspan=\"5\" class=\"error\">unreadable: {}</td></tr>",
            escape(&bad.run_id),
            escape(&bad.reason)
        ));
    }
    body.push_str("</tbody></table>");
    if found.runs.is_empty() && found.unreadable.is_empty() {
        body.push_str("<p class=\"note\">No runs.</p>");
    }
    let mut links = Vec::new();
    if filter.after.is_some() {
        links.push(format!(
            "<a id=\"first\" href=\"{root}?{}\">first page</a>",
            query_string(status, workflow, None)
        ));
    }
    if let Some(next) = &found.next {
        links.push(format!(
            "<a id=\"next\" href=\"{root}?{}\">next page</a>",
            query_string(status, workflow, Some(&next.to_string()))
        ));
    }
    body.push_str(&format!("<p class=\"pages\">{}</p>", links.join(" · ")));
    page("runs", &root, &state.db, &body, false)
}

fn query_string(status: Option<&str>, workflow: Option<&str>, after: Option<&str>) -> String {
    [("status", status), ("workflow", workflow), ("after", after)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", url_component(v))))
        .collect::<Vec<_>>()
        .join("&amp;")
}

fn filters_form(root: &str, status: Option<&str>, workflow: Option<&str>) -> String {
    let mut options = String::from("<option value=\"\">any</option>");
    for s in STATUSES {
        let selected = if Some(s) == status { " selected" } else { "" };
        options.push_str(&format!("<option value=\"{s}\"{selected}>{s}</option>"));
    }
    format!(
        "<form class=\"filters\" method=\"get\" action=\"{root}\">\
         <label>status <select name=\"status\" id=\"status\">{options}</select></label>\
         <label>workflow <input name=\"workflow\" id=\"workflow\" value=\"{workflow}\"></label>\
         <button type=\"submit\" id=\"filter\">filter</button></form>\
         <form class=\"filters\" method=\"get\" action=\"{root}\">\
         <label>run id or idempotency key <input name=\"q\" id=\"q\" size=\"40\"></label>\
         <button type=\"submit\" id=\"search\">find</button></form>",
        workflow = escape(workflow.unwrap_or("")),
    )
}

/// A search: a run id goes to its page, an idempotency key to the page of the run holding
/// it; nothing found is a 404 page that says so.
async fn search(state: &super::State, q: &str) -> Response {
    let root = state.root();
    let found = match RunId::parse(q) {
        Ok(run_id) => match state.store.load(run_id).await {
            Ok(_) => Ok(Some(run_id)),
            Err(hookflow_runtime::StoreError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        },
        Err(_) => state
            .store
            .find_by_idempotency_key(q)
            .await
            .map(|run| run.map(|r| r.run_id)),
    };
    match found {
        Ok(Some(run_id)) => secure(Redirect::to(&format!("{root}runs/{run_id}")).into_response()),
        Ok(None) => state.problem(
            StatusCode::NOT_FOUND,
            &format!("no run has the id or idempotency key `{q}`"),
        ),
        Err(err) => state.problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot search the runs: {err}"),
        ),
    }
}
