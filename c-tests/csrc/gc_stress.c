/* C side of the collector's stress test (c-tests/tests/gc_stress.rs):
 * calls that read managed words, calls that block, calls that call back
 * into managed code, and threads C creates that call back in a loop until
 * told to stop. GoGcsBuild is defined by that test binary; nothing else
 * links this file's object. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* Sums `n` words. */
uint64_t ct_gcs_sum(const uint64_t *w, long n) {
    uint64_t s = 0;
    for (long i = 0; i < n; i++) s += w[i];
    return s;
}

/* Blocks for `us` microseconds. */
void ct_gcs_sleep_us(long us) {
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Managed code builds and checks a structure from `seed`; returns 1 when it
 * verified. */
extern int64_t GoGcsBuild(int64_t seed);

/* Calls back `n` times from the calling (managed) thread; returns the
 * number of calls that reported success. */
int64_t ct_gcs_callback(int64_t seed, int n) {
    int64_t ok = 0;
    for (int i = 0; i < n; i++) ok += GoGcsBuild(seed + i);
    return ok;
}

/* Threads created by C, calling back until stopped. */
#define MAX_THREADS 16
static pthread_t threads[MAX_THREADS];
static int64_t thread_ok[MAX_THREADS], thread_calls[MAX_THREADS];
static int nthreads;
static atomic_int stop;

static void *thread_loop(void *arg) {
    long i = (long)arg;
    int64_t seed = (int64_t)i << 40;
    while (!atomic_load(&stop)) {
        thread_ok[i] += GoGcsBuild(seed++);
        thread_calls[i]++;
    }
    return 0;
}

/* Starts `n` threads; returns 0, or -1 if one could not be created. */
int ct_gcs_threads_start(int n) {
    if (n < 0 || n > MAX_THREADS) return -1;
    atomic_store(&stop, 0);
    nthreads = 0;
    for (long i = 0; i < n; i++) {
        thread_ok[i] = thread_calls[i] = 0;
        if (pthread_create(&threads[i], 0, thread_loop, (void *)i) != 0) return -1;
        nthreads++;
    }
    return 0;
}

/* Stops and joins the threads; returns the number of calls they made, or
 * -1 if a thread could not be joined. */
static int64_t ok_total;
int64_t ct_gcs_threads_stop(void) {
    atomic_store(&stop, 1);
    int64_t calls = 0;
    ok_total = 0;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_join(threads[i], 0) != 0) return -1;
        calls += thread_calls[i];
        ok_total += thread_ok[i];
    }
    return calls;
}

/* How many of those calls reported success. */
int64_t ct_gcs_threads_ok(void) { return ok_total; }
