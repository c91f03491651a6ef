/* Membership changes and leadership transfer in the simulator: the harness calls
 * (cluster.h), the applier's configuration tracking, and the membership checks.
 *
 * The checks (thesis chapter 4):
 *   - every committed configuration change keeps old and new quorums overlapping: a
 *     single-server change, entering C(old,new), or leaving it for C(new);
 *   - a node becomes leader only while it is a voter of its own configuration (a leader
 *     removed by a change may keep leading until the change commits, thesis 4.2.2, but no
 *     node outside its configuration may win an election). */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/trace.h"
#include "codec/msg_codec.h"
#include "sim/clock.h"
#include "sim/sim_internal.h"

#define CHANGE_BUDGET_MS 30000 /* sim_change_conf_on_leader: overall */
#define CHANGE_POLL_MS 20
#define CHANGE_NO_LEADER_MS 50

static bool has_id(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t k = 0; k < n; k++) {
        if (ids[k] == id) {
            return true;
        }
    }
    return false;
}

bool sim_conf_is_voter(const struct craft_conf *conf, uint64_t id)
{
    return has_id(conf->voters, conf->n_voters, id) ||
           has_id(conf->voters_outgoing, conf->n_voters_outgoing, id);
}

bool sim_conf_is_learner(const struct craft_conf *conf, uint64_t id)
{
    return has_id(conf->learners, conf->n_learners, id);
}

static size_t fmt_ids(char *buf, size_t cap, size_t used, const char *label,
                      const uint64_t *ids, uint32_t n)
{
    if (n == 0 && label[0] != '\0') {
        return used;
    }
    if (label[0] != '\0' && used < cap) {
        used += (size_t)snprintf(buf + used, cap - used, " | %s", label);
    }
    for (uint32_t k = 0; k < n && used < cap; k++) {
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu",
                                 k == 0 && label[0] == '\0' ? "" : " ",
                                 (unsigned long long)ids[k]);
    }
    return used;
}

const char *sim_conf_fmt(char *buf, size_t cap, const struct craft_conf *conf)
{
    CRAFT_ASSERT(cap >= 4);
    size_t used = (size_t)snprintf(buf, cap, "{");
    used = fmt_ids(buf, cap, used, "", conf->voters, conf->n_voters);
    used = fmt_ids(buf, cap, used, "out", conf->voters_outgoing, conf->n_voters_outgoing);
    used = fmt_ids(buf, cap, used, "learners", conf->learners, conf->n_learners);
    used = fmt_ids(buf, cap, used, "next", conf->learners_next, conf->n_learners_next);
    if (used < cap) {
        snprintf(buf + used, cap - used, "}");
    }
    return buf;
}

/* Whether a and b hold the same ids, in any order. */
static bool same_set(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t k = 0; k < na; k++) {
        if (!has_id(b, nb, a[k])) {
            return false;
        }
    }
    return true;
}

/* |a \ b| + |b \ a| */
static uint32_t sym_diff(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb)
{
    uint32_t d = 0;
    for (uint32_t k = 0; k < na; k++) {
        d += !has_id(b, nb, a[k]);
    }
    for (uint32_t k = 0; k < nb; k++) {
        d += !has_id(a, na, b[k]);
    }
    return d;
}

/* ---- harness internals ---- */

void sim_member_bootstrap_conf(const struct sim_cluster *c, int i, struct craft_conf *out)
{
    if (i < c->n_initial) {
        *out = c->conf;
    } else {
        memset(out, 0, sizeof *out);
    }
}

void sim_member_applied(struct sim_node *node, const struct craft_entry *e)
{
    CRAFT_ASSERT(e->type == CRAFT_ENTRY_CONF);
    struct craft_conf conf;
    int err = craft_conf_decode(e->data, e->len, &conf);
    if (err != CRAFT_OK) {
        sim_fail(node->c, "server %d applied a configuration entry at %llu that does not decode: %s",
                 node->i, (unsigned long long)e->index, craft_strerror(err));
    }
    node->applied_conf = conf;
}

