/* Shard groups on the simulator: replicas, their drivers, group-to-group calls, and
 * routing clerks (shardkv_service.h). */
#include "sim/shardkv_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/kv_cmd.h"
#include "kv/kv_sm.h"
#include "shard/slots.h"
#include "shard/view.h"
#include "sim/clock.h"
#include "sim/disk.h"
#include "sim/net.h"
#include "sim/kv_history.h"
#include "sim/kv_replica.h"
#include "sim/linearize.h"
#include "sim/rsm.h"
#include "sim/sim_internal.h"

#define DRIVER_MS   100u /* servers poll the controller about every 100 ms (handout) */
#define MOVED_MS    100u /* a clerk told MOVED sleeps, then asks the controller */
#define TRYAGAIN_MS 50u
#define KEY_MAX     32u
#define GROUPS_MAX  8
/* The largest hand-over payload (craftkv's smallest, CRAFTKV_HANDOVER_BYTES_MIN): a group's
 * keys beyond it move in parts (sharding.md, "Hand-overs in parts"). */
#define HANDOVER_BYTES_MAX (8u << 10)

/* Replies to clerks: a tag byte, then the value or the error's text. */
#define R_OK    'O'
#define R_VALUE 'V'
#define R_MOVED 'M'
#define R_AGAIN 'T'
#define R_ERR   'E'

struct group;

struct replica {
    struct group *grp;
    int i;
    struct sim_kv_replica r;
    struct craft_kv_result *last; /* the result of the entry just applied, for reply() */
    uint64_t gen;                 /* bumped at every start: older calls' answers are dropped */
    struct sim_ctl_clerk *ctl;    /* the driver's controller clerk */
    uint64_t want;                /* the configuration number asked for (0: none) */
    bool pulling, deleting;       /* a call of each kind in flight */
    int next_server;              /* the peer server tried next (round robin) */
    unsigned peer_turn;           /* the peer group asked next (round robin) */
    struct craft_shard_view *view;
    /* Per peer group: how far a hand-over in parts went, as craftkv's driver keeps it (in
     * memory: lost at a restart): its configuration and slots, the last key known to be
     * installed here, and the last key of a part proposed since, which counts once it is
     * in this replica's store. */
    struct pull {
        uint64_t num;
        struct craft_slot_set slots;
        struct craft_kv_export_cursor cur, next;
        bool check;
    } pulls[GROUPS_MAX];
};

struct group {
    struct sim_skv *s;
    int g;
    uint64_t gid;
    struct sim_rsm *rsm;
    struct sim_cluster *c;
    struct replica reps[CRAFT_CONF_NODES_MAX];
};

struct sim_skv_clerk {
    struct sim_skv *s;
    uint64_t client, session, seq;
    struct sim_ctl_clerk *ctl;
    struct craft_shard_config *config; /* the latest the clerk knows */
    struct sim_rsm_clerk *rc[GROUPS_MAX];
    bool opened[GROUPS_MAX];
    /* the current op */
    bool busy;
    uint8_t kind;
    char key[KEY_MAX];
    char *value;
    size_t value_len;
    uint64_t call;
    int group; /* where it was sent last */
    sim_skv_done_fn done;
    void *arg;
    char *res;
    size_t res_len;
};

struct sim_skv {
    struct sim_cluster *root;
    struct sim_ctl *ctl;
    int n, n_groups, maxraftstate;
    struct group groups[GROUPS_MAX];
    struct sim_skv_clerk **clerks;
    size_t n_clerks, cap_clerks;
    uint64_t next_session;
    struct sim_kv_history *hist;
    struct call *calls; /* in flight */
};

static struct group *group_of_gid(struct sim_skv *s, uint64_t gid)
{
    if (gid < SIM_SKV_GID_BASE || gid >= SIM_SKV_GID_BASE + (uint64_t)s->n_groups) {
        return NULL;
    }
    return &s->groups[gid - SIM_SKV_GID_BASE];
}

static uint8_t *reply_bytes(char tag, const void *p, size_t n, size_t *len)
{
    uint8_t *b = sim_xrealloc(NULL, n + 1);
    b[0] = (uint8_t)tag;
    if (n > 0) {
        memcpy(b + 1, p, n);
    }
    *len = n + 1;
    return b;
}

/* ---- the replicas' state machines (sim_rsm_service) ---- */

static void svc_start(void *ctx, int i)
{
    struct group *grp = ctx;
    struct replica *rep = &grp->reps[i];
    sim_kv_replica_open(&rep->r, grp->gid);
    craft_kv_result_free(rep->last);
    rep->last = NULL;
    rep->gen++;
    rep->pulling = rep->deleting = false;
    rep->want = 0;
    memset(rep->pulls, 0, sizeof rep->pulls);
}

