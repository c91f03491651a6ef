/* craftkv sharded: what the shard driver asks of a group hosted on other processes
 * (docs/design/sharding.md, "Groups on subsets of processes"), both ends.
 *
 *   CRAFT.SHARD EXPORT gid num slots cursor max   -> *2 (payload, next cursor)
 *   CRAFT.SHARD STATE gid                         -> *3 (:leader, :applied num, states)
 *
 * Both are answered by any process hosting gid from its own replica, without a quorum
 * round: what they return was committed in gid's log (a frozen copy of slots at
 * configuration num, the slots' states), so a lagging replica only delays the asker, as a
 * lagging local replica does (server_shard.c). `slots` is the 2048-byte slot bitmap,
 * `cursor` a stored key (kv_sm.h craft_kv_export_cursor, empty: from the first), `states`
 * one byte per slot (enum craft_slot_state). An export not possible yet (that replica has
 * not reached num) or no longer (the slots were deleted there: the asker has them) is a
 * TRYAGAIN; anything else an ERR.
 *
 * The asking side keeps one blocking connection per member, opened when first needed and
 * closed on any error, and asks one host per call, so a dead or paused host costs the
 * asker one timeout per call, not one per host. STATE goes to the group's hosts in turn
 * (a host that answers but lags, or whose replica stopped, must not hold a step back
 * forever); EXPORT stays with a host until it fails or answers TRYAGAIN. One thread at a
 * time per struct craftkv_peers (the driver's; an admin command's wait). */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "kv/kv_shard.h"
#include "kv/server_internal.h"

/* How long a call to another process may wait per connect, send or receive; an export's
 * answer takes a walk over the sender's keys from the cursor (no index by slot yet), up to
 * a hand-over entry's worth: it gets longer. */
#define PEER_TIMEOUT_MS 2000
#define PEER_EXPORT_TIMEOUT_MS 30000
/* Connection failures logged at most this often per member (a wrong --requirepass on one
 * process would otherwise stall migrations without a word). */
#define PEER_LOG_MS 10000
/* The reply buffer kept between calls; an export's (up to a hand-over entry) is freed. */
#define REPLY_KEEP_BYTES (64u << 10)

/* ---- the answering side (workers) ---- */

static struct craftkv_group *hosted_group(struct craftkv_server *s, const struct craft_resp_arg *a,
                                          struct craft_resp_buf *out)
{
    uint64_t gid;
    struct craftkv_group *g = craftkv_arg_u64(a, UINT64_MAX - 1, &gid) && gid > 0
                                  ? craftkv_group_of(s, gid)
                                  : NULL;
    if (!g)
        craft_resp_append_errorf(out, "ERR shard group '%.*s' is not hosted here",
                                 (int)(a->len > 32 ? 32 : a->len), a->data);
    return g;
}

static void answer_export(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                          struct craft_resp_buf *out)
{
    struct craft_kv_export_cursor cur = {0};
    struct craft_slot_set slots;
    uint64_t num, max;
    if (argc != 7 || !craftkv_arg_u64(&argv[3], UINT64_MAX - 1, &num) ||
        argv[4].len != sizeof slots.bits || argv[5].len > sizeof cur.key ||
        !craftkv_arg_u64(&argv[6], CRAFTKV_HANDOVER_BYTES_MAX, &max) ||
        max < CRAFTKV_HANDOVER_BYTES_MIN) {
        craft_resp_append_error(out, "ERR usage: CRAFT.SHARD EXPORT gid num slots cursor max "
                                     "(internal)");
        return;
    }
    struct craftkv_group *g = hosted_group(s, &argv[2], out);
    if (!g)
        return;
    memcpy(slots.bits, argv[4].data, sizeof slots.bits);
    memcpy(cur.key, argv[5].data, argv[5].len);
    cur.len = argv[5].len;
    uint8_t *payload = NULL;
    size_t len = 0;
    bool part;
    int rc = craftkv_shard_read_export(g, num, &slots, (size_t)max, &cur, &payload, &len, &part);
    if (rc == CRAFT_EBUSY || rc == CRAFT_ESTALE) {
        craft_resp_append_errorf(out, "TRYAGAIN group %" PRIu64 " here is %s configuration "
                                      "%" PRIu64, g->gid, rc == CRAFT_EBUSY ? "before" : "past",
                                 num);
    } else if (rc != CRAFT_OK) {
        craft_resp_append_errorf(out, "ERR export: %s", craft_strerror(rc));
    } else {
        size_t mark = out->len;
        if (craft_resp_append_array(out, 2) != CRAFT_OK ||
            craft_resp_append_bulk(out, payload, len) != CRAFT_OK ||
            craft_resp_append_bulk(out, cur.key, cur.len) != CRAFT_OK) {
            out->len = mark;
            craft_resp_append_error(out, "ERR out of memory");
        }
    }
    free(payload);
}

