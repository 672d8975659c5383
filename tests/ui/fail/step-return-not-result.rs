// A step whose return type is not a `Result`.
use hookflow::prelude::*;

#[step]
async fn charge(_ctx: &StepContext, amount: u64) -> u64 {
    amount
}

fn main() {}
