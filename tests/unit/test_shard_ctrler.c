/* The shard controller's state machine (src/shard/ctrler.c) and its request encoding:
 * history and queries (MIT 6.5840 shardctrler TestBasic's "historical queries"), retried
 * changes applied once, out-of-order and forgotten sessions refused, refusals remembered,
 * snapshots that restore to the same state (and keep agreeing on later entries), damaged
 * snapshots refused without touching the state, and the request decoder's refusals. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "base/prng.h"
#include "shard/ctrler.h"
#include "unit.h"

static struct craft_shard_request req;
static uint8_t entry[CRAFT_SHARD_REQUEST_BYTES_MAX];
static size_t entry_len;

static void encode(void)
{
    CHECK(craft_shard_request_encode(&req, entry, sizeof entry, &entry_len) == CRAFT_OK);
}

static void set_join(uint64_t client, uint64_t seq, uint64_t gid)
{
    memset(&req, 0, sizeof req);
    req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_JOIN, .client = client, .seq = seq,
                                       .n = 1};
    req.groups[0].gid = gid;
    req.groups[0].n_servers = 2;
    snprintf(req.groups[0].servers[0], CRAFT_SHARD_ADDR_BYTES, "10.0.0.%u:7000", (unsigned)gid);
    snprintf(req.groups[0].servers[1], CRAFT_SHARD_ADDR_BYTES, "10.0.1.%u:7000", (unsigned)gid);
    encode();
}

static void set_leave(uint64_t client, uint64_t seq, uint64_t gid)
{
    memset(&req, 0, sizeof req);
    req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_LEAVE, .client = client, .seq = seq,
                                       .n = 1};
    req.gids[0] = gid;
    encode();
}

static void set_move(uint64_t client, uint64_t seq, uint16_t first, uint16_t last, uint64_t gid)
{
    memset(&req, 0, sizeof req);
    req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_MOVE, .client = client, .seq = seq,
                                       .first = first, .last = last, .gid = gid};
    encode();
}

static void set_query(uint64_t client, uint64_t num)
{
    memset(&req, 0, sizeof req);
    req = (struct craft_shard_request){.op = CRAFT_SHARD_OP_QUERY, .client = client, .num = num};
    encode();
}

static uint64_t next_index;

static struct craft_shard_ctrler_result apply(struct craft_shard_ctrler *c)
{
    struct craft_shard_ctrler_result res;
    CHECK(craft_shard_ctrler_apply(c, ++next_index, entry, entry_len, &res) == CRAFT_OK);
    return res;
}

/* Registers a client through the log; returns its id. */
static uint64_t reg(struct craft_shard_ctrler *c)
{
    memset(&req, 0, sizeof req);
    req.op = CRAFT_SHARD_OP_REGISTER;
    encode();
    struct craft_shard_ctrler_result res = apply(c);
    CHECK(res.status == CRAFT_OK && res.num == next_index);
    return res.num;
}

static struct craft_shard_config got;

/* Query(num) through the log; the configuration lands in `got`. */
static uint64_t query(struct craft_shard_ctrler *c, uint64_t num)
{
    set_query(99, num);
    struct craft_shard_ctrler_result res = apply(c);
    CHECK(res.status == CRAFT_OK && res.config != NULL);
    CHECK(craft_shard_config_decode(res.config, res.config_len, &got) == CRAFT_OK);
    CHECK(got.num == res.num);
    return res.num;
}

