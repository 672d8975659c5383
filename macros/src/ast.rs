//! The model: what the macros understand of the annotated functions. Each node keeps the
//! original syntax, so that errors and generated checks point at the user's tokens.

use syn::visit::Visit;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::attr::{HookDecl, StepArgs, WorkflowArgs};
use crate::ctxt::Ctxt;
use crate::names::{const_name, pascal_case, tokens_to_string};

mod calls;
use calls::CallVisitor;

/// The `Ok` and `Err` types of a return type, as written (`Result<Order, CheckoutError>`),
/// or `None` when the return type is not spelled `Result<_, _>` (an alias): the generated
/// code then projects them through a trait.
pub(crate) struct ResultTypes<'a> {
    pub(crate) ret: &'a Type,
    pub(crate) spelled: Option<(&'a Type, &'a Type)>,
}

/// A `#[workflow]` function.
pub(crate) struct Workflow<'a> {
    pub(crate) original: &'a ItemFn,
    pub(crate) args: &'a WorkflowArgs,
    /// The generated type's name: `checkout` -> `Checkout`.
    pub(crate) type_ident: Ident,
    pub(crate) ctx_ty: &'a Type,
    /// The context parameter's name, when it is a plain identifier.
    pub(crate) ctx_name: Option<Ident>,
    pub(crate) input_ty: &'a Type,
    pub(crate) result: ResultTypes<'a>,
    /// Steps and hook firings seen in the body, in source order.
    pub(crate) calls: Vec<BodyCall>,
}

pub(crate) enum BodyCall {
    Step(String),
    Hook(String),
    Workflow(String),
    /// `parallel!(...)`: the calls of each branch.
    Parallel(Vec<Vec<BodyCall>>),
}

/// A `#[step]` function.
pub(crate) struct Step<'a> {
    pub(crate) original: &'a ItemFn,
    pub(crate) args: &'a StepArgs,
    /// `&self`, for a step that is a method (`impl Payments { #[step] async fn capture(&self,
    /// ctx: &StepContext, ...) }`).
    pub(crate) receiver: Option<&'a syn::Receiver>,
    pub(crate) ctx_ty: &'a Type,
    /// The inputs after the context: pattern and type.
    pub(crate) inputs: Vec<(&'a Pat, &'a Type)>,
    pub(crate) result: ResultTypes<'a>,
    /// The `StepResponse<Output, Data>` arguments, when the `Ok` type is spelled so.
    pub(crate) response: Option<(&'a Type, &'a Type)>,
}

