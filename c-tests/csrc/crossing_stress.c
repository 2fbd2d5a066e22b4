/* C side of the crossing protocol's stress test
 * (c-tests/tests/crossing_stress.rs): a call that returns at once, a call
 * that stays in C long enough to be retaken, a call that calls back on the
 * calling thread, and threads C creates that call back in a loop until told
 * to stop. GoXsCallback is defined by that test binary; nothing else links
 * this file's object. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* Returns a + b: the shortest round trip into C. */
int64_t ct_xs_add(int64_t a, int64_t b) { return a + b; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Stays in C, running (no system call but the clock's vDSO), for `ns`
 * nanoseconds; returns how many times it looked at the clock. */
int64_t ct_xs_spin_ns(int64_t ns) {
    uint64_t end = now_ns() + (uint64_t)ns;
    int64_t looks = 1;
    while (now_ns() < end) looks++;
    return looks;
}

/* Managed code: checks the crossing invariants and returns seed + 1. */
extern int64_t GoXsCallback(int64_t seed);

/* Calls back `n` times from the calling (managed) thread; returns the
 * number of calls that answered seed + 1. */
int64_t ct_xs_callback(int64_t seed, int n) {
    int64_t ok = 0;
    for (int i = 0; i < n; i++) ok += GoXsCallback(seed + i) == seed + i + 1;
    return ok;
}

/* Threads created by C, calling back until stopped. */
#define XS_MAX_THREADS 16
static pthread_t xs_threads[XS_MAX_THREADS];
static int64_t xs_ok[XS_MAX_THREADS], xs_calls[XS_MAX_THREADS];
static int xs_nthreads;
static atomic_int xs_stop;

static void *xs_loop(void *arg) {
    long i = (long)arg;
    int64_t seed = (int64_t)i << 40;
    while (!atomic_load(&xs_stop)) {
        xs_ok[i] += GoXsCallback(seed) == seed + 1;
        xs_calls[i]++;
        seed++;
    }
    return 0;
}

/* Starts `n` threads; returns 0, or -1 if one could not be created. */
int ct_xs_threads_start(int n) {
    if (n < 0 || n > XS_MAX_THREADS) return -1;
    atomic_store(&xs_stop, 0);
    xs_nthreads = 0;
    for (long i = 0; i < n; i++) {
        xs_ok[i] = xs_calls[i] = 0;
        if (pthread_create(&xs_threads[i], 0, xs_loop, (void *)i) != 0) return -1;
        xs_nthreads++;
    }
    return 0;
}

/* Stops and joins the threads; returns the number of callbacks they made
 * (and stores how many answered right at *ok), or -1 if a thread could not
 * be joined. */
int64_t ct_xs_threads_stop(int64_t *ok) {
    atomic_store(&xs_stop, 1);
    int64_t calls = 0, good = 0;
    for (int i = 0; i < xs_nthreads; i++) {
        if (pthread_join(xs_threads[i], 0) != 0) return -1;
        calls += xs_calls[i];
        good += xs_ok[i];
    }
    *ok = good;
    return calls;
}
