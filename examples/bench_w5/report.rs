//! The measured commit and the targets of issue 20.

use crate::inflight::InflightRow;
use crate::measure::Row;
use crate::probe::ProbeRow;
use crate::rss::mib;
use crate::targets;
use crate::w5::Variant;

/// The commit measured, and whether runtime/, macros/ and src/ differ from it.
pub(crate) fn git_state() -> (String, bool) {
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

/// The targets of issue 20 that this run measured (a variant, the probe or the in-flight
/// phase left out leaves its targets out).
pub(crate) fn w5_targets(
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

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
