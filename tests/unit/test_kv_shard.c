/* craftkv's state machine as a shard group (kv_sm.h "Shard groups", kv_shard.c): a
 * migration between two groups' state machines step by step (MOVED and TRYAGAIN answers
 * not recorded in sessions, a retry answered from the session wherever the slot went,
 * keys, expiry and sessions handed over, the sender's copy deleted), FLUSHALL of the
 * served slots only, snapshots mid-migration, stores and snapshots of another group
 * refused, bad SHARD commands answered without a change, the session merge, and payloads
 * refused when damaged. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/err.h"
#include "kv/kv_shard.h"
#include "kv/kv_sm.h"
#include "shard/slots.h"
#include "shard/view.h"
#include "unit.h"

struct g {
    struct craft_kv_store *st;
    struct craft_kv_sm *sm;
    uint64_t gid, index, now;
};

static void g_open(struct g *g, uint64_t gid)
{
    memset(g, 0, sizeof *g);
    g->gid = gid;
    CRAFT_ASSERT(craft_kv_store_mem_open(&g->st) == CRAFT_OK);
    struct craft_kv_sm_config cfg = {.shard_gid = gid};
    CRAFT_ASSERT(craft_kv_sm_open(g->st, &cfg, &g->sm) == CRAFT_OK);
    g->now = 1000;
}

static void g_close(struct g *g)
{
    craft_kv_sm_close(g->sm);
    g->st->ops->close(g->st);
}

static struct craft_kv_result *run(struct g *g, struct craft_kv_cmd c)
{
    c.now_ms = g->now;
    size_t size = craft_kv_cmd_size(&c);
    CRAFT_ASSERT(size > 0);
    uint8_t *p = malloc(size);
    size_t len;
    CRAFT_ASSERT(craft_kv_cmd_encode(&c, p, size, &len) == CRAFT_OK);
    struct craft_kv_result *r = NULL;
    CRAFT_ASSERT(craft_kv_sm_apply(g->sm, ++g->index, p, len, &r) == CRAFT_OK);
    free(p);
    return r;
}

static struct craft_kv_bytes B(const char *s)
{
    return (struct craft_kv_bytes){.p = (const uint8_t *)s, .len = (uint32_t)strlen(s)};
}

/* Runs c and checks its answer: an error starting with err, or OK / an integer / a bulk. */
static bool answers(struct g *g, struct craft_kv_cmd c, const char *err)
{
    struct craft_kv_result *r = run(g, c);
    bool ok = err ? r->type == CRAFT_KV_RES_ERR && strncmp((char *)r->data, err, strlen(err)) == 0
                  : r->type != CRAFT_KV_RES_ERR;
    if (!ok) {
        printf("  answer: type %u %s\n", r->type, r->type == CRAFT_KV_RES_ERR ? (char *)r->data : "");
    }
    craft_kv_result_free(r);
    return ok;
}

static int64_t run_int(struct g *g, struct craft_kv_cmd c)
{
    struct craft_kv_result *r = run(g, c);
    int64_t v = r->type == CRAFT_KV_RES_INT ? r->integer : INT64_MIN;
    craft_kv_result_free(r);
    return v;
}

static struct craft_kv_cmd SET(const char *k, const char *v, uint64_t sess, uint64_t seq)
{
    return (struct craft_kv_cmd){.op = CRAFT_KV_OP_SET, .key = B(k), .value = B(v),
                                 .session = sess, .seq = seq};
}

static struct craft_kv_cmd INCR(const char *k, uint64_t sess, uint64_t seq)
{
    return (struct craft_kv_cmd){.op = CRAFT_KV_OP_INCRBY, .key = B(k), .delta = 1,
                                 .session = sess, .seq = seq};
}

/* c, sent while the reply to seq `ack` is still awaited (its result must stay saved). */
static struct craft_kv_cmd ACK(struct craft_kv_cmd c, uint64_t ack)
{
    c.ack = ack;
    return c;
}

/* c as craftkv's server sends it when sharded: a refusal closes its seq. */
static struct craft_kv_cmd
FINAL(struct craft_kv_cmd c, uint64_t ack) {
    c.ack = ack;
    c.refusal_final = true;
    return c;
}

