#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use hookflow_runtime::*;

/// Turns an `async fn` into a workflow with typed hooks.
///
/// ```text
/// #[workflow(hooks(name: kind<Payload>, ...), name = "...", crate = path)]
/// async fn my_workflow(ctx: &WorkflowContext, input: Input) -> Result<Output, Error> { ... }
/// ```
///
/// The function stays as written. Beside it, the macro generates:
///
/// - a unit type named after the function in PascalCase (`checkout` -> `Checkout`) that
///   implements [`Workflow`] (`Input`, `Output`, `Error`, and `META`: the
///   name, the hooks in declaration order, the steps and hook firings seen in the body);
/// - one constant per hook, named in upper case (`validate` -> `Checkout::VALIDATE`), of type
///   [`HookPoint<Checkout, Kind>`](crate::HookPoint); fire it with
///   [`ctx.hook(Checkout::VALIDATE, payload)`](crate::WorkflowContext::hook);
/// - the built-in hook `Checkout::ON_COMPENSATION_FAILED` (`after<CompensationFailure>`);
/// - `Checkout::hooks(&mut hooks)`, returning a registrar `CheckoutHooks` with one method per
///   hook, which accepts only handlers of that hook's kind and payload, plus
///   `prepended()`, `configured()`, `appended()` (the slot of the next handler only),
///   `named("...")` and `timeout(duration)` (the name and time limit of the handler
///   registered just before) and `on_compensation_failed(handler)`;
/// - `Checkout::run(&engine, input)` and `Checkout::run_with(&engine, input, options)`.
///
/// # Options
///
/// - `hooks(...)`: the hook points, each `name: kind<Payload>`, where kind is
///   - `before<T>`: handlers `async fn(&HookContext, T) -> Result<T, E>` may change the data
///     or abort the run; firing returns `Result<T, HookError>`;
///   - `after<T>`: handlers `async fn(&HookContext, &T) -> Result<(), E>` observe; their
///     errors are recorded in the outcome; firing returns `()`;
///   - `after<I, O>`: as `after<T>`, with handlers
///     `async fn(&HookContext, &I, &O) -> Result<(), E>` that observe an input and a result;
///     fire it with `ctx.hook(Checkout::ORDER_CREATED, (&input, &result))`;
///   - `step<T>` or `step<T, R>`: handlers are `#[step]` fns taking `T` and returning `R`
///     (default `()`), compensated like any step; firing returns
///     `Result<Vec<R>, HookError>`, one result per handler.
/// - `name = "..."`: the workflow's name in the journal, the store and metadata (default: the
///   function's name).
/// - `version = N`: the workflow's version (default 1), recorded with each durable run; an
///   engine resumes only runs of versions it registered.
/// - `crate = path` (or `crate = "path"`): where the `hookflow` crate is, if you renamed the
///   dependency.
/// - `additional_data = Type`: the type of the runs' additional data (`DeserializeOwned`):
///   a run whose data is missing or not a `Type` is refused before it starts
///   ([`Rejection::AdditionalData`](crate::Rejection::AdditionalData)), and the body's
///   `ctx.additional_data()` returns a `Type` ([`TypedContext::additional_data`]).
///
/// The input and output are serde types (`Serialize + DeserializeOwned`), so that a store
/// can record a run and give an idempotent start its recorded output. `HOOKFLOW_MACROS_DEBUG=1`
/// prints the expansion at compile time.
///
/// # Example: hooks, `name` and `version`
///
/// ```
/// use hookflow::prelude::*;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error(transparent)]
/// struct ImportError(#[from] HookError);
///
/// #[step]
/// async fn create_products(_ctx: &StepContext, names: Vec<String>) -> Result<usize, ImportError> {
///     Ok(names.len())
/// }
///
/// #[workflow(name = "product-import", hooks(
///     clean: before<Vec<String>>,
///     imported: after<usize>,
/// ))]
/// async fn import_products(ctx: &WorkflowContext, names: Vec<String>) -> Result<usize, ImportError> {
///     let names = ctx.hook(ImportProducts::CLEAN, names).await?;
///     let count = create_products(ctx, names).await?;
///     ctx.hook(ImportProducts::IMPORTED, &count).await;
///     Ok(count)
/// }
///
/// async fn drop_blank(_ctx: &HookContext, names: Vec<String>) -> Result<Vec<String>, ImportError> {
///     Ok(names.into_iter().filter(|n| !n.trim().is_empty()).collect())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut hooks = Hooks::new();
/// ImportProducts::hooks(&mut hooks).clean(drop_blank);
/// let engine = Engine::builder().hooks(hooks).build();
///
/// let outcome = ImportProducts::run(&engine, vec!["mug".into(), " ".into()]).await;
/// assert_eq!(outcome.output(), Some(&1));
/// assert_eq!(ImportProducts::META.name(), "product-import");
/// assert_eq!(ImportProducts::META.steps().collect::<Vec<_>>(), ["create_products"]);
/// # }
/// ```
///
/// # Example: a `step` hook, whose handlers are steps with their own compensation
///
/// ```
/// use hookflow::prelude::*;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error(transparent)]
/// struct CatalogError(#[from] HookError);
///
/// #[workflow(version = 2, hooks(created: step<Vec<String>, usize>))]
/// async fn create_catalog(ctx: &WorkflowContext, names: Vec<String>) -> Result<usize, CatalogError> {
///     // One result per handler, in the order they ran.
///     let linked: Vec<usize> = ctx.hook(CreateCatalog::CREATED, names).await?;
///     Ok(linked.iter().sum())
/// }
///
/// /// A plugin's handler: links each product to a brand; undone by unlinking.
/// #[step(compensate = unlink_brands)]
/// async fn link_brands(_ctx: &StepContext, names: Vec<String>) -> Result<StepResponse<usize, Vec<String>>, CatalogError> {
///     Ok(StepResponse::new(names.len(), names))
/// }
///
/// async fn unlink_brands(_ctx: &StepContext, _names: Vec<String>) -> Result<(), CatalogError> {
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut hooks = Hooks::new();
/// CreateCatalog::hooks(&mut hooks).created(link_brands);
/// let engine = Engine::builder().hooks(hooks).build();
/// let outcome = CreateCatalog::run(&engine, vec!["mug".into(), "tee".into()]).await;
/// assert_eq!(outcome.output(), Some(&2));
/// assert_eq!(<CreateCatalog as Workflow>::VERSION, 2);
/// # }
/// ```
///
/// # Example: a renamed dependency
///
/// ```
/// extern crate hookflow as flow;
/// use flow::prelude::*;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("never")]
/// struct Never;
///
/// #[flow::step(crate = flow)]
/// async fn double(_ctx: &StepContext, n: u64) -> Result<u64, Never> { Ok(n * 2) }
///
/// #[flow::workflow(crate = flow)]
/// async fn doubling(ctx: &WorkflowContext, n: u64) -> Result<u64, Never> { double(ctx, n).await }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(Doubling::run(&Engine::new(), 21).await.output(), Some(&42));
/// # }
/// ```
pub use hookflow_macros::workflow;

