//! Code generation.

pub(crate) mod step;
pub(crate) mod workflow;

use proc_macro2::TokenStream;
use quote::quote;
use syn::Path;

/// `::hookflow::__private`, or `<crate = path>::__private`.
pub(crate) fn private(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::hookflow::__private),
    }
}
