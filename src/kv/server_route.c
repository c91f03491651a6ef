/* craftkv: which group serves a command (docs/design/craftkv.md, "Groups").
 *
 * Unsharded, every command goes to the server's only group. Sharded, a command's keys
 * name one slot (Redis Cluster's rule: keys of different slots are refused with CROSSSLOT,
 * even if one group owns both slots, so a command's fate never depends on placement), the
 * latest configuration this server knows (server_shard.c publishes it) names the slot's
 * owner, and the command goes to this process's replica of that group; an owner hosted
 * elsewhere is a MOVED redirect to one of its servers. The owner's state machine checks
 * ownership again when it applies or reads (kv_sm.h): a configuration this server knew
 * before the group did ends as MOVED or TRYAGAIN from there, rewritten here into Redis's
 * shape. Loop thread, except the reply rewriting (any thread that holds the reply). */
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/server_internal.h"
#include "shard/slots.h"
#include "shard/view.h"

/* Folds one key into *slot: -1 none yet, then its slot; -2 once two keys differ. */
static void fold_key(const struct craft_resp_arg *key, int *slot)
{
    int s = (int)craft_key_slot((const uint8_t *)key->data, key->len);
    if (*slot == -1)
        *slot = s;
    else if (*slot != s)
        *slot = -2;
}

static void fold_cmd(const struct craftkv_cmd_def *d, size_t argc,
                     const struct craft_resp_arg *argv, int *slot)
{
    switch (d->keys) {
    case K_ONE:
        if (argc > 1)
            fold_key(&argv[1], slot);
        break;
    case K_ALL:
        for (size_t i = 1; i < argc; i++)
            fold_key(&argv[i], slot);
        break;
    case K_PAIRS:
        for (size_t i = 1; i < argc; i += 2)
            fold_key(&argv[i], slot);
        break;
    case K_TWO:
        for (size_t i = 1; i < argc && i <= 2; i++)
            fold_key(&argv[i], slot);
        break;
    default:
        break;
    }
}

/* A count of at most 9 digits, or -1. */
static long long arg_count(const struct craft_resp_arg *a)
{
    uint64_t v;
    return craftkv_arg_u64(a, 999999999, &v) ? (long long)v : -1;
}

/* CRAFT.EXEC <nw> (<key> <digest>)*nw <n> (<argc> <name> <args>...)*n: the watched keys
 * and every queued command's keys. A malformed list folds what it can: the command's own
 * write refuses it later. */
static void fold_exec(size_t argc, const struct craft_resp_arg *argv, int *slot)
{
    long long nw = argc > 1 ? arg_count(&argv[1]) : -1;
    if (nw < 0)
        return;
    size_t i = 2;
    for (long long k = 0; k < nw && i + 1 < argc; k++, i += 2)
        fold_key(&argv[i], slot);
    long long n = i < argc ? arg_count(&argv[i]) : -1;
    i++;
    for (long long k = 0; k < n && i < argc; k++) {
        long long sub = arg_count(&argv[i]);
        if (sub < 1 || (size_t)sub > argc - i - 1)
            return;
        const struct craftkv_cmd_def *d = craftkv_cmd_find(argv[i + 1].data, argv[i + 1].len);
        if (d)
            fold_cmd(d, (size_t)sub, &argv[i + 1], slot);
        i += 1 + (size_t)sub;
    }
}

int craftkv_task_slot(struct craftkv_task *t)
{
    if (t->slot == CRAFTKV_SLOT_UNKNOWN)
        t->slot = craftkv_cmd_slot(t->def, t->argc, t->argv);
    return t->slot;
}

int craftkv_cmd_slot(const struct craftkv_cmd_def *d, size_t argc,
                     const struct craft_resp_arg *argv)
{
    int slot = -1;
    if (strcmp(d->name, CRAFTKV_EXEC_CMD) == 0)
        fold_exec(argc, argv, &slot);
    else
        fold_cmd(d, argc, argv, &slot);
    return slot;
}

struct craftkv_group *craftkv_group_of(struct craftkv_server *s, uint64_t gid)
{
    for (size_t i = 0; i < s->n_groups; i++)
        if (s->groups[i].gid == gid)
            return &s->groups[i];
    return NULL;
}

const struct craftkv_route *craftkv_route_now(struct craftkv_server *s)
{
    return atomic_load_explicit(&s->route, memory_order_acquire);
}

/* A server of group index k in r's configuration, for a redirect: this process's own
 * client address if it is one of them (it will serve the retry), else the group's leader
 * as far as this process knows (where the cluster views say its slots are mastered), else
 * the first. */
static const char *redirect_addr(struct craftkv_server *s, const struct craftkv_route *r,
                                 uint32_t k)
{
    const struct craft_shard_group *grp = &r->cfg.groups[k];
    for (uint32_t i = 0; i < grp->n_servers; i++)
        if (strcmp(grp->servers[i], s->opts.listen_client) == 0)
            return grp->servers[i];
    uint64_t leader = craftkv_shard_leader(s, r, k);
    const char *addr = leader ? craftkv_client_addr(s, leader) : NULL;
    for (uint32_t i = 0; addr && i < grp->n_servers; i++)
        if (strcmp(grp->servers[i], addr) == 0)
            return grp->servers[i];
    return grp->servers[0];
}

