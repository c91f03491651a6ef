/* Linearizable reads (thesis 6.4): ReadIndex, lease reads, follower reads. */
#include "core/internal.h"

int craft_core_read_index(struct craft_core *core, uint64_t ctx, uint64_t now)
{
    core_enter(core, now);
    (void)ctx;
    return CRAFT_ENOTLEADER; /* under construction */
}

int craft_core_read_lease(struct craft_core *core, uint64_t now, uint64_t *index)
{
    core_enter(core, now);
    (void)index;
    return CRAFT_ENOTLEADER; /* under construction */
}