void sim_member_port_caught_up(void *ctx, uint64_t id)
{
    struct sim_node *node = ctx;
    struct sim_cluster *c = node->c;
    CRAFT_ASSERT(id >= 1 && id <= (uint64_t)c->n);
    CRAFT_TRACE(CRAFT_T_TEST, c->w->now, node->i + 1, 0, "leader n%d: learner n%llu caught up",
                node->i + 1, (unsigned long long)id);
    c->nodes[id - 1].caught_up = true;
}

/* Thesis 4.1 and 4.3: the only transitions that keep every old quorum and every new quorum
 * intersecting. */
void sim_member_check_committed(struct sim_cluster *c, const struct craft_entry *e)
{
    struct sim_checks *ch = &c->ch;
    struct craft_conf next;
    if (craft_conf_decode(e->data, e->len, &next) != CRAFT_OK) {
        sim_fail(c, "configuration entry committed at %llu does not decode",
                 (unsigned long long)e->index);
    }
    CRAFT_ASSERT(e->index > ch->conf_index);
    const struct craft_conf *old = &ch->conf;
    bool old_joint = old->n_voters_outgoing > 0;
    bool new_joint = next.n_voters_outgoing > 0;
    bool ok;
    const char *kind;
    if (e->index == ch->forced_index) {
        kind = "forced by recovery from a lost quorum";
        ok = !new_joint;
    } else if (!old_joint && !new_joint) {
        kind = "single-server change";
        ok = sym_diff(old->voters, old->n_voters, next.voters, next.n_voters) <= 1;
    } else if (!old_joint && new_joint) {
        kind = "entering a joint configuration";
        ok = same_set(next.voters_outgoing, next.n_voters_outgoing, old->voters, old->n_voters);
    } else if (old_joint && !new_joint) {
        kind = "leaving a joint configuration";
        ok = same_set(next.voters, next.n_voters, old->voters, old->n_voters);
    } else {
        kind = "joint to joint";
        ok = false;
    }
    char a[256], b[256];
    if (!ok) {
        sim_fail(c,
                 "configuration safety: committed change at index %llu (%s) from %s to %s "
                 "does not keep old and new quorums overlapping",
                 (unsigned long long)e->index, kind, sim_conf_fmt(a, sizeof a, old),
                 sim_conf_fmt(b, sizeof b, &next));
    }
    if (CRAFT_TRACE_ON(CRAFT_T_TEST)) {
        CRAFT_TRACE(CRAFT_T_TEST, c->w->now, 0, e->term, "committed configuration at %llu: %s",
                    (unsigned long long)e->index, sim_conf_fmt(b, sizeof b, &next));
    }
    ch->conf = next;
    ch->conf_index = e->index;
}

void sim_member_check_new_leader(struct sim_node *node, const struct craft_core_status *st)
{
    uint64_t id = (uint64_t)node->i + 1;
    /* Thesis 4.1: a server outside its own latest configuration still campaigns while that
     * entry is uncommitted (it may be the only one able to commit it). Past that, never. */
    if (!sim_conf_is_voter(&st->conf, id) && st->conf_index <= st->commit) {
        char a[256];
        sim_fail(node->c,
                 "membership: server %d became leader of term %llu while not a voter of its "
                 "configuration %s (index %llu)",
                 node->i, (unsigned long long)st->term, sim_conf_fmt(a, sizeof a, &st->conf),
                 (unsigned long long)st->conf_index);
    }
}

/* ---- the harness API ---- */

static struct sim_node *live_node(struct sim_cluster *c, int i)
{
    CRAFT_ASSERT(i >= 0 && i < c->n);
    struct sim_node *node = &c->nodes[i];
    return node->alive ? node : NULL;
}

int sim_conf_change(struct sim_cluster *c, int i, const struct craft_conf_change *changes,
                    size_t n, bool joint, uint64_t *index)
{
    struct sim_node *node = live_node(c, i);
    if (node == NULL) {
        return CRAFT_ENOTLEADER;
    }
    uint64_t li = 0, term = 0;
    sim_node_work(node);
    int err = craft_driver_propose_conf_change(node->d, changes, n, joint, sim_node_now(node),
                                               &li, &term);
    sim_node_after(node);
    CRAFT_TRACE(CRAFT_T_CLIENT, c->w->now, (uint64_t)i + 1, term,
                "conf change of %zu node(s)%s: %s (index %llu)", n, joint ? " (joint)" : "",
                err == CRAFT_OK ? "accepted" : craft_strerror(err), (unsigned long long)li);
    if (index != NULL) {
        *index = err == CRAFT_OK ? li : 0;
    }
    return err;
}

