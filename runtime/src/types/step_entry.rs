//! The steps of the program, registered at link time by `#[step]` (through `inventory`), so
//! that a workflow's diagram can find what its body's calls are: which of them are steps,
//! and which have a compensation. The workflow macro sees the calls' names only; each
//! `#[step]` submits its own entry.

/// One `#[step]` function or method of the program, as `#[step]` registered it.
#[derive(Debug)]
pub struct StepEntry {
    ident: &'static str,
    module: &'static str,
    compensation: Option<&'static str>,
}

impl StepEntry {
    #[doc(hidden)]
    pub const fn __new(
        ident: &'static str,
        module: &'static str,
        compensation: Option<&'static str>,
    ) -> Self {
        StepEntry {
            ident,
            module,
            compensation,
        }
    }

    /// The step function's (or method's) identifier.
    pub fn ident(&self) -> &'static str {
        self.ident
    }

    /// The module that defines it (`module_path!()`).
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// Its `compensate = ...` as written (`release_inventory`, `Self::void`), if it has one.
    pub fn compensation(&self) -> Option<&'static str> {
        self.compensation
    }

    /// The step called `ident` by a workflow of `module`: among the program's steps of that
    /// name, the one whose module is nearest the workflow's (the most leading path segments in
    /// common: the workflow's own module, then one beside or below it, such as a `steps`
    /// module of its own, before one elsewhere in the crate). Among several equally near, one
    /// if they all agree on their compensation. `None` for a call that is not a step's (a
    /// helper, or a step method of a type the call does not say). A method's entry counts as
    /// its module's.
    pub fn find(module: &str, ident: &str) -> Option<&'static StepEntry> {
        let mut found: Option<(usize, &'static StepEntry)> = None;
        let mut agree = true;
        for entry in inventory::iter::<StepEntry> {
            if entry.ident != ident {
                continue;
            }
            if entry.module == module {
                return Some(entry);
            }
            let near = common_segments(module, entry.module);
            match found {
                Some((best, _)) if near < best => {}
                Some((best, other)) if near == best => {
                    agree &= other.compensation == entry.compensation;
                }
                _ => {
                    found = Some((near, entry));
                    agree = true;
                }
            }
        }
        found.filter(|_| agree).map(|(_, entry)| entry)
    }
}

/// How many leading `::` segments the module paths `a` and `b` have in common.
fn common_segments(a: &str, b: &str) -> usize {
    a.split("::")
        .zip(b.split("::"))
        .take_while(|(x, y)| x == y)
        .count()
}

inventory::collect!(StepEntry);
