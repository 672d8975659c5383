// A `step` hook's handler is a #[step]; here its compensation takes a `String` while the
// step's compensation data is a `u64`. The error is on `compensate = ...`.
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

#[step(compensate = unlink)]
async fn link(_ctx: &StepContext, id: u64) -> Result<StepResponse<(), u64>, LinkError> {
    Ok(StepResponse::new((), id))
}

async fn unlink(_ctx: &StepContext, link: String) -> Result<(), LinkError> {
    println!("{link}");
    Ok(())
}

fn main() {
    let mut hooks = Hooks::new();
    CreateProducts::hooks(&mut hooks).linked(link);
}
