//! Type descriptors: what the checker knows about a value's layout.
//!
//! Go's cgo checks walk `*_type`: a kind, a size, the length of the prefix
//! that can hold pointers (`PtrBytes`) and a pointer mask. This module is the
//! same model for Rust values that cross into C:
//!
//! - [`Type`] describes one type: name (for messages), size, alignment,
//!   `ptrdata` (bytes of the prefix that can hold pointers, 0 for pointer-free
//!   types), the [`Kind`] with its element type or fields, and a [`PtrMask`]
//!   saying which machine words of a value are pointer words.
//! - [`TypeRef`] is how a pointer, slice, channel or map names its element:
//!   lazily, as a function that returns the element's descriptor. What a
//!   value points to never changes its own layout, so nothing about a
//!   pointer's descriptor needs its element's; naming it lazily lets types
//!   that point to each other (`struct a { struct b *b; }`, `struct b
//!   { struct a *a; }`) be described at compile time, where naming it eagerly
//!   is a cycle in constant evaluation. Arrays, struct and union fields name
//!   theirs eagerly: their layout is made of it, and a type cannot contain
//!   itself by value.
//! - [`CType`] is implemented by every type that may appear in memory C sees.
//!   Primitives, arrays and raw pointers are implemented here; `#[repr(C)]`
//!   structs and unions get it from `#[derive(CType)]`, which builds the whole
//!   descriptor (fields, offsets, mask) at compile time; the runtime implements
//!   it for its managed pointer, slice and string types.
//!
//! Pointer masks are one bit per 8-byte word, least significant bit first
//! inside each `u64` (bitvec's `BitSlice<u64, Lsb0>` order). Arrays do not
//! materialise their mask: [`PtrMask::Repeat`] says "the element's mask, `len`
//! times", the way Go uses a GC program for large arrays, so a
//! `[*mut u8; 32769]` costs no 4 KiB constant per use. [`Type::ptr_bits`]
//! materialises any mask as a `BitVec` when one is needed (the heap does this
//! once per span).
//!
//! The model is 64-bit only: a word is 8 bytes, as on every target the
//! runtime supports (x86_64, aarch64).

use bitvec::prelude::*;

/// Bytes in a machine word; pointer masks have one bit per word.
pub const WORD: usize = 8;

const _: () = assert!(core::mem::size_of::<usize>() == WORD, "cgocheck supports 64-bit targets only");

/// A type descriptor. Build one with `#[derive(CType)]` or read one with
/// `<T as CType>::TYPE`; hand-built descriptors are for run-time types
/// (the checker refuses interface values whose type lives in the managed heap,
/// as Go does for `reflect`-built types).
#[derive(Debug)]
pub struct Type {
    /// Name used in messages: `s1`, `int32`. Empty for types whose name is
    /// composed from their kind (`*int32`, `[4]uint8`); [`Type`]'s `Display`
    /// does the composing, so print a type with `{}`, not its `name`.
    pub name: &'static str,
    /// `size_of` the Rust type.
    pub size: usize,
    /// `align_of` the Rust type.
    pub align: usize,
    /// Length in bytes of the prefix of a value that can contain pointers;
    /// 0 when the type holds no pointer at all (Go's `PtrBytes`).
    pub ptrdata: usize,
    /// What kind of type this is, with its element type or fields.
    pub kind: Kind,
    /// Which words of a value are pointer words.
    pub ptrmask: PtrMask,
}

