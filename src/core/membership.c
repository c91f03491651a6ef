/* Configuration changes (thesis chapter 4).
 *
 * A configuration is in force from the moment its entry is in the log (thesis 4.1), for
 * leaders and followers alike; truncating the entry reverts to the previous one. Changes are
 * one at a time: a new change needs the last configuration entry committed. Single-server
 * changes keep old and new majorities overlapping by construction; any other change goes
 * through a joint configuration C(old,new) (thesis 4.3), where decisions need majorities of
 * both, and is left by a second entry. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/internal.h"

static bool has(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

static void del(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            ids[i] = ids[--*n];
            return;
        }
    }
}

bool conf_has_voter(const struct craft_conf *conf, uint64_t id)
{
    return has(conf->voters, conf->n_voters, id) ||
           has(conf->voters_outgoing, conf->n_voters_outgoing, id);
}

bool conf_has_node(const struct craft_conf *conf, uint64_t id)
{
    return conf_has_voter(conf, id) || has(conf->learners, conf->n_learners, id);
}

static bool decode_conf_entry(const struct craft_entry *e, struct craft_conf *out)
{
    CRAFT_ASSERT(e->type == CRAFT_ENTRY_CONF);
    /* The leader encoded it; the codec validated it on the wire. A bad one in our own log
     * would be corruption the storage layer must catch. */
    return craft_conf_decode(e->data, e->len, out) == CRAFT_OK;
}

static void base_conf(const struct craft_core *core, struct craft_conf *out)
{
    *out = core->snap.index > 0 ? core->snap.conf : core->bootstrap_conf;
}

void core_conf_at(const struct craft_core *core, uint64_t index, struct craft_conf *out)
{
    const struct craft_log *log = &core->log;
    CRAFT_ASSERT(index >= log->snap_index);
    uint64_t last = log_last_index(log);
    for (uint64_t i = index < last ? index : last; i > log->snap_index; i--) {
        const struct craft_entry *e = log_entry(log, i);
        if (e->type == CRAFT_ENTRY_CONF && decode_conf_entry(e, out)) {
            return;
        }
    }
    /* The log view's sentinel may sit below the snapshot (retained entries): the snapshot's
     * configuration covers everything through the snapshot index. */
    base_conf(core, out);
}

void core_recompute_conf(struct craft_core *core)
{
    const struct craft_log *log = &core->log;
    uint64_t index = 0;
    struct craft_conf conf;
    for (uint64_t i = log_last_index(log); i > log->snap_index; i--) {
        const struct craft_entry *e = log_entry(log, i);
        if (e->type == CRAFT_ENTRY_CONF && decode_conf_entry(e, &conf)) {
            index = i;
            break;
        }
    }
    if (index == 0 || index <= core->snap.index) {
        /* No entry after the snapshot: the snapshot's (or the bootstrap) configuration. */
        base_conf(core, &conf);
        index = 0;
    }
    core->conf = conf;
    core->conf_index = index;
    if (!core_rebuild_progress(core)) {
        core_fail(core, CRAFT_ENOMEM);
        return;
    }
    TRACE(core, CRAFT_T_CONF, "configuration at %llu: %u voters%s, %u learners",
          (unsigned long long)index, conf.n_voters,
          conf.n_voters_outgoing > 0 ? " (joint)" : "", conf.n_learners);
}

/* Thesis 4.1: "a server that is not part of its own latest configuration should still start
 * new elections, as it might still be needed until the C_new entry is committed". Example:
 * a leader demotes itself from {A, B}, B is behind and cut off, the leader steps down
 * (check-quorum); B's log lacks the change, so B needs A's vote, which A must refuse (B's
 * log is behind): only A can campaign, win B's vote and commit the change. */
bool core_can_campaign(const struct craft_core *core)
{
    if (conf_has_voter(&core->conf, core->cfg.id)) {
        return true;
    }
    if (core->conf_index == 0 || core->conf_index <= core->commit) {
        return false;
    }
    struct craft_conf prev;
    core_conf_at(core, core->conf_index - 1, &prev);
    return conf_has_voter(&prev, core->cfg.id);
}

void core_note_appended(struct craft_core *core, uint64_t from)
{
    uint64_t last = log_last_index(&core->log);
    for (uint64_t i = last; i >= from && i > core->log.snap_index; i--) {
        const struct craft_entry *e = log_entry(&core->log, i);
        if (e->type == CRAFT_ENTRY_CONF) {
            core_recompute_conf(core);
            return;
        }
    }
}

