//! Declarations of the C functions in `csrc/`, one block per C file.
//!
//! The heap cases (csrc/heap.c) use plain `extern "C"` declarations on
//! purpose: they show C reading and writing managed memory with no call
//! layer in between. Later blocks use `cgocheck::c_functions!`, the typed,
//! checked call layer, as a user would.

use core::ffi::{c_char, c_int, c_uint};

/// `struct point3` of csrc/heap.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, cgocheck::CType)]
#[ctype(name = "point3")]
pub struct Point3 {
    /// C's `x`.
    pub x: i64,
    /// C's `y`.
    pub y: i64,
    /// C's `z`.
    pub z: i64,
}

/// `struct node` of csrc/heap.c: a managed list node C can walk.
#[repr(C)]
#[derive(Debug, Clone, Copy, cgocheck::CType)]
#[ctype(name = "node")]
pub struct Node {
    /// The next node (null at the end).
    pub next: cgocheck::Gc<Node>,
    /// What `ct_sum_list` adds up.
    pub value: i64,
}

// csrc/heap.c
extern "C" {
    /// Reads a struct through the pointer it is given: `x + y + z`.
    pub fn ct_sum_point(p: *const Point3) -> i64;
    /// Fills `n` bytes at `buf`: `buf[i] = (seed + i) mod 256`.
    pub fn ct_fill_bytes(buf: *mut u8, n: usize, seed: c_uint);
    /// Walks a list from `n` and sums the values.
    pub fn ct_sum_list(n: *const Node) -> i64;
    /// Whether the `n` bytes at `p` are the NUL-terminated `want`.
    pub fn ct_string_equals(p: *const c_char, n: usize, want: *const c_char) -> c_int;
    /// Keeps an integer (a Handle) in a C static, as C code keeps a
    /// `cgo.Handle`.
    pub fn ct_keep_handle(h: usize);
    /// The integer `ct_keep_handle` kept.
    pub fn ct_kept_handle() -> usize;
}

/// csrc/ptr.c: the C side of the managed → C rows of the pointer-passing
/// table (the README's pointer rules), declared through the checked call layer
/// (`cgocheck::c_functions!`), with the C types of their prototypes. The
/// names are Go's (`f1`, `s1`, …) so the rows read like `ptr_test.go`.
pub mod ptr {
    use cgocheck::{CPtr, CType, GcStr};
    use core::ffi::{c_char, c_int, c_ulong, c_void};

    /// `struct s1 { int *p; }` (ptr1, ptr2, message).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s1")]
    pub struct S1 {
        /// C's `p`.
        pub p: *mut c_int,
    }

    /// `struct s3 { int i; int *p; }` (ok1).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s3")]
    pub struct S3 {
        /// C's `i`.
        pub i: c_int,
        /// C's `p`.
        pub p: *mut c_int,
    }

    /// `struct s4 { int i; int *p; }` (ptrfield).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s4")]
    pub struct S4 {
        /// C's `i`.
        pub i: c_int,
        /// C's `p`.
        pub p: *mut c_int,
    }

    /// `struct s5 { int *p1; int *p2; }` (ptrfieldok).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s5")]
    pub struct S5 {
        /// C's `p1`.
        pub p1: *mut c_int,
        /// C's `p2`.
        pub p2: *mut c_int,
    }

    /// `struct s16 { char *a[10]; }` (barrierslice).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s16")]
    pub struct S16 {
        /// C's `a`.
        pub a: [*mut c_char; 10],
    }

    /// `struct s17 { char *a[32769]; }` (barriergcprogarray).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s17")]
    pub struct S17 {
        /// C's `a`.
        pub a: [*mut c_char; 32769],
    }

    /// `struct s19a { char *a[32769]; }` (barriergcprogstruct).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s19a")]
    pub struct S19a {
        /// C's `a`.
        pub a: [*mut c_char; 32769],
    }

    /// `struct s19b { struct s19a f; }`.
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s19b")]
    pub struct S19b {
        /// C's `f`.
        pub f: S19a,
    }

