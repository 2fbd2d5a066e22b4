//! `#[derive(CType)]`: the type descriptor of a `#[repr(C)]` struct or union,
//! built entirely by the compiler.
//!
//! # The story of this file
//!
//! The checker reads a value's layout from its `Type` descriptor: size,
//! alignment, fields with offsets, `ptrdata` (the pointer-holding prefix) and
//! a pointer mask with one bit per 8-byte word. For primitives, arrays and raw
//! pointers the checker crate writes those impls by hand; for a user's struct
//! or union this derive writes them. For
//!
//! ```text
//! #[derive(CType)]
//! #[repr(C)]
//! struct Item { tag: u32, data: *mut u8 }
//! ```
//!
//! it emits, in the user's crate (paths shortened):
//!
//! ```text
//! unsafe impl CType for Item {
//!     const TYPE: &'static Type = {
//!         const SIZE: usize = size_of::<Item>();
//!         static FIELDS: [Field; 2] = [
//!             Field { name: "tag",  offset: offset_of!(Item, tag),  ty: <u32 as CType>::TYPE },
//!             Field { name: "data", offset: offset_of!(Item, data), ty: <*mut u8 as CType>::TYPE },
//!         ];
//!         const PTRDATA: usize = fields_ptrdata(&FIELDS);
//!         static MASK: [u64; mask_len(SIZE)] = fields_mask::<{ mask_len(SIZE) }>(SIZE, &FIELDS);
//!         static TYPE: Type = Type {
//!             name: "Item", size: SIZE, align: align_of::<Item>(), ptrdata: PTRDATA,
//!             kind: Kind::Struct { fields: &FIELDS },
//!             ptrmask: if PTRDATA == 0 { PtrMask::None } else { PtrMask::Bits(&MASK) },
//!         };
//!         &TYPE
//!     };
//! }
//! ```
//!
//! (the real names carry a `__CGOCHECK_` prefix so that they cannot shadow a
//! constant the user's field types mention, like `[u8; SIZE]`; every path is
//! absolute, so a user's `type Type = ...` cannot capture one either).
//!
//! **Nothing is computed by this macro.** The macro only sees tokens; it
//! cannot know `size_of::<Item>()` or where the compiler put `data`. So every
//! number is an expression the compiler evaluates at compile time: sizes and
//! offsets from `size_of`/`align_of`/`offset_of!` (the compiler's own layout,
//! so the descriptor cannot disagree with it), `ptrdata` and the mask from the
//! `const fn`s in `cgocheck_checker::types`, which read each field's own
//! descriptor. A field's pointer words therefore come from its type, all the
//! way down: an array of structs of pointers is described without this macro
//! knowing anything about arrays. The mask has `mask_len(SIZE)` words as
//! `fields_mask` asks, a length from the size alone so that the static's
//! *type* never waits on the fields' descriptors; when the type has no
//! pointer, `ptrdata` is 0, the mask is `PtrMask::None`, and the all-zero
//! `MASK` static is referenced by nothing (the linker drops it).
//!
//! **Why statics.** A `const` is inlined at every use, so a descriptor built
//! as a constant could exist at several addresses, and a 4 KiB mask would be
//! copied into every function that names it. The descriptor, its field table
//! and its mask are `static`s instead: one address each, which the heap may
//! use as a type's identity and which the `Type` graph can point to
//! (`Kind::Struct { fields }`, `PtrMask::Bits`). `TYPE` is a constant
//! reference *to* the static (constants may refer to statics since Rust 1.83).
//!
//! **Types that point to themselves or to each other.** `struct node
//! { struct node *next; }` is the most common shape in C, a managed list node
//! holding a `Gc<Node>` the most common on the managed side, and two types
//! that point to each other (`struct tree { struct leaf *root; }`,
//! `struct leaf { struct tree *owner; }`) are common too. They need nothing
//! from this macro: a pointer's, slice's or channel's descriptor names its
//! element through a `TypeRef`, a function that returns the element's
//! descriptor, so evaluating `<*mut Node as CType>::TYPE` never reads
//! `Node`'s descriptor and the compiler finds no cycle (a constant that
//! refers to a static is checked through everything it points to, but not
//! through the body of a function it holds). The one thing the macro does
//! is spell `Self` in field types as the type's name: the descriptor's
//! statics are items of their own, where `Self` means nothing.
//!
//! **Finding the checker crate.** Generated code lives in the user's crate,
//! which may know the checker under different names: as `cgocheck::checker`
//! (the runtime, which users depend on), as `cgocheck_checker` (a direct
//! dependency), possibly renamed in `Cargo.toml`, or as itself. The macro reads
//! the user's `Cargo.toml` with `proc-macro-crate`:
//!
//! 1. if `cgocheck` is a dependency under the name `n`, use `::n::checker`;
//! 2. else if `cgocheck-checker` is a dependency under the name `n`, use `::n`
//!    (this is also the path inside the runtime crate itself, and in its
//!    doc-tests, since the runtime depends on the checker directly);
//! 3. inside the checker crate, use `::cgocheck_checker`, which its
//!    `extern crate self as cgocheck_checker;` makes valid there too (and in its
//!    doc-tests and integration tests, where it is an ordinary dependency);
//! 4. `#[ctype(crate = "some::path")]` overrides all of this, for crates that
//!    re-export the checker from elsewhere.
//!
//! **Refusals.** The derive refuses, with a message at the offending tokens:
//! a missing `#[repr(C)]` (Rust's own layout may reorder fields and is not
//! C's), `packed` (pointer words would sit at unaligned offsets, which the
//! word-granular mask cannot describe and C cannot load atomically), enums
//! (their tag and validity are not C's; use an integer or a union), and
//! generic parameters (a descriptor is one `static` with one address, and a
//! `static` cannot depend on a type parameter). A field whose type has no
//! descriptor is rejected by the trait's `#[diagnostic::on_unimplemented]`,
//! pointed at that field's type.

