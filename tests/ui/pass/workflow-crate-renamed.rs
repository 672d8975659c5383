// `crate = path` points the generated code at a renamed `hookflow`; a return type spelled
// through an alias works too.
#![allow(dead_code)]

extern crate hookflow as hf;

mod flows {
    use ::hookflow as flow;
    use flow::prelude::{HookContext, HookError, StepContext, StepResponse, WorkflowContext};

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    pub struct CheckoutError(#[from] HookError);

    type Outcome<T> = Result<T, CheckoutError>;

    #[hf::step(crate = hf, compensate = release)]
    async fn reserve(_ctx: &StepContext, qty: u32) -> Outcome<StepResponse<u32, u64>> {
        Ok(StepResponse::new(qty, 7))
    }

    async fn release(_ctx: &StepContext, _id: u64) -> Outcome<()> {
        Ok(())
    }

    #[flow::step(crate = "flow")]
    async fn charge(_ctx: &StepContext, qty: u32) -> Outcome<u64> {
        Ok(u64::from(qty))
    }

    #[hf::workflow(crate = hf, hooks(validate: before<u32>))]
    pub async fn checkout(ctx: &WorkflowContext, qty: u32) -> Outcome<u64> {
        let qty = ctx.hook(Checkout::VALIDATE, qty).await?;
        let qty = reserve(ctx, qty).await?;
        charge(ctx, qty).await
    }

    pub async fn validate(_ctx: &HookContext, qty: u32) -> Outcome<u32> {
        Ok(qty)
    }
}

fn main() {
    let mut hooks = hf::Hooks::new();
    flows::Checkout::hooks(&mut hooks).validate(flows::validate);
}
