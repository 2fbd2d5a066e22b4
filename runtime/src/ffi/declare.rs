//! `c_functions!`: checked wrappers over `extern "C"` declarations, as
//! cmd/cgo generates them for every `C.f` a Go file calls.
//!
//! For `fn add(a: c_int, b: c_int) -> c_int;` cmd/cgo writes a Go function
//! `_Cfunc_add` that packs the arguments into a frame and calls
//! `runtime.cgocall(_cgo_xxx_Cfunc_add, &frame)`; the C trampoline
//! `_cgo_xxx_Cfunc_add` unpacks the frame, calls `add` and stores the result
//! in the frame. Calls whose arguments need checks are first rewritten to
//! evaluate each argument once and call `_cgoCheckPointer` on it. The
//! macro generates the same parts, all inside one wrapper function named
//! like the C function:
//!
//! 1. the raw `extern "C"` declaration (a local item, so only the wrapper
//!    can call C directly);
//! 2. the argument frame, a `#[repr(C)]` struct with one field per argument
//!    and one for the result;
//! 3. the trampoline, an `unsafe extern "C" fn(*mut c_void)` that unpacks
//!    the frame, calls the C function and stores the result;
//! 4. the wrapper itself: its parameters are `impl Arg<P>` (see `args.rs`),
//!    so each argument is evaluated exactly once, by Rust, before the body
//!    runs; the body checks each one at the current `CGOCHECK` level, in
//!    order, and panics with the checker's whole message on the first
//!    violation (the panic names the caller's line: the wrapper is
//!    `#[track_caller]`); then it fills the frame and calls
//!    [`cgocall`](crate::cgocall::cgocall)`(trampoline, &mut frame,
//!    nocallback)`, which runs the trampoline on the M's g0 stack, and
//!    returns the result from the frame.
//!
//! The same block may declare C function pointer types
//! (`type BinOp = fn(a: c_int, b: c_int) -> c_int;`): a nullable,
//! `Copy`, one-word type (what C's `int (*)(int, int)` holds) whose
//! `call` method is checked and called exactly like a declared function;
//! calling a null one panics before anything else happens.
//!
//! Annotations, as Go's `#cgo nocallback` and `#cgo noescape` directives:
//!
//! - `#[nocallback]`: the C function promises not to call back into managed
//!   code. It is passed to `cgocall`, which records it on the M so that a
//!   callback from inside it fails loudly.
//! - `#[noescape]`: the C function promises not to keep any pointer it is
//!   given after it returns. Go uses this to keep the arguments off the heap
//!   (they need not escape). Rust has no escape analysis to relax — an
//!   argument is never moved to the heap by the layer — so it changes no
//!   behaviour here; it is recorded in the wrapper's documentation. The
//!   checks still run: `noescape` does not make passing an unpinned
//!   pointer to a pointer safe, in Go or here.
//!
//! Functions declared elsewhere — by a `-sys` crate — are called without
//! being declared again with [`c_call!`](crate::c_call)`(libz_sys::deflate(
//! strm, flush))`: the same checks and `cgocall`, by generic code
//! ([`CCall`], one impl per arity) whose parameter types come from the
//! function pointer itself. A parameter whose type is the `-sys` crate's
//! own struct takes a pointer to a local mirror of it ([`foreign`]; the
//! mirror is `#[derive(CType)] #[ctype(mirror = "..")]`, checked against
//! the foreign layout at compile time), since the orphan rule keeps
//! anyone but that crate from describing its types.
//!
//! Wrappers are `unsafe fn` unless declared `safe fn` inside an
//! `unsafe extern "C"` block (Rust 2024's syntax for the same promise): the
//! checks catch the pointer-passing mistakes the rules name, not a C
//! function's own preconditions.

