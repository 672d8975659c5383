//! The HTTP side: `POST /carts/{id}/complete` runs the checkout workflow.
//!
//! - the body's `additional_data` (JSON, optional) goes to the run, for hooks and steps;
//! - `Authorization: Bearer <user id>` is the actor (a customer); no header is a guest;
//! - `x-request-id` is the run's request id (one is made if absent), echoed in the response;
//! - `Idempotency-Key` makes a retried request return the first one's outcome.
//!
//! A completed run answers `200` with the order, the run id and any hook errors (an `after`
//! handler that failed does not undo the order). A failed run answers an RFC 9457 problem
//! (`application/problem+json`) naming the failed step or the rejecting hook and whether the
//! completed steps were compensated: `422` for a rejection by a `before` hook, `402` for a
//! declined payment, `409` for another failed step, `500` when a compensation failed too.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hookflow::prelude::*;
use hookflow::{EventKind, RunId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::plugin::{LoyaltyLedger, LoyaltyPlugin};
use crate::workflow::{self, Checkout, CheckoutError, CheckoutInput};

/// The engine the service runs checkouts on: the example's shop and hooks, the loyalty
/// plugin, and an in-memory store so that `Idempotency-Key` works.
pub fn engine() -> Engine {
    let mut hooks = workflow::hooks();
    hooks.plugin(LoyaltyPlugin);
    Engine::builder()
        .hooks(hooks)
        .service(workflow::shop())
        .service(LoyaltyLedger::default())
        .store(hookflow::store::MemoryStore::new())
        .workflow::<Checkout>()
        .build()
}

/// The routes.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/carts/{id}/complete", post(complete))
        .with_state(engine)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    #[serde(default)]
    additional_data: Option<Value>,
}

async fn complete(
    State(engine): State<Engine>,
    Path(cart_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = header_str(&headers, "x-request-id")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", RunId::generate()));
    let respond = |status: StatusCode, body: Value, problem: bool| {
        let mut response = (status, axum::Json(body)).into_response();
        if problem {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    };
    let problem = |status: StatusCode, title: &str, detail: String| {
        json!({ "type": "about:blank", "title": title, "status": status.as_u16(),
                "detail": detail, "request_id": request_id })
    };

    let actor = match actor(&headers) {
        Ok(actor) => actor,
        Err(detail) => {
            let status = StatusCode::UNAUTHORIZED;
            return respond(status, problem(status, "Unauthorized", detail), true);
        }
    };
    let body: CompleteBody = if body.iter().all(u8::is_ascii_whitespace) {
        CompleteBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(err) => {
                let status = StatusCode::BAD_REQUEST;
                let detail = format!("the body is not a checkout request: {err}");
                return respond(status, problem(status, "Bad request", detail), true);
            }
        }
    };

    let mut options = RunOptions::new()
        .request_id(&request_id)
        .origin(Origin::Api);
    if let Some(actor) = actor {
        options = options.actor(actor);
    }
    if let Some(data) = body.additional_data {
        options = options.additional_data(data);
    }
    if let Some(key) = header_str(&headers, "idempotency-key") {
        options = options.idempotency_key(format!("checkout:{key}"));
    }
    let outcome = Checkout::run_with(&engine, CheckoutInput { cart_id }, options).await;

    let hook_errors: Vec<Value> = outcome
        .hook_errors()
        .iter()
        .map(|h| {
            json!({ "hook": h.hook, "handler": short(h.handler), "plugin": h.plugin,
                    "error": h.error })
        })
        .collect();
    match outcome.result() {
        Ok(order) => respond(
            StatusCode::OK,
            json!({ "run_id": outcome.run_id().to_string(), "status": outcome.status().to_string(),
                    "order": order, "hook_errors": hook_errors }),
            false,
        ),
        Err(err) => {
            let failed_step = outcome.failed_step().map(str::to_owned);
            // A `before` hook that rejected the run: its failed handler, if no step failed.
            let failed_hook = match &failed_step {
                Some(_) => None,
                None => outcome
                    .journal()
                    .events()
                    .iter()
                    .rev()
                    .find_map(|e| match &e.kind {
                        EventKind::HookHandlerFailed { hook, .. } => Some(hook.to_string()),
                        _ => None,
                    }),
            };
            let compensated = outcome.status() == RunStatus::Compensated;
            let status = if outcome.status() == RunStatus::CompensationFailed {
                StatusCode::INTERNAL_SERVER_ERROR
            } else if failed_hook.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else if matches!(
                err,
                hookflow::RunError::Failed(CheckoutError::PaymentDeclined(_))
            ) {
                StatusCode::PAYMENT_REQUIRED
            } else {
                StatusCode::CONFLICT
            };
            let mut body = problem(status, "Checkout failed", err.to_string());
            body["run_id"] = json!(outcome.run_id().to_string());
            body["failed_step"] = json!(failed_step);
            body["failed_hook"] = json!(failed_hook);
            body["compensated"] = json!(compensated);
            body["hook_errors"] = json!(hook_errors);
            respond(status, body, true)
        }
    }
}

/// The actor of `Authorization: Bearer <user id>`; `None` for a guest (no header).
fn actor(headers: &HeaderMap) -> Result<Option<Actor>, String> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .ok_or("the Authorization header must be `Bearer <user id>`")?;
    Ok(Some(Actor::user(token).with_role("customer")))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// A handler's name without its module path.
fn short(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}