void craftkv_reply_slot_elsewhere(struct craftkv_server *s, const struct craftkv_group *g,
                                  uint16_t slot, uint8_t state, struct craft_resp_buf *out)
{
    const struct craftkv_route *r = craftkv_route_now(s);
    uint8_t k = r ? r->cfg.owner[slot] : CRAFT_SHARD_NONE;
    if (k == CRAFT_SHARD_NONE) {
        craft_resp_append_error(out, "CLUSTERDOWN Hash slot not served");
    } else if (state == CRAFT_SLOT_PULLING || (g && r->cfg.groups[k].gid == g->gid)) {
        /* Its keys are on their way here, or this server's configuration is newer than the
         * group's: the group will serve it soon. */
        craft_resp_append_error(out, CRAFTKV_SLOT_TRYAGAIN "being migrated or configured; retry");
    } else {
        craft_resp_append_errorf(out, "MOVED %u %s", (unsigned)slot, redirect_addr(s, r, k));
    }
}

/* The slot of a "-MOVED <slot>..." reply at p[0..n), or -1; *end: just past its digits. */
static int parse_moved(const char *p, size_t n, size_t *end)
{
    if (n < 9 || memcmp(p, "-" CRAFT_KV_ERR_MOVED " ", 7) != 0)
        return -1;
    int slot = 0;
    size_t i = 7;
    while (i < n && p[i] >= '0' && p[i] <= '9' && slot < (int)CRAFT_SLOTS)
        slot = slot * 10 + (p[i++] - '0');
    *end = i;
    return i > 7 && slot < (int)CRAFT_SLOTS ? slot : -1;
}

void craftkv_route_result(struct craftkv_server *s, const struct craftkv_group *g,
                          struct craft_resp_buf *out, size_t from)
{
    /* The state machine's "-MOVED <slot>\r\n" (kv_sm.h): no address of its own. */
    size_t end, n = out->len - from;
    int slot = parse_moved(out->data + from, n, &end);
    if (slot < 0 || end + 2 != n || out->data[from + end] != '\r')
        return; /* already an address, or not ours */
    out->len = from;
    craftkv_reply_slot_elsewhere(s, g, (uint16_t)slot, CRAFT_SLOT_ABSENT, out);
}

/* This process's replica of the owner of slot in r, or NULL (no table yet, nobody owns it,
 * or its owner is hosted elsewhere). */
static struct craftkv_group *local_owner(struct craftkv_server *s, const struct craftkv_route *r,
                                         int slot)
{
    uint8_t k = r && slot >= 0 ? r->cfg.owner[slot] : CRAFT_SHARD_NONE;
    return k != CRAFT_SHARD_NONE && r->local[k] >= 0 ? &s->groups[r->local[k]] : NULL;
}

struct craftkv_group *craftkv_route_cmd(struct craftkv_server *s, const struct craftkv_route *r,
                                        const struct craftkv_cmd_def *d, size_t argc,
                                        const struct craft_resp_arg *argv,
                                        struct craft_resp_buf *out, int *slot_out)
{
    *slot_out = CRAFTKV_SLOT_UNKNOWN;
    if (!s->sharded)
        return &s->groups[0];
    int slot = craftkv_cmd_slot(d, argc, argv);
    *slot_out = slot;
    if (slot == -2) {
        craft_resp_append_error(out, "CROSSSLOT Keys in request don't hash to the same slot");
        return NULL;
    }
    if (slot == -1) {
        /* Commands without keys span every group (DBSIZE, SCAN, FLUSHALL): not built yet. */
        craft_resp_append_errorf(out, "ERR '%s' is not supported by a sharded craftkv yet "
                                      "(it spans groups); send it to each group's keys",
                                 d->name);
        return NULL;
    }
    struct craftkv_group *g = local_owner(s, r, slot);
    if (!g)
        craftkv_reply_slot_elsewhere(s, NULL, (uint16_t)slot, CRAFT_SLOT_ABSENT, out);
    return g;
}

void craftkv_session_next(struct craftkv_conn *c, const struct craftkv_group *g,
                          struct craftkv_task *t)
{
    struct craftkv_session *ss = &c->sessions[g->index];
    /* A random session id: no round trip to learn one (kv.md). */
    while (ss->id == 0)
        if (getrandom(&ss->id, sizeof ss->id, 0) != sizeof ss->id)
            ss->id = ((uint64_t)time(NULL) << 20) ^ c->id ^ (uint64_t)getpid() << 40 ^ g->index;
    t->session = ss->id;
    t->seq = ++ss->seq;
    t->open_session = !ss->opened;
    ss->opened = true;
}

