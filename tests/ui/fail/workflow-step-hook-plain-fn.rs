// A plain `async fn` (not a #[step]) registered on a `step` hook.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("linking failed")]
struct LinkError;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CreateError(#[from] HookError);

#[workflow(hooks(linked: step<u64>))]
async fn create_products(ctx: &WorkflowContext, id: u64) -> Result<(), CreateError> {
    ctx.hook(CreateProducts::LINKED, id).await?;
    Ok(())
}

async fn link(_ctx: &StepContext, id: u64) -> Result<(), LinkError> {
    println!("{id}");
    Ok(())
}

fn main() {
    let mut hooks = Hooks::new();
    CreateProducts::hooks(&mut hooks).linked(link);
}
