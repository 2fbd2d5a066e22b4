/* Deep recursion in callbacks from fresh C threads (the `stacks` binary,
 * tests/callback_deep_stacks.rs). Each thread calls one exported managed
 * function once and exits, so every callback runs on a C thread the
 * runtime has not seen before (its callback task and stack come from the
 * runtime's extra-M list, freed when the thread exits and reused by later
 * threads). */
#include <pthread.h>
#include <stdint.h>

extern int64_t GoRecurse(int64_t depth);
extern int64_t GoRecurseForever(void);

enum { MAX_BATCH = 16 };

struct deep_job {
    pthread_t thread;
    int64_t depth;
    int64_t result;
};

static void *deep_thread(void *arg) {
    struct deep_job *j = arg;
    j->result = GoRecurse(j->depth);
    return NULL;
}

/* `nthreads` threads, `batch` at a time, each calling GoRecurse(depth);
 * returns the sum of their results, or -1 if a thread could not start. */
int64_t ct_deep_callbacks(int nthreads, int batch, int64_t depth) {
    struct deep_job jobs[MAX_BATCH];
    int64_t total = 0;
    if (batch < 1 || batch > MAX_BATCH) return -1;
    for (int started = 0; started < nthreads; started += batch) {
        int n = nthreads - started < batch ? nthreads - started : batch;
        for (int i = 0; i < n; i++) {
            jobs[i] = (struct deep_job){.depth = depth, .result = 0};
            if (pthread_create(&jobs[i].thread, NULL, deep_thread, &jobs[i]) != 0) return -1;
        }
        for (int i = 0; i < n; i++) {
            if (pthread_join(jobs[i].thread, NULL) != 0) return -1;
            total += jobs[i].result;
        }
    }
    return total;
}

static void *forever_thread(void *arg) {
    (void)arg;
    GoRecurseForever();
    return NULL;
}

/* A fresh C thread whose callback recurses without end: the process dies
 * with the runtime's stack overflow report. */
void ct_deep_overflow(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, forever_thread, NULL) == 0) pthread_join(t, NULL);
}
