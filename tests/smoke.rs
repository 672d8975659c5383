use hookflow::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Cart {
    total: u64,
}

#[derive(Debug, thiserror::Error)]
enum E {
    #[error("hook: {0}")]
    Hook(#[from] HookError),
    #[error("boom")]
    Boom,
}

#[step(compensate = unreserve)]
async fn reserve(_ctx: &StepContext, cart: Cart) -> Result<StepResponse<u64, String>, E> {
    Ok(StepResponse::new(cart.total, format!("res-{}", cart.total)))
}
async fn unreserve(_ctx: &StepContext, id: String) -> Result<(), E> {
    println!("undo {id}");
    Ok(())
}

#[step]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, E> {
    if amount > 100 {
        Err(E::Boom)
    } else {
        Ok(amount)
    }
}

#[workflow(hooks(validate: before<Cart>, done: after<u64>))]
async fn checkout(ctx: &WorkflowContext, cart: Cart) -> Result<u64, E> {
    let cart = ctx.hook(Checkout::VALIDATE, cart).await?;
    let n = reserve(ctx, cart).await?;
    let c = charge(ctx, n).await?;
    ctx.hook(Checkout::DONE, &c).await;
    Ok(c)
}

async fn double(_ctx: &HookContext, mut cart: Cart) -> Result<Cart, E> {
    cart.total *= 2;
    Ok(cart)
}

#[tokio::test]
async fn smoke() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validate(double);
    let engine = Engine::builder().hooks(hooks).record_data(true).build();
    let out = engine.run::<Checkout>(Cart { total: 10 }).await;
    assert_eq!(out.output(), Some(&20));
    let out = Checkout::run(&engine, Cart { total: 60 }).await;
    assert_eq!(out.status(), RunStatus::Compensated);
    println!("{}", serde_json::to_string_pretty(out.journal()).unwrap());
}
