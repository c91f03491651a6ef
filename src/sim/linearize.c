/* Porcupine's linearizability search (Wing-Gong with Lowe's memoization) for the key/value
 * model. See linearize.h for the contract. */
#include "sim/linearize.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"

const char *sim_lin_verdict_name(enum sim_lin_verdict v)
{
    switch (v) {
    case SIM_LIN_OK:
        return "linearizable";
    case SIM_LIN_ILLEGAL:
        return "illegal";
    case SIM_LIN_UNKNOWN:
        return "unknown";
    }
    return "?";
}

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finalizer: a cheap, well-spread hash of one word. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return mix64(h ^ n);
}

/* ---- Interned model states: equal strings get equal ids, so a state compares in O(1). ---- */

struct state {
    uint64_t hash;
    size_t len;
    uint8_t *bytes;
};

struct states {
    struct state *v;
    uint32_t n, cap;
    uint32_t *slots; /* open addressing: id + 1, 0 = empty */
    uint32_t n_slots;
};

static void states_free(struct states *st)
{
    for (uint32_t i = 0; i < st->n; i++) {
        free(st->v[i].bytes);
    }
    free(st->v);
    free(st->slots);
    memset(st, 0, sizeof *st);
}

static bool states_rehash(struct states *st, uint32_t n_slots)
{
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL) {
        return false;
    }
    for (uint32_t id = 0; id < st->n; id++) {
        uint32_t i = (uint32_t)st->v[id].hash & (n_slots - 1);
        while (slots[i] != 0) {
            i = (i + 1) & (n_slots - 1);
        }
        slots[i] = id + 1;
    }
    free(st->slots);
    st->slots = slots;
    st->n_slots = n_slots;
    return true;
}

/* Returns the id of the string, adding a copy if new; UINT32_MAX if out of memory. */
static uint32_t states_intern(struct states *st, const uint8_t *p, size_t len)
{
    uint64_t h = hash_bytes(p, len);
    if (st->n_slots != 0) {
        for (uint32_t i = (uint32_t)h & (st->n_slots - 1); st->slots[i] != 0;
             i = (i + 1) & (st->n_slots - 1)) {
            const struct state *s = &st->v[st->slots[i] - 1];
            if (s->hash == h && s->len == len && (len == 0 || memcmp(s->bytes, p, len) == 0)) {
                return st->slots[i] - 1;
            }
        }
    }
    if ((uint64_t)(st->n + 1) * 2 > st->n_slots &&
        !states_rehash(st, st->n_slots == 0 ? 64 : st->n_slots * 2)) {
        return UINT32_MAX;
    }
    if (st->n == st->cap) {
        uint32_t cap = st->cap == 0 ? 64 : st->cap * 2;
        struct state *grown = realloc(st->v, cap * sizeof *grown);
        if (grown == NULL) {
            return UINT32_MAX;
        }
        st->v = grown;
        st->cap = cap;
    }
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        return UINT32_MAX;
    }
    if (len > 0) {
        memcpy(copy, p, len);
    }
    uint32_t id = st->n++;
    st->v[id] = (struct state){.hash = h, .len = len, .bytes = copy};
    uint32_t i = (uint32_t)h & (st->n_slots - 1);
    while (st->slots[i] != 0) {
        i = (i + 1) & (st->n_slots - 1);
    }
    st->slots[i] = id + 1;
    return id;
}

/* ---- The memo: configurations (linearized set, state) already explored. ---- */

struct memo {
    uint32_t words;    /* bitset words per entry */
    uint64_t *arena;   /* entries of (words + 1) words: state id, then the bitset */
    uint64_t *hashes;
    uint32_t n, cap;
    uint32_t *slots;
    uint32_t n_slots;
};

static void memo_free(struct memo *mc)
{
    free(mc->arena);
    free(mc->hashes);
    free(mc->slots);
    memset(mc, 0, sizeof *mc);
}

static bool memo_rehash(struct memo *mc, uint32_t n_slots)
{
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL) {
        return false;
    }
    for (uint32_t e = 0; e < mc->n; e++) {
        uint32_t i = (uint32_t)mc->hashes[e] & (n_slots - 1);
        while (slots[i] != 0) {
            i = (i + 1) & (n_slots - 1);
        }
        slots[i] = e + 1;
    }
    free(mc->slots);
    mc->slots = slots;
    mc->n_slots = n_slots;
    return true;
}

