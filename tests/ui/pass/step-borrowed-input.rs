// Steps taking borrowed inputs besides the context: the workflow lends them for the call.
use hookflow::prelude::*;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct LineItem {
    sku: String,
    quantity: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("out of stock")]
struct StockError;

#[step]
async fn count(_ctx: &StepContext, items: &[LineItem], sku: &str) -> Result<u64, StockError> {
    Ok(items.iter().filter(|i| i.sku == sku).map(|i| i.quantity).sum())
}

#[step(retry(max = 2))]
async fn total<'a>(_ctx: &StepContext, items: &'a Vec<LineItem>) -> Result<u64, StockError> {
    Ok(items.iter().map(|i| i.quantity).sum())
}

#[workflow]
async fn reserve(ctx: &WorkflowContext, items: Vec<LineItem>) -> Result<(u64, u64), StockError> {
    let mugs = count(ctx, &items, "mug").await?;
    let all = total(ctx, &items).await?;
    Ok((mugs, all))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Engine::builder().build();
    let items = vec![
        LineItem { sku: "mug".into(), quantity: 2 },
        LineItem { sku: "tee".into(), quantity: 1 },
    ];
    assert_eq!(Reserve::run(&engine, items).await.output().copied(), Some((2, 3)));
}
