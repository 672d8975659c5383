//! The no-handler hook probe.

use std::time::Instant;

use tokio::runtime::Runtime;

use crate::args::Args;
use crate::counting::{start_counting, stop_counting};
use crate::w5::{self, Probe};

/// The no-handler probe: per firing of a declared hook with no handler, the time and the
/// allocations, against the same loop without the hook.
pub(crate) struct ProbeRow {
    pub(crate) name: String,
    pub(crate) ns_per_fire: f64,
    pub(crate) allocs_per_fire: f64,
}

pub(crate) fn probe(args: &Args, seq: &Runtime) -> Vec<ProbeRow> {
    let count = args.probe_count;
    // About 2 * 10^6 firings per configuration and round.
    let runs = (2_000_000 / u64::from(count)).max(10);
    let mut rows = Vec::new();
    for table in [false, true] {
        let engine = w5::probe_engine(table);
        let kinds = [Probe::Baseline, Probe::Step, Probe::Before, Probe::After];
        let mut best = [f64::INFINITY; 4];
        let mut allocs = [0_u64; 4];
        seq.block_on(async {
            for (k, &probe) in kinds.iter().enumerate() {
                for _ in 0..runs / 10 {
                    w5::probe_run(&engine, probe, count).await.unwrap();
                }
                start_counting(false);
                for _ in 0..runs {
                    w5::probe_run(&engine, probe, count).await.unwrap();
                }
                allocs[k] = stop_counting().allocs;
            }
            // Rounds interleave the kinds; the fastest round of each is kept.
            for _round in 0..5 {
                for (k, &probe) in kinds.iter().enumerate() {
                    let start = Instant::now();
                    for _ in 0..runs {
                        w5::probe_run(&engine, probe, count).await.unwrap();
                    }
                    let ns = start.elapsed().as_nanos() as f64 / runs as f64;
                    best[k] = best[k].min(ns);
                }
            }
        });
        let fires = f64::from(count);
        for (k, name) in [(1, "step"), (2, "before"), (3, "after")] {
            rows.push(ProbeRow {
                name: format!("{name}{}", if table { "_table" } else { "" }),
                ns_per_fire: (best[k] - best[0]) / fires,
                allocs_per_fire: (allocs[k] as f64 - allocs[0] as f64) / (fires * runs as f64),
            });
        }
    }
    rows
}
