//! `#[workflow]`: the function stays as written; beside it come a type named after it, its
//! hook points, its registrar and its `Workflow` implementation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{BodyCall, Workflow, const_name};
use crate::attr::HookKind;

pub(crate) fn expand(wf: &Workflow<'_>) -> TokenStream {
    let private = super::private(wf.args.krate.as_ref());
    let item = wf.original;
    let vis = &item.vis;
    let fn_ident = &item.sig.ident;
    let ty = &wf.type_ident;
    let registrar = format_ident!("{}Hooks", ty);
    let name = wf.name();
    let input_ty = wf.input_ty;
    let ret = wf.result.ret;
    let (output_ty, error_ty) = match wf.result.spelled {
        Some((ok, err)) => (quote!(#ok), quote!(#err)),
        None => (
            quote!(<#ret as #private::ResultParts>::Ok),
            quote!(<#ret as #private::ResultParts>::Err),
        ),
    };

    let mut consts = Vec::new();
    let mut methods = Vec::new();
    let mut metas = Vec::new();
    for (index, hook) in wf.args.hooks.iter().enumerate() {
        let index = u16::try_from(index).expect("fewer than 65536 hooks");
        let hook_ident = &hook.name;
        let hook_name = hook_ident.to_string();
        let constant = const_name(hook_ident);
        let payload = &hook.payload;
        let payload_str = tokens_to_string(payload);
        let (kind_ty, kind_meta, bound, register, signature) = match hook.kind {
            HookKind::Before => (
                quote!(#private::Before<#payload>),
                quote!(Before),
                quote!(for<'__hookflow_a> #private::BeforeHandler<'__hookflow_a, #payload>),
                quote!(before),
                format!("async fn(&HookContext, {payload_str}) -> Result<{payload_str}, E>"),
            ),
            HookKind::After => (
                quote!(#private::After<#payload>),
                quote!(After),
                quote!(for<'__hookflow_a> #private::AfterHandler<'__hookflow_a, #payload>),
                quote!(after),
                format!("async fn(&HookContext, &{payload_str}) -> Result<(), E>"),
            ),
            HookKind::Step => {
                let result = hook
                    .result
                    .as_ref()
                    .map_or_else(|| quote!(()), |r| quote!(#r));
                (
                    quote!(#private::StepHook<#payload, #result>),
                    quote!(Step),
                    quote!(for<'__hookflow_a> #private::StepHookHandler<'__hookflow_a, #payload, #result>),
                    quote!(step),
                    format!(
                        "a #[step] fn(&StepContext, {payload_str}) returning {}",
                        hook.result
                            .as_ref()
                            .map_or_else(|| "()".to_owned(), tokens_to_string)
                    ),
                )
            }
        };
        let kind_str = hook.kind_ident.to_string();
        let const_doc = format!(
            "Hook `{hook_name}`: `{kind_str}<{payload_str}>`. Fire it with `ctx.hook({ty}::{constant}, ...)`."
        );
        let method_doc = format!(
            "Registers a handler on hook `{hook_name}` (`{kind_str}<{payload_str}>`): {signature}."
        );
        // The point's type is spanned at the declaration: a payload of the wrong type when
        // firing is compared with the type the user wrote.
        consts.push(quote_spanned! {hook_ident.span()=>
            #[doc = #const_doc]
            #vis const #constant: #private::HookPoint<#ty, #kind_ty> =
                #private::HookPoint::__new(#index, #hook_name);
        });
        methods.push(quote_spanned! {hook_ident.span()=>
            #[doc = #method_doc]
            pub fn #hook_ident<__HookflowHandler>(mut self, handler: __HookflowHandler) -> Self
            where
                __HookflowHandler: #bound,
            {
                self.registrar.#register(#ty::#constant, handler);
                self
            }
        });
        let result_meta = match &hook.result {
            Some(r) => {
                let r = tokens_to_string(r);
                quote!(#private::Option::Some(#r))
            }
            None => quote!(#private::Option::None),
        };
        metas.push(quote! {
            #private::HookMeta {
                name: #hook_name,
                kind: #private::HookKind::#kind_meta,
                payload: #payload_str,
                result: #result_meta,
            }
        });
    }
    let failed_index = u16::try_from(wf.args.hooks.len()).expect("fewer than 65536 hooks");
    let calls = wf.calls.iter().map(|call| match call {
        BodyCall::Step(s) => quote!(#private::BodyCall::Step(#s)),
        BodyCall::Hook(h) => quote!(#private::BodyCall::Hook(#h)),
        BodyCall::Workflow(w) => quote!(#private::BodyCall::Workflow(#w)),
    });

    let type_doc = format!(
        "The `{name}` workflow, generated by `#[workflow]` from [`{fn_ident}`]. Run it with `engine.run::<{ty}>(input)` or `{ty}::run(&engine, input)`; register hook handlers with `{ty}::hooks(&mut hooks)`."
    );
    let registrar_doc = format!(
        "Registers handlers on the hooks of [`{ty}`], one method per hook. Handlers go into the configured slot unless [`prepended`]({registrar}::prepended) or [`appended`]({registrar}::appended) is called first."
    );
    // `execute` is spanned at the function's name: a body whose future is not `Send` is
    // reported there.
    let ctx_arg = quote_spanned!(wf.ctx_ty.span()=> ctx);
    let version = wf
        .args
        .version
        .as_ref()
        .map(|v| quote!(const VERSION: u32 = #v;));
    let execute = quote_spanned! {fn_ident.span()=>
        fn execute(
            ctx: &#private::WorkflowContext,
            input: Self::Input,
        ) -> impl #private::Future<Output = #private::Result<Self::Output, Self::Error>> + #private::Send + '_ {
            #fn_ident(#ctx_arg, input)
        }
    };
    quote! {
        #item

        #[doc = #type_doc]
        #[derive(#private::Debug, #private::Clone, #private::Copy, #private::Default)]
        #vis struct #ty;

        #[doc = #registrar_doc]
        #vis struct #registrar<'__hookflow_h> {
            registrar: #private::Registrar<'__hookflow_h, #ty>,
        }

        impl #ty {
            #(#consts)*

            /// Built-in hook, fired after a failed run when some compensation failed too.
            #vis const ON_COMPENSATION_FAILED: #private::HookPoint<#ty, #private::After<#private::CompensationFailure>> =
                #private::HookPoint::__new(#failed_index, "on_compensation_failed");

            /// Registers handlers on this workflow's hooks.
            #vis fn hooks(hooks: &mut #private::Hooks) -> #registrar<'_> {
                #registrar { registrar: #private::Registrar::new(hooks) }
            }

            /// Runs this workflow on `engine` with default options.
            #vis async fn run(engine: &#private::Engine, input: #input_ty) -> #private::Outcome<#ty> {
                engine.run::<#ty>(input).await
            }

            /// Runs this workflow on `engine` with `options`.
            #vis async fn run_with(
                engine: &#private::Engine,
                input: #input_ty,
                options: #private::RunOptions,
            ) -> #private::Outcome<#ty> {
                engine.run_with::<#ty>(input, options).await
            }
        }

        impl<'__hookflow_h> #registrar<'__hookflow_h> {
            /// Registers the next handlers in the prepended slot (they run first).
            pub fn prepended(mut self) -> Self {
                self.registrar.set_slot(#private::Slot::Prepended);
                self
            }

            /// Registers the next handlers in the configured slot (the default).
            pub fn configured(mut self) -> Self {
                self.registrar.set_slot(#private::Slot::Configured);
                self
            }

            /// Registers the next handlers in the appended slot (they run last).
            pub fn appended(mut self) -> Self {
                self.registrar.set_slot(#private::Slot::Appended);
                self
            }

            #(#methods)*

            /// Registers a handler called when the run failed and some compensation failed
            /// too: `async fn(&HookContext, &CompensationFailure) -> Result<(), E>`.
            pub fn on_compensation_failed<__HookflowHandler>(mut self, handler: __HookflowHandler) -> Self
            where
                __HookflowHandler: for<'__hookflow_a> #private::AfterHandler<'__hookflow_a, #private::CompensationFailure>,
            {
                self.registrar.after(#ty::ON_COMPENSATION_FAILED, handler);
                self
            }
        }

        impl #private::Debug for #registrar<'_> {
            fn fmt(&self, f: &mut #private::fmt::Formatter<'_>) -> #private::fmt::Result {
                #private::Debug::fmt(&self.registrar, f)
            }
        }

        #[automatically_derived]
        impl #private::Workflow for #ty {
            type Input = #input_ty;
            type Output = #output_ty;
            type Error = #error_ty;

            #version

            const META: &'static #private::WorkflowMeta = &#private::WorkflowMeta::__new(
                #name,
                &[#(#metas),*],
                &[#(#calls),*],
            );

            #execute
        }
    }
}

fn tokens_to_string(tokens: &impl quote::ToTokens) -> String {
    // `Vec < u8 >` -> `Vec<u8>`: the token stream's spacing is not the source's.
    let s = tokens.to_token_stream().to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
}
