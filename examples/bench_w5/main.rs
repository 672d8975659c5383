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
//!   (`valgrind --tool=callgrind`, `perf record`);
//! - `--profile-probe KIND` (`baseline`, `step`, `before`, `after`) only runs N probe runs of
//!   `--probe-count` firings each, untimed, without a hook table, for a profiler.
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

use std::hint::black_box;

use serde_json::{Value, json};

#[path = "../../benches/targets.rs"]
mod targets;
#[path = "../../benches/w5/mod.rs"]
mod w5;

mod args;
mod counting;
mod inflight;
mod measure;
mod probe;
mod report;
mod rss;
mod sites;

use args::parse_args;
use counting::Counting;
use inflight::{InflightRow, inflight, inflight_in_child};
use measure::{REPS, Row, current_thread, measure, subscriber_cost, two_workers};
use probe::probe;
use report::{git_state, round2, w5_targets};
use rss::{mib, status_kib};
use sites::alloc_sites;
use w5::{Checker, Variant};

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    if let Some(kind) = args.profile_probe {
        let engine = w5::probe_engine(false);
        seq.block_on(async {
            for _ in 0..args.n {
                w5::probe_run(&engine, kind, args.probe_count)
                    .await
                    .unwrap();
            }
        });
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
