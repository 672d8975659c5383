// A step whose return type is an alias of a type that is not a `Result`: the macro cannot
// tell from the name, so the generated code reports it, once, at the return type.
use hookflow::prelude::*;

type Amount = u64;

#[step]
async fn charge(_ctx: &StepContext, amount: u64) -> Amount {
    amount
}

fn main() {}
