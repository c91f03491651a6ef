#include "sim/lockstep.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

static void enqueue(struct lockstep *ls, const struct craft_msg *m)
{
    if (ls->q_n == ls->q_cap) {
        /* Compact the consumed prefix before growing. */
        if (ls->q_head > 0) {
            memmove(ls->q, ls->q + ls->q_head, (ls->q_n - ls->q_head) * sizeof *ls->q);
            ls->q_n -= ls->q_head;
            ls->q_head = 0;
        }
        if (ls->q_n == ls->q_cap) {
            ls->q_cap = ls->q_cap ? ls->q_cap * 2 : 256;
            ls->q = realloc(ls->q, ls->q_cap * sizeof *ls->q);
            CRAFT_ASSERT(ls->q != NULL);
        }
    }
    size_t len = craft_msg_encoded_size(m);
    uint8_t *bytes = malloc(len);
    CRAFT_ASSERT(bytes != NULL);
    CRAFT_ASSERT(craft_msg_encode(m, bytes) == len);
    ls->q[ls->q_n++] = (struct lockstep_wire){.to = m->to, .len = len, .bytes = bytes};
    if (ls->n_sent < LOCKSTEP_SENT_MAX) {
        ls->sent[ls->n_sent++] = (struct lockstep_sent){
            .type = m->type, .reject = m->reject, .from = m->from, .to = m->to,
            .term = m->term, .log_index = m->log_index, .commit = m->commit,
            .index = m->index, .ctx = m->ctx, .n_entries = m->n_entries};
    }
    ls->msgs_sent++;
    ls->bytes_sent += len;
}

static void process(struct lockstep *ls, int i)
{
    struct craft_batch b;
    for (;;) {
        /* craft_core_has_ready's contract: true exactly when a batch is there (unless the
         * core stopped while making it: out of memory, core.md). */
        bool has = craft_core_has_ready(ls->cores[i]);
        bool got = craft_core_ready(ls->cores[i], &b);
        CRAFT_ASSERT(has == got || craft_core_error(ls->cores[i]) != CRAFT_OK);
        if (craft_core_error(ls->cores[i]) != CRAFT_OK) {
            ls->down[i] = true; /* a stopped node is down, as its driver would make it */
            break;
        }
        if (!got) {
            break;
        }
        for (size_t k = 0; k < b.n_msgs; k++) {
            struct craft_msg m = b.msgs[k];
            if (m.type == CRAFT_MSG_SNAPSHOT) {
                m.last = true; /* lockstep snapshots carry no data */
            }
            enqueue(ls, &m);
        }
        for (size_t k = 0; k < b.n_msgs_durable; k++) {
            enqueue(ls, &b.msgs_durable[k]);
        }
        for (size_t k = 0; k < b.n_committed; k++) {
            const struct craft_entry *e = &b.committed[k];
            if (e->type == CRAFT_ENTRY_NORMAL) {
                uint64_t v = 0;
                memcpy(&v, e->data, e->len < sizeof v ? e->len : sizeof v);
                ls->applied_count[i]++;
                ls->applied_sum[i] += v;
            }
        }
        for (size_t k = 0; k < b.n_reads; k++) {
            if (ls->n_reads < sizeof ls->reads / sizeof ls->reads[0]) {
                ls->reads[ls->n_reads].node = i;
                ls->reads[ls->n_reads].r = b.reads[k];
                ls->n_reads++;
            }
        }
        for (size_t k = 0; k < b.n_caught_up; k++) {
            if (ls->n_caught_up < LOCKSTEP_NODES_MAX) {
                ls->caught_up[ls->n_caught_up++] = b.caught_up[k];
            }
        }
        craft_core_persisted(ls->cores[i], b.seq, ls->now);
    }
}

void lockstep_init(struct lockstep *ls, int n, uint64_t seed)
{
    lockstep_init_voters(ls, n, n, seed);
}

void lockstep_init_voters(struct lockstep *ls, int n, int n_voters, uint64_t seed)
{
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    lockstep_init_config(ls, n, n_voters, seed, &cfg);
}

