//! Step hooks (`name: step<Payload, R>`): each handler is a `#[step]` with its own
//! compensation. The workflow gets one `R` per handler, in handler order; when a later step
//! fails, the handlers are compensated like ordinary steps, in reverse order of completion.

use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::{EventKind, MissingService, RunError, Slot};
use serde::{Deserialize, Serialize};

/// The catalog's side effects, in order.
#[derive(Clone, Default)]
struct Catalog {
    log: Arc<Mutex<Vec<String>>>,
    /// The operations that fail.
    failing: Vec<&'static str>,
}

impl Catalog {
    fn failing(ops: &[&'static str]) -> Self {
        Catalog {
            failing: ops.to_vec(),
            ..Catalog::default()
        }
    }
    fn record(&self, op: &'static str, detail: impl std::fmt::Display) -> Result<(), CatalogError> {
        if self.failing.contains(&op) {
            return Err(CatalogError::Down(op));
        }
        self.log.lock().unwrap().push(format!("{op} {detail}"));
        Ok(())
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[derive(Debug, thiserror::Error)]
enum CatalogError {
    #[error("{0} is down")]
    Down(&'static str),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    MissingService(#[from] MissingService),
}

/// The step hook's payload: the products just created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProductsCreated {
    ids: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct NewProducts {
    titles: Vec<String>,
    price_cents: u64,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Created {
    ids: Vec<String>,
    /// What the `products_created` handlers returned, in handler order.
    links: Vec<String>,
}

// -- ordinary steps ---------------------------------------------------------------------------

#[step(compensate = delete_products)]
async fn insert_products(
    ctx: &StepContext,
    titles: Vec<String>,
) -> Result<StepResponse<Vec<String>, Vec<String>>, CatalogError> {
    let ids: Vec<String> = (1..=titles.len()).map(|i| format!("prod_{i}")).collect();
    ctx.service::<Catalog>()?.record("insert", ids.join(","))?;
    Ok(StepResponse::new(ids.clone(), ids))
}

async fn delete_products(ctx: &StepContext, ids: Vec<String>) -> Result<(), CatalogError> {
    ctx.service::<Catalog>()?.record("delete", ids.join(","))
}

#[step(compensate = clear_prices)]
async fn set_prices(
    ctx: &StepContext,
    ids: Vec<String>,
    price_cents: u64,
) -> Result<StepResponse<(), (Vec<String>, u64)>, CatalogError> {
    ctx.service::<Catalog>()?
        .record("price", format!("{} at {price_cents}", ids.join(",")))?;
    Ok(StepResponse::new((), (ids, price_cents)))
}

async fn clear_prices(
    ctx: &StepContext,
    (ids, price_cents): (Vec<String>, u64),
) -> Result<(), CatalogError> {
    ctx.service::<Catalog>()?
        .record("unprice", format!("{} at {price_cents}", ids.join(",")))
}

#[step]
async fn publish(ctx: &StepContext, ids: Vec<String>) -> Result<(), CatalogError> {
    ctx.service::<Catalog>()?.record("publish", ids.join(","))
}

// -- step-hook handlers -----------------------------------------------------------------------

/// Links the products to the default sales channel; undo data: the channel and the ids.
#[step(compensate = unlink_sales_channel)]
async fn link_sales_channel(
    ctx: &StepContext,
    created: ProductsCreated,
) -> Result<StepResponse<String, (String, Vec<String>)>, CatalogError> {
    let channel = "sc_web".to_owned();
    ctx.service::<Catalog>()?
        .record("link", format!("{} to {channel}", created.ids.join(",")))?;
    let summary = format!("{channel}: {} products", created.ids.len());
    Ok(StepResponse::new(summary, (channel, created.ids)))
}

async fn unlink_sales_channel(
    ctx: &StepContext,
    (channel, ids): (String, Vec<String>),
) -> Result<(), CatalogError> {
    ctx.service::<Catalog>()?
        .record("unlink", format!("{} from {channel}", ids.join(",")))
}

/// Indexes the products for search; undo data: the search documents.
#[step(compensate = remove_from_index)]
async fn index_for_search(
    ctx: &StepContext,
    created: ProductsCreated,
) -> Result<StepResponse<String, Vec<String>>, CatalogError> {
    let docs: Vec<String> = created.ids.iter().map(|id| format!("doc_{id}")).collect();
    ctx.service::<Catalog>()?.record("index", docs.join(","))?;
    Ok(StepResponse::new(
        format!("search: {} documents", docs.len()),
        docs,
    ))
}

async fn remove_from_index(ctx: &StepContext, docs: Vec<String>) -> Result<(), CatalogError> {
    ctx.service::<Catalog>()?.record("unindex", docs.join(","))
}

/// A handler with nothing to undo.
#[step]
async fn count_products(
    _ctx: &StepContext,
    created: ProductsCreated,
) -> Result<String, CatalogError> {
    Ok(format!("count: {}", created.ids.len()))
}

// -- the workflow -----------------------------------------------------------------------------

#[workflow(hooks(products_created: step<ProductsCreated, String>))]
async fn create_products(
    ctx: &WorkflowContext,
    input: NewProducts,
) -> Result<Created, CatalogError> {
    let ids = insert_products(ctx, input.titles).await?;
    let links = ctx
        .hook(
            CreateProducts::PRODUCTS_CREATED,
            ProductsCreated { ids: ids.clone() },
        )
        .await?;
    set_prices(ctx, ids.clone(), input.price_cents).await?;
    publish(ctx, ids.clone()).await?;
    Ok(Created { ids, links })
}

fn input() -> NewProducts {
    NewProducts {
        titles: vec!["Mug".into(), "Tee".into()],
        price_cents: 1500,
    }
}

fn engine(catalog: &Catalog) -> Engine {
    let mut hooks = Hooks::new();
    CreateProducts::hooks(&mut hooks)
        .products_created(link_sales_channel)
        .products_created(index_for_search);
    Engine::builder()
        .hooks(hooks)
        .service(catalog.clone())
        .build()
}

#[tokio::test]
async fn the_workflow_reads_what_each_handler_returned_in_handler_order() {
    let catalog = Catalog::default();
    let outcome = engine(&catalog).run::<CreateProducts>(input()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        outcome.output(),
        Some(&Created {
            ids: vec!["prod_1".into(), "prod_2".into()],
            links: vec!["sc_web: 2 products".into(), "search: 2 documents".into()],
        })
    );
    assert_eq!(
        catalog.log(),
        [
            "insert prod_1,prod_2",
            "link prod_1,prod_2 to sc_web",
            "index doc_prod_1,doc_prod_2",
            "price prod_1,prod_2 at 1500",
            "publish prod_1,prod_2",
        ]
    );
}

#[tokio::test]
async fn handlers_are_compensated_with_the_steps_in_reverse_order_when_a_later_step_fails() {
    let catalog = Catalog::failing(&["publish"]);
    let outcome = engine(&catalog).run::<CreateProducts>(input()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), Some("publish"));
    assert!(matches!(
        outcome.error(),
        Some(RunError::Failed(CatalogError::Down("publish")))
    ));
    // Completion order: insert, link, index, price. Undo order: its reverse, each with its data.
    assert_eq!(
        catalog.log(),
        [
            "insert prod_1,prod_2",
            "link prod_1,prod_2 to sc_web",
            "index doc_prod_1,doc_prod_2",
            "price prod_1,prod_2 at 1500",
            "unprice prod_1,prod_2 at 1500",
            "unindex doc_prod_1,doc_prod_2",
            "unlink prod_1,prod_2 from sc_web",
            "delete prod_1,prod_2",
        ]
    );
}

#[tokio::test]
async fn a_failing_handler_aborts_the_run_and_is_not_compensated_itself() {
    let catalog = Catalog::failing(&["index"]);
    let outcome = engine(&catalog).run::<CreateProducts>(input()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    // The handler is a step: its failure is a step failure...
    assert_eq!(outcome.failed_step(), Some("index_for_search"));
    // ...reported to the workflow as a HookError naming the hook and the handler.
    let Some(RunError::Failed(CatalogError::Hook(error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    assert_eq!(error.workflow(), "create_products");
    assert_eq!(error.hook(), "products_created");
    assert_eq!(error.slot(), Slot::Configured);
    assert_eq!(error.handler(), "index_for_search");
    assert!(!error.is_panic());
    assert!(matches!(
        error.source_error().downcast_ref::<CatalogError>(),
        Some(CatalogError::Down("index"))
    ));
    // The first handler and the step before the hook are undone; the failed one is not, and
    // nothing after the hook ran.
    assert_eq!(
        catalog.log(),
        [
            "insert prod_1,prod_2",
            "link prod_1,prod_2 to sc_web",
            "unlink prod_1,prod_2 from sc_web",
            "delete prod_1,prod_2",
        ]
    );
}

#[tokio::test]
async fn a_handler_without_compensation_contributes_its_result_and_nothing_to_undo() {
    let catalog = Catalog::failing(&["publish"]);
    let mut hooks = Hooks::new();
    CreateProducts::hooks(&mut hooks)
        .products_created(count_products)
        .products_created(link_sales_channel);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(catalog.clone())
        .build();

    let outcome = engine.run::<CreateProducts>(input()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    let undone: Vec<&str> = outcome
        .journal()
        .kinds()
        .filter_map(|k| match k {
            EventKind::CompensationStarted { step, .. } => Some(step.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(
        undone,
        ["set_prices", "link_sales_channel", "insert_products"]
    );

    // Same hooks, no failure: both results, in registration order.
    let catalog = Catalog::default();
    let mut hooks = Hooks::new();
    CreateProducts::hooks(&mut hooks)
        .products_created(count_products)
        .products_created(link_sales_channel);
    let engine = Engine::builder().hooks(hooks).service(catalog).build();
    let outcome = engine.run::<CreateProducts>(input()).await;
    assert_eq!(
        outcome.output().map(|c| c.links.clone()),
        Some(vec!["count: 2".to_owned(), "sc_web: 2 products".to_owned()])
    );
}

#[tokio::test]
async fn a_step_hook_without_handlers_returns_no_results_and_journals_nothing() {
    let catalog = Catalog::default();
    let engine = Engine::builder().service(catalog.clone()).build();

    let outcome = engine.run::<CreateProducts>(input()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(outcome.output().map(|c| c.links.len()), Some(0));
    assert!(
        !outcome
            .journal()
            .kinds()
            .any(|k| matches!(k, EventKind::HookFired { .. })),
        "a hook with no handler records nothing"
    );
}

#[tokio::test]
async fn handlers_take_step_positions_in_the_order_they_run() {
    let catalog = Catalog::default();
    let outcome = engine(&catalog).run::<CreateProducts>(input()).await;

    let started: Vec<(&str, u32)> = outcome
        .journal()
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepStarted { step, position, .. } => Some((step.as_ref(), *position)),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        [
            ("insert_products", 0),
            ("link_sales_channel", 1),
            ("index_for_search", 2),
            ("set_prices", 3),
            ("publish", 4),
        ]
    );
}