static struct craft_kv_cmd
SHARD(uint8_t op, uint64_t num, const void *blob, size_t len) {
    return (struct craft_kv_cmd){.op = op, .shard_num = num,
                                 .blob = {.p = blob, .len = (uint32_t)len}};
}

static bool
config(struct g *g, const struct craft_shard_config *c)
{
    size_t n = craft_shard_config_size(c);
    uint8_t *b = malloc(n);
    craft_shard_config_encode(c, b, n);
    bool ok = answers(g, SHARD(CRAFT_KV_OP_SHARD_CONFIG, c->num, b, n), NULL);
    free(b);
    return ok;
}

/* GET through a read: 1 present with want (NULL: any), 0 absent. */
static int get(struct g *g, const char *k, const char *want)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(g->sm, &r) == CRAFT_OK);
    const uint8_t *v;
    size_t vlen;
    int rc = craft_kv_read_get(r, (const uint8_t *)k, strlen(k), &v, &vlen);
    int out = rc == CRAFT_OK ? (want == NULL || (vlen == strlen(want) && !memcmp(v, want, vlen)))
                             : (rc == CRAFT_ENOTFOUND ? 0 : -1);
    craft_kv_read_end(r);
    return out;
}

/* A collection read: true if it answers want (a bulk), or 1 (want NULL: an integer). */
static bool coll_read(struct g *g, uint8_t op, const char *k, const char *arg, const char *want)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(g->sm, &r) == CRAFT_OK);
    struct craft_kv_bytes a = B(arg != NULL ? arg : "");
    struct craft_kv_cmd c = {.op = op, .key = B(k), .n = arg != NULL, .args = &a};
    struct craft_kv_result *res = NULL;
    bool ok = craft_kv_read_exec(r, &c, &res) == CRAFT_OK;
    craft_kv_read_end(r);
    ok = ok && (want != NULL ? res->type == CRAFT_KV_RES_BULK && res->len == strlen(want) &&
                                   memcmp(res->data, want, res->len) == 0
                             : res->type == CRAFT_KV_RES_INT && res->integer >= 1);
    craft_kv_result_free(res);
    return ok;
}

static int count_one(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    (void)k, (void)klen, (void)v, (void)vlen;
    (*(uint64_t *)ctx)++;
    return CRAFT_OK;
}

static uint64_t elems_stored(struct g *g)
{
    struct craft_kv_txn *t;
    CRAFT_ASSERT(g->st->ops->begin(g->st, false, &t) == CRAFT_OK);
    uint64_t n = 0;
    CHECK(g->st->ops->iter(t, CRAFT_KV_TABLE_ELEMS, NULL, 0, count_one, &n) == CRAFT_OK);
    g->st->ops->abort(t);
    return n;
}

static uint8_t slot_state(struct g *g, const char *k)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(g->sm, &r) == CRAFT_OK);
    uint8_t st = 0xff;
    CHECK(craft_kv_read_slot_state(r, craft_key_slot((const uint8_t *)k, strlen(k)), &st) ==
          CRAFT_OK);
    craft_kv_read_end(r);
    return st;
}

static int export(struct g *g, uint64_t num, const struct craft_slot_set *slots, uint8_t **out,
                  size_t *len)
{
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(g->sm, &r) == CRAFT_OK);
    bool part;
    int rc = craft_kv_read_export(r, num, slots, CRAFT_KV_CMD_BYTES_MAX - 64, NULL, out, len, &part);
    CHECK(rc != CRAFT_OK || !part);
    craft_kv_read_end(r);
    return rc;
}

static struct craft_shard_group group(uint64_t gid)
{
    struct craft_shard_group x = {.gid = gid, .n_servers = 1};
    snprintf(x.servers[0], sizeof x.servers[0], "h%u:7000", (unsigned)gid);
    return x;
}

/* A key whose slot group gid owns in c (keys k0, k1, ... tried in order), from the n-th on. */
static void key_of(const struct craft_shard_config *c, uint64_t gid, int n, char *out)
{
    for (int i = 0;; i++) {
        snprintf(out, 16, "k%d", i);
        if (craft_shard_slot_gid(c, craft_key_slot((uint8_t *)out, strlen(out))) == gid &&
            n-- == 0) {
            return;
        }
    }
}

