//! Exporting managed functions to C: the [`export!`](crate::export!) macro,
//! runtime start-up on the first call from C, and the result check.
//!
//! cmd/cgo turns `//export GoF` into a C function that packs its arguments
//! into a frame and calls `crosscall2(_cgoexp_GoF, frame, …)`; the managed
//! half unpacks the frame, calls `GoF`, checks the result with
//! `_cgoCheckResult` and stores it in the frame (seeds/002). `export!` makes
//! the same two halves from one Rust function:
//!
//! ```text
//! C caller
//!   └─ GoFn21            #[no_mangle] extern "C" shim, made by export!
//!        ├─ start()      once per process: a C main may call in first
//!        └─ cgocallback(trampoline, &mut frame)        callback.rs
//!             └─ trampoline(frame)   managed: refuse a nocallback caller,
//!                                    unpack args, run the body, check the
//!                                    result, store it in frame
//!   ◄─ the shim returns frame.result to C
//! ```
//!
//! A C function declared `#[nocallback]` (`c_functions!`) that calls an
//! exported function makes the trampoline panic before the body runs
//! ([`refuse_if_nocallback`], Go's check in `cgocallbackg`), at every level:
//! it is a broken promise, not a pointer check.
//!
//! As in Go, only the result is checked, never the arguments: C memory is
//! C's to point anywhere, and a managed pointer C passes back in was checked
//! when it crossed into C. The result is checked at the process's level
//! ([`crate::check::level`]) by [`check_result`] inside the trampoline, so a
//! violation is a managed panic with the checker's message, raised where the
//! callback path handles panics: it continues in the managed caller of the C
//! call, or is fatal (exit status 2) when there is none.
//!
//! The C ABI of the runtime itself (`cgocheck.h`) is in [`capi`].

pub mod capi;

use crate::callback::cgocallback;
use crate::check;
use crate::heap::heap;
use crate::sched::m::current_m;
use crate::sched::schedule::ensure_started;
use cgocheck_checker::CType;
use core::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::Once;

static START: Once = Once::new();

/// Starts the runtime if it has not started yet; returns whether this call
/// started it. Idempotent and safe to race: of any number of threads that
/// call it at once, exactly one does the work, and every caller returns only
/// after the work is done.
///
/// Starting reads the checking level (stopping the program with exit status
/// 2 on a bad `CGOCHECK`, as at Rust program start), reserves the managed
/// heap's address range, and starts the scheduler as `cgocheck::run` does
/// (`GOMAXPROCS` idle Ps, the monitor thread, the crash view and panic
/// hook). Every exported function calls this first, so a C `main` needs no
/// set-up call; `cgocheck_init()` is the same from C.
#[inline]
pub fn start() -> bool {
    if START.is_completed() {
        return false;
    }
    start_slow()
}

#[cold]
#[inline(never)]
fn start_slow() -> bool {
    let mut started = false;
    START.call_once(|| {
        check::level();
        heap().reserved_range();
        ensure_started();
        started = true;
    });
    started
}

/// Whether the runtime has started ([`start`] has completed once).
pub fn started() -> bool {
    START.is_completed()
}

/// What an exported function's shim does after packing its frame: start
/// the runtime if needed, then run `f(frame)` through [`cgocallback`].
/// Returns only if `f` returned (so `frame` holds the result).
///
/// # Safety
/// As [`cgocallback`]: `f` must be safe to call with `frame`.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn enter(f: unsafe fn(frame: *mut c_void), frame: *mut c_void) {
    start();
    // SAFETY: the caller's contract.
    unsafe { cgocallback(f, frame) }
}

