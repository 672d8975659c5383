//! The HTTP side of the checkout: `POST /carts/{id}/complete` runs the checkout workflow with
//! who asks (the `Authorization` header), which request it is (`x-request-id`) and the
//! storefront's additional data (the JSON body), and answers with the order, or with an
//! RFC 9457 problem (`application/problem+json`) that names the failed step or the rejecting
//! hook and says whether the completed steps were undone.
//!
//! `router(engine)` is the whole service; `main.rs` serves it, and `tests/it/axum_checkout.rs`
//! sends it real HTTP requests.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use hookflow::prelude::*;
use hookflow::{EventKind, Journal, RunId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::workflow::{Checkout, CheckoutError, CheckoutInput};

/// The request id header: read from the request (or generated), echoed in the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// An idempotency key: a retried request with the same key gets the recorded outcome.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set to `true` on a response that replays the outcome of an earlier request with the
/// same idempotency key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The media type of problem responses (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Where the problem types live: the `type` of a problem is this plus its kind. A real
/// service points it at its documentation.
pub const PROBLEM_TYPES: &str = "https://hookflow.example/problems/";

/// The checkout service: `POST /carts/{id}/complete`, any other path a 404 problem.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/carts/{id}/complete", post(complete_cart))
        .fallback(not_found)
        .layer(middleware::from_fn(request_id))
        .with_state(engine)
}

/// The request id of the request being served (an extension set by the middleware).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Reads `x-request-id` or makes one, serves the request in a span that carries it, and
/// echoes it in the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let given = request.headers().get(&REQUEST_ID).map(|value| {
        value
            .to_str()
            .ok()
            .filter(|id| !id.is_empty() && id.len() <= 200)
            .map(str::to_owned)
    });
    let (id, bad) = match given {
        None => (new_request_id(), false),
        Some(Some(id)) => (id, false),
        Some(None) => (new_request_id(), true),
    };
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    );
    let mut response = if bad {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request-id",
            "Invalid x-request-id header",
        )
        .detail("expected 1 to 200 visible ASCII characters")
        .instance(request.uri().path())
        .extension("request_id", &id)
        .into_response()
    } else {
        request.extensions_mut().insert(RequestId(id.clone()));
        next.run(request).instrument(span.clone()).await
    };
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

fn new_request_id() -> String {
    format!("req_{}", RunId::generate().as_uuid().simple())
}

async fn not_found(
    Extension(RequestId(request_id)): Extension<RequestId>,
    request: Request,
) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Not Found")
        .detail("the checkout service serves `POST /carts/{id}/complete`")
        .instance(request.uri().path())
        .extension("request_id", request_id)
}