static void history(void)
{
    struct craft_shard_ctrler *c;
    CHECK(craft_shard_ctrler_open(&c) == CRAFT_OK);
    static struct craft_shard_config rec[6];
    CHECK(query(c, CRAFT_SHARD_QUERY_LATEST) == 0 && got.n_groups == 0);
    rec[0] = got;
    uint64_t me = reg(c);
    set_join(me, 1, 1);
    CHECK(apply(c).num == 1);
    set_join(me, 2, 2);
    CHECK(apply(c).num == 2);
    set_leave(me, 3, 1);
    CHECK(apply(c).num == 3);
    set_move(me, 4, 0, 99, 2);
    CHECK(apply(c).num == 4);
    for (uint64_t k = 1; k <= 4; k++) {
        CHECK(query(c, k) == k);
        rec[k] = got;
    }
    CHECK(rec[1].n_groups == 1 && rec[1].groups[0].gid == 1);
    CHECK(strcmp(rec[1].groups[0].servers[1], "10.0.1.1:7000") == 0); /* verbatim */
    CHECK(rec[2].n_groups == 2 && craft_shard_group_slots(&rec[2], 1) == CRAFT_SLOTS / 2);
    CHECK(rec[3].n_groups == 1 && craft_shard_group_slots(&rec[3], 2) == CRAFT_SLOTS);
    CHECK(memcmp(craft_shard_ctrler_latest(c), &rec[4], sizeof rec[4]) == 0);
    /* Past the latest: the latest (the MIT contract). */
    CHECK(query(c, 77) == 4);
    CHECK(query(c, 0) == 0 && memcmp(&got, &rec[0], sizeof got) == 0);
    craft_shard_ctrler_close(c);
}

static void sessions(void)
{
    struct craft_shard_ctrler *c;
    CHECK(craft_shard_ctrler_open(&c) == CRAFT_OK);
    uint64_t me = reg(c);
    set_join(me, 1, 100);
    struct craft_shard_ctrler_result a = apply(c), b = apply(c); /* the same entry twice */
    CHECK(a.status == CRAFT_OK && b.status == CRAFT_OK && a.num == 1 && b.num == 1);
    CHECK(craft_shard_ctrler_latest(c)->num == 1);
    /* A refusal is remembered as such: the retry gets the same error, nothing changes. */
    set_leave(me, 2, 555);
    a = apply(c);
    b = apply(c);
    CHECK(a.status == CRAFT_EINVAL && b.status == CRAFT_EINVAL && strcmp(a.err, b.err) == 0);
    CHECK(a.err[0] != '\0' && craft_shard_ctrler_latest(c)->num == 1);
    /* A gap, an older request, a client never registered: refused, nothing done. */
    set_join(me, 4, 101);
    CHECK(apply(c).status == CRAFT_ESTALE);
    set_join(me, 1, 101);
    CHECK(apply(c).status == CRAFT_ESTALE);
    set_join(12345678, 1, 101);
    CHECK(apply(c).status == CRAFT_ESTALE);
    CHECK(craft_shard_ctrler_latest(c)->num == 1);
    set_join(me, 3, 101);
    CHECK(apply(c).status == CRAFT_OK && craft_shard_ctrler_latest(c)->num == 2);
    /* Queries need no session and touch none. */
    CHECK(query(c, CRAFT_SHARD_QUERY_LATEST) == 2);
    /* Registrations past the table's size forget the least recently used session: its
     * client's next change, and a retry of its last one, are refused, never applied
     * (again). */
    uint64_t first = 0;
    for (uint64_t k = 0; k < CRAFT_SHARD_CTRLER_SESSIONS_MAX; k++) {
        uint64_t id = reg(c);
        first = first ? first : id;
        set_move(id, 1, 0, 0, 100);
        CHECK(apply(c).status == CRAFT_OK);
    }
    uint64_t latest = craft_shard_ctrler_latest(c)->num;
    set_join(me, 4, 102);
    CHECK(apply(c).status == CRAFT_ESTALE);
    set_join(me, 3, 101);
    CHECK(apply(c).status == CRAFT_ESTALE);
    CHECK(craft_shard_ctrler_latest(c)->num == latest);
    set_move(first, 1, 0, 0, 100); /* the oldest of the rest is still known: its answer */
    CHECK(apply(c).num == 3);
    craft_shard_ctrler_close(c);
}

