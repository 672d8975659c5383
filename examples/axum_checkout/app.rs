//! The HTTP side of the checkout: `POST /carts/{id}/complete` runs the checkout workflow with
//! who asks (the `Authorization` header), which request it is (`x-request-id`) and the
//! storefront's additional data (the JSON body), and answers with the order, or with an
//! RFC 9457 problem (`application/problem+json`) that names the failed step or the rejecting
//! hook and says whether the completed steps were undone. Every other error is a problem too:
//! an unknown path (404), another method (405), a body too large (413), not JSON (415), not
//! valid JSON (400) or not a checkout request (422), a cart id that is not UTF-8 (400): the
//! router's fallbacks and the extractors' rejections, mapped to [`Problem`]s.
//!
//! `router(engine)` is the whole service; `main.rs` serves it, and `tests/it/axum_checkout/`
//! sends it real HTTP requests.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use hookflow::prelude::*;
use hookflow::store::{MemoryStore, Retention};
use hookflow::{EventKind, Journal, RunId};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::problem::Problem;
use crate::workflow::{Checkout, CheckoutError, CheckoutInput};

/// The request id header: read from the request (or generated), echoed in the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// An idempotency key: a retried request with the same key gets the recorded outcome.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set to `true` on a response that replays the outcome of an earlier request with the
/// same idempotency key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a checkout started with an `Idempotency-Key` is remembered after it ended: a retry
/// within this window gets the recorded outcome, a later one checks out again.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The store of the service's runs: in memory, it keeps a checkout with an idempotency key
/// for [`IDEMPOTENCY_WINDOW`] after it ended, and one without (nothing can ask for it again)
/// not at all, so that it does not grow with every request.
pub fn store() -> MemoryStore {
    MemoryStore::new().retention(
        Retention::new()
            .unkeyed(Duration::ZERO)
            .keyed(IDEMPOTENCY_WINDOW),
    )
}

/// The largest request body the service reads: a checkout request is small.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The checkout service: `POST /carts/{id}/complete`; another method there is a 405 problem,
/// any other path a 404 problem.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/carts/{id}/complete", post(complete_cart))
        // After the routes: it applies to the routes above (axum adds the `Allow` header).
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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

/// Another method than `POST` on the checkout route (axum adds `Allow: POST`).
async fn method_not_allowed(
    Extension(RequestId(request_id)): Extension<RequestId>,
    request: Request,
) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method Not Allowed",
    )
    .detail(format!(
        "`{}` is not served here: a checkout is `POST /carts/{{id}}/complete`",
        request.method()
    ))
    .instance(request.uri().path())
    .extension("request_id", request_id)
}

/// `POST /carts/{id}/complete`. The path and the body come as extractors' results, so that
/// their rejections become problems with the request's id, in the order the checks run.
async fn complete_cart(
    State(engine): State<Engine>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    uri: Uri,
    headers: HeaderMap,
    cart_id: Result<Path<String>, PathRejection>,
    body: Result<CheckoutBody, Problem>,
) -> Response {
    match checkout(&engine, cart_id, &headers, body, &request_id).await {
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
    cart_id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Result<CheckoutBody, Problem>,
    request_id: &str,
) -> Result<Response, Problem> {
    let Path(cart_id) = cart_id?;
    let actor = actor(headers)?;
    let CheckoutBody(additional_data) = body?;
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

/// The body: empty, or `{"additional_data": {...}}`. Deserialized from a JSON object only
/// (a struct would take an array too), then its fields checked.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
struct CompleteCart {
    additional_data: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteCartFields {
    #[serde(default)]
    additional_data: Option<Map<String, Value>>,
}

impl TryFrom<Map<String, Value>> for CompleteCart {
    type Error = serde_json::Error;
    fn try_from(object: Map<String, Value>) -> Result<Self, Self::Error> {
        let fields: CompleteCartFields = serde_json::from_value(Value::Object(object))?;
        Ok(CompleteCart {
            additional_data: fields.additional_data,
        })
    }
}

/// The additional data of the request's body, if any: axum's `Json` extractor when the body
/// says it is JSON (its rejections become problems: 400, 413, 415, 422); a body without a
/// content type must be empty.
#[derive(Debug)]
pub struct CheckoutBody(Option<Map<String, Value>>);

impl<S: Send + Sync> FromRequest<S> for CheckoutBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            let Json(body) = Json::<CompleteCart>::from_request(request, state).await?;
            return Ok(CheckoutBody(body.additional_data));
        }
        let body = Bytes::from_request(request, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(CheckoutBody(None))
        } else {
            Err(unsupported_media_type())
        }
    }
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "The request body must be JSON",
    )
    .detail("send `content-type: application/json`")
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(error) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "The request body is not a checkout request",
            )
            .detail(format!(
                "{}; expected {{\"additional_data\": {{...}}}}",
                error.body_text()
            )),
            JsonRejection::JsonSyntaxError(error) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "The request body is not valid JSON",
            )
            .detail(error.body_text()),
            JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
            JsonRejection::BytesRejection(rejection) => rejection.into(),
            other => Problem::new(
                other.status(),
                "invalid-body",
                "The request body was refused",
            )
            .detail(other.body_text()),
        }
    }
}

impl From<BytesRejection> for Problem {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The request body is too large",
            )
            .detail(format!("a checkout request has at most {BODY_LIMIT} bytes"))
        } else {
            Problem::new(
                rejection.status(),
                "unreadable-body",
                "The request body could not be read",
            )
            .detail(rejection.body_text())
        }
    }
}

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Self {
        let (kind, title) = if rejection.status().is_client_error() {
            ("invalid-path", "The cart id in the path is invalid")
        } else {
            ("internal-error", "The path could not be read")
        };
        Problem::new(rejection.status(), kind, title).detail(rejection.body_text())
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
