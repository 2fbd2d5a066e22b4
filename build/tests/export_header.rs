//! The export header against a real C program: the header generated from
//! c-tests/cmain/src/lib.rs (a crate whose `export!` functions a C `main`
//! calls) is included before that program's main.c, which also
//! declares every function by hand. C refuses two declarations of one
//! function with different types ("conflicting types"), so main.c compiles
//! only if every generated prototype is the one C really calls; `-Werror`
//! makes a missing or malformed one fail too.

use std::path::Path;
use std::process::Command;

#[test]
fn cmain_compiles_with_the_generated_header() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let dir = std::env::temp_dir().join(format!("cgocheck-build-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = dir.join("cmain_export.h");
    cgocheck_build::ExportHeader::new().source(root.join("c-tests/cmain/src/lib.rs")).write(&header);
    let text = std::fs::read_to_string(&header).unwrap();
    for proto in ["int GoAdd(int a, int b);", "int64_t GoStringLen(cgocheck_string s);", "uint8_t *GoLeak(void);"] {
        assert!(text.contains(proto), "missing {proto:?} in:\n{text}");
    }
    assert!(text.contains("/* `int GoAdd(int, int)`: the simplest callback. */"), "{text}");

    // main.c sets _POSIX_C_SOURCE before its first include; the header
    // goes after the same definition, then main.c itself.
    let unit = dir.join("unit.c");
    let main_c = root.join("c-tests/cmain/main.c");
    std::fs::write(
        &unit,
        format!(
            "#define _POSIX_C_SOURCE 200809L\n#include \"{}\"\n#include \"{}\"\n",
            header.display(),
            main_c.display()
        ),
    )
    .unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-pthread"])
        .arg("-I")
        .arg(root.join("runtime/include"))
        .arg(&unit)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        out.status.success(),
        "main.c does not compile with the generated header:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
