//! A variant's timings, throughput and allocations, and the fmt subscriber's cost.

use std::time::Instant;

use hookflow::Engine;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinSet;

use crate::args::Args;
use crate::counting::{Allocs, start_counting, stop_counting};
use crate::rss::{reset_peak_rss, status_kib};
use crate::w5::{self, Checker, Variant};

pub(crate) fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

pub(crate) fn two_workers() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One variant's numbers.
pub(crate) struct Row {
    pub(crate) variant: Variant,
    pub(crate) mean_ns: f64,
    pub(crate) p50_ns: f64,
    pub(crate) p99_ns: f64,
    pub(crate) seq_rps: f64,
    pub(crate) conc_rps: f64,
    pub(crate) conc_tasks_rps: f64,
    pub(crate) allocs: Allocs,
    pub(crate) allocs_per_run: f64,
    pub(crate) exact: bool,
    pub(crate) peak_rss_kib: u64,
    pub(crate) future_bytes: usize,
}

/// The size of the future of one run of `variant`, which a spawned run's task holds.
pub(crate) fn future_bytes(variant: Variant, engine: &Engine) -> usize {
    match variant {
        Variant::Direct | Variant::DirectFail => {
            std::mem::size_of_val(&w5::direct(w5::input(), false))
        }
        Variant::W5 | Variant::W5NoHandler => {
            std::mem::size_of_val(&w5::W5::run(engine, w5::input()))
        }
        Variant::W5Fail => std::mem::size_of_val(&w5::W5Fail::run(engine, w5::input())),
        Variant::W5NoHook => std::mem::size_of_val(&w5::W5Nohook::run(engine, w5::input())),
    }
}

/// Timed repetitions of each measurement; the median is reported.
pub(crate) const REPS: usize = 3;

pub(crate) fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64
}

pub(crate) fn measure(variant: Variant, args: &Args, seq: &Runtime, mt: &Runtime) -> Row {
    let n = args.n;
    let reset = reset_peak_rss();
    let engine = variant.engine();
    let mut checker = Checker::new(variant);

    // Sequential, on a current-thread runtime: warm-up; timed batches of n runs (the mean:
    // the median of REPS batches); n runs each timed on its own (the percentiles); then the
    // allocations of this thread over n runs.
    let (mean_ns, p50_ns, p99_ns, allocs) = seq.block_on(async {
        let warmup = (n / 10).clamp(1, 2_000);
        for _ in 0..warmup {
            variant.run(&engine).await.unwrap();
        }
        checker.ran(warmup).unwrap();

        let mut means = Vec::with_capacity(REPS);
        for _ in 0..REPS {
            let start = Instant::now();
            for _ in 0..n {
                variant.run(&engine).await.unwrap();
            }
            means.push(start.elapsed().as_nanos() as f64 / n as f64);
            checker.ran(n).unwrap();
        }

        let mut lat = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let t0 = Instant::now();
            let result = variant.run(&engine).await;
            lat.push(t0.elapsed().as_nanos() as u64);
            result.unwrap();
            checker.ran(1).unwrap();
        }
        lat.sort_unstable();

        start_counting(false);
        for _ in 0..n {
            variant.run(&engine).await.unwrap();
        }
        let allocs = stop_counting();
        checker.ran(n).unwrap();

        (
            median(&mut means),
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            allocs,
        )
    });

    // Concurrent, on a 2-worker runtime: each run its own task, at most `conc` in flight
    // (the driver is a task too); then `conc` long-lived tasks running runs back to back.
    // Each is the median of REPS rounds of n runs.
    let conc = args.conc;
    let spawned = |runs: u64| {
        let engine = engine.clone();
        async move {
            let start = Instant::now();
            let mut set = JoinSet::new();
            let mut started = 0;
            while started < runs.min(conc) {
                let engine = engine.clone();
                set.spawn(async move { variant.run(&engine).await });
                started += 1;
            }
            while let Some(done) = set.join_next().await {
                done.unwrap().unwrap();
                if started < runs {
                    let engine = engine.clone();
                    set.spawn(async move { variant.run(&engine).await });
                    started += 1;
                }
            }
            start.elapsed()
        }
    };
    let warmup = (n / 10).max(conc);
    mt.block_on(mt.spawn(spawned(warmup))).unwrap();
    checker.ran(warmup).unwrap();
    let mut rates: Vec<f64> = (0..REPS)
        .map(|_| n as f64 / mt.block_on(mt.spawn(spawned(n))).unwrap().as_secs_f64())
        .collect();
    checker.ran(n * REPS as u64).unwrap();
    let conc_rps = median(&mut rates);

    let per_task = n.div_ceil(conc);
    let tasks = || {
        mt.block_on(async {
            let start = Instant::now();
            let mut set = JoinSet::new();
            for _ in 0..conc {
                let engine = engine.clone();
                set.spawn(async move {
                    for _ in 0..per_task {
                        variant.run(&engine).await.unwrap();
                    }
                });
            }
            while let Some(done) = set.join_next().await {
                done.unwrap();
            }
            (per_task * conc) as f64 / start.elapsed().as_secs_f64()
        })
    };
    let mut rates: Vec<f64> = (0..REPS).map(|_| tasks()).collect();
    checker.ran(per_task * conc * REPS as u64).unwrap();
    let conc_tasks_rps = median(&mut rates);

    Row {
        variant,
        mean_ns,
        p50_ns,
        p99_ns,
        seq_rps: 1e9 / mean_ns,
        conc_rps,
        conc_tasks_rps,
        allocs,
        allocs_per_run: allocs.allocs as f64 / n as f64,
        exact: allocs.allocs % n == 0,
        peak_rss_kib: if reset { status_kib("VmHWM") } else { 0 },
        future_bytes: future_bytes(variant, &engine),
    }
}

/// The mean of a w5 run without a subscriber and with a fmt subscriber at INFO writing to a
/// sink (scoped to this thread: the runs are on the current-thread runtime), in ns: the
/// medians of REPS batches of n runs each, the two alternated.
pub(crate) fn subscriber_cost(args: &Args, seq: &Runtime) -> (f64, f64) {
    let engine = Variant::W5.engine();
    let mut checker = Checker::new(Variant::W5);
    let batch = || {
        seq.block_on(async {
            let start = Instant::now();
            for _ in 0..args.n {
                Variant::W5.run(&engine).await.unwrap();
            }
            start.elapsed().as_nanos() as f64 / args.n as f64
        })
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        without.push(batch());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .finish();
        with.push(tracing::subscriber::with_default(subscriber, batch));
    }
    checker.ran(args.n * 2 * REPS as u64).unwrap();
    (median(&mut without), median(&mut with))
}
