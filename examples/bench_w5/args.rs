//! The command line.

use crate::w5::{Probe, Variant};

pub(crate) struct Args {
    pub(crate) n: u64,
    pub(crate) conc: u64,
    pub(crate) variants: Vec<Variant>,
    pub(crate) subscriber: bool,
    pub(crate) inflight: u64,
    pub(crate) probe_count: u32,
    pub(crate) alloc_sites: bool,
    pub(crate) profile: bool,
    pub(crate) inflight_child: Option<String>,
    pub(crate) profile_probe: Option<Probe>,
}

pub(crate) fn parse_args() -> Args {
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
        profile_probe: None,
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
            "--profile-probe" => {
                args.profile = true;
                args.profile_probe = Some(match value().as_str() {
                    "baseline" => Probe::Baseline,
                    "step" => Probe::Step,
                    "before" => Probe::Before,
                    "after" => Probe::After,
                    other => usage(&format!("probe {other}")),
                });
            }
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

pub(crate) fn usage(problem: &str) -> ! {
    eprintln!(
        "bench_w5: {problem}\nusage: bench_w5 [--n N] [--conc C] [--variants a,b] [--subscriber] \
         [--inflight K] [--probe-count C] [--alloc-sites] [--profile] [--profile-probe baseline|step|before|after]"
    );
    std::process::exit(2)
}
