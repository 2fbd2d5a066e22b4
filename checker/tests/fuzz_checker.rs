//! Bounded fuzzing of the checker's type machinery with random descriptors.
//!
//! Every check walks values through their descriptors: `ptrdata`, the
//! pointer mask (`is_ptr_word`, `ptr_bits`, `write_ptr_bits`, which the heap
//! also uses to build its bitmaps), and `steps_to` for the path in a
//! message. Here descriptors are built at run time the way the derive builds
//! them at compile time (`fields_mask`, `fields_ptrdata`, repeated masks for
//! arrays) from random C shapes: scalars, pointers, arrays, structs and
//! unions nested a few deep, arrays up to a million elements. Each is
//! compared with an independent model of the same shape: the list of its
//! pointer words, computed by walking the shape. The invariant: the right
//! answer (every mask query agrees with the model, every path to a pointer
//! word ends on a pointer field) and never a panic.
//!
//! The checks' walks over real memory are fuzzed against the real heap in
//! the runtime's `fuzz_heap.rs` (this crate has no heap of its own).

use cgocheck_checker::path::{steps_in_object, steps_to, Step};
use cgocheck_checker::types::{fields_mask, fields_ptrdata, mask_len, ONE_POINTER};
use cgocheck_checker::{Field, Kind, PtrMask, Type};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// A C type's shape.
#[derive(Debug, Clone)]
enum Shape {
    /// An integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// `void *`.
    Ptr,
    Array(Box<Shape>, usize),
    Struct(Vec<Shape>),
    Union(Vec<Shape>),
}

/// Largest value built (bytes), so masks fit the `fields_mask` below.
const MAX_SIZE: usize = 32 << 10;
/// `u64`s of a mask of a `MAX_SIZE` value.
const MASK_WORDS: usize = MAX_SIZE / 8 / 64;

impl Shape {
    /// C's size and alignment on x86_64/aarch64.
    fn layout(&self) -> (usize, usize) {
        match self {
            Shape::Int(n) => (*n, *n),
            Shape::Ptr => (8, 8),
            Shape::Array(e, len) => {
                let (s, a) = e.layout();
                (s * len, a)
            }
            Shape::Struct(fs) => {
                let (mut off, mut align) = (0usize, 1usize);
                for f in fs {
                    let (s, a) = f.layout();
                    off = off.next_multiple_of(a) + s;
                    align = align.max(a);
                }
                (off.next_multiple_of(align), align)
            }
            Shape::Union(fs) => {
                let (size, align) =
                    fs.iter().map(Shape::layout).fold((0, 1), |(s, a), (fs, fa)| (s.max(fs), a.max(fa)));
                (size.next_multiple_of(align), align)
            }
        }
    }

    /// Byte offsets of the fields of a struct.
    fn offsets(fs: &[Shape]) -> Vec<usize> {
        let mut off = 0usize;
        fs.iter()
            .map(|f| {
                let (s, a) = f.layout();
                let at = off.next_multiple_of(a);
                off = at + s;
                at
            })
            .collect()
    }

    /// The model: indices of the pointer words of a value at byte `base`.
    fn ptr_words(&self, base: usize, out: &mut BTreeSet<usize>) {
        match self {
            Shape::Int(_) => {}
            Shape::Ptr => {
                out.insert(base / 8);
            }
            Shape::Array(e, len) => {
                let (s, _) = e.layout();
                for i in 0..*len {
                    e.ptr_words(base + i * s, out);
                }
            }
            Shape::Struct(fs) => {
                for (f, off) in fs.iter().zip(Shape::offsets(fs)) {
                    f.ptr_words(base + off, out);
                }
            }
            Shape::Union(fs) => fs.iter().for_each(|f| f.ptr_words(base, out)),
        }
    }

    /// Whether the word at byte `offset` is a pointer word, by the model,
    /// without listing every word (for huge arrays).
    fn is_ptr_at(&self, offset: usize) -> bool {
        match self {
            Shape::Int(_) => false,
            Shape::Ptr => offset < 8,
            Shape::Array(e, len) => {
                let (s, _) = e.layout();
                s > 0 && offset / s < *len && e.is_ptr_at(offset % s)
            }
            Shape::Struct(fs) => fs.iter().zip(Shape::offsets(fs)).any(|(f, off)| {
                let (s, _) = f.layout();
                offset >= off && offset < off + s && f.is_ptr_at(offset - off)
            }),
            Shape::Union(fs) => fs.iter().any(|f| offset < f.layout().0 && f.is_ptr_at(offset)),
        }
    }

