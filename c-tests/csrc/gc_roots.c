/* C side of the collector's liveness tests that involve C
 * (c-tests/tests/gc_roots_c.rs): a C call that blocks while the heap churns
 * and checks the managed words it was passed are intact at the end; C
 * keeping a pointer to a pinned object in a C global; C keeping a Handle
 * in a C global; a thread created by C calling an exported function that
 * holds a managed object across collections. GoGcHold is defined by that
 * test binary; nothing else links this file's object. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "cgocheck.h"

/* The hash both sides compute over pattern words: each word rotated in. */
static uint64_t hash_words(const uint64_t *w, int n) {
    uint64_t h = 0x12345678u;
    for (int i = 0; i < n; i++) h = ((h << 5) | (h >> 59)) ^ w[i];
    return h;
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Blocks for `ms` milliseconds, then hashes the `n` words at `w`: if the
 * object they belong to had been freed and reused meanwhile, the hash
 * differs from the one managed code computed before the call. */
uint64_t ct_gc_hold_and_hash(const uint64_t *w, int n, int ms) {
    sleep_ms(ms);
    return hash_words(w, n);
}

/* Blocks for `ms` milliseconds. */
void ct_gc_sleep_ms(int ms) { sleep_ms(ms); }

/* C keeps a pointer to managed words (legal while the object is pinned). */
static const uint64_t *kept_words;
void ct_gc_keep_words(const uint64_t *w) { kept_words = w; }
/* Hashes the first `n` kept words. */
uint64_t ct_gc_hash_kept(int n) { return hash_words(kept_words, n); }
/* Forgets the kept pointer. */
void ct_gc_forget_words(void) { kept_words = 0; }

/* C keeps a Handle (an integer) in a C global. */
static cgocheck_handle kept_handle;
void ct_gc_keep_handle(cgocheck_handle h) { kept_handle = h; }
cgocheck_handle ct_gc_kept_handle(void) { return kept_handle; }

/* A thread C creates calls GoGcHold(seed); returns its result, or -1 if the
 * thread could not be created or joined. */
extern int64_t GoGcHold(int64_t seed);
struct hold_job {
    int64_t seed;
    int64_t result;
};
static void *hold_thread(void *arg) {
    struct hold_job *job = arg;
    job->result = GoGcHold(job->seed);
    return 0;
}
int64_t ct_gc_callback_on_c_thread(int64_t seed) {
    struct hold_job job = {.seed = seed, .result = -1};
    pthread_t t;
    if (pthread_create(&t, 0, hold_thread, &job) != 0) return -1;
    if (pthread_join(t, 0) != 0) return -1;
    return job.result;
}
