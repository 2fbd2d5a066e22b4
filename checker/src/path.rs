//! Where an offending pointer sits, as a path from the argument:
//! `arg 1 → .items[3].next`.
//!
//! The checks do not record where they are while they walk (that would cost
//! on every call). A failing walk returns a fault, and each level of the walk
//! adds its own step as the fault travels back up: a struct adds `.field`, an
//! array or slice adds `[i]`, following a pointer adds `→`. Whole-object walks
//! (an unknown pointer into the heap, see `unknown.rs`) only know a word
//! offset; [`steps_to`] turns that offset into field and index steps using
//! the object's element type. So the path exists only when a check fails.
//!
//! Rendering: the root (`arg 1`, `result`, `value`), then the steps; `→`
//! means "follow the pointer", and when the path ends right after it the
//! pointer's target itself is meant (`arg 1 → *`). `(its object)`,
//! `(its slice)`, `(its array)` mark a walk over the whole object, backing
//! array or array that the pointer points into, rather than over what the
//! pointer designates.

use crate::types::{Kind, Type};
use core::fmt;

/// The start of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// The 1-based argument of a C function.
    Arg(u32),
    /// The result of an exported function.
    Result,
    /// The value being stored (store checks).
    Value,
}

/// One step of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Follow the pointer to what it points to.
    Deref,
    /// A named field of a struct or union.
    Field(&'static str),
    /// An element of an array or slice.
    Index(usize),
    /// A byte offset into memory whose layout is not known (an explicit
    /// extent on a stack or in globals).
    Offset(usize),
    /// The whole enclosing thing the pointer points into: `"object"`,
    /// `"slice"` (backing array) or `"array"`.
    Enclosing(&'static str),
}

/// A root and its steps, outermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// What the path starts from.
    pub root: Root,
    /// The steps from the root, outermost first.
    pub steps: Vec<Step>,
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Root::Arg(n) => write!(f, "arg {n}"),
            Root::Result => f.write_str("result"),
            Root::Value => f.write_str("value"),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)?;
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Deref if i + 1 == self.steps.len() => f.write_str(" → *")?,
                Step::Deref => f.write_str(" → ")?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::Offset(n) => write!(f, "+{n}")?,
                Step::Enclosing(what) => write!(f, "(its {what})")?,
            }
        }
        Ok(())
    }
}

/// The steps from the start of a value of type `ty` to the word at byte
/// `offset`, outermost first: `.a[2].p`. Structs pick the field that covers
/// the offset, unions the first field with a pointer word there, arrays the
/// element. Inside slices, strings and interfaces the steps stop (their
/// words are the header's own).
pub fn steps_to(mut ty: &Type, mut offset: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        match ty.kind {
            Kind::Struct { fields } => {
                let covering = |f: &&crate::types::Field| f.offset <= offset && offset < f.offset + f.ty.size;
                let Some(field) = fields
                    .iter()
                    .filter(covering)
                    .find(|f| f.ty.is_ptr_word(offset - f.offset))
                    .or_else(|| fields.iter().find(covering))
                else {
                    break;
                };
                steps.push(Step::Field(field.name));
                offset -= field.offset;
                ty = field.ty;
            }
            Kind::Union { fields } => {
                let Some(field) = fields.iter().find(|f| f.ty.is_ptr_word(offset)).or(fields.first()) else {
                    break;
                };
                steps.push(Step::Field(field.name));
                ty = field.ty;
            }
            Kind::Array { elem, len } if elem.size > 0 && offset / elem.size < len => {
                steps.push(Step::Index(offset / elem.size));
                offset %= elem.size;
                ty = elem;
            }
            _ => break,
        }
    }
    steps
}

/// The steps to byte `offset` of a heap object holding `count` values of
/// `elem`: an index when the object is an array (`count > 1`), then the
/// steps inside the element.
pub fn steps_in_object(elem: &Type, count: usize, offset: usize) -> Vec<Step> {
    if elem.size == 0 {
        return Vec::new();
    }
    let mut steps = Vec::new();
    if count > 1 {
        steps.push(Step::Index(offset / elem.size));
    }
    steps.extend(steps_to(elem, offset % elem.size));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Field, PtrMask, WORD};

    static INT: &Type = <i32 as crate::CType>::TYPE;
    static PTR: &Type = <*mut i32 as crate::CType>::TYPE;
    static NODE_FIELDS: [Field; 2] =
        [Field { name: "val", offset: 0, ty: <i64 as crate::CType>::TYPE }, Field { name: "next", offset: 8, ty: PTR }];
    static NODE: Type = Type {
        name: "node",
        size: 16,
        align: 8,
        ptrdata: 16,
        kind: Kind::Struct { fields: &NODE_FIELDS },
        ptrmask: PtrMask::Bits(&[0b10]),
    };
    static ITEMS: Type = Type {
        name: "",
        size: 64,
        align: 8,
        ptrdata: 64,
        kind: Kind::Array { elem: &NODE, len: 4 },
        ptrmask: PtrMask::Repeat { elem: &NODE, len: 4 },
    };
    static LIST_FIELDS: [Field; 2] =
        [Field { name: "n", offset: 0, ty: INT }, Field { name: "items", offset: 8, ty: &ITEMS }];
    static LIST: Type = Type {
        name: "list",
        size: 72,
        align: 8,
        ptrdata: 72,
        kind: Kind::Struct { fields: &LIST_FIELDS },
        ptrmask: PtrMask::Bits(&[0b1_0101_0100]),
    };

    #[test]
    fn offsets_become_field_and_index_steps() {
        let steps = steps_to(&LIST, 8 + 3 * 16 + 8);
        assert_eq!(steps, [Step::Field("items"), Step::Index(3), Step::Field("next")]);
        let p = Path { root: Root::Arg(1), steps: [vec![Step::Deref], steps].concat() };
        assert_eq!(p.to_string(), "arg 1 → .items[3].next");
    }

    #[test]
    fn object_arrays_get_an_index_first() {
        assert_eq!(steps_in_object(&NODE, 10, 5 * 16 + WORD), [Step::Index(5), Step::Field("next")]);
        assert_eq!(steps_in_object(&NODE, 1, WORD), [Step::Field("next")]);
        assert_eq!(steps_in_object(PTR, 1, 0), []);
    }

    #[test]
    fn rendering() {
        let r = |root, steps: &[Step]| Path { root, steps: steps.to_vec() }.to_string();
        assert_eq!(r(Root::Result, &[]), "result");
        assert_eq!(r(Root::Arg(2), &[Step::Deref]), "arg 2 → *");
        assert_eq!(
            r(Root::Arg(1), &[Step::Deref, Step::Enclosing("object"), Step::Field("p")]),
            "arg 1 → (its object).p"
        );
        assert_eq!(
            r(Root::Arg(3), &[Step::Field("s"), Step::Index(2), Step::Deref, Step::Field("q")]),
            "arg 3.s[2] → .q"
        );
        assert_eq!(r(Root::Value, &[Step::Index(0)]), "value[0]");
        assert_eq!(r(Root::Arg(1), &[Step::Deref, Step::Offset(16)]), "arg 1 → +16");
    }
}
