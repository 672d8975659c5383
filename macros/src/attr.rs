//! Parsing of the attribute arguments, `#[workflow(...)]` and `#[step(...)]`, into plain
//! data.
//!
//! Each option is parsed on its own, so that every bad option is reported in one build.
//! Checks that compare options with each other or with the function run later, in `check`.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{GenericArgument, Ident, LitStr, Path, Token, Type};

use crate::ctxt::Ctxt;
pub(crate) use crate::event_decl::EventDecl;
use crate::names::{did_you_mean, tokens_to_string};

mod hook;
use hook::parse_hook;

pub(crate) const HOOKS: &str = "hooks";
pub(crate) const EVENTS: &str = "events";
pub(crate) const NAME: &str = "name";
pub(crate) const CRATE: &str = "crate";
pub(crate) const COMPENSATE: &str = "compensate";
pub(crate) const VERSION: &str = "version";
pub(crate) const RETRY: &str = "retry";
pub(crate) const TIMEOUT: &str = "timeout";
pub(crate) const BEST_EFFORT: &str = "best_effort";
pub(crate) const COMPENSATE_RETRY: &str = "compensate_retry";
pub(crate) const TRANSACTION: &str = "transaction";
pub(crate) const ADDITIONAL_DATA: &str = "additional_data";

pub(crate) const BEFORE: &str = "before";
pub(crate) const AFTER: &str = "after";
pub(crate) const STEP: &str = "step";

/// `#[workflow(hooks(...), name = "...", crate = path)]`
#[derive(Default)]
pub(crate) struct WorkflowArgs {
    pub(crate) hooks: Vec<HookDecl>,
    pub(crate) events: Vec<EventDecl>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    pub(crate) version: Option<syn::LitInt>,
    /// `additional_data = Type`: the declared type of a run's additional data.
    pub(crate) additional_data: Option<Type>,
}

