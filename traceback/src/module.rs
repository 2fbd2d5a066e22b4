//! Which loaded module a code address belongs to, without a lock.
//!
//! glibc's `_dl_find_object` (2.35+) answers, for any address, the module
//! mapping it: its link map (load bias `l_addr` and file name `l_name`),
//! the end of its mapping, and its `PT_GNU_EH_FRAME` segment (the
//! `.eh_frame_hdr` binary search table over its CFI). glibc documents it as
//! async-signal-safe and lock-free — it was added for unwinders — unlike
//! `dl_iterate_phdr`, which takes the loader's lock that a thread crashing
//! inside `dlopen` would hold.
//!
//! It is looked up once with `dlsym` by [`init`] (dlsym itself is not
//! signal-safe, so this happens at start, not at crash time). Without it
//! (another libc, an older glibc, or `init` never called) [`module_of`]
//! answers `None`: the unwinder falls back to frame pointers and frames
//! print as bare addresses.
//!
//! The load bias is what is added to an address in the module's own
//! address space (its ELF virtual addresses, what `addr2line -e` and the
//! DWARF speak) to get the address in this process: zero for a non-PIE
//! executable, the ASLR base for PIE executables and shared objects.

use core::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// glibc's `struct dl_find_object` on the 64-bit targets without
/// `dlfo_eh_dbase` / `dlfo_eh_count` (x86_64, aarch64).
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: *mut c_void,
    map_end: *mut c_void,
    link_map: *const LinkMap,
    eh_frame: *mut c_void,
    reserved: [u64; 7],
}

/// The public head of glibc's `struct link_map` (`<link.h>`).
#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
    l_ld: *mut c_void,
    l_next: *mut LinkMap,
    l_prev: *mut LinkMap,
}

type FindObjectFn = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> i32;

/// `_dl_find_object`, or 0 when unavailable.
static FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// Looks up `_dl_find_object` once. Call it at program start, outside any
/// signal handler; calling it again is harmless.
pub fn init() {
    if FIND_OBJECT.load(Ordering::Acquire) != 0 {
        return;
    }
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name; the result
    // is either null or the address of the function of that name.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
    FIND_OBJECT.store(f as usize, Ordering::Release);
}

/// A loaded module, as `_dl_find_object` describes it.
#[derive(Clone, Copy, Debug)]
pub struct ModuleInfo {
    /// The load bias: runtime address minus the module's own address.
    pub bias: usize,
    /// Whether this is the main executable (whose link map has no name).
    pub main: bool,
    /// The file name as the loader recorded it (empty for the main
    /// executable); NUL-terminated, owned by the loader.
    name: *const c_char,
    /// Start of the module's `.eh_frame_hdr` in memory, or 0.
    pub eh_frame_hdr: usize,
    /// End of the module's mapping.
    pub map_end: usize,
}

impl ModuleInfo {
    /// The loader's file name of the module (empty for the main
    /// executable, `linux-vdso.so.1` for the vDSO). It lives in the
    /// loader's memory until the module is unloaded (`dlclose`).
    pub fn name(&self) -> &'static [u8] {
        if self.name.is_null() {
            return b"";
        }
        // SAFETY: `l_name` is a NUL-terminated string owned by the loader
        // for as long as the module stays loaded.
        unsafe { CStr::from_ptr(self.name) }.to_bytes()
    }
}

/// The module containing code address `addr`. Async-signal-safe.
pub fn module_of(addr: usize) -> Option<ModuleInfo> {
    let f = FIND_OBJECT.load(Ordering::Acquire);
    if f == 0 || addr == 0 {
        return None;
    }
    // SAFETY: `f` is glibc's `_dl_find_object` (set by `init` from dlsym).
    let find: FindObjectFn = unsafe { core::mem::transmute::<usize, FindObjectFn>(f) };
    let mut out = core::mem::MaybeUninit::<DlFindObject>::zeroed();
    // SAFETY: `out` is writable and sized for the structure glibc fills.
    if unsafe { find(addr as *mut c_void, out.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: `_dl_find_object` returned 0, so it filled `out`.
    let out = unsafe { out.assume_init() };
    if out.link_map.is_null() {
        return None;
    }
    // SAFETY: a non-null link map from the loader, alive while the module is.
    let lm = unsafe { &*out.link_map };
    // SAFETY: as above, `l_name` is the loader's NUL-terminated string.
    let main = lm.l_name.is_null() || unsafe { *lm.l_name } == 0;
    Some(ModuleInfo {
        bias: lm.l_addr,
        main,
        name: lm.l_name,
        eh_frame_hdr: out.eh_frame as usize,
        map_end: out.map_end as usize,
    })
}
