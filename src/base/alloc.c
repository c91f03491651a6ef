/* The core's allocation hook (alloc.h). */
#include "base/alloc.h"

#include <stdlib.h>

static bool (*fail_fn)(void *ctx);
static void *fail_ctx;

void craft_alloc_set_hook(bool (*fail)(void *ctx), void *ctx)
{
    fail_fn = fail;
    fail_ctx = ctx;
}

static bool fails(void)
{
    return fail_fn != NULL && fail_fn(fail_ctx);
}

void *craft_malloc(size_t n)
{
    return fails() ? NULL : malloc(n);
}

void *craft_calloc(size_t n, size_t size)
{
    return fails() ? NULL : calloc(n, size);
}

void *craft_realloc(void *p, size_t n)
{
    return fails() ? NULL : realloc(p, n);
}