#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Group, Span, TokenStream as TokenStream2, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Member, Path, Type};

/// Derives `CType` for a `#[repr(C)]` struct or union: a type descriptor
/// built at compile time from the compiler's own layout.
///
/// ```
/// use cgocheck_checker::{CType, Kind};
///
/// #[derive(CType)]
/// #[repr(C)]
/// struct Node {
///     next: *mut Node,
///     val: i32,
/// }
///
/// let t = <Node as CType>::TYPE;
/// assert_eq!((t.size, t.align, t.ptrdata), (16, 8, 8));
/// assert!(t.is_ptr_word(0) && !t.is_ptr_word(8));
/// assert!(matches!(t.kind, Kind::Struct { fields } if fields[1].name == "val" && fields[1].offset == 8));
/// assert_eq!(t.to_string(), "Node");
/// assert_eq!(<*mut Node as CType>::TYPE.to_string(), "*Node");
/// ```
///
/// # Attributes
///
/// - `#[ctype(name = "s1")]`: the name messages show (default: the Rust
///   type's name). Use the C name when the type mirrors a C declaration.
/// - `#[ctype(crate = "path::to::checker")]`: where the checker crate is,
///   when the automatic lookup (see the crate docs) cannot find it.
///
/// ```
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// #[ctype(name = "s1", crate = "::cgocheck_checker")]
/// struct S1 { p: *mut u8 }
/// assert_eq!(<*mut S1 as CType>::TYPE.to_string(), "*s1");
/// ```
///
/// - `#[ctype(mirror = "path::Foreign")]`: this type describes a type of
///   another crate (a `-sys` crate's struct), which cannot implement
///   `CType` here (the orphan rule). The derive also implements
///   `Mirror` (`Foreign` is the foreign type) and checks at compile time
///   that the size, the alignment, and each field's offset and size are
///   the foreign type's; its fields must have the foreign fields' names.
///   The runtime passes a pointer to a managed mirror where C takes a
///   pointer to the foreign type (`cgocheck::ffi::foreign`).
///
/// ```
/// # use cgocheck_checker::{CType, types::Mirror};
/// mod sys {
///     // What a -sys crate declares: its own type, with a function
///     // pointer that may not be null (so all-zero is not a valid value).
///     #[repr(C)]
///     pub struct stream { pub next: *mut u8, pub avail: u32, pub free: unsafe extern "C" fn(*mut u8) }
/// }
/// #[derive(CType)]
/// #[repr(C)]
/// #[ctype(mirror = "sys::stream")]
/// struct Stream { next: *mut u8, avail: u32, free: Option<unsafe extern "C" fn(*mut u8)> }
/// let _: fn(*mut Stream) -> *mut <Stream as Mirror>::Foreign = |p| p.cast::<sys::stream>();
/// assert!(Stream::TYPE.is_ptr_word(0) && Stream::TYPE.is_ptr_word(16));
/// ```
///
/// A field at another offset (or of another size, or missing) does not
/// compile:
///
/// ```compile_fail,E0080
/// # use cgocheck_checker::CType;
/// # mod sys { #[repr(C)] pub struct stream { pub next: *mut u8, pub avail: u32 } }
/// #[derive(CType)]
/// #[repr(C)]
/// #[ctype(mirror = "sys::stream")]
/// struct Stream { avail: u32, next: *mut u8 }
/// ```
/// ```compile_fail,E0080
/// # use cgocheck_checker::CType;
/// # mod sys { #[repr(C)] pub struct stream { pub next: *mut u8, pub avail: u32 } }
/// #[derive(CType)]
/// #[repr(C)]
/// #[ctype(mirror = "sys::stream")]
/// struct Stream { next: *mut u8, avail: u16 }
/// ```
///
/// # C function pointers
///
/// A nullable C function pointer, as bindgen writes C's `int (*cb)(void *)`,
/// is `Option<unsafe extern "C" fn(..)>` (or `Option<extern "C" fn(..)>`):
/// one `func` word.
///
/// ```
/// # use cgocheck_checker::{CType, Kind};
/// #[derive(CType)]
/// #[repr(C)]
/// struct Callbacks { on_row: Option<unsafe extern "C" fn(*mut core::ffi::c_void, i32) -> i32>, n: i32 }
/// let Kind::Struct { fields } = Callbacks::TYPE.kind else { unreachable!() };
/// assert!(matches!(fields[0].ty.kind, Kind::Func));
/// assert!(Callbacks::TYPE.is_ptr_word(0) && !Callbacks::TYPE.is_ptr_word(8));
/// ```
///
/// # Why the generated `unsafe impl` is sound
///
/// `CType`'s contract is that `TYPE` describes `Self` exactly (size,
/// alignment, every pointer word) and that all-zero bits are a valid `Self`.
/// The generated impl upholds it because:
///
/// - size, alignment and field offsets are not computed by the macro but by
///   the compiler (`size_of`, `align_of`, `offset_of!`), for the very type
///   the impl is for;
/// - every field is listed, and each field's pointer words come from that
///   field type's own `CType` descriptor (itself bound by the same
///   contract); the struct's mask is their union placed at the fields'
///   offsets, so no pointer word is lost. Padding holds no pointer;
/// - `repr(C)` is required (a defined, stable layout) and `packed` refused
///   (every pointer word stays word-aligned, which the mask assumes);
/// - a struct or union whose every field may be all-zero may be all-zero
///   (padding bytes carry no validity), and every field type implements
///   `CType`, whose contract says its all-zero value is valid.
///
/// # Refused at compile time
///
/// Each refusal below sits next to its accepted twin, so that a broken
/// derive that refuses everything (or nothing) fails these tests.
///
/// A field whose type has no descriptor (here `String`):
///
/// ```compile_fail,E0277
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// struct Msg { text: String, len: usize }
/// ```
/// ```
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// struct Msg { text: *const u8, len: usize }
/// ```
///
/// A struct without `#[repr(C)]` (Rust may reorder its fields):
///
/// ```compile_fail
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// struct Pair { a: u8, b: *mut u8 }
/// ```
/// ```
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// struct Pair { a: u8, b: *mut u8 }
/// ```
///
/// A packed struct (its pointer would sit at offset 1):
///
/// ```compile_fail
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C, packed)]
/// struct Pair { a: u8, b: *mut u8 }
/// ```
/// ```
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C, align(16))]
/// struct Pair { a: u8, b: *mut u8 }
/// assert_eq!(<Pair as CType>::TYPE.size, 16);
/// ```
///
/// An enum (use an integer for a C enum, a union for a tagged value):
///
/// ```compile_fail
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// enum Color { Red, Green }
/// ```
/// ```
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// union Color { red: u32, green: u32 }
/// ```
///
/// A generic struct (one descriptor is one static; it cannot vary with `T`):
///
/// ```compile_fail
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// struct Boxed<T> { p: *mut T }
/// ```
/// ```
/// # use cgocheck_checker::CType;
/// #[derive(CType)]
/// #[repr(C)]
/// struct Boxed { p: *mut u64 }
/// ```
///
/// # Types that point to themselves or to each other
///
/// Anything behind a pointer, managed pointer or slice may be the type
/// itself, spelled `Self` or by name, or another type that points back (see
/// the crate docs):
///
/// ```
/// # use cgocheck_checker::{CType, Kind};
/// #[derive(CType)]
/// #[repr(C)]
/// struct Node { next: *mut Node, prev: *const Self, kids: [*mut Self; 2], val: i32 }
/// let Kind::Struct { fields } = Node::TYPE.kind else { unreachable!() };
/// let Kind::Pointer { elem } = fields[0].ty.kind else { unreachable!() };
/// assert!(core::ptr::eq(elem.get(), Node::TYPE));
/// assert_eq!(fields[1].ty.to_string(), "*Node");
/// assert_eq!(fields[2].ty.to_string(), "[2]*Node");
///
/// #[derive(CType)]
/// #[repr(C)]
/// struct Tree { root: *mut Leaf }
/// #[derive(CType)]
/// #[repr(C)]
/// struct Leaf { owner: *mut Tree }
/// let Kind::Struct { fields } = Tree::TYPE.kind else { unreachable!() };
/// let Kind::Pointer { elem } = fields[0].ty.kind else { unreachable!() };
/// assert!(core::ptr::eq(elem.get(), Leaf::TYPE));
/// ```
#[proc_macro_derive(CType, attributes(ctype))]
pub fn derive_ctype(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// What `#[ctype(...)]` on the type said.
struct Options {
    name: Option<LitStr>,
    krate: Option<Path>,
    /// `#[ctype(mirror = "path::Foreign")]`: the foreign type this one
    /// describes.
    mirror: Option<Path>,
}

/// One field of the struct or union, as the descriptor will list it.
struct FieldInfo<'a> {
    /// `"p"`, or `"0"` for a tuple field.
    name: String,
    /// What `offset_of!` takes: the identifier or the index.
    member: Member,
    ty: &'a Type,
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    // Collect every refusal, so the user sees all of them in one build.
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };

    let options = match parse_options(input) {
        Ok(o) => o,
        Err(e) => {
            push(e);
            Options { name: None, krate: None, mirror: None }
        }
    };

    if let Some(param) = input.generics.params.first() {
        push(syn::Error::new(
            input.generics.span(),
            format!(
                "derive(CType) does not support generic parameters (here `{}`): a type \
                 descriptor is a single `static` with one address, and a static cannot \
                 depend on the impl's parameters; write the concrete types instead",
                param.to_token_stream()
            ),
        ));
    } else if let Some(wc) = &input.generics.where_clause {
        push(syn::Error::new(wc.span(), "derive(CType) does not support where clauses"));
    }

    let (is_union, fields) = match &input.data {
        Data::Struct(s) => (false, collect_fields(&s.fields)),
        Data::Union(u) => (true, collect_named(u.fields.named.iter())),
        Data::Enum(e) => {
            push(syn::Error::new(
                e.enum_token.span,
                "derive(CType) does not support enums: a Rust enum's tag and set of valid \
                 values are not a C type's (and all-zero bits may not be a valid value); \
                 describe a C enum as its integer type (e.g. `u32`), and a tagged value \
                 as a #[repr(C)] struct holding the tag and a #[repr(C)] union",
            ));
            (false, Vec::new())
        }
    };

    if !matches!(input.data, Data::Enum(_)) {
        if let Err(e) = check_repr(input) {
            push(e);
        }
    }
    for field in input_fields(input) {
        for attr in &field.attrs {
            if attr.path().is_ident("ctype") {
                push(syn::Error::new(attr.path().span(), "#[ctype(...)] goes on the struct or union, not on a field"));
            }
        }
    }

    if let Some(e) = errors {
        return Err(e);
    }

    let krate = match options.krate {
        Some(path) => path.to_token_stream(),
        None => checker_path(input.ident.span())?,
    };
    let ident = &input.ident;
    let name = match options.name {
        Some(lit) => lit,
        None => LitStr::new(&ident.to_string(), ident.span()),
    };

    let n = fields.len();
    let field_exprs: Vec<TokenStream2> = fields
        .iter()
        .map(|f| {
            let fname = &f.name;
            let member = &f.member;
            // `Self` means nothing inside the statics below.
            let ty = spell_self(f.ty.to_token_stream(), ident);
            // Named with the field type's span, so that a type without
            // `CType` is reported there, in the trait's own words.
            let desc = quote_spanned! {f.ty.span()=> <#ty as #krate::CType>::TYPE };
            quote! {
                #krate::Field {
                    name: #fname,
                    offset: ::core::mem::offset_of!(#ident, #member),
                    ty: #desc,
                }
            }
        })
        .collect();
    let kind = if is_union {
        quote! { #krate::Kind::Union { fields: &__CGOCHECK_FIELDS } }
    } else {
        quote! { #krate::Kind::Struct { fields: &__CGOCHECK_FIELDS } }
    };

    let mirror = options.mirror.as_ref().map(|foreign| mirror_impl(&krate, ident, foreign, &fields));

    let usize_ = quote! { ::core::primitive::usize };
    let u64_ = quote! { ::core::primitive::u64 };
    Ok(quote! {
        #mirror

        #[automatically_derived]
        // The masks of large arrays take the const evaluator a while (a
        // `[*mut u8; 1 << 20]` field, about 20 s); the loops are bounded, so
        // let it finish rather than fail the build.
        #[allow(long_running_const_eval)]
        unsafe impl #krate::CType for #ident {
            const TYPE: &'static #krate::Type = {
                const __CGOCHECK_SIZE: #usize_ = ::core::mem::size_of::<#ident>();
                static __CGOCHECK_FIELDS: [#krate::Field; #n] = [ #(#field_exprs),* ];
                const __CGOCHECK_PTRDATA: #usize_ =
                    #krate::types::fields_ptrdata(&__CGOCHECK_FIELDS);
                // From the size alone, so the static's type never waits on
                // the fields' descriptors.
                const __CGOCHECK_MASK_LEN: #usize_ = #krate::types::mask_len(__CGOCHECK_SIZE);
                static __CGOCHECK_MASK: [#u64_; __CGOCHECK_MASK_LEN] =
                    #krate::types::fields_mask::<__CGOCHECK_MASK_LEN>(__CGOCHECK_SIZE, &__CGOCHECK_FIELDS);
                static __CGOCHECK_TYPE: #krate::Type = #krate::Type {
                    name: #name,
                    size: __CGOCHECK_SIZE,
                    align: ::core::mem::align_of::<#ident>(),
                    ptrdata: __CGOCHECK_PTRDATA,
                    kind: #kind,
                    ptrmask: if __CGOCHECK_PTRDATA == 0 {
                        #krate::PtrMask::None
                    } else {
                        #krate::PtrMask::Bits(&__CGOCHECK_MASK)
                    },
                };
                &__CGOCHECK_TYPE
            };
        }
    })
}

/// `#[ctype(mirror = "Foreign")]`: the `Mirror` impl, and the compile-time
/// checks that make it true: the mirror's size, alignment, and every
/// field's offset and size are the foreign type's. A field the foreign type
/// does not have (or does not make visible) fails `offset_of!` itself.
fn mirror_impl(krate: &TokenStream2, ident: &Ident, foreign: &Path, fields: &[FieldInfo<'_>]) -> TokenStream2 {
    let what =
        format!("derive(CType): `{ident}` mirrors `{}`, but", foreign.to_token_stream().to_string().replace(' ', ""));
    let size_msg = format!("{what} their sizes differ");
    let align_msg = format!("{what} their alignments differ");
    let checks = fields.iter().map(|f| {
        let member = &f.member;
        let ty = spell_self(f.ty.to_token_stream(), ident);
        let offset_msg = format!("{what} field `{}` is at another offset", f.name);
        let fsize_msg = format!("{what} field `{}` has another size", f.name);
        quote_spanned! {f.ty.span()=>
            ::core::assert!(
                ::core::mem::offset_of!(#ident, #member) == ::core::mem::offset_of!(#foreign, #member),
                #offset_msg
            );
            ::core::assert!(
                ::core::mem::size_of::<#ty>()
                    // SAFETY: only the field's address is taken; nothing
                    // is read from the uninitialised value.
                    == #krate::types::size_of_pointee(unsafe { &raw const (*__cgocheck_foreign.as_ptr()).#member }),
                #fsize_msg
            );
        }
    });
    quote! {
        // SAFETY: the layout checks below hold (or this does not compile),
        // and the pointer words are the mirror's fields' (see `Mirror`).
        unsafe impl #krate::types::Mirror for #ident {
            type Foreign = #foreign;
        }
        const _: () = {
            ::core::assert!(::core::mem::size_of::<#ident>() == ::core::mem::size_of::<#foreign>(), #size_msg);
            ::core::assert!(::core::mem::align_of::<#ident>() == ::core::mem::align_of::<#foreign>(), #align_msg);
            let __cgocheck_foreign = ::core::mem::MaybeUninit::<#foreign>::uninit();
            #(#checks)*
        };
    }
}

/// `ty` with every `Self` replaced by `ident` (at the `Self`'s span, so that
/// errors still point at what the user wrote): the descriptor's statics are
/// items of their own, where `Self` does not name the type.
fn spell_self(ty: TokenStream2, ident: &Ident) -> TokenStream2 {
    ty.into_iter()
        .map(|tt| match tt {
            TokenTree::Ident(i) if i == "Self" => TokenTree::Ident(Ident::new(&ident.to_string(), i.span())),
            TokenTree::Group(g) => {
                let mut out = Group::new(g.delimiter(), spell_self(g.stream(), ident));
                out.set_span(g.span());
                TokenTree::Group(out)
            }
            other => other,
        })
        .collect()
}

fn input_fields(input: &DeriveInput) -> Vec<&syn::Field> {
    match &input.data {
        Data::Struct(s) => s.fields.iter().collect(),
        Data::Union(u) => u.fields.named.iter().collect(),
        Data::Enum(_) => Vec::new(),
    }
}

fn collect_fields(fields: &Fields) -> Vec<FieldInfo<'_>> {
    match fields {
        Fields::Named(named) => collect_named(named.named.iter()),
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| FieldInfo {
                name: i.to_string(),
                member: Member::Unnamed(syn::Index { index: i as u32, span: f.ty.span() }),
                ty: &f.ty,
            })
            .collect(),
        Fields::Unit => Vec::new(),
    }
}

fn collect_named<'a>(fields: impl Iterator<Item = &'a syn::Field>) -> Vec<FieldInfo<'a>> {
    fields
        .map(|f| {
            let ident = f.ident.as_ref().expect("named field");
            FieldInfo {
                // A raw identifier `r#type` is the C field `type`.
                name: ident.to_string().trim_start_matches("r#").to_owned(),
                member: Member::Named(ident.clone()),
                ty: &f.ty,
            }
        })
        .collect()
}

