//! An argument that fits no C parameter is a compile error that says what
//! fits (`Arg`'s `#[diagnostic::on_unimplemented]`). Doc-tests can only say
//! that such code does not compile; this test compiles two mistakes with
//! `rustc` against the `cgocheck` library cargo built for this test, and
//! reads the errors.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest `libcgocheck-*.rlib` beside this test binary: the one cargo
/// just built for it.
fn cgocheck_rlib(deps: &Path) -> PathBuf {
    std::fs::read_dir(deps)
        .expect("the deps directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("libcgocheck-") && name.ends_with(".rlib")
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no libcgocheck-*.rlib in {}", deps.display()))
}

#[test]
fn arguments_that_do_not_fit_say_what_does() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the deps directory");
    let dir = std::env::temp_dir().join(format!("cgocheck-compile-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let src = dir.join("mistakes.rs");
    std::fs::write(
        &src,
        r#"
use core::ffi::c_int;
cgocheck::c_functions! {
    extern "C" {
        fn puts(s: *const i8) -> c_int;
        fn memset(p: *mut u8, c: c_int, n: usize) -> *mut u8;
    }
}
pub fn mistakes() {
    let mut arr = [1u8; 4];
    cgocheck::run(|| unsafe {
        let s = cgocheck::new_string("hi\0");
        puts(cgocheck::string_data(&s));
        memset(&mut arr, 0, 4);
    });
}
"#,
    )
    .expect("writing the snippet");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "lib", "--emit", "metadata", "--crate-name", "mistakes"])
        .arg("--out-dir")
        .arg(&dir)
        .arg("--extern")
        .arg(format!("cgocheck={}", cgocheck_rlib(deps).display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg(&src)
        .output()
        .expect("running rustc");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the mistakes compiled:\n{stderr}");

    // Each mistake: what was passed, to which parameter type, then what fits.
    assert!(
        stderr.contains("error[E0277]: `Hinted<'_, u8>` cannot be passed to a C parameter of type `*const i8`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error[E0277]: `&mut [u8; 4]` cannot be passed to a C parameter of type `*mut u8`"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("note: for a pointer parameter, pass a raw pointer, a `Gc<T>`").count(), 2, "{stderr}");
    assert!(stderr.contains("`field(&x)` / `field(&mut x)` (one value or field)"), "{stderr}");
    assert!(stderr.contains("`string_data(&s).cast::<c_char>()` for a `char*`"), "{stderr}");
}
