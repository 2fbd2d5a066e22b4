/*
 * Go's second anchor shape (shared/anchors/go/crash.go.txt, `./crash
 * nested`): managed code calls `callback_then_crash`, which calls back into
 * the exported managed function `goBack`, which calls `crash_in_c`
 * (crash.c). The report must show the C frames of both C calls and the
 * managed frames between them, in call order, across both stack switches.
 *
 * In a file of its own: only the crash binary defines `goBack`, and the
 * static library gives a binary this object only when it calls
 * `callback_then_crash`.
 */
extern void goBack(void);

__attribute__((noinline)) void callback_then_crash(void) {
    goBack();
    /* Not reached: goBack crashes. Keeps the call from being a tail call,
     * so callback_then_crash keeps its frame. */
    __asm__ volatile("" ::: "memory");
}
