//! What steps and hooks reach through their context: the run's additional data (typed on
//! demand, with the bad field's path on error), who started the run and from where, the
//! engine's services, and the run's bag of typed values.

use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::{AdditionalDataError, MissingService, RunError, RunId};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error("missing permission {0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    AdditionalData(#[from] AdditionalDataError),
    #[error(transparent)]
    MissingService(#[from] MissingService),
    #[error(transparent)]
    Hook(#[from] HookError),
}

/// A log that steps, compensations and handlers write to.
#[derive(Clone, Default)]
struct Log {
    entries: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn record(&self, entry: String) {
        self.entries.lock().unwrap().push(entry);
    }
    fn entries(&self) -> Vec<String> {
        self.entries.lock().unwrap().clone()
    }
}

// =============================================================================================
// Additional data
// =============================================================================================

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Loyalty {
    points: u32,
    tier: String,
}

/// What the storefront sends along with a checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CheckoutExtras {
    loyalty: Loyalty,
    gift_note: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Cart {
    id: String,
    total_cents: u64,
}

#[step(compensate = unhold_cart)]
async fn hold_cart(
    ctx: &StepContext,
    cart_id: String,
) -> Result<StepResponse<(), String>, ShopError> {
    ctx.service::<Log>()?.record(format!("hold {cart_id}"));
    Ok(StepResponse::new((), cart_id.to_owned()))
}

async fn unhold_cart(ctx: &StepContext, cart_id: String) -> Result<(), ShopError> {
    ctx.service::<Log>()?.record(format!("unhold {cart_id}"));
    Ok(())
}

/// Redeems the loyalty points sent in the additional data: 1 point = 1 cent.
#[step]
async fn redeem_points(ctx: &StepContext, total_cents: u64) -> Result<u64, ShopError> {
    let extras: CheckoutExtras = ctx.additional_data()?;
    ctx.service::<Log>()?.record(format!(
        "redeem {} {} points",
        extras.loyalty.tier, extras.loyalty.points
    ));
    Ok(total_cents.saturating_sub(u64::from(extras.loyalty.points)))
}

#[workflow(hooks(review: before<Cart>))]
async fn checkout(ctx: &WorkflowContext, cart: Cart) -> Result<u64, ShopError> {
    let cart = ctx.hook(Checkout::REVIEW, cart).await?;
    hold_cart(ctx, cart.id).await?;
    redeem_points(ctx, cart.total_cents).await
}

/// A `before` handler that reads the same additional data.
async fn note_gift(ctx: &HookContext, cart: Cart) -> Result<Cart, ShopError> {
    let extras = ctx.additional_data::<CheckoutExtras>()?;
    if let Some(note) = extras.gift_note {
        ctx.service::<Log>()?
            .record(format!("gift note for {}: {note}", cart.id));
    }
    Ok(cart)
}

fn cart() -> Cart {
    Cart {
        id: "cart_3".into(),
        total_cents: 5_000,
    }
}

fn checkout_engine(log: &Log) -> Engine {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).review(note_gift);
    Engine::builder().hooks(hooks).service(log.clone()).build()
}

#[tokio::test]
async fn steps_and_hooks_read_the_additional_data_as_a_typed_value() {
    let log = Log::default();
    let options = RunOptions::new().additional_data(json!({
        "loyalty": { "points": 1200, "tier": "gold" },
        "gift_note": "Happy birthday!",
    }));

    let outcome = checkout_engine(&log)
        .run_with::<Checkout>(cart(), options)
        .await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(outcome.output(), Some(&3_800));
    assert_eq!(
        log.entries(),
        [
            "gift note for cart_3: Happy birthday!",
            "hold cart_3",
            "redeem gold 1200 points",
        ]
    );
}

#[tokio::test]
async fn additional_data_can_be_given_as_any_serializable_value() {
    let log = Log::default();
    let extras = CheckoutExtras {
        loyalty: Loyalty {
            points: 300,
            tier: "silver".into(),
        },
        gift_note: None,
    };
    let options = RunOptions::new()
        .additional_data_from(&extras)
        .expect("serializable");

    let outcome = Checkout::run_with(&checkout_engine(&log), cart(), options).await;

    assert_eq!(outcome.output(), Some(&4_700));
    assert_eq!(log.entries(), ["hold cart_3", "redeem silver 300 points"]);
}

#[tokio::test]
async fn invalid_additional_data_names_the_bad_field_and_fails_the_run() {
    let log = Log::default();
    let options = RunOptions::new().additional_data(json!({
        "loyalty": { "points": "lots", "tier": "gold" },
    }));
    // No `review` handler here: the step, after the hold, is the first to read the data.
    let engine = Engine::builder().service(log.clone()).build();

    let outcome = engine.run_with::<Checkout>(cart(), options).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), Some("redeem_points"));
    let Some(RunError::Failed(ShopError::AdditionalData(error))) = outcome.error() else {
        panic!(
            "expected an additional-data error, got {:?}",
            outcome.error()
        );
    };
    assert_eq!(error.path(), Some("loyalty.points"));
    let AdditionalDataError::Invalid {
        type_name,
        path,
        message,
    } = error
    else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(*type_name, std::any::type_name::<CheckoutExtras>());
    assert_eq!(path, "loyalty.points");
    assert_eq!(message, r#"invalid type: string "lots", expected u32"#);
    assert_eq!(
        error.to_string(),
        format!(
            r#"invalid additional data at `loyalty.points`: invalid type: string "lots", expected u32 (expected `{}`)"#,
            std::any::type_name::<CheckoutExtras>()
        )
    );
    assert_eq!(log.entries(), ["hold cart_3", "unhold cart_3"]);
}

