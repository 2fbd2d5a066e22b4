//! Descriptors built by `#[derive(CType)]` against layouts computed by hand.
//!
//! Every expected number below (sizes, offsets, pointer-word indices) was
//! worked out on paper from C's layout rules for x86_64/aarch64, not read back
//! from the code under test, so each assertion can fail. Each test also checks
//! the descriptor against the compiler (`size_of`, `align_of`, `offset_of!`),
//! which catches a hand computation that is itself wrong.

use cgocheck_checker::types::mask_len;
use cgocheck_checker::{CType, Field, Kind, PtrMask, Type, TypeRef};
use core::ffi::{c_ulong, c_void};
use core::mem::{align_of, offset_of, size_of};

// ---------------------------------------------------------------------------
// Helpers

/// What a test expects of one descriptor.
struct Expect<'a> {
    name: &'a str,
    size: usize,
    align: usize,
    ptrdata: usize,
    /// `(name, offset, type as printed)` of every field, in order.
    fields: &'a [(&'a str, usize, &'a str)],
    /// Indices of the pointer words (8-byte words from the value's start).
    ptr_words: &'a [usize],
}

fn fields_of(t: &Type) -> &'static [Field] {
    match t.kind {
        Kind::Struct { fields } | Kind::Union { fields } => fields,
        ref k => panic!("{t}: expected a struct or union, got {k:?}"),
    }
}

/// Compares `T`'s descriptor with `e` and with the compiler's layout of `T`.
fn check<T: CType>(e: &Expect) {
    let t = T::TYPE;
    assert_eq!(t.to_string(), e.name, "name");
    assert_eq!(t.name, e.name, "name field");
    assert_eq!(t.size, e.size, "{}: size", e.name);
    assert_eq!(t.align, e.align, "{}: align", e.name);
    assert_eq!(t.size, size_of::<T>(), "{}: size vs size_of", e.name);
    assert_eq!(t.align, align_of::<T>(), "{}: align vs align_of", e.name);
    assert_eq!(t.ptrdata, e.ptrdata, "{}: ptrdata", e.name);

    let got: Vec<(&str, usize, String)> = fields_of(t).iter().map(|f| (f.name, f.offset, f.ty.to_string())).collect();
    let want: Vec<(&str, usize, String)> = e.fields.iter().map(|&(n, o, ty)| (n, o, ty.to_string())).collect();
    assert_eq!(got, want, "{}: fields", e.name);

    check_ptr_words(t, e.ptr_words);

    // A pointer-free type says so in both places; a pointerful one carries a
    // materialised mask of exactly mask_len(size) words.
    match t.ptrmask {
        PtrMask::None => assert!(e.ptr_words.is_empty(), "{}: PtrMask::None but pointers expected", e.name),
        PtrMask::Bits(bits) => {
            assert!(!e.ptr_words.is_empty(), "{}: PtrMask::Bits for a pointer-free type", e.name);
            assert_eq!(bits.len(), mask_len(e.size), "{}: mask length", e.name);
        }
        PtrMask::Repeat { .. } => panic!("{}: a struct's mask is never Repeat", e.name),
    }
    assert_eq!(t.has_pointers(), !e.ptr_words.is_empty());
}

/// The exact set of pointer words, through both `ptr_bits` and
/// `is_ptr_word` (at every byte of every word, and past the end).
fn check_ptr_words(t: &Type, want: &[usize]) {
    let bits = t.ptr_bits();
    assert_eq!(bits.len(), t.size.div_ceil(8), "{t}: ptr_bits length");
    let ones: Vec<usize> = bits.iter_ones().collect();
    assert_eq!(ones, want, "{t}: pointer words (ptr_bits)");
    let words = t.size.div_ceil(8);
    let mut is_ptr = vec![false; words + 2];
    for &w in want {
        is_ptr[w] = true;
    }
    for (w, &expect) in is_ptr.iter().enumerate() {
        for byte in [0, 1, 7] {
            assert_eq!(t.is_ptr_word(w * 8 + byte), expect, "{t}: is_ptr_word({})", w * 8 + byte);
        }
    }
}

// ---------------------------------------------------------------------------
// Nested structs

#[derive(CType, Clone, Copy)]
#[repr(C)]
struct Inner {
    a: u8,
    p: *mut u8,
    b: u16,
}

#[derive(CType)]
#[repr(C)]
struct Outer {
    x: u32,
    inner: Inner,
    q: *const Inner,
    tail: u8,
}