static void svc_apply(void *ctx, int i, const struct craft_entry *e)
{
    struct group *grp = ctx;
    struct replica *rep = &grp->reps[i];
    craft_kv_result_free(rep->last);
    rep->last = NULL;
    int err = sim_kv_replica_apply(&rep->r, e->index, e->data, e->len, &rep->last);
    if (err != CRAFT_OK) {
        sim_fail(grp->c, "group %llu server %d: kv apply at %llu: %s",
                 (unsigned long long)grp->gid, i, (unsigned long long)e->index,
                 craft_strerror(err));
    }
}

/* A clerk's command just applied at e: its answer. A get (a NOOP of its session) reads the
 * key right there, if the group serves its slot there. */
static void svc_reply(void *ctx, int i, void *ck_arg, const struct craft_entry *e,
                      uint8_t **reply, size_t *len)
{
    struct group *grp = ctx;
    struct replica *rep = &grp->reps[i];
    const struct sim_skv_clerk *ck = ck_arg;
    struct craft_kv_cmd cmd;
    CRAFT_ASSERT(craft_kv_cmd_decode(e->data, e->len, &cmd) == CRAFT_OK);
    if (cmd.op == CRAFT_KV_OP_NOOP && ck->kind == SIM_LIN_GET) {
        struct craft_kv_read *rd;
        CRAFT_ASSERT(craft_kv_read_begin(rep->r.sm, &rd) == CRAFT_OK);
        uint8_t st;
        uint16_t slot = craft_key_slot((const uint8_t *)ck->key, strlen(ck->key));
        CRAFT_ASSERT(craft_kv_read_slot_state(rd, slot, &st) == CRAFT_OK);
        if (craft_slot_state_served(st)) {
            const uint8_t *v = NULL;
            size_t vlen = 0;
            int err = craft_kv_read_get(rd, (const uint8_t *)ck->key, strlen(ck->key), &v, &vlen);
            CRAFT_ASSERT(err == CRAFT_OK || err == CRAFT_ENOTFOUND);
            *reply = reply_bytes(R_VALUE, v, err == CRAFT_OK ? vlen : 0, len);
        } else {
            *reply = reply_bytes(st == CRAFT_SLOT_PULLING ? R_AGAIN : R_MOVED, NULL, 0, len);
        }
        craft_kv_read_end(rd);
        return;
    }
    const struct craft_kv_result *r = rep->last;
    CRAFT_ASSERT(r != NULL);
    if (r->type != CRAFT_KV_RES_ERR) {
        *reply = reply_bytes(R_OK, NULL, 0, len);
    } else if (strncmp((const char *)r->data, CRAFT_KV_ERR_MOVED " ", 6) == 0) {
        *reply = reply_bytes(R_MOVED, NULL, 0, len);
    } else if (strcmp((const char *)r->data, CRAFT_KV_ERR_TRYAGAIN) == 0) {
        *reply = reply_bytes(R_AGAIN, NULL, 0, len);
    } else {
        *reply = reply_bytes(R_ERR, r->data, r->len, len);
    }
}

static const uint8_t *svc_snapshot(void *ctx, int i, size_t *len)
{
    struct group *grp = ctx;
    return sim_kv_replica_snapshot(&grp->reps[i].r, len);
}

static void svc_restore(void *ctx, int i, const uint8_t *blob, size_t len, uint64_t index)
{
    struct group *grp = ctx;
    int err = sim_kv_replica_restore(&grp->reps[i].r, blob, len);
    if (err != CRAFT_OK) {
        sim_fail(grp->c, "group %llu server %d: snapshot %llu does not restore: %s",
                 (unsigned long long)grp->gid, i, (unsigned long long)index,
                 craft_strerror(err));
    }
}

/* ---- the drivers ---- */

static bool leads(struct replica *rep)
{
    struct sim_cluster *c = rep->grp->c;
    if (!sim_is_alive(c, rep->i)) {
        return false;
    }
    uint64_t term;
    bool leader;
    sim_get_state(c, rep->i, &term, &leader);
    return leader;
}

/* Proposes a SHARD_* command on the replica's node (if it still leads; lost otherwise:
 * the driver proposes again at its next step). */
static void propose(struct replica *rep, uint8_t op, uint64_t num, const uint8_t *blob,
                    size_t blob_len)
{
    struct sim_cluster *c = rep->grp->c;
    struct craft_kv_cmd cmd = {.op = op, .now_ms = sim_now(c), .shard_num = num,
                               .blob = {blob, (uint32_t)blob_len}};
    size_t size = craft_kv_cmd_size(&cmd), len;
    CRAFT_ASSERT(size > 0);
    uint8_t *buf = sim_xrealloc(NULL, size);
    CRAFT_ASSERT(craft_kv_cmd_encode(&cmd, buf, size, &len) == CRAFT_OK);
    (void)sim_start_cmd(c, rep->i, buf, len, NULL, NULL);
    free(buf);
}

