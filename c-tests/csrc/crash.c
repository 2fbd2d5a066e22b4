/*
 * The C half of the crash-report cases (src/bin/crash.rs).
 *
 * The shape is Go's anchor program (shared/anchors/go/crash.go.txt): a NULL
 * dereference two C frames deep, `deref` called by `crash_in_c`. Both are
 * kept out of line and the pointer hidden behind a volatile, so that the
 * optimiser neither inlines the frames away nor turns the known-NULL load
 * into a trap instruction: the report must show two real C frames, each
 * with its file and line, and the fault must be a SIGSEGV at address 0.
 *
 * Also here: the same crash on a thread this C code creates itself (one
 * the runtime never saw), and the other fatal signals (abort, an integer
 * division by zero).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

__attribute__((noinline)) int deref(int *p) {
    return *p;
}

__attribute__((noinline)) int crash_in_c(void) {
    int *volatile p = NULL;
    return deref(p) + 1;
}

static void *crash_thread_main(void *arg) {
    (void)arg;
    crash_in_c();
    return NULL;
}

/* Starts a plain pthread that crashes, and waits for it (forever: the
 * crash ends the process). */
int crash_on_c_thread(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, crash_thread_main, NULL) != 0) {
        return -1;
    }
    pthread_join(t, NULL);
    return 0;
}

__attribute__((noinline)) void abort_in_c(void) {
    abort();
}

__attribute__((noinline)) int divide_in_c(int a, int b) {
    return a / b;
}
