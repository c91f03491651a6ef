/* Roles and elections: thesis chapter 3.4 (elections), 3.6 (election restriction), 9.6
 * (pre-vote) and 4.2.3 (disruptive servers). */
#include <string.h>

#include "core/internal.h"
#include "core/quorum.h"

static void check_transition(enum craft_role from, enum craft_role to)
{
    /* Forbidden: follower -> leader, leader -> (pre)candidate, precandidate -> leader. */
    CRAFT_ASSERT(!(to == CRAFT_LEADER && from != CRAFT_CANDIDATE));
    CRAFT_ASSERT(!(from == CRAFT_LEADER && (to == CRAFT_CANDIDATE || to == CRAFT_PRECANDIDATE)));
}

void core_become_follower(struct craft_core *core, uint64_t term, uint64_t leader)
{
    CRAFT_ASSERT(term >= core->term);
    check_transition(core->role, CRAFT_FOLLOWER);
    if (term > core->term) {
        core->term = term;
        core->vote = CRAFT_NONE;
        core->hs_dirty = true;
    }
    if (core->role != CRAFT_FOLLOWER || core->leader != leader) {
        TRACE(core, CRAFT_T_ELECT, "follower (leader %llu)", (unsigned long long)leader);
    }
    if (core->role == CRAFT_LEADER) {
        core_reads_fail_all(core, CRAFT_ENOTLEADER);
    }
    core->role = CRAFT_FOLLOWER;
    core->leader = leader;
    core->uncommitted_bytes = 0;
    core->transfer_target = CRAFT_NONE;
    core->lease_until = 0;
    core->campaign_transfer = false;
    core_reset_election_timer(core);
}

static void reset_votes(struct craft_core *core)
{
    for (uint32_t i = 0; i < core->n_prs; i++) {
        core->prs[i].vote = -1;
    }
    core->self_vote = 1;
}

static int vote_of(void *ctx, uint64_t id)
{
    struct craft_core *core = ctx;
    if (id == core->cfg.id) {
        return core->self_vote;
    }
    struct progress *pr = core_progress(core, id);
    return pr == NULL ? -1 : pr->vote;
}

static void send_vote_requests(struct craft_core *core, bool pre_vote, uint64_t term, bool transfer)
{
    core->vote_resend_deadline = core->now + core->cfg.heartbeat_ms;
    for (uint32_t i = 0; i < core->n_prs; i++) {
        struct progress *pr = &core->prs[i];
        if (pr->is_learner || !core_is_voter(core, pr->id) || pr->vote != -1) {
            continue;
        }
        struct craft_msg m = {
            .type = pre_vote ? CRAFT_MSG_PREVOTE : CRAFT_MSG_VOTE,
            .to = pr->id,
            .term = term,
            .log_index = log_last_index(&core->log),
            .log_term = log_last_term(&core->log),
            .transfer = transfer,
        };
        /* A vote request must not leave before the vote for ourselves is durable. */
        core_send(core, &m, !pre_vote);
    }
}

void core_become_leader(struct craft_core *core)
{
    check_transition(core->role, CRAFT_LEADER);
    CRAFT_ASSERT(core->vote == core->cfg.id);
    core->role = CRAFT_LEADER;
    core->leader = core->cfg.id;
    core->uncommitted_bytes = 0;
    uint64_t last = log_last_index(&core->log);
    for (uint32_t i = 0; i < core->n_prs; i++) {
        struct progress *pr = &core->prs[i];
        progress_reset(pr, last + 1, core->now);
        pr->recent_active = true;
        pr->acked_round = 0;
        pr->round_end = last + 1;
        pr->round_started_at = core->now;
        pr->caught_up_reported = false;
    }
    core->term_start_index = last + 1;
    core->hb_round = 0;
    core->lease_until = 0;
    core->lease_forfeited = false; /* a new term: no TIMEOUT_NOW of ours is out (transfer.c) */
    core->heartbeat_deadline = core->now + core->cfg.heartbeat_ms;
    core->check_quorum_deadline = core->now + core->cfg.election_timeout_ms;
    TRACE(core, CRAFT_T_ELECT, "leader: last=%llu commit=%llu", (unsigned long long)last,
          (unsigned long long)core->commit);
    /* Thesis 6.4 and 3.6.2: a new leader commits an entry of its own term at once, which
     * also commits every earlier entry it holds. */
    struct craft_entry noop = {
        .term = core->term, .index = last + 1, .type = CRAFT_ENTRY_NOOP, .len = 0, .data = NULL};
    if (log_append(&core->log, &noop) != CRAFT_OK) {
        core_fail(core, CRAFT_ENOMEM);
        return;
    }
    /* A single-voter cluster commits as soon as its own append is durable. */
}