/* A random request of a few clients (some retries, gaps, bad gids), into entry. */
static void random_request(struct craft_prng *p, const uint64_t *ids, uint64_t *seqs,
                           size_t n_clients)
{
    size_t k = (size_t)craft_prng_range(p, 0, n_clients - 1);
    uint64_t client = ids[k];
    uint64_t *seq = &seqs[k];
    uint64_t s = *seq + 1;
    if (craft_prng_chance(p, 150)) {
        s = *seq > 0 ? *seq : 1; /* a retry */
    } else if (craft_prng_chance(p, 30)) {
        s = *seq + 2; /* a gap */
    }
    uint64_t gid = craft_prng_range(p, 1, 8);
    switch (craft_prng_range(p, 0, 3)) {
    case 0:
        set_join(client, s, gid);
        break;
    case 1:
        set_leave(client, s, gid);
        break;
    case 2: {
        uint16_t first = (uint16_t)craft_prng_range(p, 0, CRAFT_SLOTS - 1);
        set_move(client, s, first, (uint16_t)craft_prng_range(p, first, CRAFT_SLOTS - 1), gid);
        break;
    }
    default:
        set_query(client, craft_prng_range(p, 0, 40));
        return;
    }
    if (s == *seq + 1) {
        *seq = s;
    }
}

static bool same_state(struct craft_shard_ctrler *a, struct craft_shard_ctrler *b)
{
    uint8_t *sa, *sb;
    size_t la, lb;
    CHECK(craft_shard_ctrler_snapshot(a, &sa, &la) == CRAFT_OK);
    CHECK(craft_shard_ctrler_snapshot(b, &sb, &lb) == CRAFT_OK);
    bool same = la == lb && memcmp(sa, sb, la) == 0;
    free(sa);
    free(sb);
    return same;
}

static void snapshots(void)
{
    for (uint64_t seed = 1; seed <= 8; seed++) {
        cur_seed = seed;
        struct craft_prng p;
        craft_prng_seed(&p, seed);
        struct craft_shard_ctrler *a, *b;
        CHECK(craft_shard_ctrler_open(&a) == CRAFT_OK);
        CHECK(craft_shard_ctrler_open(&b) == CRAFT_OK);
        uint64_t seqs[6] = {0}, ids[6];
        for (int k = 0; k < 6; k++) {
            ids[k] = reg(a);
            next_index--; /* the same entry, at the same index, on b */
            CHECK(reg(b) == ids[k]);
        }
        for (int step = 0; step < 300; step++) {
            random_request(&p, ids, seqs, 6);
            uint64_t at = ++next_index;
            struct craft_shard_ctrler_result ra, rb;
            CHECK(craft_shard_ctrler_apply(a, at, entry, entry_len, &ra) == CRAFT_OK);
            CHECK(craft_shard_ctrler_apply(b, at, entry, entry_len, &rb) == CRAFT_OK);
            CHECK(ra.status == rb.status && ra.num == rb.num && strcmp(ra.err, rb.err) == 0);
            CHECK(ra.config_len == rb.config_len);
            CHECK(craft_shard_config_valid(craft_shard_ctrler_latest(a)));
            if (craft_prng_chance(&p, 50)) {
                /* b restarts from a's snapshot. */
                uint8_t *snap;
                size_t len;
                CHECK(craft_shard_ctrler_snapshot(a, &snap, &len) == CRAFT_OK);
                craft_shard_ctrler_close(b);
                CHECK(craft_shard_ctrler_open(&b) == CRAFT_OK);
                CHECK(craft_shard_ctrler_restore(b, snap, len, at) == CRAFT_OK);
                CHECK(craft_shard_ctrler_applied(b) == at);
                CHECK(same_state(a, b));
                CHECK(memcmp(craft_shard_ctrler_latest(a), craft_shard_ctrler_latest(b),
                             sizeof(struct craft_shard_config)) == 0);
                free(snap);
            }
        }
        CHECK(same_state(a, b));
        craft_shard_ctrler_close(a);
        craft_shard_ctrler_close(b);
    }
}