/// Go's kinds, plus C unions. Element types and fields are descriptors too,
/// so the checker can walk a value the way `cgoCheckArg` walks a Go value.
/// What a value only points to (pointer, slice, channel and map elements) is
/// a [`TypeRef`], read with [`TypeRef::get`]; what it holds by value (array
/// elements, fields) is a `&'static Type`.
#[derive(Debug)]
pub enum Kind {
    /// `bool`
    Bool,
    /// `i8`
    Int8,
    /// `i16`
    Int16,
    /// `i32`
    Int32,
    /// `i64`
    Int64,
    /// `u8`
    Uint8,
    /// `u16`
    Uint16,
    /// `u32`
    Uint32,
    /// `u64`
    Uint64,
    /// `isize`
    Int,
    /// `usize`: an integer, never treated as a pointer (Go's `uintptr`).
    Uintptr,
    /// `f32`
    Float32,
    /// `f64`
    Float64,
    /// [`Complex64`]
    Complex64,
    /// [`Complex128`]
    Complex128,
    /// A fixed-length array `[elem; len]`.
    Array {
        /// The element type.
        elem: &'static Type,
        /// The number of elements.
        len: usize,
    },
    /// A managed channel: one pointer word. Always refused at the boundary.
    Chan {
        /// The element type.
        elem: TypeRef,
    },
    /// A function value: one pointer word (C function pointers are not Go
    /// pointers; a managed closure would be).
    Func,
    /// An interface value: two words, the dynamic type (`*const Type`) and
    /// the data word (a pointer to the value, or the value itself when it is
    /// pointer-shaped, see [`Type::is_direct_iface`]).
    Interface,
    /// A managed map: one pointer word. Always refused at the boundary.
    Map {
        /// The key type.
        key: TypeRef,
        /// The value type.
        value: TypeRef,
    },
    /// A pointer to `elem`: a C raw pointer or the runtime's managed pointer;
    /// which one it is, is decided by where it points, not by its type.
    Pointer {
        /// The pointee type.
        elem: TypeRef,
    },
    /// A slice header `{ ptr, len, cap }` of `elem`s.
    Slice {
        /// The element type.
        elem: TypeRef,
    },
    /// A string header `{ ptr, len }` of bytes.
    String,
    /// A `#[repr(C)]` struct.
    Struct {
        /// The fields, in order.
        fields: &'static [Field],
    },
    /// `*mut c_void` / `unsafe.Pointer`: a pointer to something unknown.
    UnsafePointer,
    /// A C union. Its pointer mask is the union of its fields' masks: a word
    /// that some field uses as a pointer is a pointer word.
    Union {
        /// The members.
        fields: &'static [Field],
    },
}

/// The descriptor of what a pointer, slice, channel or map refers to, named
/// lazily: a function that returns it. See the module comment for why.
///
/// Build one with [`TypeRef::of`] (`T`'s `CType` descriptor) or, for a
/// hand-built descriptor, [`TypeRef::new`] with a function or non-capturing
/// closure (`TypeRef::new(|| &MY_TYPE)`); both work in constants and statics.
/// `Display` prints the element's name (`int32`, `node`); `Debug` does too,
/// rather than the element's whole descriptor, because a descriptor may lead
/// back to itself through its elements (`struct node { struct node *next; }`)
/// and printing it in full would never end.
#[derive(Clone, Copy)]
pub struct TypeRef(fn() -> &'static Type);

impl TypeRef {
    /// A reference to the descriptor `f` returns.
    pub const fn new(f: fn() -> &'static Type) -> TypeRef {
        TypeRef(f)
    }

    /// A reference to `T`'s descriptor, `<T as CType>::TYPE`.
    pub const fn of<T: CType>() -> TypeRef {
        fn type_of<T: CType>() -> &'static Type {
            T::TYPE
        }
        TypeRef(type_of::<T>)
    }

    /// The descriptor. Derived descriptors are statics, so this is the same
    /// address as the type's `CType::TYPE`.
    #[inline]
    pub fn get(self) -> &'static Type {
        (self.0)()
    }
}

impl core::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self.get(), f)
    }
}

impl core::fmt::Debug for TypeRef {
    /// The element's name, e.g. `TypeRef(node)`: see the type's comment.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TypeRef({})", self.get())
    }
}

/// A field of a struct or union.
#[derive(Debug)]
pub struct Field {
    /// The field's name, for paths (`.next`).
    pub name: &'static str,
    /// Its byte offset in the struct (0 for a union's fields).
    pub offset: usize,
    /// Its type.
    pub ty: &'static Type,
}

/// Which words of a value are pointer words.
#[derive(Debug, Clone, Copy)]
pub enum PtrMask {
    /// No pointer words.
    None,
    /// One bit per word of the first `ptrdata / 8` words, LSB-first in each
    /// `u64`. Words past the end of the slice are not pointers.
    Bits(&'static [u64]),
    /// The element type's mask, `len` times, every `elem.size` bytes.
    Repeat {
        /// The element type.
        elem: &'static Type,
        /// How many elements.
        len: usize,
    },
}

/// Mask of a single pointer word.
pub const ONE_POINTER: PtrMask = PtrMask::Bits(&[0b1]);

impl Type {
    /// A pointer-free scalar of the given kind.
    pub const fn scalar(name: &'static str, size: usize, align: usize, kind: Kind) -> Type {
        Type { name, size, align, ptrdata: 0, kind, ptrmask: PtrMask::None }
    }

    /// Whether the value holds any pointer word.
    pub const fn has_pointers(&self) -> bool {
        self.ptrdata != 0
    }

