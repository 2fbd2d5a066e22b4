/* C side of the callback cases (c-tests/src/bin/callbacks.rs): real C that
 * calls managed functions exported with cgocheck::export!, from the thread
 * that called into C and from threads C creates itself. The Go* functions
 * are defined by the callbacks binary; nothing else links this file's
 * object (a static archive member is only pulled in when referenced). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "cgocheck.h"

/* Exported by callbacks.rs. */
extern unsigned char *GoFn21(void);
extern void *GoFn22(void);
extern unsigned char *GoFn21Pinned(void);
extern void *GoMap47(void);
extern int64_t GoHandleValue(cgocheck_handle h);
extern int64_t GoCount(int64_t thread);
extern int64_t GoHoldLock(int64_t thread);
extern void GoPanic(void);
extern int GoNoCallback(void);

/* Rows export1, exportpinned: C calls an exported function that returns a
 * pointer and reads through it, as C keeping a result would. */
int ct_call_gofn21(void) { return *GoFn21(); }
int ct_call_gofn21_pinned(void) { return *GoFn21Pinned(); }

/* Row exportok: the exported function returns C memory; C frees it. */
int ct_call_gofn22(void) {
    unsigned char *p = GoFn22();
    int v = *p;
    free(p);
    return v;
}

/* Row retmap: C receives a managed map it must never hold. */
int ct_call_gomap47(void) { return GoMap47() != NULL; }

/* Row handle: C keeps a Handle across calls and hands it back to managed
 * code in a callback. */
static cgocheck_handle kept;
void ct_cb_keep_handle(cgocheck_handle h) { kept = h; }
int64_t ct_cb_use_kept_handle(void) { return GoHandleValue(kept); }

/* Row cthread: `nthreads` threads created by C each call GoCount(i)
 * `ncalls` times (ct_cb_threads, below). */
struct counter_job {
    pthread_t thread;
    int64_t index;
    long ncalls;
    int64_t sum;
};

static void *count_calls(void *arg) {
    struct counter_job *job = arg;
    for (long i = 0; i < job->ncalls; i++) job->sum += GoCount(job->index);
    return NULL;
}

static void *hold_lock_calls(void *arg) {
    struct counter_job *job = arg;
    for (long i = 0; i < job->ncalls; i++) job->sum += GoHoldLock(job->index);
    return NULL;
}

/* Runs `nthreads` C threads, each calling `body` (GoCount or GoHoldLock)
 * with its own job; returns the sum of every result, or -1 if a thread
 * could not be created or joined. */
static int64_t run_threads(int nthreads, long ncalls, void *(*body)(void *)) {
    struct counter_job jobs[64];
    if (nthreads < 0 || nthreads > 64) return -1;
    for (int i = 0; i < nthreads; i++) {
        jobs[i] = (struct counter_job){.index = i, .ncalls = ncalls, .sum = 0};
        if (pthread_create(&jobs[i].thread, NULL, body, &jobs[i]) != 0) return -1;
    }
    int64_t total = 0;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_join(jobs[i].thread, NULL) != 0) return -1;
        total += jobs[i].sum;
    }
    return total;
}

int64_t ct_cb_threads(int nthreads, long ncalls) { return run_threads(nthreads, ncalls, count_calls); }

/* Row cthread_lock: `nthreads` C threads each call GoHoldLock(i) `ncalls`
 * times (it holds a Rust mutex for longer than a scheduling turn). */
int64_t ct_cb_lock_threads(int nthreads, long ncalls) { return run_threads(nthreads, ncalls, hold_lock_calls); }

/* Row nocallback: declared #[nocallback] on the managed side, and calls
 * back anyway. */
int ct_nocallback_calls_go(void) { return GoNoCallback(); }

/* A thread C creates calls an exported function that panics: there is no
 * managed caller to carry the panic to. */
static void *panic_thread(void *arg) {
    (void)arg;
    GoPanic();
    return NULL;
}
void ct_cb_panic_on_c_thread(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, panic_thread, NULL) == 0) pthread_join(t, NULL);
}

/* Row nested: managed -> C -> managed -> C -> managed. ct_nest calls
 * GoNest(depth); after GoNest returns it bumps ct_nest_after, which a
 * callback panic must skip (no C runs after the panic). */
extern int64_t GoNest(int64_t depth);
static volatile long nest_after;
int64_t ct_nest(int64_t depth) {
    int64_t r = GoNest(depth);
    nest_after++;
    return r + 1000;
}
long ct_nest_after(void) { return nest_after; }

/* A callback that works (allocates, spawns, joins, blocks) while its C
 * caller waits; C checks the value is what the managed side promised. */
extern int64_t GoWork(int64_t n);
int64_t ct_cb_work(int64_t n) {
    int64_t r = GoWork(n);
    return r;
}

/* A callback that blocks (a channel, a sleep) while its C caller waits. */
extern int64_t GoBlock(void);
int64_t ct_cb_block(void) { return GoBlock(); }
