//! Names and token text: how the generated items are named after the user's (`checkout` ->
//! `Checkout`, `validate` -> `VALIDATE`), how the user's tokens are shown in messages, and
//! which known word a misspelt one was meant to be.

use quote::ToTokens;
use syn::Ident;

/// The tokens as the user would write them: `Vec<u8>`, not `Vec < u8 >`.
pub(crate) fn tokens_to_string(tokens: &impl ToTokens) -> String {
    let s = tokens.to_token_stream().to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
        .replace(" :", ":")
}

/// `process_refund` -> `ProcessRefund`: the type `#[workflow]` names after its function.
pub(crate) fn pascal_case(ident: &Ident) -> Ident {
    let raw = ident.to_string();
    let name = raw.trim_start_matches("r#");
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    Ident::new(&out, ident.span())
}

/// `validate` -> `VALIDATE`: a hook's point, a constant of the workflow's type.
pub(crate) fn const_name(hook: &Ident) -> Ident {
    Ident::new(&hook.to_string().to_uppercase(), hook.span())
}

/// The closest of `candidates` to `word`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn id(s: &str) -> Ident {
        Ident::new(s, Span::call_site())
    }

    #[test]
    fn names_types_in_pascal_case() {
        assert_eq!(pascal_case(&id("checkout")), "Checkout");
        assert_eq!(pascal_case(&id("process_refund")), "ProcessRefund");
        assert_eq!(pascal_case(&id("import_v2_products")), "ImportV2Products");
    }

    #[test]
    fn names_hook_points_in_upper_case() {
        assert_eq!(const_name(&id("order_created")), "ORDER_CREATED");
    }

    #[test]
    fn shows_tokens_as_written() {
        let ty: syn::Type = syn::parse_quote!(Result<Vec<u8>, std::io::Error>);
        assert_eq!(tokens_to_string(&ty), "Result<Vec<u8>, std::io::Error>");
        let ty: syn::Type = syn::parse_quote!(&StepContext);
        assert_eq!(tokens_to_string(&ty), "&StepContext");
    }

    #[test]
    fn suggests_close_words() {
        let kinds = ["before", "after", "step"];
        assert_eq!(did_you_mean("befor", &kinds), Some("before"));
        assert_eq!(did_you_mean("aftr", &kinds), Some("after"));
        assert_eq!(did_you_mean("around", &kinds), None);
    }
}
