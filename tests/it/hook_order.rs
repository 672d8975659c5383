//! The order handlers run in: by slot (prepended, configured, appended); within a slot, the
//! application's handlers first, then each plugin's, each in registration order. Any number
//! of handlers may sit on one hook, and all of them run.

use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::{EventKind, Slot};

/// Where the `after` handlers write down that they ran.
#[derive(Clone, Default)]
struct Trail {
    entries: Arc<Mutex<Vec<String>>>,
}

impl Trail {
    fn entries(&self) -> Vec<String> {
        self.entries.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cart {
    /// Each `validate` handler appends its tag: the data itself shows the order.
    stamps: Vec<String>,
    discount_cents: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

#[derive(Debug, thiserror::Error)]
enum CheckoutError {
    #[error(transparent)]
    Hook(#[from] HookError),
}

#[workflow(hooks(validate: before<Cart>, completed: after<Cart>))]
async fn checkout(ctx: &WorkflowContext, cart: Cart) -> Result<Cart, CheckoutError> {
    let cart = ctx.hook(Checkout::VALIDATE, cart).await?;
    ctx.hook(Checkout::COMPLETED, &cart).await;
    Ok(cart)
}

/// The handler's function name, without the crate path.
fn short(handler: &str) -> &str {
    handler.rsplit("::").next().unwrap_or(handler)
}

/// Stamps the cart with `slot:handler`, as the hook context describes the handler.
async fn stamp(ctx: &HookContext, mut cart: Cart) -> Cart {
    cart.stamps
        .push(format!("{}:{}", ctx.slot(), short(ctx.handler())));
    cart
}

async fn app_first(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn app_second(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn app_late(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn app_early(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn app_after_plugins(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn loyalty_early(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn loyalty_points(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn loyalty_late(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}
async fn fraud_screen(ctx: &HookContext, cart: Cart) -> Result<Cart, Never> {
    Ok(stamp(ctx, cart).await)
}

/// Registers a handler in each slot, out of slot order.
struct Loyalty;

impl Plugin for Loyalty {
    fn name(&self) -> &str {
        "loyalty"
    }
    fn register(&self, hooks: &mut Hooks) {
        Checkout::hooks(hooks)
            .appended()
            .validate(loyalty_late)
            .configured()
            .validate(loyalty_points)
            .prepended()
            .validate(loyalty_early);
    }
}

/// A second plugin, registered after the first.
struct Fraud;

impl Plugin for Fraud {
    fn name(&self) -> &str {
        "fraud"
    }
    fn register(&self, hooks: &mut Hooks) {
        Checkout::hooks(hooks).validate(fraud_screen);
    }
}

fn hooks() -> Hooks {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(app_first)
        .appended()
        .validate(app_late)
        .prepended()
        .validate(app_early)
        .configured()
        .validate(app_second);
    hooks.plugin(Loyalty);
    hooks.plugin(Fraud);
    // Registered after the plugins, yet runs before their configured handlers.
    Checkout::hooks(&mut hooks).validate(app_after_plugins);
    hooks
}

fn empty_cart() -> Cart {
    Cart {
        stamps: Vec::new(),
        discount_cents: 0,
    }
}

#[tokio::test]
async fn handlers_run_by_slot_then_application_before_plugins_then_registration_order() {
    let engine = Engine::builder().hooks(hooks()).build();

    let outcome = engine.run::<Checkout>(empty_cart()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        outcome.output().map(|c| c.stamps.clone()),
        Some(
            [
                "prepended:app_early",
                "prepended:loyalty_early",
                "configured:app_first",
                "configured:app_second",
                "configured:app_after_plugins",
                "configured:loyalty_points",
                "configured:fraud_screen",
                "appended:app_late",
                "appended:loyalty_late",
            ]
            .map(String::from)
            .to_vec()
        )
    );
}

#[test]
fn handlers_of_lists_the_handlers_in_run_order_with_their_slot_and_plugin() {
    let hooks = hooks();

    assert_eq!(
        hooks.handlers_of::<Checkout>("validate"),
        [
            (Slot::Prepended, "app_early", None),
            (Slot::Prepended, "loyalty_early", Some("loyalty")),
            (Slot::Configured, "app_first", None),
            (Slot::Configured, "app_second", None),
            (Slot::Configured, "app_after_plugins", None),
            (Slot::Configured, "loyalty_points", Some("loyalty")),
            (Slot::Configured, "fraud_screen", Some("fraud")),
            (Slot::Appended, "app_late", None),
            (Slot::Appended, "loyalty_late", Some("loyalty")),
        ]
    );
    assert_eq!(hooks.plugins().collect::<Vec<_>>(), ["loyalty", "fraud"]);
    assert_eq!(hooks.handler_count(), 9);
    // A hook without handlers, and a hook the workflow does not declare.
    assert!(hooks.handlers_of::<Checkout>("completed").is_empty());
    assert!(hooks.handlers_of::<Checkout>("no_such_hook").is_empty());
}

#[test]
fn the_engine_counts_every_registered_handler() {
    let engine = Engine::builder().hooks(hooks()).build();
    assert_eq!(engine.handler_count(), 9);
    assert_eq!(Engine::new().handler_count(), 0);
}

// -- after hooks follow the same order --------------------------------------------------------

async fn trail(ctx: &HookContext) {
    let trail = ctx
        .service::<Trail>()
        .expect("the Trail service is registered");
    trail
        .entries
        .lock()
        .unwrap()
        .push(format!("{}:{}", ctx.slot(), short(ctx.handler())));
}

async fn audit_log(ctx: &HookContext, _cart: &Cart) -> Result<(), Never> {
    trail(ctx).await;
    Ok(())
}
async fn metrics(ctx: &HookContext, _cart: &Cart) -> Result<(), Never> {
    trail(ctx).await;
    Ok(())
}
async fn cache_warmup(ctx: &HookContext, _cart: &Cart) -> Result<(), Never> {
    trail(ctx).await;
    Ok(())
}
async fn loyalty_award(ctx: &HookContext, _cart: &Cart) -> Result<(), Never> {
    trail(ctx).await;
    Ok(())
}

struct LoyaltyAwards;

impl Plugin for LoyaltyAwards {
    fn name(&self) -> &str {
        "loyalty"
    }
    fn register(&self, hooks: &mut Hooks) {
        Checkout::hooks(hooks).prepended().completed(loyalty_award);
    }
}

#[tokio::test]
async fn after_handlers_follow_the_same_order() {
    let trail = Trail::default();
    let mut hooks = Hooks::new();
    hooks.plugin(LoyaltyAwards);
    Checkout::hooks(&mut hooks)
        .appended()
        .completed(cache_warmup)
        .configured()
        .completed(metrics)
        .prepended()
        .completed(audit_log);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(trail.clone())
        .build();

    let outcome = engine.run::<Checkout>(empty_cart()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        trail.entries(),
        [
            "prepended:audit_log",
            "prepended:loyalty_award",
            "configured:metrics",
            "appended:cache_warmup",
        ]
    );
}

// -- many handlers on one hook ----------------------------------------------------------------

async fn five_off(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Never> {
    cart.discount_cents += 5;
    Ok(cart)
}
async fn ten_off(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Never> {
    cart.discount_cents += 10;
    Ok(cart)
}
async fn twenty_off(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Never> {
    cart.discount_cents += 20;
    Ok(cart)
}
async fn forty_off(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Never> {
    cart.discount_cents += 40;
    Ok(cart)
}
async fn eighty_off(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Never> {
    cart.discount_cents += 80;
    Ok(cart)
}

#[tokio::test]
async fn five_handlers_on_one_hook_all_run() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(five_off)
        .validate(ten_off)
        .validate(twenty_off)
        .validate(forty_off)
        .validate(eighty_off);
    let engine = Engine::builder().hooks(hooks).build();

    let outcome = engine.run::<Checkout>(empty_cart()).await;

    // Each handler adds a distinct power of two (times five): the sum shows all five ran once.
    assert_eq!(outcome.output().map(|c| c.discount_cents), Some(155));
    let journal = outcome.journal();
    assert!(journal.kinds().any(|k| matches!(
        k,
        EventKind::HookFired { hook, handlers: 5, .. } if hook == "validate"
    )));
    let completed = journal
        .kinds()
        .filter(|k| matches!(k, EventKind::HookHandlerCompleted { hook, .. } if hook == "validate"))
        .count();
    assert_eq!(completed, 5);
}

#[tokio::test]
async fn five_after_handlers_all_run() {
    let trail = Trail::default();
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .completed(audit_log)
        .completed(metrics)
        .completed(cache_warmup)
        .completed(loyalty_award)
        .completed(audit_log);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(trail.clone())
        .build();

    let outcome = engine.run::<Checkout>(empty_cart()).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(
        trail.entries(),
        [
            "configured:audit_log",
            "configured:metrics",
            "configured:cache_warmup",
            "configured:loyalty_award",
            "configured:audit_log",
        ]
    );
}
