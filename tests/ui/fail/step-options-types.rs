// Step options whose types do not fit, each reported once at the user's token: `timeout`
// on a step whose error cannot represent a timeout, an input of a retried step that is not
// `Clone`, and a `when` filter that does not take the step's error.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("payment error")]
struct PaymentError;

#[derive(Debug)]
struct Card {
    number: String,
}

fn is_transient(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::TimedOut
}

#[step(timeout = "5s")]
async fn charge(_ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> {
    Ok(amount)
}

#[step(retry(max = 3, when = is_transient))]
async fn authorize(_ctx: &StepContext, card: Card) -> Result<u64, PaymentError> {
    Ok(card.number.len() as u64)
}

fn main() {}