/* Adds (bits, state) unless present. Returns 1 if added, 0 if already there, -1 if out of
 * memory. */
static int memo_add(struct memo *mc, const uint64_t *bits, uint32_t state, uint64_t hash)
{
    size_t width = (size_t)mc->words + 1;
    if (mc->n_slots != 0) {
        for (uint32_t i = (uint32_t)hash & (mc->n_slots - 1); mc->slots[i] != 0;
             i = (i + 1) & (mc->n_slots - 1)) {
            uint32_t e = mc->slots[i] - 1;
            const uint64_t *ent = mc->arena + (size_t)e * width;
            if (mc->hashes[e] == hash && ent[0] == state &&
                memcmp(ent + 1, bits, mc->words * sizeof *bits) == 0) {
                return 0;
            }
        }
    }
    if ((uint64_t)(mc->n + 1) * 2 > mc->n_slots &&
        !memo_rehash(mc, mc->n_slots == 0 ? 1024 : mc->n_slots * 2)) {
        return -1;
    }
    if (mc->n == mc->cap) {
        uint32_t cap = mc->cap == 0 ? 256 : mc->cap * 2;
        uint64_t *arena = realloc(mc->arena, (size_t)cap * width * sizeof *arena);
        if (arena == NULL) {
            return -1;
        }
        mc->arena = arena;
        uint64_t *hashes = realloc(mc->hashes, (size_t)cap * sizeof *hashes);
        if (hashes == NULL) {
            return -1;
        }
        mc->hashes = hashes;
        mc->cap = cap;
    }
    uint32_t e = mc->n++;
    uint64_t *ent = mc->arena + (size_t)e * width;
    ent[0] = state;
    memcpy(ent + 1, bits, mc->words * sizeof *bits);
    mc->hashes[e] = hash;
    uint32_t i = (uint32_t)hash & (mc->n_slots - 1);
    while (mc->slots[i] != 0) {
        i = (i + 1) & (mc->n_slots - 1);
    }
    mc->slots[i] = e + 1;
    return 1;
}

/* ---- Describing a failure. ---- */

struct out_buf {
    char *p;
    size_t cap, len;
};

static void out_printf(struct out_buf *o, const char *fmt, ...)
{
    if (o->cap == 0 || o->len + 1 >= o->cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        o->len += (size_t)n;
        if (o->len >= o->cap) {
            o->len = o->cap - 1;
        }
    }
}

static void out_bytes(struct out_buf *o, const uint8_t *p, size_t n)
{
    enum { SHOWN_MAX = 40 };
    out_printf(o, "'");
    for (size_t i = 0; i < n && i < SHOWN_MAX; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\') {
            out_printf(o, "%c", p[i]);
        } else {
            out_printf(o, "\\x%02x", p[i]);
        }
    }
    out_printf(o, n > SHOWN_MAX ? "'...(%zu bytes)" : "'", n);
}

static void out_op(struct out_buf *o, const struct sim_lin_op *ops, uint32_t i)
{
    const struct sim_lin_op *op = &ops[i];
    out_printf(o, "  #%u client %llu ", i, (unsigned long long)op->client);
    static const char *const names[] = {"get", "put", "append"};
    out_printf(o, "%s(", names[op->kind]);
    out_bytes(o, op->key, op->key_len);
    if (op->kind == SIM_LIN_GET) {
        out_printf(o, ") -> ");
        out_bytes(o, op->output, op->output_len);
    } else {
        out_printf(o, ", ");
        out_bytes(o, op->input, op->input_len);
        out_printf(o, ")");
    }
    out_printf(o, " [%llu, %llu]\n", (unsigned long long)op->call, (unsigned long long)op->ret);
}

/* ---- The search over one key's sub-history. ---- */

struct event {
    uint64_t time;
    uint32_t local; /* index of the op within the sub-history */
    bool is_ret;
};

static int event_cmp(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->time != y->time) {
        return x->time < y->time ? -1 : 1;
    }
    if (x->is_ret != y->is_ret) {
        return x->is_ret ? 1 : -1; /* calls before returns at equal times */
    }
    return x->local < y->local ? -1 : x->local > y->local;
}

/* Node 0 is the list head; nodes 1..2m are events. */
struct node {
    uint32_t prev, next; /* 0 as next = end of list */
    uint32_t local;
    uint32_t match; /* call: its return's node; return: 0 */
};

