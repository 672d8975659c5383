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
/// the user set apply to it as written.
pub(crate) fn user_fn(step: &Step<'_>) -> TokenStream {
    let item = step.original;
    let ident = &item.sig.ident;
    let ctx_pat = match item.sig.inputs.first() {
        Some(syn::FnArg::Typed(p)) => &p.pat,
        _ => unreachable!("the model has a typed context parameter"),
    };
    let ctx_ty = step.ctx_ty;
    let pats = step.inputs.iter().map(|(pat, _)| *pat);
    let tys = step.inputs.iter().map(|(_, ty)| *ty);
    let ret = step.result.ret;
    let block = &item.block;
    quote! {
        async fn #ident(#ctx_pat: #ctx_ty, #(#pats: #tys),*) -> #ret #block
    }
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
    let ctx_lifetime = quote_spanned!(span=> 'ctx);
    let fn_token = quote_spanned!(span=> fn);
    let arg_idents = arg_idents(step);
    let arg_types = step.inputs.iter().map(|(_, ty)| *ty);
    let params = group_at(
        span,
        Delimiter::Parenthesis,
        quote! {
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
    quote! {
        #(#attrs)*
        #vis #fn_token #ident<#ctx_lifetime> #params #ret #body
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
    let data_kind = |kind: &syn::Ident, ty: &TokenStream, span: Span| {
        let private_at_ty = private_at(span);
        // The data type and the check are at the user's type (a projection that does not
        // hold, from a return type that is not a `Result`, is reported there too).
        let data = quote_spanned!(span=> #ty);
        let check = quote_spanned!(span=> #private_at_ty::step_data::<#ty>());
        quote! {
            struct #kind;
            impl #private::DataKind for #kind {
                type Data = #data;
                const OPS: #private::DataOps<Self::Data> = #check;
            }
        }
    };
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
            let undo = quote! {
                #data_kind

                fn __hookflow_undo(
                    __hookflow_ctx: &#private::StepContext,
                    __hookflow_data: #private::Journaled<__HookflowData>,
                ) -> #private::UndoFuture<'_> {
                    #checked.call(__hookflow_ctx, __hookflow_data.into_inner())
                }
            };
            let finish = quote! {
                #private::unwrap_step(
                    __hookflow_step
                        .finish(
                            #private::journal_response::<__HookflowOutput, __HookflowData, _, _, _>(
                                __hookflow_attempt,
                                __hookflow_error,
                            ),
                            __hookflow_undo,
                        )
                        .await,
                )
            };
            (out, out_span, undo, finish)
        }
        None => {
            let attempt = quote! {
                #private::journal_output::<__HookflowOutput, _, _>(__hookflow_attempt, __hookflow_error)
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
    let (ctx_arg, ctx_check) = match &step.args.transaction {
        Some(_) => {
            let span = ctx_ty.span();
            let private = private_at(span);
            let ty = quote_spanned!(span=> #ctx_ty);
            (
                expr_at(ctx_ty, quote!(__hookflow_step.tx_context())),
                quote_spanned!(span=> #private::transactional_context::<#ty>();),
            )
        }
        None => (
            expr_at(ctx_ty, quote!(__hookflow_step.context())),
            TokenStream::new(),
        ),
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
    let call = quote!(#ident(#ctx_arg, #args));
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
        None => (
            TokenStream::new(),
            quote!(__hookflow_step.execute(#body, #on_timeout).await),
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
            (
                quote!(#(#clone_checks)*),
                quote! {
                    __hookflow_step
                        .execute_retrying(|| #body, #when, #on_timeout)
                        .await
                },
            )
        }
    };
    let meta = step_meta(&private, step, &name);

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
    step_fn(
        step,
        &yielded,
        quote! {
            #user_fn

            #output_kind

            #undo

            static __HOOKFLOW_STEP: #private::StepMeta = #meta;

            #future
        },
    )
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
