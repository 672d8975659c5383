//! A workflow's tracing spans: named after the workflow, as `#[tracing::instrument]` names a
//! function's. A span's name is fixed where the span is made, so each workflow makes its own.

use proc_macro2::TokenStream;
use quote::quote;

/// `Workflow::__run_span` and `__nested_span` for the workflow called `name`; their target is
/// the runtime's, wherever the workflow is.
pub(super) fn run_spans(name: &str, private: &TokenStream) -> TokenStream {
    quote! {
        fn __run_span(run_id: &#private::RunId) -> #private::tracing::Span {
            #private::tracing::info_span!(target: "hookflow_runtime::run", #name, %run_id)
        }

        fn __nested_span(frame: u32) -> #private::tracing::Span {
            #private::tracing::info_span!(
                target: "hookflow_runtime::run::nested",
                #name,
                nested = true,
                frame
            )
        }
    }
}
