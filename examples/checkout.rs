//! A commerce checkout written with hookflow.
//!
//! The workflow loads and prices the cart, checks stock, lets hooks validate the order and
//! adjust the payment, authorizes the payment, creates the order, reserves the stock and
//! captures the payment. Each step that changes the world has a compensation, so a failure
//! undoes what was done, in reverse order.
//!
//! Hooks on it:
//! - `validate` (before): the application enforces a minimum order amount;
//! - `before_payment` (before): a gift-card plugin takes its balance off the amount to pay;
//! - `order_created` (after): the application enqueues the confirmation email;
//! - `on_compensation_failed` (built in): the application flags the order for a human.
//!
//! Run it with `cargo run --example checkout`: four runs, each printed as a trace.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hookflow::prelude::*;
use hookflow::{CompensationFailure, Job, MissingService};
use serde::{Deserialize, Serialize};
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Domain types

/// Money in cents.
type Cents = u64;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LineItem {
    sku: String,
    quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PricedLine {
    sku: String,
    quantity: u32,
    unit_price: Cents,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cart {
    id: String,
    email: String,
    lines: Vec<LineItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PricedCart {
    id: String,
    email: String,
    lines: Vec<PricedLine>,
    total: Cents,
}

/// What the `validate` hook sees and may change.
#[derive(Debug, Clone)]
struct CheckoutData {
    cart: PricedCart,
}

/// What the `before_payment` hook sees and may change.
#[derive(Debug, Clone)]
struct PaymentRequest {
    cart_id: String,
    amount: Cents,
    gift_card_applied: Cents,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Authorization {
    id: String,
    amount: Cents,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: String,
    cart_id: String,
    email: String,
    lines: Vec<PricedLine>,
    total: Cents,
    charged: Cents,
}

/// The order id, left in the run's bag for the `on_compensation_failed` handler.
#[derive(Debug, Clone)]
struct OrderId(String);

/// The workflow's input.
#[derive(Debug, Clone)]
struct CheckoutInput {
    cart_id: String,
}

/// Additional data a storefront may send with the checkout request.
#[derive(Debug, Deserialize)]
struct CheckoutExtras {
    gift_card: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum CheckoutError {
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
    #[error("warehouse unavailable: {0}")]
    WarehouseDown(String),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] MissingService),
}

// ---------------------------------------------------------------------------------------
// A toy shop: the systems the steps talk to (catalog, stock, payment provider, orders).

#[derive(Debug, Default)]
struct Shop {
    state: Mutex<ShopState>,
}

#[derive(Debug, Default)]
struct ShopState {
    carts: BTreeMap<String, Cart>,
    prices: BTreeMap<String, Cents>,
    stock: BTreeMap<String, u32>,
    reservations: BTreeMap<String, Vec<LineItem>>,
    payments: BTreeMap<String, String>,
    orders: BTreeMap<String, String>,
    gift_cards: BTreeMap<String, Cents>,
    /// Carts whose payment capture the provider declines.
    decline_capture: Vec<String>,
    /// Whether the warehouse API is down when releasing stock.
    warehouse_down_on_release: bool,
    next_id: u32,
}

impl ShopState {
    fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{}", self.next_id)
    }
}

impl Shop {
    fn lock(&self) -> std::sync::MutexGuard<'_, ShopState> {
        self.state.lock().expect("shop lock")
    }
}

// ---------------------------------------------------------------------------------------
// Steps

/// Validates the cart: it exists and is not empty.
#[step]
async fn load_cart(ctx: &StepContext, cart_id: String) -> Result<Cart, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let cart = shop
        .lock()
        .carts
        .get(&cart_id)
        .cloned()
        .ok_or(CheckoutError::CartNotFound(cart_id))?;
    if cart.lines.is_empty() {
        return Err(CheckoutError::EmptyCart(cart.id));
    }
    Ok(cart)
}

/// Prices each line from the catalog.
#[step]
async fn price_cart(ctx: &StepContext, cart: Cart) -> Result<PricedCart, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let state = shop.lock();
    let lines = cart
        .lines
        .iter()
        .map(|line| {
            let unit_price = *state
                .prices
                .get(&line.sku)
                .ok_or_else(|| CheckoutError::UnknownProduct(line.sku.clone()))?;
            Ok(PricedLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price,
            })
        })
        .collect::<Result<Vec<_>, CheckoutError>>()?;
    let total = lines
        .iter()
        .map(|l| l.unit_price * Cents::from(l.quantity))
        .sum();
    Ok(PricedCart {
        id: cart.id,
        email: cart.email,
        lines,
        total,
    })
}