/// `POST /carts/{id}/complete`.
async fn complete_cart(
    State(engine): State<Engine>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(cart_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match checkout(&engine, cart_id, &headers, &body, &request_id).await {
        Ok(response) => response,
        Err(problem) => problem
            .instance(uri.path())
            .extension("request_id", &request_id)
            .into_response(),
    }
}

/// Runs the checkout with the request's actor, additional data and ids.
async fn checkout(
    engine: &Engine,
    cart_id: String,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<Response, Problem> {
    let actor = actor(headers)?;
    let additional_data = additional_data(headers, body)?;
    let idempotency_key = idempotency_key(headers)?;

    let run_id = RunId::generate();
    let mut options = RunOptions::new()
        .run_id(run_id)
        .request_id(request_id)
        .origin(Origin::Api);
    if let Some(actor) = actor {
        options = options.actor(actor);
    }
    if let Some(data) = additional_data {
        options = options.additional_data(Value::Object(data));
    }
    if let Some(key) = idempotency_key {
        // Scoped to the route and the cart: the same key on another cart is another request.
        options = options.idempotency_key(format!("complete-cart:{cart_id}:{key}"));
    }
    let outcome = Checkout::run_with(engine, CheckoutInput { cart_id }, options).await;
    // The run has another id when the store returned the outcome of an earlier request.
    let replayed = outcome.run_id() != run_id;

    let mut response = match outcome.result() {
        Ok(order) => Json(json!({
            "run_id": outcome.run_id().to_string(),
            "request_id": request_id,
            "status": outcome.status(),
            "order": order,
            "hook_errors": outcome.hook_errors().iter().map(|failure| json!({
                "hook": failure.hook,
                "handler": short(failure.handler),
                "slot": failure.slot,
                "plugin": failure.plugin,
                "error": failure.error,
            })).collect::<Vec<_>>(),
            "best_effort_failures": outcome.best_effort_failures().iter().map(|failure| json!({
                "step": failure.step,
                "error": failure.error,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(error) => {
            let problem = run_problem(engine, &outcome, error);
            if replayed {
                return Err(problem.header(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
            }
            return Err(problem);
        }
    };
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Who asks: `Bearer usr_<id>` is a customer, `Bearer sk_<id>` an API key (a point-of-sale
/// integration, say); no header is a guest checkout. This example trusts the token; a real
/// service verifies it (a session lookup, a JWT) and maps the result the same way.
fn actor(headers: &HeaderMap) -> Result<Option<Actor>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value.to_str().ok().and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let Some(token) = token else {
        return Err(unauthorized("expected `Authorization: Bearer <token>`"));
    };
    let well_formed = |id: &str| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match token.split_once('_') {
        Some(("usr", id)) if well_formed(id) => Ok(Some(Actor::user(token).with_role("customer"))),
        Some(("sk", id)) if well_formed(id) => {
            Ok(Some(Actor::api_key(token).with_role("integration")))
        }
        _ => Err(unauthorized(
            "unknown token: expected `usr_<id>` (a customer) or `sk_<id>` (an API key)",
        )),
    }
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
        .detail(detail)
        .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// The body: empty, or `{"additional_data": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteCart {
    #[serde(default)]
    additional_data: Option<Map<String, Value>>,
}

/// The additional data in the body, if any. A body must be JSON, and say so.
fn additional_data(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Map<String, Value>>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The request body must be JSON",
        )
        .detail("send `content-type: application/json`"));
    }
    let invalid = |detail: String| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "The request body is not a checkout request",
        )
        .detail(format!(
            "{detail}; expected {{\"additional_data\": {{...}}}}"
        ))
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => serde_json::from_value::<CompleteCart>(value)
            .map(|request| request.additional_data)
            .map_err(|err| invalid(err.to_string())),
        Ok(_) => Err(invalid("not a JSON object".to_owned())),
        Err(err) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-body",
            "The request body is not valid JSON",
        )
        .detail(err.to_string())),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => Ok(Some(key.to_owned())),
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key header",
        )
        .detail("expected 1 to 255 visible ASCII characters")),
    }
}

/// The problem for a failed run: its status code by cause, the failed step or the rejecting
/// hook, and what was undone.
fn run_problem(
    engine: &Engine,
    outcome: &Outcome<Checkout>,
    error: &RunError<CheckoutError>,
) -> Problem {
    let (status, kind, title) = if outcome.status() == RunStatus::CompensationFailed {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "compensation-failed",
            "The checkout failed and could not be fully undone",
        )
    } else {
        cause(error)
    };
    let detail = match error {
        RunError::Failed(CheckoutError::Hook(hook)) => hook.source_error().to_string(),
        other => other.to_string(),
    };
    let mut problem = Problem::new(status, kind, title)
        .detail(detail)
        .extension("run_id", outcome.run_id().to_string())
        .extension("workflow_status", outcome.status())
        .extension("failed_step", outcome.failed_step())
        .extension("compensated", outcome.status() == RunStatus::Compensated)
        .extension("compensated_steps", compensated_steps(outcome.journal()));
    if let RunError::Failed(CheckoutError::Hook(hook)) = error {
        problem = problem.extension("rejected_by", rejected_by(engine, hook));
    }
    if !outcome.compensation_failures().is_empty() {
        let failures: Vec<Value> = outcome
            .compensation_failures()
            .iter()
            .map(|failure| json!({ "step": failure.step, "error": failure.error }))
            .collect();
        problem = problem.extension("compensation_failures", failures);
    }
    problem
}

/// The status code, problem kind and title for why the run failed.
fn cause(error: &RunError<CheckoutError>) -> (StatusCode, &'static str, &'static str) {
    let unavailable = (
        StatusCode::SERVICE_UNAVAILABLE,
        "service-unavailable",
        "A service the checkout needs is unavailable",
    );
    let internal = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal-error",
        "The checkout failed",
    );
    let checkout_error = match error {
        RunError::Failed(error) => error,
        RunError::Recorded { .. } => {
            return (
                StatusCode::CONFLICT,
                "failed-earlier",
                "An earlier request with this idempotency key failed",
            );
        }
        _ => return internal,
    };
    match checkout_error {
        CheckoutError::CartNotFound(_) => {
            (StatusCode::NOT_FOUND, "cart-not-found", "Cart not found")
        }
        CheckoutError::EmptyCart(_) | CheckoutError::UnknownProduct(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-cart",
            "The cart cannot be checked out",
        ),
        CheckoutError::OutOfStock { .. } => (StatusCode::CONFLICT, "out-of-stock", "Out of stock"),
        CheckoutError::BelowMinimum { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "below-minimum",
            "The order is below the minimum amount",
        ),
        CheckoutError::PaymentDeclined(_) => (
            StatusCode::PAYMENT_REQUIRED,
            "payment-declined",
            "Payment declined",
        ),
        CheckoutError::TimedOut(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "timed-out",
            "A service the checkout needs did not answer in time",
        ),
        CheckoutError::ProviderUnavailable | CheckoutError::WarehouseDown(_) => unavailable,
        CheckoutError::Hook(hook) if !hook.is_panic() => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected-by-hook",
            "The checkout was rejected by a hook",
        ),
        CheckoutError::Hook(_) | CheckoutError::MailRefused(_) | CheckoutError::Service(_) => {
            internal
        }
    }
}

