// A transactional step: its context reaches the transaction and fires `before` and `after`
// hooks inside it; the handlers reach it too.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Transaction(#[from] TransactionError),
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Cart {
    total: u64,
}

#[step(transaction, retry(max = 2))]
async fn create_order(ctx: &TxContext, cart: Cart) -> Result<u64, ShopError> {
    let _tx: Transaction = ctx.transaction()?;
    let cart = ctx.hook(Checkout::BEFORE_CREATE, cart).await?;
    ctx.hook(Checkout::CREATED, &cart).await;
    Ok(cart.total)
}

async fn minimum(ctx: &HookContext, cart: Cart) -> Result<Cart, ShopError> {
    let _tx: &Transaction = ctx.transaction()?;
    Ok(cart)
}

#[workflow(hooks(before_create: before<Cart>, created: after<Cart>))]
async fn checkout(ctx: &WorkflowContext, cart: Cart) -> Result<u64, ShopError> {
    create_order(ctx, cart).await
}

fn main() {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).before_create(minimum);
}