/// Declares C functions (and C function pointer types) and generates a
/// checked wrapper for each.
///
/// ```
/// use core::ffi::{c_int, c_long, c_void};
/// use cgocheck::{field, new, CType};
/// use std::panic::{catch_unwind, AssertUnwindSafe};
///
/// #[derive(CType)]
/// #[repr(C)]
/// struct Pair {
///     p: *mut c_int,
///     n: [u8; 8],
/// }
///
/// cgocheck::c_functions! {
///     extern "C" {
///         /// `int abs(int)` of the C library.
///         #[nocallback]
///         fn abs(x: c_int) -> c_int;
///         fn memset(p: *mut c_void, c: c_int, n: usize) -> *mut c_void;
///         /// C's `int (*)(int)`.
///         type IntFn = fn(x: c_int) -> c_int;
///     }
///     unsafe extern "C" {
///         /// Declared `safe`: called without `unsafe`.
///         safe fn labs(x: c_long) -> c_long;
///     }
/// }
///
/// cgocheck::run(|| {
///     // SAFETY: abs has no preconditions.
///     assert_eq!(unsafe { abs(-3) }, 3);
///     assert_eq!(labs(-4), 4);
///
///     let pair = new(Pair { p: new(1).as_ptr(), n: [1; 8] });
///     // Go's `C.memset(unsafe.Pointer(&pair.n), 0, 8)`: only the field is
///     // checked.
///     // SAFETY: the 8 bytes of `n`.
///     unsafe { memset(field(&pair.n).as_void(), 0, 8) };
///     assert_eq!(pair.n, [0; 8]);
///
///     // Go's `C.memset(unsafe.Pointer(pair), 0, 8)`: the whole object is
///     // checked, and its `p` is an unpinned managed pointer.
///     // SAFETY: never reached: the check panics first.
///     let whole = catch_unwind(AssertUnwindSafe(|| unsafe { memset(pair.as_ptr().cast(), 0, 8) }));
///     let msg = whole.unwrap_err().downcast::<String>().unwrap();
///     assert!(msg.starts_with("cgo argument has Go pointer to unpinned Go pointer"));
///     assert!(msg.contains("call:     memset, argument 1"));
///
///     // SAFETY: never reached: a null function pointer panics first.
///     let null = catch_unwind(|| unsafe { IntFn::null().call(1) });
///     assert!(null.is_err());
/// });
/// ```
///
/// Each argument is passed as anything that implements
/// [`Arg`](crate::ffi::Arg) for its parameter type: the value itself, or
/// for a pointer parameter a [`Gc`](crate::Gc), a
/// [`CPtr`](crate::ffi::CPtr), or a hinted pointer
/// ([`field`](crate::ffi::field), [`elem`](crate::ffi::elem), …).
/// Parameter types must be [`CType`](crate::CType)s and `Copy` (a C
/// function pointer parameter is an `Option<unsafe extern "C" fn(..)>`, as
/// bindgen writes it, or a declared `type`).
///
/// # Attributes
///
/// - on a block: `#[link(name = "m")]` (and any other attribute of an
///   `extern` block) is put on each declaration's `extern` block;
/// - on a function: `#[nocallback]`, `#[noescape]` (above);
///   `#[link_name = "sym"]` calls the C symbol `sym` through a wrapper of
///   another name; every other attribute (doc comments, `#[allow(..)]`,
///   `#[cfg(..)]`, `#[deprecated]`) is put on the wrapper.
///
/// C's names are kept as they are: the wrappers allow `non_snake_case`
/// (`sqlite3_exec(pDb, ..)`) and the pointer types `non_camel_case_types`
/// (`alloc_func`), so a `#![deny(warnings)]` crate declares C as it is
/// spelled (`build/tests/c_names.rs` compiles such a crate):
///
/// ```
/// use core::ffi::{c_int, c_void};
/// use std::ffi::c_double;
///
/// cgocheck::c_functions! {
///     #[link(name = "m")]
///     extern "C" {
///         /// libm's `cos`.
///         #[allow(clippy::doc_markdown)]
///         fn cos(Angle: c_double) -> c_double;
///         /// C's `abs` under another name.
///         #[link_name = "abs"]
///         fn c_abs(x: c_int) -> c_int;
///         type compar_fn = fn(pA: *const c_void, pB: *const c_void) -> c_int;
///     }
/// }
///
/// cgocheck::run(|| {
///     // SAFETY: neither has preconditions.
///     assert_eq!(unsafe { cos(0.0) }, 1.0);
///     assert_eq!(unsafe { c_abs(-7) }, 7);
///     assert!(compar_fn::null().is_null());
/// });
/// ```
///
/// # Variadic C functions are refused
///
/// As cmd/cgo refuses `C.printf`, a declaration with `...` does not compile,
/// and the error says what to do instead (a fixed-arity C wrapper):
///
/// ```compile_fail
/// use core::ffi::{c_char, c_int};
/// cgocheck::c_functions! {
///     extern "C" {
///         fn printf(fmt: *const c_char, ...) -> c_int;
///     }
/// }
/// ```
/// ```compile_fail
/// use core::ffi::{c_char, c_int};
/// cgocheck::c_functions! {
///     extern "C" {
///         type PrintFn = fn(fmt: *const c_char, ...) -> c_int;
///     }
/// }
/// ```
/// ```
/// use core::ffi::{c_char, c_int};
/// cgocheck::c_functions! {
///     extern "C" {
///         fn puts(s: *const c_char) -> c_int;
///     }
/// }
/// ```
#[macro_export]
macro_rules! c_functions {
    () => {};
    ($(#[$battr:meta])* $(unsafe)? extern "C" { $($items:tt)* } $($rest:tt)*) => {
        $crate::__c_items! { [$(#[$battr])*] $($items)* }
        $crate::c_functions! { $($rest)* }
    };
}

/// One declaration at a time: its attributes are sorted into the ones the
/// layer reads (`nocallback`, `noescape`) and the ones kept on the wrapper.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_items {
    ($block:tt) => {};
    ($block:tt $($items:tt)+) => {
        $crate::__c_item! { @attrs $block [] [] [false false] $($items)+ }
    };
}

/// What a wrapper passes as `cgocall`'s `nocallback`: the C function's name
/// when it is declared `#[nocallback]` (a promoted constant), else `None`.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_nocallback {
    (true $name:ident) => {
        ::core::option::Option::Some(&$crate::cgocall::NoCallback(::core::stringify!($name)))
    };
    (false $name:ident) => {
        ::core::option::Option::None
    };
}

/// One declaration: `$block` holds the block's attributes (`#[link(..)]`,
/// put on the inner `extern` block), `$decl` the item's `#[link_name]`
/// (put on the inner declaration), `$keep` the rest (docs, `#[allow]`,
/// `#[cfg]`: put on the wrapper), then the `nocallback`/`noescape` flags.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_item {
    (@attrs $block:tt $decl:tt [$($keep:tt)*] [$nc:tt $ne:tt] #[nocallback] $($rest:tt)*) => {
        $crate::__c_item! { @attrs $block $decl [$($keep)*] [true $ne] $($rest)* }
    };
    (@attrs $block:tt $decl:tt [$($keep:tt)*] [$nc:tt $ne:tt] #[noescape] $($rest:tt)*) => {
        $crate::__c_item! { @attrs $block $decl [$($keep)*] [$nc true] $($rest)* }
    };
    (@attrs $block:tt [$($decl:tt)*] $keep:tt $flags:tt #[link_name = $ln:literal] $($rest:tt)*) => {
        $crate::__c_item! { @attrs $block [$($decl)* #[link_name = $ln]] $keep $flags $($rest)* }
    };
    (@attrs $block:tt $decl:tt [$($keep:tt)*] $flags:tt #[$m:meta] $($rest:tt)*) => {
        $crate::__c_item! { @attrs $block $decl [$($keep)* #[$m]] $flags $($rest)* }
    };
    (@attrs $block:tt $decl:tt $keep:tt $flags:tt
        $vis:vis safe fn $name:ident ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?; $($rest:tt)*
    ) => {
        $crate::__c_fn! { $block $decl $keep $flags [$vis] [] $name ($($arg: $ty),*) [$($ret)?] }
        $crate::__c_items! { $block $($rest)* }
    };
    (@attrs $block:tt $decl:tt $keep:tt $flags:tt
        $vis:vis $(unsafe)? fn $name:ident ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?; $($rest:tt)*
    ) => {
        $crate::__c_fn! { $block $decl $keep $flags [$vis] [unsafe] $name ($($arg: $ty),*) [$($ret)?] }
        $crate::__c_items! { $block $($rest)* }
    };
    (@attrs $block:tt $decl:tt $keep:tt $flags:tt
        $vis:vis type $name:ident = $(unsafe)? $(extern "C")? fn ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?;
        $($rest:tt)*
    ) => {
        $crate::__c_fn_type! { $keep $flags [$vis] $name ($($arg: $ty),*) [$($ret)?] }
        $crate::__c_items! { $block $($rest)* }
    };
    // Variadic C functions (`...`), refused as cmd/cgo refuses them.
    (@attrs $block:tt $decl:tt $keep:tt $flags:tt
        $vis:vis $(unsafe)? $(safe)? fn $name:ident ($($arg:ident : $ty:ty,)* ...) $(-> $ret:ty)?; $($rest:tt)*
    ) => {
        $crate::__c_variadic! { $name }
    };
    (@attrs $block:tt $decl:tt $keep:tt $flags:tt
        $vis:vis type $name:ident = $(unsafe)? $(extern "C")? fn ($($arg:ident : $ty:ty,)* ...) $(-> $ret:ty)?;
        $($rest:tt)*
    ) => {
        $crate::__c_variadic! { $name }
    };
}

/// The refusal of a variadic C function or function pointer type.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_variadic {
    ($name:ident) => {
        ::core::compile_error!(::core::concat!(
            "c_functions!: `",
            ::core::stringify!($name),
            "` is variadic (`...`), and variadic C functions cannot be wrapped: the wrapper \
             could not know how many arguments, of which types, to check and pass (cmd/cgo \
             refuses to call them too). Write a C function with a fixed parameter list that \
             calls it (e.g. `int log_int(const char *fmt, int x) { return printf(fmt, x); }`), \
             compile it with the `cc` crate, and declare that one instead."
        ));
    };
}

/// The return type: the declared one, or `()`.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_ret {
    () => {
        ()
    };
    ($ret:ty) => {
        $ret
    };
}

/// The documentation line an annotation adds to its wrapper.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_annotation_doc {
    (false false) => {
        ""
    };
    (true false) => {
        "\n\n`#[nocallback]`: the C function does not call back into managed code; a callback from it panics."
    };
    (false true) => {
        "\n\n`#[noescape]`: the C function keeps no pointer it is given (documentation only; the checks run as usual)."
    };
    (true true) => {
        concat!(
            $crate::__c_annotation_doc!(true false),
            $crate::__c_annotation_doc!(false true)
        )
    };
}

/// The argument checks, in order: argument `pos` is `CallSite(name, pos)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_checks {
    ($name:expr; $pos:expr;) => {};
    ($name:expr; $pos:expr; $arg:ident : $ty:ty $(, $rarg:ident : $rty:ty)*) => {
        if let ::core::result::Result::Err(e) =
            $crate::ffi::Arg::<$ty>::check(&$arg, $crate::checker::CallSite::new($name, $pos))
        {
            $crate::ffi::fail(e);
        }
        $crate::__c_checks! { $name; $pos + 1; $($rarg: $rty),* }
    };
}

/// A declared C function's wrapper.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_fn {
    ([$($battr:tt)*] [$($decl:tt)*] [$($attr:tt)*] [$nc:tt $ne:tt] [$vis:vis] [$($unsafety:tt)?] $name:ident ($($arg:ident : $ty:ty),*) [$($ret:ty)?]) => {
        $($attr)*
        #[doc = $crate::__c_annotation_doc!($nc $ne)]
        #[track_caller]
        // C's names are the wrapper's: `sqlite3_exec(pDb, zSql, ..)`.
        #[allow(clippy::too_many_arguments, clippy::unused_unit, non_snake_case)]
        $vis $($unsafety)? fn $name($($arg: impl $crate::ffi::Arg<$ty>),*) -> $crate::__c_ret!($($ret)?) {
            $($battr)*
            extern "C" {
                $($decl)*
                fn $name($($arg: $ty),*) -> $crate::__c_ret!($($ret)?);
            }

            #[repr(C)]
            struct __CgoFrame {
                $($arg: $ty,)*
                __cgocheck_result: ::core::mem::MaybeUninit<$crate::__c_ret!($($ret)?)>,
            }

            unsafe extern "C" fn __cgocheck_trampoline(frame: *mut ::core::ffi::c_void) {
                // SAFETY: `cgocall` passes the frame the wrapper below built
                // and lent it exclusively for the call.
                let frame = unsafe { &mut *frame.cast::<__CgoFrame>() };
                // SAFETY: the arguments have the declared C types; the
                // declaration is the C function's prototype (the macro's
                // user vouches for it, as for any `extern "C"` block).
                let result = unsafe { $name($(frame.$arg),*) };
                frame.__cgocheck_result.write(result);
            }

            /// The call proper, the arguments converted: by registers
            /// when every parameter and the result travel in integer
            /// registers and there are at most five, straight to C
            /// (`ffi/regs.rs`); otherwise through the frame and the
            /// trampoline. Decided at compile time.
            #[inline(always)]
            #[track_caller]
            // With six or more parameters the register path's arm is an
            // `unreachable!` that is never taken.
            #[allow(unreachable_code)]
            unsafe fn __cgocheck_call($($arg: $ty),*) -> $crate::__c_ret!($($ret)?) {
                #[allow(unused_imports)]
                use $crate::ffi::regs::{Direct as _, ViaFrame as _};
                if $crate::__c_direct_ok!($($ty),*; $crate::__c_ret!($($ret)?)).is_some() {
                    // SAFETY: `$name` is the declared C function, and its
                    // arguments go in the registers its prototype puts them
                    // in.
                    let (__cgocheck_word, __cgocheck_what) =
                        unsafe { $crate::__c_direct_call!($nc $name; $($arg: $ty),*) };
                    if __cgocheck_what != $crate::cgocall::RETURNED {
                        // SAFETY: what `call_c` returned.
                        unsafe { $crate::cgocall::crossing_failed(__cgocheck_word, __cgocheck_what) }
                    }
                    // SAFETY: C returned a value of the declared result type
                    // in rax.
                    return unsafe { $crate::ffi::regs::from_reg(__cgocheck_word) };
                }
                let mut frame = __CgoFrame {
                    $($arg,)*
                    __cgocheck_result: ::core::mem::MaybeUninit::uninit(),
                };
                // SAFETY: the trampoline takes exactly a `__CgoFrame`, which
                // lives until `cgocall` returns.
                unsafe { $crate::cgocall::cgocall(__cgocheck_trampoline, (&raw mut frame).cast(), $crate::__c_nocallback!($nc $name)) };
                // SAFETY: `cgocall` returned normally, so the trampoline ran
                // and wrote the result.
                unsafe { frame.__cgocheck_result.assume_init() }
            }

            /// `CGOCHECK=2`: records who lent C what (`ffi/lend.rs`), then
            /// calls. Out of line, so that the usual call keeps nothing
            /// across calls of its own.
            #[cold]
            #[inline(never)]
            #[track_caller]
            unsafe fn __cgocheck_lend_and_call($($arg: $ty),*) -> $crate::__c_ret!($($ret)?) {
                let mut __cgocheck_pos = 0u32;
                $(
                    __cgocheck_pos += 1;
                    $crate::ffi::lend::lend_arg::<$ty>(::core::stringify!($name), __cgocheck_pos, &$arg);
                )*
                let _ = __cgocheck_pos;
                $crate::ffi::lend::before_c_call();
                // SAFETY: as for the wrapper's own call.
                unsafe { __cgocheck_call($($arg),*) }
            }

            $crate::__c_checks! { ::core::stringify!($name); 1; $($arg: $ty),* }
            $(let $arg: $ty = $crate::ffi::Arg::<$ty>::into_c($arg);)*
            if $crate::ffi::lend::recording() {
                // SAFETY: the wrapper's caller vouches for the call.
                return unsafe { __cgocheck_lend_and_call($($arg),*) };
            }
            // SAFETY: the wrapper's caller vouches for the call (or the
            // declaration is `safe`).
            unsafe { __cgocheck_call($($arg),*) }
        }
    };
}

