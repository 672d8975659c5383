//! Code generation.

pub(crate) mod step;
pub(crate) mod workflow;

use proc_macro2::{Delimiter, Group, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
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

/// `tokens` in a group (a block's `{ ... }`, a call's or a signature's `( ... )`) whose
/// delimiters are at the user's token `span`: rustc reports an error about the block or the
/// call there, while the names inside (the macro's `__hookflow_*` locals) keep the call site's
/// hygiene and resolve together even when `span` comes from a `macro_rules!`. User spans go on
/// delimiters, keywords and paths to items, never on names the macro declares. Not for a
/// parenthesized expression: see [`expr_at`].
pub(crate) fn group_at(span: Span, delimiter: Delimiter, tokens: TokenStream) -> TokenStream {
    let mut group = Group::new(delimiter, tokens);
    group.set_span(span);
    TokenStream::from(TokenTree::Group(group))
}

/// The expression `tokens` as `(tokens,).0`, spanned over the user's tokens `at`: the
/// tuple's parentheses at the first of them, `.0` at the last, so that rustc reports an error
/// about the value (a context of the wrong type) under all of `at`, while the names inside
/// keep the call site's hygiene. Parentheses alone would not do: rustc keeps the span of what
/// they enclose unless theirs contains it, and `unused_parens` reports them.
pub(crate) fn expr_at(at: &impl ToTokens, tokens: TokenStream) -> TokenStream {
    let mut spans = at.to_token_stream().into_iter().map(|t| t.span());
    let first = spans.next().unwrap_or_else(Span::call_site);
    let last = spans.last().unwrap_or(first);
    let mut dot = Punct::new('.', Spacing::Alone);
    dot.set_span(last);
    let mut index = Literal::usize_unsuffixed(0);
    index.set_span(last);
    let mut expr = group_at(first, Delimiter::Parenthesis, quote!(#tokens,));
    expr.extend([TokenTree::Punct(dot), TokenTree::Literal(index)]);
    expr
}
