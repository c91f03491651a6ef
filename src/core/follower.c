/* What a follower shares across the leader's message types: accepting the sender as the
 * current leader. */
#include "core/internal.h"

void core_accept_leader(struct craft_core *core, const struct craft_msg *m)
{
    /* Election safety: two leaders in one term would be a broken invariant. */
    CRAFT_ASSERT(core->role != CRAFT_LEADER);
    if (core->role != CRAFT_FOLLOWER || core->leader != m->from) {
        core_become_follower(core, m->term, m->from);
    }
    core->leader_contact = true;
    core->leader_contact_at = core->now;
    core_reset_election_timer(core);
}