impl<'a> Workflow<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, args: &'a WorkflowArgs, item: &'a ItemFn) -> Option<Self> {
        let sig = &item.sig;
        require_async(cx, item, "#[workflow]", "a workflow body awaits its steps");
        check_plain_fn(cx, item, "#[workflow]");
        check_workflow_generics(cx, &sig.generics);
        let params: Vec<&FnArg> = sig.inputs.iter().collect();
        let typed: Vec<Option<&syn::PatType>> = params.iter().map(|p| typed(cx, p)).collect();
        let ctx_ty = typed.first().copied().flatten().map(|p| &*p.ty);
        let has_context = ctx_ty.is_some_and(|ty| require_context(cx, sig, ty, "WorkflowContext"));
        match params.len() {
            0 => cx.error_at(
                sig.paren_token.span.join(),
                format!(
                    "a #[workflow] fn takes its context and its input: `async fn {}(ctx: &WorkflowContext, input: Input)`",
                    sig.ident
                ),
            ),
            1 if has_context => cx.error_at(
                sig.paren_token.span.join(),
                format!(
                    "a #[workflow] fn takes an input after its context: `async fn {}({}, input: Input)`; use `()` if it needs none",
                    sig.ident,
                    tokens_to_string(params[0]),
                ),
            ),
            1 => {}
            2 => {}
            _ => {
                let rest = &params[1..];
                let (pats, tys): (Vec<String>, Vec<String>) = rest
                    .iter()
                    .filter_map(|p| match p {
                        FnArg::Typed(p) => Some((tokens_to_string(&p.pat), tokens_to_string(&p.ty))),
                        FnArg::Receiver(_) => None,
                    })
                    .unzip();
                cx.error_spanned_by(
                    quote::quote!(#(#rest),*),
                    format!(
                        "a #[workflow] fn takes one input after its context; pass these together as a struct or a tuple: `({}): ({})`",
                        pats.join(", "),
                        tys.join(", "),
                    ),
                );
            }
        }
        let input_ty = typed.get(1).copied().flatten().map(|p| &*p.ty);
        let result = result_types(
            cx,
            &sig.output,
            &sig.ident,
            "#[workflow]",
            "Result<Output, Error>",
        );
        let type_ident = pascal_case(&sig.ident);
        if type_ident == sig.ident {
            cx.error_spanned_by(
                &sig.ident,
                "#[workflow] names its type after the function in PascalCase; give the function a snake_case name",
            );
        }
        let ctx_name = typed
            .first()
            .copied()
            .flatten()
            .and_then(|p| match &*p.pat {
                Pat::Ident(id) => Some(id.ident.clone()),
                _ => None,
            });
        let mut calls = CallVisitor {
            ctx: ctx_name.clone(),
            hooks: &args.hooks,
            calls: Vec::new(),
        };
        calls.visit_block(&item.block);
        let calls = calls.calls;
        Some(Workflow {
            original: item,
            args,
            type_ident,
            ctx_ty: ctx_ty?,
            ctx_name,
            input_ty: input_ty?,
            result: result?,
            calls,
        })
    }

    pub(crate) fn name(&self) -> String {
        self.args
            .name
            .as_ref()
            .map_or_else(|| self.original.sig.ident.to_string(), syn::LitStr::value)
    }
}

impl<'a> Step<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, args: &'a StepArgs, item: &'a ItemFn) -> Option<Self> {
        let sig = &item.sig;
        require_async(cx, item, "#[step]", "the workflow awaits its steps");
        check_plain_fn(cx, item, "#[step]");
        let mut params = sig.inputs.iter().peekable();
        let receiver = match params.peek() {
            Some(FnArg::Receiver(r)) => {
                params.next();
                check_step_receiver(cx, r);
                Some(r)
            }
            _ => None,
        };
        let ctx_ty = match params.next() {
            None => {
                cx.error_at(
                    sig.paren_token.span.join(),
                    format!(
                        "a #[step] fn takes its context first: `async fn {}(ctx: &StepContext, ...)`",
                        sig.ident
                    ),
                );
                None
            }
            Some(first) => typed(cx, first)
                .filter(|p| require_context(cx, sig, &p.ty, "StepContext"))
                .map(|p| &*p.ty),
        };
        let inputs: Vec<(&Pat, &Type)> = params
            .filter_map(|p| typed(cx, p))
            .map(|p| (&*p.pat, &*p.ty))
            .collect();
        let result = result_types(
            cx,
            &sig.output,
            &sig.ident,
            "#[step]",
            "Result<Output, Error>",
        );
        let response = result
            .as_ref()
            .and_then(|r| r.spelled)
            .and_then(|(ok, _)| step_response_args(ok));
        Some(Step {
            original: item,
            args,
            receiver,
            ctx_ty: ctx_ty?,
            inputs,
            result: result?,
            response,
        })
    }

    pub(crate) fn name(&self) -> String {
        self.args
            .name
            .as_ref()
            .map_or_else(|| self.original.sig.ident.to_string(), syn::LitStr::value)
    }
}

fn require_async(cx: &Ctxt, item: &ItemFn, attr: &str, why: &str) {
    if item.sig.asyncness.is_none() {
        cx.error_spanned_by(
            item.sig.fn_token,
            format!(
                "{attr} needs an `async fn` ({why}); write `async fn {}`",
                item.sig.ident
            ),
        );
    }
}

fn check_plain_fn(cx: &Ctxt, item: &ItemFn, attr: &str) {
    let sig = &item.sig;
    if let Some(constness) = sig.constness {
        cx.error_spanned_by(constness, format!("{attr} cannot be a `const fn`"));
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, format!("{attr} cannot be variadic"));
    }
}