static void snap(struct g *g, uint8_t **out, size_t *len);

struct src {
    const uint8_t *p;
    size_t len, off;
};

static int src_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    struct src *s = ctx;
    size_t k = s->len - s->off < cap ? s->len - s->off : cap;
    memcpy(buf, s->p + s->off, k);
    s->off += k;
    *n = k;
    return CRAFT_OK;
}

/* Groups 1 and 2 (a, b), and the configurations that give group 1 every slot (*c1) and then
 * half of them to group 2 (*c2): malloc'd, the caller frees them. */
static void two_groups(struct g *a, struct g *b, struct craft_shard_config **c1,
                       struct craft_shard_config **c2)
{
    *c1 = malloc(sizeof **c1);
    *c2 = malloc(sizeof **c2);
    struct craft_shard_group g1 = group(1), g2 = group(2);
    struct craft_shard_config c0;
    craft_shard_config_init(&c0);
    CHECK(craft_shard_join(&c0, &g1, 1, *c1, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_join(*c1, &g2, 1, *c2, NULL, 0) == CRAFT_OK);
    g_open(a, 1);
    g_open(b, 2);
}

static void migration(void)
{
    struct craft_shard_config *c1, *c2;
    struct g a, b;
    two_groups(&a, &b, &c1, &c2);
    char stay[16], go[16], go2[16];
    key_of(c2, 1, 0, stay);
    key_of(c2, 2, 0, go);
    key_of(c2, 2, 1, go2);

    /* Before any configuration nothing is served. */
    CHECK(answers(&a, SET(stay, "x", 0, 0), CRAFT_KV_ERR_MOVED));
    CHECK(config(&a, c1) && config(&b, c1));
    CHECK(answers(&a, (struct craft_kv_cmd){.op = CRAFT_KV_OP_SESSION_OPEN, .session = 77}, NULL));
    CHECK(answers(&a, SET(stay, "s", 77, 1), NULL));
    CHECK(answers(&a, SET(go, "g", 77, 2), NULL));
    CHECK(run_int(&a, INCR(go2, 77, 3)) == 1);
    /* An expiring key moves with its expiry. */
    struct craft_kv_cmd ex = SET("{k}e", "e", 0, 0);
    ex.flags = CRAFT_KV_SET_EXPIRE;
    ex.expire_at = a.now + 60000;
    bool expiring_moves = craft_shard_slot_gid(c2, craft_key_slot((uint8_t *)"{k}e", 4)) == 2;
    CHECK(answers(&a, ex, NULL));
    /* A hash and a set in a moving slot (a hash tag: go's slot) move with their elements. */
    char hk[32], sk[32];
    snprintf(hk, sizeof hk, "{%s}h", go);
    snprintf(sk, sizeof sk, "{%s}s", go);
    struct craft_kv_bytes hargs[4] = {B("f1"), B("v1"), B("f2"), B("v2")};
    CHECK(run_int(&a, (struct craft_kv_cmd){
                          .op = CRAFT_KV_OP_HSET, .key = B(hk), .n = 4, .args = hargs}) == 2);
    CHECK(run_int(&a, (struct craft_kv_cmd){
                          .op = CRAFT_KV_OP_SADD, .key = B(sk), .n = 3, .args = hargs}) == 3);
    /* Group 2 owns nothing in configuration 1: MOVED, and its session is not touched. */
    CHECK(answers(&b, SET(go, "no", 0, 0), CRAFT_KV_ERR_MOVED));

    /* Configuration 2: half the slots move to group 2. */
    CHECK(config(&a, c2) && config(&b, c2));
    CHECK(slot_state(&a, go) == CRAFT_SLOT_GIVING && slot_state(&b, go) == CRAFT_SLOT_PULLING);
    CHECK(slot_state(&a, stay) == CRAFT_SLOT_SERVING);
    CHECK(answers(&a, ACK(SET(stay, "s2", 77, 4), 3), NULL)); /* slots not moving are served */
    CHECK(answers(&a, ACK(SET(go, "late", 77, 5), 3), CRAFT_KV_ERR_MOVED));
    CHECK(answers(&b, SET(go, "early", 0, 0), CRAFT_KV_ERR_TRYAGAIN));
    /* A retry of a seq that ran at group 1 gets its answer there, though the slot moved. */
    CHECK(run_int(&a, ACK(INCR(go2, 77, 3), 3)) == 1);
    /* Configuration 3 waits for the migration. */
    struct craft_shard_config *c3 = malloc(sizeof *c3);
    CHECK(craft_shard_move(c2, 0, 0, 2, c3, NULL, 0) == CRAFT_OK);
    CHECK(answers(&a, SHARD(CRAFT_KV_OP_SHARD_CONFIG, 3, NULL, 0), "ERR"));

    /* The hand-over. Exports for another configuration, or of slots not given, fail. */
    struct craft_slot_set giving, pulling;
    craft_shard_view_slots(b.sm->view, CRAFT_SLOT_PULLING, 1, &pulling, NULL);
    craft_shard_view_slots(a.sm->view, CRAFT_SLOT_GIVING, 2, &giving, NULL);
    CHECK(memcmp(&giving, &pulling, sizeof giving) == 0);
    uint8_t *payload;
    size_t plen;
    CHECK(export(&a, 1, &giving, &payload, &plen) == CRAFT_ESTALE);
    CHECK(export(&a, 3, &giving, &payload, &plen) == CRAFT_EBUSY);
    struct craft_slot_set bad = giving;
    craft_slot_set_add(&bad, craft_key_slot((uint8_t *)stay, strlen(stay)));
    CHECK(export(&a, 2, &bad, &payload, &plen) == CRAFT_EINVAL);
    CHECK(export(&a, 2, &giving, &payload, &plen) == CRAFT_OK);
    struct kv_payload pl;
    CHECK(kv_payload_open(payload, plen, &pl) == CRAFT_OK);
    CHECK(pl.n_keys == 4u + expiring_moves && pl.n_sessions == 1);
    /* Damaged payloads are answered with an error and change nothing. */
    for (size_t cut = 0; cut < plen; cut += 97) {
        CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_INSTALL, 2, payload, cut), "ERR"));
    }
    CHECK(slot_state(&b, go) == CRAFT_SLOT_PULLING && get(&b, go, NULL) == 0);
    CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_INSTALL, 2, payload, plen), NULL));
    CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_INSTALL, 2, payload, plen), NULL)); /* done */
    CHECK(slot_state(&b, go) == CRAFT_SLOT_NOTIFYING);
    CHECK(get(&b, go, "g") == 1 && get(&b, go2, "1") == 1 && get(&b, stay, NULL) == 0);
    CHECK(coll_read(&b, CRAFT_KV_OP_HGET, hk, "f2", "v2") &&
          coll_read(&b, CRAFT_KV_OP_SISMEMBER, sk, "v1", NULL) &&
          coll_read(&b, CRAFT_KV_OP_SCARD, sk, NULL, NULL));
    if (expiring_moves) {
        struct craft_kv_read *r;
        CRAFT_ASSERT(craft_kv_read_begin(b.sm, &r) == CRAFT_OK);
        int64_t ms;
        CHECK(craft_kv_read_pttl(r, (const uint8_t *)"{k}e", 4, &ms) == CRAFT_OK &&
              ms > 50000 && ms <= 60000);
        craft_kv_read_end(r);
    }
    /* The session came along: seq 3 (run at group 1) is answered, not run again; seq 5,
     * refused at group 1, runs here once. */
    CHECK(run_int(&b, ACK(INCR(go2, 77, 3), 3)) == 1 && get(&b, go2, "1") == 1);
    CHECK(answers(&b, ACK(SET(go, "late", 77, 5), 3), NULL) && get(&b, go, "late") == 1);
    CHECK(answers(&b, ACK(SET(go, "again", 77, 5), 3), NULL) && get(&b, go, "late") == 1);

    /* A snapshot of the receiver mid-migration restores to the same bytes, only into a
     * state machine of the same group. */
    uint8_t *s1, *s2;
    size_t l1, l2;
    snap(&b, &s1, &l1);
    CHECK(l1 > 12 && memcmp(s1 + 8, "\4\0\0\0", 4) == 0); /* version 4 */
    struct g b2, other, plain = {0};
    g_open(&b2, 2);
    g_open(&other, 3);
    CRAFT_ASSERT(craft_kv_store_mem_open(&plain.st) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(plain.st, NULL, &plain.sm) == CRAFT_OK);
    struct src src = {s1, l1, 0};
    CHECK(craft_kv_sm_restore(b2.sm, src_read, &src) == CRAFT_OK);
    snap(&b2, &s2, &l2);
    CHECK(l1 == l2 && memcmp(s1, s2, l1) == 0);
    CHECK(slot_state(&b2, go) == CRAFT_SLOT_NOTIFYING);
    src.off = 0;
    CHECK(craft_kv_sm_restore(other.sm, src_read, &src) == CRAFT_ECORRUPT);
    src.off = 0;
    CHECK(craft_kv_sm_restore(plain.sm, src_read, &src) == CRAFT_ECORRUPT);
    free(s2);
    free(s1);

    /* The sender deletes what it handed over; the receiver confirms. */
    uint8_t before = slot_state(&a, go);
    CHECK(before == CRAFT_SLOT_GIVING && get(&a, go, "g") == 1);
    CHECK(answers(&a, SHARD(CRAFT_KV_OP_SHARD_DELETE, 2, giving.bits, sizeof giving.bits), NULL));
    CHECK(get(&a, go, NULL) == 0 && get(&a, go2, NULL) == 0 && get(&a, stay, "s2") == 1);
    CHECK(elems_stored(&a) == 0 && elems_stored(&b) == 5);
    CHECK(slot_state(&a, go) == CRAFT_SLOT_ABSENT);
    uint8_t *none;
    size_t none_len;
    CHECK(export(&a, 2, &giving, &none, &none_len) == CRAFT_ESTALE); /* deleted: handed over */
    CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_CONFIRM, 2, pulling.bits, sizeof pulling.bits),
                  NULL));
    CHECK(slot_state(&b, go) == CRAFT_SLOT_SERVING);
    CHECK(craft_shard_view_settled(a.sm->view) && craft_shard_view_settled(b.sm->view));
    CHECK(config(&a, c3) && config(&b, c3));

    /* FLUSHALL at group 2 empties what it serves, not slot 0 on its way in. */
    CHECK(answers(&b, (struct craft_kv_cmd){.op = CRAFT_KV_OP_FLUSHALL}, NULL));
    CHECK(get(&b, go, NULL) == 0 && get(&b, go2, NULL) == 0);

    /* A plain state machine refuses SHARD commands; bad ones change nothing. */
    CHECK(answers(&plain, SHARD(CRAFT_KV_OP_SHARD_CONFIRM, 2, pulling.bits, sizeof pulling.bits),
                  CRAFT_KV_ERR_NOT_SHARD));
    CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_DELETE, 3, pulling.bits, 5), "ERR"));
    CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_CONFIG, 9, "xx", 2), "ERR"));
    CHECK(b.sm->view->cur.num == 3);

    free(payload);
    g_close(&a);
    g_close(&b);
    g_close(&b2);
    g_close(&other);
    g_close(&plain);
    free(c1);
    free(c2);
    free(c3);
}