/// Turns an `async fn` into a step: journaled, traced, panic-safe, with an optional
/// compensation.
///
/// ```text
/// #[step]
/// async fn name(ctx: &StepContext, inputs...) -> Result<Output, Error> { ... }
///
/// #[step(compensate = undo, name = "...", crate = path)]
/// async fn name(ctx: &StepContext, inputs...) -> Result<StepResponse<Output, Data>, Error> { ... }
/// async fn undo(ctx: &StepContext, data: Data) -> Result<(), Error2> { ... }
/// ```
///
/// The generated function keeps the step's name and inputs but takes the workflow's context
/// (`&WorkflowContext`): call it from a workflow body as `name(ctx, inputs...).await?` and get
/// `Output` (or the step's `Error`). It runs the body under the runtime: a journal event when
/// it starts and when it completes or fails, a tracing span `step`, and panic capture (a
/// panic fails the run with the step's name and the message). On success, the compensation is
/// pushed on the run's stack with `Data`; if the run fails later, `undo(ctx, data)` runs.
///
/// `Output` and `Data` must be `Serialize + DeserializeOwned + Send + 'static` (checked at
/// compile time), and `Error` must implement `Display`.
///
/// If `Error` also implements `Serialize + DeserializeOwned` (found at compile time, not
/// required), a run that records data (one with a store, or `record_data(true)`) journals a
/// failure with the error's value, and a resumed run gives the body that same value back
/// instead of running the step again. With an error type that is not serde, a resumed run
/// that finds a failure the body went on from is parked (`ReplayError::UnreplayableFailure`):
/// make the error type serde to let it replay handled failures. Either way, a step whose
/// failure reached the store never runs again.
///
/// # Options
///
/// - `compensate = path`: the step's undo, an `async fn(&StepContext, Data) -> Result<(), E>`
///   where `Data` is the second type of the step's `StepResponse<Output, Data>`. Without it,
///   the step returns its output directly (`Result<Output, Error>`).
/// - `name = "..."`: the step's name in the journal and traces (default: the function's).
/// - `retry(max = 3, backoff = "100ms", max_backoff = "30s", jitter = true, when = f)`: retries
///   a failed attempt up to `max` times with exponential backoff (each attempt gets clones of
///   the inputs, which must be `Clone`); `when` is an `fn(&Error) -> bool` saying which errors
///   are transient. `retry` alone means `max = 3, backoff = "100ms"`.
/// - `timeout = "5s"`: drops an attempt's future at the deadline; the attempt fails with the
///   step's error built `From<StepTimeout>`.
/// - `best_effort`: a failure is recorded (`Outcome::best_effort_failures`) and the workflow
///   goes on; the generated function returns `Option<Output>`. Not with `compensate`.
/// - `compensate_retry(max = 3, backoff = "1s", ...)`: retries a failing compensation.
/// - `crate = path`: where the `hookflow` crate is, if you renamed the dependency.
///
/// # Example: a compensation and a name
///
/// ```
/// use hookflow::prelude::*;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("payment provider: {0}")]
/// struct PaymentError(String);
///
/// #[step(compensate = refund, name = "capture-payment")]
/// async fn capture(_ctx: &StepContext, amount: u64) -> Result<StepResponse<String, u64>, PaymentError> {
///     Ok(StepResponse::new(format!("captured {amount}"), amount))
/// }
///
/// async fn refund(_ctx: &StepContext, amount: u64) -> Result<(), PaymentError> {
///     println!("refunded {amount}");
///     Ok(())
/// }
///
/// #[step]
/// async fn ship(_ctx: &StepContext) -> Result<(), PaymentError> {
///     Err(PaymentError("the carrier is down".into()))
/// }
///
/// #[workflow]
/// async fn pay_and_ship(ctx: &WorkflowContext, amount: u64) -> Result<String, PaymentError> {
///     let receipt = capture(ctx, amount).await?;
///     ship(ctx).await?;
///     Ok(receipt)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let outcome = PayAndShip::run(&Engine::new(), 42).await;
/// assert_eq!(outcome.status(), RunStatus::Compensated); // `refund(42)` ran
/// assert_eq!(outcome.failed_step(), Some("ship"));
/// # }
/// ```
///
/// # Example: `retry`, `timeout`, `best_effort` and `compensate_retry`
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use hookflow::prelude::*;
/// use hookflow::StepTimeout;
///
/// #[derive(Debug, thiserror::Error)]
/// enum PayError {
///     #[error("provider unavailable")]
///     Unavailable,
///     #[error(transparent)]
///     TimedOut(#[from] StepTimeout),
/// }
///
/// fn transient(err: &PayError) -> bool {
///     matches!(err, PayError::Unavailable)
/// }
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
///
/// /// Unavailable twice, then authorized.
/// #[step(
///     compensate = void,
///     retry(max = 3, backoff = "10ms", when = transient),
///     timeout = "2s",
///     compensate_retry(max = 2),
/// )]
/// async fn authorize(_ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PayError> {
///     if CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
///         return Err(PayError::Unavailable);
///     }
///     Ok(StepResponse::new(amount, amount))
/// }
///
/// async fn void(_ctx: &StepContext, _amount: u64) -> Result<(), PayError> {
///     Ok(())
/// }
///
/// /// The email server is down: the order goes on without the email.
/// #[step(best_effort)]
/// async fn email(_ctx: &StepContext, _amount: u64) -> Result<(), PayError> {
///     Err(PayError::Unavailable)
/// }
///
/// #[workflow]
/// async fn order(ctx: &WorkflowContext, amount: u64) -> Result<u64, PayError> {
///     let paid = authorize(ctx, amount).await?;
///     let emailed: Option<()> = email(ctx, paid).await;
///     assert!(emailed.is_none());
///     Ok(paid)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let outcome = Order::run(&Engine::new(), 30).await;
/// assert_eq!(outcome.output(), Some(&30));
/// assert_eq!(CALLS.load(Ordering::SeqCst), 3, "two retries");
/// assert_eq!(outcome.best_effort_failures()[0].step, "email");
/// # }
/// ```
pub use hookflow_macros::step;

