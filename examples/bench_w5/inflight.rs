//! Many runs in flight at once, each variant in a child process of its own.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::args::Args;
use crate::counting::{start_counting, stop_counting};
use crate::report::round2;
use crate::rss::{reset_peak_rss, status_kib};
use crate::w5;

/// Many runs in flight at once: spawned on the 2-worker runtime, each parked in step 4, the
/// RSS read when all are parked.
pub(crate) struct InflightRow {
    pub(crate) name: String,
    pub(crate) runs: u64,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_inflight_kib: u64,
    pub(crate) peak_rss_kib: u64,
    pub(crate) heap_net_bytes: i64,
    pub(crate) total_ms: f64,
}

pub(crate) fn inflight(name: &str, runs: u64, mt: &Runtime) -> InflightRow {
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
    pub(crate) fn to_json(&self) -> Value {
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
pub(crate) fn inflight_in_child(name: &str, args: &Args) -> InflightRow {
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