struct sink {
    uint8_t *p;
    size_t len;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
    struct sink *s = ctx;
    s->p = realloc(s->p, s->len + len);
    memcpy(s->p + s->len, buf, len);
    s->len += len;
    return CRAFT_OK;
}

/* refusal_final: a refused seq is answered its refusal for good, in the group that refused
 * it and wherever its session goes; a new seq runs. */
static void refusal_final(void)
{
    struct craft_shard_config *c1, *c2;
    struct g a, b;
    two_groups(&a, &b, &c1, &c2);
    char go[16];
    key_of(c2, 2, 0, go);
    CHECK(config(&a, c1) && config(&b, c1) && config(&a, c2) && config(&b, c2));
    CHECK(answers(&a, (struct craft_kv_cmd){.op = CRAFT_KV_OP_SESSION_OPEN, .session = 11}, NULL));
    CHECK(answers(&b, (struct craft_kv_cmd){.op = CRAFT_KV_OP_SESSION_OPEN, .session = 9}, NULL));
    /* At the sender (GIVING): MOVED, and a copy of the same seq too. */
    CHECK(answers(&a, FINAL(INCR(go, 11, 1), 1), CRAFT_KV_ERR_MOVED));
    CHECK(answers(&a, FINAL(INCR(go, 11, 1), 1), CRAFT_KV_ERR_MOVED));
    /* At the receiver (PULLING): TRYAGAIN. */
    CHECK(answers(&b, FINAL(INCR(go, 9, 1), 1), CRAFT_KV_ERR_TRYAGAIN));
    struct craft_slot_set giving;
    craft_shard_view_slots(a.sm->view, CRAFT_SLOT_GIVING, 2, &giving, NULL);
    uint8_t *payload;
    size_t plen;
    CHECK(export(&a, 2, &giving, &payload, &plen) == CRAFT_OK);
    CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_INSTALL, 2, payload, plen), NULL));
    free(payload);
    /* The slot is served now; the copies of both refused seqs still never run, the
     * sender's session included (it came along with the slot). */
    CHECK(answers(&b, FINAL(INCR(go, 9, 1), 1), CRAFT_KV_ERR_TRYAGAIN) && get(&b, go, NULL) == 0);
    CHECK(answers(&b, FINAL(INCR(go, 11, 1), 1), CRAFT_KV_ERR_MOVED) && get(&b, go, NULL) == 0);
    /* New seqs run, once each. */
    CHECK(run_int(&b, FINAL(INCR(go, 9, 2), 1)) == 1);
    CHECK(run_int(&b, FINAL(INCR(go, 9, 2), 1)) == 1 && get(&b, go, "1") == 1);
    CHECK(answers(&b, FINAL(INCR(go, 9, 1), 1), CRAFT_KV_ERR_TRYAGAIN));
    /* Once the window moved past it (ack 3), a copy is stale: still never run. */
    CHECK(run_int(&b, FINAL(INCR(go, 9, 3), 3)) == 2);
    CHECK(answers(&b, FINAL(INCR(go, 9, 1), 1), CRAFT_KV_ERR_STALE) && get(&b, go, "2") == 1);
    g_close(&a);
    g_close(&b);
    free(c1);
    free(c2);
}

