//! What the macros emit when the input has errors: the errors, and items as close to the
//! expected output as the input allows, so that the code using them reports nothing more
//! and IDEs stay helpful (as thiserror's `fallback.rs` and tokio's `token_stream_with_error`
//! do).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::ast::{Step, Workflow};
use crate::attr::WorkflowArgs;
use crate::expand;

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
pub(crate) fn workflow(
    function: &ItemFn,
    args: &WorkflowArgs,
    model: Option<&Workflow<'_>>,
    errors: &syn::Error,
) -> TokenStream {
    let errors = errors.to_compile_error();
    let generated = expand::workflow::expand_fallback(function, args, model);
    quote! {
        #errors
        #function
        #generated
    }
}

/// The errors and, when the signature is understood, a function with the step's signature
/// (so that the workflows calling it report nothing more); otherwise the function as written.
pub(crate) fn step(
    function: &ItemFn,
    model: Option<&Step<'_>>,
    errors: &syn::Error,
) -> TokenStream {
    match model.and_then(expand::step::expand_fallback) {
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
