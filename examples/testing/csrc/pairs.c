/* A tiny C library for the cargo-test example: one function that reads
   through a pointer inside a struct it is given (so the struct must hold
   no unpinned managed pointer), one that sums an int array. */
#include <stddef.h>

struct pair {
    int *p;
    int n;
};

int pair_get(const struct pair *pp) { return *pp->p + pp->n; }

long sum_ints(const int *xs, size_t n) {
    long s = 0;
    for (size_t i = 0; i < n; i++) {
        s += xs[i];
    }
    return s;
}
