//! What the macros emit when the input has errors: the errors, and items as close to the
//! expected output as the input allows, so that the code using them reports nothing more
//! and IDEs stay helpful (as thiserror's `fallback.rs` and tokio's `token_stream_with_error`
//! do). The items are made with `expand`'s builders, from whatever `attr` and `ast` could
//! make of the input.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::ast::{Step, Workflow};
use crate::attr::WorkflowArgs;
use crate::check::is_reserved_hook;
use crate::expand;
use crate::names::{const_name, pascal_case};

/// The user's item as written, and the errors.
pub(crate) fn expand(item: TokenStream, errors: &syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    quote! {
        #errors
        #item
    }
}

/// The function as written, the errors, and the workflow's type, hook points and registrar,
/// so that registrations and runs elsewhere report nothing more.
///
/// What the signature does not say is `()`, and `execute` never completes (the build fails
/// anyway). Hooks that were reported (a duplicate, a reserved name) are left out; a generic
/// function, or one not named in snake_case (its type would clash with it), gets nothing.
pub(crate) fn workflow(
    function: &ItemFn,
    args: &WorkflowArgs,
    model: Option<&Workflow<'_>>,
    errors: &syn::Error,
) -> TokenStream {
    let errors = errors.to_compile_error();
    let sig = &function.sig;
    let type_ident = pascal_case(&sig.ident);
    let generated = if type_ident == sig.ident || !sig.generics.params.is_empty() {
        TokenStream::new()
    } else {
        let private = expand::private(args.krate.as_ref());
        let input_ty = match sig.inputs.iter().nth(1) {
            Some(syn::FnArg::Typed(p)) if sig.inputs.len() == 2 => {
                let ty = &p.ty;
                quote!(#ty)
            }
            _ => quote!(()),
        };
        let (output_ty, error_ty) = match model.and_then(|m| m.result.spelled) {
            Some((ok, err)) => (quote!(#ok), quote!(#err)),
            None => (quote!(()), quote!(#private::Infallible)),
        };
        let mut seen = Vec::new();
        let hooks = args
            .hooks
            .iter()
            .filter(|h| {
                let constant = const_name(&h.name).to_string();
                let keep = !is_reserved_hook(&h.name.to_string()) && !seen.contains(&constant);
                seen.push(constant);
                keep
            })
            .collect();
        expand::workflow::generate(&expand::workflow::Parts {
            item: function,
            krate: args.krate.as_ref(),
            type_ident,
            name: args
                .name
                .as_ref()
                .map_or_else(|| sig.ident.to_string(), syn::LitStr::value),
            hooks,
            events: args.events.iter().collect(),
            input_ty,
            output_ty,
            error_ty,
            calls: model.map_or(&[], |m| &m.calls[..]),
            version: args.version.as_ref(),
            execute: quote! {
                let _ = (ctx, input);
                #private::pending()
            },
            additional_data: args.additional_data.as_ref(),
            type_params: expand::workflow::TypeParams::of(&sig.generics),
        })
    };
    quote! {
        #errors
        #function
        #generated
    }
}

/// The errors and, when the signature is understood, a function with the step's signature
/// (so that the workflows calling it report nothing more), the user's function nested in it
/// as in the real expansion (so that its body is checked); otherwise the function as written.
pub(crate) fn step(
    function: &ItemFn,
    model: Option<&Step<'_>>,
    errors: &syn::Error,
) -> TokenStream {
    match model.and_then(step_stub) {
        Some(stub) => {
            let errors = errors.to_compile_error();
            quote! {
                #errors
                #stub
            }
        }
        None => expand(quote!(#function), errors),
    }
}

/// The step's function, whose future never completes. Its output is the step's as far as the
/// return type spells it: the output without the compensation data when both are named, the
/// return type as written otherwise. A generic function, a method, or one with `impl Trait` in
/// its signature, gets none.
fn step_stub(step: &Step<'_>) -> Option<TokenStream> {
    let sig = &step.original.sig;
    let has_impl = |ty: &syn::Type| quote!(#ty).to_string().contains("impl");
    if !sig.generics.params.is_empty()
        || step.receiver.is_some()
        || has_impl(step.result.ret)
        || step.inputs.iter().any(|(_, ty)| has_impl(ty))
    {
        return None;
    }
    let returned = match (&step.args.compensate, step.response, step.result.spelled) {
        (_, _, Some((ok, err))) if step.args.best_effort.is_some() => Some((ok, err)),
        (Some(_), Some((out, _)), Some((_, err))) => Some((out, err)),
        _ => None,
    };
    let returned = returned.map(|(output, error)| (quote!(#output), quote!(#error)));
    let output = expand::step::future_output(step, returned.as_ref().map(|(o, e)| (o, e)));
    let private = expand::private(step.args.krate.as_ref());
    let ident = &sig.ident;
    let user_fn = expand::step::user_fn(step);
    let arg_idents = expand::step::arg_idents(step);
    // The inputs and the user's function are used, so that nothing but the errors is reported.
    Some(expand::step::step_fn(
        step,
        &output,
        quote! {
            #user_fn

            let _ = (#ident, __hookflow_ctx, #(#arg_idents),*);
            #private::StepFuture::__new(#private::pending())
        },
    ))
}
