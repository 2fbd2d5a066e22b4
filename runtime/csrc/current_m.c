/* The M running on each thread (runtime/src/sched/m.rs), kept in C for
 * one reason: the TLS model. Rust's thread_local! in a library is reached
 * through the general-dynamic model, a call (which the linker may relax,
 * but the compiler has already saved every argument register around it);
 * a variable declared initial-exec is one load from the thread pointer
 * (fs:), which the C-call fast path reads from inline assembly
 * (sched/m.rs, current_m_inline). Nothing else lives here. */
__thread const void *cgocheck_current_m __attribute__((tls_model("initial-exec")));