struct frame {
    uint32_t node;
    uint32_t state; /* state before the op was linearized */
};

struct search {
    const struct sim_lin_op *ops;
    const uint32_t *idx; /* local -> global op index */
    uint32_t m;
    struct node *nodes;
    struct frame *stack;
    uint32_t depth;
    uint32_t *best; /* locals of the longest linearization found */
    uint32_t n_best;
    uint8_t *scratch;
    size_t scratch_cap;
};

static void lift(struct node *nd, uint32_t e)
{
    struct node *c = &nd[e], *r = &nd[c->match];
    nd[c->prev].next = c->next;
    if (c->next != 0) {
        nd[c->next].prev = c->prev;
    }
    nd[r->prev].next = r->next;
    if (r->next != 0) {
        nd[r->next].prev = r->prev;
    }
}

static void unlift(struct node *nd, uint32_t e)
{
    struct node *c = &nd[e];
    uint32_t ri = c->match;
    struct node *r = &nd[ri];
    nd[r->prev].next = ri;
    if (r->next != 0) {
        nd[r->next].prev = ri;
    }
    nd[c->prev].next = e;
    if (c->next != 0) {
        nd[c->next].prev = e;
    }
}

/* The model's step: returns the new state id, UINT32_MAX - 1 if illegal, UINT32_MAX if out
 * of memory. */
static uint32_t model_step(struct search *s, struct states *st, uint32_t state,
                           const struct sim_lin_op *op)
{
    const struct state *cur = &st->v[state];
    switch (op->kind) {
    case SIM_LIN_GET:
        if (op->output_len == cur->len &&
            (cur->len == 0 || memcmp(op->output, cur->bytes, cur->len) == 0)) {
            return state;
        }
        return UINT32_MAX - 1;
    case SIM_LIN_PUT:
        return states_intern(st, op->input, op->input_len);
    case SIM_LIN_APPEND: {
        size_t len = cur->len + op->input_len;
        if (len > s->scratch_cap) {
            size_t cap = len * 2;
            uint8_t *grown = realloc(s->scratch, cap);
            if (grown == NULL) {
                return UINT32_MAX;
            }
            s->scratch = grown;
            s->scratch_cap = cap;
            cur = &st->v[state];
        }
        if (cur->len > 0) {
            memcpy(s->scratch, cur->bytes, cur->len);
        }
        if (op->input_len > 0) {
            memcpy(s->scratch + cur->len, op->input, op->input_len);
        }
        return states_intern(st, s->scratch, len);
    }
    }
    CRAFT_UNREACHABLE();
}