    /// The descriptor, built as the derive and the array impl build theirs.
    fn build(&self) -> &'static Type {
        let (size, align) = self.layout();
        let leak = |t: Type| -> &'static Type { Box::leak(Box::new(t)) };
        match self {
            Shape::Int(n) => leak(Type::scalar("", *n, *n, int_kind(*n))),
            Shape::Ptr => {
                leak(Type { name: "", size: 8, align: 8, ptrdata: 8, kind: Kind::UnsafePointer, ptrmask: ONE_POINTER })
            }
            Shape::Array(e, len) => {
                let elem = e.build();
                let pointers = elem.ptrdata != 0 && *len != 0;
                leak(Type {
                    name: "",
                    size,
                    align,
                    ptrdata: if pointers { (len - 1) * elem.size + elem.ptrdata } else { 0 },
                    kind: Kind::Array { elem, len: *len },
                    ptrmask: if pointers { PtrMask::Repeat { elem, len: *len } } else { PtrMask::None },
                })
            }
            Shape::Struct(fs) | Shape::Union(fs) => {
                let union = matches!(self, Shape::Union(_));
                let offsets = if union { vec![0; fs.len()] } else { Shape::offsets(fs) };
                let fields: &'static [Field] = Box::leak(
                    fs.iter()
                        .zip(offsets)
                        .enumerate()
                        .map(|(i, (f, offset))| Field { name: FIELD_NAMES[i], offset, ty: f.build() })
                        .collect(),
                );
                let mask = fields_mask::<MASK_WORDS>(size, fields);
                let ptrdata = fields_ptrdata(fields);
                let bits: &'static [u64] = Box::leak(mask[..mask_len(size)].to_vec().into_boxed_slice());
                leak(Type {
                    name: if union { "u" } else { "s" },
                    size,
                    align,
                    ptrdata,
                    kind: if union { Kind::Union { fields } } else { Kind::Struct { fields } },
                    ptrmask: if ptrdata == 0 { PtrMask::None } else { PtrMask::Bits(bits) },
                })
            }
        }
    }

    /// Follows `steps` (field and index steps) from this shape; the shape
    /// reached and the offset left inside it.
    fn follow(&self, steps: &[Step], mut offset: usize) -> Option<(&Shape, usize)> {
        let mut s = self;
        for step in steps {
            match (s, step) {
                (Shape::Struct(fs) | Shape::Union(fs), Step::Field(name)) => {
                    let i = FIELD_NAMES.iter().position(|n| n == name)?;
                    if let Shape::Struct(_) = s {
                        offset -= Shape::offsets(fs)[i];
                    }
                    s = &fs[i];
                }
                (Shape::Array(e, _), Step::Index(i)) => {
                    offset -= i * e.layout().0;
                    s = e;
                }
                _ => return None,
            }
        }
        Some((s, offset))
    }
}

const FIELD_NAMES: [&str; 6] = ["f0", "f1", "f2", "f3", "f4", "f5"];

fn int_kind(n: usize) -> Kind {
    match n {
        1 => Kind::Uint8,
        2 => Kind::Uint16,
        4 => Kind::Uint32,
        _ => Kind::Uint64,
    }
}

/// Shapes up to `MAX_SIZE` bytes, nested up to four levels.
fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        3 => prop_oneof![Just(1usize), Just(2), Just(4), Just(8)].prop_map(Shape::Int),
        2 => Just(Shape::Ptr),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            (inner.clone(), 0usize..40).prop_map(|(e, len)| Shape::Array(Box::new(e), len)),
            proptest::collection::vec(inner.clone(), 1..6).prop_map(Shape::Struct),
            proptest::collection::vec(inner, 1..4).prop_map(Shape::Union),
        ]
    })
    .prop_filter("fits the mask", |s| s.layout().0 <= MAX_SIZE)
}

