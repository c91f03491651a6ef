/* Invariant checkers (DESIGN "Invariants the simulator checks after every event").
 *
 * "After every event" is made cheap by checking where state changes: the status checks run
 * after each event on the node it touched (O(1) unless the node just became leader), the
 * durable checks when a write completes, the state machine check when an entry is
 * applied. Nothing scans a whole log per event. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/trace.h"
#include "sim/sim_internal.h"

struct sim_lm_slot {
    bool used;
    uint64_t index, term;
    uint64_t hash;      /* of type and data */
    uint64_t prev_term; /* term of the entry at index - 1 in the log that held it */
    int server;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    CRAFT_ASSERT(p != NULL);
    return p;
}

static void grow_zeroed(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return;
    }
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    void *p = realloc(*buf, n * elem);
    CRAFT_ASSERT(p != NULL);
    memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
    *buf = p;
    *cap = n;
}

void sim_checks_init(struct sim_checks *ch, int n)
{
    *ch = (struct sim_checks){0};
    ch->votes = xcalloc((size_t)n, sizeof *ch->votes);
    ch->cap_votes = xcalloc((size_t)n, sizeof *ch->cap_votes);
    craft_msg_decoder_init(&ch->dec);
}

void sim_checks_free(struct sim_checks *ch, int n)
{
    for (int i = 0; i < n; i++) {
        free(ch->votes[i]);
    }
    free(ch->votes);
    free(ch->cap_votes);
    craft_msg_decoder_free(&ch->dec);
    free(ch->term_leader);
    free(ch->lm);
    free(ch->gc);
    free(ch->data);
    *ch = (struct sim_checks){0};
}

static uint64_t hash_entry(uint8_t type, const uint8_t *data, uint32_t len)
{
    uint64_t h = 1469598103934665603ULL ^ type;
    for (uint32_t i = 0; i < len; i++) {
        h = (h ^ data[i]) * 1099511628211ULL;
    }
    return sim_mix64(h ^ len);
}

const struct sim_committed *sim_check_committed(const struct sim_checks *ch, uint64_t index)
{
    if (index >= ch->gc_cap || !ch->gc[index].present) {
        return NULL;
    }
    return &ch->gc[index];
}

/* Thesis 3.6.3, Leader Completeness: a leader holds every entry committed before its term. */
static void check_leader_completeness(struct sim_node *node, const struct craft_core_status *st)
{
    struct sim_checks *ch = &node->c->ch;
    const struct craft_core *core = craft_driver_core(node->d);
    for (uint64_t idx = st->snap_index + 1; idx <= ch->gc_max; idx++) {
        const struct sim_committed *g = sim_check_committed(ch, idx);
        if (g == NULL) {
            continue;
        }
        const struct craft_entry *e = craft_core_entry(core, idx);
        if (e == NULL || e->term != g->term) {
            sim_fail(node->c,
                     "leader completeness: server %d became leader in term %llu without "
                     "committed index %llu (term %llu; has term %llu)",
                     node->i, (unsigned long long)st->term, (unsigned long long)idx,
                     (unsigned long long)g->term, (unsigned long long)(e ? e->term : 0));
        }
    }
}

void sim_check_status(struct sim_node *node)
{
    struct sim_checks *ch = &node->c->ch;
    struct craft_core_status st;
    craft_core_status(craft_driver_core(node->d), &st);
    if (st.commit < node->last_commit) {
        sim_fail(node->c, "commit index decreased on server %d: %llu -> %llu", node->i,
                 (unsigned long long)node->last_commit, (unsigned long long)st.commit);
    }
    node->last_commit = st.commit;
    if (st.role != CRAFT_LEADER) {
        return;
    }
    /* Thesis 3.6.3, Election Safety: at most one leader per term, over the whole run. */
    grow_zeroed((void **)&ch->term_leader, &ch->cap_terms, st.term + 1, 1);
    uint8_t id = (uint8_t)(node->i + 1);
    if (ch->term_leader[st.term] == 0) {
        ch->term_leader[st.term] = id;
        CRAFT_TRACE(CRAFT_T_TEST, node->c->w->now, 0, st.term, "leader of term %llu is n%d",
                    (unsigned long long)st.term, node->i + 1);
    } else if (ch->term_leader[st.term] != id) {
        sim_fail(node->c, "election safety: term %llu has two leaders: servers %d and %d",
                 (unsigned long long)st.term, ch->term_leader[st.term] - 1, node->i);
    }
    if (node->leader_term_checked != st.term) {
        node->leader_term_checked = st.term;
        check_leader_completeness(node, &st);
        sim_member_check_new_leader(node, &st);
    }
}

