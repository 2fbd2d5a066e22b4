/* C side of the managed -> C rows of the pointer-passing table, named as
 * in Go's cmd/cgo/internal/testerrors/ptr_test.go (f1, f3, ...) so the two
 * tables can be read side by side. Most functions do nothing: the rows test
 * what the call layer lets through to them, not what C does. The managed
 * halves are in c-tests/src/bin/ptrcases.rs, one case per row. */
#include <execinfo.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ptr1, ptr2, message */
struct s1 { int *p; };
void f1(struct s1 *ps) { (void)ps; }

/* ok1: a pointer to the int field of a struct that also holds a pointer */
void f3(int *p) { (void)p; }

/* ptrfield, ptrfieldok */
void f4(int **p) { (void)p; }
void f5(int **p) { (void)p; }

/* sliceok1, sliceptr1, sliceptr2, sliceok2 */
void f6(void **p) { (void)p; }
void f7(void **p) { (void)p; }
void f8(void **p) { (void)p; }
void f9(void **p) { (void)p; }

/* sliceok3; extent-known and extent-unknown use it too */
void f10(void *p) { (void)p; }

/* varok */
void f12(char **parg) { (void)parg; }

/* barrier, barrierpinnedok: C memory that managed code stores into */
char **f14a(void) { return malloc(sizeof(char *)); }
void f14b(char **p) { free(p); }

/* barrierslice */
struct s16 { char *a[10]; };
struct s16 *f16(void) { return malloc(sizeof(struct s16)); }
void f16b(struct s16 *p) { free(p); }

/* barriergcprogarray: large enough that Go describes it with a GC program */
struct s17 { char *a[32769]; };
struct s17 *f17(void) { return malloc(sizeof(struct s17)); }
void f17b(struct s17 *p) { free(p); }

/* barriergcprogstruct */
struct s19a { char *a[32769]; };
struct s19b { struct s19a f; };
struct s19b *f19(void) { return malloc(sizeof(struct s19b)); }
void f19b(struct s19b *p) { free(p); }

/* passstring: Go's string header, by value, both ways */
typedef struct { const char *p; ptrdiff_t n; } gostring23;
gostring23 f23(gostring23 s) { return s; }

/* ptrdata1 */
void f26(void *p) { (void)p; }

/* defer1 */
struct s28 { int *p; };
void f28(struct s28 *ps) { (void)ps; }

/* preemptduringcall */
void f30(void) {}

/* chanrecv */
void f32(char **p) { (void)p; }

/* structfield */
void f33(void *p) { (void)p; }

/* buffer */
void f36(void *p) { (void)p; }

/* union2: a union without pointer fields */
union u39 { unsigned long i; };
void f39(union u39 *pu) { (void)pu; }

/* stringdata, slicedata2, arraypointer, argmap */
void f41(void *p) { (void)p; }
void f43(void *p) { (void)p; }
void f44(void *p) { (void)p; }
void f46(void *p) { (void)p; }

/* Reads a managed byte through the pointer it is given, so a correct call
 * visibly reaches C (the tour, the typed-call tests). */
int ct_read_byte(const unsigned char *p) { return *p; }

/* Takes a backtrace inside C with glibc's backtrace() (which unwinds with
 * the CFI of every frame, C and Rust alike) and copies up to n return
 * addresses to buf; returns how many. Proves the unwinder can walk from a
 * C frame back through the call layer into the managed caller. */
int ct_backtrace(void **buf, int n) { return backtrace(buf, n); }

/* The rows of the checker's own gaps (stack, global, field-of-element,
 * end-pointer, never-allocated): C really reads what it is given. */

/* Sums n bytes at p: a byte buffer C reads (stack_buffer_hinted). */
long ct_sum_bytes(const void *p, size_t n) {
    const unsigned char *b = p;
    long sum = 0;
    for (size_t i = 0; i < n; i++) sum += b[i];
    return sum;
}

/* zlib's shape: an input cursor that ends one past the input consumed. */
struct ct_stream { const unsigned char *next_in; unsigned avail_in; unsigned total_in; };

/* Consumes the whole input: reads it, adds it up, leaves next_in at its
 * end (exactly where zlib leaves it) and returns the sum. */
long ct_stream_consume(struct ct_stream *s) {
    long sum = 0;
    while (s->avail_in > 0) {
        sum += *s->next_in++;
        s->avail_in--;
        s->total_in++;
    }
    return sum;
}

/* Looks at a stream whose input is consumed: the byte before next_in. */
int ct_stream_last(struct ct_stream *s) { return s->total_in ? s->next_in[-1] : -1; }