/* Whether a call from process `from` reaches process `to` now: the network's links and
 * the process being up, as for Raft's own messages (a group's calls share its processes'
 * connections). */
static bool reaches(struct sim_cluster *c, int from, int to)
{
    return from == to || (sim_net_link(c->net, from, to) && sim_net_is_up(c->net, to));
}

static void config_answer(struct sim_ctl_clerk *ck, void *arg, const struct sim_ctl_answer *a)
{
    struct replica *rep = arg;
    (void)ck;
    uint64_t want = rep->want;
    rep->want = 0;
    if (a->status != CRAFT_OK || a->config == NULL || a->config->num != want || !leads(rep)) {
        return; /* not there yet, or no longer ours to propose */
    }
    size_t n = craft_shard_config_size(a->config);
    uint8_t *b = sim_xrealloc(NULL, n);
    craft_shard_config_encode(a->config, b, n);
    sim_note(rep->grp->c, "group %llu server %d: proposes configuration %llu",
             (unsigned long long)rep->grp->gid, rep->i, (unsigned long long)want);
    propose(rep, CRAFT_KV_OP_SHARD_CONFIG, want, b, n);
    free(b);
}

/* A call from one group's replica to a server of another. */
enum call_kind { CALL_PULL, CALL_DELETE };
enum call_answer { ANS_FAILED, ANS_NOT_YET, ANS_DONE, ANS_PAYLOAD };

struct call {
    struct call *prev, *next; /* the service's calls in flight (freed at destroy) */
    struct replica *from;
    uint64_t gen;
    enum call_kind kind;
    struct group *to;
    int server;
    uint64_t num;
    struct craft_slot_set slots;
    enum call_answer ans;
    uint8_t *payload;
    size_t payload_len;
    struct craft_kv_export_cursor cur; /* a pull: from where, then to where */
    bool part;                         /* a pull's payload is a part */
};

static void call_free(struct sim_skv *s, struct call *k)
{
    if (k->prev != NULL) {
        k->prev->next = k->next;
    } else {
        s->calls = k->next;
    }
    if (k->next != NULL) {
        k->next->prev = k->prev;
    }
    free(k->payload);
    free(k);
}

static void call_back(struct sim_cluster *c, void *arg)
{
    struct call *k = arg;
    (void)c;
    struct replica *rep = k->from;
    if (k->gen == rep->gen) {
        if (k->kind == CALL_PULL) {
            rep->pulling = false;
        } else {
            rep->deleting = false;
        }
        sim_note(rep->grp->c, "group %llu server %d: %s %llu slots of configuration %llu at "
                 "group %llu server %d: %s", (unsigned long long)rep->grp->gid, rep->i,
                 k->kind == CALL_PULL ? "pull" : "delete", (unsigned long long)
                 craft_slot_set_count(&k->slots), (unsigned long long)k->num,
                 (unsigned long long)k->to->gid, k->server,
                 k->ans == ANS_FAILED ? "failed" : k->ans == ANS_NOT_YET ? "not yet"
                 : k->ans == ANS_DONE ? "done" : k->part ? "a part" : "payload");
        if (leads(rep)) {
            struct pull *p = &rep->pulls[k->to->g];
            if (k->ans == ANS_PAYLOAD && k->part && p->num == k->num &&
                memcmp(&p->slots, &k->slots, sizeof k->slots) == 0) {
                p->next = k->cur; /* counts once its last key is here (call_send) */
                p->check = true;
            }
            if (k->ans == ANS_PAYLOAD) {
                propose(rep, CRAFT_KV_OP_SHARD_INSTALL, k->num, k->payload, k->payload_len);
            } else if (k->kind == CALL_DELETE && k->ans == ANS_DONE) {
                propose(rep, CRAFT_KV_OP_SHARD_CONFIRM, k->num, k->slots.bits,
                        sizeof k->slots.bits);
            }
        }
    }
    call_free(rep->grp->s, k);
}

/* The answer travels back (and may be lost, or find the caller gone: call_back checks). */
static void answer(struct call *k, enum call_answer ans)
{
    struct sim_cluster *c = k->from->grp->c;
    k->ans = ans;
    uint64_t delay = sim_rand(c, 0, 2);
    if (ans != ANS_FAILED && ((!c->net->reliable && sim_rand(c, 0, 1000) < 100) ||
                              !reaches(c, k->server, k->from->i))) {
        k->ans = ANS_FAILED;
    }
    sim_task_at(c, delay, call_back, k);
}