static void snap(struct g *g, uint8_t **out, size_t *len)
{
    struct craft_kv_snap *s;
    struct sink k = {0};
    CRAFT_ASSERT(craft_kv_sm_snapshot(g->sm, &s) == CRAFT_OK);
    CHECK(craft_kv_snap_write(s, sink_write, &k) == CRAFT_OK);
    craft_kv_snap_release(s);
    *out = k.p;
    *len = k.len;
}

static void stores(void)
{
    /* A plain state machine's store, or its snapshot, is no group's: refused. */
    struct g p;
    memset(&p, 0, sizeof p);
    CRAFT_ASSERT(craft_kv_store_mem_open(&p.st) == CRAFT_OK);
    CRAFT_ASSERT(craft_kv_sm_open(p.st, NULL, &p.sm) == CRAFT_OK);
    p.now = 1000;
    CHECK(answers(&p, SET("k", "v", 0, 0), NULL));
    uint8_t *ps;
    size_t pl_len;
    snap(&p, &ps, &pl_len);
    CHECK(pl_len > 12 && memcmp(ps + 8, "\3\0\0\0", 4) == 0); /* version 3 */
    craft_kv_sm_close(p.sm);
    struct craft_kv_sm *sm2;
    struct craft_kv_sm_config gcfg = {.shard_gid = 2};
    CHECK(craft_kv_sm_open(p.st, &gcfg, &sm2) == CRAFT_EINVAL);
    p.st->ops->close(p.st);
    struct g grp;
    g_open(&grp, 2);
    struct src src = {ps, pl_len, 0};
    CHECK(craft_kv_sm_restore(grp.sm, src_read, &src) == CRAFT_ECORRUPT);
    /* A group's store holds its view from its first command on, so it is told apart. */
    CHECK(answers(&grp, SET("k", "v", 0, 0), CRAFT_KV_ERR_MOVED));
    craft_kv_sm_close(grp.sm);
    CHECK(craft_kv_sm_open(grp.st, NULL, &sm2) == CRAFT_EINVAL);
    CHECK(craft_kv_sm_open(grp.st, &gcfg, &grp.sm) == CRAFT_OK);
    g_close(&grp);
    free(ps);

    /* A store keeps its group: reopened as another group, or as a plain one, it is refused. */
    struct g a;
    g_open(&a, 4);
    struct craft_shard_config c0, *c1 = malloc(sizeof *c1);
    craft_shard_config_init(&c0);
    struct craft_shard_group g4 = group(4);
    CHECK(craft_shard_join(&c0, &g4, 1, c1, NULL, 0) == CRAFT_OK);
    CHECK(config(&a, c1));
    craft_kv_sm_close(a.sm);
    struct craft_kv_sm *sm;
    struct craft_kv_sm_config cfg = {.shard_gid = 5};
    CHECK(craft_kv_sm_open(a.st, &cfg, &sm) == CRAFT_EINVAL);
    CHECK(craft_kv_sm_open(a.st, NULL, &sm) == CRAFT_EINVAL);
    cfg.shard_gid = 4;
    CHECK(craft_kv_sm_open(a.st, &cfg, &a.sm) == CRAFT_OK && a.sm->view->cur.num == 1);
    g_close(&a);
    free(c1);
}

