//! The type `#[workflow]` names after the function (`checkout` -> `Checkout`): a unit struct,
//! or for a generic workflow a struct holding its parameters in a `PhantomData`, with the
//! traits a unit struct derives implemented without bounds on them.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Ident, Visibility};

use super::TypeParams;

/// The workflow's type, `ty` (its name with its parameters), documented with `type_doc`.
pub(super) fn type_decl(
    vis: &Visibility,
    type_ident: &Ident,
    params: &TypeParams,
    type_doc: &str,
    private: &TokenStream,
) -> TokenStream {
    let ty = &params.ty(type_ident);
    let param_names = &params.names;
    if params.is_empty() {
        quote! {
            #[doc = #type_doc]
            #[derive(#private::Debug, #private::Clone, #private::Copy, #private::Default)]
            #vis struct #ty;
        }
    } else {
        let type_name = type_ident.to_string();
        quote! {
            #[doc = #type_doc]
            #vis struct #type_ident<#(#param_names),*>(#private::PhantomData<fn() -> (#(#param_names,)*)>);

            impl<#(#param_names),*> #private::Debug for #ty {
                fn fmt(&self, f: &mut #private::fmt::Formatter<'_>) -> #private::fmt::Result {
                    f.write_str(#type_name)
                }
            }
            impl<#(#param_names),*> #private::Clone for #ty {
                fn clone(&self) -> Self {
                    *self
                }
            }
            impl<#(#param_names),*> #private::Copy for #ty {}
            impl<#(#param_names),*> #private::Default for #ty {
                fn default() -> Self {
                    #type_ident(#private::PhantomData)
                }
            }
        }
    }
}
