/*
 * A stack overflow on a thread C created that has called back into managed
 * code (src/bin/crash.rs, case `c_thread_overflow`).
 *
 * The thread calls the exported managed function `crashCallbackNoop` once:
 * that binds it an extra M (and, with it, an alternate signal stack). Back
 * in C it recurses until its stack runs out. Without an alternate stack
 * the kernel has nowhere to put the SIGSEGV frame and the process dies
 * with a bare SIGSEGV; with one, the runtime reports the overflow with the
 * thread's frames.
 *
 * The thread gets a small stack (256 KiB) so that the overflow comes
 * quickly. `c_recurse` keeps a 1 KiB volatile buffer per frame and uses
 * it after the recursive call, so the optimiser can make it neither a
 * loop nor a tail call; `stop_recursion` (never set) gives it an exit, so
 * the compiler does not warn about infinite recursion.
 *
 * `call_back_on_c_threads` first runs threads that call back once and
 * exit, one after another: each binds an extra M (and an alternate stack)
 * and releases it as it exits, which must give the stack back.
 *
 * In a file of its own: only the crash binary defines
 * `crashCallbackNoop`, and the static library gives a binary this object
 * only when it calls `overflow_on_c_thread_after_callback`.
 */
#include <pthread.h>
#include <stddef.h>

extern void crashCallbackNoop(void);

volatile int stop_recursion;

__attribute__((noinline)) int c_recurse(int depth) {
    volatile char pad[1024];
    if (stop_recursion) {
        return 0;
    }
    pad[depth % 1024] = (char)depth;
    return c_recurse(depth + 1) + pad[0];
}

static void *overflow_thread_main(void *arg) {
    (void)arg;
    crashCallbackNoop();
    c_recurse(0);
    return NULL;
}

static void *call_back_once(void *arg) {
    (void)arg;
    crashCallbackNoop();
    return NULL;
}

/* Runs `n` threads one after another, each calling back once; returns 0,
 * or -1 if a thread could not be made. */
int call_back_on_c_threads(int n) {
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, call_back_once, NULL) != 0 || pthread_join(t, NULL) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Starts the thread and waits for it (forever: the overflow ends the
 * process). */
int overflow_on_c_thread_after_callback(void) {
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, 256 * 1024) != 0) {
        return -1;
    }
    if (pthread_create(&t, &attr, overflow_thread_main, NULL) != 0) {
        return -1;
    }
    pthread_join(t, NULL);
    return 0;
}