/* Records built by hand: u64 last | u64 last_ms | (u64 seq | u32 rlen | result)*. */
static size_t record(uint8_t *p, const uint64_t *seqs, size_t n, size_t rbytes)
{
    craft_put_u64(p, n ? seqs[n - 1] : 0);
    craft_put_u64(p + 8, 5);
    size_t off = 16;
    for (size_t i = 0; i < n; i++) {
        craft_put_u64(p + off, seqs[i]);
        craft_put_u32(p + off + 8, (uint32_t)(5 + rbytes));
        p[off + 12] = CRAFT_KV_RES_BULK;
        craft_put_u32(p + off + 13, (uint32_t)rbytes);
        memset(p + off + 17, (int)seqs[i], rbytes);
        off += 12 + 5 + rbytes;
    }
    return off;
}

/* A hand-over too large for one entry, in parts: every key arrives once, parts sent again
 * (a new leader's driver starts over) change nothing, the view changes with the last part,
 * and a part arriving after it changes nothing either. */
static void parts(void)
{
    struct craft_shard_config *c1, *c2;
    struct g a, b;
    two_groups(&a, &b, &c1, &c2);
    CHECK(config(&a, c1) && config(&b, c1));
    enum { KEYS = 40 };
    char keys[KEYS][16], val[100];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    CHECK(answers(&a, (struct craft_kv_cmd){.op = CRAFT_KV_OP_SESSION_OPEN, .session = 5}, NULL));
    for (int i = 0; i < KEYS; i++) {
        key_of(c2, 2, i, keys[i]);
        val[0] = (char)('a' + i % 26);
        CHECK(answers(&a, SET(keys[i], val, 0, 0), NULL));
    }
    CHECK(config(&a, c2) && config(&b, c2));
    struct craft_slot_set giving;
    craft_shard_view_slots(a.sm->view, CRAFT_SLOT_GIVING, 2, &giving, NULL);

    /* Parts of at most 2600 bytes (the slot set alone is 2 KiB): about 4 keys each, then
     * the last one with the sessions. */
    struct craft_kv_export_cursor cur = {0};
    uint8_t *first = NULL, *p;
    size_t first_len = 0, len, n_parts = 0, n_keys = 0;
    bool part = true;
    while (part) {
        struct craft_kv_read *r;
        CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
        CHECK(craft_kv_read_export(r, 2, &giving, 2600, &cur, &p, &len, &part) == CRAFT_OK);
        craft_kv_read_end(r);
        CHECK(len <= 2600);
        struct kv_payload pl;
        CHECK(kv_payload_open(p, len, &pl) == CRAFT_OK && pl.part == part);
        CHECK(part ? pl.n_keys > 0 && pl.n_sessions == 0 : pl.n_sessions == 1);
        n_keys += pl.n_keys;
        n_parts += part;
        CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_INSTALL, 2, p, len), NULL));
        CHECK(slot_state(&b, keys[0]) == (part ? CRAFT_SLOT_PULLING : CRAFT_SLOT_NOTIFYING));
        if (first == NULL) {
            first = p, first_len = len;
            /* Sent again at once (a step whose reply was lost): nothing changes. */
            CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_INSTALL, 2, p, len), NULL));
        } else {
            free(p);
        }
    }
    CHECK(n_parts >= 3 && n_keys == KEYS);
    for (int i = 0; i < KEYS; i++) {
        val[0] = (char)('a' + i % 26);
        CHECK(get(&b, keys[i], val) == 1);
    }
    /* The slots are served now; a late copy of the first part does not undo a write. */
    CHECK(answers(&b, SET(keys[0], "new", 0, 0), NULL));
    CHECK(answers(&b, SHARD(CRAFT_KV_OP_SHARD_INSTALL, 2, first, first_len), NULL));
    CHECK(get(&b, keys[0], "new") == 1);
    /* A part is keys only: one with no key, or with a session, is refused. */
    first[0] = KV_PAYLOAD_VERSION;
    struct kv_payload pl;
    CHECK(kv_payload_open(first, first_len, &pl) == CRAFT_OK && !pl.part);
    uint8_t empty[KV_PAYLOAD_HEADER + 8] = {KV_PAYLOAD_VERSION_PART};
    memcpy(empty + 1, giving.bits, CRAFT_SLOT_SET_BYTES);
    CHECK(kv_payload_open(empty, sizeof empty, &pl) == CRAFT_ECORRUPT);
    empty[0] = KV_PAYLOAD_VERSION;
    CHECK(kv_payload_open(empty, sizeof empty, &pl) == CRAFT_OK);
    /* Too small for even one key: refused, the cursor unchanged. */
    struct craft_kv_export_cursor c0r = {0};
    struct craft_kv_read *r;
    CRAFT_ASSERT(craft_kv_read_begin(a.sm, &r) == CRAFT_OK);
    CHECK(craft_kv_read_export(r, 2, &giving, 2100, &c0r, &p, &len, &part) == CRAFT_ETOOBIG &&
          c0r.len == 0);
    craft_kv_read_end(r);
    free(first);
    g_close(&a);
    g_close(&b);
    free(c1);
    free(c2);
}

