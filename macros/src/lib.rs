//! The attribute macros of [hookflow](https://docs.rs/hookflow): `#[workflow]` and `#[step]`.
//!
//! Depend on `hookflow`, which re-exports them; their documentation, with examples, is there.
//! Generated code names the runtime only through `::hookflow::__private` (or
//! `<crate = path>::__private`).
//!
//! The crate is split by stage: `attr` parses the attribute arguments, `ast` models the
//! annotated function, `check` validates across both, `expand` generates, and
//! `fallback` emits, beside the errors, the items the rest of the code expects (the
//! workflow's type and registrar, a function with the step's signature), so that a mistake is
//! not reported again where they are used. Every stage reports into one `ctxt::Ctxt`, so
//! every mistake is reported in one build.
//!
//! The modules are layers: each imports only from the layers below its own (or from its own
//! layer), never from above. `tests/layers.rs` checks it, with this map in its
//! `MACROS` table and a check that the two agree:
//!
//! | layer | modules         | what                                                        |
//! |-------|-----------------|-------------------------------------------------------------|
//! | 1     | `ctxt`, `names` | error accumulation; naming and token-text helpers           |
//! | 2     | `attr`, `event_decl` | parses the attribute arguments into plain data (`event_decl`: one `events(...)` entry) |
//! | 3     | `ast`           | models the annotated function, with `attr`'s output         |
//! | 4     | `check`         | cross-cutting checks, a pass of its own after `ast`         |
//! | 5     | `expand`        | generates the code (`expand::step`, `expand::workflow`)     |
//! | 6     | `fallback`      | what is emitted beside errors, with `expand`'s builders     |
//! | 7     | `lib`           | the entry points: parse, model, check, expand or fall back  |
//!
//! The user's code is never inside a lint attribute of the macros': a step's body stays in a
//! function of its own (nested in the generated one, which carries no `#[allow]`), and the
//! generated code triggers none of the lints it used to allow (`unused_parens`,
//! `unused_braces`, `clippy::manual_async_fn`), so that a crate may even `forbid` them
//! (`tests/ui/pass/generated-code-needs-no-allow.rs`).
//!
//! Errors point at the user's tokens: checks are emitted as calls spanned there
//! (`step_data::<Receipt>()` at `Receipt`, `compensate::<Data, _>(undo)` at `undo`), and the
//! runtime receives the checked values in wrappers that always meet its bounds, so that no
//! second error comes from inside the expansion. `tests/ui` holds one case per mistake.

#![warn(unreachable_pub)]

mod ast;
mod attr;
mod check;
mod ctxt;
mod event_decl;
mod expand;
mod fallback;
mod names;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

use crate::ctxt::Ctxt;

/// Turns an `async fn(ctx: &WorkflowContext, input: Input) -> Result<Output, Error>` into a
/// workflow with typed hooks. See the `hookflow` crate for the full documentation.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    let output = expand_workflow(args.into(), item.into());
    debug_print("workflow", &output);
    output.into()
}

/// Turns an `async fn(ctx: &StepContext, inputs...) -> Result<..., Error>` into a step:
/// journaled, traced, panic-safe, with its compensation. See the `hookflow` crate.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    let output = expand_step(args.into(), item.into());
    debug_print("step", &output);
    output.into()
}

fn expand_workflow(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(e) => {
            let error = syn::Error::new(e.span(), "#[workflow] goes on an `async fn`");
            return fallback::expand(item, &error);
        }
    };
    let cx = Ctxt::new();
    let args = attr::WorkflowArgs::parse(&cx, args);
    let model = ast::Workflow::from_syn(&cx, &args, &function);
    check::workflow(&cx, &args);
    match (cx.check(), model) {
        (Ok(()), Some(model)) => expand::workflow::expand(&model),
        (Err(errors), model) => fallback::workflow(&function, &args, model.as_ref(), &errors),
        (Ok(()), None) => unreachable!("a workflow without a model has errors"),
    }
}

fn expand_step(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(e) => {
            let error = syn::Error::new(e.span(), "#[step] goes on an `async fn`");
            return fallback::expand(item, &error);
        }
    };
    let cx = Ctxt::new();
    let args = attr::StepArgs::parse(&cx, args);
    let model = ast::Step::from_syn(&cx, &args, &function);
    if let Some(model) = &model {
        check::step(&cx, model);
    }
    match (cx.check(), model) {
        (Ok(()), Some(model)) => expand::step::expand(&model),
        (Err(errors), model) => fallback::step(&function, model.as_ref(), &errors),
        (Ok(()), None) => unreachable!("a step without a model has errors"),
    }
}

/// `HOOKFLOW_MACROS_DEBUG=1` prints each expansion to stderr at compile time.
fn debug_print(what: &str, output: &TokenStream2) {
    match std::env::var("HOOKFLOW_MACROS_DEBUG") {
        Ok(v) if !v.is_empty() && v != "0" => {
            eprintln!("---- #[{what}] expansion ----\n{output}\n---- end ----");
        }
        _ => {}
    }
}