/* Checks one key; *steps is charged and bounded by budget. */
static enum sim_lin_verdict check_key(struct search *s, uint64_t budget, uint64_t *steps,
                                      int *err)
{
    uint32_t m = s->m;
    enum sim_lin_verdict verdict = SIM_LIN_UNKNOWN;
    struct states st = {0};
    struct memo mc = {.words = (m + 63) / 64};
    struct event *ev = malloc(2 * (size_t)m * sizeof *ev);
    uint64_t *bits = calloc(mc.words, sizeof *bits);
    uint64_t *zobrist = malloc((size_t)m * sizeof *zobrist);
    s->nodes = calloc(2 * (size_t)m + 1, sizeof *s->nodes);
    s->stack = malloc((size_t)m * sizeof *s->stack);
    s->best = malloc((size_t)m * sizeof *s->best);
    s->depth = 0;
    s->n_best = 0;
    uint32_t *node_of_call = malloc((size_t)m * sizeof *node_of_call);
    uint32_t state = states_intern(&st, NULL, 0);
    if (ev == NULL || bits == NULL || zobrist == NULL || s->nodes == NULL ||
        s->stack == NULL || s->best == NULL || node_of_call == NULL || state == UINT32_MAX) {
        *err = CRAFT_ENOMEM;
        goto free_all;
    }
    for (uint32_t i = 0; i < m; i++) {
        const struct sim_lin_op *op = &s->ops[s->idx[i]];
        ev[2 * i] = (struct event){.time = op->call, .local = i, .is_ret = false};
        ev[2 * i + 1] = (struct event){.time = op->ret, .local = i, .is_ret = true};
        zobrist[i] = mix64(0x6c696e6561726973ull ^ ((uint64_t)i << 1));
    }
    qsort(ev, 2 * (size_t)m, sizeof *ev, event_cmp);
    for (uint32_t k = 0; k < 2 * m; k++) {
        uint32_t e = k + 1;
        s->nodes[e] = (struct node){.prev = k, .next = k + 1 < 2 * m ? e + 1 : 0,
                                    .local = ev[k].local};
        if (!ev[k].is_ret) {
            node_of_call[ev[k].local] = e;
        } else {
            CRAFT_ASSERT(node_of_call[ev[k].local] < e); /* its call sorted before it */
            s->nodes[node_of_call[ev[k].local]].match = e;
        }
    }
    s->nodes[0] = (struct node){.next = m > 0 ? 1 : 0};

    uint64_t set_hash = 0;
    uint32_t e = s->nodes[0].next;
    while (s->nodes[0].next != 0) {
        if (*steps >= budget) {
            goto free_all; /* unknown */
        }
        (*steps)++;
        struct node *nd = &s->nodes[e];
        if (nd->match != 0) {
            /* A call: try to linearize it now. */
            const struct sim_lin_op *op = &s->ops[s->idx[nd->local]];
            uint32_t next_state = model_step(s, &st, state, op);
            if (next_state == UINT32_MAX) {
                *err = CRAFT_ENOMEM;
                goto free_all;
            }
            if (next_state == UINT32_MAX - 1) {
                e = nd->next;
                continue;
            }
            uint32_t l = nd->local;
            bits[l / 64] |= 1ull << (l % 64);
            uint64_t h = set_hash ^ zobrist[l];
            int added = memo_add(&mc, bits, next_state, mix64(h ^ next_state));
            if (added < 0) {
                *err = CRAFT_ENOMEM;
                goto free_all;
            }
            if (added == 0) {
                bits[l / 64] &= ~(1ull << (l % 64));
                e = nd->next;
                continue;
            }
            set_hash = h;
            s->stack[s->depth++] = (struct frame){.node = e, .state = state};
            if (s->depth > s->n_best) {
                for (uint32_t i = 0; i < s->depth; i++) {
                    s->best[i] = s->nodes[s->stack[i].node].local;
                }
                s->n_best = s->depth;
            }
            state = next_state;
            lift(s->nodes, e);
            e = s->nodes[0].next;
        } else {
            /* A return whose op is not linearized: undo the last choice. */
            if (s->depth == 0) {
                verdict = SIM_LIN_ILLEGAL;
                goto free_all;
            }
            struct frame f = s->stack[--s->depth];
            uint32_t l = s->nodes[f.node].local;
            bits[l / 64] &= ~(1ull << (l % 64));
            set_hash ^= zobrist[l];
            state = f.state;
            unlift(s->nodes, f.node);
            e = s->nodes[f.node].next;
        }
    }
    verdict = SIM_LIN_OK;

free_all:
    free(node_of_call);
    free(zobrist);
    free(bits);
    free(ev);
    memo_free(&mc);
    states_free(&st);
    return verdict;
}

/* ---- Partitioning by key. ---- */