    /// Whether the word at byte `offset` of a value is a pointer word.
    /// `offset` is rounded down to its word. Usable in constants: the derive
    /// computes struct masks with it.
    pub const fn is_ptr_word(&self, offset: usize) -> bool {
        if offset >= self.ptrdata {
            return false;
        }
        match self.ptrmask {
            PtrMask::None => false,
            PtrMask::Bits(bits) => {
                let w = offset / WORD;
                let i = w / 64;
                i < bits.len() && (bits[i] >> (w % 64)) & 1 == 1
            }
            PtrMask::Repeat { elem, len } => {
                if elem.size == 0 || offset / elem.size >= len {
                    return false;
                }
                elem.is_ptr_word(offset % elem.size)
            }
        }
    }

    /// The pointer mask of one value, `size / 8` bits long (rounded up).
    pub fn ptr_bits(&self) -> BitVec<u64, Lsb0> {
        let mut bits = bitvec![u64, Lsb0; 0; self.size.div_ceil(WORD)];
        self.write_ptr_bits(&mut bits);
        bits
    }

    /// Sets the bits of this type's pointer words in `dst` (word 0 of the
    /// value is `dst[0]`). Bits already set stay set; `dst` must cover at
    /// least `ptrdata / 8` words. Bits masks are copied a `u64` at a time;
    /// repeated masks recurse per element.
    pub fn write_ptr_bits(&self, dst: &mut BitSlice<u64, Lsb0>) {
        let words = self.ptrdata.div_ceil(WORD);
        match self.ptrmask {
            PtrMask::None => {}
            PtrMask::Bits(bits) => {
                let src = &bits.view_bits::<Lsb0>()[..words.min(bits.len() * 64)];
                for i in src.iter_ones() {
                    dst.set(i, true);
                }
            }
            PtrMask::Repeat { elem, len } => {
                if !elem.has_pointers() || elem.size == 0 {
                    return;
                }
                let step = elem.size / WORD;
                let ew = elem.size.div_ceil(WORD);
                for k in 0..len {
                    let start = k * step;
                    if start >= words {
                        break;
                    }
                    let end = (start + ew).min(dst.len());
                    elem.write_ptr_bits(&mut dst[start..end]);
                }
            }
        }
    }

    /// Whether `self` and `other` describe the same type. Descriptors of
    /// one type need not be one address (a primitive's or an array's
    /// `TYPE` is a promoted constant, which each crate may copy), so
    /// besides identity this compares name, size, alignment, kind, array
    /// length and element, and fields (names, offsets, types); what a
    /// pointer, slice, channel or map refers to is compared by its
    /// descriptor's address, or name, size and kind only, so recursive
    /// types end.
    pub fn same_as(&self, other: &Type) -> bool {
        if core::ptr::eq(self, other) {
            return true;
        }
        if self.name != other.name || self.size != other.size || self.align != other.align {
            return false;
        }
        let same_ref = |a: TypeRef, b: TypeRef| {
            let (a, b) = (a.get(), b.get());
            core::ptr::eq(a, b)
                || (a.name == b.name
                    && a.size == b.size
                    && core::mem::discriminant(&a.kind) == core::mem::discriminant(&b.kind))
        };
        let same_fields = |a: &[Field], b: &[Field]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| x.name == y.name && x.offset == y.offset && x.ty.same_as(y.ty))
        };
        match (&self.kind, &other.kind) {
            (Kind::Array { elem: a, len: n }, Kind::Array { elem: b, len: m }) => n == m && a.same_as(b),
            (Kind::Struct { fields: a }, Kind::Struct { fields: b })
            | (Kind::Union { fields: a }, Kind::Union { fields: b }) => same_fields(a, b),
            (Kind::Pointer { elem: a }, Kind::Pointer { elem: b })
            | (Kind::Slice { elem: a }, Kind::Slice { elem: b })
            | (Kind::Chan { elem: a }, Kind::Chan { elem: b }) => same_ref(*a, *b),
            (Kind::Map { key: a, value: x }, Kind::Map { key: b, value: y }) => same_ref(*a, *b) && same_ref(*x, *y),
            (a, b) => core::mem::discriminant(a) == core::mem::discriminant(b),
        }
    }

    /// Whether an interface holding this type stores the value itself in its
    /// data word (Go's `KindDirectIface`): pointer-shaped types, and structs
    /// or arrays whose only content is one pointer-shaped value.
    pub fn is_direct_iface(&self) -> bool {
        match self.kind {
            Kind::Pointer { .. } | Kind::UnsafePointer | Kind::Chan { .. } | Kind::Map { .. } | Kind::Func => true,
            Kind::Struct { fields } => fields.len() == 1 && fields[0].ty.is_direct_iface(),
            Kind::Array { elem, len } => len == 1 && elem.is_direct_iface(),
            _ => false,
        }
    }
}