/* At the peer's server: a pull is answered by any replica that applied the same
 * configuration (the slots are frozen there); a delete is proposed by a leader and answered
 * done once the slots are gone (or the peer moved past that configuration). */
static void call_arrive(struct sim_cluster *c, void *arg)
{
    struct call *k = arg;
    (void)c;
    struct replica *peer = &k->to->reps[k->server];
    if (!sim_is_alive(k->to->c, k->server)) {
        answer(k, ANS_FAILED);
        return;
    }
    struct craft_kv_read *rd;
    CRAFT_ASSERT(craft_kv_read_begin(peer->r.sm, &rd) == CRAFT_OK);
    if (k->kind == CALL_PULL) {
        int rc = craft_kv_read_export(rd, k->num, &k->slots, HANDOVER_BYTES_MAX, &k->cur,
                                      &k->payload, &k->payload_len, &k->part);
        craft_kv_read_end(rd);
        if (rc != CRAFT_OK && rc != CRAFT_EBUSY && rc != CRAFT_ESTALE) {
            sim_fail(k->to->c, "group %llu server %d: export of configuration %llu: %s",
                     (unsigned long long)k->to->gid, k->server, (unsigned long long)k->num,
                     craft_strerror(rc));
        }
        answer(k, rc == CRAFT_OK ? ANS_PAYLOAD : ANS_NOT_YET);
        return;
    }
    CRAFT_ASSERT(craft_kv_read_view(rd, peer->view) == CRAFT_OK);
    craft_kv_read_end(rd);
    bool done = peer->view->cur.num > k->num;
    if (!done && peer->view->cur.num == k->num) {
        done = true;
        for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
            if (craft_slot_set_has(&k->slots, (uint16_t)s) &&
                peer->view->state[s] == CRAFT_SLOT_GIVING) {
                done = false;
                break;
            }
        }
    }
    if (!done && leads(peer)) {
        propose(peer, CRAFT_KV_OP_SHARD_DELETE, k->num, k->slots.bits, sizeof k->slots.bits);
    }
    answer(k, done ? ANS_DONE : ANS_NOT_YET);
}

/* Where the next pull of slots of configuration num from group `to` starts: after the last
 * key of the part proposed last, once that key is in this replica's store (applied: the
 * parts before it were, since each pull waits for the one before), else where that part
 * started. Keys of a slot on its way are frozen at the sender, so a key present here is
 * the part's (or an earlier leader's part that covered it: then so did its parts before). */
static struct craft_kv_export_cursor pull_from(struct replica *rep, const struct group *to,
                                               uint64_t num, const struct craft_slot_set *slots)
{
    struct pull *p = &rep->pulls[to->g];
    if (p->num != num || memcmp(&p->slots, slots, sizeof *slots) != 0) {
        memset(p, 0, sizeof *p);
        p->num = num;
        p->slots = *slots;
    }
    if (p->check) {
        struct craft_kv_read *rd;
        CRAFT_ASSERT(craft_kv_read_begin(rep->r.sm, &rd) == CRAFT_OK);
        const uint8_t *v;
        size_t vlen;
        CRAFT_ASSERT(p->next.len >= 8); /* a stored key: 8 bytes of hash, then the key */
        if (craft_kv_read_get(rd, p->next.key + 8, p->next.len - 8, &v, &vlen) == CRAFT_OK) {
            p->cur = p->next;
        }
        craft_kv_read_end(rd);
        p->check = false;
    }
    return p->cur;
}

static void call_send(struct replica *rep, enum call_kind kind, uint64_t peer_gid,
                      const struct craft_slot_set *slots)
{
    struct sim_skv *s = rep->grp->s;
    struct group *to = group_of_gid(s, peer_gid);
    if (to == NULL) {
        sim_fail(rep->grp->c, "group %llu: slots from unknown group %llu",
                 (unsigned long long)rep->grp->gid, (unsigned long long)peer_gid);
    }
    struct call *k = sim_xrealloc(NULL, sizeof *k);
    *k = (struct call){.from = rep, .gen = rep->gen, .kind = kind, .to = to,
                       .server = rep->next_server++ % s->n, .num = rep->view->cur.num,
                       .slots = *slots};
    if (kind == CALL_PULL) {
        k->cur = pull_from(rep, to, k->num, slots);
    }
    k->next = s->calls;
    if (s->calls != NULL) {
        s->calls->prev = k;
    }
    s->calls = k;
    if (kind == CALL_PULL) {
        rep->pulling = true;
    } else {
        rep->deleting = true;
    }
    struct sim_cluster *c = rep->grp->c;
    if (!sim_is_alive(to->c, k->server) || !reaches(c, rep->i, k->server)) {
        k->ans = ANS_FAILED;
        sim_task_at(c, sim_rand(c, 0, 100), call_back, k);
        return;
    }
    uint64_t delay = sim_rand(c, 0, 2);
    if (!c->net->reliable) {
        delay += sim_rand(c, 0, 27);
        if (sim_rand(c, 0, 1000) < 100) {
            k->ans = ANS_FAILED;
            sim_task_at(c, delay, call_back, k);
            return;
        }
    }
    sim_task_at(c, delay, call_arrive, k);
}

