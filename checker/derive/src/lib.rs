//! `#[derive(CType)]` (placeholder until the derive lands).
use proc_macro::TokenStream;
#[proc_macro_derive(CType, attributes(ctype))]
pub fn derive_ctype(_input: TokenStream) -> TokenStream { TokenStream::new() }