/// Reads `#[ctype(name = "...", crate = "...")]`.
fn parse_options(input: &DeriveInput) -> syn::Result<Options> {
    let mut options = Options { name: None, krate: None, mirror: None };
    for attr in &input.attrs {
        if !attr.path().is_ident("ctype") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "#[ctype(name)] must not be empty"));
                }
                options.name = Some(lit);
                Ok(())
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                options.krate = Some(lit.parse::<Path>()?);
                Ok(())
            } else if meta.path.is_ident("mirror") {
                let lit: LitStr = meta.value()?.parse()?;
                options.mirror = Some(lit.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown #[ctype] option `{}`; expected `name = \"...\"`, `crate = \"...\"` or \
                     `mirror = \"path::Foreign\"`",
                    meta.path.to_token_stream()
                )))
            }
        })?;
    }
    Ok(options)
}

/// Requires `#[repr(C)]` (possibly with `align(N)`) and refuses `packed`.
fn check_repr(input: &DeriveInput) -> syn::Result<()> {
    let mut has_c = false;
    for attr in &input.attrs {
        if !attr.path().is_ident("repr") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") {
                has_c = true;
            } else if meta.path.is_ident("packed") {
                return Err(syn::Error::new(
                    meta.path.span(),
                    "derive(CType) refuses #[repr(packed)]: a packed struct may put a \
                     pointer at an offset that is not a multiple of 8, and the checker's \
                     pointer mask (one bit per aligned 8-byte word) cannot describe it; \
                     C would not load it atomically either. Remove `packed`, or store \
                     the pointer as an integer (e.g. `[u8; 8]`) if it is not a pointer \
                     the checker must see",
                ));
            } else if meta.path.is_ident("transparent") {
                return Err(syn::Error::new(
                    meta.path.span(),
                    "derive(CType) needs #[repr(C)], not #[repr(transparent)]",
                ));
            }
            // `align(N)` and the rest: consume their arguments, keep going.
            if meta.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in meta.input);
                let _: TokenStream2 = content.parse()?;
            }
            Ok(())
        })?;
    }
    if has_c {
        Ok(())
    } else {
        let what = if matches!(input.data, Data::Union(_)) { "union" } else { "struct" };
        Err(syn::Error::new(
            input.ident.span(),
            format!(
                "derive(CType) needs #[repr(C)] on `{}`: without it Rust may reorder and \
                 pad the {what}'s fields as it likes, so its layout is not the C layout \
                 the checker (and C) expect; add #[repr(C)]",
                input.ident
            ),
        ))
    }
}