    /// `struct s28 { int *p; }` (defer1).
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "s28")]
    pub struct S28 {
        /// C's `p`.
        pub p: *mut c_int,
    }

    /// `union u39 { unsigned long i; }` (union2): no pointer fields.
    #[derive(CType, Clone, Copy)]
    #[repr(C)]
    #[ctype(name = "u39")]
    pub union U39 {
        /// C's `i`.
        pub i: c_ulong,
    }

    cgocheck::c_functions! {
        extern "C" {
            pub fn f1(ps: *mut S1);
            pub fn f3(p: *mut c_int);
            pub fn f4(p: *mut *mut c_int);
            pub fn f5(p: *mut *mut c_int);
            pub fn f6(p: *mut *mut c_void);
            pub fn f7(p: *mut *mut c_void);
            pub fn f8(p: *mut *mut c_void);
            pub fn f9(p: *mut *mut c_void);
            pub fn f10(p: *mut c_void);
            pub fn f12(parg: *mut *mut c_char);
            pub fn f14a() -> CPtr<*mut c_char>;
            pub fn f14b(p: *mut *mut c_char);
            pub fn f16() -> CPtr<S16>;
            pub fn f16b(p: *mut S16);
            pub fn f17() -> CPtr<S17>;
            pub fn f17b(p: *mut S17);
            pub fn f19() -> CPtr<S19b>;
            pub fn f19b(p: *mut S19b);
            /// `gostring23 f23(gostring23 s)`: Go's string header by value.
            pub fn f23(s: GcStr) -> GcStr;
            pub fn f26(p: *mut c_void);
            pub fn f28(ps: *mut S28);
            #[nocallback]
            pub fn f30();
            pub fn f32(p: *mut *mut c_char);
            pub fn f33(p: *mut c_void);
            pub fn f36(p: *mut c_void);
            pub fn f39(pu: *mut U39);
            pub fn f41(p: *mut c_void);
            pub fn f43(p: *mut c_void);
            pub fn f44(p: *mut c_void);
            pub fn f46(p: *mut c_void);
            /// Reads one byte through `p`.
            #[noescape]
            pub fn ct_read_byte(p: *const u8) -> c_int;
            /// glibc's `backtrace()` taken inside C.
            pub fn ct_backtrace(buf: *mut *mut c_void, n: c_int) -> c_int;
        }
    }
}

/// csrc/call.c: the C side of the call benchmarks (Go's bench.go shapes),
/// and a C function pointer type over one of them.
pub mod call {
    use cgocheck::CType;
    use core::ffi::{c_int, c_void};

    /// bench.go's `obj64`: 64 bytes, one pointer word.
    #[derive(CType)]
    #[repr(C)]
    #[ctype(name = "obj64")]
    pub struct Obj64 {
        /// C's `p`.
        pub p: *mut c_void,
        /// C's `a`.
        pub a: [i64; 7],
    }

    cgocheck::c_functions! {
        extern "C" {
            #[nocallback]
            pub fn ct_add(a: c_int, b: c_int) -> c_int;
            #[nocallback]
            pub fn ct_take(o: *mut Obj64);
            #[nocallback]
            pub fn ct_takebig(p: *mut c_void);
            /// Returns `ct_add` as a function pointer.
            pub fn ct_get_add() -> BinOp;
            /// Returns a null function pointer.
            pub fn ct_get_null() -> BinOp;
            /// C's `int (*)(int, int)`.
            pub type BinOp = fn(a: c_int, b: c_int) -> c_int;
        }
    }
}

/// csrc/quarantine.c: a C library that keeps a pointer it was lent (the
/// `CGOCHECK=2` quarantine cases, `src/bin/quarantine.rs`).
pub mod quarantine {
    /// `struct qrec` of csrc/quarantine.c.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, cgocheck::CType)]
    #[ctype(name = "qrec")]
    pub struct QRec {
        /// C's `id`.
        pub id: i64,
        /// C's `value`.
        pub value: i64,
        /// C's `next` (null, or a C record).
        pub next: *mut QRec,
    }

    cgocheck::c_functions! {
        extern "C" {
            /// Keeps `r` in a C global and returns: the bug the quarantine
            /// catches when `r` is not pinned.
            pub fn q_keep(r: *mut QRec);
            /// The address `q_keep` kept.
            pub safe fn q_kept_addr() -> usize;
            /// Reads `value` through the kept pointer.
            pub fn q_read_kept() -> i64;
            /// Writes `value` through the kept pointer.
            pub fn q_write_kept(v: i64);
            /// Reads `next->id` through the kept pointer.
            pub fn q_read_kept_next() -> i64;
            /// A record in C memory (calloc).
            pub safe fn q_c_record(id: i64) -> *mut QRec;
        }
    }
}
