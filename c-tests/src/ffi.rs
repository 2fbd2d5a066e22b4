//! Declarations of the C functions in `csrc/`, one block per C file.
//!
//! These are plain `extern "C"` declarations: the typed, checked call layer
//! arrives with the tasks-and-calls issue. Until then cases call C directly.

use core::ffi::{c_char, c_int, c_uint};

/// `struct point3` of csrc/heap.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, cgocheck::CType)]
#[ctype(name = "point3")]
pub struct Point3 {
    pub x: i64,
    pub y: i64,
    pub z: i64,
}

/// `struct node` of csrc/heap.c: a managed list node C can walk.
#[repr(C)]
#[derive(Debug, Clone, Copy, cgocheck::CType)]
#[ctype(name = "node")]
pub struct Node {
    pub next: cgocheck::Gc<Node>,
    pub value: i64,
}

// csrc/heap.c
extern "C" {
    pub fn ct_sum_point(p: *const Point3) -> i64;
    pub fn ct_fill_bytes(buf: *mut u8, n: usize, seed: c_uint);
    pub fn ct_sum_list(n: *const Node) -> i64;
    pub fn ct_string_equals(p: *const c_char, n: usize, want: *const c_char) -> c_int;
    pub fn ct_keep_handle(h: usize);
    pub fn ct_kept_handle() -> usize;
}