/// Whether a declared function takes the register path (`ffi/regs.rs`):
/// `Some(_)` when it has at most five parameters and every parameter type
/// and the result type travel in integer registers.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_direct_ok {
    (@count [$($all:ty),*] $a:ty, $b:ty, $c:ty, $d:ty, $e:ty, $f:ty $(, $more:ty)*; $ret:ty) => {
        ::core::option::Option::None::<bool>
    };
    (@count [$($all:ty),*] $($few:ty),*; $ret:ty) => {
        if true $(&& (&$crate::ffi::regs::Probe::<$all>::NEW).reg().is_some())* {
            (&$crate::ffi::regs::Probe::<$ret>::NEW).reg()
        } else {
            ::core::option::Option::None
        }
    };
    ($($ty:ty),*; $ret:ty) => {
        $crate::__c_direct_ok!(@count [$($ty),*] $($ty),*; $ret)
    };
}

/// The register path's call: `call_c` with each argument widened to its
/// register word, unused registers 0, and the `nocallback` declaration.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_direct_call {
    ($nc:tt $name:ident; $($arg:ident : $ty:ty),*) => {
        $crate::__c_direct_call!(@words $nc $name; []; $($arg: $ty),*)
    };
    (@words $nc:tt $name:ident; [$($w:expr),*]; $arg:ident : $ty:ty $(, $rarg:ident : $rty:ty)*) => {
        $crate::__c_direct_call!(@words $nc $name; [$($w,)* $crate::ffi::regs::to_reg::<$ty>(
            $arg,
            (&$crate::ffi::regs::Probe::<$ty>::NEW).reg() == ::core::option::Option::Some(true)
        )]; $($rarg: $rty),*)
    };
    (@words $nc:tt $name:ident; [$($w:expr),*];) => {
        $crate::__c_direct_call!(@pad $nc $name; [$($w),*])
    };
    (@pad $nc:tt $name:ident; [$a:expr, $b:expr, $c:expr, $d:expr, $e:expr]) => {
        $crate::cgocall::call_c(
            $name as usize,
            [$a, $b, $c, $d, $e],
            $crate::cgocall::nocallback_ptr($crate::__c_nocallback!($nc $name)),
        )
    };
    // Six or more: `__c_direct_ok!` said no, so this is never run.
    (@pad $nc:tt $name:ident; [$a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $($more:expr),+]) => {
        ::core::unreachable!("cgocheck: six or more arguments take the frame path")
    };
    (@pad $nc:tt $name:ident; [$($w:expr),*]) => {
        $crate::__c_direct_call!(@pad $nc $name; [$($w,)* 0])
    };
}

