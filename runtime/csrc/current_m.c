/* The M running on each thread (runtime/src/sched/m.rs), kept in C for
 * one reason: its TLS access. Rust's thread_local! in a library is reached
 * through a call the compiler saves every argument register around; this
 * variable is reached from inline assembly through its TLS descriptor
 * (sched/m.rs, current_m_inline; arch/x86_64.rs, asmcgocall), which the
 * linker turns into one load from the thread pointer in an executable and
 * which still works in a library loaded with dlopen. Nothing else lives
 * here. */
__thread const void *cgocheck_current_m;
