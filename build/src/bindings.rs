//! C header → checked Rust declarations, through bindgen.
//!
//! bindgen turns a header into Rust: `extern "C"` blocks, `#[repr(C)]`
//! structs and unions, constants, type aliases. Its declarations call C
//! directly, without the checks; this file keeps everything bindgen writes
//! and changes two things, so that the same output goes through the
//! checker:
//!
//! 1. every `extern "C"` block becomes `cgocheck::c_functions! { .. }`
//!    (one checked wrapper per function, named as the C function; see the
//!    runtime's `c_functions!`). A variadic function (`printf`) is left out
//!    with a `cargo:warning`: `c_functions!` refuses them, as cmd/cgo
//!    does. A C global (`extern int errno_like;`) stays a plain `extern`
//!    declaration: reading it is not a call;
//! 2. every struct and union derives `cgocheck::CType` (bindgen's
//!    `add_derives` callback), so each has a descriptor built by the
//!    compiler from its real layout.
//!
//! The rest needs nothing: `#define`d integers are `i32` constants (C's
//! `int`), C enums are written as integer constants
//! (bindgen's `Consts` style, since a Rust enum cannot hold every value a C
//! enum may), typedefs as type aliases, and C function pointer types as
//! `Option<unsafe extern "C" fn(..)>`, which the checker describes (a
//! `Func` word).
//!
//! What is not supported is refused where it is used: a struct with C
//! bitfields gets bindgen's generic `__BindgenBitfieldUnit` field, which
//! has no descriptor, so `derive(CType)` reports that field's type (leave
//! the struct out of the allowlist, or make it opaque with
//! [`Bindings::opaque_type`]).

use bindgen::callbacks::{DeriveInfo, ParseCallbacks, TypeKind};
use quote::quote;
use std::path::{Path, PathBuf};

/// A header to read and what to keep from it: bindgen's builder with the
/// settings checked wrappers need.
pub struct Bindings {
    header: PathBuf,
    builder: bindgen::Builder,
    runtime: syn::Path,
}

/// The `add_derives` callback: `CType` on every struct and union.
#[derive(Debug)]
struct DeriveCType {
    derive: String,
}

impl ParseCallbacks for DeriveCType {
    fn add_derives(&self, info: &DeriveInfo<'_>) -> Vec<String> {
        match info.kind {
            TypeKind::Struct | TypeKind::Union => vec![self.derive.clone()],
            // Not produced with the `Consts` enum style; a Rust enum would
            // be refused by derive(CType) anyway.
            _ => vec![],
        }
    }
}

impl Bindings {
    /// Reads `header` (a file of the crate, or a header of a `-sys` crate's
    /// include directory). Keeps nothing until an allowlist says what.
    pub fn new(header: impl AsRef<Path>) -> Self {
        let header = header.as_ref().to_path_buf();
        let builder = bindgen::Builder::default()
            .header(header.to_string_lossy())
            .ctypes_prefix("::core::ffi")
            .default_enum_style(bindgen::EnumVariation::Consts)
            // `#define Z_OK 0` as `c_int`-compatible `i32`, as C reads it
            // (bindgen's default, `u32`, cannot hold `Z_BUF_ERROR (-5)`'s
            // neighbours without casts at every comparison).
            .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
            .layout_tests(false)
            .generate_comments(true)
            .formatter(bindgen::Formatter::None)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        Bindings { header, builder, runtime: syn::parse_quote!(::cgocheck) }
    }

    /// Keeps the functions whose names match the regular expression `re`
    /// (bindgen's `allowlist_function`), and the types they use.
    pub fn allowlist_function(mut self, re: &str) -> Self {
        self.builder = self.builder.allowlist_function(re);
        self
    }

    /// Keeps the types whose names match `re`, and the types they use.
    pub fn allowlist_type(mut self, re: &str) -> Self {
        self.builder = self.builder.allowlist_type(re);
        self
    }

    /// Keeps the constants and globals whose names match `re` (`#define`d
    /// numbers and strings included).
    pub fn allowlist_var(mut self, re: &str) -> Self {
        self.builder = self.builder.allowlist_var(re);
        self
    }

    /// Describes the types matching `re` as opaque: a byte array of the
    /// right size and alignment, with no pointer words. Only for types C
    /// owns and managed code never puts a managed pointer in.
    pub fn opaque_type(mut self, re: &str) -> Self {
        self.builder = self.builder.opaque_type(re);
        self
    }

