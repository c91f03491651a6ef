/* craftkv sharded: the commands without keys (DBSIZE, SCAN, KEYS, FLUSHALL, FLUSHDB), answered as
 * a Redis Cluster node answers them: for the slots it is the master of, here those of the
 * groups this process leads (CLUSTER SLOTS and NODES name it their master). Cluster
 * clients send them to every master and combine the answers (redis-py's RedisCluster:
 * dbsize, scan_iter, flushall); redis-cli on one node gets that node's share.
 *
 * Runs on a worker (it blocks): a ReadIndex round per group before reading it, a proposal
 * per group for FLUSHALL, each waited for until the command's deadline.
 *
 * SCAN over several groups: the cursor is a position in the key hash order that every
 * group's store shares (kv_sm.h); each group scans from it, and the next cursor is the
 * smallest position any group stopped at (0 once every group is done). Keys a group
 * returned beyond that position come again in the next call: SCAN may return a key more
 * than once, as Redis's may, and never misses a key present for the whole iteration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/server_internal.h"

bool craftkv_keyless_cmd(const struct craftkv_cmd_def *d)
{
    return strcmp(d->name, "dbsize") == 0 || strcmp(d->name, "scan") == 0 ||
           strcmp(d->name, "keys") == 0 || strcmp(d->name, "flushall") == 0 ||
           strcmp(d->name, "flushdb") == 0;
}

/* Waits for f until deadline and releases it: its result (CRAFT_ETIMEOUT past the
 * deadline). */
static int wait_release(struct craft_future *f, uint64_t deadline)
{
    if (!f)
        return CRAFT_ENOMEM;
    uint64_t now = craftkv_mono_ms();
    int rc = craft_future_wait(f, now < deadline ? (int64_t)(deadline - now) : 0);
    void *res = rc == CRAFT_OK ? craft_future_result(f) : NULL;
    if (res)
        craft_kv_result_free(res);
    craft_future_release(f);
    return rc;
}

/* One group's SCAN reply "*2 $cursor *n keys..." split into its cursor and its keys' raw
 * bytes: false if it is not that shape (an error reply: the caller passes it on). */
static bool scan_split(const struct craft_resp_buf *b, uint64_t *cursor, uint64_t *n,
                       size_t *keys_off)
{
    const char *p = b->data, *end = b->data + b->len;
    if (b->len < 5 || memcmp(p, "*2\r\n$", 5) != 0)
        return false;
    p += 5;
    size_t clen = 0;
    while (p < end && *p >= '0' && *p <= '9')
        clen = clen * 10 + (size_t)(*p++ - '0');
    if (end - p < 2 || (size_t)(end - p - 2) < clen + 2)
        return false;
    p += 2;
    uint64_t c = 0;
    for (size_t i = 0; i < clen; i++)
        c = c * 10 + (uint64_t)(p[i] - '0');
    p += clen + 2;
    if (p >= end || *p != '*')
        return false;
    p++;
    uint64_t k = 0;
    while (p < end && *p >= '0' && *p <= '9')
        k = k * 10 + (uint64_t)(*p++ - '0');
    if (end - p < 2)
        return false;
    *cursor = c;
    *n = k;
    *keys_off = (size_t)(p + 2 - b->data);
    return true;
}

