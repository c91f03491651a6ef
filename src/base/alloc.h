/* Allocation for the protocol core, through one hook a test can set to make allocations
 * fail (docs/design/core.md, "Out of memory"): the core's answer to a failed allocation is
 * to stop the node cleanly (craft_core_error), never an assertion, and only a failing
 * allocator proves it. The hook costs one predictable branch per allocation.
 *
 * The hook is global: set it before the cores it should affect run, and not while another
 * thread allocates through these functions (tests and the simulator only). */
#ifndef CRAFT_BASE_ALLOC_H
#define CRAFT_BASE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* malloc, calloc, realloc, unless the hook says this one fails: NULL then (realloc leaves
 * p as it was). */
void *craft_malloc(size_t n);
void *craft_calloc(size_t n, size_t size);
void *craft_realloc(void *p, size_t n);

/* fail(ctx) is asked before each allocation; true makes it fail. NULL: none (the default). */
void craft_alloc_set_hook(bool (*fail)(void *ctx), void *ctx);

#endif