static void damaged_snapshots(void)
{
    struct craft_shard_ctrler *a, *b;
    CHECK(craft_shard_ctrler_open(&a) == CRAFT_OK);
    CHECK(craft_shard_ctrler_open(&b) == CRAFT_OK);
    uint64_t me = reg(a);
    set_join(me, 1, 1);
    apply(a);
    set_join(me, 2, 2);
    apply(a);
    set_leave(me, 3, 9); /* refused: a session with an error text */
    apply(a);
    (void)reg(a); /* a session with no change yet */
    uint64_t other = reg(b);
    set_join(other, 1, 3);
    apply(b); /* b has a state of its own, which failed restores must keep */
    uint64_t at = craft_shard_ctrler_applied(a), b_at = craft_shard_ctrler_applied(b);
    uint8_t *snap, *before;
    size_t len, before_len;
    CHECK(craft_shard_ctrler_snapshot(a, &snap, &len) == CRAFT_OK);
    CHECK(craft_shard_ctrler_snapshot(b, &before, &before_len) == CRAFT_OK);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(craft_shard_ctrler_restore(b, snap, cut, at) == CRAFT_ECORRUPT);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, snap, len);
    longer[len] = 0;
    CHECK(craft_shard_ctrler_restore(b, longer, len + 1, at) == CRAFT_ECORRUPT);
    /* A snapshot claiming entries past the index it is installed at: refused. */
    CHECK(craft_shard_ctrler_restore(b, snap, len, at - 1) == CRAFT_ECORRUPT);
    free(longer);
    snap[0] = 2;
    CHECK(craft_shard_ctrler_restore(b, snap, len, at) == CRAFT_EVERSION);
    snap[0] = CRAFT_SHARD_CTRLER_SNAPSHOT_VERSION;
    /* Every single-byte change: refused, or a state whose configurations are valid. */
    for (size_t k = 0; k < len; k++) {
        uint8_t old = snap[k];
        snap[k] ^= 0x41;
        int rc = craft_shard_ctrler_restore(b, snap, len, at);
        if (rc == CRAFT_OK) {
            CHECK(craft_shard_config_valid(craft_shard_ctrler_latest(b)));
            CHECK(craft_shard_ctrler_restore(b, before, before_len, b_at) == CRAFT_OK);
        } else {
            CHECK(rc == CRAFT_ECORRUPT || rc == CRAFT_EVERSION);
        }
        snap[k] = old;
    }
    /* Installed at a later index (entries that were not the controller's, say): the next
     * entry follows that index. */
    struct craft_shard_ctrler *d;
    CHECK(craft_shard_ctrler_open(&d) == CRAFT_OK);
    CHECK(craft_shard_ctrler_restore(d, snap, len, at + 5) == CRAFT_OK);
    CHECK(craft_shard_ctrler_applied(d) == at + 5);
    craft_shard_ctrler_close(d);
    uint8_t *after;
    size_t after_len;
    CHECK(craft_shard_ctrler_snapshot(b, &after, &after_len) == CRAFT_OK);
    CHECK(after_len == before_len && memcmp(after, before, after_len) == 0);
    free(after);
    free(before);
    free(snap);
    craft_shard_ctrler_close(a);
    craft_shard_ctrler_close(b);
}