static void answer_state(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                         struct craft_resp_buf *out)
{
    if (argc != 3) {
        craft_resp_append_error(out, "ERR usage: CRAFT.SHARD STATE gid (internal)");
        return;
    }
    struct craftkv_group *g = hosted_group(s, &argv[2], out);
    if (!g)
        return;
    struct craft_shard_view *v = malloc(sizeof *v);
    int rc = v ? craftkv_shard_read_view(g, v) : CRAFT_ENOMEM;
    if (rc != CRAFT_OK) {
        craft_resp_append_errorf(out, "ERR state: %s", craft_strerror(rc));
    } else {
        size_t mark = out->len;
        if (craft_resp_append_array(out, 3) != CRAFT_OK ||
            craft_resp_append_int(out, (int64_t)craft_leader(g->node, NULL, 0)) != CRAFT_OK ||
            craft_resp_append_int(out, (int64_t)v->cur.num) != CRAFT_OK ||
            craft_resp_append_bulk(out, v->state, sizeof v->state) != CRAFT_OK) {
            out->len = mark;
            craft_resp_append_error(out, "ERR out of memory");
        }
    }
    free(v);
}

bool craftkv_shard_peer_cmd(size_t argc, const struct craft_resp_arg *argv)
{
    return argc >= 2 && (craftkv_arg_is(&argv[1], "EXPORT") || craftkv_arg_is(&argv[1], "STATE"));
}

void craftkv_shard_peer_answer(struct craftkv_server *s, size_t argc,
                               const struct craft_resp_arg *argv, struct craft_resp_buf *out)
{
    if (!s->sharded) {
        craft_resp_append_error(out, "ERR this craftkv is not sharded");
        return;
    }
    if (craftkv_arg_is(&argv[1], "EXPORT"))
        answer_export(s, argc, argv, out);
    else
        answer_state(s, argc, argv, out);
}

/* ---- the asking side (the driver) ---- */

struct craftkv_peers {
    struct craftkv_server *s;
    int fd[CRAFTKV_NODES_MAX];                  /* by member index; -1: not connected */
    uint64_t logged_ms[CRAFTKV_NODES_MAX];      /* last connection failure logged */
    uint32_t turn[CRAFTKV_SHARD_GROUPS_MAX + 1]; /* by gid: which host is asked next */
    struct craft_resp_buf reply;
};

struct craftkv_peers *craftkv_peers_new(struct craftkv_server *s)
{
    struct craftkv_peers *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->s = s;
    for (size_t i = 0; i < CRAFTKV_NODES_MAX; i++)
        p->fd[i] = -1;
    return p;
}

void craftkv_peers_free(struct craftkv_peers *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < CRAFTKV_NODES_MAX; i++)
        if (p->fd[i] >= 0)
            close(p->fd[i]);
    craft_resp_buf_free(&p->reply);
    free(p);
}

/* Sends argv to a host of gid other than this process and reads its reply into p->reply,
 * waiting up to timeout_ms per receive. CRAFT_OK, or CRAFT_EIO (the connection is closed
 * and the next call asks the next host). */
