/* C side of the call benchmarks (c-tests/src/bin/bench.rs), the shapes of
 * shared/anchors/go/bench.go: two ints, one pointer to a 64-byte object
 * holding one pointer field, and an untyped pointer into a big array. They
 * do nothing, so a benchmark measures the crossing and its checks. */
#include <stdint.h>

int ct_add(int a, int b) { return a + b; }

typedef struct { void *p; int64_t a[7]; } obj64; /* 64 bytes, one pointer word */
void ct_take(obj64 *o) { (void)o; }

void ct_takebig(void *p) { (void)p; }

/* A C library handing out function pointers (the null-pointer row calls
 * through the second one). */
typedef int (*binop)(int, int);
binop ct_get_add(void) { return ct_add; }
binop ct_get_null(void) { return 0; }
