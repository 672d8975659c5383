// The lints the macros used to allow over their output are forbidden here, and every kind of
// expansion builds: the generated code needs no `#[allow]`, so a crate may `forbid` them.
#![forbid(unused_parens, unused_braces, clippy::manual_async_fn)]
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
enum PaymentError {
    #[error("declined")]
    Declined,
    #[error("timed out")]
    Timeout,
}

impl From<hookflow::StepTimeout> for PaymentError {
    fn from(_: hookflow::StepTimeout) -> Self {
        PaymentError::Timeout
    }
}

type PaymentResult<T> = Result<T, PaymentError>;

fn is_transient(error: &PaymentError) -> bool {
    matches!(error, PaymentError::Declined)
}

#[step(retry(max = 2, when = is_transient), timeout = "1s")]
async fn charge(_ctx: &StepContext, amount: u64, note: String) -> PaymentResult<u64> {
    Ok(amount + note.len() as u64)
}

#[step(compensate = release, compensate_retry(max = 2))]
async fn reserve(_ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PaymentError> {
    Ok(StepResponse::new(amount, amount))
}

async fn release(_ctx: &StepContext, _amount: u64) -> Result<(), PaymentError> {
    Ok(())
}

#[step(best_effort)]
async fn notify(_ctx: &StepContext) -> Result<(), PaymentError> {
    Ok(())
}

#[step]
async fn fee(_ctx: &StepContext) -> PaymentResult<u64> {
    Ok(1)
}

#[workflow]
async fn checkout(ctx: &WorkflowContext, amount: u64) -> Result<u64, PaymentError> {
    let amount = reserve(ctx, amount).await?;
    let amount = charge(ctx, amount, "x".to_owned()).await? + fee(ctx).await?;
    notify(ctx).await;
    Ok(amount)
}

type CheckoutResult = Result<u64, PaymentError>;

#[workflow]
async fn refund(ctx: &WorkflowContext, amount: u64) -> CheckoutResult {
    charge(ctx, amount, String::new()).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Engine::builder().build();
    assert_eq!(Checkout::run(&engine, 1).await.output(), Some(&3));
    assert_eq!(Refund::run(&engine, 1).await.output(), Some(&1));
}
