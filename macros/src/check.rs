//! Checks that need more than one piece of the input (as serde_derive's `check.rs`): a hook
//! against the hooks declared before it, a step's options against each other and against its
//! signature. This is its own pass, run by the entry points after `attr` has parsed and `ast`
//! has modelled; simpler checks happen while parsing.

use crate::ast::{Step, is_step_response};
use crate::attr::{HookDecl, WorkflowArgs};
use crate::ctxt::Ctxt;
use crate::names::const_name;

const ON_COMPENSATION_FAILED: &str = "on_compensation_failed";

/// Whether `name` cannot be a declared hook's: it is built in, or a registrar method.
pub(crate) fn is_reserved_hook(name: &str) -> bool {
    [
        ON_COMPENSATION_FAILED,
        "hooks",
        "prepended",
        "configured",
        "appended",
        "named",
        "timeout",
    ]
    .contains(&name)
}

/// Checks the workflow's options: each declared hook against the built-in and reserved names
/// and against the hooks declared before it. It needs no model of the function, so that a bad
/// hook list is reported together with a bad signature.
pub(crate) fn workflow(cx: &Ctxt, args: &WorkflowArgs) {
    for (i, decl) in args.hooks.iter().enumerate() {
        hook(cx, &args.hooks[..i], decl);
    }
    for (i, event) in args.events.iter().enumerate() {
        let name = event.name.to_string();
        let constant = const_name(&event.name);
        if let Some(first) = args.events[..i]
            .iter()
            .find(|e| const_name(&e.name) == constant)
        {
            let message = if first.name == event.name {
                format!("duplicate event `{name}`: give this one another name, or remove it")
            } else {
                format!(
                    "event `{name}` clashes with `{}`: both would be `{constant}`",
                    first.name
                )
            };
            cx.error_spanned_by(&event.name, message);
        } else if let Some(hook) = args.hooks.iter().find(|h| const_name(&h.name) == constant) {
            cx.error_spanned_by(
                &event.name,
                format!(
                    "event `{name}` clashes with hook `{}`: both would be `{constant}`",
                    hook.name
                ),
            );
        } else if constant == "ON_COMPENSATION_FAILED" {
            cx.error_spanned_by(
                &event.name,
                "an event cannot be named `on_compensation_failed`: it is a built-in hook",
            );
        }
    }
}

fn hook(cx: &Ctxt, before: &[HookDecl], hook: &HookDecl) {
    let name = hook.name.to_string();
    if name == ON_COMPENSATION_FAILED {
        cx.error_spanned_by(
            &hook.name,
            "`on_compensation_failed` is built in: every workflow has it (an `after` hook with a `CompensationFailure`); remove it from `hooks(...)`",
        );
    } else if is_reserved_hook(&name) {
        cx.error_spanned_by(
            &hook.name,
            format!("a hook cannot be named `{name}`: the registrar has a method of that name"),
        );
    } else if let Some(first) = before
        .iter()
        .find(|h| const_name(&h.name) == const_name(&hook.name))
    {
        let message = if first.name == hook.name {
            format!("duplicate hook `{name}`: give this one another name, or remove it")
        } else {
            format!(
                "hook `{name}` clashes with `{}`: both would be `{}`",
                first.name,
                const_name(&hook.name)
            )
        };
        cx.error_spanned_by(&hook.name, message);
    }
}

/// Checks a step's options against each other and against its return type.
pub(crate) fn step(cx: &Ctxt, step: &Step<'_>) {
    let args = &step.args;
    if let (Some(best_effort), Some(_)) = (&args.best_effort, &args.compensate) {
        cx.error_spanned_by(
            best_effort,
            "a best-effort step is never compensated (the workflow goes on without it); remove `compensate` or `best_effort`",
        );
    }
    if let (Some(retry), None) = (&args.compensate_retry, &args.compensate) {
        cx.error_spanned_by(
            &retry.key,
            "`compensate_retry` retries the compensation, but this step has none; add `compensate = undo_fn`",
        );
    }
    if let Some(retry) = &args.retry {
        if retry.max == 0 {
            cx.error_spanned_by(
                &retry.key,
                "`retry(max = 0)` never retries; remove `retry` or give `max` at least 1",
            );
        }
    }
    let Some((ok, _)) = step.result.spelled else {
        return;
    };
    match (&step.args.compensate, is_step_response(ok)) {
        (Some(path), false) => cx.error_spanned_by(
            path,
            format!(
                "`compensate` needs data to undo with: make `{}` return `Result<StepResponse<Output, Data>, Error>` and build it with `StepResponse::new(output, data)`",
                step.original.sig.ident
            ),
        ),
        (Some(_), true) if step.response.is_none() => cx.error_spanned_by(
            ok,
            "`StepResponse` takes two types: the step's output and its compensation data, `StepResponse<Output, Data>`",
        ),
        (None, true) => cx.error_spanned_by(
            ok,
            format!(
                "this step returns compensation data but has no compensation; add `#[step(compensate = undo_{})]`, or return `Result<Output, Error>`",
                step.original.sig.ident
            ),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::ast;

    fn workflow_errors(args: proc_macro2::TokenStream) -> Vec<String> {
        let cx = Ctxt::new();
        let args = WorkflowArgs::parse(&cx, args);
        workflow(&cx, &args);
        cx.check()
            .err()
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn parsing_alone_accepts_duplicates() {
        let cx = Ctxt::new();
        let args = WorkflowArgs::parse(&cx, quote!(hooks(a: before<u8>, a: after<u8>)));
        cx.check().unwrap();
        assert_eq!(args.hooks.len(), 2);
    }

    #[test]
    fn reports_duplicate_and_reserved_hooks_in_order() {
        let errors = workflow_errors(
            quote!(hooks(a: before<u8>, a: after<u8>, on_compensation_failed: after<u8>, hooks: before<u8>, A: step<u8>)),
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("duplicate hook `a`"));
        assert!(errors[1].contains("built in"));
        assert!(errors[2].contains("cannot be named `hooks`"));
        assert!(errors[3].contains("clashes with `a`"));
    }

    #[test]
    fn reports_every_conflicting_step_option() {
        let cx = Ctxt::new();
        let args = crate::attr::StepArgs::parse(
            &cx,
            quote!(compensate = undo, best_effort, retry(max = 0)),
        );
        let item: syn::ItemFn = syn::parse_quote! {
            async fn charge(ctx: &StepContext, amount: u64) -> Result<u64, E> { Ok(amount) }
        };
        let model = ast::Step::from_syn(&cx, &args, &item).unwrap();
        step(&cx, &model);
        // best effort with compensate, retry(max = 0), compensate without `StepResponse`
        assert_eq!(cx.check().unwrap_err().into_iter().count(), 3);
    }
}
