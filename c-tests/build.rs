//! Compiles the C half of the tests with the `cc` crate: every `csrc/*.c`
//! file goes into one static library, with debug info and frame pointers so
//! that later crash-report tests can symbolise and unwind its frames.

fn main() {
    let mut build = cc::Build::new();
    build.debug(true).opt_level(1).flag("-fno-omit-frame-pointer").warnings_into_errors(true);
    build.include("../runtime/include");
    println!("cargo:rerun-if-changed=../runtime/include");
    let mut files: Vec<_> = std::fs::read_dir("csrc")
        .expect("c-tests/csrc exists")
        .map(|e| e.expect("readable csrc entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        build.file(f);
    }
    println!("cargo:rerun-if-changed=csrc");
    build.compile("ctests_c");
}
