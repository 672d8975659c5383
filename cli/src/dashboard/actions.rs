//! `POST /runs/{id}/resume` and `POST /runs/{id}/cancel`: only for a logged-in session of a
//! dashboard with a token, with the session's CSRF token, from the dashboard's own origin
//! ([`auth::authorize`]); 403 otherwise, and nothing is done.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookflow_runtime::store::Cancelling;
use hookflow_runtime::{Actor, ActorKind, CancelRequest, ResumeError, RunId};
use serde::Deserialize;

use super::html::secure;
use super::run_page::CANNOT_RESUME;
use super::{Shared, auth};

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    csrf: Option<String>,
}

/// `POST /runs/{id}/resume`: resumes the run to its end (or its next wait), then shows its
/// page.
pub(crate) async fn resume(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refused) = auth::authorize(&state, &headers, form.csrf.as_deref()) {
        return *refused;
    }
    let Ok(run_id) = RunId::parse(&id) else {
        return state.problem(StatusCode::NOT_FOUND, "not a run id");
    };
    let Some(engine) = state.engine() else {
        return state.problem(StatusCode::CONFLICT, CANNOT_RESUME);
    };
    match engine.resume(run_id).await {
        Ok(_) => secure(Redirect::to(&format!("{}runs/{run_id}", state.root())).into_response()),
        Err(ResumeError::UnknownWorkflow { workflow, version }) => state.problem(
            StatusCode::CONFLICT,
            &format!(
                "run {run_id} is a run of workflow `{workflow}` version {version}, which this dashboard does not register: serve it from an admin binary that does"
            ),
        ),
        Err(err) => state.problem(
            StatusCode::CONFLICT,
            &format!("cannot resume run {run_id}: {err}"),
        ),
    }
}

/// `POST /runs/{id}/cancel`: records a cancellation request (by `dashboard`), then shows the
/// run's page.
pub(crate) async fn cancel(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refused) = auth::authorize(&state, &headers, form.csrf.as_deref()) {
        return *refused;
    }
    let Ok(run_id) = RunId::parse(&id) else {
        return state.problem(StatusCode::NOT_FOUND, "not a run id");
    };
    let request = CancelRequest::new(
        "cancelled from the dashboard",
        Some(Actor::new(ActorKind::User, "dashboard")),
    );
    match state.store.cancel(run_id, &request).await {
        Ok(Cancelling::UnknownRun) => {
            state.problem(StatusCode::NOT_FOUND, &format!("no run {run_id}"))
        }
        Ok(Cancelling::Ended(status)) => state.problem(
            StatusCode::CONFLICT,
            &format!("run {run_id} has ended ({status}): there is nothing to cancel"),
        ),
        Ok(_) => secure(Redirect::to(&format!("{}runs/{run_id}", state.root())).into_response()),
        Err(err) => state.problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot cancel run {run_id}: {err}"),
        ),
    }
}