/// A declared C function pointer type.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_fn_type {
    ([$($attr:tt)*] [$nc:tt $ne:tt] [$vis:vis] $name:ident ($($arg:ident : $ty:ty),*) [$($ret:ty)?]) => {
        $($attr)*
        #[doc = $crate::__c_annotation_doc!($nc $ne)]
        #[repr(transparent)]
        #[derive(Clone, Copy)]
        // C's names: `alloc_func`.
        #[allow(non_camel_case_types)]
        $vis struct $name(::core::option::Option<unsafe extern "C" fn($($ty),*) -> $crate::__c_ret!($($ret)?)>);

        impl $name {
            /// A pointer to the C function `f`.
            pub const fn new(f: unsafe extern "C" fn($($ty),*) -> $crate::__c_ret!($($ret)?)) -> Self {
                $name(::core::option::Option::Some(f))
            }

            /// The null function pointer.
            pub const fn null() -> Self {
                $name(::core::option::Option::None)
            }

            /// Whether this is the null function pointer.
            pub const fn is_null(self) -> bool {
                self.0.is_none()
            }

            /// The function pointer at a C address (from `dlsym`, a C
            /// table of callbacks); null gives the null pointer.
            ///
            /// # Safety
            /// A non-null `addr` must be the address of a C function with
            /// this type's prototype.
            pub unsafe fn from_addr(addr: *const ::core::ffi::c_void) -> Self {
                // SAFETY: an `Option` of a function pointer has the layout of
                // a nullable pointer; the caller vouches for the prototype.
                $name(unsafe { ::core::mem::transmute::<*const ::core::ffi::c_void, _>(addr) })
            }

            /// Calls the function: the arguments are checked and the call
            /// made exactly as for a declared C function. Panics, before
            /// checking anything, when the pointer is null.
            ///
            /// # Safety
            /// The C function's own preconditions hold.
            #[track_caller]
            #[allow(clippy::too_many_arguments, clippy::unused_unit, non_snake_case)]
            pub unsafe fn call(self, $($arg: impl $crate::ffi::Arg<$ty>),*) -> $crate::__c_ret!($($ret)?) {
                #[repr(C)]
                struct __CgoFrame {
                    __cgocheck_fn: unsafe extern "C" fn($($ty),*) -> $crate::__c_ret!($($ret)?),
                    $($arg: $ty,)*
                    __cgocheck_result: ::core::mem::MaybeUninit<$crate::__c_ret!($($ret)?)>,
                }

                unsafe extern "C" fn __cgocheck_trampoline(frame: *mut ::core::ffi::c_void) {
                    // SAFETY: `cgocall` passes the frame `call` built and lent
                    // it exclusively for the call.
                    let frame = unsafe { &mut *frame.cast::<__CgoFrame>() };
                    // SAFETY: the function has this prototype (`new` /
                    // `from_addr`'s contract); the caller of `call` vouches
                    // for its preconditions.
                    let result = unsafe { (frame.__cgocheck_fn)($(frame.$arg),*) };
                    frame.__cgocheck_result.write(result);
                }

                let ::core::option::Option::Some(f) = self.0 else {
                    $crate::ffi::null_function(::core::stringify!($name))
                };
                $crate::__c_checks! { ::core::stringify!($name); 1; $($arg: $ty),* }
                let mut frame = __CgoFrame {
                    __cgocheck_fn: f,
                    $($arg: $crate::ffi::Arg::<$ty>::into_c($arg),)*
                    __cgocheck_result: ::core::mem::MaybeUninit::uninit(),
                };
                // SAFETY: the trampoline takes exactly a `__CgoFrame`, which
                // lives until `cgocall` returns.
                unsafe { $crate::cgocall::cgocall(__cgocheck_trampoline, (&raw mut frame).cast(), $crate::__c_nocallback!($nc $name)) };
                // SAFETY: `cgocall` returned normally, so the trampoline ran
                // and wrote the result.
                unsafe { frame.__cgocheck_result.assume_init() }
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.0 {
                    ::core::option::Option::Some(p) => ::core::write!(f, "{}({:p})", ::core::stringify!($name), p as *const ()),
                    ::core::option::Option::None => ::core::write!(f, "{}(null)", ::core::stringify!($name)),
                }
            }
        }

        // SAFETY: one word, a C function's address or null (all zero, a
        // valid `None`); C code is never managed memory, and the checker
        // refuses a function word that points into managed memory.
        unsafe impl $crate::CType for $name {
            const TYPE: &'static $crate::Type = &$crate::Type {
                name: ::core::stringify!($name),
                size: ::core::mem::size_of::<$name>(),
                align: ::core::mem::align_of::<$name>(),
                ptrdata: $crate::WORD,
                kind: $crate::Kind::Func,
                ptrmask: $crate::checker::types::ONE_POINTER,
            };
        }
    };
}

