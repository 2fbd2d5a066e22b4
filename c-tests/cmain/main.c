/* A C program with its own main that calls managed functions: what a C
 * library author links to test C code against the runtime. The managed
 * functions are exported by src/lib.rs (this crate, built as the static
 * library libcgocheck_cmain.a, which contains the runtime); the runtime's own
 * C ABI is runtime/include/cgocheck.h. Nothing starts the runtime
 * explicitly: the first exported function called does.
 *
 * Build and run by hand, from the workspace root:
 *
 *     cargo build --release -p cgocheck-cmain
 *     cc -std=c11 -Wall -Wextra -Werror -pthread -Iruntime/include \
 *        c-tests/cmain/main.c target/release/libcgocheck_cmain.a \
 *        -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o /tmp/cmain
 *     CGOCHECK=1 /tmp/cmain basic
 *
 * c-tests/tests/callback_cmain.rs does the same and runs every scenario:
 *
 *   basic       exported functions called from main and from 8 threads;
 *               strings, slices and Handles across the boundary
 *   race        8 threads race to make the process's first call into the
 *               runtime; every one finds it started
 *   race-init   8 threads race on cgocheck_init(); exactly one starts it
 *   leak        an exported function returns an unpinned managed pointer:
 *               CGOCHECK=1 and 2 stop the program with the report
 *
 * Prints "ok" and exits 0 when every expectation holds; prints what failed
 * and exits 1 otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgocheck.h"

/* Exported by src/lib.rs with cgocheck::export!. */
extern int GoAdd(int a, int b);
extern int GoStarted(void);
extern int64_t GoCountCall(void);
extern int64_t GoStringLen(cgocheck_string s);
extern int64_t GoSumSlice(cgocheck_slice s);
extern cgocheck_handle GoNewHandle(int64_t v);
extern int64_t GoHandleValue(cgocheck_handle h);
extern void GoDeleteHandle(cgocheck_handle h);
extern unsigned char *GoLeak(void);

#define THREADS 8
#define CALLS_PER_THREAD 10000

static void expect(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "main.c: FAILED: %s\n", what);
        exit(1);
    }
}

static void start_threads(pthread_t *t, void *(*fn)(void *), void *args, size_t arg_size) {
    for (int i = 0; i < THREADS; i++)
        expect(pthread_create(&t[i], NULL, fn, (char *)args + i * arg_size) == 0, "pthread_create");
}

static void join_threads(pthread_t *t) {
    for (int i = 0; i < THREADS; i++) expect(pthread_join(t[i], NULL) == 0, "pthread_join");
}

/* ---- basic ---- */

struct handle_job {
    cgocheck_handle h;
    int64_t got;
};

static void *read_handle(void *arg) {
    struct handle_job *job = arg;
    job->got = GoHandleValue(job->h);
    return NULL;
}

static void *count_calls(void *arg) {
    (void)arg;
    for (int i = 0; i < CALLS_PER_THREAD; i++) GoCountCall();
    return NULL;
}

static int basic(void) {
    expect(GoAdd(40, 2) == 42, "GoAdd(40, 2) == 42 (the first call, which starts the runtime)");
    expect(cgocheck_init() == 0, "cgocheck_init() after an exported call finds the runtime started");

    const char *env = getenv("CGOCHECK");
    int want_level = env ? atoi(env) : 1;
    expect(cgocheck_level() == want_level, "cgocheck_level() is the CGOCHECK the program runs under");

    const char *text = "hello from C";
    cgocheck_string s = {text, (ptrdiff_t)strlen(text)};
    expect(GoStringLen(s) == 12, "a cgocheck_string passed by value arrives whole");

    int64_t a[5] = {1, 2, 3, 4, 100};
    cgocheck_slice sl = {a, 4, 5};
    expect(GoSumSlice(sl) == 10, "a cgocheck_slice passed by value arrives whole");

    /* A Handle kept by C, resolved from main and from another thread. */
    cgocheck_handle h = GoNewHandle(99);
    expect(h != 0, "a Handle is never 0");
    expect(GoHandleValue(h) == 99, "the Handle resolves from main");
    pthread_t t[THREADS];
    struct handle_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) jobs[i] = (struct handle_job){.h = h, .got = 0};
    start_threads(t, read_handle, jobs, sizeof jobs[0]);
    join_threads(t);
    for (int i = 0; i < THREADS; i++) expect(jobs[i].got == 99, "the Handle resolves from every thread");
    GoDeleteHandle(h);

    /* Many calls from threads C created. */
    start_threads(t, count_calls, jobs, sizeof jobs[0]);
    join_threads(t);
    expect(GoCountCall() == THREADS * CALLS_PER_THREAD + 1, "every call from every thread ran once");
    return 0;
}

/* ---- race: the first call into the runtime comes from 8 threads at once ---- */

static pthread_barrier_t barrier;

struct race_job {
    int started;
    int sum;
    int init;
};

static void *race_first_call(void *arg) {
    struct race_job *job = arg;
    pthread_barrier_wait(&barrier);
    job->started = GoStarted();
    job->sum = GoAdd(job->sum, 1);
    return NULL;
}

static int race(void) {
    pthread_t t[THREADS];
    struct race_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) jobs[i] = (struct race_job){.sum = i};
    expect(pthread_barrier_init(&barrier, NULL, THREADS) == 0, "pthread_barrier_init");
    start_threads(t, race_first_call, jobs, sizeof jobs[0]);
    join_threads(t);
    for (int i = 0; i < THREADS; i++) {
        expect(jobs[i].started == 1, "every racing thread's callback found the runtime started");
        expect(jobs[i].sum == i + 1, "every racing thread's callback ran");
    }
    expect(cgocheck_init() == 0, "after the race the runtime is started");
    return 0;
}

/* ---- race-init: 8 threads call cgocheck_init() at once ---- */

static void *race_init(void *arg) {
    struct race_job *job = arg;
    pthread_barrier_wait(&barrier);
    job->init = cgocheck_init();
    return NULL;
}

static int race_init_only(void) {
    pthread_t t[THREADS];
    struct race_job jobs[THREADS] = {{0}};
    expect(pthread_barrier_init(&barrier, NULL, THREADS) == 0, "pthread_barrier_init");
    start_threads(t, race_init, jobs, sizeof jobs[0]);
    join_threads(t);
    int starters = 0;
    for (int i = 0; i < THREADS; i++) starters += jobs[i].init;
    expect(starters == 1, "exactly one of the racing cgocheck_init() calls started the runtime");
    expect(GoStarted() == 1, "an exported function finds the runtime started");
    return 0;
}

/* ---- leak: the checker's report in a C program ---- */

static int leak(void) {
    unsigned char *p = GoLeak();
    printf("C kept a managed pointer %p holding %d\n", (void *)p, *p);
    return 0;
}

int main(int argc, char **argv) {
    const char *scenario = argc > 1 ? argv[1] : "";
    int status;
    if (strcmp(scenario, "basic") == 0)
        status = basic();
    else if (strcmp(scenario, "race") == 0)
        status = race();
    else if (strcmp(scenario, "race-init") == 0)
        status = race_init_only();
    else if (strcmp(scenario, "leak") == 0)
        status = leak();
    else {
        fprintf(stderr, "usage: %s basic|race|race-init|leak\n", argv[0]);
        return 3;
    }
    if (status == 0) printf("ok\n");
    return status;
}