static void poll_result(struct craft_core *core)
{
    enum craft_vote_result r = craft_quorum_vote(&core->conf, vote_of, core);
    if (r == CRAFT_VOTE_PENDING) {
        return;
    }
    if (r == CRAFT_VOTE_LOST) {
        TRACE(core, CRAFT_T_VOTE, "%s lost", craft_role_name(core->role));
        core_become_follower(core, core->term, CRAFT_NONE);
        return;
    }
    if (core->role == CRAFT_PRECANDIDATE) {
        core_campaign(core, false, false);
    } else {
        CRAFT_ASSERT(core->role == CRAFT_CANDIDATE);
        core_become_leader(core);
    }
}

/* A lost request or answer would otherwise cost a whole election timeout (and on a lossy
 * network several in a row): re-ask the voters that have not answered, once per heartbeat
 * interval. Requests are idempotent: a voter re-grants to the candidate it voted for. */
void core_resend_vote_requests(struct craft_core *core)
{
    CRAFT_ASSERT(core->role == CRAFT_PRECANDIDATE || core->role == CRAFT_CANDIDATE);
    bool pre = core->role == CRAFT_PRECANDIDATE;
    send_vote_requests(core, pre, pre ? core->term + 1 : core->term, core->campaign_transfer);
}

void core_campaign(struct craft_core *core, bool pre_vote, bool transfer)
{
    CRAFT_ASSERT(core->role != CRAFT_LEADER);
    CRAFT_ASSERT(core_can_campaign(core));
    reset_votes(core);
    core->campaign_transfer = transfer;
    core->leader = CRAFT_NONE;
    core->leader_contact = false;
    core_reset_election_timer(core);
    if (pre_vote) {
        /* Pre-vote (thesis 9.6): ask whether we could win before disturbing anyone's term. */
        check_transition(core->role, CRAFT_PRECANDIDATE);
        core->role = CRAFT_PRECANDIDATE;
        TRACE(core, CRAFT_T_ELECT, "pre-candidate for term %llu",
              (unsigned long long)(core->term + 1));
        send_vote_requests(core, true, core->term + 1, transfer);
    } else {
        check_transition(core->role, CRAFT_CANDIDATE);
        core->role = CRAFT_CANDIDATE;
        core->term++;
        core->vote = core->cfg.id;
        core->hs_dirty = true;
        TRACE(core, CRAFT_T_ELECT, "candidate");
        send_vote_requests(core, false, core->term, transfer);
    }
    poll_result(core);
}

/* Handles VOTE and PREVOTE at a term the step rules accepted (m->term >= core->term). */
void recv_vote(struct craft_core *core, const struct craft_msg *m)
{
    bool pre = m->type == CRAFT_MSG_PREVOTE;
    /* Figure 3.1: grant if we have not voted for another in this term and the candidate's
     * log is at least as up-to-date as ours. A pre-vote is granted for a higher term
     * under the same log rule, without recording anything. */
    bool can_vote = core->vote == m->from || (core->vote == CRAFT_NONE && core->leader == CRAFT_NONE) ||
                    (pre && m->term > core->term);
    bool granted = can_vote && log_is_up_to_date(&core->log, m->log_index, m->log_term);
    struct craft_msg resp = {
        .type = pre ? CRAFT_MSG_PREVOTE_RESP : CRAFT_MSG_VOTE_RESP,
        .to = m->from,
        /* A pre-vote answer carries the term asked about when granted, else ours. */
        .term = granted && pre ? m->term : core->term,
        .reject = !granted,
    };
    if (granted && !pre) {
        core->vote = m->from;
        core->hs_dirty = true;
        core_reset_election_timer(core);
    }
    TRACE(core, CRAFT_T_VOTE, "%s %s for %llu (their last %llu/%llu)", granted ? "grant" : "deny",
          pre ? "pre-vote" : "vote", (unsigned long long)m->from,
          (unsigned long long)m->log_index, (unsigned long long)m->log_term);
    /* Durable: a granted vote must be on disk before the candidate can count it. */
    core_send(core, &resp, !pre);
}

void recv_vote_resp(struct craft_core *core, const struct craft_msg *m)
{
    bool pre = m->type == CRAFT_MSG_PREVOTE_RESP;
    if ((pre && core->role != CRAFT_PRECANDIDATE) || (!pre && core->role != CRAFT_CANDIDATE)) {
        return;
    }
    /* A grant from an earlier pre-campaign carries the term that one asked about; only a
     * grant for the term we would campaign in now counts. */
    if (pre && !m->reject && m->term != core->term + 1) {
        return;
    }
    struct progress *pr = core_progress(core, m->from);
    if (pr == NULL || pr->is_learner) {
        return;
    }
    pr->vote = m->reject ? 0 : 1;
    TRACE(core, CRAFT_T_VOTE, "%s %s from %llu", pre ? "pre-vote" : "vote",
          m->reject ? "denied" : "granted", (unsigned long long)m->from);
    poll_result(core);
}