/// One entry of `hooks(...)`: `validate: before<CheckoutData>`.
pub(crate) struct HookDecl {
    pub(crate) name: Ident,
    pub(crate) kind: HookKind,
    pub(crate) kind_ident: Ident,
    /// The payload (the input, for `after<Input, Output>`).
    pub(crate) payload: Type,
    /// A `step` hook's handlers' result, or an `after<Input, Output>` hook's output.
    pub(crate) result: Option<Type>,
    /// The closing `>` of `kind<...>`: with the name's span, it lets generated bounds
    /// cover the whole declaration.
    pub(crate) end: proc_macro2::Span,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookKind {
    Before,
    After,
    Step,
}

/// `#[step(compensate = path, name = "...", retry(...), timeout = "...", best_effort,
/// compensate_retry(...), crate = path)]`
#[derive(Default)]
pub(crate) struct StepArgs {
    pub(crate) compensate: Option<Path>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    pub(crate) retry: Option<RetryArgs>,
    pub(crate) timeout: Option<DurationArg>,
    pub(crate) best_effort: Option<Ident>,
    pub(crate) compensate_retry: Option<RetryArgs>,
    /// `transaction`: the step runs in a transaction on the store's database.
    pub(crate) transaction: Option<Ident>,
}

/// `retry(max = 3, backoff = "100ms", max_backoff = "5s", jitter = false, when = path)`
pub(crate) struct RetryArgs {
    pub(crate) key: Ident,
    pub(crate) max: u32,
    pub(crate) backoff_micros: u64,
    pub(crate) max_backoff_micros: Option<u64>,
    pub(crate) jitter: bool,
    pub(crate) when: Option<Path>,
}

/// `timeout = "5s"`
pub(crate) struct DurationArg {
    pub(crate) key: Ident,
    pub(crate) micros: u64,
}

impl WorkflowArgs {
    pub(crate) fn parse(cx: &Ctxt, tokens: TokenStream) -> Self {
        let mut args = WorkflowArgs::default();
        for option in split_top_level(tokens) {
            let parsed = (|input: ParseStream| {
                let key = input.call(Ident::parse_any)?;
                match key.to_string().as_str() {
                    HOOKS => {
                        let content;
                        syn::parenthesized!(content in input);
                        let list: TokenStream = content.parse()?;
                        no_more(input, "after `hooks(...)`")?;
                        args.hooks.extend(
                            split_top_level(list)
                                .into_iter()
                                .filter_map(|decl| parse_hook(cx, decl)),
                        );
                    }
                    EVENTS => {
                        let content;
                        syn::parenthesized!(content in input);
                        let list: TokenStream = content.parse()?;
                        no_more(input, "after `events(...)`")?;
                        for decl in split_top_level(list) {
                            match syn::parse2::<EventDecl>(decl) {
                                Ok(event) => args.events.push(event),
                                Err(err) => cx.syn_error(err),
                            }
                        }
                    }
                    NAME => set_once(cx, &key, &mut args.name, parse_value(input, &key)?),
                    CRATE => set_once(cx, &key, &mut args.krate, parse_crate(input, &key)?),
                    VERSION => {
                        let version: syn::LitInt = parse_value(input, &key)?;
                        version.base10_parse::<u32>().map_err(|_| {
                            syn::Error::new(version.span(), "`version` is a whole number from 0 to 4294967295")
                        })?;
                        set_once(cx, &key, &mut args.version, version);
                    }
                    ADDITIONAL_DATA => {
                        let ty: Type = parse_value(input, &key).map_err(|e| {
                            syn::Error::new(e.span(), format!("`additional_data` takes a type, as in `additional_data = BrandData`: {e}"))
                        })?;
                        set_once(cx, &key, &mut args.additional_data, ty);
                    }
                    other => {
                        return Err(syn::Error::new(
                            key.span(),
                            format!(
                                "unknown workflow option `{other}`; expected `hooks(...)`, `events(...)`, `name = \"...\"`, `version = N`, `crate = path` or `additional_data = Type`"
                            ),
                        ));
                    }
                }
                Ok(())
            })
            .parse2(option);
            if let Err(err) = parsed {
                cx.syn_error(err);
            }
        }
        args
    }
}

impl StepArgs {
    pub(crate) fn parse(cx: &Ctxt, tokens: TokenStream) -> Self {
        let mut args = StepArgs::default();
        for option in split_top_level(tokens) {
            let parsed = (|input: ParseStream| {
                let key = input.call(Ident::parse_any)?;
                match key.to_string().as_str() {
                    COMPENSATE => {
                        let path = parse_value::<Path>(input, &key)?;
                        set_once(cx, &key, &mut args.compensate, path);
                    }
                    NAME => set_once(cx, &key, &mut args.name, parse_value(input, &key)?),
                    CRATE => set_once(cx, &key, &mut args.krate, parse_crate(input, &key)?),
                    RETRY => {
                        let retry = parse_retry(input, &key, true)?;
                        set_once(cx, &key, &mut args.retry, retry);
                    }
                    COMPENSATE_RETRY => {
                        let retry = parse_retry(input, &key, false)?;
                        set_once(cx, &key, &mut args.compensate_retry, retry);
                    }
                    TIMEOUT => {
                        let lit: LitStr = parse_value(input, &key)?;
                        let micros = parse_duration(&lit)?;
                        if micros == 0 {
                            return Err(syn::Error::new(lit.span(), "a timeout of zero fails every attempt; give a positive duration"));
                        }
                        set_once(cx, &key, &mut args.timeout, DurationArg { key: key.clone(), micros });
                    }
                    BEST_EFFORT => {
                        no_more(input, "after `best_effort`")?;
                        set_once(cx, &key, &mut args.best_effort, key.clone());
                    }
                    TRANSACTION => {
                        no_more(input, "after `transaction`")?;
                        set_once(cx, &key, &mut args.transaction, key.clone());
                    }
                    other => {
                        let known = [COMPENSATE, NAME, RETRY, TIMEOUT, BEST_EFFORT, COMPENSATE_RETRY, TRANSACTION, CRATE];
                        let hint = did_you_mean(other, &known)
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                        return Err(syn::Error::new(
                            key.span(),
                            format!(
                                "unknown step option `{other}`{hint}; expected `compensate = path`, `name = \"...\"`, `retry(...)`, `timeout = \"5s\"`, `best_effort`, `compensate_retry(...)`, `transaction` or `crate = path`"
                            ),
                        ));
                    }
                }
                Ok(())
            })
            .parse2(option);
            if let Err(err) = parsed {
                cx.syn_error(err);
            }
        }
        args
    }
}

/// `retry` alone, or `retry(max = 3, backoff = "100ms", max_backoff = "5s", jitter = false,
/// when = path)` (`when` only for the step's own retries).
fn parse_retry(input: ParseStream, key: &Ident, allow_when: bool) -> syn::Result<RetryArgs> {
    let mut retry = RetryArgs {
        key: key.clone(),
        max: 3,
        backoff_micros: 100_000,
        max_backoff_micros: None,
        jitter: true,
        when: None,
    };
    if input.is_empty() {
        return Ok(retry);
    }
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            format!(
                "`{key}` stands alone or takes its options in parentheses: `{key}` or `{key}(max = 3, backoff = \"100ms\")`"
            ),
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    no_more(input, &format!("after `{key}(...)`"))?;
    let expected = if allow_when {
        "`max = 3`, `backoff = \"100ms\"`, `max_backoff = \"5s\"`, `jitter = false` or `when = is_transient`"
    } else {
        "`max = 3`, `backoff = \"100ms\"`, `max_backoff = \"5s\"` or `jitter = false`"
    };
    let items = content.parse_terminated(
        |input: ParseStream| {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok((name, input.parse::<syn::Expr>()?))
        },
        Token![,],
    )?;
    for (name, value) in items {
        let lit = match &value {
            syn::Expr::Lit(lit) => Some(&lit.lit),
            _ => None,
        };
        match (name.to_string().as_str(), lit) {
            ("max", Some(syn::Lit::Int(n))) => retry.max = n.base10_parse()?,
            ("backoff", Some(syn::Lit::Str(s))) => retry.backoff_micros = parse_duration(s)?,
            ("max_backoff", Some(syn::Lit::Str(s))) => {
                retry.max_backoff_micros = Some(parse_duration(s)?);
            }
            ("jitter", Some(syn::Lit::Bool(b))) => retry.jitter = b.value,
            ("when", None) if allow_when => match value {
                syn::Expr::Path(p) => retry.when = Some(p.path),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`when` names a function `fn(&Error) -> bool`",
                    ));
                }
            },
            ("max" | "backoff" | "max_backoff" | "jitter", _) => {
                return Err(syn::Error::new_spanned(
                    value,
                    format!("expected {expected}"),
                ));
            }
            (other, _) => {
                return Err(syn::Error::new(
                    name.span(),
                    format!("unknown `{key}` option `{other}`; expected {expected}"),
                ));
            }
        }
    }
    Ok(retry)
}

