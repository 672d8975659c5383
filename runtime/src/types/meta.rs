//! The [`Workflow`] trait that `#[workflow]` implements, and the static description of a
//! workflow (its hooks and the steps its body calls) for docs, diagrams and tooling.

use std::time::Duration;

use crate::types::RetryPolicy;

/// What `#[workflow]` knows of a workflow at compile time.
#[derive(Debug)]
pub struct WorkflowMeta {
    name: &'static str,
    hooks: &'static [HookMeta],
    body: &'static [BodyCall],
    module: &'static str,
}

impl WorkflowMeta {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        hooks: &'static [HookMeta],
        body: &'static [BodyCall],
    ) -> Self {
        WorkflowMeta {
            name,
            hooks,
            body,
            module: "",
        }
    }

    #[doc(hidden)]
    pub const fn __in(mut self, module: &'static str) -> Self {
        self.module = module;
        self
    }

    /// The module that defines the workflow (`module_path!()`; empty for a description made
    /// by hand).
    pub const fn module(&self) -> &'static str {
        self.module
    }

    /// The workflow's name (the function's name).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The declared hooks, in declaration order.
    pub const fn hooks(&self) -> &'static [HookMeta] {
        self.hooks
    }

    /// The step calls and hook firings the macro sees in the body, in source order.
    pub const fn body(&self) -> &'static [BodyCall] {
        self.body
    }

    /// The names of the steps the body calls, in source order (those of `parallel!`
    /// branches included, branch after branch).
    pub fn steps(&self) -> impl Iterator<Item = &'static str> {
        fn collect(calls: &'static [BodyCall], out: &mut Vec<&'static str>) {
            for call in calls {
                match call {
                    BodyCall::Step(name) => out.push(name),
                    BodyCall::Parallel(branches) => {
                        for branch in *branches {
                            collect(branch, out);
                        }
                    }
                    BodyCall::Hook(_) | BodyCall::Workflow(_) => {}
                }
            }
        }
        let mut steps = Vec::new();
        collect(self.body, &mut steps);
        steps.into_iter()
    }

    /// The index of hook `name`; `on_compensation_failed` comes after the declared hooks.
    pub fn hook_index(&self, name: &str) -> Option<usize> {
        if name == "on_compensation_failed" {
            return Some(self.hooks.len());
        }
        self.hooks.iter().position(|h| h.name == name)
    }

    /// How many events a completed run's journal holds, as far as the body's calls tell: the
    /// run's start and end, each step's start and completion, each hook firing with one
    /// handler (a `step` hook's handler is a step too), at least 4 and at most 64. What a new
    /// run's journal reserves. Loops, calls not made, hooks with more or fewer handlers and
    /// failures make the real count differ: past it the journal grows as any `Vec`.
    pub(crate) const fn journal_estimate(&self) -> usize {
        let events = 2 + body_events(self.body, self.hooks);
        if events < 4 {
            4
        } else if events > 64 {
            64
        } else {
            events
        }
    }
}

/// The events the calls `calls` journal (see [`WorkflowMeta::journal_estimate`]).
const fn body_events(calls: &[BodyCall], hooks: &[HookMeta]) -> usize {
    let mut events = 0;
    let mut i = 0;
    while i < calls.len() {
        events += match &calls[i] {
            // Started and completed (or a function that takes the context: an over-estimate).
            BodyCall::Step(_) => 2,
            // Fired, and its handler's end; a `step` hook's handler started and completed too.
            BodyCall::Hook(name) => match kind_of(hooks, name) {
                Some(HookKind::Step) => 4,
                _ => 2,
            },
            // Started and ended; what it runs inside is not known here.
            BodyCall::Workflow(_) => 2,
            BodyCall::Parallel(branches) => {
                let mut sum = 0;
                let mut b = 0;
                while b < branches.len() {
                    sum += body_events(branches[b], hooks);
                    b += 1;
                }
                sum
            }
        };
        i += 1;
    }
    events
}

/// The kind of the hook named `name` among `hooks`.
const fn kind_of(hooks: &[HookMeta], name: &str) -> Option<HookKind> {
    let mut i = 0;
    while i < hooks.len() {
        if hooks[i].name.len() == name.len() {
            let (a, b) = (hooks[i].name.as_bytes(), name.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return Some(hooks[i].kind);
            }
        }
        i += 1;
    }
    None
}

/// A declared hook.
///
/// Built by `#[workflow]`; read it through its accessors (it may gain fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookMeta {
    name: &'static str,
    kind: HookKind,
    payload: &'static str,
    result: Option<&'static str>,
}