static void requests(void)
{
    struct craft_shard_request r;
    set_join(5, 3, 42);
    CHECK(craft_shard_request_decode(entry, entry_len, &r) == CRAFT_OK);
    CHECK(r.op == CRAFT_SHARD_OP_JOIN && r.client == 5 && r.seq == 3 && r.n == 1);
    CHECK(r.groups[0].gid == 42 && strcmp(r.groups[0].servers[1], "10.0.1.42:7000") == 0);
    for (size_t cut = 0; cut < entry_len; cut++) {
        CHECK(craft_shard_request_decode(entry, cut, &r) == CRAFT_EMALFORMED);
    }
    entry[0] = 9;
    CHECK(craft_shard_request_decode(entry, entry_len, &r) == CRAFT_EVERSION);
    set_move(5, 4, 10, 20, 42);
    CHECK(craft_shard_request_decode(entry, entry_len, &r) == CRAFT_OK);
    CHECK(r.first == 10 && r.last == 20 && r.gid == 42);
    set_leave(5, 5, 42);
    memset(entry + 2, 0, 8); /* client 0 */
    CHECK(craft_shard_request_decode(entry, entry_len, &r) == CRAFT_EMALFORMED);
    memset(&req, 0, sizeof req);
    req.op = CRAFT_SHARD_OP_REGISTER;
    encode();
    CHECK(craft_shard_request_decode(entry, entry_len, &r) == CRAFT_OK);
    CHECK(r.op == CRAFT_SHARD_OP_REGISTER && r.client == 0 && r.seq == 0);
    /* Shapes the encoder refuses. */
    size_t n;
    memset(&r, 0, sizeof r);
    r = (struct craft_shard_request){.op = CRAFT_SHARD_OP_QUERY, .client = 1, .seq = 1};
    CHECK(craft_shard_request_encode(&r, entry, sizeof entry, &n) == CRAFT_EINVAL);
    r = (struct craft_shard_request){.op = CRAFT_SHARD_OP_LEAVE, .client = 1, .seq = 1, .n = 0};
    CHECK(craft_shard_request_encode(&r, entry, sizeof entry, &n) == CRAFT_EINVAL);
    r = (struct craft_shard_request){.op = CRAFT_SHARD_OP_JOIN, .client = 1, .seq = 1, .n = 1};
    r.groups[0].gid = 3; /* no server */
    CHECK(craft_shard_request_encode(&r, entry, sizeof entry, &n) == CRAFT_EINVAL);
    r = (struct craft_shard_request){.op = CRAFT_SHARD_OP_REGISTER, .client = 4};
    CHECK(craft_shard_request_encode(&r, entry, sizeof entry, &n) == CRAFT_EINVAL);
    r = (struct craft_shard_request){.op = CRAFT_SHARD_OP_JOIN, .client = 0, .seq = 1, .n = 1};
    r.groups[0] = (struct craft_shard_group){.gid = 3, .n_servers = 1};
    memcpy(r.groups[0].servers[0], "a:1", 4);
    CHECK(craft_shard_request_encode(&r, entry, sizeof entry, &n) == CRAFT_EINVAL);
    r = (struct craft_shard_request){.op = 9, .client = 1, .seq = 1};
    CHECK(craft_shard_request_encode(&r, entry, sizeof entry, &n) == CRAFT_EINVAL);
    r = (struct craft_shard_request){.op = CRAFT_SHARD_OP_MOVE, .client = 1, .seq = 1};
    CHECK(craft_shard_request_encode(&r, entry, 5, &n) == CRAFT_ETOOBIG);
    /* A malformed entry in the log changes nothing and is skipped by every replica. */
    struct craft_shard_ctrler *c;
    CHECK(craft_shard_ctrler_open(&c) == CRAFT_OK);
    struct craft_shard_ctrler_result res;
    CHECK(craft_shard_ctrler_apply(c, ++next_index, entry, 3, &res) == CRAFT_EMALFORMED);
    CHECK(craft_shard_ctrler_applied(c) == next_index && craft_shard_ctrler_latest(c)->num == 0);
    craft_shard_ctrler_close(c);
}

int main(void)
{
    run_case("history", history);
    run_case("sessions", sessions);
    run_case("snapshots", snapshots);
    run_case("damaged_snapshots", damaged_snapshots);
    run_case("requests", requests);
    return unit_finish();
}
