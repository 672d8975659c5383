//! One entry of `#[workflow(events(...))]`: `payment_captured: Payment`.

use syn::parse::ParseStream;
use syn::{Ident, Token, Type};

use crate::attr::no_more;

/// One entry of `events(...)`: `payment_captured: Payment`.
pub(crate) struct EventDecl {
    pub(crate) name: Ident,
    pub(crate) payload: Type,
}

impl syn::parse::Parse for EventDecl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        const SHAPE: &str =
            "expected an event as `name: Payload`, e.g. `payment_captured: Payment`";
        let name: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), SHAPE))?;
        if !input.peek(Token![:]) {
            return Err(syn::Error::new(
                if input.is_empty() {
                    name.span()
                } else {
                    input.span()
                },
                format!("expected `:` after the event name: `{name}: Payload`"),
            ));
        }
        input.parse::<Token![:]>()?;
        let payload: Type = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), SHAPE))?;
        no_more(input, "after the event's payload type")?;
        Ok(EventDecl { name, payload })
    }
}
