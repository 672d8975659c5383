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

mod signature;

use signature::*;

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
pub(crate) use signature::{arg_idents, future_output, step_fn, user_fn};

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