    /// Passes an argument to clang (`-I/path`, `-DNAME=1`).
    pub fn clang_arg(mut self, arg: &str) -> Self {
        self.builder = self.builder.clang_arg(arg);
        self
    }

    /// The path of the runtime crate in the crate that includes the output,
    /// when it is not `::cgocheck` (a renamed dependency).
    pub fn runtime_crate(mut self, path: &str) -> Self {
        self.runtime = syn::parse_str(path).unwrap_or_else(|e| {
            panic!("cgocheck-build: runtime_crate({path:?}) is not a Rust path ({e}); give e.g. \"::cgocheck\"")
        });
        self
    }

    /// Runs bindgen and writes the checked declarations to `out` (usually
    /// `$OUT_DIR/name.rs`, which the crate `include!`s inside a module).
    /// Panics, naming the header, when clang cannot read it or libclang
    /// cannot be loaded.
    pub fn generate(self, out: impl AsRef<Path>) {
        let runtime = self.runtime;
        let derive = format!("{}::CType", quote!(#runtime).to_string().replace(' ', ""));
        let bindings = self.builder.parse_callbacks(Box::new(DeriveCType { derive })).generate().unwrap_or_else(|e| {
            panic!(
                "cgocheck-build: bindgen could not read {}: {e}. It needs libclang (Debian: apt-get install \
                 libclang-dev) and the header's include directories (Bindings::clang_arg(\"-I..\"))",
                self.header.display()
            )
        });
        let file: syn::File = syn::parse_str(&bindings.to_string()).unwrap_or_else(|e| {
            panic!("cgocheck-build: bindgen's output for {} is not Rust: {e}", self.header.display())
        });
        let checked = wrap_functions(file, &runtime);
        let out = out.as_ref();
        std::fs::write(out, prettyplease::unparse(&checked))
            .unwrap_or_else(|e| panic!("cgocheck-build: cannot write {}: {e}", out.display()));
    }
}

/// Every `extern "C"` block of `file`, with its functions declared through
/// `c_functions!` instead (variadic ones left out, with a warning).
fn wrap_functions(file: syn::File, runtime: &syn::Path) -> syn::File {
    let mut items = Vec::with_capacity(file.items.len());
    for item in file.items {
        let syn::Item::ForeignMod(block) = item else {
            items.push(item);
            continue;
        };
        let attrs = &block.attrs;
        let mut functions = Vec::new();
        let mut others = Vec::new();
        for foreign in block.items {
            match foreign {
                syn::ForeignItem::Fn(f) if f.sig.variadic.is_some() => println!(
                    "cargo:warning=cgocheck-build: {} is variadic and is not wrapped: variadic C functions \
                     cannot be checked (cmd/cgo refuses them too); call it through a C function with fixed \
                     parameters",
                    f.sig.ident
                ),
                syn::ForeignItem::Fn(f) => functions.push(f),
                other => others.push(other),
            }
        }
        if !functions.is_empty() {
            items.push(syn::parse_quote! {
                #runtime::c_functions! {
                    #(#attrs)*
                    extern "C" {
                        #(#functions)*
                    }
                }
            });
        }
        if !others.is_empty() {
            items.push(syn::parse_quote! {
                #(#attrs)*
                unsafe extern "C" {
                    #(#others)*
                }
            });
        }
    }
    syn::File { items, ..file }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_go_through_c_functions_and_variadic_ones_are_left_out() {
        let file: syn::File = syn::parse_quote! {
            pub type cb = Option<unsafe extern "C" fn(x: ::core::ffi::c_int)>;
            unsafe extern "C" {
                #[doc = " Adds."]
                pub fn add(a: ::core::ffi::c_int, b: ::core::ffi::c_int) -> ::core::ffi::c_int;
                pub fn logf(fmt: *const ::core::ffi::c_char, ...);
                pub static mut counter: ::core::ffi::c_int;
            }
        };
        let out = prettyplease::unparse(&wrap_functions(file, &syn::parse_quote!(::cgocheck)));
        // The macro's body is printed token by token: compare without spaces.
        let flat: String = out.split_whitespace().collect();
        let add = flat.find("::cgocheck::c_functions!{extern\"C\"{").expect(&out);
        assert!(flat[add..].contains("pubfnadd(a:::core::ffi::c_int,b:::core::ffi::c_int)"), "{out}");
        assert!(!out.contains("logf"), "the variadic function is left out:\n{out}");
        assert!(out.contains("pub static mut counter"), "globals stay plain externs:\n{out}");
        assert!(out.contains("pub type cb"), "{out}");
    }
}