impl HookMeta {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        kind: HookKind,
        payload: &'static str,
        result: Option<&'static str>,
    ) -> Self {
        HookMeta {
            name,
            kind,
            payload,
            result,
        }
    }

    /// The hook's name, as declared.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The hook's kind.
    pub const fn kind(&self) -> HookKind {
        self.kind
    }

    /// Its payload type, as written.
    pub const fn payload(&self) -> &'static str {
        self.payload
    }

    /// What its handlers return (`step` hooks), as written.
    pub const fn result(&self) -> Option<&'static str> {
        self.result
    }
}

/// The kind of a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// Handlers may change the data or abort.
    Before,
    /// Handlers observe; their errors are recorded.
    After,
    /// Handlers are steps, compensated like any step.
    Step,
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HookKind::Before => "before",
            HookKind::After => "after",
            HookKind::Step => "step",
        })
    }
}

/// Something the workflow body does, as the macro sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCall {
    /// A call `name(ctx, ...)`: a step (or a function taking the context).
    Step(&'static str),
    /// `ctx.hook(Workflow::NAME, ...)`: a hook firing, by hook name.
    Hook(&'static str),
    /// `Child::call(ctx, ...)`: a nested workflow, by type name.
    Workflow(&'static str),
    /// `parallel!(a(ctx, ..), b(ctx, ..))`: what each branch calls, branch by branch.
    Parallel(&'static [&'static [BodyCall]]),
}

/// A step's static description and options, generated by `#[step]`.
#[derive(Debug)]
pub struct StepMeta {
    name: &'static str,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
    best_effort: bool,
    compensate_retry: Option<RetryPolicy>,
    transactional: bool,
}

impl StepMeta {
    #[doc(hidden)]
    pub const fn __new(name: &'static str) -> Self {
        StepMeta {
            name,
            retry: None,
            timeout: None,
            best_effort: false,
            compensate_retry: None,
            transactional: false,
        }
    }
    #[doc(hidden)]
    pub const fn __retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
    #[doc(hidden)]
    pub const fn __timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    #[doc(hidden)]
    pub const fn __best_effort(mut self) -> Self {
        self.best_effort = true;
        self
    }
    #[doc(hidden)]
    pub const fn __compensate_retry(mut self, policy: RetryPolicy) -> Self {
        self.compensate_retry = Some(policy);
        self
    }
    /// The step's name (`name = "..."`, or the function's name).
    pub const fn name(&self) -> &'static str {
        self.name
    }
    /// The step's retry policy (`retry(...)`).
    pub const fn retry(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }
    /// The step's timeout (`timeout = "..."`).
    pub const fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    /// Whether a failure of the step lets the workflow go on (`best_effort`).
    pub const fn is_best_effort(&self) -> bool {
        self.best_effort
    }
    /// The retry policy of the step's compensation (`compensate_retry(...)`).
    pub const fn compensate_retry(&self) -> Option<&RetryPolicy> {
        self.compensate_retry.as_ref()
    }
    #[doc(hidden)]
    pub const fn __transactional(mut self) -> Self {
        self.transactional = true;
        self
    }
    /// Whether the step runs in a transaction on the store's database, committed with its
    /// journal record (`transaction`).
    pub const fn is_transactional(&self) -> bool {
        self.transactional
    }
}

#[cfg(test)]
mod tests {
    use super::{BodyCall, HookKind, HookMeta, WorkflowMeta};

    const HOOKS: &[HookMeta] = &[
        HookMeta::__new("check", HookKind::Before, "Cart", None),
        HookMeta::__new("after_step3", HookKind::Step, "State", Some("Seen")),
    ];

    #[test]
    fn a_journal_reserves_what_the_body_calls_record() {
        // W5: five steps and a `step` hook: 2 + 5 x 2 + 4, what a completed run records.
        const W5: &[BodyCall] = &[
            BodyCall::Step("step1"),
            BodyCall::Step("step2"),
            BodyCall::Step("step3"),
            BodyCall::Hook("after_step3"),
            BodyCall::Step("step4"),
            BodyCall::Step("step5"),
        ];
        assert_eq!(WorkflowMeta::__new("w5", HOOKS, W5).journal_estimate(), 16);
        // A `before` hook, two parallel branches and a nested workflow.
        const MIXED: &[BodyCall] = &[
            BodyCall::Hook("check"),
            BodyCall::Parallel(&[&[BodyCall::Step("a")], &[BodyCall::Step("b")]]),
            BodyCall::Workflow("Refund"),
        ];
        assert_eq!(
            WorkflowMeta::__new("mixed", HOOKS, MIXED).journal_estimate(),
            2 + 2 + 4 + 2
        );
        // At least 4, at most 64.
        assert_eq!(WorkflowMeta::__new("empty", &[], &[]).journal_estimate(), 4);
        const MANY: &[BodyCall] = &[BodyCall::Step("s"); 40];
        assert_eq!(
            WorkflowMeta::__new("many", &[], MANY).journal_estimate(),
            64
        );
    }
}
