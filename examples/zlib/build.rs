//! Checked declarations for the part of zlib.h the example uses, generated
//! by cgocheck-build from the header of the zlib that libz-sys builds
//! (libz-sys tells dependents where it is: DEP_Z_INCLUDE).

fn main() {
    let include = std::env::var("DEP_Z_INCLUDE")
        .expect("libz-sys did not say where zlib.h is (DEP_Z_INCLUDE); is libz-sys a direct dependency?");
    let include = include.split(',').next().unwrap_or_default().to_owned();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by Cargo"));
    cgocheck_build::Bindings::new(format!("{include}/zlib.h"))
        .clang_arg(&format!("-I{include}"))
        .allowlist_function("zlibVersion|deflateInit_|deflate|deflateEnd|inflateInit_|inflate|inflateEnd")
        .allowlist_type("z_stream")
        .allowlist_var("ZLIB_VERSION|Z_OK|Z_STREAM_END|Z_NO_FLUSH|Z_FINISH|Z_BUF_ERROR|Z_DEFAULT_COMPRESSION")
        .generate(out.join("zlib.rs"));
}
