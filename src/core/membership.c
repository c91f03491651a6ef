/* Configuration changes (thesis chapter 4). */
#include "core/internal.h"

int craft_core_propose_conf_change(struct craft_core *core, const struct craft_conf_change *changes,
                                   size_t n, bool joint, uint64_t now, uint64_t *index,
                                   uint64_t *term)
{
    core_enter(core, now);
    (void)changes, (void)n, (void)joint, (void)index, (void)term;
    return CRAFT_ENOTLEADER; /* under construction */
}

int craft_core_leave_joint(struct craft_core *core, uint64_t now, uint64_t *index, uint64_t *term)
{
    core_enter(core, now);
    (void)index, (void)term;
    return CRAFT_ENOTLEADER; /* under construction */
}