/// Checks that every line is in stock (nothing is held yet).
#[step]
async fn check_inventory(ctx: &StepContext, lines: Vec<PricedLine>) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let state = shop.lock();
    for line in &lines {
        let available = state.stock.get(&line.sku).copied().unwrap_or(0);
        if available < line.quantity {
            return Err(CheckoutError::OutOfStock {
                sku: line.sku.clone(),
                available,
                wanted: line.quantity,
            });
        }
    }
    Ok(())
}

/// Authorizes the payment; undone by voiding the authorization.
#[step(compensate = void_authorization)]
async fn authorize_payment(
    ctx: &StepContext,
    request: PaymentRequest,
) -> Result<StepResponse<Authorization, String>, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    let id = state.next_id("auth");
    state.payments.insert(
        id.clone(),
        format!(
            "authorized {} for {}",
            money(request.amount),
            request.cart_id
        ),
    );
    let auth = Authorization {
        id: id.clone(),
        amount: request.amount,
    };
    Ok(StepResponse::new(auth, id))
}

async fn void_authorization(ctx: &StepContext, auth_id: String) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    if let Some(payment) = shop.lock().payments.get_mut(&auth_id) {
        *payment = format!("voided ({payment})");
    }
    Ok(())
}

/// Creates the order; undone by cancelling it.
#[step(compensate = cancel_order)]
async fn create_order(
    ctx: &StepContext,
    cart: PricedCart,
    auth: Authorization,
) -> Result<StepResponse<Order, String>, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    let id = state.next_id("order");
    state.orders.insert(id.clone(), "placed".to_owned());
    let order = Order {
        id: id.clone(),
        cart_id: cart.id,
        email: cart.email,
        lines: cart.lines,
        total: cart.total,
        charged: auth.amount,
    };
    Ok(StepResponse::new(order, id))
}

async fn cancel_order(ctx: &StepContext, order_id: String) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    shop.lock().orders.insert(order_id, "cancelled".to_owned());
    Ok(())
}

/// The data `release_inventory` needs: which reservation, and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reservation {
    id: String,
    lines: Vec<LineItem>,
}

/// Takes the ordered quantities out of stock; undone by putting them back.
#[step(compensate = release_inventory)]
async fn reserve_inventory(
    ctx: &StepContext,
    lines: Vec<PricedLine>,
) -> Result<StepResponse<String, Reservation>, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    let id = state.next_id("res");
    let held: Vec<LineItem> = lines
        .iter()
        .map(|l| LineItem {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    for line in &held {
        *state.stock.entry(line.sku.clone()).or_default() -= line.quantity;
    }
    state.reservations.insert(id.clone(), held.clone());
    Ok(StepResponse::new(
        id.clone(),
        Reservation { id, lines: held },
    ))
}

async fn release_inventory(
    ctx: &StepContext,
    reservation: Reservation,
) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    if state.warehouse_down_on_release {
        return Err(CheckoutError::WarehouseDown(format!(
            "could not release {}",
            reservation.id
        )));
    }
    for line in &reservation.lines {
        *state.stock.entry(line.sku.clone()).or_default() += line.quantity;
    }
    state.reservations.remove(&reservation.id);
    Ok(())
}

/// Captures the authorized payment; undone by refunding it.
#[step(compensate = refund_payment)]
async fn capture_payment(
    ctx: &StepContext,
    auth: Authorization,
    cart_id: String,
) -> Result<StepResponse<(), String>, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    if state.decline_capture.contains(&cart_id) {
        return Err(CheckoutError::PaymentDeclined(format!(
            "capture of {} refused by the card issuer",
            auth.id
        )));
    }
    state
        .payments
        .insert(auth.id.clone(), format!("captured {}", money(auth.amount)));
    Ok(StepResponse::new((), auth.id))
}