#[test]
fn nested_structs() {
    // Inner: a@0, 7 bytes padding, p@8, b@16, tail padding to 24.
    check::<Inner>(&Expect {
        name: "Inner",
        size: 24,
        align: 8,
        ptrdata: 16,
        fields: &[("a", 0, "uint8"), ("p", 8, "*uint8"), ("b", 16, "uint16")],
        ptr_words: &[1],
    });
    assert_eq!(offset_of!(Inner, p), 8);
    assert_eq!(offset_of!(Inner, b), 16);

    // Outer: x@0, inner@8..32 (its p at 16 = word 2), q@32 (word 4),
    // tail@40, size 48. The last pointer word ends at 40.
    check::<Outer>(&Expect {
        name: "Outer",
        size: 48,
        align: 8,
        ptrdata: 40,
        fields: &[("x", 0, "uint32"), ("inner", 8, "Inner"), ("q", 32, "*Inner"), ("tail", 40, "uint8")],
        ptr_words: &[2, 4],
    });
    assert_eq!(offset_of!(Outer, inner), 8);
    assert_eq!(offset_of!(Outer, q), 32);
    assert_eq!(offset_of!(Outer, tail), 40);

    // A nested struct's field points at the one static descriptor of its type.
    let f = fields_of(Outer::TYPE);
    assert!(core::ptr::eq(f[1].ty, Inner::TYPE));
    match f[2].ty.kind {
        Kind::Pointer { elem } => assert!(core::ptr::eq(elem.get(), Inner::TYPE)),
        ref k => panic!("q: {k:?}"),
    }
}

#[test]
fn descriptor_is_one_static() {
    // Every read of TYPE, and of the mask behind it, is the same address.
    let a: *const Type = Outer::TYPE;
    let b: *const Type = <Outer as CType>::TYPE;
    assert!(core::ptr::eq(a, b));
    let (PtrMask::Bits(m1), PtrMask::Bits(m2)) = (Outer::TYPE.ptrmask, Outer::TYPE.ptrmask) else {
        panic!("Outer has pointers");
    };
    assert!(core::ptr::eq(m1, m2));
    assert!(core::ptr::eq(fields_of(Outer::TYPE), fields_of(<Outer as CType>::TYPE)));
}

// ---------------------------------------------------------------------------
// Arrays of structs, arrays of pointers

#[derive(CType)]
#[repr(C)]
struct Item {
    tag: u64,
    next: *mut Item,
}

#[derive(CType)]
#[repr(C)]
struct List {
    len: u32,
    items: [Item; 3],
    end: u32,
}

#[test]
fn array_of_structs() {
    check::<Item>(&Expect {
        name: "Item",
        size: 16,
        align: 8,
        ptrdata: 16,
        fields: &[("tag", 0, "uint64"), ("next", 8, "*Item")],
        ptr_words: &[1],
    });
    // List: len@0, items@8 (3 × 16 bytes, each `next` at +8: bytes 16, 32,
    // 48 = words 2, 4, 6), end@56, size 64. Last pointer word ends at 56.
    check::<List>(&Expect {
        name: "List",
        size: 64,
        align: 8,
        ptrdata: 56,
        fields: &[("len", 0, "uint32"), ("items", 8, "[3]Item"), ("end", 56, "uint32")],
        ptr_words: &[2, 4, 6],
    });
    assert_eq!(offset_of!(List, items), 8);
    assert_eq!(offset_of!(List, end), 56);

    // An array of such structs repeats the struct's mask every 64 bytes.
    let arr = <[List; 2] as CType>::TYPE;
    assert_eq!((arr.size, arr.align, arr.ptrdata), (128, 8, 64 + 56));
    assert_eq!(arr.to_string(), "[2]List");
    check_ptr_words(arr, &[2, 4, 6, 10, 12, 14]);

    let items = <[Item; 3] as CType>::TYPE;
    // Three 16-byte items, `next` in each one's second word: the last
    // pointer word ends at 2 × 16 + 16 = 48.
    assert_eq!((items.size, items.ptrdata), (48, 48));
    check_ptr_words(items, &[1, 3, 5]);
}

#[derive(CType)]
#[repr(C)]
struct Ptrs {
    n: i32,
    ps: [*mut i32; 4],
    v: [*mut c_void; 2],
    f: f64,
}

#[test]
fn array_of_pointers() {
    // n@0, ps@8..40 (words 1-4), v@40..56 (words 5, 6), f@56, size 64.
    check::<Ptrs>(&Expect {
        name: "Ptrs",
        size: 64,
        align: 8,
        ptrdata: 56,
        fields: &[("n", 0, "int32"), ("ps", 8, "[4]*int32"), ("v", 40, "[2]unsafe.Pointer"), ("f", 56, "float64")],
        ptr_words: &[1, 2, 3, 4, 5, 6],
    });
    assert_eq!(offset_of!(Ptrs, ps), 8);
    assert_eq!(offset_of!(Ptrs, v), 40);
    assert_eq!(offset_of!(Ptrs, f), 56);
}

