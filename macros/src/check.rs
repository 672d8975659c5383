//! Checks that need more than one piece of the model (as serde_derive's `check.rs`).
//! Simpler checks happen while parsing.

use crate::ast::{Step, const_name, is_step_response};
use crate::attr::HookDecl;
use crate::ctxt::Ctxt;

const ON_COMPENSATION_FAILED: &str = "on_compensation_failed";

/// Whether `name` cannot be a declared hook's: it is built in, or a registrar method.
pub(crate) fn is_reserved_hook(name: &str) -> bool {
    [
        ON_COMPENSATION_FAILED,
        "hooks",
        "prepended",
        "configured",
        "appended",
    ]
    .contains(&name)
}

/// Checks a declared hook against the ones declared before it. It is called as each hook
/// is parsed, so that errors come in source order, and needs no model of the function, so
/// that a bad hook list is reported together with a bad signature.
pub(crate) fn hook(cx: &Ctxt, before: &[HookDecl], hook: &HookDecl) {
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