/// Calls a C function declared elsewhere — a `-sys` crate's
/// (`libz_sys::deflate`) — through the same checks and `cgocall` as a
/// `c_functions!` wrapper, without declaring it again: the parameter types
/// are read from the function itself.
///
/// ```
/// use core::ffi::c_int;
/// mod sys {
///     // What a -sys crate declares.
///     extern "C" {
///         pub fn abs(x: core::ffi::c_int) -> core::ffi::c_int;
///         pub fn memset(p: *mut core::ffi::c_void, c: core::ffi::c_int, n: usize) -> *mut core::ffi::c_void;
///     }
/// }
///
/// cgocheck::run(|| {
///     // SAFETY: abs has no preconditions.
///     assert_eq!(unsafe { cgocheck::c_call!(sys::abs(-5)) }, 5);
///
///     #[derive(cgocheck::CType, Clone, Copy)]
///     #[repr(C)]
///     struct Pair { p: *mut u8, n: usize }
///     let pair = cgocheck::new(Pair { p: cgocheck::new(1u8).as_ptr(), n: 0 });
///     // The whole object is checked: its `p` is an unpinned managed pointer.
///     // SAFETY: never reached: the check panics first.
///     let r = std::panic::catch_unwind(|| unsafe { cgocheck::c_call!(sys::memset(pair.as_ptr().cast(), 0, 16)) });
///     let msg = r.unwrap_err().downcast::<String>().unwrap();
///     assert!(msg.starts_with("cgo argument has Go pointer to unpinned Go pointer"), "{msg}");
///     assert!(msg.contains("call:     memset, argument 1"), "{msg}");
/// });
/// ```
///
/// Each argument is anything that implements [`Arg`](crate::ffi::Arg) for
/// the function's parameter type, as for a declared wrapper. A parameter
/// whose type is the `-sys` crate's own struct (`*mut z_stream`) takes a
/// pointer to a local mirror of it, [`foreign`](crate::ffi::foreign)`(p)`:
/// see `#[ctype(mirror = "..")]` on `derive(CType)`. The call is `unsafe`
/// (it is a C call: the C function's preconditions are the caller's), and a
/// failed check panics from the caller's line. Up to 12 arguments.
#[macro_export]
macro_rules! c_call {
    ($($seg:ident)::+ ( $($arg:expr),* $(,)? )) => {{
        // The function pointer's type is fixed first (a `let` coerces at
        // once), so the parameter types are the function's before the
        // arguments are typed (an integer literal becomes a `usize` for a
        // `size_t` parameter, not an `i32`).
        let f: unsafe extern "C" fn($($crate::__c_infer!($arg)),*) -> _ = $($seg)::+;
        $crate::ffi::CCall::call(($($arg,)*), f, $crate::ffi::c_name(::core::any::type_name_of_val(&$($seg)::+)))
    }};
}

