//! zlib through generated, checked declarations: 10 MiB deflated and
//! inflated back in 64 KiB steps with a managed z_stream and managed
//! buffers; and the unpinned-input mistake, caught by the checker at the
//! first deflate.

use cgocheck_example_zlib::{compress, compress_unpinned_input, decompress, managed};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// 10 MiB of text-like bytes: compressible, but not trivially.
fn input() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let words: [&[u8]; 8] = [b"managed ", b"pointer ", b"pinned ", b"zlib ", b"stream ", b"cgo ", b"check ", b"\n"];
    let mut v = Vec::with_capacity(10 << 20);
    while v.len() < 10 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(words[(x % 8) as usize]);
    }
    v.truncate(10 << 20);
    v
}

#[test]
fn ten_mib_round_trip() {
    let data = input();
    cgocheck::run(|| {
        let start = Instant::now();
        let packed = compress(&managed(&data));
        assert!(packed.len() < data.len() / 3, "10 MiB of 8 words compressed to {} bytes", packed.len());
        let unpacked = decompress(&managed(&packed));
        assert!(unpacked == data, "round trip changed the data ({} bytes back)", unpacked.len());
        eprintln!("10 MiB -> {} bytes -> back in {:?}", packed.len(), start.elapsed());
    });
}

#[test]
fn unpinned_next_in_is_caught_before_zlib_runs() {
    cgocheck::run(|| {
        let input = managed(b"some bytes that deflate would read through next_in");
        let err = catch_unwind(AssertUnwindSafe(|| compress_unpinned_input(&input))).expect_err("the checker panics");
        let msg = err.downcast_ref::<String>().expect("the checker's message");
        assert!(msg.starts_with("cgo argument has Go pointer to unpinned Go pointer"), "{msg}");
        assert!(msg.contains("deflate, argument 1"), "{msg}");
        assert!(msg.contains("next_in"), "the message names the field: {msg}");
    });
}