static void check_vote(struct sim_node *node, const struct craft_hard_state *hs)
{
    struct sim_checks *ch = &node->c->ch;
    int i = node->i;
    if (hs->vote == CRAFT_NONE) {
        return;
    }
    grow_zeroed((void **)&ch->votes[i], &ch->cap_votes[i], hs->term + 1, sizeof(uint64_t));
    uint64_t *v = &ch->votes[i][hs->term];
    if (*v != CRAFT_NONE && *v != hs->vote) {
        sim_fail(node->c, "server %d voted twice in term %llu: for %llu and for %llu", i,
                 (unsigned long long)hs->term, (unsigned long long)*v,
                 (unsigned long long)hs->vote);
    }
    *v = hs->vote;
}

/* Persist before responding (thesis 3.8; Figure 3.1's "updated on stable storage before
 * responding to RPCs"): a node that sends in a term, or grants a vote, and then crashes
 * must remember both, or it could vote again in that term. So when a message leaves, the
 * node's durable hard state must hold its term (pre-votes excepted: they promise nothing),
 * and a granted vote's candidate. */
void sim_check_send(struct sim_node *node, const uint8_t *bytes, size_t len)
{
    int type = craft_msg_peek_type(bytes, len);
    if (type == CRAFT_MSG_PREVOTE || type == CRAFT_MSG_PREVOTE_RESP) {
        return;
    }
    struct craft_msg m;
    if (craft_msg_decode(&node->c->ch.dec, bytes, len, &m) != CRAFT_OK) {
        sim_fail(node->c, "n%d sent a message that does not decode", node->i + 1);
    }
    const struct craft_hard_state *hs = &node->disk.hs;
    if (m.term > hs->term) {
        sim_fail(node->c, "n%d sent %s in term %llu before that term was durable (durable "
                 "term %llu)", node->i + 1, craft_msg_type_name(m.type),
                 (unsigned long long)m.term, (unsigned long long)hs->term);
    }
    if (type == CRAFT_MSG_VOTE_RESP && !m.reject && m.term == hs->term && hs->vote != m.to) {
        sim_fail(node->c, "n%d granted its vote in term %llu to n%llu before that vote was "
                 "durable (durable vote %llu)", node->i + 1, (unsigned long long)m.term,
                 (unsigned long long)m.to, (unsigned long long)hs->vote);
    }
}

static struct sim_lm_slot *lm_find(struct sim_checks *ch, uint64_t index, uint64_t term)
{
    size_t mask = ch->lm_cap - 1;
    size_t k = (size_t)sim_mix64(index * 0x9e3779b97f4a7c15ULL ^ term) & mask;
    while (ch->lm[k].used && (ch->lm[k].index != index || ch->lm[k].term != term)) {
        k = (k + 1) & mask;
    }
    return &ch->lm[k];
}

static void lm_grow(struct sim_checks *ch)
{
    struct sim_lm_slot *old = ch->lm;
    size_t old_cap = ch->lm_cap;
    ch->lm_cap = old_cap ? old_cap * 2 : 1024;
    ch->lm = xcalloc(ch->lm_cap, sizeof *ch->lm);
    for (size_t k = 0; k < old_cap; k++) {
        if (old[k].used) {
            *lm_find(ch, old[k].index, old[k].term) = old[k];
        }
    }
    free(old);
}

/* Thesis 3.6.3, Log Matching: if two logs hold an entry with the same index and term, the
 * logs are identical up to it. Checked inductively: (index, term) must always name the same
 * data and sit after an entry of the same term. */
static void check_log_matching(struct sim_node *node, const struct craft_entry *e,
                               uint64_t prev_term)
{
    struct sim_checks *ch = &node->c->ch;
    if (ch->lm_n * 2 >= ch->lm_cap) {
        lm_grow(ch);
    }
    uint64_t h = hash_entry(e->type, e->data, e->len);
    struct sim_lm_slot *s = lm_find(ch, e->index, e->term);
    if (!s->used) {
        *s = (struct sim_lm_slot){.used = true, .index = e->index, .term = e->term, .hash = h,
                                  .prev_term = prev_term, .server = node->i};
        ch->lm_n++;
        return;
    }
    if (s->hash != h || s->prev_term != prev_term) {
        sim_fail(node->c,
                 "log matching: index %llu term %llu differs between server %d (prev term "
                 "%llu) and server %d (prev term %llu)%s",
                 (unsigned long long)e->index, (unsigned long long)e->term, s->server,
                 (unsigned long long)s->prev_term, node->i, (unsigned long long)prev_term,
                 s->hash != h ? ", different data" : "");
    }
}