int sim_leave_joint(struct sim_cluster *c, int i)
{
    struct sim_node *node = live_node(c, i);
    if (node == NULL) {
        return CRAFT_ENOTLEADER;
    }
    int err = craft_driver_leave_joint(node->d, sim_node_now(node), NULL, NULL);
    sim_node_after(node);
    return err;
}

int sim_transfer(struct sim_cluster *c, int i, int target)
{
    struct sim_node *node = live_node(c, i);
    if (node == NULL) {
        return CRAFT_ENOTLEADER;
    }
    CRAFT_ASSERT(target >= -1);
    uint64_t id = target < 0 ? CRAFT_NONE : (uint64_t)target + 1;
    sim_node_work(node);
    int err = craft_driver_transfer_leadership(node->d, id, sim_node_now(node));
    sim_node_after(node);
    CRAFT_TRACE(CRAFT_T_CLIENT, c->w->now, (uint64_t)i + 1, 0, "transfer to %d: %s", target,
                err == CRAFT_OK ? "started" : craft_strerror(err));
    return err;
}

void sim_campaign(struct sim_cluster *c, int i)
{
    struct sim_node *node = live_node(c, i);
    if (node != NULL) {
        CRAFT_TRACE(CRAFT_T_TEST, c->w->now, (uint64_t)i + 1, 0, "forced campaign of n%d", i + 1);
        craft_driver_campaign(node->d, sim_node_now(node));
        sim_node_after(node);
    }
}

void sim_status(struct sim_cluster *c, int i, struct craft_core_status *out)
{
    struct sim_node *node = live_node(c, i);
    CRAFT_ASSERT(node != NULL);
    craft_core_status(craft_driver_core(node->d), out);
}

size_t sim_peers(struct sim_cluster *c, int i, struct craft_peer_status *peers, size_t cap)
{
    struct sim_node *node = live_node(c, i);
    CRAFT_ASSERT(node != NULL);
    return craft_core_peers(craft_driver_core(node->d), peers, cap);
}

void sim_conf_of(struct sim_cluster *c, int i, struct craft_conf *out)
{
    struct craft_core_status st;
    sim_status(c, i, &st);
    *out = st.conf;
}

uint64_t sim_committed_conf(const struct sim_cluster *c, struct craft_conf *out)
{
    *out = c->ch.conf;
    return c->ch.conf_index;
}

bool sim_caught_up(const struct sim_cluster *c, int i)
{
    CRAFT_ASSERT(i >= 0 && i < c->n);
    return c->nodes[i].caught_up;
}

void sim_clear_caught_up(struct sim_cluster *c, int i)
{
    CRAFT_ASSERT(i >= 0 && i < c->n);
    c->nodes[i].caught_up = false;
}

int sim_last_start_err(const struct sim_cluster *c)
{
    return c->last_start_err;
}

bool sim_node_cmd(const struct sim_cluster *c, int i, uint64_t k, void *cmd, size_t cap,
                  size_t *len)
{
    CRAFT_ASSERT(i >= 0 && i < c->n);
    const struct sim_node *node = &c->nodes[i];
    if (k == 0 || k > node->n_known) {
        return false;
    }
    uint32_t dlen;
    const uint8_t *data = sim_committed_data(c, node->cmds[k - 1], &dlen);
    CRAFT_ASSERT(data != NULL || dlen == 0);
    if (len != NULL) {
        *len = dlen;
    }
    if (cmd != NULL && dlen > 0) {
        memcpy(cmd, data, dlen < cap ? dlen : cap);
    }
    return true;
}

/* The connected leader with the highest term, or -1. */
static int find_leader(struct sim_cluster *c)
{
    int best = -1;
    uint64_t best_term = 0;
    for (int i = 0; i < c->n; i++) {
        if (!c->nodes[i].alive || !c->connected[i]) {
            continue;
        }
        struct craft_core_status st;
        craft_core_status(craft_driver_core(c->nodes[i].d), &st);
        if (st.role == CRAFT_LEADER && (best < 0 || st.term > best_term)) {
            best = i;
            best_term = st.term;
        }
    }
    return best;
}