/* The local group that owns slot in the latest configuration, if it is not `from`. */
static struct craftkv_group *owner_here(struct craftkv_server *s, const struct craftkv_group *from,
                                        int slot)
{
    struct craftkv_group *g = local_owner(s, craftkv_route_now(s), slot);
    return g != from ? g : NULL;
}

/* The slot of a "-MOVED <slot> ..." reply (as the state machine or a leader sends it), or -1. */
static int moved_slot(const struct craft_resp_buf *out)
{
    size_t end;
    return parse_moved(out->data, out->len, &end);
}

/* A reply that is a shard group's refusal (the command did not run): its kind, and the
 * slot of a MOVED. */
enum refusal { REFUSAL_NONE, REFUSAL_TRYAGAIN, REFUSAL_MOVED };

static enum refusal refusal_of(const struct craftkv_task *t, int *slot)
{
    if (!t->answered)
        return REFUSAL_NONE;
    /* Only a slot's TRYAGAIN: the one a deadline gives ("no leader or no quorum") is an
     * outcome unknown, not a refusal. */
    size_t n = strlen(CRAFTKV_SLOT_TRYAGAIN);
    if (t->out.len > n && t->out.data[0] == '-' && memcmp(t->out.data + 1, CRAFTKV_SLOT_TRYAGAIN, n) == 0)
        return REFUSAL_TRYAGAIN;
    *slot = moved_slot(&t->out);
    return *slot >= 0 ? REFUSAL_MOVED : REFUSAL_NONE;
}

/* The group a refused command goes to next: where the slot is on its way (TRYAGAIN) or
 * routed already (its group has not caught up), the same; another group hosted here that
 * owns the slot now; NULL if the owner is hosted elsewhere (its client follows the MOVED). */
static struct craftkv_group *refused_to(struct craftkv_server *s, const struct craftkv_route *r,
                                        struct craftkv_group *from, enum refusal ref, int slot)
{
    return ref == REFUSAL_TRYAGAIN ? from : local_owner(s, r, slot);
}

enum craftkv_reroute craftkv_reroute_writes(struct craftkv_server *s, struct craftkv_task *head)
{
    if (!s->sharded || head->forwarded || !head->conn || head->conn->dead)
        return CRAFTKV_REROUTE_NONE;
    /* Every command settled first: a new seq proposed while an older one of its session
     * is still on its way could close that one (the state machine never runs a seq below
     * its session's last). A later step comes back here once they are. */
    for (const struct craftkv_task *t = head; t; t = t->chain)
        if (!t->answered)
            return CRAFTKV_REROUTE_NONE;
    const struct craftkv_route *r = craftkv_route_now(s);
    struct craftkv_group *from = head->grp;
    /* One group per round: this one if any refusal stays here, else the first other one. */
    struct craftkv_group *dest = NULL;
    for (const struct craftkv_task *t = head; t && dest != from; t = t->chain) {
        int slot = -1;
        enum refusal ref = refusal_of(t, &slot);
        struct craftkv_group *g = ref == REFUSAL_NONE ? NULL : refused_to(s, r, from, ref, slot);
        if (g && (!dest || g == from))
            dest = g;
    }
    if (!dest)
        return CRAFTKV_REROUTE_NONE;
    /* Each refusal closed its seq in the group that refused it (refusal_final: kv_cmd.h),
     * so no copy of it can still run there. The commands going to dest run again under
     * new seqs of this connection's session there, in request order; the window of saved
     * results keeps from the first of them (every older seq is answered). The others keep
     * their refusal for a later round. */
    uint64_t first = 0;
    for (struct craftkv_task *t = head; t; t = t->chain) {
        int slot = -1;
        enum refusal ref = refusal_of(t, &slot);
        bool goes = ref != REFUSAL_NONE && refused_to(s, r, from, ref, slot) == dest;
        t->grp = dest;
        if (!goes)
            continue;
        t->out.len = 0;
        t->answered = false;
        craftkv_session_next(head->conn, dest, t);
        if (first == 0)
            first = t->seq;
        t->ack = first;
    }
    CRAFT_ASSERT(first != 0);
    return dest == from ? CRAFTKV_REROUTE_WAIT : CRAFTKV_REROUTE_MOVED;
}

bool craftkv_reroute_reads(struct craftkv_server *s, struct craftkv_task *head,
                           struct craft_kv_read *r)
{
    if (!s->sharded)
        return false;
    struct craftkv_group *to = NULL;
    for (struct craftkv_task *t = head; t; t = t->chain) {
        int slot = craftkv_task_slot(t);
        uint8_t st = CRAFT_SLOT_SERVING;
        if (slot >= 0 && craft_kv_read_slot_state(r, (uint16_t)slot, &st) != CRAFT_OK)
            return false;
        struct craftkv_group *g = craft_slot_state_served(st) ? NULL
                                                               : owner_here(s, head->grp, slot);
        if (!g || (to && g != to))
            return false; /* served here, or elsewhere than one local group */
        to = g;
    }
    if (!to)
        return false;
    for (struct craftkv_task *t = head; t; t = t->chain)
        t->grp = to;
    return true;
}
