// A step and a workflow with mistakes, used as if they were right: each mistake is reported
// once, at its own token, and not again where the step is called, the hook registered or the
// workflow run (the macros still emit the items the rest of the code expects).
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CheckoutError(#[from] HookError);

#[step]
fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, CheckoutError> {
    Ok(amount)
}

#[workflow(hooks(validate: before<u64>), retries = 3)]
async fn checkout(ctx: &WorkflowContext, total: u64) -> Result<u64, CheckoutError> {
    let total = ctx.hook(Checkout::VALIDATE, total).await?;
    charge(ctx, total).await
}

async fn check_minimum(_ctx: &HookContext, total: u64) -> Result<u64, CheckoutError> {
    Ok(total)
}

#[tokio::main]
async fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).validate(check_minimum);
    let engine = Engine::builder().hooks(hooks).build();
    let outcome = Checkout::run(&engine, 42).await;
    assert_eq!(outcome.output(), Some(&42));
}
