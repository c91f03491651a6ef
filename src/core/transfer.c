/* Leadership transfer (thesis 3.10): the leader stops accepting proposals, brings the
 * target's log up to date, then tells it to campaign at once (TIMEOUT_NOW). The target's
 * vote requests carry the transfer flag, so voters that heard from the leader recently
 * still answer (4.2.3's rule would otherwise make them ignore it). */
#include "core/internal.h"

/* Thesis 3.10 with 6.4.1: voters answer a transfer campaign's vote requests whatever they
 * promised this leader (4.2.3; step.c's in_leader_lease), and a lease rests on that promise.
 * Once TIMEOUT_NOW has left, the target may win term + 1 whenever its requests reach a
 * quorum: it resends them for its whole candidacy, and the network may hold them back,
 * so this can happen long after this leader gave the transfer up and went on serving.
 * Hence no lease for the rest of this term (ReadIndex still serves: it confirms the
 * leadership with a round at read time); a new term, which the target's campaign can no
 * longer win, starts without this mark. */
static void send_timeout_now(struct craft_core *core, uint64_t target)
{
    struct craft_msg m = {.type = CRAFT_MSG_TIMEOUT_NOW, .to = target};
    core->timeout_now_sent = true;
    core->lease_forfeited = true;
    core->lease_until = 0;
    TRACE(core, CRAFT_T_ELECT, "transfer: TIMEOUT_NOW to %llu", (unsigned long long)target);
    core_send(core, &m, false);
}

static int craft_core_transfer_leadership_call(struct craft_core *core, uint64_t target, uint64_t now)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    if (core->role != CRAFT_LEADER) {
        return CRAFT_ENOTLEADER;
    }
    if (core->transfer_target != CRAFT_NONE) {
        return CRAFT_ETRANSFER;
    }
    if (target == CRAFT_NONE) {
        /* Any: the incoming voter closest to our log. */
        uint64_t best = 0;
        for (uint32_t i = 0; i < core->n_prs; i++) {
            const struct progress *pr = &core->prs[i];
            bool voter = false;
            for (uint32_t k = 0; k < core->conf.n_voters; k++) {
                voter = voter || core->conf.voters[k] == pr->id;
            }
            if (voter && (target == CRAFT_NONE || pr->match > best)) {
                target = pr->id;
                best = pr->match;
            }
        }
        if (target == CRAFT_NONE) {
            return CRAFT_EINVAL;
        }
    }
    if (target == core->cfg.id) {
        return CRAFT_EINVAL;
    }
    struct progress *pr = core_progress(core, target);
    if (pr == NULL) {
        return CRAFT_EUNKNOWNPEER;
    }
    bool incoming_voter = false;
    for (uint32_t k = 0; k < core->conf.n_voters; k++) {
        incoming_voter = incoming_voter || core->conf.voters[k] == target;
    }
    if (!incoming_voter) {
        return CRAFT_EINVAL; /* a learner, or a voter on its way out */
    }
    core->transfer_target = target;
    core->transfer_deadline = now + core->cfg.election_timeout_ms;
    core->timeout_now_sent = false;
    /* The lease rests on voters ignoring campaigns; this one they will not ignore. */
    core->lease_until = 0;
    TRACE(core, CRAFT_T_ELECT, "transfer leadership to %llu (match %llu of %llu)",
          (unsigned long long)target, (unsigned long long)pr->match,
          (unsigned long long)log_last_index(&core->log));
    core_transfer_progress(core, pr);
    return CRAFT_OK;
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_transfer_leadership(struct craft_core *core, uint64_t target, uint64_t now)
{
    int rv = craft_core_transfer_leadership_call(core, target, now);
    return core->error != CRAFT_OK ? core->error : rv;
}

void core_transfer_progress(struct craft_core *core, struct progress *pr)
{
    if (core->role != CRAFT_LEADER || core->transfer_target != pr->id || core->timeout_now_sent) {
        return;
    }
    if (pr->match == log_last_index(&core->log)) {
        send_timeout_now(core, pr->id);
    }
}

void core_transfer_tick(struct craft_core *core)
{
    if (core->transfer_target != CRAFT_NONE && core->now >= core->transfer_deadline) {
        TRACE(core, CRAFT_T_ELECT, "transfer to %llu timed out: accepting proposals again%s",
              (unsigned long long)core->transfer_target,
              core->timeout_now_sent ? " (no lease for the rest of this term)" : "");
        core->transfer_target = CRAFT_NONE;
    }
}

void recv_timeout_now(struct craft_core *core, const struct craft_msg *m)
{
    if (core->role == CRAFT_LEADER || !core_is_voter(core, core->cfg.id)) {
        return;
    }
    bool incoming = false;
    for (uint32_t k = 0; k < core->conf.n_voters; k++) {
        incoming = incoming || core->conf.voters[k] == core->cfg.id;
    }
    if (!incoming) {
        return;
    }
    TRACE(core, CRAFT_T_ELECT, "TIMEOUT_NOW from %llu: campaigning", (unsigned long long)m->from);
    core_campaign(core, false, true);
}
