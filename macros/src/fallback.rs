//! What the macros emit when the input has errors: the user's item as written plus the
//! errors, so that IDEs and later errors stay sane (as thiserror's `fallback.rs` and tokio's
//! `token_stream_with_error` do).

use proc_macro2::TokenStream;
use quote::quote;

pub(crate) fn expand(item: TokenStream, errors: &syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    quote! {
        #errors
        #item
    }
}
