//! The macro DSL's forms beyond free functions with owned inputs: `#[step]` on a service's
//! methods (compensated on the service, also after a resume), generic steps and workflows,
//! and borrowed step inputs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::store::MemoryStore;
use hookflow::{RunId, RunOptions, RunStatus, Store, StoredStatus};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error("card declined for {0}")]
    Declined(u64),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

/// A payment service, as a back end writes one: a client behind an `Arc`, cloned cheaply.
#[derive(Clone, Default)]
struct Payments {
    ledger: Arc<Ledger>,
}

#[derive(Default)]
struct Ledger {
    captured: AtomicU64,
    voided: AtomicU64,
    fees: AtomicU64,
    /// Holds `settle` until released, to stop a run there as a crash would.
    hang: std::sync::atomic::AtomicBool,
    hung: Notify,
}

/// What associated (service-less) compensations record.
static RELEASED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

impl Payments {
    /// A step method whose compensation is a method: it runs on (a clone of) the service.
    #[step(compensate = Self::void)]
    async fn capture(
        &self,
        _ctx: &StepContext,
        amount: u64,
    ) -> Result<StepResponse<u64, u64>, PayError> {
        self.ledger.captured.fetch_add(amount, Ordering::SeqCst);
        Ok(StepResponse::new(amount, amount))
    }

    async fn void(&self, _ctx: &StepContext, amount: u64) -> Result<(), PayError> {
        self.ledger.voided.fetch_add(amount, Ordering::SeqCst);
        Ok(())
    }

    /// A step method whose compensation is an associated function.
    #[step(compensate = Self::release)]
    async fn hold(
        &self,
        _ctx: &StepContext,
        order: u64,
    ) -> Result<StepResponse<u64, u64>, PayError> {
        Ok(StepResponse::new(order, order))
    }

    async fn release(_ctx: &StepContext, order: u64) -> Result<(), PayError> {
        RELEASED.lock().unwrap().push(order);
        Ok(())
    }

    /// A step method without compensation, retried.
    #[step(retry(max = 2, backoff = "1ms"))]
    async fn fee(&self, _ctx: &StepContext, amount: u64) -> Result<u64, PayError> {
        self.ledger.fees.fetch_add(1, Ordering::SeqCst);
        Ok(amount / 10)
    }

    #[step]
    async fn settle(&self, _ctx: &StepContext, amount: u64) -> Result<u64, PayError> {
        if self.ledger.hang.load(Ordering::SeqCst) {
            self.ledger.hung.notify_one();
            std::future::pending::<()>().await;
        }
        if amount > 1_000 {
            return Err(PayError::Declined(amount));
        }
        Ok(amount)
    }
}

#[workflow]
async fn pay_order(ctx: &WorkflowContext, order: (u64, u64)) -> Result<u64, PayError> {
    let (id, amount) = order;
    let payments = ctx.service::<Payments>()?;
    payments.hold(ctx, id).await?;
    let captured = payments.capture(ctx, amount).await?;
    let fee = payments.fee(ctx, captured).await?;
    payments.settle(ctx, captured + fee).await
}

fn engine(payments: &Payments, store: Option<&Arc<MemoryStore>>) -> Engine {
    // One worker id: the second engine is the first one's process restarted after a crash,
    // and takes back at once the runs the first held.
    let builder = Engine::builder()
        .worker_id("payments-worker")
        .service(payments.clone())
        .workflow::<PayOrder>();
    match store {
        Some(store) => builder.store(Arc::clone(store)).build(),
        None => builder.build(),
    }
}

fn released(order: u64) -> usize {
    RELEASED
        .lock()
        .unwrap()
        .iter()
        .filter(|o| **o == order)
        .count()
}

#[tokio::test]
async fn step_methods_run_on_the_service_and_a_failure_compensates_them() {
    let payments = Payments::default();
    let engine = engine(&payments, None);

    let paid = engine.run::<PayOrder>((1, 500)).await;
    assert_eq!(paid.status(), RunStatus::Completed);
    assert_eq!(paid.output().copied(), Some(550));
    assert_eq!(payments.ledger.captured.load(Ordering::SeqCst), 500);
    assert_eq!(payments.ledger.voided.load(Ordering::SeqCst), 0);
    assert_eq!(released(1), 0);

    let declined = engine.run::<PayOrder>((2, 2_000)).await;
    assert_eq!(declined.status(), RunStatus::Compensated);
    assert_eq!(
        payments.ledger.voided.load(Ordering::SeqCst),
        2_000,
        "the method compensation ran on the service"
    );
    assert_eq!(released(2), 1, "the associated compensation ran");
}

#[tokio::test]
async fn a_resumed_run_compensates_its_replayed_step_methods_on_the_new_service() {
    let store = Arc::new(MemoryStore::default());
    let before_crash = Payments::default();
    before_crash.ledger.hang.store(true, Ordering::SeqCst);
    let run_id = RunId::generate();
    let first = engine(&before_crash, Some(&store));
    let run = first.run_with::<PayOrder>((3, 3_000), RunOptions::new().run_id(run_id));
    tokio::select! {
        _ = run => panic!("the run should hang in settle"),
        () = before_crash.ledger.hung.notified() => {}
    }
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);

    // Another process: a new service, nothing captured there.
    let after_crash = Payments::default();
    let second = engine(&after_crash, Some(&store));
    assert_eq!(second.resume(run_id).await.unwrap(), RunStatus::Compensated);
    assert_eq!(
        after_crash.ledger.captured.load(Ordering::SeqCst),
        0,
        "the completed capture ran again on resume"
    );
    assert_eq!(
        after_crash.ledger.voided.load(Ordering::SeqCst),
        3_000,
        "the replayed capture was compensated on the resumed engine's service"
    );
    assert_eq!(released(3), 1);
}

