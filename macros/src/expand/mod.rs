//! Code generation.

pub(crate) mod step;
pub(crate) mod workflow;

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::Path;

/// `::hookflow::__private`, or `<crate = path>::__private`.
pub(crate) fn private(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::hookflow::__private),
    }
}

/// [`private`] with `span` on the tokens the macro makes (a user's `crate = path` keeps its
/// own), for code whose errors should point at a user's token. A path to items, it resolves
/// the same whatever the span's hygiene.
pub(crate) fn private_at(krate: Option<&Path>, span: Span) -> TokenStream {
    match krate {
        Some(path) => quote_spanned!(span=> #path::__private),
        None => quote_spanned!(span=> ::hookflow::__private),
    }
}

/// `tokens` in a group (`{ ... }` or `( ... )`) whose delimiters are at the user's token
/// `span`: rustc reports an error about the expression there, while the names inside (the
/// macro's `__hookflow_*` locals) keep the call site's hygiene and resolve together even when
/// `span` comes from a `macro_rules!`. User spans go on delimiters, keywords and paths to
/// items, never on names the macro declares.
pub(crate) fn group_at(span: Span, delimiter: Delimiter, tokens: TokenStream) -> TokenStream {
    let mut group = Group::new(delimiter, tokens);
    group.set_span(span);
    TokenStream::from(TokenTree::Group(group))
}