struct attempt {
    uint64_t index, term;
};

/* Whether one of the attempts' entries is the committed one at its index. */
static int committed_attempt(const struct sim_cluster *c, const struct attempt *att, int n_att)
{
    for (int k = 0; k < n_att; k++) {
        const struct sim_committed *g = sim_check_committed(&c->ch, att[k].index);
        if (g != NULL && g->term == att[k].term && g->type == CRAFT_ENTRY_CONF) {
            return k;
        }
    }
    return -1;
}

#define ATTEMPTS_MAX 64

uint64_t sim_change_conf_on_leader(struct sim_cluster *c, const struct craft_conf_change *changes,
                                   size_t n, bool joint)
{
    CRAFT_ASSERT(!c->in_task);
    uint64_t t0 = c->w->now;
    struct attempt att[ATTEMPTS_MAX];
    int n_att = 0;
    int done = -1;
    int last_err = CRAFT_OK;
    while (done < 0) {
        if (c->w->now - t0 >= CHANGE_BUDGET_MS) {
            sim_fail(c, "change_conf_on_leader: the change of %zu node(s)%s did not commit within "
                        "%d ms (%d attempts, last error %s)",
                     n, joint ? " (joint)" : "", CHANGE_BUDGET_MS, n_att,
                     craft_strerror(last_err));
        }
        done = committed_attempt(c, att, n_att);
        if (done >= 0) {
            break;
        }
        int leader = find_leader(c);
        if (leader < 0) {
            sim_sleep(c, CHANGE_NO_LEADER_MS);
            continue;
        }
        uint64_t index = 0;
        int err = sim_conf_change(c, leader, changes, n, joint, &index);
        last_err = err;
        if (err == CRAFT_EINVAL) {
            /* An earlier attempt may have been committed by a later leader already. */
            sim_sleep(c, CHANGE_POLL_MS);
            if (committed_attempt(c, att, n_att) >= 0) {
                continue;
            }
            sim_fail(c, "change_conf_on_leader: leader %d refused the change of %zu node(s): %s",
                     leader, n, craft_strerror(err));
        }
        if (err != CRAFT_OK) {
            /* Not the leader any more, a change in flight (ECONFCHANGE), a transfer: wait. */
            sim_sleep(c, CHANGE_NO_LEADER_MS);
            continue;
        }
        struct craft_core_status st;
        sim_status(c, leader, &st);
        CRAFT_ASSERT(n_att < ATTEMPTS_MAX);
        att[n_att++] = (struct attempt){.index = index, .term = st.term};
        /* Wait while the leader that took it keeps its term. */
        for (;;) {
            sim_sleep(c, CHANGE_POLL_MS);
            done = committed_attempt(c, att, n_att);
            if (done >= 0 || c->w->now - t0 >= CHANGE_BUDGET_MS) {
                break;
            }
            if (!c->nodes[leader].alive || !c->connected[leader]) {
                break;
            }
            struct craft_core_status now_st;
            sim_status(c, leader, &now_st);
            if (now_st.role != CRAFT_LEADER || now_st.term != st.term) {
                break;
            }
        }
    }
    uint64_t index = att[done].index;
    if (joint || n != 1) { /* the core enters C(old,new) for anything but one change */
        /* Auto-leave: a configuration that is not joint must commit after the joint one. */
        while (!(c->ch.conf_index > index && c->ch.conf.n_voters_outgoing == 0)) {
            if (c->w->now - t0 >= CHANGE_BUDGET_MS) {
                char a[256];
                sim_fail(c, "change_conf_on_leader: the joint configuration entered at %llu was "
                            "not left within %d ms (committed configuration at %llu: %s)",
                         (unsigned long long)index, CHANGE_BUDGET_MS,
                         (unsigned long long)c->ch.conf_index,
                         sim_conf_fmt(a, sizeof a, &c->ch.conf));
            }
            sim_sleep(c, CHANGE_POLL_MS);
        }
    }
    sim_note(c, "change_conf_on_leader: committed at %llu after %llu ms", (unsigned long long)index,
             (unsigned long long)(c->w->now - t0));
    return index;
}