/// Runs steps concurrently: `parallel!(step_a(ctx, x), step_b(ctx, y))?`.
///
/// ```
/// use hookflow::prelude::*;
///
/// #[step]
/// async fn reserve(_ctx: &StepContext, warehouse: String, qty: u32) -> Result<String, std::io::Error> {
///     Ok(format!("{warehouse}:{qty}"))
/// }
///
/// #[workflow]
/// async fn split_order(ctx: &WorkflowContext, qty: u32) -> Result<Vec<String>, std::io::Error> {
///     let (east, west) = hookflow::parallel!(
///         reserve(ctx, "east".into(), qty / 2),
///         reserve(ctx, "west".into(), qty - qty / 2),
///     )?;
///     Ok(vec![east, west])
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let outcome = SplitOrder::run(&Engine::new(), 5).await;
/// assert_eq!(outcome.output().unwrap(), &["east:2", "west:3"]);
/// # }
/// ```
#[doc(inline)]
pub use hookflow_runtime::parallel;

/// Everything a workflow module needs: `use hookflow::prelude::*;`.
pub mod prelude {
    pub use hookflow_macros::{step, workflow};
    pub use hookflow_runtime::{
        Actor, AdditionalDataError, Engine, HookContext, HookError, Hooks, MissingService, Origin,
        Outcome, Plugin, RunContext, RunError, RunOptions, RunStatus, StepContext, StepResponse,
        WaitError, Workflow, WorkflowContext,
    };
    pub use hookflow_runtime::{Transaction, TransactionError, TxContext};
    // What `on_compensation_failed` handlers receive, and where a failed run failed.
    pub use hookflow_runtime::{CompensationFailure, FailedAt};
}

#[doc(hidden)]
pub use hookflow_runtime::__private;