// ---------------------------------------------------------------------------
// Go's barriergcprogarray / barriergcprogstruct shapes

/// `struct s17 { char *a[32769]; }`
#[derive(CType)]
#[repr(C)]
#[ctype(name = "s17")]
struct S17 {
    a: [*mut u8; 32769],
}

/// `struct s19a { char *a[32769]; }`
#[derive(CType)]
#[repr(C)]
#[ctype(name = "s19a")]
struct S19a {
    a: [*mut u8; 32769],
}

/// `struct s19b { struct s19a f; }`
#[derive(CType)]
#[repr(C)]
#[ctype(name = "s19b")]
struct S19b {
    f: S19a,
}

/// The same array followed by a pointer-free tail: ptrdata < size.
#[derive(CType)]
#[repr(C)]
struct BigTail {
    a: [*mut u8; 32769],
    n: u64,
}

#[test]
fn barriergcprog_arrays() {
    // 32769 pointers × 8 bytes = 262152 bytes, every word a pointer word;
    // the mask needs ceil(32769 / 64) = 513 u64s.
    let all: Vec<usize> = (0..32769).collect();
    for (t, name, field_ty) in
        [(S17::TYPE, "s17", "[32769]*uint8"), (S19a::TYPE, "s19a", "[32769]*uint8"), (S19b::TYPE, "s19b", "s19a")]
    {
        assert_eq!(t.to_string(), name);
        assert_eq!((t.size, t.align, t.ptrdata), (262_152, 8, 262_152), "{name}");
        let f = fields_of(t);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].offset, f[0].ty.to_string()), (0, field_ty.to_string()));
        check_ptr_words(t, &all);
        let PtrMask::Bits(bits) = t.ptrmask else { panic!("{name}: mask") };
        assert_eq!(bits.len(), 513);
        assert!(bits[..512].iter().all(|&w| w == u64::MAX));
        assert_eq!(bits[512], 1, "{name}: word 32768 is the only one in the last u64");
    }
    assert_eq!(size_of::<S17>(), 262_152);
    assert_eq!(size_of::<S19b>(), 262_152);
    assert!(core::ptr::eq(fields_of(S19b::TYPE)[0].ty, S19a::TYPE));
    // The array field itself is not materialised: it repeats its element.
    assert!(matches!(fields_of(S17::TYPE)[0].ty.ptrmask, PtrMask::Repeat { len: 32769, .. }));

    let t = BigTail::TYPE;
    assert_eq!((t.size, t.align, t.ptrdata), (262_160, 8, 262_152));
    assert_eq!(offset_of!(BigTail, n), 262_152);
    assert_eq!(fields_of(t)[1].offset, 262_152);
    check_ptr_words(t, &all);
}

// ---------------------------------------------------------------------------
// Unions

/// `union u39 { unsigned long i; }`: no pointer field, so no pointer data.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "u39")]
union U39 {
    i: c_ulong,
}

#[derive(CType)]
#[repr(C)]
union IntOrPtr {
    i: u64,
    p: *mut u8,
}

/// A pointer word that only one member has, past another member's end.
#[derive(CType)]
#[repr(C)]
union Overlay {
    bytes: [u8; 24],
    inner: Inner,
}

/// A short pointer member and a longer integer member.
#[derive(CType)]
#[repr(C)]
union ShortPtr {
    p: *const u8,
    big: [u32; 5],
}

#[derive(CType)]
#[repr(C)]
struct Tagged {
    tag: u32,
    v: IntOrPtr,
}

#[test]
fn unions() {
    check::<U39>(&Expect { name: "u39", size: 8, align: 8, ptrdata: 0, fields: &[("i", 0, "uint64")], ptr_words: &[] });
    assert!(matches!(U39::TYPE.kind, Kind::Union { .. }));
    assert!(matches!(U39::TYPE.ptrmask, PtrMask::None));

    // Any pointer member makes the word a pointer word.
    check::<IntOrPtr>(&Expect {
        name: "IntOrPtr",
        size: 8,
        align: 8,
        ptrdata: 8,
        fields: &[("i", 0, "uint64"), ("p", 0, "*uint8")],
        ptr_words: &[0],
    });
    assert!(matches!(IntOrPtr::TYPE.kind, Kind::Union { .. }));

    // Inner's pointer is at byte 8; `bytes` covers it but adds nothing.
    check::<Overlay>(&Expect {
        name: "Overlay",
        size: 24,
        align: 8,
        ptrdata: 16,
        fields: &[("bytes", 0, "[24]uint8"), ("inner", 0, "Inner")],
        ptr_words: &[1],
    });

    // 20 bytes of u32s round up to 24 for the pointer's alignment; only the
    // first word is ever a pointer.
    check::<ShortPtr>(&Expect {
        name: "ShortPtr",
        size: 24,
        align: 8,
        ptrdata: 8,
        fields: &[("p", 0, "*uint8"), ("big", 0, "[5]uint32")],
        ptr_words: &[0],
    });

    check::<Tagged>(&Expect {
        name: "Tagged",
        size: 16,
        align: 8,
        ptrdata: 16,
        fields: &[("tag", 0, "uint32"), ("v", 8, "IntOrPtr")],
        ptr_words: &[1],
    });
    assert_eq!(offset_of!(Tagged, v), 8);
    for f in [offset_of!(IntOrPtr, i), offset_of!(IntOrPtr, p), offset_of!(Overlay, inner), offset_of!(ShortPtr, big)] {
        assert_eq!(f, 0);
    }
}

