/*
 * The C half of the fatal-path cases of src/bin/crash.rs (tests in
 * tests/crash_fatal_paths.rs):
 *
 * - managed functions exported with `cgocheck::export!` called with no
 *   managed caller: from the main thread before the runtime runs anything
 *   (as a C `main` would) and from a thread this code creates; the one
 *   that panics must be reported in full and must end the process without
 *   running this file's `atexit` handler;
 * - an exported function whose body crashes, for the report's lines;
 * - `cgocheck::stack_dump` called back from C (C frames in the dump), and
 *   `stats().tasks` read by a callback on a thread this code creates;
 * - a C crash reporter's SIGABRT handler, installed before the runtime
 *   starts (a priority constructor runs before the plain `.init_array`
 *   entry that starts the runtime, when CRASH_FATAL_EARLY_SIGABRT=1) or
 *   after (from the case itself): at GOTRACEBACK=crash it must get control.
 *   One handler exits with status 0, the other returns;
 * - a profiler's SIGPROF handler installed before the runtime
 *   (CRASH_FATAL_EARLY_SIGPROF=1), which must keep getting its signals.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exported by src/bin/crash.rs. */
void GoPanicNoCaller(void);
void GoCrashInBody(void);
void GoDumpStacks(void);
void GoCountTasks(void);

static void say(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void atexit_ran(void) {
    say("crash_fatal: atexit handler ran\n");
}

void crash_fatal_register_atexit(void) {
    atexit(atexit_ran);
}

/* The exported function called from this thread with no managed caller. */
__attribute__((noinline)) void crash_fatal_call_panicking_export(void) {
    GoPanicNoCaller();
}

static void *panic_thread(void *arg) {
    (void)arg;
    crash_fatal_call_panicking_export();
    return NULL;
}

/* A thread of ours calls the panicking export; waits for it (forever: the
 * panic ends the process). */
int crash_fatal_panic_on_c_thread(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, panic_thread, NULL) != 0) {
        return -1;
    }
    pthread_join(t, NULL);
    return 0;
}

__attribute__((noinline)) void crash_fatal_call_crashing_export(void) {
    GoCrashInBody();
}

/* Calls the export that dumps the stacks, one C frame deep. */
__attribute__((noinline)) void crash_fatal_dump_from_c(void) {
    GoDumpStacks();
}

static void *count_thread(void *arg) {
    (void)arg;
    GoCountTasks();
    return NULL;
}

/* A thread of ours calls GoCountTasks once; 0 once it has, -1 if the
 * thread could not be created. */
int crash_fatal_count_on_c_thread(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, count_thread, NULL) != 0) {
        return -1;
    }
    pthread_join(t, NULL);
    return 0;
}

static void abrt_exit0(int sig) {
    (void)sig;
    say("crash_fatal: C handler caught SIGABRT, exiting 0\n");
    _exit(0);
}

static void abrt_return(int sig) {
    (void)sig;
    say("crash_fatal: C handler caught SIGABRT, returning\n");
}

static void install(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);
}

/* Installs a SIGABRT handler now: one that exits 0, or one that returns. */
void crash_fatal_catch_abort(int returns) {
    install(returns ? abrt_return : abrt_exit0);
}

/* Whether SIGABRT's handler is this file's exiting one. */
int crash_fatal_abort_handler_is_ours(void) {
    struct sigaction sa;
    sigaction(SIGABRT, NULL, &sa);
    return sa.sa_handler == abrt_exit0;
}

/* SIGPROFs counted by a profiler's handler installed before the runtime. */
static volatile sig_atomic_t profs;

static void count_prof(int sig) {
    (void)sig;
    profs++;
}

int crash_fatal_profs(void) {
    return profs;
}

static int asked(const char *var) {
    const char *v = getenv(var);
    return v != NULL && strcmp(v, "1") == 0;
}

__attribute__((constructor(101))) static void install_before_the_runtime(void) {
    if (asked("CRASH_FATAL_EARLY_SIGABRT")) {
        install(abrt_exit0);
    }
    if (asked("CRASH_FATAL_EARLY_SIGPROF")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = count_prof;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPROF, &sa, NULL);
    }
}