/// Layout of a pointer mask built at compile time: number of `u64`s for a
/// type of `size` bytes.
pub const fn mask_len(size: usize) -> usize {
    size.div_ceil(WORD).div_ceil(64)
}

/// Builds the pointer mask of a struct or union from its fields, at compile
/// time (the derive calls this). `N` must be `mask_len(size)`.
pub const fn fields_mask<const N: usize>(size: usize, fields: &[Field]) -> [u64; N] {
    let mut mask = [0u64; N];
    let mut f = 0;
    while f < fields.len() {
        let field = &fields[f];
        let mut off = 0;
        while off < field.ty.ptrdata {
            if field.ty.is_ptr_word(off) {
                let w = (field.offset + off) / WORD;
                if w * WORD < size {
                    mask[w / 64] |= 1 << (w % 64);
                }
            }
            off += WORD;
        }
        f += 1;
    }
    mask
}

/// `ptrdata` of a struct or union: the end of its last pointer word, 0 if
/// none.
pub const fn fields_ptrdata(fields: &[Field]) -> usize {
    let mut end = 0;
    let mut f = 0;
    while f < fields.len() {
        let field = &fields[f];
        if field.ty.ptrdata != 0 {
            // The field's last pointer word ends at or before field.offset + ptrdata.
            let mut off = field.ty.ptrdata;
            while off > 0 {
                off -= WORD;
                if field.ty.is_ptr_word(off) {
                    let e = field.offset + off + WORD;
                    if e > end {
                        end = e;
                    }
                    break;
                }
            }
        }
        f += 1;
    }
    end
}

/// Every type that may sit in memory C sees has a descriptor.
///
/// # Safety
/// `TYPE` must describe `Self` exactly: size, alignment, every pointer word
/// (a missing pointer word hides a managed pointer from the checker and the
/// collector), and the all-zero bit pattern must be a valid `Self` (the heap
/// hands out zeroed memory, as Go's zero values are all zero bits).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no cgocheck type descriptor (CType)",
    label = "this type is not described for the checker",
    note = "derive it with #[derive(CType)] on a #[repr(C)] struct or union, or use a primitive, an array, a raw pointer or a managed type"
)]
pub unsafe trait CType {
    /// The descriptor of `Self`.
    const TYPE: &'static Type;
}

macro_rules! scalar_ctype {
    ($($t:ty => $name:literal, $kind:ident;)*) => {$(
        // SAFETY: a scalar has no pointer words and zero is a valid value.
        unsafe impl CType for $t {
            const TYPE: &'static Type = &Type::scalar(
                $name,
                core::mem::size_of::<$t>(),
                core::mem::align_of::<$t>(),
                Kind::$kind,
            );
        }
    )*};
}

scalar_ctype! {
    bool => "bool", Bool;
    i8 => "int8", Int8;
    i16 => "int16", Int16;
    i32 => "int32", Int32;
    i64 => "int64", Int64;
    isize => "int", Int;
    u8 => "uint8", Uint8;
    u16 => "uint16", Uint16;
    u32 => "uint32", Uint32;
    u64 => "uint64", Uint64;
    usize => "uintptr", Uintptr;
    f32 => "float32", Float32;
    f64 => "float64", Float64;
    Complex64 => "complex64", Complex64;
    Complex128 => "complex128", Complex128;
}

/// `[T; N]`: the element's mask repeated every `size_of::<T>()` bytes.
// SAFETY: `[T; N]` has N copies of T's layout at stride `size_of::<T>()`;
// the repeated mask covers exactly their pointer words; all-zero is valid
// because it is valid for T.
unsafe impl<T: CType, const N: usize> CType for [T; N] {
    const TYPE: &'static Type = &Type {
        name: "",
        size: core::mem::size_of::<[T; N]>(),
        align: core::mem::align_of::<[T; N]>(),
        ptrdata: if T::TYPE.ptrdata == 0 || N == 0 { 0 } else { (N - 1) * T::TYPE.size + T::TYPE.ptrdata },
        kind: Kind::Array { elem: T::TYPE, len: N },
        ptrmask: if T::TYPE.ptrdata == 0 || N == 0 { PtrMask::None } else { PtrMask::Repeat { elem: T::TYPE, len: N } },
    };
}

