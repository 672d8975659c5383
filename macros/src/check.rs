//! Checks that need more than one piece of the model (as serde_derive's `check.rs`).
//! Simpler checks happen while parsing.

use std::collections::HashMap;

use crate::ast::{Step, Workflow, const_name, is_step_response};
use crate::ctxt::Ctxt;

const RESERVED_HOOK: &str = "on_compensation_failed";

pub(crate) fn workflow(cx: &Ctxt, wf: &Workflow<'_>) {
    let mut seen = HashMap::new();
    for hook in &wf.args.hooks {
        let name = hook.name.to_string();
        if name == RESERVED_HOOK {
            cx.error_spanned_by(
                &hook.name,
                "`on_compensation_failed` is built in: every workflow has it (an `after` hook with a `CompensationFailure`); remove it from `hooks(...)`",
            );
            continue;
        }
        if name == "hooks" || name == "prepended" || name == "configured" || name == "appended" {
            cx.error_spanned_by(
                &hook.name,
                format!("a hook cannot be named `{name}`: the registrar has a method of that name"),
            );
            continue;
        }
        let constant = const_name(&hook.name).to_string();
        if let Some(first) = seen.insert(constant, name.clone()) {
            cx.error_spanned_by(
                &hook.name,
                format!("duplicate hook `{name}` (`{first}` is declared before it)"),
            );
        }
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
