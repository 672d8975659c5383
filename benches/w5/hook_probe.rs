//! Hook probe: the cost of firing a declared hook that has no handler.

use super::*;

/// What the probe fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Probe {
    /// The same loop, no hook.
    Baseline,
    /// A `step<u64, Seen>` hook.
    Step,
    /// A `before<u64>` hook.
    Before,
    /// An `after<u64>` hook.
    After,
}

/// The probe's input: what to fire, how many times.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct ProbeInput {
    /// What.
    pub probe: Probe,
    /// How many times.
    pub count: u32,
}

/// A handler for the probe's `other` hook (registered only in the "table" configuration,
/// so that the workflow has a hook table but the fired points have no handler).
#[step]
async fn probe_other(_ctx: &StepContext, n: u64) -> Result<Seen, W5Error> {
    Ok(Seen { seen: n })
}

/// Fires one of its hooks `count` times (none of them has a handler), or runs the same loop
/// without firing.
#[workflow(hooks(
    probe_step: step<u64, Seen>,
    probe_before: before<u64>,
    probe_after: after<u64>,
    other: step<u64, Seen>,
))]
pub async fn hook_probe(ctx: &WorkflowContext, input: ProbeInput) -> Result<u64, W5Error> {
    let mut acc = 0_u64;
    match input.probe {
        Probe::Baseline => {
            for i in 0..input.count {
                acc = acc.wrapping_add(black_box(u64::from(i)));
            }
        }
        Probe::Step => {
            for i in 0..input.count {
                let r = ctx
                    .hook(HookProbe::PROBE_STEP, black_box(u64::from(i)))
                    .await?;
                acc = acc.wrapping_add(r.len() as u64 + u64::from(i));
            }
        }
        Probe::Before => {
            for i in 0..input.count {
                let v = ctx
                    .hook(HookProbe::PROBE_BEFORE, black_box(u64::from(i)))
                    .await?;
                acc = acc.wrapping_add(v);
            }
        }
        Probe::After => {
            for i in 0..input.count {
                let v = black_box(u64::from(i));
                ctx.hook(HookProbe::PROBE_AFTER, &v).await;
                acc = acc.wrapping_add(v);
            }
        }
    }
    Ok(acc)
}

/// The probe's engine: nothing registered (`table == false`), or a handler on `other` only,
/// so that the workflow has a hook table whose fired points are empty.
pub fn probe_engine(table: bool) -> Engine {
    let mut hooks = Hooks::new();
    if table {
        HookProbe::hooks(&mut hooks).other(probe_other);
    }
    Engine::builder().hooks(hooks).build()
}

/// One probe run, checked.
pub async fn probe_run(engine: &Engine, probe: Probe, count: u32) -> Result<(), String> {
    let outcome = HookProbe::run(engine, black_box(ProbeInput { probe, count })).await;
    let expected = (0..u64::from(count)).sum::<u64>();
    match outcome.output() {
        Some(&acc) if acc == expected => Ok(()),
        _ => Err(format!(
            "probe {probe:?}: {:?}",
            outcome.result().map(|_| ())
        )),
    }
}
