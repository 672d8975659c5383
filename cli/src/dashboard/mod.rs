//! The run dashboard: a small web application over a store, server-rendered HTML with no
//! asset from elsewhere. [`Dashboard`] builds it as an axum [`Router`], to serve on its own
//! (`hookflow serve`, [`serve`]) or to mount in an application.
//!
//! - `/`: the runs, newest first, a page at a time (keyset pagination on the store's
//!   [`RunFilter`](hookflow_runtime::store::RunFilter) cursor), filtered by status and
//!   workflow (`?status=compensated&workflow=checkout`), searched by run id or idempotency key
//!   (`?q=`).
//! - `/runs/{id}`: a run's record, its timeline drawn as an SVG, each step's output and
//!   compensation data, the bag, the jobs and the hook errors; a running run's page reloads
//!   itself as events arrive (`/runs/{id}/events`, server-sent events).
//! - `POST /runs/{id}/resume` and `POST /runs/{id}/cancel`: only with a token
//!   ([`Dashboard::token`]), after logging in with it (`/login`: an `HttpOnly`,
//!   `SameSite=Strict` session cookie), with the session's CSRF token in the form and a
//!   request whose `Origin` (when sent) is the dashboard's own. Without a token the dashboard
//!   is read-only: no button, and these answer 403.
//! - `/metrics`: the Prometheus text of the handle given to [`Dashboard::metrics`]; 404
//!   without one.
//!
//! Every value from a run goes through one escaping helper ([`escape`]); the connection
//! string shown is redacted; every response carries a Content-Security-Policy
//! (`default-src 'none'`, inline styles, this dashboard's own script), `nosniff` and
//! `frame-ancestors 'none'`.

mod actions;
mod auth;
mod html;
mod live;
mod run_page;
mod runs_page;
mod timeline;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookflow_runtime::store::redact;
use hookflow_runtime::{Engine, EngineBuilder, Store};
use metrics_exporter_prometheus::PrometheusHandle;

pub use html::escape;

/// What registers the workflows a dashboard can resume.
pub(crate) type Register = Arc<dyn Fn(EngineBuilder) -> EngineBuilder + Send + Sync>;

/// The dashboard over a store, to turn into a [`Router`] ([`Dashboard::router`]).
///
/// ```no_run
/// # async fn mount(store: std::sync::Arc<dyn hookflow_runtime::Store>) {
/// use hookflow_cli::dashboard::Dashboard;
/// let app = Dashboard::new(store).token("s3cret").router();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// axum::serve(listener, app).await.unwrap();
/// # }
/// ```
pub struct Dashboard {
    store: Arc<dyn Store>,
    db: String,
    base: String,
    token: Option<String>,
    register: Option<Register>,
    metrics: Option<PrometheusHandle>,
    page_size: usize,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("db", &self.db)
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("resumes", &self.register.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Dashboard {
    /// A read-only dashboard over `store`, served at the root of its router: it shows runs,
    /// and resumes or cancels none until given a [`Dashboard::token`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Dashboard {
            store,
            db: String::new(),
            base: String::new(),
            token: None,
            register: None,
            metrics: None,
            page_size: 50,
        }
    }

    /// Names the store in the page header: `db` as `--db` gave it, shown with any password
    /// replaced by `***` (never in clear).
    #[must_use]
    pub fn database(mut self, db: &str) -> Self {
        self.db = redact(db);
        self
    }

    /// Where the application mounts the router (`/admin/hookflow` for
    /// `Router::nest("/admin/hookflow", dashboard)`), for the links and forms of the pages.
    /// Default: the root.
    #[must_use]
    pub fn base(mut self, base: &str) -> Self {
        self.base = base.trim_end_matches('/').to_owned();
        self
    }

    /// Allows the actions (resume, cancel) to whoever logs in with `token`. An empty token
    /// allows nothing: the dashboard stays read-only.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Registers the workflows (with their hooks and services) that resume runs, as
    /// [`Cli::workflows`](crate::Cli::workflows) does. Without it, the dashboard says that
    /// it cannot resume and cancels only.
    #[must_use]
    pub fn workflows(
        mut self,
        register: impl Fn(EngineBuilder) -> EngineBuilder + Send + Sync + 'static,
    ) -> Self {
        self.register = Some(Arc::new(register));
        self
    }

