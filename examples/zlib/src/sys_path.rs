//! The same streaming deflate/inflate through the `-sys` path: zlib's
//! functions and `z_stream` as libz-sys declares them, called by path with
//! `c_call!`, nothing declared again. Only the stream's layout is written
//! here, as a mirror (`ZStream`): libz-sys's `z_stream` cannot implement
//! `CType` in this crate (the orphan rule), and could not anyway — its
//! `zalloc`/`zfree` are non-nullable function pointers, so the all-zero
//! stream zlib asks for is not a valid Rust `z_stream`. The derive checks
//! the mirror's size, alignment and every field's offset and size against
//! libz-sys's at compile time; `foreign(..)` passes a managed mirror where
//! zlib takes a `*mut z_stream`.

use cgocheck::ffi::foreign;
use cgocheck::{c_call, new, new_slice, CType, Gc, GcSlice, Pinner};
use core::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use libz_sys as z;

/// libz-sys's `z_stream`, described for the checker.
#[derive(CType, Clone, Copy)]
#[repr(C)]
#[ctype(name = "z_stream", mirror = "libz_sys::z_stream")]
pub struct ZStream {
    next_in: *mut u8,
    avail_in: c_uint,
    total_in: c_ulong,
    next_out: *mut u8,
    avail_out: c_uint,
    total_out: c_ulong,
    msg: *mut c_char,
    state: *mut c_void,
    zalloc: Option<unsafe extern "C" fn(*mut c_void, c_uint, c_uint) -> *mut c_void>,
    zfree: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    opaque: *mut c_void,
    data_type: c_int,
    adler: c_ulong,
    reserved: c_ulong,
}

const CHUNK: usize = 64 * 1024;

/// Runs `step` (one deflate or inflate call) until the stream ends, with
/// the stream and both buffers pinned (or the input not, to show the
/// mistake).
fn stream(strm: Gc<ZStream>, input: &GcSlice<u8>, pin_input: bool, step: impl Fn(Gc<ZStream>) -> c_int) -> Vec<u8> {
    let out = new_slice::<u8>(CHUNK);
    let mut pinner = Pinner::new();
    pinner.pin(strm);
    pinner.pin(out);
    if pin_input {
        pinner.pin(*input);
    }
    // SAFETY (each `as_mut` below): zlib does not run while the reference
    // is used; every use ends before the next call.
    let s = unsafe { strm.as_mut() };
    s.next_in = input.as_ptr();
    s.avail_in = c_uint::try_from(input.len()).expect("at most 4 GiB of input");
    let mut result = Vec::new();
    loop {
        let s = unsafe { strm.as_mut() };
        s.next_out = out.as_ptr();
        s.avail_out = CHUNK as c_uint;
        let rc = step(strm);
        let produced = CHUNK - unsafe { strm.as_mut() }.avail_out as usize;
        result.extend_from_slice(&out.as_slice()[..produced]);
        match rc {
            z::Z_STREAM_END => break,
            z::Z_OK => {}
            z::Z_BUF_ERROR if produced > 0 => {}
            rc => panic!("zlib returned {rc}"),
        }
    }
    let s = unsafe { strm.as_mut() };
    s.next_in = core::ptr::null_mut();
    s.next_out = core::ptr::null_mut();
    pinner.unpin();
    result
}

const SIZE: c_int = core::mem::size_of::<ZStream>() as c_int;

/// Compresses `input`; `pin_input: false` is the mistake the checker
/// catches at the first `deflate`.
pub fn compress(input: &GcSlice<u8>, pin_input: bool) -> Vec<u8> {
    let strm = new(ZStream::zeroed());
    // SAFETY: a zeroed stream, zlib's own version string and the stream's
    // size, as the deflateInit macro passes them.
    let rc = unsafe { c_call!(z::deflateInit_(foreign(strm), z::Z_DEFAULT_COMPRESSION, z::zlibVersion(), SIZE)) };
    assert_eq!(rc, z::Z_OK, "deflateInit");
    // SAFETY: an initialised stream over pinned managed buffers.
    let out = stream(strm, input, pin_input, |s| unsafe { c_call!(z::deflate(foreign(s), z::Z_FINISH)) });
    // SAFETY: ended once.
    unsafe { c_call!(z::deflateEnd(foreign(strm))) };
    out
}

/// Decompresses what [`compress`] made.
pub fn decompress(input: &GcSlice<u8>) -> Vec<u8> {
    let strm = new(ZStream::zeroed());
    // SAFETY: as for deflateInit_.
    let rc = unsafe { c_call!(z::inflateInit_(foreign(strm), z::zlibVersion(), SIZE)) };
    assert_eq!(rc, z::Z_OK, "inflateInit");
    // SAFETY: an initialised stream over pinned managed buffers.
    let out = stream(strm, input, true, |s| unsafe { c_call!(z::inflate(foreign(s), z::Z_NO_FLUSH)) });
    // SAFETY: ended once.
    unsafe { c_call!(z::inflateEnd(foreign(strm))) };
    out
}

impl ZStream {
    /// The all-zero stream (null zalloc/zfree: zlib's own allocator).
    fn zeroed() -> ZStream {
        // SAFETY: every field is an integer, a raw pointer or an `Option`
        // of a function pointer: all-zero is valid for each (and CType
        // promises it).
        unsafe { core::mem::zeroed() }
    }
}