/// The C name in a function item's type name (`libz_sys::deflate` →
/// `deflate`), for the checker's `call:` line.
#[doc(hidden)]
pub fn c_name(type_name: &'static str) -> &'static str {
    type_name.rfind("::").map_or(type_name, |i| &type_name[i + 2..])
}

/// `_`, once per argument: the parameter types `c_call!` leaves to
/// inference.
#[doc(hidden)]
#[macro_export]
macro_rules! __c_infer {
    ($arg:expr) => {
        _
    };
}

/// A call of a C function pointer `F` with the arguments `Self` (a tuple):
/// what [`c_call!`](crate::c_call) expands to.
pub trait CCall<F> {
    /// The C function's result.
    type Output;

    /// Checks each argument against its parameter type (position from 1,
    /// in the message as `name, argument i`), then calls `f` through
    /// `cgocall`.
    ///
    /// # Safety
    /// `f` is a C function with this prototype, and its preconditions hold.
    unsafe fn call(self, f: F, name: &'static str) -> Self::Output;
}

macro_rules! c_call_arity {
    ($($x:ident $a:ident $v:ident)*) => {
        impl<R, $($a, $x: crate::ffi::Arg<$a>),*> CCall<unsafe extern "C" fn($($a),*) -> R> for ($($x,)*) {
            type Output = R;

            #[track_caller]
            #[allow(unused_mut, unused_variables, unused_assignments, non_snake_case)]
            unsafe fn call(self, f: unsafe extern "C" fn($($a),*) -> R, name: &'static str) -> R {
                /// The argument frame: the function, its arguments, its result.
                struct Frame<R, $($a),*> {
                    f: unsafe extern "C" fn($($a),*) -> R,
                    args: Option<($($a,)*)>,
                    result: core::mem::MaybeUninit<R>,
                }

                unsafe extern "C" fn trampoline<R, $($a),*>(frame: *mut core::ffi::c_void) {
                    // SAFETY: `cgocall` passes the frame `call` built, lent
                    // exclusively for the call.
                    let frame = unsafe { &mut *frame.cast::<Frame<R, $($a),*>>() };
                    let ($($v,)*) = frame.args.take().expect("cgocheck: c_call frame unpacked twice");
                    // SAFETY: the caller of `call` vouches for the prototype
                    // and the preconditions.
                    let result = unsafe { (frame.f)($($v),*) };
                    frame.result.write(result);
                }

                let ($($v,)*) = self;
                let mut pos = 1;
                $(
                    if let Err(e) = crate::ffi::Arg::<$a>::check(&$v, cgocheck_checker::CallSite::new(name, pos)) {
                        crate::ffi::fail(e);
                    }
                    pos += 1;
                )*
                let ($($v,)*) = ($(crate::ffi::Arg::<$a>::into_c($v),)*);
                if crate::ffi::lend::recording() {
                    // CGOCHECK=2: who lent C what (`ffi/lend.rs`).
                    let mut pos = 0u32;
                    $(
                        pos += 1;
                        crate::ffi::lend::lend_untyped_arg::<$a>(name, pos, &$v);
                    )*
                    crate::ffi::lend::before_c_call();
                }
                let mut frame = Frame::<R, $($a),*> {
                    f,
                    args: Some(($($v,)*)),
                    result: core::mem::MaybeUninit::uninit(),
                };
                // SAFETY: the trampoline takes exactly this frame type, which
                // lives until `cgocall` returns.
                unsafe { crate::cgocall::cgocall(trampoline::<R, $($a),*>, (&raw mut frame).cast(), None) };
                // SAFETY: `cgocall` returned normally, so the trampoline ran
                // and wrote the result.
                unsafe { frame.result.assume_init() }
            }
        }
    };
}

c_call_arity!();
c_call_arity!(X1 A1 a1);
c_call_arity!(X1 A1 a1 X2 A2 a2);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5 X6 A6 a6);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5 X6 A6 a6 X7 A7 a7);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5 X6 A6 a6 X7 A7 a7 X8 A8 a8);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5 X6 A6 a6 X7 A7 a7 X8 A8 a8 X9 A9 a9);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5 X6 A6 a6 X7 A7 a7 X8 A8 a8 X9 A9 a9 X10 A10 a10);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5 X6 A6 a6 X7 A7 a7 X8 A8 a8 X9 A9 a9 X10 A10 a10 X11 A11 a11);
c_call_arity!(X1 A1 a1 X2 A2 a2 X3 A3 a3 X4 A4 a4 X5 A5 a5 X6 A6 a6 X7 A7 a7 X8 A8 a8 X9 A9 a9 X10 A10 a10 X11 A11 a11 X12 A12 a12);

