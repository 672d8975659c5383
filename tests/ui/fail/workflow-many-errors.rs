// Several mistakes in one attribute and signature, all reported in one build, in source
// order: an unknown hook kind, a duplicate hook, an unknown option and a missing return type.
use hookflow::prelude::*;

#[workflow(hooks(validate: befor<u64>, shipped: after<u64>, shipped: after<u64>), retries = 3)]
async fn checkout(_ctx: &WorkflowContext, total: u64) {
    println!("{total}");
}

fn main() {}
