//! `before` hooks: each handler receives the data and returns it, changed or not; the handlers
//! chain in order. A handler's error aborts the run: the steps completed before the hook are
//! compensated, and the workflow sees a `HookError` naming the hook, slot and handler.

use std::sync::{Arc, Mutex};

use hookflow::journal::HandlerFailure;
use hookflow::prelude::*;
use hookflow::{EventKind, MissingService, RunError, Slot};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default)]
struct Shop {
    log: Arc<Mutex<Vec<String>>>,
}

impl Shop {
    fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cart {
    customer: String,
    skus: Vec<String>,
    total_cents: u64,
    /// Each handler that touched the cart, in order.
    adjustments: Vec<String>,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    charged_cents: u64,
    adjustments: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
enum CheckoutError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    MissingService(#[from] MissingService),
}

/// What a validation handler rejects a cart with.
#[derive(Debug, PartialEq, thiserror::Error)]
enum Rejected {
    #[error("customer {customer} is over their credit limit by {over_cents} cents")]
    OverCreditLimit { customer: String, over_cents: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Hold {
    customer: String,
    skus: Vec<String>,
}

#[step(compensate = release_hold)]
async fn hold_stock(
    ctx: &StepContext,
    cart: Cart,
) -> Result<StepResponse<(), Hold>, CheckoutError> {
    ctx.service::<Shop>()?
        .record(format!("hold {:?} for {}", cart.skus, cart.customer));
    let hold = Hold {
        customer: cart.customer,
        skus: cart.skus.iter().map(|s| (*s).to_owned()).collect(),
    };
    Ok(StepResponse::new((), hold))
}

async fn release_hold(ctx: &StepContext, hold: Hold) -> Result<(), CheckoutError> {
    ctx.service::<Shop>()?
        .record(format!("release {:?} for {}", hold.skus, hold.customer));
    Ok(())
}

#[step]
async fn charge(ctx: &StepContext, amount_cents: u64) -> Result<u64, CheckoutError> {
    ctx.service::<Shop>()?
        .record(format!("charge {amount_cents}"));
    Ok(amount_cents)
}

#[workflow(hooks(validate: before<Cart>))]
async fn checkout(ctx: &WorkflowContext, cart: Cart) -> Result<Order, CheckoutError> {
    hold_stock(ctx, cart.clone()).await?;
    let cart = ctx.hook(Checkout::VALIDATE, cart).await?;
    let charged_cents = charge(ctx, cart.total_cents).await?;
    Ok(Order {
        charged_cents,
        adjustments: cart.adjustments,
    })
}

// -- handlers ---------------------------------------------------------------------------------

/// 10% off for members.
async fn member_discount(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Rejected> {
    cart.total_cents -= cart.total_cents / 10;
    cart.adjustments.push("member_discount".into());
    Ok(cart)
}

/// A flat shipping fee.
async fn shipping_fee(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Rejected> {
    cart.total_cents += 500;
    cart.adjustments.push("shipping_fee".into());
    Ok(cart)
}

/// Rounds the total up to a whole euro.
async fn round_up(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, Rejected> {
    cart.total_cents = cart.total_cents.div_ceil(100) * 100;
    cart.adjustments.push("round_up".into());
    Ok(cart)
}

/// Rejects carts over 100.00.
async fn credit_limit(_ctx: &HookContext, cart: Cart) -> Result<Cart, Rejected> {
    const LIMIT: u64 = 10_000;
    if cart.total_cents > LIMIT {
        return Err(Rejected::OverCreditLimit {
            customer: cart.customer,
            over_cents: cart.total_cents - LIMIT,
        });
    }
    Ok(cart)
}

/// Records that it ran: must not run after an abort.
async fn audit(ctx: &HookContext, cart: Cart) -> Result<Cart, Rejected> {
    if let Ok(shop) = ctx.service::<Shop>() {
        shop.record(format!("audit {}", cart.total_cents));
    }
    Ok(cart)
}

fn cart(total_cents: u64) -> Cart {
    Cart {
        customer: "cus_ada".into(),
        skus: vec!["mug".into(), "tee".into()],
        total_cents,
        adjustments: Vec::new(),
    }
}

#[tokio::test]
async fn handlers_chain_the_data_in_registration_order() {
    let shop = Shop::default();
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(member_discount)
        .validate(shipping_fee)
        .validate(round_up);
    let engine = Engine::builder().hooks(hooks).service(shop.clone()).build();

    let outcome = engine.run::<Checkout>(cart(4_250)).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    // 4250 - 10% = 3825; + 500 = 4325; rounded up = 4400. (Any other order gives another
    // total: shipping first gives 4300, rounding first 4400 - 440 + 500 = 4460.)
    assert_eq!(
        outcome.output(),
        Some(&Order {
            charged_cents: 4_400,
            adjustments: ["member_discount", "shipping_fee", "round_up"]
                .map(String::from)
                .to_vec(),
        })
    );
    assert_eq!(shop.log().last().map(String::as_str), Some("charge 4400"));
}

#[tokio::test]
async fn a_hook_without_handlers_passes_the_data_through() {
    let shop = Shop::default();
    let engine = Engine::builder().service(shop.clone()).build();

    // `Checkout::run(&engine, input)` is `engine.run::<Checkout>(input)`.
    let outcome = Checkout::run(&engine, cart(4_250)).await;

    assert_eq!(
        outcome.output(),
        Some(&Order {
            charged_cents: 4_250,
            adjustments: vec![],
        })
    );
}

#[tokio::test]
async fn a_handler_error_aborts_the_run_and_compensates_the_steps_before_the_hook() {
    let shop = Shop::default();
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(shipping_fee)
        .validate(audit)
        .appended()
        .validate(credit_limit)
        .appended()
        .validate(audit);
    let engine = Engine::builder().hooks(hooks).service(shop.clone()).build();

    let outcome = engine.run::<Checkout>(cart(12_000)).await;

    assert_eq!(outcome.status(), RunStatus::Compensated);
    // No step failed: the hook did.
    assert_eq!(outcome.failed_step(), None);
    let Some(RunError::Failed(CheckoutError::Hook(error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    assert_eq!(error.workflow(), "checkout");
    assert_eq!(error.hook(), "validate");
    assert_eq!(error.slot(), Slot::Appended);
    assert_eq!(error.handler(), "credit_limit");
    assert!(!error.is_panic());
    // The handler saw the data as the handlers before it left it (12000 + 500).
    assert_eq!(
        error.source_error().downcast_ref::<Rejected>(),
        Some(&Rejected::OverCreditLimit {
            customer: "cus_ada".into(),
            over_cents: 2_500,
        })
    );
    assert_eq!(
        error.to_string(),
        format!(
            "hook `checkout.validate`: handler `{}` (appended slot) failed: \
             customer cus_ada is over their credit limit by 2500 cents",
            error.handler()
        )
    );
    // The hold is released with its data; the audit after the failing handler never ran, nor
    // did the charge.
    assert_eq!(
        shop.log(),
        [
            r#"hold ["mug", "tee"] for cus_ada"#,
            "audit 12500",
            r#"release ["mug", "tee"] for cus_ada"#,
        ]
    );
}

#[tokio::test]
async fn the_abort_is_journaled_as_a_failed_handler() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validate(credit_limit);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(Shop::default())
        .build();

    let outcome = engine.run::<Checkout>(cart(20_000)).await;

    let failed: Vec<&EventKind> = outcome
        .journal()
        .kinds()
        .filter(|k| matches!(k, EventKind::HookHandlerFailed { .. }))
        .collect();
    assert_eq!(
        failed,
        [&EventKind::HookHandlerFailed {
            hook: "validate".into(),
            slot: Slot::Configured,
            handler: "credit_limit".into(),
            failure: Box::new(HandlerFailure {
                error: "customer cus_ada is over their credit limit by 10000 cents".into(),
                panicked: false,
                firing: 0,
            }),
        }]
    );
    assert!(
        !outcome
            .journal()
            .kinds()
            .any(|k| matches!(k, EventKind::StepStarted { step, .. } if step == "charge")),
        "nothing after the hook runs"
    );
}

#[tokio::test]
async fn an_accepted_cart_is_not_affected_by_the_validating_handler() {
    let shop = Shop::default();
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validate(credit_limit);
    let engine = Engine::builder().hooks(hooks).service(shop.clone()).build();

    let outcome = engine.run::<Checkout>(cart(9_000)).await;

    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(outcome.output().map(|o| o.charged_cents), Some(9_000));
    assert_eq!(outcome.output().map(|o| o.adjustments.len()), Some(0));
    assert!(!shop.log().iter().any(|l| l.starts_with("release")));
}
