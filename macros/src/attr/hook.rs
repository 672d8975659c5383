//! A hook declaration of `#[workflow(hooks(...))]`: `name: before<Type>`, `after<Type>` or
//! `step<Type>`, each mistake reported at its token.

use super::*;

pub(super) fn parse_hook(cx: &Ctxt, tokens: TokenStream) -> Option<HookDecl> {
    const SHAPE: &str =
        "expected a hook as `name: kind<Payload>`, e.g. `validate: before<CheckoutData>`";
    let parsed = (|input: ParseStream| {
        let name: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), SHAPE))?;
        if !input.peek(Token![:]) {
            let kinds = [BEFORE, AFTER, STEP];
            let message = if input.peek(Token![<]) && kinds.contains(&name.to_string().as_str()) {
                format!("this hook has no name; write `name: {name}<...>`, e.g. `validate: before<CheckoutData>`")
            } else {
                let rest: TokenStream = input.fork().parse()?;
                let rest = tokens_to_string(&rest);
                let rest = if rest.is_empty() { "kind<Payload>".to_owned() } else { rest };
                format!("expected `:` after the hook name: `{name}: {rest}`")
            };
            return Err(syn::Error::new(
                if input.is_empty() { name.span() } else { input.span() },
                message,
            ));
        }
        input.parse::<Token![:]>()?;
        let kind_ident: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), SHAPE))?;
        let kind = match kind_ident.to_string().as_str() {
            BEFORE => Some(HookKind::Before),
            AFTER => Some(HookKind::After),
            STEP => Some(HookKind::Step),
            other => {
                let hint = did_you_mean(other, &[BEFORE, AFTER, STEP])
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                cx.error_spanned_by(
                    &kind_ident,
                    format!(
                        "unknown hook kind `{other}`; expected `before`, `after` or `step`{hint}"
                    ),
                );
                None
            }
        };
        let args: syn::AngleBracketedGenericArguments = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected the hook's payload type in angle brackets: `{kind_ident}<Payload>`"),
            )
        })?;
        no_more(input, "after the hook's type")?;
        let mut types = Vec::new();
        for arg in &args.args {
            match arg {
                GenericArgument::Type(ty) => types.push(ty.clone()),
                other => cx.error_spanned_by(other, "expected a type"),
            }
        }
        let Some(kind) = kind else { return Ok(None) };
        let (payload, result) = match (kind, types.len()) {
            (_, 1) => (types.remove(0), None),
            (HookKind::Step, 2) => {
                let payload = types.remove(0);
                (payload, Some(types.remove(0)))
            }
            (HookKind::After, 2) => {
                let input = types.remove(0);
                (input, Some(types.remove(0)))
            }
            (HookKind::After, _) => {
                cx.error_spanned_by(
                    &args,
                    "an `after` hook takes its payload type, or the input and result types its handlers observe: `after<Payload>` or `after<Input, Output>`",
                );
                return Ok(None);
            }
            (HookKind::Step, _) => {
                cx.error_spanned_by(
                    &args,
                    "a `step` hook takes its payload type and, optionally, its handlers' result type: `step<Payload>` or `step<Payload, Result>`",
                );
                return Ok(None);
            }
            (_, _) => {
                cx.error_spanned_by(
                    &args,
                    format!("a `{kind_ident}` hook takes exactly one type: `{kind_ident}<Payload>`"),
                );
                return Ok(None);
            }
        };
        Ok(Some(HookDecl {
            name,
            kind,
            kind_ident,
            payload,
            result,
            end: args.gt_token.span,
        }))
    })
    .parse2(tokens);
    match parsed {
        Ok(decl) => decl,
        Err(err) => {
            cx.syn_error(err);
            None
        }
    }
}
