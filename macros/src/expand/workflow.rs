//! `#[workflow]`: the function stays as written; beside it come a type named after it, its
//! hook points, its registrar and its `Workflow` implementation.

use proc_macro2::{Delimiter, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn};

use super::{expr_at, group_at};
use crate::ast::{BodyCall, Workflow};
use crate::attr::{EventDecl, HookDecl, HookKind};
use crate::names::{const_name, tokens_to_string};

mod spans;
mod type_decl;

/// What the generated items need to know: made from the model ([`expand`]), or leniently
/// from the function as written when it has errors (`crate::fallback::workflow`).
pub(crate) struct Parts<'a> {
    /// The user's function, emitted unchanged beside the generated items.
    pub(crate) item: &'a ItemFn,
    pub(crate) krate: Option<&'a syn::Path>,
    pub(crate) type_ident: Ident,
    pub(crate) name: String,
    pub(crate) hooks: Vec<&'a HookDecl>,
    pub(crate) events: Vec<&'a EventDecl>,
    pub(crate) input_ty: TokenStream,
    pub(crate) output_ty: TokenStream,
    pub(crate) error_ty: TokenStream,
    pub(crate) calls: &'a [BodyCall],
    /// `version = N`.
    pub(crate) version: Option<&'a syn::LitInt>,
    /// The body of `Workflow::execute`, which has `ctx` and `input`.
    pub(crate) execute: TokenStream,
    /// `additional_data = Type`.
    pub(crate) additional_data: Option<&'a syn::Type>,
    /// The workflow function's type parameters.
    pub(crate) type_params: TypeParams,
}

/// A generic workflow's type parameters, as the generated items use them: `Sync<C>` for the
/// type, `<C: Catalog>` and `where C: 'static` for the impls. Empty for a workflow without.
pub(crate) struct TypeParams {
    /// `C, D`
    pub(crate) names: Vec<Ident>,
    /// `C: Catalog, D`
    pub(crate) declared: Vec<TokenStream>,
    /// The function's where clause's predicates, and `C: 'static` for each.
    pub(crate) predicates: Vec<TokenStream>,
}

