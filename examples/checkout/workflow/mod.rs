//! The checkout workflow: its domain, steps, hooks and plugin. `main.rs` runs it; the test
//! `tests/it/checkout_example.rs` checks its saga at every failure point, and
//! `tests/it/crash_equivalence.rs` that it resumes from every crash point as if uninterrupted.
//!
//! The workflow loads and prices the cart, checks stock, asks the tax service (with a
//! timeout), lets hooks validate the order and adjust the payment, authorizes the payment
//! (retried while the provider is unavailable), creates the order, reserves the stock in two
//! warehouses in parallel and captures the payment; then it sends the confirmation email and
//! the fulfillment request, best effort. Each step that changes the world has a
//! compensation, so a failure undoes what was done, in reverse order. The steps that make
//! something (an authorization, an order, a reservation) pass their idempotency key to the
//! shop: run again after a crash, they get back what they made instead of making it twice.
//!
//! Hooks on it:
//! - `validate` (before): the application enforces a minimum order amount;
//! - `before_payment` (before): a gift-card plugin takes its balance off the amount to pay;
//! - `order_created` (after): the application enqueues a CRM sync job;
//! - `on_compensation_failed` (built in): the application flags the order for a human.

#![allow(dead_code)] // Each user of this module uses part of it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hookflow::prelude::*;
use hookflow::{CompensationFailure, StepTimeout};
use serde::{Deserialize, Serialize};
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Domain types

/// Money in cents.
pub type Cents = u64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineItem {
    sku: String,
    quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricedLine {
    sku: String,
    quantity: u32,
    unit_price: Cents,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cart {
    id: String,
    email: String,
    lines: Vec<LineItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricedCart {
    id: String,
    email: String,
    lines: Vec<PricedLine>,
    total: Cents,
}

/// What the `validate` hook sees and may change (journaled: a resumed run gets back what each
/// handler returned).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckoutData {
    cart: PricedCart,
}

/// What the `before_payment` hook sees and may change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentRequest {
    cart_id: String,
    amount: Cents,
    gift_card_applied: Cents,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Authorization {
    id: String,
    amount: Cents,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub cart_id: String,
    pub email: String,
    pub lines: Vec<PricedLine>,
    pub total: Cents,
    pub tax: Cents,
    pub charged: Cents,
}

/// The order id, left in the run's bag for the `on_compensation_failed` handler.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderId(pub String);

/// The workflow's input.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckoutInput {
    pub cart_id: String,
}

/// Additional data a storefront may send with the checkout request.
#[derive(Debug, Deserialize)]
pub struct CheckoutExtras {
    gift_card: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("cart {0} not found")]
    CartNotFound(String),
    #[error("cart {0} is empty")]
    EmptyCart(String),
    #[error("unknown product {0}")]
    UnknownProduct(String),
    #[error("only {available} of {sku} in stock, {wanted} wanted")]
    OutOfStock {
        sku: String,
        available: u32,
        wanted: u32,
    },
    #[error("order total {} is below the minimum of {}", money(*total), money(*minimum))]
    BelowMinimum { total: Cents, minimum: Cents },
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    #[error("payment provider unavailable")]
    ProviderUnavailable,
    #[error("warehouse unavailable: {0}")]
    WarehouseDown(String),
    #[error(transparent)]
    TimedOut(#[from] StepTimeout),
    #[error("mail server refused the message to {0}")]
    MailRefused(String),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] MissingService),
}

// ---------------------------------------------------------------------------------------
// A toy shop: the systems the steps talk to (catalog, stock, payment provider, orders).

#[derive(Debug, Default)]
pub struct Shop {
    state: Mutex<ShopState>,
}