/// `"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"500us"`: microseconds.
fn parse_duration(lit: &LitStr) -> syn::Result<u64> {
    let text = lit.value();
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let micros_per_unit: u64 = match unit.trim() {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        _ => 0,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|_| micros_per_unit > 0)
        .and_then(|n| n.checked_mul(micros_per_unit))
        .ok_or_else(|| {
            syn::Error::new(
                lit.span(),
                format!("invalid duration \"{text}\": write a whole number and a unit (us, ms, s, m, h), e.g. \"500ms\" or \"5s\""),
            )
        })
}

fn parse_value<T: syn::parse::Parse>(input: ParseStream, key: &Ident) -> syn::Result<T> {
    input
        .parse::<Token![=]>()
        .map_err(|e| syn::Error::new(e.span(), format!("expected `=` after `{key}`")))?;
    let value = input.parse()?;
    no_more(input, &format!("after the value of `{key}`"))?;
    Ok(value)
}

/// `crate = path` or `crate = "path"`.
fn parse_crate(input: ParseStream, key: &Ident) -> syn::Result<Path> {
    input
        .parse::<Token![=]>()
        .map_err(|e| syn::Error::new(e.span(), format!("expected `=` after `{key}`")))?;
    let path = if input.peek(LitStr) {
        input.parse::<LitStr>()?.parse::<Path>()?
    } else {
        input.call(Path::parse_mod_style)?
    };
    no_more(input, "after the crate path")?;
    Ok(path)
}

pub(crate) fn no_more(input: ParseStream, what: &str) -> syn::Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(input.error(format!(
            "unexpected tokens {what}; separate options with `,`"
        )))
    }
}

fn set_once<T>(cx: &Ctxt, key: &Ident, slot: &mut Option<T>, value: T) {
    if slot.is_some() {
        cx.error_spanned_by(key, format!("duplicate option `{key}`"));
    } else {
        *slot = Some(value);
    }
}

