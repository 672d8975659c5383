// Steps as methods of a service struct: with a compensation that is a method (run on a clone
// of the service), with one that is an associated function, without one, and retried.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
enum PaymentError {
    #[error("declined")]
    Declined,
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[derive(Clone, Default)]
struct Payments {
    voided: Arc<AtomicU64>,
}

impl Payments {
    #[step(compensate = Self::void)]
    async fn capture(&self, _ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PaymentError> {
        Ok(StepResponse::new(amount, amount))
    }

    async fn void(&self, _ctx: &StepContext, amount: u64) -> Result<(), PaymentError> {
        self.voided.fetch_add(amount, Ordering::SeqCst);
        Ok(())
    }

    #[step(compensate = Self::release)]
    async fn authorize(&self, _ctx: &StepContext, amount: u64) -> Result<StepResponse<u64, u64>, PaymentError> {
        Ok(StepResponse::new(amount, amount))
    }

    async fn release(_ctx: &StepContext, _amount: u64) -> Result<(), PaymentError> {
        Ok(())
    }

    #[step(retry(max = 3))]
    async fn settle(&self, _ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
        if amount > 100 { Err(PaymentError::Declined) } else { Ok(amount) }
    }
}

#[workflow]
async fn pay(ctx: &WorkflowContext, amount: u64) -> Result<u64, PaymentError> {
    let payments = ctx.service::<Payments>()?;
    let authorized = payments.authorize(ctx, amount).await?;
    let captured = payments.capture(ctx, authorized).await?;
    payments.settle(ctx, captured).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let payments = Payments::default();
    let engine = Engine::builder().service(payments.clone()).build();
    assert_eq!(Pay::run(&engine, 40).await.output().copied(), Some(40));
    assert_eq!(Pay::run(&engine, 400).await.status(), hookflow::RunStatus::Compensated);
    assert_eq!(payments.voided.load(Ordering::SeqCst), 400);
}