void lockstep_init_config(struct lockstep *ls, int n, int n_voters, uint64_t seed,
                          const struct craft_core_config *tmpl)
{
    CRAFT_ASSERT(n >= 1 && n <= LOCKSTEP_NODES_MAX && n_voters >= 1 && n_voters <= n);
    memset(ls, 0, sizeof *ls);
    ls->n = n;
    craft_msg_decoder_init(&ls->decoder);
    struct craft_core_restore r;
    memset(&r, 0, sizeof r);
    r.bootstrap_conf.n_voters = (uint32_t)n_voters;
    for (int i = 0; i < n_voters; i++) {
        r.bootstrap_conf.voters[i] = (uint64_t)i + 1;
    }
    struct craft_conf voters = r.bootstrap_conf;
    for (int i = 0; i < n; i++) {
        r.bootstrap_conf = i < n_voters ? voters : (struct craft_conf){0};
        struct craft_core_config cfg = *tmpl;
        cfg.id = (uint64_t)i + 1;
        cfg.seed = seed * 1000 + (uint64_t)i;
        ls->cores[i] = craft_core_create(&cfg, &r, 0);
        CRAFT_ASSERT(ls->cores[i] != NULL);
    }
}

void lockstep_free(struct lockstep *ls)
{
    for (int i = 0; i < ls->n; i++) {
        craft_core_destroy(ls->cores[i]);
    }
    for (size_t k = ls->q_head; k < ls->q_n; k++) {
        free(ls->q[k].bytes);
    }
    free(ls->q);
    craft_msg_decoder_free(&ls->decoder);
}

void lockstep_flush(struct lockstep *ls)
{
    for (int i = 0; i < ls->n; i++) {
        if (!ls->down[i]) {
            process(ls, i);
        }
    }
}

void lockstep_deliver_all(struct lockstep *ls)
{
    lockstep_flush(ls);
    while (ls->q_head < ls->q_n) {
        struct lockstep_wire w = ls->q[ls->q_head++];
        int to = (int)w.to - 1;
        struct craft_msg m;
        if (to >= 0 && to < ls->n && !ls->down[to] &&
            craft_msg_decode(&ls->decoder, w.bytes, w.len, &m) == CRAFT_OK &&
            !ls->down[(int)m.from - 1] && !ls->cut[(int)m.from - 1][to]) {
            if (craft_core_step(ls->cores[to], &m, ls->now) != CRAFT_OK) {
                ls->step_errors++;
            }
            process(ls, to);
        }
        free(w.bytes);
    }
    ls->q_head = ls->q_n = 0;
}

void lockstep_advance(struct lockstep *ls)
{
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < ls->n; i++) {
        if (!ls->down[i]) {
            uint64_t t = craft_core_next_timeout(ls->cores[i]);
            next = t < next ? t : next;
        }
    }
    if (next != UINT64_MAX && next > ls->now) {
        ls->now = next;
    }
    for (int i = 0; i < ls->n; i++) {
        if (!ls->down[i] && craft_core_next_timeout(ls->cores[i]) <= ls->now) {
            craft_core_tick(ls->cores[i], ls->now);
        }
    }
    lockstep_deliver_all(ls);
}

size_t lockstep_count(const struct lockstep *ls, int type, int from, int to)
{
    size_t n = 0;
    for (size_t k = 0; k < ls->n_sent; k++) {
        const struct lockstep_sent *m = &ls->sent[k];
        n += (type == 0 || m->type == type) && (from < 0 || (int)m->from - 1 == from) &&
             (to < 0 || (int)m->to - 1 == to);
    }
    return n;
}

int lockstep_leader(struct lockstep *ls)
{
    int leader = -1;
    uint64_t best_term = 0;
    for (int i = 0; i < ls->n; i++) {
        struct craft_core_status s;
        craft_core_status(ls->cores[i], &s);
        if (!ls->down[i] && s.role == CRAFT_LEADER && s.term >= best_term) {
            leader = i;
            best_term = s.term;
        }
    }
    return leader;
}

int lockstep_elect(struct lockstep *ls, int rounds)
{
    for (int r = 0; r < rounds && lockstep_leader(ls) < 0; r++) {
        lockstep_advance(ls);
    }
    return lockstep_leader(ls);
}
