//! The main executable's path, found once at start.
//!
//! A report names each frame's module, and the symboliser reads the DWARF
//! of those modules and is this very executable started again. Shared
//! objects are named by the loader itself (`cgocheck_traceback::module_of`
//! reads their link map's `l_name`), but the loader records no name for
//! the main executable. Its path is therefore found here, in the start-up
//! constructor (before any handler is installed, where allocating is
//! fine), and kept for the crash handler, the symboliser's `execve` and
//! panic reports:
//!
//! 1. `/proc/self/exe`, the kernel's link to the file actually running
//!    (right even if the program was started through a symbolic link, or
//!    changes directory later);
//! 2. without `/proc` (a container or chroot that does not mount it), the
//!    name the kernel handed the loader (`AT_EXECFN`, the path given to
//!    `execve`), made absolute against the working directory at start.
//!
//! If both fail, the path is empty: frames of the executable then print
//! without a module name and the symboliser cannot start (the report is
//! printed unsymbolised).

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static EXE: OnceLock<CString> = OnceLock::new();

/// Finds the path; see the file comment. Called once, at start.
pub(super) fn find_at_start() {
    EXE.get_or_init(|| {
        let path = std::fs::read_link("/proc/self/exe").or_else(|_| from_execfn()).unwrap_or_default();
        CString::new(path.into_os_string().into_encoded_bytes()).unwrap_or_default()
    });
}

/// `AT_EXECFN`, absolute (resolved against the working directory, so a
/// later `chdir` does not change it).
fn from_execfn() -> std::io::Result<PathBuf> {
    // SAFETY: getauxval has no preconditions; AT_EXECFN's value, when not
    // 0, is the address of a NUL-terminated string on the initial stack,
    // which lives as long as the process.
    let name = unsafe { libc::getauxval(libc::AT_EXECFN) } as *const libc::c_char;
    if name.is_null() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    // SAFETY: as above.
    let name = Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes()));
    std::fs::canonicalize(name)
}

/// The path (empty if it was not found or [`find_at_start`] has not run).
/// An atomic load: safe in a signal handler.
pub(super) fn path() -> &'static CStr {
    EXE.get().map_or(c"", CString::as_c_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execfn_names_the_running_test_binary() {
        let via_execfn = from_execfn().expect("AT_EXECFN");
        assert_eq!(via_execfn, std::env::current_exe().unwrap().canonicalize().unwrap());
    }
}