    pub(crate) fn register(mut self, register: Option<Register>) -> Self {
        self.register = register;
        self
    }

    /// How many runs the runs page shows at a time (at least 1; default 50).
    #[must_use]
    pub fn page_size(mut self, runs: usize) -> Self {
        self.page_size = runs.max(1);
        self
    }

    /// Serves `handle`'s rendering at `/metrics` (Prometheus text format).
    #[must_use]
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The dashboard's routes, with its state.
    pub fn router(self) -> Router {
        let state = Arc::new(State {
            store: self.store,
            db: self.db,
            base: self.base,
            token: self.token,
            register: self.register,
            engine: OnceLock::new(),
            metrics: self.metrics,
            page_size: self.page_size,
            sessions: auth::Sessions::default(),
        });
        Router::new()
            .route("/", get(runs_page::runs))
            .route("/runs/{id}", get(run_page::run))
            .route("/runs/{id}/events", get(live::events))
            .route("/runs/{id}/resume", post(actions::resume))
            .route("/runs/{id}/cancel", post(actions::cancel))
            .route("/login", get(auth::login_form).post(auth::login))
            .route("/logout", post(auth::logout))
            .route("/assets/live.js", get(live::script))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .with_state(state)
    }
}

/// What the handlers share.
pub(crate) struct State {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) db: String,
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    pub(crate) register: Option<Register>,
    engine: OnceLock<Engine>,
    metrics: Option<PrometheusHandle>,
    pub(crate) page_size: usize,
    pub(crate) sessions: auth::Sessions,
}

pub(crate) type Shared = axum::extract::State<Arc<State>>;

impl State {
    /// The root of the dashboard, with a trailing slash.
    pub(crate) fn root(&self) -> String {
        format!("{}/", self.base)
    }

    /// The engine that resumes runs, built once; `None` without registered workflows.
    pub(crate) fn engine(&self) -> Option<&Engine> {
        let register = self.register.as_ref()?;
        Some(
            self.engine
                .get_or_init(|| register(Engine::builder().store(Arc::clone(&self.store))).build()),
        )
    }

    pub(crate) fn problem(&self, status: StatusCode, message: &str) -> Response {
        html::problem(status, &self.root(), &self.db, message)
    }
}

async fn metrics(axum::extract::State(state): Shared) -> Response {
    match &state.metrics {
        Some(handle) => html::secure(
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response(),
        ),
        None => state.problem(
            StatusCode::NOT_FOUND,
            "metrics are not enabled: give the dashboard a Prometheus handle (Dashboard::metrics)",
        ),
    }
}

async fn not_found(axum::extract::State(state): Shared) -> Response {
    state.problem(StatusCode::NOT_FOUND, "no such page")
}

/// Why [`serve`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address cannot be bound (in use, not this machine's, not allowed).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("the dashboard server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// Serves `router` on `addr` until the process stops, calling `ready` with the address
/// bound (port 0 picks a free one) once it listens.
///
/// # Errors
/// [`ServeError::Bind`] when the address cannot be bound, [`ServeError::Serve`] when
/// serving fails.
pub async fn serve(
    router: Router,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    ready(bound);
    axum::serve(listener, router)
        .await
        .map_err(ServeError::Serve)
}

/// The buckets of the histograms `/metrics` shows (run and step durations, in seconds).
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0,
];

/// Installs this process's Prometheus recorder (no listener of its own: the dashboard's
/// `/metrics` serves it), with [`DURATION_BUCKETS`] for the histograms, and turns on the
/// runtime's metrics (`hookflow::metrics::enable`), so that the runs this process runs (an
/// admin binary's resumes, or an application that mounts the dashboard) are counted.
///
/// # Errors
/// When a recorder is already installed (an application's own): mount the dashboard with
/// that recorder's handle instead.
pub fn install_prometheus() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(DURATION_BUCKETS)?
        .install_recorder()?;
    hookflow_runtime::metrics::enable();
    Ok(handle)
}
