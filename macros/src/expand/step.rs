//! `#[step]`: the function keeps its name and inputs, takes the workflow's context, and runs
//! the user's body (moved into a nested `async fn` of the same name) through the runtime's
//! `StepRun`, with the step's options (retry, timeout, best effort). No lint attribute of the
//! macro's covers the nested function: the expansion carries none.
//!
//! Each of the step's types is checked once, by an assertion at the user's token
//! (`step_data::<Receipt>()` at `Receipt`, `compensate::<Data, _>(undo)` at `undo`); the
//! runtime then receives the values wrapped in types that meet its bounds, so that a mistake
//! is reported once, and never from inside the expansion. User spans go on delimiters,
//! keywords and paths to items; the names the macro declares (`__hookflow_*`, `'ctx`) keep
//! one span each, so that they resolve together even when the user's tokens come from a
//! `macro_rules!`.

use proc_macro2::{Delimiter, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use super::{expr_at, group_at};
use crate::ast::Step;
use crate::attr::RetryArgs;

// The builders shared with the fallback (`crate::fallback::step`): the generated function's
// signature and the user's function nested in it.

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
    let private = super::private(step.args.krate.as_ref());
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

fn body_fn(step: &Step<'_>, ident: &Ident, receiver: Option<&syn::Receiver>) -> TokenStream {
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
fn turbofish(step: &Step<'_>) -> TokenStream {
    let params = type_and_const_params(step);
    if params.is_empty() {
        TokenStream::new()
    } else {
        quote!(::<#(#params),*>)
    }
}

/// The step's type and const parameters' names.
fn type_and_const_params<'a>(step: &Step<'a>) -> Vec<&'a Ident> {
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

/// A step's data marker (`__HookflowOutput`), generic over the step's type and const
/// parameters when it has some (a nested item cannot name the outer function's): its
/// declaration's parameters, its impl's parameters (with the step's bounds on them) and
/// where clause, and the arguments naming it.
struct KindGenerics {
    decl: TokenStream,
    impl_params: TokenStream,
    where_clause: TokenStream,
    args: TokenStream,
}

fn kind_generics(step: &Step<'_>) -> KindGenerics {
    let generics = &step.original.sig.generics;
    let mut decl = Vec::new();
    let mut impl_params = Vec::new();
    let mut phantom = Vec::new();
    let mut args = Vec::new();
    for param in &generics.params {
        match param {
            syn::GenericParam::Type(t) => {
                let ident = &t.ident;
                let bounds = t.bounds.iter().filter(|b| kind_bound(b));
                decl.push(quote!(#ident));
                impl_params.push(quote!(#ident: #(#bounds +)*));
                phantom.push(quote!(#ident));
                args.push(quote!(#ident));
            }
            syn::GenericParam::Const(c) => {
                let ident = &c.ident;
                let ty = &c.ty;
                decl.push(quote!(const #ident: #ty));
                impl_params.push(quote!(const #ident: #ty));
                args.push(quote!(#ident));
            }
            syn::GenericParam::Lifetime(_) => {}
        }
    }
    if decl.is_empty() {
        return KindGenerics {
            decl: TokenStream::new(),
            impl_params: TokenStream::new(),
            where_clause: TokenStream::new(),
            args: TokenStream::new(),
        };
    }
    // The where clause's predicates on types (not on lifetimes), without lifetime bounds.
    let predicates = generics
        .where_clause
        .iter()
        .flat_map(|w| &w.predicates)
        .filter_map(|p| {
            let syn::WherePredicate::Type(t) = p else {
                return None;
            };
            let bounds: Vec<_> = t.bounds.iter().filter(|b| kind_bound(b)).collect();
            let (lifetimes, ty) = (&t.lifetimes, &t.bounded_ty);
            (!bounds.is_empty()).then(|| quote!(#lifetimes #ty: #(#bounds)+*))
        });
    let phantom = if phantom.is_empty() {
        quote!(())
    } else {
        quote!((#(#phantom,)*))
    };
    KindGenerics {
        decl: quote!(<#(#decl),*>),
        impl_params: quote!(<#(#impl_params),*>),
        where_clause: quote!(where #(#predicates,)*),
        args: quote!(<#(#args),*>),
    }
    .with_phantom(phantom)
}

/// Whether a data marker's impl keeps a bound of the step's: all but lifetimes other than
/// `'static` (the marker has no lifetime parameters).
fn kind_bound(bound: &syn::TypeParamBound) -> bool {
    match bound {
        syn::TypeParamBound::Lifetime(l) => l.ident == "static",
        _ => true,
    }
}

impl KindGenerics {
    fn with_phantom(mut self, phantom: TokenStream) -> Self {
        let decl = &self.decl;
        self.decl = quote!(#decl (::core::marker::PhantomData<fn() -> #phantom>));
        self
    }

    /// `struct __HookflowOutput<T>(PhantomData<..>);`, or `struct __HookflowOutput;`.
    fn declare(&self, kind: &Ident) -> TokenStream {
        let decl = &self.decl;
        quote!(struct #kind #decl;)
    }
}

/// Replaces the elided lifetimes of a step's input types (`&[LineItem]`, `Cow<'_, str>`)
/// with `'ctx`, the generated function's: the future it returns borrows them.
fn ctx_lifetime_inputs(ty: &syn::Type, ctx_lifetime: &syn::Lifetime) -> syn::Type {
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
    let private = super::private(krate);
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
    let private_at_name = super::private_at(krate, span);
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

/// The step: the generated function, with the user's function nested in it, the step's
/// metadata and the future that runs it.
pub(crate) fn expand(step: &Step<'_>) -> TokenStream {
    let krate = step.args.krate.as_ref();
    let private = super::private(krate);
    // `::hookflow::__private` at a user's token, for the checks reported there.
    let private_at = |span: Span| super::private_at(krate, span);
    let ident = &step.original.sig.ident;
    let name = step.name();
    let ret = step.result.ret;
    let ret_span = ret.span();
    let ctx_ty = step.ctx_ty;
    let best_effort = step.args.best_effort.is_some();

    let arg_idents = arg_idents(step);
    let arg_types: Vec<_> = step.inputs.iter().map(|(_, ty)| *ty).collect();

    // The `Ok` and `Err` types, as written or projected through `ResultParts` (at the return
    // type, where a return type that is not a `Result` is reported).
    let (ok_ty, ok_span, err_ty, err_span) = match step.result.spelled {
        Some((ok, err)) => (quote!(#ok), ok.span(), quote!(#err), err.span()),
        None => {
            let private = private_at(ret_span);
            (
                quote_spanned!(ret_span=> <#ret as #private::ResultParts>::Ok),
                ret_span,
                quote_spanned!(ret_span=> <#ret as #private::ResultParts>::Err),
                ret_span,
            )
        }
    };
    let error_check = {
        let private = private_at(err_span);
        quote_spanned!(err_span=> #private::step_error::<#err_ty>())
    };

    // The output (and compensation data) travel as `Journaled<T, K>`, where the marker `K`
    // carries how to (de)serialize `T`, checked once at the user's type.
    let kind_generics = kind_generics(step);
    let kind_args = &kind_generics.args;
    let data_kind = |kind: &syn::Ident, ty: &TokenStream, span: Span| {
        let private_at_ty = private_at(span);
        // The data type and the check are at the user's type (a projection that does not
        // hold, from a return type that is not a `Result`, is reported there too).
        let data = quote_spanned!(span=> #ty);
        let check = quote_spanned!(span=> #private_at_ty::step_data::<#ty>());
        let declare = kind_generics.declare(kind);
        let (impl_params, where_clause) = (&kind_generics.impl_params, &kind_generics.where_clause);
        quote! {
            #declare
            impl #impl_params #private::DataKind for #kind #kind_args #where_clause {
                type Data = #data;
                const OPS: #private::DataOps<Self::Data> = #check;
            }
        }
    };
    // A nested `fn` cannot name the step's type parameters or `Self`: a generic step's or a
    // step method's compensation is a closure.
    let undo_closure = step.receiver.is_some() || !kind_args.is_empty();
    let (output_ty, output_span, undo, finish) = match &step.args.compensate {
        Some(path) => {
            let (out, out_span, data, data_span) = match step.response {
                Some((out, data)) => (quote!(#out), out.span(), quote!(#data), data.span()),
                None => {
                    let private = private_at(ok_span);
                    (
                        quote_spanned!(ok_span=> <#ok_ty as #private::StepResponseParts>::Output),
                        ok_span,
                        quote_spanned!(ok_span=> <#ok_ty as #private::StepResponseParts>::Data),
                        ok_span,
                    )
                }
            };
            // At the user's path: a compensation of the wrong shape (or one that does not
            // exist) is reported on `compensate = path`.
            let checked = {
                let private = private_at(path.span());
                quote_spanned!(path.span()=> #private::compensate::<#data, _>(#path))
            };
            let data_kind = data_kind(&format_ident!("__HookflowData"), &data, data_span);
            let (undo, undo_value) = if step.receiver.is_some() {
                // At the user's path: a compensation of the wrong shape is reported there.
                let bound = {
                    let private = private_at(path.span());
                    quote_spanned!(path.span()=> #private::method_compensate::<#data, Self, _, _>(#path, self))
                };
                (
                    quote! {
                        #data_kind
                    },
                    quote! {{
                        let __hookflow_bound = #bound;
                        #private::undo::<__HookflowData #kind_args, _>(
                            move |__hookflow_ctx, __hookflow_data| {
                                __hookflow_bound.call(__hookflow_ctx, __hookflow_data.into_inner())
                            },
                        )
                    }},
                )
            } else if undo_closure {
                (
                    quote! {
                        #data_kind
                    },
                    quote! {
                        #private::undo::<__HookflowData #kind_args, _>(
                            |__hookflow_ctx, __hookflow_data| {
                                #checked.call(__hookflow_ctx, __hookflow_data.into_inner())
                            },
                        )
                    },
                )
            } else {
                (
                    quote! {
                        #data_kind

                        fn __hookflow_undo(
                            __hookflow_ctx: &#private::StepContext,
                            __hookflow_data: #private::Journaled<__HookflowData>,
                        ) -> #private::UndoFuture<'_> {
                            #checked.call(__hookflow_ctx, __hookflow_data.into_inner())
                        }
                    },
                    quote!(__hookflow_undo),
                )
            };
            let finish = quote! {
                #private::unwrap_step(
                    __hookflow_step
                        .finish(
                            #private::journal_response::<__HookflowOutput #kind_args, __HookflowData #kind_args, _, _, _>(
                                __hookflow_attempt,
                                __hookflow_error,
                            ),
                            #undo_value,
                        )
                        .await,
                )
            };
            (out, out_span, undo, finish)
        }
        None => {
            let attempt = quote! {
                #private::journal_output::<__HookflowOutput #kind_args, _, _>(__hookflow_attempt, __hookflow_error)
            };
            let finish = if best_effort {
                quote! {
                    #private::unwrap_best_effort(__hookflow_step.finish_best_effort(#attempt).await)
                }
            } else {
                quote!(#private::unwrap_step(__hookflow_step.finish_plain(#attempt).await))
            };
            (ok_ty.clone(), ok_span, TokenStream::new(), finish)
        }
    };
    let output_kind = data_kind(&format_ident!("__HookflowOutput"), &output_ty, output_span);
    // What the generated function returns: the step's result (the return type as written,
    // without `compensate`), or for a best-effort step its output if it succeeded.
    let returned = if best_effort || step.result.spelled.is_some() || step.args.compensate.is_some()
    {
        Some((&output_ty, &err_ty))
    } else {
        None
    };
    let yielded = future_output(step, returned);
    // The context handed to the body is at its type: a context of the wrong type is
    // reported there.
    // A transactional step gets its transaction's context, checked at its type.
    // It is kept beside the step (`__hookflow_tx`): each attempt runs in a transaction of its
    // own, committed once the step finished.
    let transactional = step.args.transaction.is_some();
    let (ctx_arg, ctx_check) = if transactional {
        let span = ctx_ty.span();
        let private = private_at(span);
        let ty = quote_spanned!(span=> #ctx_ty);
        (
            expr_at(ctx_ty, quote!(&__hookflow_tx)),
            quote_spanned!(span=> #private::transactional_context::<#ty>();),
        )
    } else {
        (
            expr_at(ctx_ty, quote!(__hookflow_step.context())),
            TokenStream::new(),
        )
    };

    // A step with a timeout turns it into its own error type: checked at `timeout`.
    let on_timeout = match &step.args.timeout {
        Some(timeout) => {
            let span = timeout.key.span();
            let private_at_key = private_at(span);
            let make = quote_spanned!(span=> #private_at_key::on_timeout::<#err_ty>());
            quote!(#private::Option::Some(#make))
        }
        None => quote!(#private::Option::None),
    };
    // The inputs of a step with `retry` are cloned for each attempt, through a function
    // checked at each input's type.
    let clones: Vec<_> = (0..arg_types.len())
        .map(|i| format_ident!("__hookflow_clone{}", i))
        .collect();
    let args = match &step.args.retry {
        None => quote!(#(#arg_idents),*),
        Some(_) => quote!(#((#clones)(&#arg_idents)),*),
    };
    let turbofish = turbofish(step);
    let call = match step.receiver {
        Some(receiver) => {
            let body_method = body_method_ident(step);
            let self_token = &receiver.self_token;
            quote!(Self::#body_method #turbofish(#self_token, #ctx_arg, #args))
        }
        None => quote!(#ident #turbofish(#ctx_arg, #args)),
    };
    // A return type spelled through an alias goes through `ResultParts` (at the return type,
    // where any error about it is reported, once).
    let (body, finish) = match step.result.spelled {
        Some(_) => (call, finish),
        None => {
            let private = private_at(ret_span);
            let async_move = quote_spanned!(ret_span=> async move);
            let into = quote_spanned!(ret_span=> <#ret as #private::ResultParts>::into_result);
            let from = quote_spanned!(ret_span=> <#ret as #private::ResultParts>::from_result);
            let into = group_at(
                ret_span,
                Delimiter::Brace,
                quote!(#into(__hookflow_body.await)),
            );
            let body = group_at(
                ret_span,
                Delimiter::Brace,
                quote! {
                    let __hookflow_body = #call;
                    #async_move #into
                },
            );
            let finish = if step.args.compensate.is_some() || best_effort {
                finish
            } else {
                let args = group_at(ret_span, Delimiter::Parenthesis, finish);
                quote!(#from #args)
            };
            (body, finish)
        }
    };
    let (clone_checks, execute) = match &step.args.retry {
        None if transactional => (
            TokenStream::new(),
            quote!(__hookflow_step.execute_in_transaction(&__hookflow_tx, || #body, #on_timeout).await),
        ),
        None => (
            TokenStream::new(),
            // The body's future is made inside the attempt (`|| body`): the step's future
            // holds the arguments, then the body's future, not both at once.
            quote!(__hookflow_step.execute(|| #body, #on_timeout).await),
        ),
        Some(retry) => {
            let clone_checks = arg_types.iter().zip(&clones).map(|(ty, clone)| {
                let private = private_at(ty.span());
                let check = quote_spanned!(ty.span()=> #private::assert_retry_input::<#ty>());
                quote!(let #clone = #check;)
            });
            // At the user's path: a `when` of the wrong signature is reported there.
            let when = match &retry.when {
                Some(path) => {
                    let private_at_path = private_at(path.span());
                    let check =
                        quote_spanned!(path.span()=> #private_at_path::transient::<#err_ty>(#path));
                    quote!(#private::Option::Some(#check))
                }
                None => quote!(#private::Option::None),
            };
            let execute = if transactional {
                quote! {
                    __hookflow_step
                        .execute_retrying_in_transaction(&__hookflow_tx, || #body, #when, #on_timeout)
                        .await
                }
            } else {
                quote! {
                    __hookflow_step
                        .execute_retrying(|| #body, #when, #on_timeout)
                        .await
                }
            };
            (quote!(#(#clone_checks)*), execute)
        }
    };
    let meta = step_meta(&private, step, &name);
    // The program's registry of steps, for the diagrams: which have a compensation.
    let entry = {
        let ident = ident.to_string();
        let compensation = match &step.args.compensate {
            Some(path) => {
                let path = crate::names::tokens_to_string(path);
                quote!(#private::Option::Some(#path))
            }
            None => quote!(#private::Option::None),
        };
        quote! {
            #private::inventory::submit! {
                #private::StepEntry::__new(#ident, #private::module_path!(), #compensation)
            }
        }
    };
    let (tx_context, finish) = if transactional {
        (
            quote!(let __hookflow_tx = __hookflow_step.transaction_context(__hookflow_ctx);),
            quote! {
                let __hookflow_finished = #finish;
                __hookflow_tx.settle().await;
                __hookflow_finished
            },
        )
    } else {
        (TokenStream::new(), finish)
    };

    // `StepFuture::__new(async move { .. })` at the step's name, path and parentheses too, so
    // that the expression is there without parentheses around it (`unused_parens`).
    let future = {
        let run = group_at(
            ident.span(),
            Delimiter::Brace,
            quote! {
                let __hookflow_error = #error_check;
                // What the journal can do with the error type (display it; write and read it
                // if it is serde), found here where the type is concrete: see
                // `__private::ErrorProbe`.
                let __hookflow_error = {
                    use #private::errors::*;
                    (&&&__hookflow_error.probe()).ops()
                };
                #ctx_check
                let mut __hookflow_step = #private::StepRun::start(__hookflow_ctx, &__HOOKFLOW_STEP);
                #tx_context
                #clone_checks
                let __hookflow_attempt = #execute;
                #finish
            },
        );
        let future = quote_spanned!(ident.span()=> async move #run);
        let new = {
            let private = private_at(ident.span());
            quote_spanned!(ident.span()=> #private::StepFuture::__new)
        };
        let args = group_at(ident.span(), Delimiter::Parenthesis, future);
        quote!(#new #args)
    };

    let user_fn = user_fn(step);
    let method_body = method_body(step);
    let step_fn = step_fn(
        step,
        &yielded,
        quote! {
            #user_fn

            #output_kind

            #undo

            static __HOOKFLOW_STEP: #private::StepMeta = #meta;

            #entry

            #future
        },
    );
    quote! {
        #method_body
        #step_fn
    }
}

/// `StepMeta::__new("name").__retry(...).__timeout(...)...`
fn step_meta(private: &TokenStream, step: &Step<'_>, name: &str) -> TokenStream {
    let args = &step.args;
    let mut meta = quote!(#private::StepMeta::__new(#name));
    if let Some(retry) = &args.retry {
        let policy = retry_policy(private, retry);
        meta = quote!(#meta.__retry(#policy));
    }
    if let Some(timeout) = &args.timeout {
        let micros = timeout.micros;
        meta = quote!(#meta.__timeout(#private::Duration::from_micros(#micros)));
    }
    if args.best_effort.is_some() {
        meta = quote!(#meta.__best_effort());
    }
    if let Some(retry) = &args.compensate_retry {
        let policy = retry_policy(private, retry);
        meta = quote!(#meta.__compensate_retry(#policy));
    }
    if args.transaction.is_some() {
        meta = quote!(#meta.__transactional());
    }
    meta
}

fn retry_policy(private: &TokenStream, retry: &RetryArgs) -> TokenStream {
    let max = retry.max;
    let backoff = retry.backoff_micros;
    let mut policy =
        quote!(#private::RetryPolicy::new(#max, #private::Duration::from_micros(#backoff)));
    if let Some(cap) = retry.max_backoff_micros {
        policy = quote!(#policy.max_backoff(#private::Duration::from_micros(#cap)));
    }
    if !retry.jitter {
        policy = quote!(#policy.without_jitter());
    }
    policy
}
