//! The builders of `#[step]`'s expansion shared with the fallback (`crate::fallback::step`):
//! the generated function's signature and the user's function nested in it.

use proc_macro2::{Delimiter, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use crate::ast::Step;
use crate::expand::group_at;

/// The names the generated function gives the step's inputs: `__hookflow_arg0`, ...
pub(crate) fn arg_idents(step: &Step<'_>) -> Vec<Ident> {
    (0..step.inputs.len())
        .map(|i| format_ident!("__hookflow_arg{}", i))
        .collect()
}

/// What the generated function's future yields: the step's output and error as the workflow
/// sees them (`returned`, the output without the compensation data), or for a best-effort
/// step its output if it succeeded; `None` for the return type as written.
pub(crate) fn future_output(
    step: &Step<'_>,
    returned: Option<(&TokenStream, &TokenStream)>,
) -> TokenStream {
    let private = crate::expand::private(step.args.krate.as_ref());
    match returned {
        Some((output, _)) if step.args.best_effort.is_some() => {
            quote!(#private::Option<#output>)
        }
        Some((output, error)) => quote!(#private::Result<#output, #error>),
        None => {
            let ret = step.result.ret;
            quote!(#ret)
        }
    }
}

/// The user's function as the generated one nests it, under its own name:
/// `async fn charge(ctx: &StepContext, amount: u64) -> Result<u64, PaymentError> { ... }`.
/// The user's body appears nowhere else, and no attribute of the macro's covers it: the lints
/// the user set apply to it as written. A generic step's nested function declares the same
/// parameters. A step method's body cannot be nested (a nested function has no `self` or
/// `Self`): it becomes a hidden method beside the generated one ([`method_body`]), and this
/// is empty.
pub(crate) fn user_fn(step: &Step<'_>) -> TokenStream {
    if step.receiver.is_some() {
        return TokenStream::new();
    }
    let item = step.original;
    let ident = &item.sig.ident;
    body_fn(step, ident, None)
}

/// The hidden method holding a step method's body: `async fn __hookflow_capture(&self, ctx:
/// &StepContext, ...) -> ... { body }`, with the user's lint and `cfg` attributes.
pub(crate) fn method_body(step: &Step<'_>) -> TokenStream {
    let Some(receiver) = step.receiver else {
        return TokenStream::new();
    };
    let ident = body_method_ident(step);
    let attrs = step.original.attrs.iter().filter(|a| {
        ["allow", "warn", "deny", "forbid", "expect", "cfg"]
            .iter()
            .any(|name| a.path().is_ident(name))
    });
    let body = body_fn(step, &ident, Some(receiver));
    quote! {
        #(#attrs)*
        #[doc(hidden)]
        #body
    }
}

/// `__hookflow_capture`: the hidden method of a step method `capture`.
pub(crate) fn body_method_ident(step: &Step<'_>) -> Ident {
    let ident = &step.original.sig.ident;
    format_ident!("__hookflow_{}", ident, span = ident.span())
}

pub(super) fn body_fn(
    step: &Step<'_>,
    ident: &Ident,
    receiver: Option<&syn::Receiver>,
) -> TokenStream {
    let item = step.original;
    let ctx_pat = match item
        .sig
        .inputs
        .iter()
        .find(|a| matches!(a, syn::FnArg::Typed(_)))
    {
        Some(syn::FnArg::Typed(p)) => &p.pat,
        _ => unreachable!("the model has a typed context parameter"),
    };
    let ctx_ty = step.ctx_ty;
    let pats = step.inputs.iter().map(|(pat, _)| *pat);
    let tys = step.inputs.iter().map(|(_, ty)| *ty);
    let ret = step.result.ret;
    let block = &item.block;
    let generics = &item.sig.generics;
    let where_clause = &generics.where_clause;
    let receiver = receiver.map(|r| quote!(#r,));
    quote! {
        async fn #ident #generics(#receiver #ctx_pat: #ctx_ty, #(#pats: #tys),*) -> #ret #where_clause #block
    }
}

/// The turbofish calling the user's function with the step's type and const parameters
/// (`::<S>`); empty for a step without them.
pub(super) fn turbofish(step: &Step<'_>) -> TokenStream {
    let params = type_and_const_params(step);
    if params.is_empty() {
        TokenStream::new()
    } else {
        quote!(::<#(#params),*>)
    }
}

/// The step's type and const parameters' names.
pub(super) fn type_and_const_params<'a>(step: &Step<'a>) -> Vec<&'a Ident> {
    step.original
        .sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => Some(&t.ident),
            syn::GenericParam::Const(c) => Some(&c.ident),
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect()
}

/// Replaces the elided lifetimes of a step's input types (`&[LineItem]`, `Cow<'_, str>`)
/// with `'ctx`, the generated function's: the future it returns borrows them.
pub(super) fn ctx_lifetime_inputs(ty: &syn::Type, ctx_lifetime: &syn::Lifetime) -> syn::Type {
    struct Elided<'l>(&'l syn::Lifetime);
    impl syn::visit_mut::VisitMut for Elided<'_> {
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            if r.lifetime.is_none() {
                r.lifetime = Some(self.0.clone());
            }
            syn::visit_mut::visit_type_reference_mut(self, r);
        }
        fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
            if l.ident == "_" {
                *l = self.0.clone();
            }
        }
        // `impl Fn(&T)` and `fn(&T)` keep their own (higher-ranked) elision.
        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
        fn visit_parenthesized_generic_arguments_mut(
            &mut self,
            _: &mut syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Elided(ctx_lifetime), &mut ty);
    ty
}

/// The generated function, with the user's attributes and visibility: `fn charge<'ctx>(
/// __hookflow_ctx: &'ctx WorkflowContext, __hookflow_arg0: u64) -> StepFuture<impl
/// Future<Output = #output> + Send + 'ctx> { #body }`. Its keyword, parentheses, braces,
/// return type and `'ctx` are at the step's name (a future that is not `Send` is reported at
/// the function that returns it, and `'ctx` resolves the same wherever it appears).
pub(crate) fn step_fn(step: &Step<'_>, output: &TokenStream, body: TokenStream) -> TokenStream {
    let krate = step.args.krate.as_ref();
    let private = crate::expand::private(krate);
    let item = step.original;
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.sig.ident;
    let span = ident.span();
    let ctx_lifetime = syn::Lifetime::new("'ctx", span);
    let fn_token = quote_spanned!(span=> fn);
    let arg_idents = arg_idents(step);
    let arg_types = step
        .inputs
        .iter()
        .map(|(_, ty)| ctx_lifetime_inputs(ty, &ctx_lifetime));
    let receiver = step.receiver.map(|r| {
        let self_token = &r.self_token;
        quote!(&#ctx_lifetime #self_token,)
    });
    let params = group_at(
        span,
        Delimiter::Parenthesis,
        quote! {
            #receiver
            __hookflow_ctx: &#ctx_lifetime #private::WorkflowContext,
            #(#arg_idents: #arg_types),*
        },
    );
    let private_at_name = crate::expand::private_at(krate, span);
    let future_ty = quote_spanned! {span=>
        impl #private_at_name::Future<Output = #output> + #private_at_name::Send + 'ctx
    };
    let ret = quote_spanned!(span=> -> #private_at_name::StepFuture<#future_ty>);
    let body = group_at(span, Delimiter::Brace, body);
    // The step's own parameters, after `'ctx`; the future holds them, so they outlive it
    // (bounded where the user bounds them, so that no bound is in two places).
    let generics = &item.sig.generics;
    let mut where_clause = generics.where_clause.clone();
    let own_params: Vec<TokenStream> = generics
        .params
        .iter()
        .map(|p| match p {
            syn::GenericParam::Lifetime(l) => {
                let mut l = l.clone();
                l.bounds.push(ctx_lifetime.clone());
                quote!(#l)
            }
            syn::GenericParam::Type(t) => {
                let outlives = syn::TypeParamBound::Lifetime(ctx_lifetime.clone());
                let in_where = where_clause.as_mut().and_then(|w| {
                    w.predicates.iter_mut().find_map(|p| match p {
                        syn::WherePredicate::Type(pt)
                            if matches!(&pt.bounded_ty, syn::Type::Path(tp) if tp.qself.is_none() && tp.path.is_ident(&t.ident)) =>
                        {
                            Some(pt)
                        }
                        _ => None,
                    })
                });
                match in_where {
                    Some(predicate) => {
                        predicate.bounds.push(outlives);
                        quote!(#t)
                    }
                    None => {
                        let mut t = t.clone();
                        t.bounds.push(outlives);
                        quote!(#t)
                    }
                }
            }
            syn::GenericParam::Const(c) => quote!(#c),
        })
        .collect();
    let self_outlives = step.receiver.map(|_| quote!(Self: #ctx_lifetime,));
    let predicates = where_clause.iter().flat_map(|w| &w.predicates);
    let where_clause = if self_outlives.is_none() && where_clause.is_none() {
        TokenStream::new()
    } else {
        quote!(where #(#predicates,)* #self_outlives)
    };
    quote! {
        #(#attrs)*
        #vis #fn_token #ident<#ctx_lifetime #(, #own_params)*> #params #ret #where_clause #body
    }
}
