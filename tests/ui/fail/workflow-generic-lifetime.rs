// A workflow is generic over types only: not lifetimes, not consts.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct SyncError;

#[workflow]
async fn sync_catalog<'a>(ctx: &WorkflowContext, input: u64) -> Result<u64, SyncError> {
    let _ = ctx;
    Ok(input)
}

#[workflow]
async fn sync_pages<const N: usize>(ctx: &WorkflowContext, input: u64) -> Result<u64, SyncError> {
    let _ = ctx;
    Ok(input + N as u64)
}

fn main() {}
