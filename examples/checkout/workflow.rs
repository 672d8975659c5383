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

/// Asks the tax service for the tax on the cart; gives up after 2 s.
#[step(timeout = "2s")]
async fn calculate_tax(ctx: &StepContext, cart: PricedCart) -> Result<Cents, CheckoutError> {
    let delay = ctx.service::<Shop>()?.lock().tax_service_delay_secs;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
    }
    Ok(cart.total * 8 / 100)
}

fn provider_unavailable(err: &CheckoutError) -> bool {
    matches!(err, CheckoutError::ProviderUnavailable)
}

// The payment provider's steps, as methods of the shop (the service the workflow gets with
// `ctx.service::<Shop>()`): `shop.authorize_payment(ctx, request)`. Their compensations are
// associated functions, which find the shop through their context (a compensation that takes
// `&self` would run on a clone of the service, and the shop, holding its state, is not
// `Clone`).
impl Shop {
    /// Authorizes the payment, retrying while the provider is unavailable; undone by voiding the
    /// authorization.
    #[step(
        compensate = Self::void_authorization,
        retry(max = 3, backoff = "50ms", when = provider_unavailable),
    )]
    async fn authorize_payment(
        &self,
        ctx: &StepContext,
        request: PaymentRequest,
    ) -> Result<StepResponse<Authorization, String>, CheckoutError> {
        let mut state = self.lock();
        let key = ctx.idempotency_key();
        let id = match state.made_by(&key) {
            Some(id) => id,
            None => {
                if state.provider_unavailable_for > 0 {
                    state.provider_unavailable_for -= 1;
                    return Err(CheckoutError::ProviderUnavailable);
                }
                let id = state.new_id("auth", key);
                state.payments.insert(
                    id.clone(),
                    format!(
                        "authorized {} for {}",
                        money(request.amount),
                        request.cart_id
                    ),
                );
                id
            }
        };
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

    /// Captures the authorized payment; undone by refunding it.
    #[step(compensate = Self::refund_payment)]
    async fn capture_payment(
        &self,
        _ctx: &StepContext,
        auth: Authorization,
        cart_id: String,
    ) -> Result<StepResponse<(), String>, CheckoutError> {
        let mut state = self.lock();
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
}

/// Creates the order; undone by cancelling it.
#[step(compensate = cancel_order)]
async fn create_order(
    ctx: &StepContext,
    cart: PricedCart,
    tax: Cents,
    auth: Authorization,
) -> Result<StepResponse<Order, String>, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    let key = ctx.idempotency_key();
    let id = match state.made_by(&key) {
        Some(id) => id,
        None => {
            let id = state.new_id("order", key);
            state.orders.insert(id.clone(), "placed".to_owned());
            id
        }
    };
    let order = Order {
        id: id.clone(),
        cart_id: cart.id,
        email: cart.email,
        lines: cart.lines,
        total: cart.total,
        tax,
        charged: auth.amount,
    };
    Ok(StepResponse::new(order, id))
}

async fn cancel_order(ctx: &StepContext, order_id: String) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    shop.lock().orders.insert(order_id, "cancelled".to_owned());
    Ok(())
}

/// The data `release_inventory` needs: where, which reservation, and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    warehouse: String,
    id: String,
    lines: Vec<LineItem>,
}

/// Takes the lines out of one warehouse's stock; undone by putting them back.
#[step(compensate = release_inventory)]
async fn reserve_inventory(
    ctx: &StepContext,
    warehouse: String,
    lines: Vec<LineItem>,
) -> Result<StepResponse<String, Reservation>, CheckoutError> {
    // The warehouses answer over the network: let the other branch run meanwhile.
    tokio::task::yield_now().await;
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    let key = ctx.idempotency_key();
    let id = match state.made_by(&key) {
        Some(id) => id,
        None => {
            for line in &lines {
                let key = (warehouse.clone(), line.sku.clone());
                let available = state.warehouse_stock.get(&key).copied().unwrap_or(0);
                if available < line.quantity {
                    return Err(CheckoutError::OutOfStock {
                        sku: format!("{} in {warehouse}", line.sku),
                        available,
                        wanted: line.quantity,
                    });
                }
                state.warehouse_stock.insert(key, available - line.quantity);
            }
            let id = state.new_id("res", key);
            state.reservations.insert(id.clone(), lines.clone());
            id
        }
    };
    Ok(StepResponse::new(
        id.clone(),
        Reservation {
            warehouse,
            id,
            lines,
        },
    ))
}

async fn release_inventory(
    ctx: &StepContext,
    reservation: Reservation,
) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    if state.warehouse_down_on_release.as_ref() == Some(&reservation.warehouse) {
        return Err(CheckoutError::WarehouseDown(format!(
            "could not release {} in {}",
            reservation.id, reservation.warehouse
        )));
    }
    // Released once: run again after a crash, it finds nothing left to put back.
    if state.reservations.remove(&reservation.id).is_none() {
        return Ok(());
    }
    for line in &reservation.lines {
        *state
            .warehouse_stock
            .entry((reservation.warehouse.clone(), line.sku.clone()))
            .or_default() += line.quantity;
    }
    Ok(())
}

/// Emails the confirmation. Best effort: a mail outage does not undo a paid order.
#[step(best_effort)]
async fn send_confirmation_email(ctx: &StepContext, order: Order) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    if state.mail_down {
        return Err(CheckoutError::MailRefused(order.email));
    }
    state
        .emails
        .push(format!("to {}: order {}", order.email, order.id));
    Ok(())
}

/// Asks the warehouses to ship. Best effort: the fulfillment team retries by hand.
#[step(best_effort)]
async fn request_fulfillment(ctx: &StepContext, order: Order) -> Result<(), CheckoutError> {
    ctx.service::<Shop>()?
        .lock()
        .fulfillment_requests
        .push(order.id);
    Ok(())
}

/// Which warehouse ships which line: t-shirts from the east, everything else from the west.
fn split_by_warehouse(lines: &[PricedLine]) -> (Vec<LineItem>, Vec<LineItem>) {
    lines
        .iter()
        .map(|l| LineItem {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .partition(|l| l.sku == "tshirt")
}

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
