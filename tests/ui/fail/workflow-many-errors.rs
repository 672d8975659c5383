// Several mistakes, all reported in one build, pass by pass (attribute, signature, checks):
// an unknown hook kind, an unknown option, a missing return type, then a duplicate hook.
use hookflow::prelude::*;

#[workflow(hooks(validate: befor<u64>, shipped: after<u64>, shipped: after<u64>), retries = 3)]
async fn checkout(_ctx: &WorkflowContext, total: u64) {
    println!("{total}");
}

fn main() {}
