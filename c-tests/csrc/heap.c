/* C side of the heap cases: real C code that reads and writes managed memory
 * it is handed, keeps integers (Handles) across calls, and reads managed
 * globals. Called from c-tests/src/heap_cases.rs with plain extern "C" calls
 * (the typed call layer comes in a later issue). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct point3 { int64_t x, y, z; };

/* Reads a managed struct through the pointer it was given. */
int64_t ct_sum_point(const struct point3 *p) { return p->x + p->y + p->z; }

/* Fills a managed byte buffer: buf[i] = (seed + i) mod 256. */
void ct_fill_bytes(unsigned char *buf, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(seed + i);
}

/* Walks a managed singly linked list {next, value} and sums the values. */
struct node { struct node *next; int64_t value; };
int64_t ct_sum_list(const struct node *n) {
    int64_t s = 0;
    for (; n; n = n->next) s += n->value;
    return s;
}

/* Compares a managed string (pointer + length, not NUL-terminated). */
int ct_string_equals(const char *p, size_t n, const char *want) {
    return strlen(want) == n && memcmp(p, want, n) == 0;
}

/* A C library that keeps an opaque integer between calls, the way C code
 * keeps a cgo.Handle. */
static uintptr_t kept_handle;
void ct_keep_handle(uintptr_t h) { kept_handle = h; }
uintptr_t ct_kept_handle(void) { return kept_handle; }
