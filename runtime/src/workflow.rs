//! The [`Workflow`] trait that `#[workflow]` implements, and the static description of a
//! workflow (its hooks and the steps its body calls) for docs, diagrams and tooling.

use std::fmt::{Debug, Display};
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::WorkflowContext;

/// A workflow: a typed async function with hooks, run by an [`Engine`](crate::Engine).
///
/// `#[workflow]` implements it on a type named after the function (`checkout` -> `Checkout`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow",
    note = "put #[workflow] on an `async fn name(ctx: &WorkflowContext, input: Input) -> Result<Output, Error>` and use the type it generates (`name` in PascalCase)"
)]
pub trait Workflow: Sized + Send + Sync + 'static {
    /// What a run takes. A serde type, so that a store can record it and a resumed run
    /// can have it back.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// What a completed run returns. A serde type, so that an idempotent start can return a
    /// recorded output.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// What a failed run returns.
    type Error: Display + Debug + Send + 'static;

    /// The workflow's static description.
    const META: &'static WorkflowMeta;

    /// The workflow's version (`#[workflow(version = N)]`, 1 by default). A store records
    /// it with each run; an engine resumes only runs of the versions it knows.
    const VERSION: u32 = 1;

    /// Runs the workflow body. Call it through an engine, which sets up the run around it.
    fn execute(
        ctx: &WorkflowContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send + '_;

    /// Runs this workflow inside another's run, as one step of it:
    /// `Refund::call(ctx, input).await?` in the parent's body.
    ///
    /// The child shares the parent's run (journal, bag, services, actor, additional data) and
    /// fires its own hooks. If it fails, its completed steps are compensated at once, as a
    /// unit, and its error is returned; if it completes and the parent fails later, its steps
    /// are compensated with the parent's, in reverse order.
    fn call(
        ctx: &WorkflowContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send + '_ {
        crate::nested::call::<Self>(ctx, input)
    }
}

/// What `#[workflow]` knows of a workflow at compile time.
#[derive(Debug)]
pub struct WorkflowMeta {
    name: &'static str,
    hooks: &'static [HookMeta],
    body: &'static [BodyCall],
}

impl WorkflowMeta {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        hooks: &'static [HookMeta],
        body: &'static [BodyCall],
    ) -> Self {
        WorkflowMeta { name, hooks, body }
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