void sim_checks_lost(struct sim_cluster *c, uint64_t lost, uint64_t keep, uint64_t max_term)
{
    struct sim_checks *ch = &c->ch;
    for (uint64_t idx = keep + 1; idx <= ch->gc_max && idx < ch->gc_cap; idx++) {
        ch->gc[idx].present = false;
    }
    if (ch->gc_max > keep) {
        ch->gc_max = keep;
    }
    for (uint64_t t = max_term + 1; t < ch->cap_terms; t++) {
        ch->term_leader[t] = 0;
    }
    memset(ch->lm, 0, ch->lm_cap * sizeof *ch->lm);
    ch->lm_n = 0;
    for (int i = 0; i < c->n; i++) {
        if (lost >> i & 1) {
            continue;
        }
        const struct sim_disk *disk = &c->nodes[i].disk;
        for (size_t k = 0; k < disk->n_log; k++) {
            check_log_matching(&c->nodes[i], &disk->log[k],
                               k > 0 ? disk->log[k - 1].term : disk->snap.term);
        }
    }
}

void sim_check_persisted(struct sim_node *node, const struct sim_write *w)
{
    if (w->has_hs) {
        check_vote(node, &w->hs);
    }
    const struct sim_disk *disk = &node->disk;
    for (size_t k = 0; k < w->n_entries; k++) {
        const struct craft_entry *e = &w->entries[k];
        if (e->index <= disk->snap.index) {
            continue;
        }
        bool found;
        uint64_t prev = sim_disk_term_at(disk, e->index - 1, &found);
        CRAFT_ASSERT(found);
        check_log_matching(node, e, prev);
    }
}

static struct sim_committed *gc_slot(struct sim_checks *ch, uint64_t index)
{
    grow_zeroed((void **)&ch->gc, &ch->gc_cap, index + 1, sizeof *ch->gc);
    return &ch->gc[index];
}

static size_t store_data(struct sim_checks *ch, const uint8_t *data, uint32_t len)
{
    if (ch->data_len + len > ch->data_cap) {
        size_t cap = ch->data_cap ? ch->data_cap : 4096;
        while (cap < ch->data_len + len) {
            cap *= 2;
        }
        uint8_t *p = realloc(ch->data, cap);
        CRAFT_ASSERT(p != NULL);
        ch->data = p;
        ch->data_cap = cap;
    }
    size_t off = ch->data_len;
    if (len > 0) {
        memcpy(ch->data + off, data, len);
    }
    ch->data_len += len;
    return off;
}

static bool same_data(const struct sim_checks *ch, const struct sim_committed *g,
                      const uint8_t *data, uint32_t len)
{
    return g->len == len && (len == 0 || memcmp(ch->data + g->off, data, len) == 0);
}

static _Noreturn void conflict(struct sim_node *node, const struct sim_committed *g,
                               uint64_t index, const uint8_t *data, uint32_t len)
{
    const struct sim_checks *ch = &node->c->ch;
    char a[64], b[64];
    sim_fail(node->c, "apply error: commit index=%llu server=%d %s != server=%d %s",
             (unsigned long long)index, node->i, sim_fmt_cmd(a, sizeof a, data, len), g->server,
             sim_fmt_cmd(b, sizeof b, ch->data + g->off, g->len));
}

void sim_check_apply(struct sim_node *node, const struct craft_entry *e, uint64_t cmds_through)
{
    struct sim_checks *ch = &node->c->ch;
    struct sim_committed *g = gc_slot(ch, e->index);
    if (!g->present) {
        *g = (struct sim_committed){.present = true, .type = e->type, .server = node->i,
                                    .term = e->term, .cmds_through = cmds_through,
                                    .off = store_data(ch, e->data, e->len), .len = e->len};
        if (e->index > ch->gc_max) {
            ch->gc_max = e->index;
        }
        if (e->type == CRAFT_ENTRY_CONF) {
            /* First applied anywhere: every earlier index is recorded, so these arrive in
             * log order. */
            sim_member_check_committed(node->c, e);
        }
        return;
    }
    if (g->term != e->term || g->type != e->type || g->cmds_through != cmds_through ||
        !same_data(ch, g, e->data, e->len)) {
        conflict(node, g, e->index, e->data, e->len);
    }
}

void sim_check_ingest(struct sim_node *node, uint64_t log_index, const uint8_t *data,
                      uint32_t len, uint64_t cmds_through)
{
    const struct sim_committed *g = sim_check_committed(&node->c->ch, log_index);
    /* A snapshot holds only applied commands, and whoever applied them recorded them. */
    if (g == NULL) {
        sim_fail(node->c, "server %d snapshot holds index %llu that nobody applied", node->i,
                 (unsigned long long)log_index);
    }
    if (g->type != CRAFT_ENTRY_NORMAL || g->cmds_through != cmds_through ||
        !same_data(&node->c->ch, g, data, len)) {
        conflict(node, g, log_index, data, len);
    }
}
