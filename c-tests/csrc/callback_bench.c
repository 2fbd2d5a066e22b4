/* C side of the callback benchmarks (c-tests/src/bin/bench.rs), the same C
 * as shared/anchors/go/bench.go's preamble: callGo calls the exported
 * goCallback once; callGoFromThread makes one thread that calls it n times,
 * so thread creation is amortised over n. goCallback is defined by the bench
 * binary with cgocheck::export!. */
#include <pthread.h>

extern void goCallback(void);

void ct_bench_call_go(void) { goCallback(); }

static void *call_go_n(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) goCallback();
    return NULL;
}

int ct_bench_call_go_from_thread(long n) {
    pthread_t t;
    if (pthread_create(&t, NULL, call_go_n, (void *)n) != 0) return -1;
    return pthread_join(t, NULL);
}