/// The hook handler that aborted the run, and the plugin that registered it, if one did.
fn rejected_by(engine: &Engine, hook: &HookError) -> Value {
    let plugin = engine
        .handlers_of::<Checkout>(hook.hook())
        .into_iter()
        .find(|(slot, handler, _)| *slot == hook.slot() && *handler == hook.handler())
        .and_then(|(_, _, plugin)| plugin.map(str::to_owned));
    json!({
        "hook": hook.hook(),
        "handler": short(hook.handler()),
        "slot": hook.slot(),
        "plugin": plugin,
    })
}

/// The steps whose compensation ran, in the order it ran.
fn compensated_steps(journal: &Journal) -> Vec<&str> {
    journal
        .kinds()
        .filter_map(|kind| match kind {
            EventKind::CompensationCompleted { step, .. } => Some(step.as_ref()),
            _ => None,
        })
        .collect()
}

/// A handler's name without its module path.
fn short(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// An RFC 9457 problem, answered as `application/problem+json`: `type`, `title`, `status`,
/// `detail`, `instance`, and extension members.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    body: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of `kind` (appended to [`PROBLEM_TYPES`] to make its `type`).
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        let mut body = Map::new();
        body.insert("type".into(), format!("{PROBLEM_TYPES}{kind}").into());
        body.insert("title".into(), title.into());
        body.insert("status".into(), status.as_u16().into());
        Problem {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// What happened, for a human.
    #[must_use]
    pub fn detail(self, detail: impl Into<String>) -> Self {
        self.extension("detail", detail.into())
    }

    /// The path of the request that had the problem.
    #[must_use]
    pub fn instance(self, path: &str) -> Self {
        self.extension("instance", path)
    }

    /// A member of the problem object.
    #[must_use]
    pub fn extension(mut self, name: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.body.insert(name.to_owned(), value);
        self
    }

    /// A header of the response (`WWW-Authenticate`, ...).
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Value::Object(self.body).to_string();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
