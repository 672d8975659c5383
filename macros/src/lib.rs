//! The attribute macros of [hookflow](https://docs.rs/hookflow): `#[workflow]` and `#[step]`.
//!
//! Depend on `hookflow`, which re-exports them; their documentation, with examples, is there.
//! Generated code names the runtime only through `::hookflow::__private` (or
//! `<crate = path>::__private`).
//!
//! The crate is split by stage: [`attr`] parses the attribute arguments, [`ast`] models the
//! annotated function, [`check`] validates across both, [`expand`] generates, and
//! [`fallback`] emits the user's item unchanged beside the errors. Every stage reports into
//! one [`ctxt::Ctxt`], so every mistake is reported in one build.

#![warn(unreachable_pub)]

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod fallback;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

use crate::ctxt::Ctxt;

/// Turns an `async fn(ctx: &WorkflowContext, input: Input) -> Result<Output, Error>` into a
/// workflow with typed hooks. See the `hookflow` crate for the full documentation.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    let output = expand_workflow(args.into(), item.clone())
        .unwrap_or_else(|errors| fallback::expand(item, &errors));
    debug_print("workflow", &output);
    output.into()
}

/// Turns an `async fn(ctx: &StepContext, inputs...) -> Result<..., Error>` into a step:
/// journaled, traced, panic-safe, with its compensation. See the `hookflow` crate.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    let output = expand_step(args.into(), item.clone())
        .unwrap_or_else(|errors| fallback::expand(item, &errors));
    debug_print("step", &output);
    output.into()
}

fn expand_workflow(args: TokenStream2, item: TokenStream2) -> Result<TokenStream2, syn::Error> {
    let function: syn::ItemFn = syn::parse2(item)
        .map_err(|e| syn::Error::new(e.span(), "#[workflow] goes on an `async fn`"))?;
    let cx = Ctxt::new();
    let args = attr::WorkflowArgs::parse(&cx, args);
    let model = ast::Workflow::from_syn(&cx, args, &function);
    if let Some(model) = &model {
        check::workflow(&cx, model);
    }
    let has_errors = cx.has_errors();
    cx.check()?;
    match model {
        Some(model) if !has_errors => Ok(expand::workflow::expand(&model)),
        _ => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "invalid #[workflow]",
        )),
    }
}

fn expand_step(args: TokenStream2, item: TokenStream2) -> Result<TokenStream2, syn::Error> {
    let function: syn::ItemFn = syn::parse2(item)
        .map_err(|e| syn::Error::new(e.span(), "#[step] goes on an `async fn`"))?;
    let cx = Ctxt::new();
    let args = attr::StepArgs::parse(&cx, args);
    let model = ast::Step::from_syn(&cx, args, &function);
    if let Some(model) = &model {
        check::step(&cx, model);
    }
    cx.check()?;
    match model {
        Some(model) => Ok(expand::step::expand(&model)),
        None => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "invalid #[step]",
        )),
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