/// The path of the checker crate as the user's crate sees it (see the crate
/// docs, "Finding the checker crate").
fn checker_path(span: Span) -> syn::Result<TokenStream2> {
    use proc_macro_crate::{crate_name, FoundCrate};
    // The runtime re-exports the checker as `cgocheck::checker`. Inside the
    // runtime itself (`Itself`) `::cgocheck` does not resolve, but its direct
    // dependency on the checker does: fall through to that.
    if let Ok(FoundCrate::Name(name)) = crate_name("cgocheck") {
        let ident = Ident::new(&name, span);
        return Ok(quote! { ::#ident::checker });
    }
    match crate_name("cgocheck-checker") {
        Ok(FoundCrate::Name(name)) => {
            let ident = Ident::new(&name, span);
            Ok(quote! { ::#ident })
        }
        // `extern crate self as cgocheck_checker;` in the checker's lib.rs.
        Ok(FoundCrate::Itself) => Ok(quote! { ::cgocheck_checker }),
        Err(e) => Err(syn::Error::new(
            span,
            format!(
                "derive(CType) cannot find the cgocheck checker in this crate's Cargo.toml \
                 ({e}); depend on `cgocheck` (or `cgocheck-checker`), or say where it is \
                 with #[ctype(crate = \"path::to::checker\")]"
            ),
        )),
    }
}

/// The refusals, checked for their reason: the `compile_fail` doc-tests show
/// that refused code does not compile, these show that the derive is what
/// refuses it, and with which words.
#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn refusal(input: DeriveInput) -> String {
        match expand(&input) {
            Ok(tokens) => panic!("accepted: {tokens}"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        }
    }

    fn assert_refused(input: DeriveInput, words: &str) {
        let msg = refusal(input);
        assert!(msg.contains(words), "expected {words:?} in {msg:?}");
    }

    #[test]
    fn refuses_missing_repr_c() {
        assert_refused(parse_quote! { struct P { a: u8 } }, "needs #[repr(C)] on `P`");
        assert_refused(parse_quote! { #[repr(align(8))] struct P { a: u8 } }, "needs #[repr(C)]");
        assert_refused(parse_quote! { #[repr(transparent)] struct P { a: u8 } }, "not #[repr(transparent)]");
        assert_refused(parse_quote! { union U { a: u8 } }, "reorder and pad the union's fields");
    }

    #[test]
    fn refuses_packed() {
        assert_refused(parse_quote! { #[repr(C, packed)] struct P { a: u8 } }, "refuses #[repr(packed)]");
        assert_refused(parse_quote! { #[repr(C, packed(2))] struct P { a: u8 } }, "refuses #[repr(packed)]");
        assert_refused(parse_quote! { #[repr(C)] #[repr(packed)] struct P { a: u8 } }, "not a multiple of 8");
    }

    #[test]
    fn refuses_enums() {
        assert_refused(parse_quote! { #[repr(C)] enum E { A } }, "does not support enums");
        assert_refused(parse_quote! { #[repr(u32)] enum E { A } }, "does not support enums");
        let msg = refusal(parse_quote! { enum E { A } });
        assert!(msg.contains("integer type") && msg.contains("union"), "{msg}");
        assert!(!msg.contains("repr(C)]` on"), "an enum is refused as an enum, not for its repr: {msg}");
    }

    #[test]
    fn refuses_generics() {
        assert_refused(parse_quote! { #[repr(C)] struct B<T> { p: *mut T } }, "generic parameters (here `T`)");
        assert_refused(parse_quote! { #[repr(C)] struct B<'a> { p: *mut u8, m: [&'a u8; 0] } }, "single `static`");
        assert_refused(parse_quote! { #[repr(C)] struct B<const N: usize> { a: [u8; N] } }, "generic parameters");
    }

    #[test]
    fn refuses_bad_options() {
        assert_refused(
            parse_quote! { #[repr(C)] #[ctype(nmae = "x")] struct P { a: u8 } },
            "unknown #[ctype] option `nmae`",
        );
        assert_refused(parse_quote! { #[repr(C)] #[ctype(name = "")] struct P { a: u8 } }, "must not be empty");
        assert_refused(parse_quote! { #[repr(C)] struct P { #[ctype(name = "b")] a: u8 } }, "not on a field");
    }

    #[test]
    fn reports_every_refusal_at_once() {
        let msg = refusal(parse_quote! { #[repr(C, packed)] struct B<T> { #[ctype] p: *mut T } });
        for words in ["generic parameters", "refuses #[repr(packed)]", "not on a field"] {
            assert!(msg.contains(words), "expected {words:?} in {msg:?}");
        }
    }

    #[test]
    fn accepts_repr_c_structs_unions_and_alignment() {
        for input in [
            parse_quote! { #[repr(C)] struct P { a: u8 } },
            parse_quote! { #[repr(C, align(16))] struct P(u8, *mut u8); },
            parse_quote! { #[repr(C)] #[repr(align(16))] struct P; },
            parse_quote! { #[repr(C)] union U { a: u8, p: *mut u8 } },
        ] {
            let input: DeriveInput = input;
            if let Err(e) = expand(&input) {
                panic!("refused {}: {e}", input.ident);
            }
        }
    }

    #[test]
    fn spells_self_as_the_type_name() {
        let me: Ident = parse_quote!(Node);
        for (ty, want) in [
            (quote!(*mut Self), "* mut Node"),
            (quote!(*mut Node), "* mut Node"),
            (quote!([Gc<*const (Self)>; 2]), "[Gc < * const (Node) > ; 2]"),
            (quote!([u8; Self::N]), "[u8 ; Node :: N]"),
            (quote!(*mut Selfish), "* mut Selfish"),
        ] {
            assert_eq!(spell_self(ty, &me).to_string(), want);
        }
    }

    #[test]
    fn crate_path_override_is_used() {
        let input: DeriveInput = parse_quote! { #[repr(C)] #[ctype(crate = "my::checker")] struct P { a: u8 } };
        let out = expand(&input).unwrap().to_string();
        assert!(out.contains("unsafe impl my :: checker :: CType for P"), "{out}");
        assert!(!out.contains("cgocheck_checker"), "{out}");
    }
}