/* A peer group with slots in state st, and those slots: the peers take turns, so that
 * one that is down does not hold up the others' slots (challenge 2). */
static bool next_peer(struct replica *rep, uint8_t st, uint64_t *gid, struct craft_slot_set *slots)
{
    const struct craft_shard_view *v = rep->view;
    uint64_t peers[CRAFT_SHARD_GROUPS_MAX];
    size_t n = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (v->state[s] != st) {
            continue;
        }
        uint64_t g = craft_shard_slot_gid(&v->prev, (uint16_t)s);
        size_t k = 0;
        while (k < n && peers[k] != g) {
            k++;
        }
        if (k == n && n < CRAFT_SHARD_GROUPS_MAX) {
            peers[n++] = g;
        }
    }
    if (n == 0) {
        return false;
    }
    *gid = peers[rep->peer_turn++ % n];
    craft_shard_view_slots(v, st, *gid, slots, NULL);
    return true;
}

static void drive(struct replica *rep)
{
    struct craft_kv_read *rd;
    CRAFT_ASSERT(craft_kv_read_begin(rep->r.sm, &rd) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_read_view(rd, rep->view) == CRAFT_OK);
    craft_kv_read_end(rd);
    const struct craft_shard_view *v = rep->view;
    if (craft_shard_view_settled(v)) {
        if (rep->want == 0 && !sim_ctl_busy(rep->ctl)) {
            rep->want = v->cur.num + 1;
            struct craft_shard_request q = {.op = CRAFT_SHARD_OP_QUERY, .num = rep->want};
            sim_ctl_start(rep->ctl, &q, config_answer, rep);
        }
        return;
    }
    uint64_t peer;
    struct craft_slot_set slots;
    if (!rep->pulling && next_peer(rep, CRAFT_SLOT_PULLING, &peer, &slots)) {
        call_send(rep, CALL_PULL, peer, &slots);
    }
    if (!rep->deleting && next_peer(rep, CRAFT_SLOT_NOTIFYING, &peer, &slots)) {
        call_send(rep, CALL_DELETE, peer, &slots);
    }
}

static void driver_tick(struct sim_cluster *c, void *arg)
{
    struct sim_skv *s = arg;
    for (int g = 0; g < s->n_groups; g++) {
        for (int i = 0; i < s->n; i++) {
            struct replica *rep = &s->groups[g].reps[i];
            if (leads(rep)) {
                drive(rep);
            }
        }
    }
    sim_task_at(c, DRIVER_MS, driver_tick, s);
}

/* ---- the service ---- */

struct sim_skv *sim_skv_create(struct sim_cluster *root, struct sim_ctl *ctl, int n_groups,
                               int maxraftstate)
{
    CRAFT_ASSERT(n_groups >= 1 && n_groups <= GROUPS_MAX);
    struct sim_skv *s = sim_xrealloc(NULL, sizeof *s);
    memset(s, 0, sizeof *s);
    *s = (struct sim_skv){.root = root, .ctl = ctl, .n = root->n, .n_groups = n_groups,
                          .maxraftstate = maxraftstate, .next_session = 1,
                          .hist = sim_kv_history_new()};
    for (int g = 0; g < n_groups; g++) {
        struct group *grp = &s->groups[g];
        grp->s = s;
        grp->g = g;
        grp->gid = SIM_SKV_GID_BASE + (uint64_t)g;
        for (int i = 0; i < s->n; i++) {
            grp->reps[i] = (struct replica){.grp = grp, .i = i};
            grp->reps[i].view = sim_xrealloc(NULL, sizeof *grp->reps[i].view);
            grp->reps[i].ctl = sim_ctl_clerk(ctl);
        }
        struct sim_rsm_service svc = {.ctx = grp, .start = svc_start, .apply = svc_apply,
                                      .reply = svc_reply, .snapshot = svc_snapshot,
                                      .restore = svc_restore};
        grp->rsm = sim_rsm_create(s->n, maxraftstate, &svc);
        struct sim_cluster_opts opts = root->opts;
        opts.app = NULL;
        opts.snapshot = false;
        sim_rsm_set_opts(grp->rsm, &opts);
        grp->c = sim_cluster_add_group(root, &opts);
        sim_rsm_bind(grp->rsm, grp->c);
    }
    sim_task_at(root, DRIVER_MS, driver_tick, s);
    return s;
}

