/* What a follower shares across the leader's message types: accepting the sender as the
 * current leader. */
#include "core/internal.h"

bool core_accept_leader(struct craft_core *core, const struct craft_msg *m)
{
    if (core->role == CRAFT_LEADER) {
        /* Another leader in our own term: impossible with honest peers (election safety,
         * which the simulator checks globally). Refuse the message rather than follow. */
        TRACE(core, CRAFT_T_ELECT, "ignoring %s from %llu: I lead this term",
              craft_msg_type_name(m->type), (unsigned long long)m->from);
        return false;
    }
    if (core->role != CRAFT_FOLLOWER || core->leader != m->from) {
        core_become_follower(core, m->term, m->from);
    }
    core->leader_contact = true;
    core->leader_contact_at = core->now;
    core_reset_election_timer(core);
    return true;
}