// ---------------------------------------------------------------------------
// Padding and alignment

#[derive(CType)]
#[repr(C)]
struct Padded {
    a: u8,
    b: u32,
    c: u8,
    d: u64,
    e: u16,
}

#[derive(CType)]
#[repr(C)]
struct PaddedPtrs {
    c: u8,
    p: *const u8,
    s: u16,
    q: *mut u16,
    t: bool,
}

#[derive(CType)]
#[repr(C, align(32))]
struct Aligned {
    p: *mut u8,
}

#[test]
fn padding() {
    // a@0, b@4, c@8, d@16, e@24, size 32: no pointers anywhere.
    check::<Padded>(&Expect {
        name: "Padded",
        size: 32,
        align: 8,
        ptrdata: 0,
        fields: &[("a", 0, "uint8"), ("b", 4, "uint32"), ("c", 8, "uint8"), ("d", 16, "uint64"), ("e", 24, "uint16")],
        ptr_words: &[],
    });
    assert_eq!(
        [offset_of!(Padded, b), offset_of!(Padded, c), offset_of!(Padded, d), offset_of!(Padded, e)],
        [4, 8, 16, 24]
    );

    // c@0, p@8 (word 1), s@16, q@24 (word 3), t@32, size 40.
    check::<PaddedPtrs>(&Expect {
        name: "PaddedPtrs",
        size: 40,
        align: 8,
        ptrdata: 32,
        fields: &[("c", 0, "uint8"), ("p", 8, "*uint8"), ("s", 16, "uint16"), ("q", 24, "*uint16"), ("t", 32, "bool")],
        ptr_words: &[1, 3],
    });
    assert_eq!([offset_of!(PaddedPtrs, q), offset_of!(PaddedPtrs, t)], [24, 32]);

    // align(32) pads one pointer out to 4 words.
    check::<Aligned>(&Expect {
        name: "Aligned",
        size: 32,
        align: 32,
        ptrdata: 8,
        fields: &[("p", 0, "*uint8")],
        ptr_words: &[0],
    });
    let arr = <[Aligned; 3] as CType>::TYPE;
    assert_eq!((arr.size, arr.ptrdata), (96, 72));
    check_ptr_words(arr, &[0, 4, 8]);
}

// ---------------------------------------------------------------------------
// Zero-sized types

#[derive(CType)]
#[repr(C)]
struct Empty {}

#[derive(CType)]
#[repr(C)]
struct Unit;

#[derive(CType)]
#[repr(C)]
struct NoPtrs {
    a: [*mut u8; 0],
}

#[derive(CType)]
#[repr(C)]
struct AfterEmpty {
    e: Empty,
    z: NoPtrs,
    p: *mut u8,
}

#[test]
fn zero_sized() {
    check::<Empty>(&Expect { name: "Empty", size: 0, align: 1, ptrdata: 0, fields: &[], ptr_words: &[] });
    check::<Unit>(&Expect { name: "Unit", size: 0, align: 1, ptrdata: 0, fields: &[], ptr_words: &[] });
    // A zero-length array of pointers has the pointer's alignment and no pointers.
    check::<NoPtrs>(&Expect {
        name: "NoPtrs",
        size: 0,
        align: 8,
        ptrdata: 0,
        fields: &[("a", 0, "[0]*uint8")],
        ptr_words: &[],
    });
    // Zero-sized fields take no room: all three fields at offset 0.
    check::<AfterEmpty>(&Expect {
        name: "AfterEmpty",
        size: 8,
        align: 8,
        ptrdata: 8,
        fields: &[("e", 0, "Empty"), ("z", 0, "NoPtrs"), ("p", 0, "*uint8")],
        ptr_words: &[0],
    });
    assert_eq!(offset_of!(AfterEmpty, p), 0);
}