void sim_skv_destroy(struct sim_skv *s)
{
    while (s->calls != NULL) {
        call_free(s, s->calls); /* their tasks died with the world */
    }
    for (int g = 0; g < s->n_groups; g++) {
        struct group *grp = &s->groups[g];
        sim_rsm_destroy(grp->rsm);
        for (int i = 0; i < s->n; i++) {
            sim_kv_replica_free(&grp->reps[i].r);
            craft_kv_result_free(grp->reps[i].last);
            free(grp->reps[i].view);
        }
    }
    for (size_t k = 0; k < s->n_clerks; k++) {
        struct sim_skv_clerk *ck = s->clerks[k];
        free(ck->config);
        free(ck->value);
        free(ck->res);
        free(ck);
    }
    free(s->clerks);
    sim_kv_history_free(s->hist);
    free(s);
}

int sim_skv_groups(const struct sim_skv *s)
{
    return s->n_groups;
}

uint64_t sim_skv_gid(const struct sim_skv *s, int g)
{
    CRAFT_ASSERT(g >= 0 && g < s->n_groups);
    return s->groups[g].gid;
}

struct sim_cluster *sim_skv_cluster(struct sim_skv *s, int g)
{
    CRAFT_ASSERT(g >= 0 && g < s->n_groups);
    return s->groups[g].c;
}

struct craft_shard_group sim_skv_group(const struct sim_skv *s, int g)
{
    struct craft_shard_group d;
    memset(&d, 0, sizeof d);
    d.gid = sim_skv_gid(s, g);
    d.n_servers = (uint32_t)s->n;
    for (int i = 0; i < s->n; i++) {
        snprintf(d.servers[i], sizeof d.servers[i], "server-%llu-%d", (unsigned long long)d.gid,
                 i);
    }
    return d;
}

void sim_skv_shutdown_group(struct sim_skv *s, int g)
{
    for (int i = 0; i < s->n; i++) {
        sim_replica_crash(sim_skv_cluster(s, g), i);
    }
}

void sim_skv_start_group(struct sim_skv *s, int g)
{
    for (int i = 0; i < s->n; i++) {
        sim_replica_start(sim_skv_cluster(s, g), i);
    }
}

void sim_skv_check_logs(struct sim_skv *s)
{
    for (int g = 0; g < s->n_groups; g++) {
        struct sim_cluster *c = s->groups[g].c;
        for (int i = 0; i < s->n; i++) {
            size_t raft = sim_disk_log_size(&c->nodes[i].disk);
            size_t snap = c->nodes[i].disk.snap_len;
            if (s->maxraftstate >= 0 && raft > 8 * (size_t)s->maxraftstate) {
                sim_fail(c, "persister.RaftStateSize() %zu, but maxraftstate %d", raft,
                         s->maxraftstate);
            }
            if (s->maxraftstate < 0 && snap > 0) {
                sim_fail(c, "maxraftstate is -1, but snapshot is non-empty!");
            }
        }
    }
}

size_t sim_skv_total_bytes(const struct sim_skv *s)
{
    size_t total = 0;
    for (int g = 0; g < s->n_groups; g++) {
        const struct sim_cluster *c = s->groups[g].c;
        for (int i = 0; i < s->n; i++) {
            total += sim_disk_log_size(&c->nodes[i].disk) + c->nodes[i].disk.snap_len;
        }
    }
    return total;
}

/* ---- clerks ---- */

static void route(struct sim_skv_clerk *ck);

static uint8_t *encode(struct sim_skv_clerk *ck, bool opening, size_t *len)
{
    struct craft_kv_cmd cmd = {.session = ck->session, .now_ms = sim_now(ck->s->root)};
    if (opening) {
        cmd.op = CRAFT_KV_OP_SESSION_OPEN;
    } else {
        cmd.seq = ck->seq;
        cmd.op = ck->kind == SIM_LIN_GET   ? CRAFT_KV_OP_NOOP
                 : ck->kind == SIM_LIN_PUT ? CRAFT_KV_OP_SET
                                           : CRAFT_KV_OP_APPEND;
        if (cmd.op != CRAFT_KV_OP_NOOP) {
            cmd.key = (struct craft_kv_bytes){(const uint8_t *)ck->key, (uint32_t)strlen(ck->key)};
            cmd.value = (struct craft_kv_bytes){(const uint8_t *)ck->value,
                                                (uint32_t)ck->value_len};
        }
    }
    size_t size = craft_kv_cmd_size(&cmd);
    CRAFT_ASSERT(size > 0);
    uint8_t *buf = sim_xrealloc(NULL, size);
    CRAFT_ASSERT(craft_kv_cmd_encode(&cmd, buf, size, len) == CRAFT_OK);
    return buf;
}