#[derive(Debug, Default)]
pub struct ShopState {
    carts: BTreeMap<String, Cart>,
    prices: BTreeMap<String, Cents>,
    pub stock: BTreeMap<String, u32>,
    reservations: BTreeMap<String, Vec<LineItem>>,
    pub payments: BTreeMap<String, String>,
    pub orders: BTreeMap<String, String>,
    gift_cards: BTreeMap<String, Cents>,
    /// Carts whose payment capture the provider declines.
    pub decline_capture: Vec<String>,
    /// A warehouse whose API is down when releasing stock.
    pub warehouse_down_on_release: Option<String>,
    /// How many authorization attempts the payment provider refuses as unavailable.
    pub provider_unavailable_for: u32,
    /// Seconds the tax service takes to answer.
    pub tax_service_delay_secs: u64,
    /// Whether the mail server refuses messages.
    pub mail_down: bool,
    /// Stock per warehouse, for the parallel reservations.
    pub warehouse_stock: BTreeMap<(String, String), u32>,
    pub emails: Vec<String>,
    pub fulfillment_requests: Vec<String>,
    next_id: u32,
    /// The id each call made, by the call's idempotency key.
    made: BTreeMap<String, String>,
}

impl ShopState {
    /// What the call with idempotency key `key` made, if it made something: a step that runs
    /// again after a crash (its completion was not recorded) finds what it made the first
    /// time, and does not make it twice.
    fn made_by(&self, key: &str) -> Option<String> {
        self.made.get(key).cloned()
    }

    /// A new id, for what the call with idempotency key `key` makes.
    fn new_id(&mut self, prefix: &str, key: String) -> String {
        self.next_id += 1;
        let id = format!("{prefix}_{}", self.next_id);
        self.made.insert(key, id.clone());
        id
    }
}

impl Shop {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ShopState> {
        self.state.lock().expect("shop lock")
    }
}

// ---------------------------------------------------------------------------------------
// Steps (in steps.rs)

mod steps;
use steps::*;

// ---------------------------------------------------------------------------------------
// The workflow

#[workflow(hooks(
    validate: before<CheckoutData>,
    before_payment: before<PaymentRequest>,
    order_created: after<Order>,
))]
pub async fn checkout(ctx: &WorkflowContext, input: CheckoutInput) -> Result<Order, CheckoutError> {
    let cart = load_cart(ctx, input.cart_id).await?;
    let priced = price_cart(ctx, cart).await?;
    check_inventory(ctx, priced.lines.clone()).await?;
    let tax = calculate_tax(ctx, priced.clone()).await?;

    let data = ctx
        .hook(Checkout::VALIDATE, CheckoutData { cart: priced })
        .await?;
    let request = PaymentRequest {
        cart_id: data.cart.id.clone(),
        amount: data.cart.total + tax,
        gift_card_applied: 0,
    };
    let request = ctx.hook(Checkout::BEFORE_PAYMENT, request).await?;

    let shop = ctx.service::<Shop>()?;
    let auth = shop.authorize_payment(ctx, request).await?;
    let order = create_order(ctx, data.cart, tax, auth.clone()).await?;
    ctx.bag().insert(OrderId(order.id.clone()));
    let (east, west) = split_by_warehouse(&order.lines);
    hookflow::parallel!(
        reserve_inventory(ctx, "east".into(), east),
        reserve_inventory(ctx, "west".into(), west),
    )?;
    shop.capture_payment(ctx, auth, order.cart_id.clone())
        .await?;

    send_confirmation_email(ctx, order.clone()).await;
    request_fulfillment(ctx, order.clone()).await;
    ctx.hook(Checkout::ORDER_CREATED, &order).await;
    Ok(order)
}

// ---------------------------------------------------------------------------------------
// The application's hook handlers

pub const MINIMUM_ORDER: Cents = 10_00;

/// `validate`: refuses orders below the minimum amount.
async fn validate_minimum_amount(
    _ctx: &HookContext,
    data: CheckoutData,
) -> Result<CheckoutData, CheckoutError> {
    if data.cart.total < MINIMUM_ORDER {
        return Err(CheckoutError::BelowMinimum {
            total: data.cart.total,
            minimum: MINIMUM_ORDER,
        });
    }
    Ok(data)
}

