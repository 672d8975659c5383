//! The targets a bench program checks (issue 20): each printed with the value measured in the
//! same run and `met` or `missed`, and given back as JSON for the program's last line.
//!
//! Included by the bench programs with `#[path = "../benches/targets.rs"] mod targets;`.

use serde_json::{Value, json};

/// One target: what is measured, the value, the bound and its direction.
struct Target {
    what: String,
    value: f64,
    bound: f64,
    at_most: bool,
    unit: &'static str,
}

impl Target {
    fn met(&self) -> bool {
        if self.at_most {
            self.value <= self.bound
        } else {
            self.value >= self.bound
        }
    }
}

/// The targets of one bench program, in the order they were added.
#[derive(Default)]
pub struct Targets(Vec<Target>);

impl Targets {
    /// A target met when `value` is at most `bound`.
    #[allow(dead_code)] // each bench program uses the kinds it needs
    pub fn at_most(&mut self, what: impl Into<String>, value: f64, bound: f64, unit: &'static str) {
        self.0.push(Target {
            what: what.into(),
            value,
            bound,
            at_most: true,
            unit,
        });
    }

    /// A target met when `value` is at least `bound`.
    #[allow(dead_code)] // each bench program uses the kinds it needs
    pub fn at_least(
        &mut self,
        what: impl Into<String>,
        value: f64,
        bound: f64,
        unit: &'static str,
    ) {
        self.0.push(Target {
            what: what.into(),
            value,
            bound,
            at_most: false,
            unit,
        });
    }

    /// Prints one line per target: what, the measured value, the bound, `met` or `missed`.
    pub fn print(&self) {
        println!("\ntargets (issue 20), measured in this run:");
        for t in &self.0 {
            println!(
                "  {:<58} {:>12} {} {:>10} {:<8} {}",
                t.what,
                format!("{:.3}", t.value),
                if t.at_most { "<=" } else { ">=" },
                format!("{}", t.bound),
                t.unit,
                if t.met() { "met" } else { "MISSED" },
            );
        }
    }

    /// The targets as JSON: `[{"target", "value", "bound", "at_most", "unit", "met"}]`.
    pub fn json(&self) -> Value {
        self.0
            .iter()
            .map(|t| {
                json!({
                    "target": t.what,
                    "value": (t.value * 1000.0).round() / 1000.0,
                    "bound": t.bound,
                    "at_most": t.at_most,
                    "unit": t.unit,
                    "met": t.met(),
                })
            })
            .collect()
    }
}