/// C's `float _Complex` (Go's `complex64`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Complex64 {
    /// Real part.
    pub re: f32,
    /// Imaginary part.
    pub im: f32,
}

/// C's `double _Complex` (Go's `complex128`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Complex128 {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

/// What a raw pointer may point to: any `CType`, or `c_void` (an
/// `UnsafePointer`).
///
/// # Safety
/// `POINTER` must be the descriptor of a pointer to `Self`.
pub unsafe trait PointeeType {
    /// The descriptor of a pointer to `Self`.
    const POINTER: &'static Type;
}

// SAFETY: one pointer word, pointing at a T.
unsafe impl<T: CType> PointeeType for T {
    const POINTER: &'static Type = &Type {
        name: "",
        size: WORD,
        align: WORD,
        ptrdata: WORD,
        kind: Kind::Pointer { elem: TypeRef::of::<T>() },
        ptrmask: ONE_POINTER,
    };
}

// SAFETY: one pointer word to unknown memory.
unsafe impl PointeeType for core::ffi::c_void {
    const POINTER: &'static Type = &Type {
        name: "unsafe.Pointer",
        size: WORD,
        align: WORD,
        ptrdata: WORD,
        kind: Kind::UnsafePointer,
        ptrmask: ONE_POINTER,
    };
}

// SAFETY: a raw pointer is one word; null (all zero) is valid.
unsafe impl<T: PointeeType> CType for *mut T {
    const TYPE: &'static Type = T::POINTER;
}
// SAFETY: as for `*mut T`.
unsafe impl<T: PointeeType> CType for *const T {
    const TYPE: &'static Type = T::POINTER;
}

/// `Option<unsafe extern "C" fn(..) -> R>` and `Option<extern "C" fn(..) -> R>`:
/// a nullable C function pointer, one `Func` word. This is how bindgen and
/// the `-sys` crates spell C's function pointer types (`int (*cb)(void *)`),
/// in struct fields and parameters.
macro_rules! c_fn_pointer_ctype {
    ($($a:ident)*) => {
        // SAFETY: `Option` of a function pointer is one nullable word (the
        // all-zero `None` is valid); it points to code, which the checker
        // reads as a `Func` word (refused only if it points into managed
        // memory).
        unsafe impl<R, $($a),*> CType for Option<unsafe extern "C" fn($($a),*) -> R> {
            const TYPE: &'static Type = &FUNC_POINTER;
        }
        // SAFETY: as above.
        unsafe impl<R, $($a),*> CType for Option<extern "C" fn($($a),*) -> R> {
            const TYPE: &'static Type = &FUNC_POINTER;
        }
    };
}

/// The descriptor of a nullable C function pointer.
const FUNC_POINTER: Type =
    Type { name: "func", size: WORD, align: WORD, ptrdata: WORD, kind: Kind::Func, ptrmask: ONE_POINTER };

c_fn_pointer_ctype!();
c_fn_pointer_ctype!(A1);
c_fn_pointer_ctype!(A1 A2);
c_fn_pointer_ctype!(A1 A2 A3);
c_fn_pointer_ctype!(A1 A2 A3 A4);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5 A6);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5 A6 A7);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5 A6 A7 A8);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5 A6 A7 A8 A9);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11);
c_fn_pointer_ctype!(A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12);

/// A local type that describes a foreign one: the way to give the checker
/// the layout of a type from another crate (a `-sys` crate's `z_stream`),
/// which cannot implement [`CType`] outside the crate that defines it (the
/// orphan rule).
///
/// The mirror is a `#[repr(C)]` struct of one's own with the same fields
/// as C's, declared with `#[derive(CType)] #[ctype(mirror = "path::Foreign")]`:
/// the derive checks at compile time that its size, alignment and every
/// field's offset and size are the foreign type's (`size_of`, `align_of`,
/// `offset_of!`), and implements this trait. Managed code then allocates
/// the mirror, and passes a pointer to it where C's functions take a
/// pointer to `Foreign` (the runtime's `ffi::foreign`).
///
/// # Safety
/// `Self` and `Foreign` have the same layout, and every pointer word of
/// `Foreign` is a pointer word in `Self`'s descriptor (a field the mirror
/// declares as an integer where C has a pointer hides that pointer from the
/// checker). The derive checks the layout; the pointer words are what the
/// mirror's field types say.
pub unsafe trait Mirror: CType {
    /// The foreign type this one describes.
    type Foreign;
}

