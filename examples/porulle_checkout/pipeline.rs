//! porulle's checkout pipeline as a hookflow workflow, over one SQLite file that holds both
//! the runs and the shop's tables (`orders`, `order_lines`).
//!
//! - `validate` (`before<CheckoutData>`, in the body, before anything runs): the
//!   application's handler normalises the cart.
//! - `reserve_stock`: a step with a compensation (the stock goes back if a later step fails).
//! - `create_order`: a **transactional** step. It writes the order and its lines with the
//!   store's transaction and fires `before_create` from inside it: the minimum-amount
//!   handler runs in the same transaction (it writes its check to `order_audit`), and its
//!   error rolls the order back and aborts the run (the stock is released). The order, its
//!   lines and the journal record of the step commit together, exactly once.
//! - `order_placed` (`after<CheckoutData, Order>`): the webhook handler receives both the
//!   checkout's input and the order, and enqueues the webhook as a job (dispatched only if
//!   the run completes).

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{Job, StepResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The smallest order the shop takes, in cents.
pub const MINIMUM_CENTS: i64 = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub qty: i64,
    pub unit_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckoutData {
    pub customer: String,
    pub lines: Vec<Line>,
}

impl CheckoutData {
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.qty * l.unit_cents).sum()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub id: i64,
    pub customer: String,
    pub total_cents: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    #[error("{0}")]
    Refused(String),
}

#[step(compensate = release_stock)]
async fn reserve_stock(
    _ctx: &StepContext,
    data: CheckoutData,
) -> Result<StepResponse<CheckoutData, Vec<String>>, ShopError> {
    let skus = data.lines.iter().map(|l| l.sku.clone()).collect();
    println!("  reserve_stock: {} line(s)", data.lines.len());
    Ok(StepResponse::new(data, skus))
}

async fn release_stock(_ctx: &StepContext, skus: Vec<String>) -> Result<(), ShopError> {
    println!("  release_stock (undo): {}", skus.join(", "));
    Ok(())
}

/// The order and its lines, written with the step's transaction; `before_create` runs
/// inside it.
#[step(transaction)]
async fn create_order(ctx: &TxContext, data: CheckoutData) -> Result<Order, ShopError> {
    let total = data.total_cents();
    let order_id = ctx.sqlite(|db| {
        db.execute(
            "INSERT INTO orders (customer, total_cents, run_id) VALUES (?1, ?2, ?3)",
            (&data.customer, total, ctx.run_id().to_string()),
        )?;
        let order_id = db.last_insert_rowid();
        for line in &data.lines {
            db.execute(
                "INSERT INTO order_lines (order_id, sku, qty) VALUES (?1, ?2, ?3)",
                (order_id, &line.sku, line.qty),
            )?;
        }
        Ok(order_id)
    })?;
    let order = Order {
        id: order_id,
        customer: data.customer,
        total_cents: total,
    };
    // porulle's `beforeCreate`: inside the transaction.
    let order = ctx.hook(Checkout::BEFORE_CREATE, order).await?;
    println!("  create_order: order #{} written", order.id);
    Ok(order)
}

#[workflow(hooks(
    validate: before<CheckoutData>,
    before_create: before<Order>,
    order_placed: after<CheckoutData, Order>,
))]
pub async fn checkout(ctx: &WorkflowContext, data: CheckoutData) -> Result<Order, ShopError> {
    let data = ctx.hook(Checkout::VALIDATE, data).await?;
    let reserved = reserve_stock(ctx, data.clone()).await?;
    let order = create_order(ctx, reserved).await?;
    ctx.hook(Checkout::ORDER_PLACED, (&data, &order)).await;
    Ok(order)
}

/// The application's `validate` handler: drops empty lines.
async fn drop_empty_lines(
    _ctx: &HookContext,
    mut data: CheckoutData,
) -> Result<CheckoutData, ShopError> {
    data.lines.retain(|l| l.qty > 0);
    if data.lines.is_empty() {
        return Err(ShopError::Refused("the cart is empty".into()));
    }
    Ok(data)
}

/// porulle's minimum-amount check, inside `create_order`'s transaction: it records its
/// verdict with the transaction (rolled back with the order when it refuses).
async fn minimum_amount(ctx: &HookContext, order: Order) -> Result<Order, ShopError> {
    let ok = order.total_cents >= MINIMUM_CENTS;
    ctx.transaction()?.sqlite(|db| {
        db.execute(
            "INSERT INTO order_audit (order_id, check_name, passed) VALUES (?1, 'minimum', ?2)",
            (order.id, ok),
        )
    })?;
    if !ok {
        return Err(ShopError::Refused(format!(
            "the order total {} is under the minimum of {MINIMUM_CENTS} cents",
            order.total_cents
        )));
    }
    Ok(order)
}

/// The webhook handler: it gets the checkout's input and the order.
async fn order_webhook(
    ctx: &HookContext,
    data: &CheckoutData,
    order: &Order,
) -> Result<(), ShopError> {
    ctx.jobs()
        .enqueue(
            "webhook.order_placed",
            &json!({ "order": order.id, "customer": data.customer, "lines": data.lines.len() }),
        )
        .map_err(|e| ShopError::Refused(e.to_string()))?;
    Ok(())
}

/// The application's handlers.
pub fn hooks() -> Hooks {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(drop_empty_lines)
        .before_create(minimum_amount)
        .order_placed(order_webhook);
    hooks
}

/// The shop's tables, in the store's own file.
pub fn create_tables(path: &std::path::Path) -> rusqlite_tables::Result<()> {
    let db = rusqlite_tables::Connection::open(path)?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL,
             total_cents INTEGER NOT NULL, run_id TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS order_lines (order_id INTEGER NOT NULL, sku TEXT NOT NULL,
             qty INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS order_audit (order_id INTEGER NOT NULL,
             check_name TEXT NOT NULL, passed INTEGER NOT NULL);",
    )
}

use hookflow::store::sqlite::rusqlite as rusqlite_tables;

/// An engine over the SQLite file `path`, whose webhooks go to `webhooks`.
pub fn engine(path: &std::path::Path, webhooks: impl Fn(Job) + Send + Sync + 'static) -> Engine {
    let store = SqliteStore::open(path).expect("the example's database opens");
    Engine::builder()
        .store(store)
        .workflow::<Checkout>()
        .hooks(hooks())
        .jobs(webhooks)
        .build()
}

/// How many rows `table` has.
pub fn count(path: &std::path::Path, table: &str) -> i64 {
    rusqlite_tables::Connection::open(path)
        .and_then(|db| db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)))
        .unwrap_or(-1)
}