impl TypeParams {
    /// The type parameters of a workflow function (its checks refuse lifetimes and consts).
    pub(crate) fn of(generics: &syn::Generics) -> Self {
        let mut names = Vec::new();
        let mut declared = Vec::new();
        let mut predicates: Vec<TokenStream> = generics
            .where_clause
            .iter()
            .flat_map(|w| &w.predicates)
            .map(|p| quote!(#p))
            .collect();
        for param in generics.type_params() {
            let ident = &param.ident;
            let bounds = &param.bounds;
            names.push(ident.clone());
            declared.push(if bounds.is_empty() {
                quote!(#ident)
            } else {
                quote!(#ident: #bounds)
            });
            predicates.push(quote!(#ident: 'static));
        }
        TypeParams {
            names,
            declared,
            predicates,
        }
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `Sync<C>` (or `Sync`).
    pub(crate) fn ty(&self, ident: &Ident) -> TokenStream {
        let names = &self.names;
        if self.is_empty() {
            quote!(#ident)
        } else {
            quote!(#ident<#(#names),*>)
        }
    }

    /// `<C: Catalog>` (or nothing).
    fn impl_generics(&self) -> TokenStream {
        let declared = &self.declared;
        if self.is_empty() {
            TokenStream::new()
        } else {
            quote!(<#(#declared),*>)
        }
    }

    /// `where C: 'static, ...` (or nothing).
    fn where_clause(&self) -> TokenStream {
        let predicates = &self.predicates;
        if self.is_empty() {
            TokenStream::new()
        } else {
            quote!(where #(#predicates),*)
        }
    }
}

pub(crate) fn expand(wf: &Workflow<'_>) -> TokenStream {
    let private = super::private(wf.args.krate.as_ref());
    let fn_ident = &wf.original.sig.ident;
    let input_ty = wf.input_ty;
    let ret = wf.result.ret;
    let (output_ty, error_ty) = match wf.result.spelled {
        Some((ok, err)) => (quote!(#ok), quote!(#err)),
        None => (
            quote!(<#ret as #private::ResultParts>::Ok),
            quote!(<#ret as #private::ResultParts>::Err),
        ),
    };
    // The call is at the function's name (the context at its type): a body whose future is
    // not `Send`, or a context of the wrong type, is reported there.
    let ctx_arg = expr_at(wf.ctx_ty, quote!(ctx));
    let args = group_at(
        fn_ident.span(),
        Delimiter::Parenthesis,
        quote!(#ctx_arg, input),
    );
    let type_params = TypeParams::of(&wf.original.sig.generics);
    let turbofish = if type_params.is_empty() {
        TokenStream::new()
    } else {
        let names = &type_params.names;
        quote!(::<#(#names),*>)
    };
    let execute = quote!(#fn_ident #turbofish #args);
    let generated = generate(&Parts {
        item: wf.original,
        krate: wf.args.krate.as_ref(),
        type_ident: wf.type_ident.clone(),
        name: wf.name(),
        hooks: wf.args.hooks.iter().collect(),
        events: wf.args.events.iter().collect(),
        input_ty: quote!(#input_ty),
        output_ty,
        error_ty,
        calls: &wf.calls,
        version: wf.args.version.as_ref(),
        execute,
        additional_data: wf.args.additional_data.as_ref(),
        type_params: TypeParams::of(&wf.original.sig.generics),
    });
    let item = typed_body(wf, &private);
    quote! {
        #item
        #generated
    }
}

/// The function with its context typed by its workflow: the body's first statement shadows
/// the context with a `TypedContext<Self>` (which derefs to the `WorkflowContext`), so that
/// `ctx.wait(Other::EVENT)` with another workflow's event does not compile.
fn typed_body(wf: &Workflow<'_>, private: &TokenStream) -> ItemFn {
    let mut item = wf.original.clone();
    // Only a context spelled `&WorkflowContext`: any other type is reported once, by the call.
    let spelled_right = match wf.ctx_ty {
        syn::Type::Reference(r) => matches!(
            &*r.elem,
            syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "WorkflowContext")
        ),
        _ => false,
    };
    let (Some(ctx), true, ty) = (&wf.ctx_name, spelled_right, &wf.type_ident) else {
        return item;
    };
    let block = &item.block;
    let ty = TypeParams::of(&wf.original.sig.generics).ty(ty);
    item.block = syn::parse_quote! {{
        #[allow(unused_variables)]
        let #ctx = &#private::TypedContext::<#ty>::new(#ctx);
        #block
    }};
    item
}

/// The workflow's type, its hook points, its registrar and its `Workflow` implementation (not
/// the function itself).
pub(crate) fn generate(parts: &Parts<'_>) -> TokenStream {
    let private = super::private(parts.krate);
    let vis = &parts.item.vis;
    let fn_ident = &parts.item.sig.ident;
    let type_ident = &parts.type_ident;
    let registrar = format_ident!("{}Hooks", type_ident);
    let params = &parts.type_params;
    // `Checkout`, or for a generic workflow `Sync<C>` (`<Sync<C>>` in an expression).
    let ty = &params.ty(type_ident);
    let ty_expr = if params.is_empty() {
        ty.clone()
    } else {
        quote!(<#ty>)
    };
    let impl_generics = params.impl_generics();
    let where_clause = params.where_clause();
    let param_names = &params.names;
    let params_declared = &params.declared;
    let name = &parts.name;
    let input_ty = &parts.input_ty;
    let output_ty = &parts.output_ty;
    let error_ty = &parts.error_ty;
    // `execute`'s future is at the function's name: a body whose future is not `Send` is
    // reported there.
    let execute = {
        let body = &parts.execute;
        let private_at_name = super::private_at(parts.krate, fn_ident.span());
        let future = quote_spanned! {fn_ident.span()=>
            impl #private_at_name::Future<Output = #private::Result<Self::Output, Self::Error>>
                + #private_at_name::Send + '_
        };
        quote! {
            fn execute(ctx: &#private::WorkflowContext, input: Self::Input) -> #future {
                #body
            }
        }
    };

    let mut consts = Vec::new();
    let mut methods = Vec::new();
    let mut metas = Vec::new();
    for (index, hook) in parts.hooks.iter().enumerate() {
        let index = u16::try_from(index).expect("fewer than 65536 hooks");
        let hook_ident = &hook.name;
        let hook_name = hook_ident.to_string();
        let constant = const_name(hook_ident);
        let payload = &hook.payload;
        let payload_str = tokens_to_string(payload);
        let (kind_ty, kind_meta, handler_trait, handler_args, signature) = match hook.kind {
            HookKind::Before => (
                quote!(#private::Before<#payload>),
                quote!(Before),
                quote!(HandlesBefore),
                quote!(#payload),
                format!("async fn(&HookContext, {payload_str}) -> Result<{payload_str}, E>"),
            ),
            HookKind::After if hook.result.is_some() => {
                let result = hook.result.as_ref().map(|r| quote!(#r));
                let result_str = hook
                    .result
                    .as_ref()
                    .map(tokens_to_string)
                    .unwrap_or_default();
                (
                    quote!(#private::AfterResult<#payload, #result>),
                    quote!(After),
                    quote!(HandlesAfterResult),
                    quote!(#payload, #result),
                    format!(
                        "async fn(&HookContext, &{payload_str}, &{result_str}) -> Result<(), E>, the input first, then the result"
                    ),
                )
            }
            HookKind::After => (
                quote!(#private::After<#payload>),
                quote!(After),
                quote!(HandlesAfter),
                quote!(#payload),
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
                    quote!(HandlesStepHook),
                    quote!(#payload, #result),
                    format!(
                        "a #[step] fn(&StepContext, {payload_str}) returning {}",
                        hook.result
                            .as_ref()
                            .map_or_else(|| "()".to_owned(), tokens_to_string)
                    ),
                )
            }
        };
        // The bound covers the declaration, `validate: before<Cart>`, so that "required by
        // this bound" points there rather than at the whole attribute.
        let bound = {
            let private = super::private_at(parts.krate, hook_ident.span());
            let head = quote_spanned! {hook_ident.span()=>
                #private::#handler_trait<#ty,
            };
            let mut gt = proc_macro2::Punct::new('>', proc_macro2::Spacing::Alone);
            gt.set_span(hook.end);
            quote!(#head #handler_args, __HookflowFits #gt)
        };
        let kind_str = hook.kind_ident.to_string();
        let decl_str = match &hook.result {
            Some(r) => format!("{kind_str}<{payload_str}, {}>", tokens_to_string(r)),
            None => format!("{kind_str}<{payload_str}>"),
        };
        let fire_args = match (hook.kind, &hook.result) {
            (HookKind::After, Some(_)) => "(&input, &result)",
            _ => "...",
        };
        let const_doc = format!(
            "Hook `{hook_name}`: `{decl_str}`. Fire it with `ctx.hook({ty}::{constant}, {fire_args})`."
        );
        let method_doc =
            format!("Registers a handler on hook `{hook_name}` (`{decl_str}`): {signature}.");
        // A `before` hook's payload is journaled (what each handler returns): checked at the
        // type the user declared.
        let journaled = match hook.kind {
            HookKind::Before => {
                let span = syn::spanned::Spanned::span(payload);
                let private_at = super::private_at(parts.krate, span);
                let ops = quote_spanned!(span=> #private_at::hook_data::<#payload>());
                quote!(.__journaled(#ops))
            }
            _ => TokenStream::new(),
        };
        // The point's type is spanned at the declaration: a payload of the wrong type when
        // firing is compared with the type the user wrote.
        consts.push(quote_spanned! {hook_ident.span()=>
            #[doc = #const_doc]
            #vis const #constant: #private::HookPoint<#ty, #kind_ty> =
                #private::HookPoint::__new(#index, #hook_name)#journaled;
        });
        methods.push(quote! {
            #[doc = #method_doc]
            pub fn #hook_ident<__HookflowHandler, __HookflowFits>(mut self, handler: __HookflowHandler) -> Self
            where
                __HookflowHandler: #bound,
            {
                #private::#handler_trait::register(handler, &mut self.registrar, #ty_expr::#constant);
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
            #private::HookMeta::__new(
                #hook_name,
                #private::HookKind::#kind_meta,
                #payload_str,
                #result_meta,
            )
        });
    }
    // A name declared twice is reported by the checks: generate it once.
    let mut seen: Vec<String> = parts
        .hooks
        .iter()
        .map(|h| const_name(&h.name).to_string())
        .collect();
    for event in &parts.events {
        let event_name = event.name.to_string();
        let constant = const_name(&event.name);
        if seen.contains(&constant.to_string()) || constant == "ON_COMPENSATION_FAILED" {
            continue;
        }
        seen.push(constant.to_string());
        let payload = &event.payload;
        let payload_str = tokens_to_string(payload);
        let doc = format!(
            "Event `{event_name}` (payload `{payload_str}`): wait for it in the body with `ctx.wait({ty}::{constant})`, send it with `engine.send(run_id, {ty}::{constant}, payload)`."
        );
        // Spanned at the declaration: a payload of the wrong type is compared with the type
        // the user wrote.
        consts.push(quote_spanned! {event.name.span()=>
            #[doc = #doc]
            #vis const #constant: #private::EventPoint<#ty, #payload> =
                #private::EventPoint::__new(#event_name);
        });
    }
    let failed_index = u16::try_from(parts.hooks.len()).expect("fewer than 65536 hooks");
    let calls = parts.calls.iter().map(|call| body_call(call, &private));

    let type_doc = format!(
        "The `{name}` workflow, generated by `#[workflow]` from [`{fn_ident}`]. Run it with `engine.run::<{ty}>(input)` or `{ty}::run(&engine, input)`; register hook handlers with `{ty}::hooks(&mut hooks)`."
    );
    let registrar_doc = format!(
        "Registers handlers on the hooks of [`{ty}`], one method per hook. A handler goes into the configured slot unless [`prepended`]({registrar}::prepended) or [`appended`]({registrar}::appended) is called just before it (for that handler only); [`named`]({registrar}::named) and [`timeout`]({registrar}::timeout) apply to the handler registered just before them."
    );
    let version = parts.version.map(|v| quote!(const VERSION: u32 = #v;));
    // The declared additional data: checked at start, typed in the body. The type's own
    // errors (not deserializable) point at it.
    let (check_data, declared_data) = match parts.additional_data {
        None => (None, None),
        Some(data) => (
            Some(quote! {
                fn __check_additional_data(
                    data: #private::Option<&#private::JsonValue>,
                ) -> #private::Result<(), #private::AdditionalDataError> {
                    #private::check_additional_data::<Self>(data)
                }
            }),
            Some(quote_spanned! {data.span()=>
                #[automatically_derived]
                impl #impl_generics #private::DeclaredData for #ty #where_clause {
                    type Data = #data;
                }
            }),
        ),
    };
    let type_decl = type_decl::type_decl(vis, type_ident, params, &type_doc, &private);
    let spans = spans::run_spans(name, &private);
    let registrar_params = if params.is_empty() {
        quote!(<'hooks>)
    } else {
        quote!(<'hooks, #(#params_declared),*>)
    };
    let registrar_args = quote!(<'hooks #(, #param_names)*>);
    let registrar_elided = quote!(<'_ #(, #param_names)*>);
    quote! {
        #type_decl

        #[doc = #registrar_doc]
        #vis struct #registrar #registrar_params #where_clause {
            registrar: #private::Registrar<'hooks, #ty>,
        }

        impl #impl_generics #ty #where_clause {
            #(#consts)*

            /// Built-in hook, fired after a failed run when some compensation failed too.
            #vis const ON_COMPENSATION_FAILED: #private::HookPoint<#ty, #private::After<#private::CompensationFailure>> =
                #private::HookPoint::__new(#failed_index, "on_compensation_failed");

            /// Registers handlers on this workflow's hooks.
            #vis fn hooks(hooks: &mut #private::Hooks) -> #registrar #registrar_elided {
                #registrar { registrar: #private::Registrar::new(hooks) }
            }

            /// Runs this workflow on `engine` with default options. The run begins when the
            /// returned future is first polled.
            #vis fn run(
                engine: &#private::Engine,
                input: #input_ty,
            ) -> impl #private::Future<Output = #private::Outcome<#ty>> + '_ {
                engine.run::<#ty>(input)
            }

            /// Runs this workflow on `engine` with `options`. The run begins when the
            /// returned future is first polled.
            #vis fn run_with(
                engine: &#private::Engine,
                input: #input_ty,
                options: #private::RunOptions,
            ) -> impl #private::Future<Output = #private::Outcome<#ty>> + '_ {
                engine.run_with::<#ty>(input, options)
            }
        }

        impl #registrar_params #registrar #registrar_args #where_clause {
            /// Registers the next handler (that one only) in the prepended slot: it runs
            /// before the configured ones.
            pub fn prepended(mut self) -> Self {
                self.registrar.set_slot(#private::Slot::Prepended);
                self
            }

            /// Registers the next handler in the configured slot (every handler's default).
            pub fn configured(mut self) -> Self {
                self.registrar.set_slot(#private::Slot::Configured);
                self
            }

            /// Registers the next handler (that one only) in the appended slot: it runs
            /// after the configured ones.
            pub fn appended(mut self) -> Self {
                self.registrar.set_slot(#private::Slot::Appended);
                self
            }

            /// Names the handler registered just before: the name run journals record, and
            /// the CLI and the diagrams show (by default, the function's identifier). See
            /// `Registrar::named`.
            pub fn named(mut self, name: &'static str) -> Self {
                self.registrar.named(name);
                self
            }

            /// Gives the `before`/`after` handler registered just before its own time limit
            /// (instead of the engine's `hook_timeout`). See `Registrar::timeout`.
            pub fn timeout(mut self, limit: #private::Duration) -> Self {
                self.registrar.timeout(limit);
                self
            }

            #(#methods)*

            /// Registers a handler called when the run failed and some compensation failed
            /// too: `async fn(&HookContext, &CompensationFailure) -> Result<(), E>`.
            pub fn on_compensation_failed<__HookflowHandler, __HookflowFits>(mut self, handler: __HookflowHandler) -> Self
            where
                __HookflowHandler: #private::HandlesAfter<#ty, #private::CompensationFailure, __HookflowFits>,
            {
                #private::HandlesAfter::register(handler, &mut self.registrar, #ty_expr::ON_COMPENSATION_FAILED);
                self
            }
        }

        impl #impl_generics #private::Debug for #registrar #registrar_elided #where_clause {
            fn fmt(&self, f: &mut #private::fmt::Formatter<'_>) -> #private::fmt::Result {
                #private::Debug::fmt(&self.registrar, f)
            }
        }

        #[automatically_derived]
        impl #impl_generics #private::Workflow for #ty #where_clause {
            type Input = #input_ty;
            type Output = #output_ty;
            type Error = #error_ty;

            #version

            #check_data

            const META: &'static #private::WorkflowMeta = &#private::WorkflowMeta::__new(
                #name,
                &[#(#metas),*],
                &[#(#calls),*],
            )
            .__in(#private::module_path!());

            #execute

            #spans

            fn call(
                ctx: &#private::WorkflowContext,
                input: Self::Input,
            ) -> impl #private::Future<Output = #private::Result<Self::Output, Self::Error>>
                   + #private::Send + '_ {
                #private::call_nested::<Self>(ctx, input)
            }
        }

        #declared_data
    }
}

/// A [`BodyCall`] as a constant of the runtime's `BodyCall`.
fn body_call(call: &BodyCall, private: &TokenStream) -> TokenStream {
    match call {
        BodyCall::Step(s) => quote!(#private::BodyCall::Step(#s)),
        BodyCall::Hook(h) => quote!(#private::BodyCall::Hook(#h)),
        BodyCall::Workflow(w) => quote!(#private::BodyCall::Workflow(#w)),
        BodyCall::Parallel(branches) => {
            let branches = branches.iter().map(|calls| {
                let calls = calls.iter().map(|call| body_call(call, private));
                quote!(&[#(#calls),*])
            });
            quote!(#private::BodyCall::Parallel(&[#(#branches),*]))
        }
    }
}