static int key_cmp_ops(const struct sim_lin_op *a, const struct sim_lin_op *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = n > 0 ? memcmp(a->key, b->key, n) : 0;
    if (c != 0) {
        return c;
    }
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

/* qsort has no context argument in C11: each element carries its op. */
struct keyed {
    const struct sim_lin_op *op;
    uint32_t index;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = key_cmp_ops(x->op, y->op);
    if (c != 0) {
        return c;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

struct group {
    uint32_t first, n; /* a run of the sorted index array */
};

static int group_cmp(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->n != y->n) {
        return x->n < y->n ? -1 : 1;
    }
    return x->first < y->first ? -1 : x->first > y->first;
}

static void describe(struct search *s, struct out_buf *o)
{
    enum { LINES_MAX = 40 };
    const struct sim_lin_op *first = &s->ops[s->idx[0]];
    out_printf(o, "key ");
    out_bytes(o, first->key, first->key_len);
    out_printf(o, " is not linearizable: %u ops, longest linearization %u ops:\n", s->m,
               s->n_best);
    uint32_t from = s->n_best > LINES_MAX ? s->n_best - LINES_MAX : 0;
    if (from > 0) {
        out_printf(o, "  ... (%u earlier ops)\n", from);
    }
    for (uint32_t i = from; i < s->n_best; i++) {
        out_op(o, s->ops, s->idx[s->best[i]]);
    }
    /* The rest, in call order: none of them can take effect next. */
    bool *in_best = calloc(s->m, sizeof *in_best);
    if (in_best == NULL) {
        return;
    }
    for (uint32_t i = 0; i < s->n_best; i++) {
        in_best[s->best[i]] = true;
    }
    out_printf(o, "then none of these can take effect (%u ops, by call time):\n",
               s->m - s->n_best);
    uint32_t shown = 0;
    for (uint32_t k = 1; k <= 2 * s->m && shown < LINES_MAX; k++) {
        const struct node *nd = &s->nodes[k];
        if (nd->match != 0 && !in_best[nd->local]) {
            out_op(o, s->ops, s->idx[nd->local]);
            shown++;
        }
    }
    if (shown < s->m - s->n_best) {
        out_printf(o, "  ... (%u more)\n", s->m - s->n_best - shown);
    }
    free(in_best);
}

enum sim_lin_verdict sim_linearize_check(const struct sim_lin_op *ops, size_t n,
                                         uint64_t budget_steps, struct sim_lin_result *out)
{
    struct out_buf o = {.p = out->desc, .cap = out->desc_cap};
    if (o.cap > 0) {
        o.p[0] = '\0';
    }
    out->verdict = SIM_LIN_OK;
    out->steps = 0;
    out->n_keys = 0;
    out->n_keys_checked = 0;
    out->bad_key_ops = 0;
    out->bad_key_linearized = 0;
    out->err = CRAFT_OK;
    CRAFT_ASSERT(n < UINT32_MAX / 2);
    for (size_t i = 0; i < n; i++) {
        CRAFT_ASSERT(ops[i].call <= ops[i].ret);
        CRAFT_ASSERT(ops[i].kind <= SIM_LIN_APPEND);
    }
    if (n == 0) {
        return SIM_LIN_OK;
    }
    uint32_t *idx = malloc(n * sizeof *idx);
    struct group *groups = malloc(n * sizeof *groups);
    struct keyed *keyed = malloc(n * sizeof *keyed);
    if (idx == NULL || groups == NULL || keyed == NULL) {
        free(idx);
        free(groups);
        free(keyed);
        out->err = CRAFT_ENOMEM;
        out->verdict = SIM_LIN_UNKNOWN;
        return out->verdict;
    }
    for (uint32_t i = 0; i < n; i++) {
        keyed[i] = (struct keyed){.op = &ops[i], .index = i};
    }
    qsort(keyed, n, sizeof *keyed, keyed_cmp);
    for (uint32_t i = 0; i < n; i++) {
        idx[i] = keyed[i].index;
    }
    free(keyed);
    size_t n_groups = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i == 0 || key_cmp_ops(&ops[idx[i - 1]], &ops[idx[i]]) != 0) {
            groups[n_groups++] = (struct group){.first = i, .n = 0};
        }
        groups[n_groups - 1].n++;
    }
    out->n_keys = n_groups;
    /* Smallest first: the first failure is then the smallest failing key. */
    qsort(groups, n_groups, sizeof *groups, group_cmp);

    for (size_t g = 0; g < n_groups; g++) {
        struct search s = {.ops = ops, .idx = idx + groups[g].first, .m = groups[g].n};
        int err = CRAFT_OK;
        enum sim_lin_verdict v = check_key(&s, budget_steps, &out->steps, &err);
        if (v == SIM_LIN_ILLEGAL) {
            out->verdict = SIM_LIN_ILLEGAL;
            out->bad_key_ops = s.m;
            out->bad_key_linearized = s.n_best;
            describe(&s, &o);
        }
        free(s.nodes);
        free(s.stack);
        free(s.best);
        free(s.scratch);
        if (err != CRAFT_OK) {
            out->err = err;
        }
        if (v == SIM_LIN_ILLEGAL) {
            out->n_keys_checked++;
            break;
        }
        if (v == SIM_LIN_UNKNOWN) {
            /* The budget (or memory) is spent: later keys stay unchecked. */
            out->verdict = SIM_LIN_UNKNOWN;
            break;
        }
        out->n_keys_checked++;
    }
    free(idx);
    free(groups);
    return out->verdict;
}
