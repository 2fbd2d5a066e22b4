//! A stripped binary still gets a report: with no DWARF and no symbol
//! table there are no names, so each frame is its module and the address
//! inside it, and those addresses are right — `addr2line` on the unstripped
//! binary turns the first one back into `deref`'s line in csrc/crash.c.

use std::path::PathBuf;
use std::process::Command;

/// A stripped copy of the crash binary, in a fresh temporary directory.
fn stripped_copy() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cgocheck-crash-stripped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join("crash-stripped");
    let st = Command::new("objcopy")
        .arg("--strip-all")
        .arg(env!("CARGO_BIN_EXE_crash"))
        .arg(&dst)
        .status()
        .expect("objcopy (binutils) is needed to strip a binary");
    assert!(st.success(), "objcopy --strip-all failed");
    dst
}

#[test]
fn a_stripped_binary_reports_module_offsets() {
    let exe = stripped_copy();
    let out = c_tests::harness::watched_output(Command::new(&exe).arg("c").env_remove("GOTRACEBACK"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = std::fs::remove_dir_all(exe.parent().unwrap());
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("SIGSEGV: segmentation violation\nPC=0x"), "{err}");
    assert!(!err.contains("crash.c"), "no source lines without DWARF:\n{err}");

    let frames: Vec<&str> =
        err.lines().skip_while(|l| !l.starts_with("thread ")).skip(1).take_while(|l| !l.is_empty()).collect();
    // deref, crash_in_c and the managed callers, all in the executable.
    let in_exe: Vec<&str> =
        frames.iter().filter(|l| l.starts_with(&format!("\t{}+0x", exe.display()))).copied().collect();
    assert!(in_exe.len() >= 4, "{err}");
    assert_eq!(frames[0], "??", "{err}");

    // The first frame's module offset is deref's faulting instruction.
    let off = in_exe[0].split_whitespace().next().unwrap().rsplit_once('+').unwrap().1;
    let a2l = Command::new("addr2line")
        .arg("-e")
        .arg(env!("CARGO_BIN_EXE_crash"))
        .arg(off)
        .output()
        .expect("addr2line (binutils)");
    let line = String::from_utf8_lossy(&a2l.stdout).into_owned();
    let src = include_str!("../csrc/crash.c");
    let deref_line = 1 + src.lines().position(|l| l.contains("return *p;")).unwrap();
    assert!(line.trim_end().ends_with(&format!("csrc/crash.c:{deref_line}")), "addr2line {off}: {line}\n{err}");
}