static void keyless_read(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    bool scan = strcmp(t->def->name, "scan") == 0, keys_cmd = strcmp(t->def->name, "keys") == 0;
    uint64_t total = 0, next = 0, n_keys = 0;
    struct craft_resp_buf keys = {0}, one = {0};
    for (size_t i = 0; i < s->n_groups; i++) {
        struct craftkv_group *g = &s->groups[i];
        if (craft_state(g->node) != CRAFT_LEADER)
            continue;
        int rc = wait_release(craft_read_index(g->node), deadline);
        struct craft_kv_read *r = NULL;
        if (rc == CRAFT_OK)
            rc = craft_kv_read_begin(g->sm, &r);
        if (rc != CRAFT_OK) {
            craftkv_reply_timeout(s, &t->out); /* a leader change: the client asks again */
            goto done;
        }
        one.len = 0;
        t->def->read(r, t->argc, t->argv, &one);
        craft_kv_read_end(r);
        uint64_t c = 0, k = 0, v = 0;
        size_t off = 0;
        if (one.len > 0 && one.data[0] == '-') {
            craftkv_buf_append_raw(&t->out, one.data, one.len); /* a syntax error */
            goto done;
        }
        if (keys_cmd) {
            /* "*n\r\n" then the keys: the counts add up, the keys follow each other. */
            size_t j = 1;
            for (; j < one.len && one.data[j] >= '0' && one.data[j] <= '9'; j++)
                v = v * 10 + (uint64_t)(one.data[j] - '0');
            n_keys += v;
            if (j + 2 <= one.len &&
                craftkv_buf_append_raw(&keys, one.data + j + 2, one.len - j - 2) != 0) {
                craft_resp_append_error(&t->out, "ERR out of memory");
                goto done;
            }
        } else if (!scan) {
            for (size_t j = 1; j < one.len && one.data[j] >= '0' && one.data[j] <= '9'; j++)
                v = v * 10 + (uint64_t)(one.data[j] - '0');
            total += v;
        } else if (scan_split(&one, &c, &k, &off)) {
            if (c != 0 && (next == 0 || c < next))
                next = c;
            n_keys += k;
            if (craftkv_buf_append_raw(&keys, one.data + off, one.len - off) != 0) {
                craft_resp_append_error(&t->out, "ERR out of memory");
                goto done;
            }
        }
    }
    if (keys_cmd) {
        craft_resp_append_array(&t->out, n_keys);
        if (craftkv_buf_append_raw(&t->out, keys.data, keys.len) != 0) {
            t->out.len = 0;
            craft_resp_append_error(&t->out, "ERR out of memory");
        }
    } else if (!scan) {
        craft_resp_append_int(&t->out, (int64_t)total);
    } else {
        char cur[24];
        int cl = snprintf(cur, sizeof cur, "%llu", (unsigned long long)next);
        craft_resp_append_array(&t->out, 2);
        craft_resp_append_bulk(&t->out, cur, (size_t)cl);
        craft_resp_append_array(&t->out, n_keys);
        if (craftkv_buf_append_raw(&t->out, keys.data, keys.len) != 0) {
            t->out.len = 0;
            craft_resp_append_error(&t->out, "ERR out of memory");
        }
    }
done:
    craft_resp_buf_free(&keys);
    craft_resp_buf_free(&one);
}

static void keyless_flush(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    struct craft_kv_cmd c = {0};
    struct craft_kv_bytes items[2];
    uint64_t now = craftkv_now_ms();
    if (!t->def->write(t->argc, t->argv, now, &c, items, &t->out))
        return; /* a syntax error, in out */
    /* Session 0: FLUSHALL is idempotent, and a retry after a lost answer only empties
     * what was written since (as a client's own retry of FLUSHALL would). */
    c.now_ms = now;
    uint8_t buf[64];
    size_t len;
    if (craft_kv_cmd_encode(&c, buf, sizeof buf, &len) != CRAFT_OK) {
        craft_resp_append_error(&t->out, "ERR cannot encode FLUSHALL");
        return;
    }
    size_t led = 0;
    const struct craftkv_route *r = craftkv_route_now(s);
    for (size_t i = 0; i < s->n_groups; i++) {
        struct craftkv_group *g = &s->groups[i];
        if (craft_state(g->node) != CRAFT_LEADER)
            continue;
        led += r && craft_shard_group_slots(&r->cfg, g->gid) > 0; /* a master of slots */
        uint64_t at = craftkv_mono_ms();
        uint32_t left = deadline > at ? (uint32_t)(deadline - at) : 1;
        int rc = wait_release(craft_apply(g->node, buf, (uint32_t)len, left), deadline);
        if (rc != CRAFT_OK) {
            craftkv_reply_timeout(s, &t->out);
            return;
        }
    }
    if (led == 0) /* a node that masters no slot, as a Redis Cluster replica answers */
        craft_resp_append_error(&t->out, "READONLY You can't write against a read only replica.");
    else
        craft_resp_append_simple(&t->out, "OK");
}

void craftkv_keyless(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    if (t->def->kind == CRAFTKV_WRITE)
        keyless_flush(s, t, deadline);
    else
        keyless_read(s, t, deadline);
}
