#include "base/assert.h"

#include <stdio.h>
#include <stdlib.h>

static void (*assert_hook)(void *ctx);
static void *assert_hook_ctx;

void craft_assert_set_hook(void (*hook)(void *ctx), void *ctx)
{
    assert_hook = hook;
    assert_hook_ctx = ctx;
}

_Noreturn void craft_assert_fail(const char *cond, const char *file, int line, const char *func)
{
    fflush(stdout);
    fprintf(stderr, "craft: assertion failed: %s (%s:%d, %s)\n", cond, file, line, func);
    if (assert_hook != NULL) {
        void (*hook)(void *) = assert_hook;
        assert_hook = NULL; /* A failing hook must not recurse. */
        hook(assert_hook_ctx);
    }
    fflush(stderr);
    abort();
}
