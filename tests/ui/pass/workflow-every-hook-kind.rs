// Every hook kind (`before`, `after`, `step<P>`, `step<P, R>`), every slot
// (`prepended`, `configured`, `appended`), a plugin and `on_compensation_failed`, run on an
// engine.
use hookflow::compensation::CompensationFailure;
use hookflow::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cart {
    total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
}

#[derive(Debug, thiserror::Error)]
enum CheckoutError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("too small")]
    TooSmall,
}

#[step(compensate = release)]
async fn reserve(_ctx: &StepContext, cart: Cart) -> Result<StepResponse<Order, u64>, CheckoutError> {
    Ok(StepResponse::new(Order { id: cart.total }, cart.total))
}

async fn release(_ctx: &StepContext, _reservation: u64) -> Result<(), CheckoutError> {
    Ok(())
}

#[workflow(hooks(
    validate: before<Cart>,
    order_created: after<Order>,
    linked: step<Order>,
    points: step<Order, u64>,
))]
async fn checkout(ctx: &WorkflowContext, cart: Cart) -> Result<Order, CheckoutError> {
    let cart = ctx.hook(Checkout::VALIDATE, cart).await?;
    let order = reserve(ctx, cart).await?;
    ctx.hook(Checkout::LINKED, order.clone()).await?;
    let points: Vec<u64> = ctx.hook(Checkout::POINTS, order.clone()).await?;
    ctx.hook(Checkout::ORDER_CREATED, &order).await;
    if points.iter().sum::<u64>() > 1_000 {
        return Err(CheckoutError::TooSmall);
    }
    Ok(order)
}

async fn check_minimum(_ctx: &HookContext, cart: Cart) -> Result<Cart, CheckoutError> {
    if cart.total == 0 { Err(CheckoutError::TooSmall) } else { Ok(cart) }
}

async fn add_fee(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, CheckoutError> {
    cart.total += 1;
    Ok(cart)
}

async fn send_email(_ctx: &HookContext, _order: &Order) -> Result<(), CheckoutError> {
    Ok(())
}

#[step(compensate = unlink)]
async fn link(_ctx: &StepContext, order: Order) -> Result<StepResponse<(), u64>, CheckoutError> {
    Ok(StepResponse::new((), order.id))
}

async fn unlink(_ctx: &StepContext, _id: u64) -> Result<(), CheckoutError> {
    Ok(())
}

#[step]
async fn award_points(_ctx: &StepContext, order: Order) -> Result<u64, CheckoutError> {
    Ok(order.id / 10)
}

async fn alert(_ctx: &HookContext, failure: &CompensationFailure) -> Result<(), CheckoutError> {
    eprintln!("{}: {} failed", failure.workflow, failure.failed.len());
    Ok(())
}

struct Loyalty;

impl Plugin for Loyalty {
    fn name(&self) -> &str {
        "loyalty"
    }

    fn register(&self, hooks: &mut Hooks) {
        Checkout::hooks(hooks).points(award_points).order_created(send_email);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .prepended()
        .validate(check_minimum)
        .configured()
        .validate(add_fee)
        .linked(link)
        .appended()
        .order_created(send_email)
        .on_compensation_failed(alert);
    hooks.plugin(Loyalty);
    let engine = Engine::builder().hooks(hooks).build();
    let outcome = Checkout::run(&engine, Cart { total: 41 }).await;
    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(outcome.output().map(|o| o.id), Some(42));
}
