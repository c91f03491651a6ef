/* Leadership transfer (thesis 3.10). */
#include "core/internal.h"

int craft_core_transfer_leadership(struct craft_core *core, uint64_t target, uint64_t now)
{
    core_enter(core, now);
    (void)target;
    return CRAFT_ENOTLEADER; /* under construction */
}
