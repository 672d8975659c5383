//! The W5 bench program: latency, throughput, memory and allocations of a hookflow run
//! against the same bodies as plain async calls.
//!
//! ```sh
//! cargo run --release --example bench_w5 -- --n 20000 --conc 64
//! cargo run --release --example bench_w5 -- --n 20000 --conc 64 --subscriber
//! ```
//!
//! Options:
//! - `--n N` runs per variant and phase (default 20000);
//! - `--conc C` runs in flight in the concurrent phase (default 64), on a 2-worker runtime;
//! - `--variants a,b` (default: all of `direct,w5,w5_fail,w5_nohandler,w5_nohook,direct_fail`);
//! - `--subscriber` installs a tracing `fmt` subscriber at INFO writing to a sink, to measure
//!   what tracing costs;
//! - `--inflight K` holds K runs in flight at once (parked in step 4) and reports the RSS
//!   (default 10000; 0 skips it), each variant (`w5`, `direct`) in a fresh child process;
//! - `--probe-count C` hook firings per run in the no-handler probe (default 1000; 0 skips it);
//! - `--alloc-sites` prints, for one run of each variant, every allocation with its stack
//!   (build with `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only` for inlined frames) and
//!   skips the measurements;
//! - `--profile` only runs N sequential runs of each variant, untimed, for a profiler
//!   (`valgrind --tool=callgrind`, `perf record`).
//!
//! Per variant it prints the mean (the median of 3 timed batches of N runs), p50 and p99 (each
//! run timed on its own), runs per second sequential and with C in flight (each run its own
//! task, and C long-lived tasks each running runs back to back; medians of 3 rounds of N runs),
//! the peak RSS during the variant, the allocations per run (counted exactly over N runs on a
//! current-thread runtime, on its thread only), the size of the run's future, and the ratio to
//! `direct`; then the no-handler hook probe, the RSS with K runs in flight, and one JSON line
//! with everything. Every run's result and the compensation counters are checked. Last, the
//! targets of issue 20, each with its value from this run and `met`/`missed`: the fmt
//! subscriber's cost is measured in this run too (w5 batches with and without a scoped fmt
//! subscriber at INFO writing to a sink, alternated).

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hookflow::Engine;
use serde_json::{Value, json};
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinSet;

#[path = "../benches/targets.rs"]
mod targets;
#[path = "../benches/w5/mod.rs"]
mod w5;

use w5::{Checker, Probe, Variant};

// -------------------------------------------------------------------------------------------
// Counting allocator

/// Counts allocations while `COUNTING` is on (on every thread, or only on the thread that
/// started counting); records a backtrace of each while `TRACING` is.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Whether every thread's allocations count, or only those of threads marked `COUNTED`.
static ALL_THREADS: AtomicBool = AtomicBool::new(false);
static TRACING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated minus bytes freed while counting.
static NET_BYTES: AtomicI64 = AtomicI64::new(0);
static SITES: Mutex<Vec<(usize, Backtrace)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread records a backtrace: its own allocations are not traced.
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
    /// Set on the thread that counts its own allocations.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

impl Counting {
    fn counting() -> bool {
        COUNTING.load(Ordering::Relaxed)
            && (ALL_THREADS.load(Ordering::Relaxed) || COUNTED.with(Cell::get))
    }