// ---------------------------------------------------------------------------
// Tuple structs, names, recursion, crate override

#[derive(CType)]
#[repr(C)]
struct Pair(u32, *mut u8);

#[derive(CType)]
#[repr(C)]
struct Opaque(*mut c_void);

#[test]
fn tuple_structs() {
    check::<Pair>(&Expect {
        name: "Pair",
        size: 16,
        align: 8,
        ptrdata: 16,
        fields: &[("0", 0, "uint32"), ("1", 8, "*uint8")],
        ptr_words: &[1],
    });
    assert_eq!(offset_of!(Pair, 1), 8);
    check::<Opaque>(&Expect {
        name: "Opaque",
        size: 8,
        align: 8,
        ptrdata: 8,
        fields: &[("0", 0, "unsafe.Pointer")],
        ptr_words: &[0],
    });
    // One pointer-shaped field: stored directly in an interface, as in Go.
    assert!(Opaque::TYPE.is_direct_iface());
    assert!(!Pair::TYPE.is_direct_iface());
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "s1")]
struct S1 {
    r#type: i32,
    next: *mut S1,
}

#[test]
fn names_and_recursion() {
    check::<S1>(&Expect {
        name: "s1",
        size: 16,
        align: 8,
        ptrdata: 16,
        fields: &[("type", 0, "int32"), ("next", 8, "*s1")],
        ptr_words: &[1],
    });
    // The self-reference resolves to the very descriptor being defined.
    match fields_of(S1::TYPE)[1].ty.kind {
        Kind::Pointer { elem } => assert!(core::ptr::eq(elem.get(), S1::TYPE)),
        ref k => panic!("{k:?}"),
    }
}

/// Pointers to the type itself, spelled both ways.
#[derive(CType)]
#[repr(C)]
struct Tree {
    left: *mut Self,
    right: *const Tree,
    parent: *mut Tree,
    key: u32,
}

/// A self-referential type embedded in another one, and pointed to.
#[derive(CType)]
#[repr(C)]
struct Forest {
    first: Tree,
    rest: *mut Tree,
    trees: [Tree; 2],
}

#[test]
fn self_referential() {
    check::<Tree>(&Expect {
        name: "Tree",
        size: 32,
        align: 8,
        ptrdata: 24,
        fields: &[("left", 0, "*Tree"), ("right", 8, "*Tree"), ("parent", 16, "*Tree"), ("key", 24, "uint32")],
        ptr_words: &[0, 1, 2],
    });
    for f in &fields_of(Tree::TYPE)[..3] {
        match f.ty.kind {
            Kind::Pointer { elem } => assert!(core::ptr::eq(elem.get(), Tree::TYPE), "{}", f.name),
            ref k => panic!("{}: {k:?}", f.name),
        }
    }
    // first@0..32 (words 0-2), rest@32 (word 4), trees@40..104: the two
    // trees' words 5-7 and 9-11. Size 104, last pointer word ends at 96.
    check::<Forest>(&Expect {
        name: "Forest",
        size: 104,
        align: 8,
        ptrdata: 96,
        fields: &[("first", 0, "Tree"), ("rest", 32, "*Tree"), ("trees", 40, "[2]Tree")],
        ptr_words: &[0, 1, 2, 4, 5, 6, 7, 9, 10, 11],
    });
    assert_eq!([offset_of!(Forest, rest), offset_of!(Forest, trees)], [32, 40]);
}

/// A stand-in for the runtime's managed pointer (`Gc<T>`): one pointer word
/// whose descriptor holds its element's, as the runtime's does.
#[repr(transparent)]
struct Managed<T>(*mut T);

// SAFETY: one pointer word; null is valid.
unsafe impl<T: CType> CType for Managed<T> {
    const TYPE: &'static Type = &Type {
        name: "",
        size: 8,
        align: 8,
        ptrdata: 8,
        kind: Kind::Pointer { elem: TypeRef::of::<T>() },
        ptrmask: cgocheck_checker::types::ONE_POINTER,
    };
}

/// A stand-in for the runtime's managed slice: `{ ptr, len, cap }`.
#[repr(C)]
struct ManagedSlice<T>(*mut T, usize, usize);

// SAFETY: three words, the first a pointer; all-zero is the empty slice.
unsafe impl<T: CType> CType for ManagedSlice<T> {
    const TYPE: &'static Type = &Type {
        name: "",
        size: 24,
        align: 8,
        ptrdata: 8,
        kind: Kind::Slice { elem: TypeRef::of::<T>() },
        ptrmask: cgocheck_checker::types::ONE_POINTER,
    };
}

/// A self-reference through every pointer-like shape.
#[derive(CType)]
#[repr(C)]
struct MNode {
    next: Managed<MNode>,
    kids: ManagedSlice<Self>,
    val: [i64; 3],
    ring: [*mut Self; 2],
    pp: *mut *const MNode,
}

