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

    /// The step called `ident` by a workflow of `module`: the one defined in that module, or
    /// else the only one of that name in the program (or, among several, one if they all
    /// agree on their compensation). `None` for a call that is not a step's (a helper, or a
    /// step method of a type the call does not say). A method's entry counts as its
    /// module's.
    pub fn find(module: &str, ident: &str) -> Option<&'static StepEntry> {
        let mut found: Option<&'static StepEntry> = None;
        let mut agree = true;
        for entry in inventory::iter::<StepEntry> {
            if entry.ident != ident {
                continue;
            }
            if entry.module == module {
                return Some(entry);
            }
            match found {
                None => found = Some(entry),
                Some(other) => agree &= other.compensation == entry.compensation,
            }
        }
        found.filter(|_| agree)
    }
}

inventory::collect!(StepEntry);