/// Splits at the commas that are not inside brackets or angle brackets. Empty pieces
/// (a trailing comma) are dropped.
fn split_top_level(tokens: TokenStream) -> Vec<TokenStream> {
    let mut pieces = Vec::new();
    let mut current = Vec::new();
    let mut angle_depth = 0usize;
    let mut previous_joint_dash = false;
    for tree in tokens {
        let mut joint_dash = false;
        if let TokenTree::Punct(p) = &tree {
            match p.as_char() {
                '<' => angle_depth += 1,
                // `->` is not a closing angle bracket.
                '>' if !previous_joint_dash => angle_depth = angle_depth.saturating_sub(1),
                ',' if angle_depth == 0 => {
                    pieces.push(std::mem::take(&mut current));
                    previous_joint_dash = false;
                    continue;
                }
                '-' => joint_dash = p.spacing() == Spacing::Joint,
                _ => {}
            }
        }
        previous_joint_dash = joint_dash;
        current.push(tree);
    }
    pieces.push(current);
    pieces
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.into_iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn splits_outside_angle_brackets_only() {
        let pieces =
            split_top_level(quote!(a: step<A, B>, b: before<Vec<u8>>, c: after<fn() -> u8>,));
        let pieces: Vec<String> = pieces.iter().map(ToString::to_string).collect();
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert!(pieces[0].contains("step < A , B >"));
    }

    #[test]
    fn reports_every_bad_option_at_once() {
        let cx = Ctxt::new();
        let args = WorkflowArgs::parse(
            &cx,
            quote!(hooks(a: befor<u8>, a2 before<u8>, b: after<u8, u16, u32>), colour = "red", name = 3),
        );
        let errors = cx.check().unwrap_err().into_iter().count();
        assert_eq!(errors, 5);
        assert!(args.hooks.is_empty());
    }

    #[test]
    fn parses_durations() {
        let d = |s: &str| parse_duration(&LitStr::new(s, proc_macro2::Span::call_site()));
        assert_eq!(d("500us").unwrap(), 500);
        assert_eq!(d("250ms").unwrap(), 250_000);
        assert_eq!(d("5s").unwrap(), 5_000_000);
        assert_eq!(d("2m").unwrap(), 120_000_000);
        assert!(d("5 sec").is_err());
        assert!(d("1.5s").is_err());
        assert!(d("ms").is_err());
    }

    #[test]
    fn parses_every_step_option() {
        let cx = Ctxt::new();
        let args = StepArgs::parse(
            &cx,
            quote!(
                compensate = undo,
                retry(
                    max = 5,
                    backoff = "10ms",
                    max_backoff = "1s",
                    jitter = false,
                    when = is_transient
                ),
                timeout = "3s",
                compensate_retry(max = 2),
            ),
        );
        cx.check().unwrap();
        let retry = args.retry.unwrap();
        assert_eq!(
            (retry.max, retry.backoff_micros, retry.jitter),
            (5, 10_000, false)
        );
        assert_eq!(retry.max_backoff_micros, Some(1_000_000));
        assert!(retry.when.is_some());
        assert_eq!(args.timeout.unwrap().micros, 3_000_000);
        assert_eq!(args.compensate_retry.unwrap().max, 2);
    }

    #[test]
    fn rejects_bad_step_options_all_at_once() {
        let cx = Ctxt::new();
        StepArgs::parse(
            &cx,
            quote!(
                retry(max = "3"),
                timeout = "soon",
                compensate_retry(when = f),
                best_efort
            ),
        );
        assert_eq!(cx.check().unwrap_err().into_iter().count(), 4);
    }

    #[test]
    fn parses_a_full_workflow_attribute() {
        let cx = Ctxt::new();
        let args = WorkflowArgs::parse(
            &cx,
            quote!(name = "co", crate = ::hf, hooks(v: before<Data>, c: after<Order>, s: step<P, R>,)),
        );
        cx.check().unwrap();
        assert_eq!(args.hooks.len(), 3);
        assert!(args.hooks[2].result.is_some());
        assert_eq!(args.name.unwrap().value(), "co");
        assert!(args.krate.is_some());
    }
}