/// `order_created`: enqueues a CRM sync (dispatched only if the run completes).
async fn sync_to_crm(ctx: &HookContext, order: &Order) -> Result<(), hookflow::RecordError> {
    ctx.jobs().enqueue(
        "sync_order_to_crm",
        &json!({ "order": order.id, "customer": order.email }),
    )
}

/// `on_compensation_failed`: the undo was incomplete, so a human must look at the order.
async fn flag_order_for_support(
    ctx: &HookContext,
    failure: &CompensationFailure,
) -> Result<(), MissingService> {
    let Some(OrderId(order_id)) = ctx.bag().get::<OrderId>() else {
        return Ok(());
    };
    let problems: Vec<String> = failure
        .failed
        .iter()
        .map(|f| format!("{}: {}", f.step, f.error))
        .collect();
    ctx.service::<Shop>()?.lock().orders.insert(
        order_id,
        format!("cancelled, NEEDS ATTENTION ({})", problems.join("; ")),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A plugin: gift cards

/// Registers its handlers on any workflow it extends; here, checkout's `before_payment`.
pub struct GiftCardPlugin;

impl Plugin for GiftCardPlugin {
    fn name(&self) -> &str {
        "gift-cards"
    }

    fn register(&self, hooks: &mut Hooks) {
        Checkout::hooks(hooks).before_payment(apply_gift_card);
    }
}

/// `before_payment`: takes the gift card's balance (from the request's additional data)
/// off the amount to pay.
async fn apply_gift_card(
    ctx: &HookContext,
    mut request: PaymentRequest,
) -> Result<PaymentRequest, CheckoutError> {
    let Ok(CheckoutExtras {
        gift_card: Some(code),
    }) = ctx.additional_data::<CheckoutExtras>()
    else {
        return Ok(request);
    };
    let balance = ctx
        .service::<Shop>()?
        .lock()
        .gift_cards
        .get(&code)
        .copied()
        .unwrap_or(0);
    let applied = balance.min(request.amount);
    request.amount -= applied;
    request.gift_card_applied += applied;
    Ok(request)
}

// ---------------------------------------------------------------------------------------
// Wiring

pub fn money(cents: Cents) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// The application's hooks and the gift-card plugin.
pub fn hooks() -> Hooks {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(validate_minimum_amount)
        .order_created(sync_to_crm)
        .on_compensation_failed(flag_order_for_support);
    hooks.plugin(GiftCardPlugin);
    hooks
}

/// A shop with a catalog, stock in two warehouses, a gift card and four carts:
/// `cart_ok`, `cart_declined` (capture refused), `cart_small` (below the minimum) and
/// `cart_stuck` (capture refused).
pub fn shop() -> Shop {
    let mut state = ShopState::default();
    state.prices.insert("tshirt".into(), 25_00);
    state.prices.insert("mug".into(), 12_00);
    state.prices.insert("sticker".into(), 2_50);
    state.stock.insert("tshirt".into(), 10);
    state.stock.insert("mug".into(), 5);
    state.stock.insert("sticker".into(), 100);
    for (warehouse, sku, qty) in [
        ("east", "tshirt", 10),
        ("west", "mug", 5),
        ("west", "sticker", 100),
    ] {
        state
            .warehouse_stock
            .insert((warehouse.into(), sku.into()), qty);
    }
    state.gift_cards.insert("GIFT-10".into(), 10_00);
    let cart = |id: &str, lines: &[(&str, u32)]| Cart {
        id: id.into(),
        email: format!("{id}@example.com"),
        lines: lines
            .iter()
            .map(|(sku, quantity)| LineItem {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
    };
    for c in [
        cart("cart_ok", &[("tshirt", 2), ("mug", 1)]),
        cart("cart_declined", &[("tshirt", 1), ("mug", 2)]),
        cart("cart_small", &[("sticker", 2)]),
        cart("cart_stuck", &[("mug", 1)]),
    ] {
        state.carts.insert(c.id.clone(), c);
    }
    state.decline_capture = vec!["cart_declined".into(), "cart_stuck".into()];
    Shop {
        state: Mutex::new(state),
    }
}