/// Refuses a callback from a C function declared `nocallback` (Go's
/// `#cgo nocallback`): panics naming that C function and the exported
/// function it called. The first act of
/// every export trampoline, so it runs as managed code inside the callback
/// and the panic takes the callback path's panic route. On a thread that is
/// not an M (a thread C created) there is no C call of a task in progress,
/// so nothing to refuse.
#[inline]
#[track_caller]
pub fn refuse_if_nocallback(func: &'static str) {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    if let Some(m) = unsafe { current_m().as_ref() } {
        // SAFETY: a non-null pointer is the `&'static NoCallback` that the
        // current C call of this M recorded (cgocall.rs).
        if let Some(c) = unsafe { m.nocallback.load(Ordering::Relaxed).as_ref() } {
            nocallback_panic(c.0, func);
        }
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn nocallback_panic(c_function: &'static str, func: &'static str) -> ! {
    panic!(
        "runtime: function marked nocallback called back into managed code: the C function {c_function} was \
         declared #[nocallback] in c_functions!, and it called the exported function {func}"
    )
}

/// Checks the result `value` that the exported function `func` is about to
/// return to C (Go's `cgoCheckResult`) at the process's level, and panics
/// with the checker's message on a violation: `cgo result has Go pointer to
/// unpinned Go pointer`, naming `func` and the path inside the result.
/// Types with no pointer words are not looked at.
#[track_caller]
#[inline]
pub fn check_result<T: CType>(func: &'static str, value: &T) {
    if !T::TYPE.has_pointers() {
        return;
    }
    if let Err(e) = check::result(func, value) {
        panic!("{e}");
    }
    crate::ffi::lend::lend_result(func, value);
}

/// Makes managed functions callable from C.
///
/// ```
/// use core::ffi::c_int;
///
/// cgocheck::export! {
///     /// Called by C: `int GoAdd(int a, int b);`
///     pub fn GoAdd(a: c_int, b: c_int) -> c_int {
///         a + b
///     }
///
///     /// A function without a result: `void GoNothing(void);`
///     fn GoNothing() {}
/// }
///
/// // Each becomes a `#[no_mangle] extern "C"` function of the same name and
/// // signature, which C declares and calls (Rust can too).
/// assert_eq!(GoAdd(2, 3), 5);
/// GoNothing();
/// let f: extern "C" fn(c_int, c_int) -> c_int = GoAdd;
/// assert_eq!(f(40, 2), 42);
/// ```
///
/// Each item is `[attributes] [pub] fn Name(arg: Type, …) [-> Type] { body }`
/// with plain identifiers as parameters and C-compatible types (integers,
/// floats, raw pointers, `#[repr(C)]` values, [`Gc`](crate::Gc),
/// [`GcSlice`](crate::GcSlice), [`GcStr`](crate::GcStr)). The symbol's name
/// is the function's; C declares it itself (there is no generated header).
///
/// The generated `extern "C"` function starts the runtime if this is the
/// first call from C ([`export::start`](crate::export::start)), packs the
/// arguments into a frame and calls
/// [`cgocallback`](crate::callback::cgocallback), which runs the body as
/// managed code. A result type must implement [`CType`](crate::CType): the
/// result is checked with [`export::check_result`](crate::export::check_result)
/// before C sees it, so returning an unpinned managed pointer panics with
/// `cgo result has Go pointer to unpinned Go pointer` at `CGOCHECK=1` and 2.
/// Arguments are not checked (Go does not check them either). A call from a
/// C function declared `#[nocallback]` panics before the body runs. A panic
/// in the body never unwinds into C; see `callback.rs` for what happens
/// instead.
///
/// A crash or panic in the body is reported at the body's own line in the
/// user's file: the body is compiled as a function of its own
/// (`Name::__cgocheck_managed`), which the report names with that line.
/// The generated `extern "C"` shim, named after the export, is attributed
/// to this file, as Go attributes its `_cgoexp_` wrappers to
/// `_cgo_gotypes.go`. (Collapsing the shim's debug info onto the
/// `export!` call with `#[collapse_debuginfo(yes)]` does not apply: rustc
/// collapses no span of a function that the macro itself defines.)
#[macro_export]
macro_rules! export {
    () => {};
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $body:block
        $($rest:tt)*
    ) => {
        $crate::__export_fn! { [$(#[$attr])*] [$vis] $name [$($arg: $ty),*] [$ret] [check] $body }
        $crate::export! { $($rest)* }
    };
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) $body:block
        $($rest:tt)*
    ) => {
        $crate::__export_fn! { [$(#[$attr])*] [$vis] $name [$($arg: $ty),*] [()] [void] $body }
        $crate::export! { $($rest)* }
    };
}

/// One exported function (see [`export!`](crate::export!)). `check` or
/// `void` says whether there is a result to check.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_fn {
    ([$($attr:tt)*] [$vis:vis] $name:ident [$($arg:ident : $ty:ty),*] [$ret:ty] [$checks:ident] $body:block) => {
        $($attr)*
        // SAFETY (of `no_mangle`): the symbol is the function's own name,
        // which C calls it by; a clash with another symbol of that name is a
        // link error, not a silent replacement.
        #[unsafe(no_mangle)]
        $vis extern "C" fn $name($($arg: $ty),*) -> $ret {
            /// The managed function, as written.
            #[inline(always)]
            fn __cgocheck_managed($($arg: $ty),*) -> $ret $body

            /// The arguments going in and the result coming out, shared by
            /// the shim (C's side) and the trampoline (managed side).
            struct __CgocheckFrame {
                args: ::core::option::Option<($($ty,)*)>,
                result: ::core::mem::MaybeUninit<$ret>,
            }

            /// The managed half (cmd/cgo's `_cgoexp_…`): refuse a call from
            /// a `nocallback` C function, unpack, run, check, store the
            /// result.
            unsafe fn __cgocheck_trampoline(frame: *mut ::core::ffi::c_void) {
                $crate::export::refuse_if_nocallback(stringify!($name));
                // SAFETY: `frame` is the shim's `__CgocheckFrame`, passed
                // through cgocallback unchanged; the shim does not touch it
                // until this returns.
                let frame = unsafe { &mut *frame.cast::<__CgocheckFrame>() };
                let ($($arg,)*) = frame.args.take().expect("cgocheck: export frame unpacked twice");
                let result = __cgocheck_managed($($arg),*);
                $crate::__export_check!($checks, stringify!($name), &result);
                frame.result.write(result);
            }

            let mut frame = __CgocheckFrame {
                args: ::core::option::Option::Some(($($arg,)*)),
                result: ::core::mem::MaybeUninit::uninit(),
            };
            // SAFETY: the trampoline is made for exactly this frame type, and
            // `frame` lives on this stack until the call returns.
            unsafe {
                $crate::export::enter(
                    __cgocheck_trampoline,
                    (&mut frame as *mut __CgocheckFrame).cast::<::core::ffi::c_void>(),
                )
            };
            // SAFETY: `enter` returns only if the trampoline returned, and
            // the trampoline's last act is writing the result.
            unsafe { frame.result.assume_init() }
        }
    };
}

/// The result check of one exported function: `check` runs
/// [`check_result`], `void` (no result) nothing.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_check {
    (check, $func:expr, $value:expr) => {
        $crate::export::check_result($func, $value)
    };
    (void, $func:expr, $value:expr) => {{
        let _: &() = $value;
    }};
}
