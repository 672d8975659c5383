//! What a workflow's body calls, in source order: its steps (`name(ctx, ...)`) and its hook
//! firings (`ctx.hook(Type::HOOK, ...)`), for the workflow's metadata and diagram.

use syn::visit::Visit;
use syn::{Expr, Ident};

use super::*;

/// Finds `name(ctx, ...)` calls and `ctx.hook(Type::HOOK, ...)` firings.
pub(super) struct CallVisitor<'h> {
    pub(super) ctx: Option<Ident>,
    pub(super) hooks: &'h [HookDecl],
    pub(super) calls: Vec<BodyCall>,
}

impl CallVisitor<'_> {
    fn is_ctx(&self, expr: &Expr) -> bool {
        let Some(ctx) = &self.ctx else { return false };
        match expr {
            Expr::Path(p) => p.path.is_ident(ctx),
            Expr::Reference(r) => self.is_ctx(&r.expr),
            _ => false,
        }
    }
}

impl<'ast> Visit<'ast> for CallVisitor<'_> {
    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        // Arguments are evaluated before the call: visit them first.
        for arg in &call.args {
            self.visit_expr(arg);
        }
        if let (Expr::Path(func), Some(first)) = (&*call.func, call.args.first()) {
            if self.is_ctx(first) {
                let segments: Vec<&syn::PathSegment> = func.path.segments.iter().collect();
                match segments[..] {
                    // `Refund::call(ctx, ...)`: a nested workflow.
                    [.., workflow, last] if last.ident == "call" => {
                        self.calls
                            .push(BodyCall::Workflow(workflow.ident.to_string()));
                    }
                    [.., last] => self.calls.push(BodyCall::Step(last.ident.to_string())),
                    [] => {}
                }
            }
        }
    }

    // `parallel!(a(ctx, ..), b(ctx, ..))`: its branches are expressions; look inside.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if mac
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "parallel")
        {
            let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
            if let Ok(branches) = syn::parse::Parser::parse2(parser, mac.tokens.clone()) {
                let mut calls = Vec::with_capacity(branches.len());
                for branch in &branches {
                    let before = self.calls.len();
                    self.visit_expr(branch);
                    calls.push(self.calls.split_off(before));
                }
                if calls.iter().any(|c| !c.is_empty()) {
                    self.calls.push(BodyCall::Parallel(calls));
                }
            }
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        self.visit_expr(&call.receiver);
        for arg in &call.args {
            self.visit_expr(arg);
        }
        // `payments.capture(ctx, ...)`: a step method.
        if call.args.first().is_some_and(|first| self.is_ctx(first)) {
            self.calls.push(BodyCall::Step(call.method.to_string()));
        }
        if call.method == "hook" && self.is_ctx(&call.receiver) {
            if let Some(Expr::Path(point)) = call.args.first() {
                if let Some(last) = point.path.segments.last() {
                    if let Some(decl) = self
                        .hooks
                        .iter()
                        .find(|h| const_name(&h.name) == last.ident)
                    {
                        self.calls.push(BodyCall::Hook(decl.name.to_string()));
                    }
                }
            }
        }
    }

    // Items nested in the body are not part of it.
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}