#[tokio::test]
async fn missing_additional_data_is_its_own_error() {
    let log = Log::default();
    let outcome = checkout_engine(&log).run::<Checkout>(cart()).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    // The `review` handler is the first to ask for it: the run aborts there.
    let Some(RunError::Failed(ShopError::Hook(hook_error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    let error = hook_error
        .source_error()
        .downcast_ref::<ShopError>()
        .expect("the handler's own error");
    let ShopError::AdditionalData(error) = error else {
        panic!("expected an additional-data error, got {error:?}");
    };
    assert_eq!(
        *error,
        AdditionalDataError::Missing {
            type_name: std::any::type_name::<CheckoutExtras>()
        }
    );
    assert_eq!(error.path(), None);
    assert!(log.entries().is_empty());
}

// -- a list: the path names the element -------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Basket {
    items: Vec<BasketItem>,
}

#[derive(Debug, Deserialize)]
struct BasketItem {
    sku: String,
    qty: u32,
}

#[step]
async fn count_items(ctx: &StepContext) -> Result<Vec<String>, ShopError> {
    let basket: Basket = ctx.additional_data()?;
    Ok(basket
        .items
        .iter()
        .map(|item| format!("{} x{}", item.sku, item.qty))
        .collect())
}

#[workflow]
async fn quote_basket(ctx: &WorkflowContext, _input: ()) -> Result<Vec<String>, ShopError> {
    count_items(ctx).await
}

#[tokio::test]
async fn the_path_of_a_bad_list_element_has_its_index() {
    let engine = Engine::new();

    let good = RunOptions::new().additional_data(json!({
        "items": [{ "sku": "mug", "qty": 2 }, { "sku": "tee", "qty": 1 }],
    }));
    let outcome = engine.run_with::<QuoteBasket>((), good).await;
    assert_eq!(
        outcome.output(),
        Some(&vec!["mug x2".to_owned(), "tee x1".to_owned()])
    );

    let bad = RunOptions::new().additional_data(json!({
        "items": [{ "sku": "mug", "qty": 2 }, { "sku": "tee", "qty": -1 }],
    }));
    let outcome = engine.run_with::<QuoteBasket>((), bad).await;
    let Some(RunError::Failed(ShopError::AdditionalData(error))) = outcome.error() else {
        panic!(
            "expected an additional-data error, got {:?}",
            outcome.error()
        );
    };
    assert_eq!(error.path(), Some("items[1].qty"));

    let missing_field = RunOptions::new().additional_data(json!({
        "items": [{ "qty": 2 }],
    }));
    let outcome = engine.run_with::<QuoteBasket>((), missing_field).await;
    let Some(RunError::Failed(ShopError::AdditionalData(error))) = outcome.error() else {
        panic!(
            "expected an additional-data error, got {:?}",
            outcome.error()
        );
    };
    assert_eq!(error.path(), Some("items[0]"));
    assert!(error.to_string().contains("missing field `sku`"), "{error}");
}

mod who;

// =============================================================================================
// Services
// =============================================================================================

/// A payment provider client.
struct PaymentGateway {
    currency: &'static str,
}

#[step]
async fn charge_card(ctx: &StepContext, cents: u64) -> Result<String, ShopError> {
    let gateway: &PaymentGateway = ctx.service()?;
    Ok(format!("{cents} {}", gateway.currency))
}

#[workflow]
async fn charge(ctx: &WorkflowContext, cents: u64) -> Result<String, ShopError> {
    charge_card(ctx, cents).await
}

#[tokio::test]
async fn a_missing_service_is_an_error_naming_its_type() {
    // The application forgot to register the gateway.
    let outcome = Engine::new().run::<Charge>(1_000).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    assert_eq!(outcome.failed_step(), Some("charge_card"));
    let Some(RunError::Failed(ShopError::MissingService(error))) = outcome.error() else {
        panic!("expected a missing service, got {:?}", outcome.error());
    };
    assert_eq!(error.type_name(), std::any::type_name::<PaymentGateway>());
    assert_eq!(
        error.to_string(),
        format!(
            "no service of type `{}` is registered on the engine; add it with `Engine::builder().service(...)`",
            std::any::type_name::<PaymentGateway>()
        )
    );
    assert!(error.to_string().contains("PaymentGateway"));
}

#[tokio::test]
async fn a_registered_service_is_found_and_the_last_one_of_a_type_wins() {
    let engine = Engine::builder()
        .service(PaymentGateway { currency: "EUR" })
        .service(Log::default())
        .service(PaymentGateway { currency: "USD" })
        .build();

    let outcome = engine.run::<Charge>(1_000).await;

    assert_eq!(outcome.output().map(String::as_str), Some("1000 USD"));
    assert!(format!("{engine:?}").contains("services: 2"), "{engine:?}");
}

// =============================================================================================
// The bag
// =============================================================================================

/// What the coupon handler leaves for the pricing step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Coupon {
    code: String,
    percent_off: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CouponCart {
    total_cents: u64,
    code: Option<String>,
}

/// Looks the code up and leaves the coupon in the bag.
async fn resolve_coupon(ctx: &HookContext, cart: CouponCart) -> Result<CouponCart, ShopError> {
    if let Some(code) = cart.code.clone() {
        ctx.bag().insert(Coupon {
            code,
            percent_off: 20,
        });
    }
    Ok(cart)
}

#[step]
async fn price(ctx: &StepContext, total_cents: u64) -> Result<(u64, Option<String>), ShopError> {
    Ok(match ctx.bag().get::<Coupon>() {
        Some(coupon) => (
            total_cents - total_cents * coupon.percent_off / 100,
            Some(coupon.code.to_owned()),
        ),
        None => (total_cents, None),
    })
}

#[workflow(hooks(coupons: before<CouponCart>))]
async fn price_cart(
    ctx: &WorkflowContext,
    cart: CouponCart,
) -> Result<(u64, Option<String>), ShopError> {
    let cart = ctx.hook(PriceCart::COUPONS, cart).await?;
    price(ctx, cart.total_cents).await
}

#[tokio::test]
async fn a_hook_leaves_a_value_in_the_bag_for_a_later_step_of_the_same_run() {
    let mut hooks = Hooks::new();
    PriceCart::hooks(&mut hooks).coupons(resolve_coupon);
    let engine = Engine::builder().hooks(hooks).build();

    let with_code = engine
        .run::<PriceCart>(CouponCart {
            total_cents: 10_000,
            code: Some("SPRING20".into()),
        })
        .await;
    assert_eq!(
        with_code.output(),
        Some(&(8_000, Some("SPRING20".to_owned())))
    );

    // The next run starts with an empty bag: no coupon leaks from the previous run.
    let without_code = engine
        .run::<PriceCart>(CouponCart {
            total_cents: 10_000,
            code: None,
        })
        .await;
    assert_eq!(without_code.output(), Some(&(10_000, None)));
}