// SAFETY: a pointer to a mirror has the layout of a pointer to its foreign
// type, and is one pointer word in both.
unsafe impl<M: Mirror> Mirror for *mut M {
    type Foreign = *mut M::Foreign;
}
// SAFETY: as above.
unsafe impl<M: Mirror> Mirror for *const M {
    type Foreign = *const M::Foreign;
}

/// The size of what `p` points to; lets the derive's layout checks name a
/// foreign field's size without naming its type (`&raw const (*p).f`).
pub const fn size_of_pointee<T>(_: *const T) -> usize {
    core::mem::size_of::<T>()
}

impl core::fmt::Display for Type {
    /// Go's spelling: `s1`, `*int32`, `[4]uint8`, `[]node`, `map[K]V`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if !self.name.is_empty() {
            return f.write_str(self.name);
        }
        match self.kind {
            Kind::Array { elem, len } => write!(f, "[{len}]{elem}"),
            Kind::Pointer { elem } => write!(f, "*{elem}"),
            Kind::Slice { elem } => write!(f, "[]{elem}"),
            Kind::Chan { elem } => write!(f, "chan {elem}"),
            Kind::Map { key, value } => write!(f, "map[{key}]{value}"),
            Kind::UnsafePointer => f.write_str("unsafe.Pointer"),
            Kind::String => f.write_str("string"),
            Kind::Func => f.write_str("func"),
            Kind::Interface => f.write_str("interface {}"),
            Kind::Struct { .. } => f.write_str("struct {...}"),
            Kind::Union { .. } => f.write_str("union {...}"),
            _ => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct node { struct node *next; long v; }`, described twice at two
    /// addresses, as two crates may each hold a copy of a descriptor.
    static NODE_FIELDS_A: [Field; 2] = [
        Field { name: "next", offset: 0, ty: <*mut u8 as CType>::TYPE },
        Field { name: "v", offset: 8, ty: <i64 as CType>::TYPE },
    ];
    static NODE_A: Type = Type {
        name: "node",
        size: 16,
        align: 8,
        ptrdata: 8,
        kind: Kind::Struct { fields: &NODE_FIELDS_A },
        ptrmask: ONE_POINTER,
    };
    static NODE_FIELDS_B: [Field; 2] = [
        Field { name: "next", offset: 0, ty: &PTR_TO_NODE_B },
        Field { name: "v", offset: 8, ty: &Type::scalar("int64", 8, 8, Kind::Int64) },
    ];
    static PTR_TO_NODE_B: Type = Type {
        name: "",
        size: 8,
        align: 8,
        ptrdata: 8,
        kind: Kind::Pointer { elem: TypeRef::new(|| &NODE_B) },
        ptrmask: ONE_POINTER,
    };
    static NODE_B: Type = Type {
        name: "node",
        size: 16,
        align: 8,
        ptrdata: 8,
        kind: Kind::Struct { fields: &NODE_FIELDS_B },
        ptrmask: ONE_POINTER,
    };

    #[test]
    fn same_as_sees_through_copies_and_ends_on_recursive_types() {
        assert!(NODE_B.same_as(&NODE_B), "identity");
        // A copy of `*node` that leads back to itself: compared by name,
        // size and kind of the pointee, so the comparison ends.
        assert!(PTR_TO_NODE_B.same_as(&copy_of(&PTR_TO_NODE_B)));
        // Field types differ (`*uint8` vs `*node`): not the same.
        assert!(!NODE_A.same_as(&NODE_B));
        // Arrays: length and element.
        let a4 = <[i64; 4] as CType>::TYPE;
        assert!(a4.same_as(&copy_of(a4)));
        assert!(!a4.same_as(<[i64; 5] as CType>::TYPE));
        assert!(!a4.same_as(<[u64; 4] as CType>::TYPE));
        assert!(!<i64 as CType>::TYPE.same_as(<u64 as CType>::TYPE));
    }

    /// The same descriptor at another address.
    fn copy_of(t: &'static Type) -> Type {
        let kind = match t.kind {
            Kind::Array { elem, len } => Kind::Array { elem, len },
            Kind::Pointer { elem } => Kind::Pointer { elem },
            _ => unreachable!("only arrays and pointers are copied here"),
        };
        Type { name: t.name, size: t.size, align: t.align, ptrdata: t.ptrdata, kind, ptrmask: t.ptrmask }
    }
}
