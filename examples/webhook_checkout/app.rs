//! A checkout that waits for the payment provider's webhook: the workflow, its routes and the
//! service that runs them. The example's binary (`main.rs`) and `tests/it/webhook.rs` (which
//! kills it while a run waits) share it.
//!
//! `POST /checkouts` starts a checkout: it authorizes the payment, then waits for the
//! `payment_captured` event, suspended in the SQLite store (nothing of it stays in memory).
//! `POST /webhooks/payment` is the provider's webhook: it delivers the event (once per
//! payment id, however often the provider retries), and the run goes on and fulfils the
//! order. `GET /checkouts/{run_id}` shows where a run is.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{RunId, SendError, Sent, Worker, WorkerHandle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a checkout takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// The shop's order id (also the run's idempotency key).
    pub order: String,
    /// The amount to authorize, in cents.
    pub total: u32,
}

/// What the payment provider's webhook says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    /// The provider's payment id: the delivery key, so that a retried webhook counts once.
    pub payment_id: String,
    /// The captured amount, in cents.
    pub amount: u32,
}

/// Why a checkout failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The payment provider reported a failed capture, or the effects ledger failed.
    #[error("{0}")]
    Payment(String),
    /// The wait for the capture failed (`Engine::fail`).
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// The shop's side effects, one line each (`effect key`), appended to a file: the test counts
/// them across the processes that ran the checkout.
#[derive(Clone)]
pub struct Effects {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl Effects {
    /// Effects appended to the file at `path`.
    pub fn at(path: PathBuf) -> Self {
        Effects {
            path,
            lock: Arc::default(),
        }
    }

    fn record(&self, effect: &str, key: &str) -> Result<(), CheckoutError> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| writeln!(file, "{effect} {key}"))
            .map_err(|e| CheckoutError::Payment(format!("cannot record `{effect}`: {e}")))
    }
}

fn effects(ctx: &StepContext) -> Result<&Effects, CheckoutError> {
    ctx.service::<Effects>()
        .map_err(|e| CheckoutError::Payment(e.to_string()))
}

/// Authorizes the total with the payment provider; voided if the checkout fails.
#[step(compensate = void)]
async fn authorize(
    ctx: &StepContext,
    order: Order,
) -> Result<StepResponse<String, String>, CheckoutError> {
    effects(ctx)?.record("authorize", &ctx.idempotency_key())?;
    let authorization = format!("auth_{}", order.order);
    Ok(StepResponse::new(authorization.clone(), authorization))
}

async fn void(ctx: &StepContext, authorization: String) -> Result<(), CheckoutError> {
    effects(ctx)?.record("void", &authorization)
}

/// Ships the order once the payment is captured.
#[step]
async fn fulfil(
    ctx: &StepContext,
    order: Order,
    payment: Payment,
) -> Result<String, CheckoutError> {
    effects(ctx)?.record("fulfil", &ctx.idempotency_key())?;
    Ok(format!(
        "order {} paid ({} cents, {}) and shipped",
        order.order, payment.amount, payment.payment_id
    ))
}

/// Authorize, wait for the capture (suspended in the store), fulfil.
#[workflow(events(payment_captured: Payment))]
pub async fn paid_checkout(ctx: &WorkflowContext, order: Order) -> Result<String, CheckoutError> {
    authorize(ctx, order.clone()).await?;
    let payment = ctx.wait(PaidCheckout::PAYMENT_CAPTURED).await?;
    fulfil(ctx, order, payment).await
}

/// The service: its engine (over the SQLite store) and the worker that resumes woken runs.
pub struct Service {
    pub engine: Engine,
    pub store: Arc<SqliteStore>,
    /// Runs as long as the service is kept.
    _worker: WorkerHandle,
}

/// Opens the store at `db`, records effects at `effects`, and starts a worker.
pub fn service(db: PathBuf, effects: PathBuf) -> Result<Service, String> {
    let store = Arc::new(SqliteStore::open(&db).map_err(|e| e.to_string())?);
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<PaidCheckout>()
        .service(Effects::at(effects))
        .build();
    let worker = Worker::new(&engine)
        .poll_interval(Duration::from_millis(100))
        .start()
        .map_err(|e| e.to_string())?;
    Ok(Service {
        engine,
        store,
        _worker: worker,
    })
}

#[derive(Clone)]
struct AppState {
    engine: Engine,
    store: Arc<SqliteStore>,
}

/// The routes.
pub fn router(service: &Service) -> axum::Router {
    axum::Router::new()
        .route("/checkouts", post(start))
        .route("/checkouts/{run_id}", get(status))
        .route("/webhooks/payment", post(webhook))
        .with_state(AppState {
            engine: service.engine.clone(),
            store: Arc::clone(&service.store),
        })
}

type Answer = (StatusCode, Json<Value>);

fn problem(status: StatusCode, detail: impl std::fmt::Display) -> Answer {
    (
        status,
        Json(json!({ "status": status.as_u16(), "detail": detail.to_string() })),
    )
}

/// `POST /checkouts {"order": "o1", "total": 4200}`: runs the checkout up to its wait.
async fn start(State(app): State<AppState>, Json(order): Json<Order>) -> Answer {
    let options = RunOptions::new().idempotency_key(format!("checkout:{}", order.order));
    let outcome = app.engine.run_with::<PaidCheckout>(order, options).await;
    let status = outcome.status();
    let code = match status {
        RunStatus::Waiting => StatusCode::ACCEPTED,
        RunStatus::Completed => StatusCode::OK,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (
        code,
        Json(json!({ "run_id": outcome.run_id().to_string(), "status": status.to_string() })),
    )
}

/// `GET /checkouts/{run_id}`: the run's status and output.
async fn status(State(app): State<AppState>, Path(run_id): Path<String>) -> Answer {
    let Ok(run_id) = RunId::parse(&run_id) else {
        return problem(StatusCode::BAD_REQUEST, "not a run id");
    };
    match app.store.load(run_id).await {
        Ok((record, _)) => (
            StatusCode::OK,
            Json(json!({
                "run_id": run_id.to_string(),
                "status": record.status.as_str(),
                "output": record.output,
                "error": record.error,
            })),
        ),
        Err(err) => problem(StatusCode::NOT_FOUND, err),
    }
}

#[derive(Deserialize)]
struct Webhook {
    run_id: String,
    #[serde(flatten)]
    payment: Payment,
}

/// `POST /webhooks/payment {"run_id": ..., "payment_id": ..., "amount": ...}`: delivers the
/// capture to the run (202), once per payment id.
async fn webhook(State(app): State<AppState>, Json(hook): Json<Webhook>) -> Answer {
    let Ok(run_id) = RunId::parse(&hook.run_id) else {
        return problem(StatusCode::BAD_REQUEST, "not a run id");
    };
    let key = hook.payment.payment_id.clone();
    match app
        .engine
        .send_once(run_id, PaidCheckout::PAYMENT_CAPTURED, hook.payment, key)
        .await
    {
        Ok(Sent::Delivered { .. }) => (StatusCode::ACCEPTED, Json(json!({ "delivered": true }))),
        Ok(Sent::Duplicate) => (StatusCode::OK, Json(json!({ "delivered": "duplicate" }))),
        Err(err @ SendError::UnknownRun { .. }) => problem(StatusCode::NOT_FOUND, err),
        Err(err @ SendError::Ended { .. }) => problem(StatusCode::CONFLICT, err),
        Err(err) => problem(StatusCode::SERVICE_UNAVAILABLE, err),
    }
}