/// Shapes of at most 256 bytes, nested up to two levels: array elements.
fn small_shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        3 => prop_oneof![Just(1usize), Just(2), Just(4), Just(8)].prop_map(Shape::Int),
        2 => Just(Shape::Ptr),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            (inner.clone(), 1usize..4).prop_map(|(e, len)| Shape::Array(Box::new(e), len)),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Shape::Struct),
            proptest::collection::vec(inner, 1..3).prop_map(Shape::Union),
        ]
    })
}

fn check_shape(shape: &Shape, probe: usize) -> Result<(), TestCaseError> {
    let ty = shape.build();
    let (size, align) = shape.layout();
    prop_assert_eq!((ty.size, ty.align), (size, align));
    let mut model = BTreeSet::new();
    shape.ptr_words(0, &mut model);
    let ptrdata = model.last().map_or(0, |w| w * 8 + 8);
    prop_assert_eq!(ty.ptrdata, ptrdata, "ptrdata of {:?}", shape);
    prop_assert_eq!(ty.has_pointers(), !model.is_empty());
    let bits: Vec<usize> = ty.ptr_bits().iter_ones().collect();
    prop_assert_eq!(bits, model.iter().copied().collect::<Vec<_>>(), "ptr_bits of {:?}", shape);
    for w in 0..size.div_ceil(8) {
        prop_assert_eq!(ty.is_ptr_word(w * 8), model.contains(&w), "word {} of {:?}", w, shape);
    }
    // The path to every pointer word ends on a pointer, at its start.
    for &w in &model {
        let steps = steps_to(ty, w * 8);
        let Some((leaf, off)) = shape.follow(&steps, w * 8) else {
            return Err(TestCaseError::fail(format!("steps {steps:?} to word {w} do not follow {shape:?}")));
        };
        prop_assert!(
            matches!(leaf, Shape::Ptr) && off == 0,
            "steps {:?} to word {} end at {:?}+{}",
            steps,
            w,
            leaf,
            off
        );
    }
    // Any offset of an array of these: the index, then a path that follows.
    if size > 0 {
        let count = 1 + probe % 5;
        let off = probe % (size * count);
        let steps = steps_in_object(ty, count, off);
        let inner = if count > 1 {
            prop_assert_eq!(steps.first(), Some(&Step::Index(off / size)));
            &steps[1..]
        } else {
            &steps[..]
        };
        prop_assert!(shape.follow(inner, off % size).is_some(), "steps {:?} to +{} of {:?}", steps, off, shape);
    }
    let _ = ty.to_string();
    Ok(())
}

/// A huge array of a small shape: its mask is never materialised by the
/// descriptor (`Repeat`), and queries anywhere must agree with the model.
fn check_huge_array(elem: &Shape, len: usize, probes: &[usize]) -> Result<(), TestCaseError> {
    let shape = Shape::Array(Box::new(elem.clone()), len);
    let ty = shape.build();
    let size = ty.size;
    if size == 0 {
        return Ok(());
    }
    for &p in probes {
        let off = (p % size) & !7;
        prop_assert_eq!(ty.is_ptr_word(off), shape.is_ptr_at(off), "offset {} of {:?} x {}", off, elem, len);
    }
    // The last word of the last element, through the whole mask.
    if size <= 256 << 10 {
        let bits = ty.ptr_bits();
        prop_assert_eq!(bits.len(), size.div_ceil(8));
        let last = (size - 1) / 8;
        prop_assert_eq!(bits[last], shape.is_ptr_at(last * 8), "last word of {:?} x {}", elem, len);
        prop_assert_eq!(bits.count_ones(), {
            let mut one = BTreeSet::new();
            elem.ptr_words(0, &mut one);
            one.len() * len
        });
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn descriptors_agree_with_the_model(shape in shape(), probe in any::<usize>()) {
        check_shape(&shape, probe)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn huge_arrays_agree_with_the_model(
        elem in small_shape(),
        len in prop_oneof![1usize..1000, 100_000usize..1_000_000],
        probes in proptest::collection::vec(any::<usize>(), 1..32),
    ) {
        check_huge_array(&elem, len, &probes)?;
    }
}