/// A pointer to a managed mirror `M` (see `Mirror`), passed where C takes
/// a pointer to the foreign type `M::Foreign`: checked as the argument `X`
/// it wraps (by `M`'s descriptor), given to C cast to the foreign type.
/// Made by [`foreign`].
#[derive(Clone, Copy, Debug)]
pub struct Foreign<X, M> {
    arg: X,
    _mirror: core::marker::PhantomData<fn() -> M>,
}

/// Passes `arg` — a `Gc<M>`, a [`field`](crate::ffi::field) or other
/// hinted pointer to `M`, a raw `*mut M` — where C takes a pointer to `M`'s
/// foreign type (a `-sys` crate's `*mut z_stream`, `*mut *mut sqlite3`).
pub fn foreign<M: cgocheck_checker::types::Mirror, X: crate::ffi::Arg<*mut M>>(arg: X) -> Foreign<X, M> {
    Foreign { arg, _mirror: core::marker::PhantomData }
}

impl<M: cgocheck_checker::types::Mirror, X: crate::ffi::Arg<*mut M>> crate::ffi::Arg<*mut M::Foreign>
    for Foreign<X, M>
{
    #[inline(always)]
    fn check(&self, site: cgocheck_checker::CallSite) -> Result<(), cgocheck_checker::CheckError> {
        self.arg.check(site)
    }

    #[inline(always)]
    fn into_c(self) -> *mut M::Foreign {
        // `Mirror`'s contract: the same layout.
        self.arg.into_c().cast()
    }
}

impl<M: cgocheck_checker::types::Mirror, X: crate::ffi::Arg<*mut M>> crate::ffi::Arg<*const M::Foreign>
    for Foreign<X, M>
{
    #[inline(always)]
    fn check(&self, site: cgocheck_checker::CallSite) -> Result<(), cgocheck_checker::CheckError> {
        self.arg.check(site)
    }

    #[inline(always)]
    fn into_c(self) -> *const M::Foreign {
        self.arg.into_c().cast_const().cast()
    }
}
