//! Gated W5: runs that wait in step 4 until the gate opens, to hold many runs in flight.

use super::*;

/// How many gated runs wait at the gate.
pub static ARRIVED: AtomicUsize = AtomicUsize::new(0);
/// The gate: closed until permits are added.
pub static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

async fn wait_at_gate() {
    ARRIVED.fetch_add(1, Ordering::Relaxed);
    // A permit is given back when dropped: opening the gate once lets everyone through.
    drop(GATE.acquire().await);
}

/// Step 4 of `w5_gated`: waits at the gate, then does what step 4 does.
#[step(compensate = undo4, name = "step4")]
async fn step4_gated(_ctx: &StepContext, s: State) -> Result<StepResponse<State, Undo>, W5Error> {
    wait_at_gate().await;
    let (s, u) = advance(s);
    Ok(StepResponse::new(s, u))
}

/// W5 that waits at the gate in step 4 (after the hook), to measure many runs in flight.
#[workflow(hooks(after_step3: step<State, Seen>))]
pub async fn w5_gated(ctx: &WorkflowContext, input: State) -> Result<W5Out, W5Error> {
    let s = step1(ctx, input).await?;
    let s = step2(ctx, s).await?;
    let s = step3(ctx, s).await?;
    let seen = ctx.hook(W5Gated::AFTER_STEP3, s.clone()).await?;
    let s = step4_gated(ctx, s).await?;
    let s = step5(ctx, s).await?;
    Ok(W5Out {
        state: s,
        seen: seen.first().map(|x| x.seen),
    })
}

/// The engine of `w5_gated`, with the handler.
pub fn gated_engine() -> Engine {
    let mut hooks = Hooks::new();
    W5Gated::hooks(&mut hooks).after_step3(seen);
    Engine::builder().hooks(hooks).build()
}

/// One gated W5 run, checked.
pub async fn gated_run(engine: &Engine) -> Result<(), String> {
    check_run(
        W5Gated::run(engine, black_box(input())).await,
        Expect::Completed(Some(3)),
    )
}

/// `direct` that waits at the gate before step 4, the baseline for runs in flight.
pub async fn direct_gated() -> Result<(), String> {
    let input = black_box(input());
    let (s, u1) = d_step1(input).await.map_err(|e| e.to_string())?;
    let (s, _u2) = d_step2(s).await.map_err(|e| e.to_string())?;
    let (s, _u3) = d_step3(s).await.map_err(|e| e.to_string())?;
    let (seen, _uh) = d_seen(s.clone()).await.map_err(|e| e.to_string())?;
    wait_at_gate().await;
    let (s, _u4) = d_step4(s).await.map_err(|e| e.to_string())?;
    let (s, _u5) = d_step5(s).await.map_err(|e| e.to_string())?;
    black_box(u1);
    check_ok(
        Ok(W5Out {
            state: s,
            seen: Some(seen.seen),
        }),
        Some(3),
    )
}

/// An engine for durable `w5` runs on `store` (`examples/bench_durable.rs`).
pub fn durable_engine(store: impl hookflow::store::Store) -> Engine {
    durable_builder(store).build()
}

/// [`durable_engine`]'s builder, for more settings (a worker id, a lease).
pub fn durable_builder(store: impl hookflow::store::Store) -> hookflow::EngineBuilder {
    let mut hooks = Hooks::new();
    W5::hooks(&mut hooks).after_step3(seen);
    Engine::builder().hooks(hooks).store(store).workflow::<W5>()
}
