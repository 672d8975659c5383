// A #[workflow] fn without a return type.
use hookflow::prelude::*;

#[workflow]
async fn checkout(_ctx: &WorkflowContext, total: u64) {
    println!("{total}");
}

fn main() {}