async fn refund_payment(ctx: &StepContext, auth_id: String) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    if let Some(payment) = shop.lock().payments.get_mut(&auth_id) {
        *payment = format!("refunded ({payment})");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The workflow

#[workflow(hooks(
    validate: before<CheckoutData>,
    before_payment: before<PaymentRequest>,
    order_created: after<Order>,
))]
async fn checkout(ctx: &WorkflowContext, input: CheckoutInput) -> Result<Order, CheckoutError> {
    let cart = load_cart(ctx, input.cart_id).await?;
    let priced = price_cart(ctx, cart).await?;
    check_inventory(ctx, priced.lines.clone()).await?;

    let data = ctx
        .hook(Checkout::VALIDATE, CheckoutData { cart: priced })
        .await?;
    let request = PaymentRequest {
        cart_id: data.cart.id.clone(),
        amount: data.cart.total,
        gift_card_applied: 0,
    };
    let request = ctx.hook(Checkout::BEFORE_PAYMENT, request).await?;

    let auth = authorize_payment(ctx, request).await?;
    let order = create_order(ctx, data.cart, auth.clone()).await?;
    ctx.bag().insert(OrderId(order.id.clone()));
    reserve_inventory(ctx, order.lines.clone()).await?;
    capture_payment(ctx, auth, order.cart_id.clone()).await?;

    ctx.hook(Checkout::ORDER_CREATED, &order).await;
    Ok(order)
}

// ---------------------------------------------------------------------------------------
// The application's hook handlers

const MINIMUM_ORDER: Cents = 10_00;

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

/// `order_created`: enqueues the confirmation email (sent only if the run completes).
async fn send_confirmation(ctx: &HookContext, order: &Order) -> Result<(), serde_json::Error> {
    ctx.jobs().enqueue(
        "send_order_confirmation",
        &json!({ "to": order.email, "order": order.id }),
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
struct GiftCardPlugin;

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
// Running it

fn money(cents: Cents) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn shop() -> Shop {
    let mut state = ShopState::default();
    state.prices.insert("tshirt".into(), 25_00);
    state.prices.insert("mug".into(), 12_00);
    state.prices.insert("sticker".into(), 2_50);
    state.stock.insert("tshirt".into(), 10);
    state.stock.insert("mug".into(), 5);
    state.stock.insert("sticker".into(), 100);
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

fn engine() -> Engine {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(validate_minimum_amount)
        .order_created(send_confirmation)
        .on_compensation_failed(flag_order_for_support);
    hooks.plugin(GiftCardPlugin);

    Engine::builder()
        .hooks(hooks)
        .service(shop())
        .jobs(|job: Job| println!("  [job queue] received {} {}", job.name(), job.payload()))
        .record_data(true)
        .build()
}

async fn run(engine: &Engine, title: &str, cart_id: &str, extras: serde_json::Value) {
    println!("== {title}");
    let options = RunOptions::new()
        .request_id(format!("req-{cart_id}"))
        .actor(Actor::user("usr_1").with_role("customer"))
        .origin(Origin::Api)
        .additional_data(extras);
    let input = CheckoutInput {
        cart_id: cart_id.into(),
    };
    let outcome = Checkout::run_with(engine, input, options).await;
    print!("{}", outcome.journal());
    match outcome.result() {
        Ok(order) => println!(
            "  => {}: order {} total {}, charged {} (gift card covered the rest)",
            outcome.status(),
            order.id,
            money(order.total),
            money(order.charged)
        ),
        Err(err) => println!("  => {}: {err}", outcome.status()),
    }
    let state = engine
        .service::<Shop>()
        .expect("the shop is registered")
        .lock();
    println!(
        "  shop: stock {:?}, payments {:?}, orders {:?}\n",
        state.stock, state.payments, state.orders
    );
}

#[tokio::main]
async fn main() {
    let engine = engine();

    run(
        &engine,
        "1. success: gift card applied, order placed, stock reserved, payment captured",
        "cart_ok",
        json!({ "gift_card": "GIFT-10" }),
    )
    .await;
    run(
        &engine,
        "2. capture declined: completed steps undone in reverse order, with their data",
        "cart_declined",
        json!({}),
    )
    .await;
    run(
        &engine,
        "3. rejected by the `validate` hook: below the minimum amount",
        "cart_small",
        json!({}),
    )
    .await;
    engine
        .service::<Shop>()
        .expect("the shop is registered")
        .lock()
        .warehouse_down_on_release = true;
    run(
        &engine,
        "4. capture declined and the warehouse is down: the order is flagged for support",
        "cart_stuck",
        json!({}),
    )
    .await;
}