#[test]
fn self_referential_managed() {
    // next@0 (word 0), kids@8..32 (its ptr: word 1), val@32..56,
    // ring@56..72 (words 7, 8), pp@72 (word 9); size 80.
    check::<MNode>(&Expect {
        name: "MNode",
        size: 80,
        align: 8,
        ptrdata: 80,
        fields: &[
            ("next", 0, "*MNode"),
            ("kids", 8, "[]MNode"),
            ("val", 32, "[3]int64"),
            ("ring", 56, "[2]*MNode"),
            ("pp", 72, "**MNode"),
        ],
        ptr_words: &[0, 1, 7, 8, 9],
    });
    assert_eq!(
        [offset_of!(MNode, kids), offset_of!(MNode, val), offset_of!(MNode, ring), offset_of!(MNode, pp)],
        [8, 32, 56, 72]
    );
    let me = MNode::TYPE;
    let f = fields_of(me);
    let Kind::Pointer { elem } = f[0].ty.kind else { panic!("next") };
    assert!(core::ptr::eq(elem.get(), me));
    let Kind::Slice { elem } = f[1].ty.kind else { panic!("kids") };
    assert!(core::ptr::eq(elem.get(), me));
    assert_eq!((f[1].ty.size, f[1].ty.ptrdata), (24, 8));
    let Kind::Array { elem: ring_elem, len: 2 } = f[3].ty.kind else { panic!("ring") };
    let Kind::Pointer { elem } = ring_elem.kind else { panic!("ring elem") };
    assert!(core::ptr::eq(elem.get(), me));
    let PtrMask::Repeat { elem: rep, len: 2 } = f[3].ty.ptrmask else { panic!("ring mask") };
    assert!(core::ptr::eq(rep, ring_elem));
    assert_eq!((f[3].ty.size, f[3].ty.ptrdata), (16, 16));
    let Kind::Pointer { elem: inner } = f[4].ty.kind else { panic!("pp") };
    let Kind::Pointer { elem } = inner.get().kind else { panic!("*pp") };
    assert!(core::ptr::eq(elem.get(), me));
}

// ---------------------------------------------------------------------------
// Types that point to each other

/// The element of the pointer-like field `i` of `t` (a pointer, slice or
/// channel), as its descriptor.
fn elem_of(t: &Type, i: usize) -> &'static Type {
    match fields_of(t)[i].ty.kind {
        Kind::Pointer { elem } | Kind::Slice { elem } | Kind::Chan { elem } => elem.get(),
        ref k => panic!("{t}.{}: {k:?}", fields_of(t)[i].name),
    }
}

/// `struct tree { struct leaf *root; long size; }`
#[derive(CType)]
#[repr(C)]
#[ctype(name = "tree")]
struct MTree {
    size: i64,
    root: *mut MLeaf,
}

/// `struct leaf { struct tree *owner; int key; struct leaf *next; }`: one
/// pointer back to the other type, one to itself.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "leaf")]
struct MLeaf {
    owner: *const MTree,
    key: i32,
    next: *mut Self,
}

#[test]
fn mutual_raw_pointers() {
    // size@0, root@8 (word 1); size 16.
    check::<MTree>(&Expect {
        name: "tree",
        size: 16,
        align: 8,
        ptrdata: 16,
        fields: &[("size", 0, "int64"), ("root", 8, "*leaf")],
        ptr_words: &[1],
    });
    // owner@0 (word 0), key@8, next@16 (word 2); size 24.
    check::<MLeaf>(&Expect {
        name: "leaf",
        size: 24,
        align: 8,
        ptrdata: 24,
        fields: &[("owner", 0, "*tree"), ("key", 8, "int32"), ("next", 16, "*leaf")],
        ptr_words: &[0, 2],
    });
    assert_eq!([offset_of!(MTree, root), offset_of!(MLeaf, key), offset_of!(MLeaf, next)], [8, 8, 16]);
    // Each pointer's element is the other type's one static descriptor.
    assert!(core::ptr::eq(elem_of(MTree::TYPE, 1), MLeaf::TYPE));
    assert!(core::ptr::eq(elem_of(MLeaf::TYPE, 0), MTree::TYPE));
    assert!(core::ptr::eq(elem_of(MLeaf::TYPE, 2), MLeaf::TYPE));
    // And round the cycle back to the start.
    assert!(core::ptr::eq(elem_of(elem_of(MTree::TYPE, 1), 0), MTree::TYPE));
    // The pointer types outside the structs name the same descriptors.
    let Kind::Pointer { elem } = <*mut MLeaf as CType>::TYPE.kind else { panic!("*leaf") };
    assert!(core::ptr::eq(elem.get(), MLeaf::TYPE));
    // Debug names the element instead of following the cycle forever.
    assert_eq!(format!("{:?}", <*mut MTree as CType>::TYPE.kind), "Pointer { elem: TypeRef(tree) }");
    assert!(format!("{:?}", MTree::TYPE).contains("elem: TypeRef(leaf)"));
}