static void route_event(struct sim_cluster *c, void *arg)
{
    (void)c;
    route(arg);
}

static void config_learned(struct sim_ctl_clerk *ctl, void *arg, const struct sim_ctl_answer *a)
{
    struct sim_skv_clerk *ck = arg;
    (void)ctl;
    if (a->status == CRAFT_OK && a->config != NULL && a->config->num >= ck->config->num) {
        *ck->config = *a->config;
    }
    route(ck);
}

static void refresh(struct sim_cluster *c, void *arg)
{
    struct sim_skv_clerk *ck = arg;
    (void)c;
    struct craft_shard_request q = {.op = CRAFT_SHARD_OP_QUERY, .num = CRAFT_SHARD_QUERY_LATEST};
    sim_ctl_start(ck->ctl, &q, config_learned, ck);
}

static void finish(struct sim_skv_clerk *ck, const uint8_t *val, size_t len)
{
    free(ck->res);
    ck->res = sim_xrealloc(NULL, len + 1);
    if (len > 0) {
        memcpy(ck->res, val, len);
    }
    ck->res[len] = '\0';
    ck->res_len = len;
    sim_kv_history_add(ck->s->hist, ck->client, ck->kind, ck->key, ck->value, ck->value_len,
                       ck->res, ck->res_len, ck->call, sim_now(ck->s->root));
    ck->busy = false;
    if (ck->done != NULL) {
        ck->done(ck, ck->arg, ck->res, ck->res_len);
    }
}

static void op_answered(struct sim_rsm_clerk *rc, void *arg, const uint8_t *reply, size_t len)
{
    struct sim_skv_clerk *ck = arg;
    (void)rc;
    struct sim_cluster *c = ck->s->root;
    if (reply == NULL) {
        sim_note(c, "client %llu: %s: no server of group %llu answers",
                 (unsigned long long)ck->client, ck->key,
                 (unsigned long long)ck->s->groups[ck->group].gid);
        sim_task_at(c, MOVED_MS, refresh, ck); /* no server of the group answered */
        return;
    }
    CRAFT_ASSERT(len >= 1);
    switch (reply[0]) {
    case R_OK:
    case R_VALUE:
        finish(ck, reply + 1, len - 1);
        return;
    case R_MOVED:
        sim_note(c, "client %llu: %s MOVED at group %llu (config %llu)",
                 (unsigned long long)ck->client, ck->key,
                 (unsigned long long)ck->s->groups[ck->group].gid,
                 (unsigned long long)ck->config->num);
        sim_task_at(c, MOVED_MS, refresh, ck);
        return;
    case R_AGAIN:
        sim_note(c, "client %llu: %s TRYAGAIN at group %llu", (unsigned long long)ck->client,
                 ck->key, (unsigned long long)ck->s->groups[ck->group].gid);
        sim_task_at(c, TRYAGAIN_MS, route_event, ck);
        return;
    default:
        sim_fail(c, "client %llu: %s(%s) answered -%.*s", (unsigned long long)ck->client,
                 ck->kind == SIM_LIN_GET ? "Get" : ck->kind == SIM_LIN_PUT ? "Put" : "Append",
                 ck->key, (int)(len - 1), (const char *)reply + 1);
    }
}

static void send_op(struct sim_skv_clerk *ck)
{
    size_t len;
    uint8_t *cmd = encode(ck, false, &len);
    sim_rsm_call_cycle(ck->rc[ck->group], cmd, len, op_answered, ck);
}

static void session_opened(struct sim_rsm_clerk *rc, void *arg, const uint8_t *reply, size_t len)
{
    struct sim_skv_clerk *ck = arg;
    (void)rc;
    if (reply == NULL) {
        sim_task_at(ck->s->root, MOVED_MS, refresh, ck);
        return;
    }
    if (len < 1 || reply[0] != R_OK) {
        sim_fail(ck->s->root, "client %llu: session open answered %.*s",
                 (unsigned long long)ck->client, (int)len, (const char *)reply);
    }
    ck->opened[ck->group] = true;
    send_op(ck);
}

/* Sends the op to the group that owns its key's slot in the clerk's configuration (asking
 * the controller first while it knows none), opening its session there first. */
