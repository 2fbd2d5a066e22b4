/* The C side of the quarantine case keep_result (src/bin/quarantine.rs):
 * C keeps what an exported function returned. Its own file, because it
 * names the exported function, which only the quarantine binary defines. */
#include <stdint.h>

struct qrec;
extern struct qrec *QMakeRecord(int64_t id);
void q_keep(struct qrec *r);

/* Keeps the record QMakeRecord returns. */
void q_keep_result(void) {
    q_keep(QMakeRecord(7));
}
