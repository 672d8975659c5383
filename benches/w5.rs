//! Criterion benches of the W5 workload (see `benches/w5/mod.rs`).
//!
//! - `w5_seq/<variant>`: one run at a time on a current-thread tokio runtime;
//! - `w5_conc64/<variant>`: throughput with 64 runs in flight on a 2-worker multi-thread
//!   runtime, each run its own task;
//! - `hook_no_handler/<kind>_x1000`: a run that fires a declared hook with no handler 1000
//!   times, against `baseline_x1000` (the same loop without the hook); the difference over
//!   1000 is the cost of one firing.
//!
//! `cargo bench --bench w5`. Every run's result is checked; the compensation counters are
//! checked after each benchmark.

use std::cell::Cell;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookflow::Engine;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinSet;

#[path = "w5/mod.rs"]
mod w5;

use w5::{Checker, Probe, Variant};

/// Runs in flight in `w5_conc64`.
const CONC: u64 = 64;

fn current_thread() -> Runtime {
    Builder::new_current_thread().build().unwrap()
}

fn two_workers() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn sequential(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("w5_seq");
    group.throughput(Throughput::Elements(1));
    for variant in Variant::ALL {
        let engine = variant.engine();
        let mut checker = Checker::new(variant);
        let runs = Cell::new(0_u64);
        group.bench_function(variant.name(), |b| {
            let (engine, runs) = (&engine, &runs);
            b.to_async(&rt).iter(|| async move {
                variant.run(engine).await.unwrap();
                runs.set(runs.get() + 1);
            });
        });
        checker.ran(runs.get()).unwrap();
    }
    group.finish();
}

/// `iters` runs of `variant`, at most `CONC` in flight, each its own task; the time they took.
async fn concurrent(variant: Variant, engine: Engine, iters: u64) -> Duration {
    let start = Instant::now();
    let mut set = JoinSet::new();
    let mut spawned = 0;
    while spawned < iters.min(CONC) {
        let engine = engine.clone();
        set.spawn(async move { variant.run(&engine).await });
        spawned += 1;
    }
    while let Some(done) = set.join_next().await {
        done.unwrap().unwrap();
        if spawned < iters {
            let engine = engine.clone();
            set.spawn(async move { variant.run(&engine).await });
            spawned += 1;
        }
    }
    start.elapsed()
}

fn concurrent64(c: &mut Criterion) {
    let rt = two_workers();
    let mut group = c.benchmark_group("w5_conc64");
    group.throughput(Throughput::Elements(1));
    for variant in Variant::ALL {
        let engine = variant.engine();
        let mut checker = Checker::new(variant);
        let runs = Cell::new(0_u64);
        group.bench_function(variant.name(), |b| {
            b.iter_custom(|iters| {
                runs.set(runs.get() + iters);
                // The driver runs on a worker, as a server's accept loop would.
                rt.block_on(rt.spawn(concurrent(variant, engine.clone(), iters)))
                    .unwrap()
            });
        });
        checker.ran(runs.get()).unwrap();
    }
    group.finish();
}

fn hook_no_handler(c: &mut Criterion) {
    const COUNT: u32 = 1000;
    let rt = current_thread();
    let mut group = c.benchmark_group("hook_no_handler");
    group.throughput(Throughput::Elements(u64::from(COUNT)));
    for (table, engine) in [
        ("", w5::probe_engine(false)),
        ("_table", w5::probe_engine(true)),
    ] {
        for (probe, name) in [
            (Probe::Baseline, "baseline"),
            (Probe::Step, "step"),
            (Probe::Before, "before"),
            (Probe::After, "after"),
        ] {
            let engine = &engine;
            group.bench_function(format!("{name}{table}_x{COUNT}"), |b| {
                b.to_async(&rt)
                    .iter(|| async move { w5::probe_run(engine, probe, COUNT).await.unwrap() });
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = sequential, concurrent64, hook_no_handler
}
criterion_main!(benches);