static void route(struct sim_skv_clerk *ck)
{
    uint16_t slot = craft_key_slot((const uint8_t *)ck->key, strlen(ck->key));
    struct group *grp = group_of_gid(ck->s, craft_shard_slot_gid(ck->config, slot));
    if (grp == NULL) {
        sim_task_at(ck->s->root, MOVED_MS, refresh, ck); /* no owner known yet */
        return;
    }
    ck->group = grp->g;
    if (!ck->opened[grp->g]) {
        size_t len;
        uint8_t *cmd = encode(ck, true, &len);
        sim_rsm_call_cycle(ck->rc[grp->g], cmd, len, session_opened, ck);
        return;
    }
    send_op(ck);
}

struct sim_skv_clerk *sim_skv_clerk(struct sim_skv *s, uint64_t client)
{
    struct sim_skv_clerk *ck = sim_xrealloc(NULL, sizeof *ck);
    memset(ck, 0, sizeof *ck);
    ck->s = s;
    ck->client = client;
    ck->session = s->next_session++;
    ck->ctl = sim_ctl_clerk(s->ctl);
    ck->config = sim_xrealloc(NULL, sizeof *ck->config);
    craft_shard_config_init(ck->config);
    for (int g = 0; g < s->n_groups; g++) {
        ck->rc[g] = sim_rsm_clerk(s->groups[g].rsm, ck);
    }
    ck->res = sim_xrealloc(NULL, 1);
    ck->res[0] = '\0';
    if (s->n_clerks == s->cap_clerks) {
        s->cap_clerks = s->cap_clerks ? s->cap_clerks * 2 : 16;
        s->clerks = sim_xrealloc(s->clerks, s->cap_clerks * sizeof *s->clerks);
    }
    s->clerks[s->n_clerks++] = ck;
    return ck;
}

void sim_skv_op(struct sim_skv_clerk *ck, uint8_t kind, const char *key, const char *value,
                sim_skv_done_fn done, void *arg)
{
    CRAFT_ASSERT(!ck->busy && strlen(key) < KEY_MAX);
    ck->busy = true;
    ck->kind = kind;
    strcpy(ck->key, key);
    size_t vlen = kind == SIM_LIN_GET ? 0 : strlen(value);
    free(ck->value);
    ck->value = sim_xrealloc(NULL, vlen + 1);
    memcpy(ck->value, kind == SIM_LIN_GET ? "" : value, vlen + 1);
    ck->value_len = vlen;
    ck->done = done;
    ck->arg = arg;
    ck->call = sim_now(ck->s->root);
    ck->seq++;
    route(ck);
}

bool sim_skv_busy(const struct sim_skv_clerk *ck)
{
    return ck->busy;
}

bool sim_skv_wait(struct sim_skv_clerk *ck, uint64_t budget_ms)
{
    struct sim_cluster *c = ck->s->root;
    uint64_t start = sim_now(c);
    while (ck->busy && sim_now(c) - start < budget_ms) {
        sim_sleep(c, 1);
    }
    return !ck->busy;
}

static void blocking(struct sim_skv_clerk *ck, uint8_t kind, const char *key, const char *value,
                     uint64_t budget_ms)
{
    sim_skv_op(ck, kind, key, value, NULL, NULL);
    if (!sim_skv_wait(ck, budget_ms)) {
        sim_fail(ck->s->root, "%s(%s) did not complete within %llu ms",
                 kind == SIM_LIN_GET ? "Get" : kind == SIM_LIN_PUT ? "Put" : "Append", key,
                 (unsigned long long)budget_ms);
    }
}

const char *sim_skv_get(struct sim_skv_clerk *ck, const char *key, uint64_t budget_ms)
{
    blocking(ck, SIM_LIN_GET, key, NULL, budget_ms);
    return ck->res;
}

void sim_skv_put(struct sim_skv_clerk *ck, const char *key, const char *value, uint64_t budget_ms)
{
    blocking(ck, SIM_LIN_PUT, key, value, budget_ms);
}

void sim_skv_append(struct sim_skv_clerk *ck, const char *key, const char *value,
                    uint64_t budget_ms)
{
    blocking(ck, SIM_LIN_APPEND, key, value, budget_ms);
}

void sim_skv_check(struct sim_skv_clerk *ck, const char *key, const char *want, uint64_t budget_ms)
{
    const char *got = sim_skv_get(ck, key, budget_ms);
    if (strcmp(got, want) != 0) {
        sim_fail(ck->s->root, "Get(%s): expected:\n%s\nreceived:\n%s", key, want, got);
    }
}

void sim_skv_check_history(struct sim_skv *s, uint64_t budget_steps)
{
    sim_kv_history_check(s->hist, s->root, budget_steps);
}
