//! Results of exported functions: Go's `cgoCheckResult`.
//!
//! A managed function that C calls (through the runtime's `export` macro)
//! returns a value to C, which may keep it. So the result is checked as a
//! value below the top level: any managed pointer in it, the result itself
//! included, must be pinned, and maps, channels and managed closures are
//! refused. Go's message names only the kind; ours names the exported
//! function and the path inside the result (`result`, `result.p`,
//! `result → .next`).

use crate::arg::{root_error, Walker};
use crate::error::{CheckError, Site};
use crate::memory::ManagedMemory;
use crate::types::Type;

/// Checks the result `value` of type `ty` that the exported function `func`
/// returns to C.
///
/// # Safety
/// `value` must point to a valid value of `ty`. Managed memory reached from
/// it is found and bounded through `mem`, which must answer truthfully.
pub unsafe fn check_result<M: ManagedMemory + ?Sized>(
    mem: &M,
    func: &'static str,
    ty: &Type,
    value: *const u8,
) -> Result<(), CheckError> {
    let w = Walker { mem };
    // SAFETY: the caller's contract.
    match unsafe { w.value(ty, value as usize, false) } {
        Ok(()) => Ok(()),
        // SAFETY: the caller's contract.
        Err(f) => Err(unsafe { root_error(mem, *f, Site::Result { func }, ty, value as usize) }),
    }
}