/// A managed parent holding its children, each child pointing back to its
/// parent: through the runtime's managed pointer and slice (modelled by
/// `Managed` and `ManagedSlice` above, whose descriptors are built as
/// `Gc`'s and `GcSlice`'s are).
#[derive(CType)]
#[repr(C)]
struct Parent {
    id: u32,
    kids: ManagedSlice<Child>,
    first: Managed<Child>,
}

#[derive(CType)]
#[repr(C)]
struct Child {
    parent: Managed<Parent>,
    siblings: [Managed<Child>; 2],
    age: u8,
}

#[test]
fn mutual_managed_pointers() {
    // id@0, kids@8..32 (its pointer: word 1), first@32 (word 4); size 40.
    check::<Parent>(&Expect {
        name: "Parent",
        size: 40,
        align: 8,
        ptrdata: 40,
        fields: &[("id", 0, "uint32"), ("kids", 8, "[]Child"), ("first", 32, "*Child")],
        ptr_words: &[1, 4],
    });
    // parent@0 (word 0), siblings@8..24 (words 1, 2), age@24; size 32.
    check::<Child>(&Expect {
        name: "Child",
        size: 32,
        align: 8,
        ptrdata: 24,
        fields: &[("parent", 0, "*Parent"), ("siblings", 8, "[2]*Child"), ("age", 24, "uint8")],
        ptr_words: &[0, 1, 2],
    });
    assert_eq!([offset_of!(Parent, kids), offset_of!(Parent, first)], [8, 32]);
    assert_eq!([offset_of!(Child, siblings), offset_of!(Child, age)], [8, 24]);
    assert!(core::ptr::eq(elem_of(Parent::TYPE, 1), Child::TYPE));
    assert!(matches!(fields_of(Parent::TYPE)[1].ty.kind, Kind::Slice { .. }));
    assert!(core::ptr::eq(elem_of(Parent::TYPE, 2), Child::TYPE));
    assert!(core::ptr::eq(elem_of(Child::TYPE, 0), Parent::TYPE));
    let Kind::Array { elem: sibling, len: 2 } = fields_of(Child::TYPE)[1].ty.kind else { panic!("siblings") };
    let Kind::Pointer { elem } = sibling.kind else { panic!("sibling") };
    assert!(core::ptr::eq(elem.get(), Child::TYPE));
}

/// A three-type cycle, `A → B → C → A`, each pointer at a different offset,
/// one of them spelled with a longer path.
#[derive(CType)]
#[repr(C)]
struct CycA {
    b: *mut CycB,
}

#[derive(CType)]
#[repr(C)]
struct CycB {
    n: u16,
    c: *const crate::CycC,
}

#[derive(CType)]
#[repr(C)]
struct CycC {
    x: f64,
    y: f64,
    a: [*mut CycA; 3],
}

#[test]
fn three_cycle() {
    check::<CycA>(&Expect {
        name: "CycA",
        size: 8,
        align: 8,
        ptrdata: 8,
        fields: &[("b", 0, "*CycB")],
        ptr_words: &[0],
    });
    // n@0, c@8 (word 1); size 16.
    check::<CycB>(&Expect {
        name: "CycB",
        size: 16,
        align: 8,
        ptrdata: 16,
        fields: &[("n", 0, "uint16"), ("c", 8, "*CycC")],
        ptr_words: &[1],
    });
    // x@0, y@8, a@16..40 (words 2, 3, 4); size 40.
    check::<CycC>(&Expect {
        name: "CycC",
        size: 40,
        align: 8,
        ptrdata: 40,
        fields: &[("x", 0, "float64"), ("y", 8, "float64"), ("a", 16, "[3]*CycA")],
        ptr_words: &[2, 3, 4],
    });
    assert_eq!([offset_of!(CycB, c), offset_of!(CycC, a)], [8, 16]);
    assert!(core::ptr::eq(elem_of(CycA::TYPE, 0), CycB::TYPE));
    assert!(core::ptr::eq(elem_of(CycB::TYPE, 1), CycC::TYPE));
    let Kind::Array { elem: a, len: 3 } = fields_of(CycC::TYPE)[2].ty.kind else { panic!("a") };
    let Kind::Pointer { elem } = a.kind else { panic!("a elem") };
    assert!(core::ptr::eq(elem.get(), CycA::TYPE));
    // Three steps round the cycle land where they started.
    assert!(core::ptr::eq(elem_of(elem_of(elem.get(), 0), 1), CycC::TYPE));
}

