// The generated code does not rely on the prelude: a workflow and its steps compile where
// the user has redefined `Result`, `Option`, `Box`, `Vec`, `String`, `Send`, `Clone`, ...
#![allow(dead_code, non_camel_case_types)]

use hookflow::prelude::*;

type Result = ();
type Ok = ();
type Err = ();
struct Option;
struct Some;
struct None;
struct Box;
struct Vec;
struct String;
struct Send;
struct Sync;
struct Clone;
struct Copy;
struct Default;
struct Debug;
struct Future;
struct Fn;
struct Into;
struct From;
struct Sized;
struct Drop;

#[derive(Debug, thiserror::Error)]
#[error("checkout failed")]
struct CheckoutError;

impl ::core::convert::From<HookError> for CheckoutError {
    fn from(_: HookError) -> Self {
        CheckoutError
    }
}

#[step(compensate = release)]
async fn reserve(
    _ctx: &StepContext,
    qty: u32,
) -> ::core::result::Result<StepResponse<u32, u64>, CheckoutError> {
    ::core::result::Result::Ok(StepResponse::new(qty, 7))
}

async fn release(_ctx: &StepContext, _id: u64) -> ::core::result::Result<(), CheckoutError> {
    ::core::result::Result::Ok(())
}

#[step]
async fn charge(_ctx: &StepContext, qty: u32) -> ::core::result::Result<u64, CheckoutError> {
    ::core::result::Result::Ok(u64::from(qty) * 100)
}

#[step]
async fn link(_ctx: &StepContext, id: u64) -> ::core::result::Result<u64, CheckoutError> {
    ::core::result::Result::Ok(id)
}

#[workflow(hooks(
    validate: before<u32>,
    created: after<u64>,
    linked: step<u64, u64>,
))]
async fn checkout(ctx: &WorkflowContext, qty: u32) -> ::core::result::Result<u64, CheckoutError> {
    let qty = ctx.hook(Checkout::VALIDATE, qty).await?;
    let qty = reserve(ctx, qty).await?;
    let amount = charge(ctx, qty).await?;
    ctx.hook(Checkout::CREATED, &amount).await;
    let linked = ctx.hook(Checkout::LINKED, amount).await?;
    ::core::result::Result::Ok(amount + linked.len() as u64)
}

async fn validate(_ctx: &HookContext, qty: u32) -> ::core::result::Result<u32, CheckoutError> {
    ::core::result::Result::Ok(qty)
}

async fn created(_ctx: &HookContext, _amount: &u64) -> ::core::result::Result<(), CheckoutError> {
    ::core::result::Result::Ok(())
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks)
        .validate(validate)
        .created(created)
        .linked(link);
}
