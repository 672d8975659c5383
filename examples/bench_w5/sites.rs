//! `--alloc-sites`: every allocation of one run, with who asked for it.

use std::backtrace::Backtrace;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use tokio::runtime::Runtime;

use crate::counting::{SITES, TRACING};
use crate::w5::Variant;

/// The frames of a backtrace that say who asked for the memory: (function, file:line),
/// without the allocator's own frames and the standard library's.
pub(crate) fn frames(bt: &Backtrace) -> Vec<(String, String)> {
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
        .skip_while(|(f, at)| at.is_empty() || at.contains("bench_w5/") || f.starts_with("__rust"))
        .filter(|(_, at)| !at.starts_with("rustc:") && !at.is_empty())
        .collect()
}

/// `runtime/src/step.rs:240`, `tokio-1.54.1/src/...`, `rustc:alloc/src/...`.
pub(crate) fn short_path(at: &str) -> String {
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

pub(crate) fn alloc_sites(variants: &[Variant], seq: &Runtime) {
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
