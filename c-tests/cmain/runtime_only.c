/* A C program that links the runtime alone, libcgocheck_capi.a (the crate
 * runtime/capi), and uses only the C ABI of cgocheck.h: no managed function
 * of its own. It shows the header and the library link and work on their own:
 *
 *     cargo build --release -p cgocheck-capi
 *     cc -std=c11 -Wall -Wextra -Werror -pthread -Iruntime/include \
 *        c-tests/cmain/runtime_only.c target/release/libcgocheck_capi.a \
 *        -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o /tmp/runtime_only
 *
 * It prints "main" first, then starts the runtime by asking for the level,
 * prints "level N", checks that a second start is a no-op, and prints
 * "ok". c-tests/tests/callback_cmain.rs runs it. */
#include <stdio.h>
#include <stdlib.h>

#include "cgocheck.h"

int main(void) {
    printf("main\n");
    fflush(stdout);
    int level = cgocheck_level();
    printf("level %d\n", level);
    if (cgocheck_init() != 0) {
        fprintf(stderr, "runtime_only.c: FAILED: cgocheck_init() after cgocheck_level() started the runtime again\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