static int call_host(struct craftkv_peers *p, uint64_t gid, size_t argc,
                     const struct craft_resp_arg *argv, uint32_t timeout_ms)
{
    const struct craftkv_opts *o = &p->s->opts;
    size_t hosts[CRAFTKV_SHARD_REPLICAS_MAX], n = craftkv_shard_hosts(o, gid, hosts), others = 0;
    for (size_t i = 0; i < n; i++)
        if (o->members[hosts[i]].id != o->id)
            hosts[others++] = hosts[i];
    if (others == 0 || gid > CRAFTKV_SHARD_GROUPS_MAX)
        return CRAFT_EIO;
    size_t m = hosts[p->turn[gid] % others];
    if (p->fd[m] < 0) {
        p->fd[m] = craftkv_client_connect(o->members[m].client_addr, PEER_TIMEOUT_MS,
                                          o->requirepass);
        uint64_t now = craftkv_mono_ms();
        if (p->fd[m] < 0 && now - p->logged_ms[m] >= PEER_LOG_MS) {
            p->logged_ms[m] = now;
            fprintf(stderr, "craftkv: cannot reach member %" PRIu64 " at %s for shard group "
                            "%" PRIu64 ": %s\n", o->members[m].id, o->members[m].client_addr,
                    gid, errno == EACCES ? "it refused this node's password (every member "
                                           "needs the same --requirepass)" : strerror(errno));
        }
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (p->fd[m] >= 0 && setsockopt(p->fd[m], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
        craftkv_client_call(p->fd[m], argc, argv, &p->reply) == 0)
        return CRAFT_OK;
    if (p->fd[m] >= 0)
        close(p->fd[m]);
    p->fd[m] = -1;
    p->turn[gid]++;
    return CRAFT_EIO;
}

/* The number on the line at b[at..] (after its type byte): digits, a '-' first for an
 * integer, then CRLF; *next just past the line. Digits only: strtoll would skip a CR or
 * LF as white space and read past the line. */
static bool line_number(const char *b, size_t len, size_t at, bool sign, int64_t *v, size_t *next)
{
    bool neg = sign && at < len && b[at] == '-';
    size_t i = at + neg;
    int64_t x = 0;
    for (; i < len && b[i] >= '0' && b[i] <= '9'; i++) {
        if (x > (INT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (b[i] - '0');
    }
    if (i == at + neg || i + 2 > len || b[i] != '\r' || b[i + 1] != '\n')
        return false;
    *v = neg ? -x : x;
    *next = i + 2;
    return true;
}

/* The reply's next element at *off: an integer, or a bulk string (pointing into the
 * reply). False if it is something else. */
static bool take_int(const char *b, size_t len, size_t *off, int64_t *v)
{
    return *off < len && b[*off] == ':' && line_number(b, len, *off + 1, true, v, off);
}

static bool take_bulk(const char *b, size_t len, size_t *off, const uint8_t **p, size_t *n)
{
    int64_t x;
    size_t at;
    if (*off >= len || b[*off] != '$' || !line_number(b, len, *off + 1, false, &x, &at))
        return false;
    if ((uint64_t)x > len - at || len - at - (size_t)x < 2 || b[at + x] != '\r' ||
        b[at + x + 1] != '\n')
        return false;
    *p = (const uint8_t *)b + at;
    *n = (size_t)x;
    *off = at + (size_t)x + 2;
    return true;
}

/* A complete reply that is an array of n elements: the offset of its first. */
static bool array_of(const char *b, size_t len, char n, size_t *off)
{
    if (len < 4 || craftkv_reply_len(b, len) != (long)len || b[0] != '*' || b[1] != n ||
        b[2] != '\r')
        return false;
    *off = 4;
    return true;
}

static int error_reply(const char *b, size_t len)
{
    if (len > 9 && memcmp(b, "-TRYAGAIN", 9) == 0)
        return CRAFT_EBUSY;
    return len > 0 && b[0] == '-' ? CRAFT_EIO : CRAFT_ECORRUPT;
}

int craftkv_peer_state_decode(const char *b, size_t len, struct craftkv_peer_state *out)
{
    size_t off;
    int64_t leader, num;
    const uint8_t *states;
    size_t n;
    if (!array_of(b, len, '3', &off))
        return error_reply(b, len);
    if (!take_int(b, len, &off, &leader) || !take_int(b, len, &off, &num) ||
        !take_bulk(b, len, &off, &states, &n) || n != sizeof out->state || num < 0 ||
        leader < 0 || off != len)
        return CRAFT_ECORRUPT;
    for (size_t k = 0; k < n; k++)
        if (states[k] >= CRAFT_SLOT_STATES)
            return CRAFT_ECORRUPT;
    out->leader = (uint64_t)leader;
    out->num = (uint64_t)num;
    memcpy(out->state, states, n);
    return CRAFT_OK;
}

int craftkv_peer_export_decode(const char *b, size_t len, const struct craft_slot_set *slots,
                               const uint8_t **payload, size_t *plen, bool *part,
                               struct craft_kv_export_cursor *cur)
{
    size_t off, clen;
    const uint8_t *next;
    struct kv_payload pl;
    if (!array_of(b, len, '2', &off))
        return error_reply(b, len);
    if (!take_bulk(b, len, &off, payload, plen) || !take_bulk(b, len, &off, &next, &clen) ||
        off != len || clen > sizeof cur->key || kv_payload_open(*payload, *plen, &pl) != CRAFT_OK ||
        memcmp(&pl.slots, slots, sizeof *slots) != 0)
        return CRAFT_ECORRUPT; /* checked here: the group's log is no place for it */
    *part = pl.part;
    memcpy(cur->key, next, clen);
    cur->len = clen;
    return CRAFT_OK;
}

/* A call's failure: the next call asks the next host (a lagging one may stay behind), and
 * an error other than TRYAGAIN (the normal answer of a host before or past the
 * configuration) is logged. */
static int failed(struct craftkv_peers *p, uint64_t gid, const char *what, int rc)
{
    p->turn[gid % (CRAFTKV_SHARD_GROUPS_MAX + 1)]++;
    if (rc != CRAFT_EBUSY) {
        const struct craft_resp_buf *b = &p->reply;
        size_t n = b->len > 2 ? b->len - 2 : 0;
        fprintf(stderr, "craftkv: %s of shard group %" PRIu64 " from another process: %s: %.*s\n",
                what, gid, craft_strerror(rc), (int)(n > 200 ? 200 : n), b->data);
    }
    return rc;
}

int craftkv_peers_state(struct craftkv_peers *p, uint64_t gid, struct craftkv_peer_state *out)
{
    char g[24];
    int gl = snprintf(g, sizeof g, "%" PRIu64, gid);
    struct craft_resp_arg argv[3] = {{"CRAFT.SHARD", 11}, {"STATE", 5}, {g, (size_t)gl}};
    int rc = call_host(p, gid, 3, argv, PEER_TIMEOUT_MS);
    if (rc != CRAFT_OK)
        return rc;
    rc = craftkv_peer_state_decode(p->reply.data, p->reply.len, out);
    if (rc != CRAFT_OK)
        return failed(p, gid, "the state", rc);
    p->turn[gid]++; /* the next state from the next host */
    return CRAFT_OK;
}

int craftkv_peers_export(struct craftkv_peers *p, uint64_t gid, uint64_t num,
                         const struct craft_slot_set *slots, size_t max,
                         struct craft_kv_export_cursor *cur, uint8_t **out, size_t *len,
                         bool *part)
{
    char g[24], n[24], m[24];
    int gl = snprintf(g, sizeof g, "%" PRIu64, gid), nl = snprintf(n, sizeof n, "%" PRIu64, num),
        ml = snprintf(m, sizeof m, "%zu", max);
    struct craft_resp_arg argv[7] = {{"CRAFT.SHARD", 11},
                                     {"EXPORT", 6},
                                     {g, (size_t)gl},
                                     {n, (size_t)nl},
                                     {(const char *)slots->bits, sizeof slots->bits},
                                     {(const char *)cur->key, cur->len},
                                     {m, (size_t)ml}};
    int rc = call_host(p, gid, 7, argv, PEER_EXPORT_TIMEOUT_MS);
    const uint8_t *payload;
    size_t plen;
    struct craft_kv_export_cursor next;
    if (rc == CRAFT_OK) {
        rc = craftkv_peer_export_decode(p->reply.data, p->reply.len, slots, &payload, &plen,
                                        part, &next);
        if (rc != CRAFT_OK)
            rc = failed(p, gid, "the export", rc);
    }
    if (rc == CRAFT_OK) {
        *out = malloc(plen);
        rc = *out ? CRAFT_OK : CRAFT_ENOMEM;
    }
    if (rc == CRAFT_OK) {
        memcpy(*out, payload, plen);
        *len = plen;
        *cur = next;
    }
    if (p->reply.cap > REPLY_KEEP_BYTES)
        craft_resp_buf_free(&p->reply); /* a hand-over's worth is not kept between calls */
    return rc;
}