/* Appends a configuration entry as the leader. */
static int append_conf(struct craft_core *core, const struct craft_conf *conf, uint64_t *index,
                       uint64_t *term)
{
    uint8_t buf[8 + 4 * 8 * CRAFT_CONF_NODES_MAX];
    size_t len = craft_conf_encoded_size(conf);
    CRAFT_ASSERT(len <= sizeof buf);
    craft_conf_encode(conf, buf);
    struct craft_entry e = {
        .term = core->term,
        .index = log_last_index(&core->log) + 1,
        .type = CRAFT_ENTRY_CONF,
        .len = (uint32_t)len,
        .data = buf,
    };
    int rv = log_append(&core->log, &e);
    if (rv != CRAFT_OK) {
        return rv;
    }
    core_note_appended(core, e.index);
    CRAFT_ASSERT(core->conf_index == e.index);
    if (index != NULL) {
        *index = e.index;
    }
    if (term != NULL) {
        *term = e.term;
    }
    return CRAFT_OK;
}

static int check_can_change(const struct craft_core *core)
{
    if (core->role != CRAFT_LEADER) {
        return CRAFT_ENOTLEADER;
    }
    if (core->transfer_target != CRAFT_NONE) {
        return CRAFT_ETRANSFER;
    }
    /* One change at a time (thesis 4.1): the last one must be committed. */
    if (core->conf_index > core->commit) {
        return CRAFT_ECONFCHANGE;
    }
    return CRAFT_OK;
}

static uint32_t distinct_nodes(const struct craft_conf *c)
{
    uint32_t n = c->n_voters + c->n_learners;
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) {
        if (!has(c->voters, c->n_voters, c->voters_outgoing[i])) {
            n++;
        }
    }
    return n;
}

static int craft_core_propose_conf_change_call(struct craft_core *core, const struct craft_conf_change *changes,
                                   size_t n, bool joint, uint64_t now, uint64_t *index,
                                   uint64_t *term)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    int rv = check_can_change(core);
    if (rv != CRAFT_OK) {
        return rv;
    }
    if (core->conf.n_voters_outgoing > 0) {
        return CRAFT_ECONFCHANGE; /* leave the joint configuration first */
    }
    if (n == 0 || n > CRAFT_CONF_NODES_MAX) {
        return CRAFT_EINVAL;
    }
    const struct craft_conf *old = &core->conf;
    uint64_t voters[CRAFT_CONF_NODES_MAX * 2], learners[CRAFT_CONF_NODES_MAX * 2];
    uint32_t nv = old->n_voters, nl = old->n_learners;
    memcpy(voters, old->voters, nv * sizeof *voters);
    memcpy(learners, old->learners, nl * sizeof *learners);
    for (size_t k = 0; k < n; k++) {
        uint64_t id = changes[k].id;
        if (id == CRAFT_NONE) {
            return CRAFT_EINVAL;
        }
        for (size_t j = 0; j < k; j++) {
            if (changes[j].id == id) {
                return CRAFT_EINVAL;
            }
        }
        switch (changes[k].type) {
        case CRAFT_CONF_ADD_VOTER:
            if (has(voters, nv, id)) {
                return CRAFT_EINVAL;
            }
            del(learners, &nl, id);
            voters[nv++] = id;
            break;
        case CRAFT_CONF_ADD_LEARNER:
            if (has(learners, nl, id)) {
                return CRAFT_EINVAL;
            }
            del(voters, &nv, id);
            learners[nl++] = id;
            break;
        case CRAFT_CONF_REMOVE:
            if (!has(voters, nv, id) && !has(learners, nl, id)) {
                return CRAFT_EINVAL;
            }
            del(voters, &nv, id);
            del(learners, &nl, id);
            break;
        default:
            return CRAFT_EINVAL;
        }
        if (nv > CRAFT_CONF_NODES_MAX || nl > CRAFT_CONF_NODES_MAX) {
            return CRAFT_EINVAL;
        }
    }
    if (nv == 0) {
        return CRAFT_EINVAL;
    }
    struct craft_conf next;
    memset(&next, 0, sizeof next);
    next.n_voters = nv;
    memcpy(next.voters, voters, nv * sizeof *voters);
    if (!joint && n == 1) {
        /* Single-server change (thesis 4.1). */
        next.n_learners = nl;
        memcpy(next.learners, learners, nl * sizeof *learners);
    } else {
        /* C(old,new) (thesis 4.3). A voter demoted to learner keeps voting in the outgoing
         * half and becomes a learner when the joint configuration is left. */
        next.n_voters_outgoing = old->n_voters;
        memcpy(next.voters_outgoing, old->voters, old->n_voters * sizeof *old->voters);
        for (uint32_t i = 0; i < nl; i++) {
            if (has(old->voters, old->n_voters, learners[i])) {
                next.learners_next[next.n_learners_next++] = learners[i];
            } else {
                next.learners[next.n_learners++] = learners[i];
            }
        }
    }
    if (distinct_nodes(&next) > CRAFT_CONF_NODES_MAX) {
        return CRAFT_EINVAL;
    }
    if (core->uncommitted_bytes > core->cfg.uncommitted_bytes_max) {
        return CRAFT_EBUSY;
    }
    TRACE(core, CRAFT_T_CONF, "propose %s change of %zu node(s)",
          next.n_voters_outgoing > 0 ? "joint" : "single-server", n);
    return append_conf(core, &next, index, term);
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_propose_conf_change(struct craft_core *core, const struct craft_conf_change *changes,
                                   size_t n, bool joint, uint64_t now, uint64_t *index,
                                   uint64_t *term)
{
    int rv = craft_core_propose_conf_change_call(core, changes, n, joint, now, index, term);
    return core->error != CRAFT_OK ? core->error : rv;
}