// Generic steps and workflows.

trait Catalog: Send + Sync + 'static {
    const NAME: &'static str;
    fn products(&self) -> Vec<String>;
}

#[derive(Default)]
struct Shopify;
#[derive(Default)]
struct Magento;

impl Catalog for Shopify {
    const NAME: &'static str = "shopify";
    fn products(&self) -> Vec<String> {
        vec!["mug".into(), "tee".into()]
    }
}

impl Catalog for Magento {
    const NAME: &'static str = "magento";
    fn products(&self) -> Vec<String> {
        vec!["lamp".into()]
    }
}

/// A generic step, called with a value of its type parameter.
#[step]
async fn pull<C: Catalog>(_ctx: &StepContext, catalog: C) -> Result<Vec<String>, PayError> {
    Ok(catalog
        .products()
        .into_iter()
        .map(|p| format!("{}:{p}", C::NAME))
        .collect())
}

/// A generic step whose output is its type parameter.
#[step]
async fn decode<T>(_ctx: &StepContext, json: String) -> Result<T, PayError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    Ok(serde_json::from_str(&json).expect("the test's JSON"))
}

/// A step with borrowed inputs: the workflow lends them for the call.
#[step(retry(max = 1, backoff = "1ms"))]
async fn count_named(
    _ctx: &StepContext,
    products: &[String],
    prefix: &str,
) -> Result<u64, PayError> {
    Ok(products.iter().filter(|p| p.starts_with(prefix)).count() as u64)
}

#[workflow(hooks(imported: after<Vec<String>>))]
async fn import_catalog<C: Catalog + Default>(
    ctx: &WorkflowContext,
    limit: u64,
) -> Result<(u64, u64), PayError> {
    let products = pull(ctx, C::default()).await?;
    ctx.hook(ImportCatalog::<C>::IMPORTED, &products).await;
    let named = count_named(ctx, &products, C::NAME).await?;
    let limit: u64 = decode(ctx, limit.to_string()).await?;
    Ok((named, limit))
}

#[tokio::test]
async fn a_generic_workflow_runs_with_two_types_and_its_hooks_are_per_type() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut hooks = Hooks::new();
    let record = Arc::clone(&seen);
    ImportCatalog::<Shopify>::hooks(&mut hooks).imported(
        move |_ctx: &HookContext, products: &Vec<String>| {
            let record = Arc::clone(&record);
            let products = products.clone();
            async move {
                record.lock().unwrap().extend(products);
                Ok::<(), PayError>(())
            }
        },
    );
    let engine = Engine::builder().hooks(hooks).build();

    let shopify = ImportCatalog::<Shopify>::run(&engine, 7).await;
    assert_eq!(shopify.status(), RunStatus::Completed);
    assert_eq!(shopify.output().copied(), Some((2, 7)));
    let magento = ImportCatalog::<Magento>::run(&engine, 9).await;
    assert_eq!(magento.status(), RunStatus::Completed);
    assert_eq!(magento.output().copied(), Some((1, 9)));
    assert_eq!(
        *seen.lock().unwrap(),
        ["shopify:mug", "shopify:tee"],
        "the handler registered on ImportCatalog<Shopify> ran for Magento's run"
    );
}

#[tokio::test]
async fn a_generic_workflow_resumes_from_its_journal() {
    let store = Arc::new(MemoryStore::default());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<ImportCatalog<Magento>>()
        .build();
    let outcome = ImportCatalog::<Magento>::run(&engine, 3).await;
    assert_eq!(outcome.status(), RunStatus::Completed);
    let (record, journal) = store.load(outcome.run_id()).await.unwrap();
    assert_eq!(record.workflow, "import_catalog");
    let steps: Vec<String> = journal
        .iter()
        .filter_map(|e| match &e.kind {
            hookflow::EventKind::StepCompleted { step, .. } => Some(step.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(steps, ["pull", "count_named", "decode"]);
}

#[test]
#[should_panic(expected = "workflow `import_catalog` version 1 is registered twice")]
fn two_instantiations_of_a_generic_workflow_cannot_share_an_engine() {
    let _ = Engine::builder()
        .workflow::<ImportCatalog<Shopify>>()
        .workflow::<ImportCatalog<Magento>>();
}

#[test]
fn the_diagram_marks_step_methods_with_their_compensation() {
    let engine = engine(&Payments::default(), None);
    let diagram = engine.diagram::<PayOrder>();
    assert!(
        diagram.contains(r#"n0["hold<br/>undo: Self::release"]"#),
        "{diagram}"
    );
    assert!(
        diagram.contains(r#"n1["capture<br/>undo: Self::void"]"#),
        "{diagram}"
    );
    assert!(diagram.contains(r#"n2["fee"]"#), "{diagram}");
    assert!(diagram.contains("n1 -. undo .-> n0"), "{diagram}");
}