/// A step method takes `&self`: each call (and each retry) borrows the service, and a
/// compensation that takes `&self` gets a clone of it (see `__private::method_compensate`).
fn check_step_receiver(cx: &Ctxt, receiver: &syn::Receiver) {
    let by_shared_ref = receiver.reference.is_some()
        && receiver.mutability.is_none()
        && receiver.colon_token.is_none();
    if !by_shared_ref {
        cx.error_spanned_by(
            receiver,
            "a #[step] method takes `&self`: a step may run again (a retry, a replay after a resume) and in parallel with others, so it borrows its service; keep mutable state behind a lock or in a store",
        );
    }
}

/// A generic workflow's type is generic over its type parameters only: lifetimes cannot be
/// part of a workflow that a store resumes later, and a const parameter has no type to carry.
fn check_workflow_generics(cx: &Ctxt, generics: &syn::Generics) {
    for param in &generics.params {
        match param {
            syn::GenericParam::Type(_) => {}
            syn::GenericParam::Lifetime(lt) => cx.error_spanned_by(
                lt,
                "a #[workflow] cannot be generic over a lifetime: its input is owned, as a run may be resumed long after it started",
            ),
            syn::GenericParam::Const(c) => cx.error_spanned_by(
                c,
                "a #[workflow] cannot have a const parameter yet; make it a type parameter (a marker type) instead",
            ),
        }
    }
}

fn typed<'a>(cx: &Ctxt, arg: &'a FnArg) -> Option<&'a syn::PatType> {
    match arg {
        FnArg::Typed(p) => Some(p),
        FnArg::Receiver(r) => {
            cx.error_spanned_by(
                r,
                "a #[workflow] is a free function and cannot take `self`; a #[step] method takes `&self` first, before its context",
            );
            None
        }
    }
}

/// Checks the first parameter, `ty`, of a workflow or step: its context, by reference.
/// Returns whether it is the context (possibly taken by value, which is reported).
fn require_context(cx: &Ctxt, sig: &syn::Signature, ty: &Type, context: &str) -> bool {
    let attr = if context == "StepContext" {
        "#[step]"
    } else {
        "#[workflow]"
    };
    match ty {
        Type::Reference(_) => true,
        Type::Path(path)
            if path
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident.to_string().ends_with("Context")) =>
        {
            cx.error_spanned_by(
                ty,
                format!("a {attr} fn takes its context by reference: `ctx: &{context}`"),
            );
            true
        }
        _ => {
            let params: Vec<String> = sig.inputs.iter().map(tokens_to_string).collect();
            cx.error_spanned_by(
                &sig.inputs[0],
                format!(
                    "a {attr} fn takes its context first: `async fn {}(ctx: &{context}, {})`",
                    sig.ident,
                    params.join(", "),
                ),
            );
            false
        }
    }
}

fn result_types<'a>(
    cx: &Ctxt,
    output: &'a ReturnType,
    ident: &Ident,
    attr: &str,
    shape: &str,
) -> Option<ResultTypes<'a>> {
    match output {
        ReturnType::Default => {
            cx.error_spanned_by(
                ident,
                format!("a {attr} fn returns `{shape}`; add `-> {shape}` to `{ident}`"),
            );
            None
        }
        ReturnType::Type(_, ret) => {
            let spelled = spelled_result(ret);
            if spelled.is_none() && certainly_not_result(ret) {
                cx.error_spanned_by(
                    ret,
                    format!(
                        "a {attr} fn returns a `Result`: write `Result<{}, Error>`, where `Error` is what `{ident}` may fail with",
                        tokens_to_string(ret)
                    ),
                );
                return None;
            }
            Some(ResultTypes { ret, spelled })
        }
    }
}

