//! `#[step]`: the function keeps its name and inputs, takes the workflow's context, and runs
//! the user's body (moved into a nested `async fn`) through the runtime's `StepRun`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::Step;
use crate::attr::RetryArgs;

pub(crate) fn expand(step: &Step<'_>) -> TokenStream {
    let private = super::private(step.args.krate.as_ref());
    let item = step.original;
    let sig = &item.sig;
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &sig.ident;
    let name = step.name();
    let block = &item.block;
    let ret = step.result.ret;
    let ctx_ty = step.ctx_ty;
    let ctx_pat = match sig.inputs.first() {
        Some(syn::FnArg::Typed(p)) => &p.pat,
        _ => unreachable!("the model has a typed context parameter"),
    };

    let arg_idents: Vec<_> = (0..step.inputs.len())
        .map(|i| format_ident!("__hookflow_arg{}", i))
        .collect();
    let arg_types: Vec<_> = step.inputs.iter().map(|(_, ty)| *ty).collect();
    let arg_pats: Vec<_> = step.inputs.iter().map(|(pat, _)| *pat).collect();

    // The `Ok` and `Err` types, as written or projected through the runtime's traits.
    let err_ty = match step.result.spelled {
        Some((_, err)) => quote!(#err),
        None => quote!(<#ret as #private::ResultParts>::Err),
    };
    let ok_ty = match step.result.spelled {
        Some((ok, _)) => quote!(#ok),
        None => quote!(<#ret as #private::ResultParts>::Ok),
    };
    let (output_ty, finish) = match &step.args.compensate {
        Some(path) => {
            let (out, data) = match step.response {
                Some((out, data)) => (quote!(#out), quote!(#data)),
                None => (
                    quote!(<#ok_ty as #private::StepResponseParts>::Output),
                    quote!(<#ok_ty as #private::StepResponseParts>::Data),
                ),
            };
            // Spanned at the user's path, so that a compensation of the wrong shape (or one
            // that does not exist) is reported on `compensate = path`.
            let compensate = quote_spanned! {path.span()=>
                #private::compensation::<#data, _>(#path)
            };
            let data_check =
                assert_step_data(&private, &data, step.response.map(|(_, d)| d.span()));
            (
                out.clone(),
                quote! {
                    #data_check
                    let __hookflow_compensate = #compensate;
                    __hookflow_step.finish(__hookflow_result, __hookflow_compensate).await
                },
            )
        }
        None if step.args.best_effort.is_some() => (
            ok_ty.clone(),
            quote!(__hookflow_step.finish_best_effort(__hookflow_result).await),
        ),
        None => (
            ok_ty.clone(),
            quote!(__hookflow_step.finish_plain(__hookflow_result).await),
        ),
    };
    // What the generated function returns: the step's result, or for a best-effort step
    // the output if it succeeded.
    let returned = if step.args.best_effort.is_some() {
        quote!(#private::Option<#output_ty>)
    } else {
        quote!(#private::Result<#output_ty, #err_ty>)
    };
    let output_span = step
        .response
        .map(|(out, _)| out.span())
        .or_else(|| step.result.spelled.map(|(ok, _)| ok.span()));
    let output_check = assert_step_data(&private, &output_ty, output_span);
    // `Send` is spanned at the step's name: a body that is not `Send` is reported there.
    let send = quote_spanned!(ident.span()=> #private::Send);
    let ctx_arg = quote_spanned!(ctx_ty.span()=> __hookflow_step.context());
    let meta = step_meta(&private, step, &name);

    // A step with a timeout turns it into its own error type, spanned at `timeout`.
    let on_timeout = match &step.args.timeout {
        Some(timeout) => quote_spanned! {timeout.key.span()=>
            #private::Option::Some(#private::on_timeout::<#err_ty>())
        },
        None => quote!(#private::Option::None),
    };
    let execute = match &step.args.retry {
        None => quote! {
            __hookflow_step
                .execute(__hookflow_body(#ctx_arg, #(#arg_idents),*), #on_timeout)
                .await
        },
        Some(retry) => {
            // Each attempt gets clones of the inputs; a non-`Clone` input is reported at
            // its type.
            let clones = arg_types
                .iter()
                .map(|ty| quote_spanned!(ty.span()=> #private::assert_retry_input::<#ty>();));
            let when = match &retry.when {
                Some(path) => quote_spanned! {path.span()=>
                    #private::Option::Some(#private::transient::<#err_ty>(#path))
                },
                None => quote!(#private::Option::None),
            };
            quote! {{
                #(#clones)*
                __hookflow_step
                    .execute_retrying(
                        || __hookflow_body(#ctx_arg, #(#private::Clone::clone(&#arg_idents)),*),
                        #when,
                        #on_timeout,
                    )
                    .await
            }}
        }
    };

    quote! {
        #(#attrs)*
        #[allow(clippy::manual_async_fn)]
        #vis fn #ident<'__hookflow_ctx>(
            __hookflow_ctx: &'__hookflow_ctx #private::WorkflowContext,
            #(#arg_idents: #arg_types),*
        ) -> #private::StepFuture<
            impl #private::Future<Output = #returned> + #send + '__hookflow_ctx
        > {
            async fn __hookflow_body(#ctx_pat: #ctx_ty, #(#arg_pats: #arg_types),*) -> #ret #block

            static __HOOKFLOW_STEP: #private::StepMeta = #meta;

            #private::StepFuture::__new(async move {
                #output_check
                let __hookflow_step = #private::StepRun::start(__hookflow_ctx, &__HOOKFLOW_STEP);
                let __hookflow_result = #execute;
                #finish
            })
        }
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

fn assert_step_data(
    private: &TokenStream,
    ty: &TokenStream,
    span: Option<proc_macro2::Span>,
) -> TokenStream {
    let span = span.unwrap_or_else(proc_macro2::Span::call_site);
    quote_spanned! {span=>
        #private::assert_step_data::<#ty>();
    }
}