static void session_merge(void)
{
    static uint8_t a[1 << 20], b[1 << 20], out[2 << 20];
    uint64_t sa[] = {2, 5, 9}, sb[] = {3, 5, 7};
    size_t la = record(a, sa, 3, 4), lb = record(b, sb, 3, 4);
    size_t n = kv_session_merge(a, la, b, lb, out);
    CHECK(craft_get_u64(out) == 9 && n == 16 + 5 * (12 + 9));
    uint64_t want[] = {2, 3, 5, 7, 9};
    size_t off = 16;
    for (int i = 0; i < 5; i++, off += 12 + 9) {
        CHECK(craft_get_u64(out + off) == want[i]);
    }
    /* Theirs newer; ours empty. */
    la = record(a, NULL, 0, 0);
    n = kv_session_merge(a, la, b, lb, out);
    CHECK(n == lb && craft_get_u64(out) == 7);
    /* Over the window's caps: the oldest go, the newest stays. */
    uint64_t many_a[200], many_b[200];
    for (int i = 0; i < 200; i++) {
        many_a[i] = (uint64_t)(2 * i + 1);
        many_b[i] = (uint64_t)(2 * i + 2);
    }
    la = record(a, many_a, 200, 8);
    lb = record(b, many_b, 200, 8);
    n = kv_session_merge(a, la, b, lb, out);
    CHECK(n == 16 + CRAFT_KV_SESSION_RESULTS_MAX * (12 + 13) && craft_get_u64(out) == 400);
    CHECK(craft_get_u64(out + 16) == 400 - CRAFT_KV_SESSION_RESULTS_MAX + 1);
    uint64_t big_a[] = {1, 2}, big_b[] = {3};
    la = record(a, big_a, 2, 100 * 1024);
    lb = record(b, big_b, 1, 100 * 1024);
    n = kv_session_merge(a, la, b, lb, out); /* 300 KiB of results: seq 1 goes */
    CHECK(craft_get_u64(out + 16) == 2 && n == 16 + 2 * (12 + 5 + 100 * 1024));
}

int main(void)
{
    run_case("migration", migration);
    run_case("stores", stores);
    run_case("session_merge", session_merge);
    run_case("refusal_final", refusal_final);
    run_case("parts", parts);
    return unit_finish();
}
