/* cgocheck.h: the C side of the cgocheck runtime.
 *
 * A C test binary links one static library that contains the runtime: a
 * Rust crate of crate-type "staticlib" that depends on `cgocheck` and
 * defines the managed functions C calls with `cgocheck::export!` (or the
 * runtime alone, libcgocheck_capi.a from the crate runtime/capi, when there
 * are none). Link only one such library per program: each carries its own
 * copy of Rust's standard library.
 *
 *     cc -I<cgocheck>/runtime/include main.c libmycrate.a \
 *        -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o main
 *
 * Exported functions start the runtime themselves on their first call, from
 * any thread, even when several threads race to be first; nothing needs to
 * be called before them. Run the binary with CGOCHECK=0, 1 (default) or 2.
 * A check that fails prints the report to stderr and ends the program with
 * exit status 2.
 */
#ifndef CGOCHECK_H
#define CGOCHECK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts the runtime if it has not started. Returns 1 if this call started
 * it, 0 if it was already running. Thread-safe and idempotent. Optional:
 * exported functions do the same on their first call. */
int cgocheck_init(void);

/* The checking level in effect: 0, 1 or 2 (CGOCHECK, else
 * GODEBUG=cgocheck=N, else 1). Starts the runtime if needed. */
int cgocheck_level(void);

/* A Handle (Go's cgo.Handle) as C keeps it: a non-zero integer that names a
 * managed value. C stores it and passes it back to exported functions;
 * only managed code creates, resolves and deletes handles. */
typedef uintptr_t cgocheck_handle;

/* A managed string by value (cgocheck::GcStr, Go's string): bytes, not
 * NUL-terminated, and their count. Managed memory: C may read it during the
 * call but must not keep the pointer. */
typedef struct {
    const char *p;
    ptrdiff_t n;
} cgocheck_string;

/* A managed slice by value (cgocheck::GcSlice<T>, Go's []T). */
typedef struct {
    void *data;
    ptrdiff_t len;
    ptrdiff_t cap;
} cgocheck_slice;

#ifdef __cplusplus
}
#endif

#endif /* CGOCHECK_H */