static int craft_core_leave_joint_call(struct craft_core *core, uint64_t now, uint64_t *index, uint64_t *term)
{
    if (core->error != CRAFT_OK) {
        return core->error; /* stopped: core.md, "Out of memory" */
    }
    core_enter(core, now);
    int rv = check_can_change(core);
    if (rv != CRAFT_OK) {
        return rv;
    }
    const struct craft_conf *old = &core->conf;
    if (old->n_voters_outgoing == 0) {
        return CRAFT_ECONFCHANGE;
    }
    struct craft_conf next;
    memset(&next, 0, sizeof next);
    next.n_voters = old->n_voters;
    memcpy(next.voters, old->voters, old->n_voters * sizeof *old->voters);
    next.n_learners = old->n_learners;
    memcpy(next.learners, old->learners, old->n_learners * sizeof *old->learners);
    for (uint32_t i = 0; i < old->n_learners_next; i++) {
        next.learners[next.n_learners++] = old->learners_next[i];
    }
    TRACE(core, CRAFT_T_CONF, "propose leaving the joint configuration");
    return append_conf(core, &next, index, term);
}

/* The call, and the stop it may have caused (a step that could not allocate: core.md,
 * "Out of memory") as its answer. */
int craft_core_leave_joint(struct craft_core *core, uint64_t now, uint64_t *index, uint64_t *term)
{
    int rv = craft_core_leave_joint_call(core, now, index, term);
    return core->error != CRAFT_OK ? core->error : rv;
}

void core_conf_after_commit(struct craft_core *core)
{
    if (core->role != CRAFT_LEADER || core->conf_index > core->commit) {
        return;
    }
    /* Thesis 4.2.2: a leader that is not part of the committed configuration steps down. */
    if (!conf_has_voter(&core->conf, core->cfg.id)) {
        TRACE(core, CRAFT_T_CONF, "removed by the committed configuration: stepping down");
        core_become_follower(core, core->term, CRAFT_NONE);
        return;
    }
    if (core->conf.n_voters_outgoing > 0 && core->cfg.auto_leave_joint &&
        core->transfer_target == CRAFT_NONE) {
        int rv = craft_core_leave_joint(core, core->now, NULL, NULL);
        CRAFT_ASSERT(rv == CRAFT_OK || rv == CRAFT_ENOMEM);
    }
}

void core_learner_progress(struct craft_core *core, struct progress *pr)
{
    if (!pr->is_learner || pr->caught_up_reported || pr->match < pr->round_end) {
        return;
    }
    /* Thesis 4.2.1: replicate in rounds, each up to the leader's last index at its start;
     * a round that took less than an election timeout means the learner keeps up. */
    if (core->now - pr->round_started_at < core->cfg.election_timeout_ms) {
        pr->caught_up_reported = true;
        if (core->n_caught_up == core->cap_caught_up) {
            size_t cap = core->cap_caught_up ? core->cap_caught_up * 2 : 4;
            uint64_t *grown = craft_realloc(core->caught_up, cap * sizeof *grown);
            if (grown == NULL) {
                core_fail(core, CRAFT_ENOMEM);
                return;
            }
            core->caught_up = grown;
            core->cap_caught_up = cap;
        }
        core->caught_up[core->n_caught_up++] = pr->id;
        TRACE(core, CRAFT_T_CONF, "learner %llu caught up at %llu", (unsigned long long)pr->id,
              (unsigned long long)pr->match);
        return;
    }
    pr->round_end = log_last_index(&core->log);
    pr->round_started_at = core->now;
}