/// A self-reference through an alias and through a longer path, which the
/// eager descriptors could not describe.
type TreeAlias = AliasTree;

#[derive(CType)]
#[repr(C)]
struct AliasTree {
    left: *mut TreeAlias,
    right: *mut crate::AliasTree,
}

#[test]
fn self_reference_through_alias_and_path() {
    check::<AliasTree>(&Expect {
        name: "AliasTree",
        size: 16,
        align: 8,
        ptrdata: 16,
        fields: &[("left", 0, "*AliasTree"), ("right", 8, "*AliasTree")],
        ptr_words: &[0, 1],
    });
    assert!(core::ptr::eq(elem_of(AliasTree::TYPE, 0), AliasTree::TYPE));
    assert!(core::ptr::eq(elem_of(AliasTree::TYPE, 1), AliasTree::TYPE));
}

/// Hand-built descriptors name their elements with `TypeRef::new` and a
/// closure, in a static, as run-time types and tests do.
static HAND_MAP: Type = Type {
    name: "",
    size: 8,
    align: 8,
    ptrdata: 8,
    kind: Kind::Map { key: TypeRef::new(|| <i64 as CType>::TYPE), value: TypeRef::new(|| &HAND_CHAN) },
    ptrmask: cgocheck_checker::types::ONE_POINTER,
};
static HAND_CHAN: Type = Type {
    name: "",
    size: 8,
    align: 8,
    ptrdata: 8,
    kind: Kind::Chan { elem: TypeRef::of::<S1>() },
    ptrmask: cgocheck_checker::types::ONE_POINTER,
};

#[test]
fn hand_built_refs() {
    assert_eq!(HAND_MAP.to_string(), "map[int64]chan s1");
    let Kind::Map { key, value } = HAND_MAP.kind else { panic!("map") };
    assert!(core::ptr::eq(value.get(), &HAND_CHAN));
    assert_eq!(
        (key.get().size, key.to_string(), format!("{value:?}")),
        (8, "int64".to_string(), "TypeRef(chan s1)".into())
    );
    assert!(HAND_MAP.is_direct_iface() && HAND_CHAN.is_direct_iface());
}

mod elsewhere {
    pub use cgocheck_checker as reexported;
}

#[derive(CType)]
#[repr(C)]
#[ctype(crate = "crate::elsewhere::reexported", name = "viaReexport")]
struct ViaReexport {
    p: *const u64,
}

#[test]
fn crate_path_override() {
    check::<ViaReexport>(&Expect {
        name: "viaReexport",
        size: 8,
        align: 8,
        ptrdata: 8,
        fields: &[("p", 0, "*uint64")],
        ptr_words: &[0],
    });
}

#[test]
fn derive_inside_a_function() {
    #[derive(CType)]
    #[repr(C)]
    struct Local {
        n: u16,
        p: *mut Local,
    }
    assert_eq!((Local::TYPE.size, Local::TYPE.ptrdata), (16, 16));
    check_ptr_words(Local::TYPE, &[1]);
}

// ---------------------------------------------------------------------------
// Display of composed names

#[test]
fn display_composed_names() {
    let cases: &[(&Type, &str)] = &[
        (<[u8; 4] as CType>::TYPE, "[4]uint8"),
        (<*mut S1 as CType>::TYPE, "*s1"),
        (<*const S1 as CType>::TYPE, "*s1"),
        (<[*mut u8; 32769] as CType>::TYPE, "[32769]*uint8"),
        (<*mut *mut i32 as CType>::TYPE, "**int32"),
        (<*mut [Item; 3] as CType>::TYPE, "*[3]Item"),
        (<[[i64; 3]; 2] as CType>::TYPE, "[2][3]int64"),
        (<[S1; 2] as CType>::TYPE, "[2]s1"),
        (<*mut c_void as CType>::TYPE, "unsafe.Pointer"),
        (<*mut *mut c_void as CType>::TYPE, "*unsafe.Pointer"),
        (<[*const c_void; 2] as CType>::TYPE, "[2]unsafe.Pointer"),
        (<*mut U39 as CType>::TYPE, "*u39"),
        (<usize as CType>::TYPE, "uintptr"),
        (<isize as CType>::TYPE, "int"),
        (<bool as CType>::TYPE, "bool"),
        (<f32 as CType>::TYPE, "float32"),
        (<cgocheck_checker::Complex128 as CType>::TYPE, "complex128"),
    ];
    for (t, want) in cases {
        assert_eq!(t.to_string(), *want);
    }
}