/// Whether `ty` cannot be a `Result`, even through an alias: `u64`, `()`, `Vec<T>`, `&str`...
/// Other paths may name an alias (`io::Result<T>`); the generated code checks those.
fn certainly_not_result(ty: &Type) -> bool {
    const NOT_RESULTS: &[&str] = &[
        "bool",
        "char",
        "str",
        "u8",
        "u16",
        "u32",
        "u64",
        "u128",
        "usize",
        "i8",
        "i16",
        "i32",
        "i64",
        "i128",
        "isize",
        "f32",
        "f64",
        "String",
        "Vec",
        "Option",
        "Box",
        "Rc",
        "Arc",
        "HashMap",
        "BTreeMap",
        "HashSet",
        "BTreeSet",
        "StepResponse",
    ];
    match ty {
        Type::Paren(inner) => certainly_not_result(&inner.elem),
        Type::Group(inner) => certainly_not_result(&inner.elem),
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| NOT_RESULTS.iter().any(|n| s.ident == n))
        }
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Never(_)
        | Type::Ptr(_)
        | Type::BareFn(_)
        | Type::TraitObject(_) => true,
        _ => false,
    }
}

/// `Result<A, B>` (any path ending in `Result` with two type arguments).
fn spelled_result(ty: &Type) -> Option<(&Type, &Type)> {
    let [a, b] = last_segment_types(ty, "Result")?[..] else {
        return None;
    };
    Some((a, b))
}

/// `StepResponse<O, C>`.
pub(crate) fn step_response_args(ty: &Type) -> Option<(&Type, &Type)> {
    let [a, b] = last_segment_types(ty, "StepResponse")?[..] else {
        return None;
    };
    Some((a, b))
}

/// Whether the type is spelled `StepResponse<...>`, whatever its arguments.
pub(crate) fn is_step_response(ty: &Type) -> bool {
    last_segment_types(ty, "StepResponse").is_some()
}

fn last_segment_types<'a>(ty: &'a Type, name: &str) -> Option<Vec<&'a Type>> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return Some(Vec::new());
    };
    Some(
        args.args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_signature_problem_at_once() {
        let cx = Ctxt::new();
        let item: ItemFn = syn::parse_quote! {
            fn checkout<'a>(ctx: WorkflowContext) {}
        };
        let args = WorkflowArgs::default();
        let model = Workflow::from_syn(&cx, &args, &item);
        assert!(model.is_none());
        // not async, generic over a lifetime, one parameter, context by value, no return type
        assert_eq!(cx.check().unwrap_err().into_iter().count(), 5);
    }

    #[test]
    fn sees_steps_and_hooks_in_source_order() {
        let cx = Ctxt::new();
        let args = {
            let cx2 = Ctxt::new();
            let a = WorkflowArgs::parse(&cx2, quote::quote!(hooks(validate: before<D>)));
            cx2.check().unwrap();
            a
        };
        let item: ItemFn = syn::parse_quote! {
            async fn checkout(ctx: &WorkflowContext, input: In) -> Result<Out, E> {
                let d = ctx.hook(Checkout::VALIDATE, input).await?;
                let r = reserve(ctx, d.items).await?;
                helper(1, ctx);
                hookflow::parallel!(east(ctx, 1), west(ctx, 2))?;
                Refund::call(ctx, r.clone()).await?;
                payments.settle(ctx, 1).await?;
                capture(&ctx, r).await
            }
        };
        let model = Workflow::from_syn(&cx, &args, &item).unwrap();
        cx.check().unwrap();
        fn show(c: &BodyCall) -> String {
            match c {
                BodyCall::Step(s) => format!("step:{s}"),
                BodyCall::Hook(h) => format!("hook:{h}"),
                BodyCall::Workflow(w) => format!("workflow:{w}"),
                BodyCall::Parallel(branches) => {
                    let branches: Vec<String> = branches
                        .iter()
                        .map(|b| b.iter().map(show).collect::<Vec<_>>().join(","))
                        .collect();
                    format!("parallel:[{}]", branches.join("|"))
                }
            }
        }
        let seen: Vec<String> = model.calls.iter().map(show).collect();
        assert_eq!(
            seen,
            [
                "hook:validate",
                "step:reserve",
                "parallel:[step:east|step:west]",
                "workflow:Refund",
                "step:settle",
                "step:capture"
            ]
        );
    }
}
