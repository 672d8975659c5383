// The generated code names `core` only as `::core`, and a module named `core` in scope
// does not change what it means; `extern crate std as core` does not break it either.
#![allow(dead_code)]

extern crate std as core;

use hookflow::prelude::*;

mod checkout_flow {
    use hookflow::prelude::*;

    /// A module named `core` beside the macros.
    mod core {
        pub mod result {
            pub struct Result;
        }
        pub mod future {
            pub struct Future;
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    pub struct CheckoutError(#[from] HookError);

    #[step]
    async fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, CheckoutError> {
        Ok(amount)
    }

    #[workflow(hooks(validate: before<u64>))]
    pub async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
        let total = ctx.hook(Checkout::VALIDATE, total).await?;
        charge(ctx, total).await
    }
}

fn main() {
    let mut hooks = Hooks::new();
    checkout_flow::Checkout::hooks(&mut hooks);
}
