//! zlib through libz-sys's own declarations (`c_call!`, a mirror of its
//! `z_stream`): the round trip, and the unpinned-input mistake caught.

use cgocheck_example_zlib::managed;
use cgocheck_example_zlib::sys_path::{compress, decompress};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[test]
fn round_trip_through_libz_sys() {
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
    cgocheck::run(|| {
        let packed = compress(&managed(&data), true);
        assert!(packed.len() < data.len() / 4, "1 MiB compressed to {} bytes", packed.len());
        assert!(decompress(&managed(&packed)) == data, "the round trip changed the data");
    });
}

#[test]
fn unpinned_next_in_is_caught_through_libz_sys() {
    cgocheck::run(|| {
        let input = managed(b"bytes deflate would read through an unpinned next_in");
        let err = catch_unwind(AssertUnwindSafe(|| compress(&input, false))).expect_err("the checker panics");
        let msg = err.downcast_ref::<String>().expect("the checker's message");
        assert!(msg.starts_with("cgo argument has Go pointer to unpinned Go pointer"), "{msg}");
        assert!(msg.contains("call:     deflate, argument 1"), "{msg}");
        assert!(msg.contains("z_stream") && msg.contains("next_in"), "{msg}");
    });
}