    fn counted(size: usize) {
        if Self::counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(size as u64, Ordering::Relaxed);
            NET_BYTES.fetch_add(size as i64, Ordering::Relaxed);
        }
        if TRACING.load(Ordering::Relaxed) {
            Self::trace(size);
        }
    }

    #[cold]
    fn trace(size: usize) {
        if IN_TRACE.with(|t| t.replace(true)) {
            return;
        }
        let bt = Backtrace::force_capture();
        SITES.lock().unwrap().push((size, bt));
        IN_TRACE.with(|t| t.set(false));
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::counted(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::counted(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::counting() {
            NET_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::counting() {
            REALLOCS.fetch_add(1, Ordering::Relaxed);
            NET_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        if TRACING.load(Ordering::Relaxed) {
            Self::trace(new_size);
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations, reallocations, bytes and net bytes counted while `f` ran.
#[derive(Debug, Clone, Copy, Default)]
struct Allocs {
    allocs: u64,
    reallocs: u64,
    bytes: u64,
    net_bytes: i64,
}

/// Starts counting the allocations of this thread only, or of every thread.
fn start_counting(all_threads: bool) {
    COUNTED.with(|c| c.set(true));
    ALL_THREADS.store(all_threads, Ordering::SeqCst);
    ALLOCS.store(0, Ordering::Relaxed);
    REALLOCS.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    NET_BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
}

fn stop_counting() -> Allocs {
    COUNTING.store(false, Ordering::SeqCst);
    COUNTED.with(|c| c.set(false));
    Allocs {
        allocs: ALLOCS.load(Ordering::Relaxed),
        reallocs: REALLOCS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
        net_bytes: NET_BYTES.load(Ordering::Relaxed),
    }
}

// -------------------------------------------------------------------------------------------
// RSS

/// A field of /proc/self/status, in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .unwrap_or(0)
}

/// Resets the peak RSS (`VmHWM`) to the current RSS; false if the kernel refused.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// -------------------------------------------------------------------------------------------
// Options

struct Args {
    n: u64,
    conc: u64,
    variants: Vec<Variant>,
    subscriber: bool,
    inflight: u64,
    probe_count: u32,
    alloc_sites: bool,
    profile: bool,
    inflight_child: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        n: 20_000,
        conc: 64,
        variants: Variant::ALL.to_vec(),
        subscriber: false,
        inflight: 10_000,
        probe_count: 1000,
        alloc_sites: false,
        profile: false,
        inflight_child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--n" => args.n = value().parse().unwrap_or_else(|_| usage("--n N")),
            "--conc" => args.conc = value().parse().unwrap_or_else(|_| usage("--conc C")),
            "--inflight" => {
                args.inflight = value().parse().unwrap_or_else(|_| usage("--inflight K"));
            }
            "--probe-count" => {
                args.probe_count = value().parse().unwrap_or_else(|_| usage("--probe-count C"));
            }
            "--variants" => {
                args.variants = value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| Variant::parse(s).unwrap_or_else(|| usage(&format!("variant {s}"))))
                    .collect();
            }
            "--subscriber" => args.subscriber = true,
            "--alloc-sites" => args.alloc_sites = true,
            "--profile" => args.profile = true,
            "--inflight-child" => args.inflight_child = Some(value()),
            "--bench" => {} // passed by `cargo bench`-style runners; nothing to do
            other => usage(&format!("unknown option {other}")),
        }
    }
    if args.n == 0 || args.conc == 0 {
        usage("--n and --conc must be at least 1");
    }
    args
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "bench_w5: {problem}\nusage: bench_w5 [--n N] [--conc C] [--variants a,b] [--subscriber] \
         [--inflight K] [--probe-count C] [--alloc-sites] [--profile]"
    );
    std::process::exit(2)
}

// -------------------------------------------------------------------------------------------
// Measurements

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn two_workers() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One variant's numbers.
struct Row {
    variant: Variant,
    mean_ns: f64,
    p50_ns: f64,
    p99_ns: f64,
    seq_rps: f64,
    conc_rps: f64,
    conc_tasks_rps: f64,
    allocs: Allocs,
    allocs_per_run: f64,
    exact: bool,
    peak_rss_kib: u64,
    future_bytes: usize,
}

/// The size of the future of one run of `variant`, which a spawned run's task holds.
fn future_bytes(variant: Variant, engine: &Engine) -> usize {
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
const REPS: usize = 3;

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64
}

fn measure(variant: Variant, args: &Args, seq: &Runtime, mt: &Runtime) -> Row {
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
fn subscriber_cost(args: &Args, seq: &Runtime) -> (f64, f64) {
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

/// The no-handler probe: per firing of a declared hook with no handler, the time and the
/// allocations, against the same loop without the hook.
struct ProbeRow {
    name: String,
    ns_per_fire: f64,
    allocs_per_fire: f64,
}

fn probe(args: &Args, seq: &Runtime) -> Vec<ProbeRow> {
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

/// Many runs in flight at once: spawned on the 2-worker runtime, each parked in step 4, the
/// RSS read when all are parked.
struct InflightRow {
    name: String,
    runs: u64,
    rss_before_kib: u64,
    rss_inflight_kib: u64,
    peak_rss_kib: u64,
    heap_net_bytes: i64,
    total_ms: f64,
}

fn inflight(name: &str, runs: u64, mt: &Runtime) -> InflightRow {
    let engine = w5::gated_engine();
    let gated = name == "w5";
    // Warm the runtime and allocator up with a small batch first.
    let batch = |count: u64| {
        let engine = engine.clone();
        async move {
            w5::ARRIVED.store(0, Ordering::SeqCst);
            let mut set = JoinSet::new();
            for _ in 0..count {
                // Two spawns, not one future with both branches: each task holds only its own.
                if gated {
                    let engine = engine.clone();
                    set.spawn(async move { w5::gated_run(&engine).await });
                } else {
                    set.spawn(w5::direct_gated());
                }
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while w5::ARRIVED.load(Ordering::SeqCst) < count as usize {
                assert!(Instant::now() < deadline, "runs did not reach the gate");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let parked = (status_kib("VmRSS"), stop_counting());
            w5::GATE.add_permits(count as usize);
            while let Some(done) = set.join_next().await {
                done.unwrap().unwrap();
            }
            // Close the gate again.
            w5::GATE.acquire_many(count as u32).await.unwrap().forget();
            parked
        }
    };
    mt.block_on(mt.spawn(batch(runs.min(100)))).unwrap();
    let reset = reset_peak_rss();
    let rss_before_kib = status_kib("VmRSS");
    let start = Instant::now();
    start_counting(true);
    let (rss_inflight_kib, heap) = mt.block_on(mt.spawn(batch(runs))).unwrap();
    InflightRow {
        name: name.to_owned(),
        runs,
        rss_before_kib,
        rss_inflight_kib,
        peak_rss_kib: if reset { status_kib("VmHWM") } else { 0 },
        heap_net_bytes: heap.net_bytes,
        total_ms: start.elapsed().as_secs_f64() * 1e3,
    }
}

impl InflightRow {
    fn to_json(&self) -> Value {
        json!({
            "variant": self.name,
            "runs": self.runs,
            "rss_before_kib": self.rss_before_kib,
            "rss_inflight_kib": self.rss_inflight_kib,
            "peak_rss_kib": self.peak_rss_kib,
            "heap_net_bytes": self.heap_net_bytes,
            "total_ms": round2(self.total_ms),
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(InflightRow {
            name: v["variant"].as_str()?.to_owned(),
            runs: v["runs"].as_u64()?,
            rss_before_kib: v["rss_before_kib"].as_u64()?,
            rss_inflight_kib: v["rss_inflight_kib"].as_u64()?,
            peak_rss_kib: v["peak_rss_kib"].as_u64()?,
            heap_net_bytes: v["heap_net_bytes"].as_i64()?,
            total_ms: v["total_ms"].as_f64()?,
        })
    }
}

/// The in-flight measurement of `name`, in a fresh process of this program, so that no other
/// phase's memory is counted or reused.
fn inflight_in_child(name: &str, args: &Args) -> InflightRow {
    let exe = std::env::current_exe().expect("the path of this program");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--inflight-child",
        name,
        "--inflight",
        &args.inflight.to_string(),
    ]);
    if args.subscriber {
        cmd.arg("--subscriber");
    }
    let out = cmd.output().expect("the in-flight child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "in-flight child for {name} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .and_then(|v| InflightRow::from_json(&v))
        .unwrap_or_else(|| panic!("unexpected output of the in-flight child: {stdout}"))
}

/// The commit measured, and whether runtime/, macros/ and src/ differ from it.
fn git_state() -> (String, bool) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let clean = git(&["status", "--porcelain", "--", "runtime", "macros", "src"])
        .is_some_and(|s| s.is_empty());
    (rev, clean)
}

// -------------------------------------------------------------------------------------------
// Allocation sites

/// The frames of a backtrace that say who asked for the memory: (function, file:line),
/// without the allocator's own frames and the standard library's.
fn frames(bt: &Backtrace) -> Vec<(String, String)> {
    let text = bt.to_string();
    let mut all: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(at) = line.strip_prefix("at ") {
            if let Some(last) = all.last_mut() {
                last.1 = short_path(at);
            }
        } else if let Some((num, func)) = line.split_once(": ") {
            if num.chars().all(|c| c.is_ascii_digit()) {
                all.push((func.to_owned(), String::new()));
            }
        }
    }
    // Past the counting allocator (the first frames, in this file), then without std's frames.
    all.into_iter()
        .skip_while(|(f, at)| {
            at.is_empty() || at.contains("bench_w5.rs") || f.starts_with("__rust")
        })
        .filter(|(_, at)| !at.starts_with("rustc:") && !at.is_empty())
        .collect()
}

/// `runtime/src/step.rs:240`, `tokio-1.54.1/src/...`, `rustc:alloc/src/...`.
fn short_path(at: &str) -> String {
    if let Some(i) = at.find("/library/") {
        return format!("rustc:{}", &at[i + 9..]);
    }
    if let Some(i) = at.find(".crates.io-") {
        if let Some(j) = at[i..].find('/') {
            return at[i + j + 1..].to_owned();
        }
    }
    at.trim_start_matches("/work/main/")
        .trim_start_matches("./")
        .to_owned()
}

fn alloc_sites(variants: &[Variant], seq: &Runtime) {
    for &variant in variants {
        let engine = variant.engine();
        seq.block_on(async {
            for _ in 0..100 {
                variant.run(&engine).await.unwrap();
            }
            SITES.lock().unwrap().clear();
            TRACING.store(true, Ordering::SeqCst);
            variant.run(&engine).await.unwrap();
            TRACING.store(false, Ordering::SeqCst);
        });
        let sites = std::mem::take(&mut *SITES.lock().unwrap());
        if std::env::var_os("BENCH_W5_RAW").is_some() {
            for (_, bt) in &sites {
                println!("{bt}");
            }
        }
        println!(
            "\n== {}: {} allocations in one run ==",
            variant.name(),
            sites.len()
        );
        let mut grouped: BTreeMap<Vec<String>, (usize, Vec<usize>)> = BTreeMap::new();
        let mut order = Vec::new();
        for (size, bt) in &sites {
            // The first frames, and the first in hookflow or the workload: who asked.
            let all = frames(bt);
            let mut key: Vec<String> = all
                .iter()
                .take(3)
                .map(|(f, at)| format!("{f}  ({at})"))
                .collect();
            let ours = |at: &str| at.starts_with("runtime/") || at.contains("benches/w5");
            if !all.iter().take(3).any(|(_, at)| ours(at)) {
                if let Some((f, at)) = all.iter().find(|(_, at)| ours(at)) {
                    key.push(format!("... {f}  ({at})"));
                }
            }
            if !grouped.contains_key(&key) {
                order.push(key.clone());
            }
            let entry = grouped.entry(key).or_default();
            entry.0 += 1;
            entry.1.push(*size);
        }
        for (i, key) in order.iter().enumerate() {
            let (count, sizes) = &grouped[key];
            println!("#{} x{count} bytes {sizes:?}", i + 1);
            for frame in key {
                println!("      {frame}");
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Report

fn main() {
    let args = parse_args();
    if args.subscriber {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .init();
    }
    let seq = current_thread();
    if args.alloc_sites {
        alloc_sites(&args.variants, &seq);
        return;
    }
    if args.profile {
        for &variant in &args.variants {
            let engine = variant.engine();
            let mut checker = Checker::new(variant);
            seq.block_on(async {
                for _ in 0..args.n {
                    variant.run(&engine).await.unwrap();
                }
            });
            checker.ran(args.n).unwrap();
        }
        return;
    }
    let mt = two_workers();
    if let Some(name) = &args.inflight_child {
        println!("{}", inflight(name, args.inflight, &mt).to_json());
        return;
    }
    let rss_start = status_kib("VmRSS");

    let rows: Vec<Row> = args
        .variants
        .iter()
        .map(|&v| measure(v, &args, &seq, &mt))
        .collect();
    let probes = if args.probe_count > 0 {
        probe(&args, &seq)
    } else {
        Vec::new()
    };
    let inflights: Vec<InflightRow> = if args.inflight > 0 {
        vec![
            inflight_in_child("w5", &args),
            inflight_in_child("direct", &args),
        ]
    } else {
        Vec::new()
    };
    let subscriber = (!args.subscriber && args.variants.contains(&Variant::W5))
        .then(|| subscriber_cost(&args, &seq));
    let (rev, runtime_clean) = git_state();

    let direct = rows.iter().find(|r| r.variant == Variant::Direct);
    let direct_fail = rows.iter().find(|r| r.variant == Variant::DirectFail);
    // The mean over direct's; and a failing variant's over direct_fail's (the same failure
    // handled by hand).
    let ratio = |r: &Row| direct.map(|d| r.mean_ns / d.mean_ns);
    let ratio_fail = |r: &Row| {
        direct_fail
            .filter(|_| r.variant.fails())
            .map(|d| r.mean_ns / d.mean_ns)
    };

    println!(
        "W5 bench at {rev}{}: n = {}, conc = {} (2 workers), subscriber = {}, start RSS {:.1} MiB",
        if runtime_clean {
            ""
        } else {
            " (runtime modified)"
        },
        args.n,
        args.conc,
        args.subscriber,
        mib(rss_start)
    );
    println!(
        "{:<13} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11} {:>9} {:>8} {:>9} {:>7} {:>8} {:>11}",
        "variant",
        "mean µs",
        "p50 µs",
        "p99 µs",
        "seq runs/s",
        "conc runs/s",
        "tasks run/s",
        "allocs/run",
        "reallocs",
        "bytes/run",
        "fut B",
        "peak MiB",
        "x direct"
    );
    for r in &rows {
        println!(
            "{:<13} {:>9.3} {:>9.3} {:>9.3} {:>11.0} {:>11.0} {:>11.0} {:>9.2}{} {:>8.2} {:>9.0} {:>7} {:>8.1} {:>11}",
            r.variant.name(),
            r.mean_ns / 1e3,
            r.p50_ns / 1e3,
            r.p99_ns / 1e3,
            r.seq_rps,
            r.conc_rps,
            r.conc_tasks_rps,
            r.allocs_per_run,
            if r.exact { " " } else { "~" },
            r.allocs.reallocs as f64 / args.n as f64,
            r.allocs.bytes as f64 / args.n as f64,
            r.future_bytes,
            mib(r.peak_rss_kib),
            match (ratio(r), ratio_fail(r)) {
                (Some(x), Some(f)) if r.variant != Variant::DirectFail => {
                    format!("{x:.1} ({f:.1})")
                }
                (Some(x), _) => format!("{x:.1}"),
                (None, _) => "-".to_owned(),
            },
        );
    }
    println!(
        "(mean: median of {} timed batches of n runs; p50/p99: each run timed alone, ~20 ns of timer included; \
         conc: each run its own task, {} in flight; tasks: {} tasks running runs back to back; \
         x direct: mean over direct's, in parentheses over direct_fail's)",
        REPS, args.conc, args.conc
    );
    if !probes.is_empty() {
        println!(
            "\nno-handler hook probe ({} firings per run, minus the same loop without the hook):",
            args.probe_count
        );
        for p in &probes {
            println!(
                "  {:<14} {:>7.2} ns/fire  {:>6.3} allocs/fire",
                p.name, p.ns_per_fire, p.allocs_per_fire
            );
        }
    }
    for i in &inflights {
        println!(
            "\n{} runs of {} in flight at once: RSS {:.1} MiB (from {:.1} MiB before: +{:.2} KiB a run), \
             peak {:.1} MiB, live heap +{:.2} KiB a run, all done in {:.0} ms",
            i.runs,
            i.name,
            mib(i.rss_inflight_kib),
            mib(i.rss_before_kib),
            (i.rss_inflight_kib as f64 - i.rss_before_kib as f64) / i.runs as f64,
            mib(i.peak_rss_kib),
            i.heap_net_bytes as f64 / 1024.0 / i.runs as f64,
            i.total_ms
        );
    }

    let targets = w5_targets(&rows, &probes, &inflights, subscriber);
    targets.print();

    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "variant": r.variant.name(),
                "mean_ns": round2(r.mean_ns),
                "p50_ns": r.p50_ns,
                "p99_ns": r.p99_ns,
                "seq_runs_per_s": r.seq_rps.round(),
                "conc_runs_per_s": r.conc_rps.round(),
                "conc_tasks_runs_per_s": r.conc_tasks_rps.round(),
                "allocs_per_run": round2(r.allocs_per_run),
                "allocs_exact": r.exact,
                "reallocs_per_run": round2(r.allocs.reallocs as f64 / args.n as f64),
                "bytes_per_run": round2(r.allocs.bytes as f64 / args.n as f64),
                "future_bytes": r.future_bytes,
                "peak_rss_kib": r.peak_rss_kib,
                "ratio_to_direct": ratio(r).map(round2),
                "ratio_to_direct_fail": ratio_fail(r).map(round2),
            })
        })
        .collect();
    let line = json!({
        "bench": "w5",
        "n": args.n,
        "conc": args.conc,
        "workers": 2,
        "subscriber": args.subscriber,
        "start_rss_kib": rss_start,
        "variants": json_rows,
        "no_handler_hook": probes.iter().map(|p| json!({
            "kind": p.name,
            "ns_per_fire": round2(p.ns_per_fire),
            "allocs_per_fire": p.allocs_per_fire,
        })).collect::<Vec<_>>(),
        "inflight": inflights.iter().map(InflightRow::to_json).collect::<Vec<_>>(),
        "git": rev,
        "runtime_clean": runtime_clean,
        "subscriber_ns": subscriber.map(|(without, with)| json!({"without": round2(without), "with": round2(with)})),
        "targets": targets.json(),
    });
    println!("\n{line}");
    black_box(());
}

/// The targets of issue 20 that this run measured (a variant, the probe or the in-flight
/// phase left out leaves its targets out).
fn w5_targets(
    rows: &[Row],
    probes: &[ProbeRow],
    inflights: &[InflightRow],
    subscriber: Option<(f64, f64)>,
) -> targets::Targets {
    let mut t = targets::Targets::default();
    let row = |v: Variant| rows.iter().find(|r| r.variant == v);
    if let Some(r) = row(Variant::W5) {
        t.at_most("w5 mean", r.mean_ns / 1e3, 1.5, "µs");
        t.at_most("allocations per w5 run", r.allocs_per_run, 5.0, "");
    }
    if let Some(r) = row(Variant::W5Fail) {
        t.at_most("w5_fail mean", r.mean_ns / 1e3, 3.0, "µs");
    }
    for p in probes.iter().filter(|p| !p.name.starts_with("after")) {
        t.at_most(
            format!("handler-less `{}` hook, per firing", p.name),
            p.ns_per_fire,
            10.0,
            "ns",
        );
    }
    if let Some(i) = inflights.iter().find(|i| i.name == "w5") {
        t.at_most(
            format!("RSS with {} w5 runs in flight", i.runs),
            mib(i.rss_inflight_kib),
            40.0,
            "MiB",
        );
    }
    if let Some((without, with)) = subscriber {
        t.at_most(
            format!(
                "fmt subscriber at INFO: w5 {:.3} µs / {:.3} µs",
                with / 1e3,
                without / 1e3
            ),
            with / without,
            1.5,
            "x",
        );
    }
    t
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
