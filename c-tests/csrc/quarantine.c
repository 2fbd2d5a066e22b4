/* The C side of the CGOCHECK=2 quarantine cases (src/bin/quarantine.rs):
 * a C library that keeps a pointer it was lent, as C libraries do (a
 * callback's context, a parser's current node), and uses it later.
 * Keeping it is Go's rule 2 broken when the object is not pinned. */
#include <stdint.h>
#include <stdlib.h>

struct qrec {
    int64_t id;
    int64_t value;
    struct qrec *next;
};

static struct qrec *kept;

/* Stores the pointer it receives in a C global, and returns. */
void q_keep(struct qrec *r) {
    kept = r;
}

/* The address q_keep kept. */
uintptr_t q_kept_addr(void) {
    return (uintptr_t)kept;
}

/* Reads through the kept pointer. */
int64_t q_read_kept(void) {
    return kept->value;
}

/* Writes through the kept pointer. */
void q_write_kept(int64_t v) {
    kept->value = v;
}

/* Follows the kept record's next pointer: a pointer loaded from the kept
 * object, then used. */
int64_t q_read_kept_next(void) {
    return kept->next->id;
}

/* A record in C memory, to link from a managed one. */
struct qrec *q_c_record(int64_t id) {
    struct qrec *r = calloc(1, sizeof *r);
    r->id = id;
    return r;
}
