/* The shard controller's state machine (ctrler.h): configuration history, client sessions,
 * and their snapshot. The history is kept encoded (a few hundred bytes per configuration);
 * only the latest is kept decoded, as the base of the next change. */
#include "shard/ctrler.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/err.h"

struct blob {
    uint8_t *p;
    size_t len;
};

struct session {
    uint64_t client;
    uint64_t seq;   /* the last change applied */
    uint64_t index; /* where it was applied: the least recent is forgotten first */
    int status;     /* its answer: CRAFT_OK or CRAFT_EINVAL */
    uint64_t num;
    char err[CRAFT_SHARD_CTRLER_ERR_BYTES];
};

struct craft_shard_ctrler {
    uint64_t applied;
    struct blob *history; /* history[k]: configuration k, encoded */
    size_t n_history, cap_history;
    struct session *sessions; /* ascending client */
    size_t n_sessions;
    struct craft_shard_config latest;
    /* Scratch, kept to avoid 50 KiB on the stack per call. */
    struct craft_shard_config next;
    struct craft_shard_request req;
};

static void history_free(struct blob *h, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(h[k].p);
    }
    free(h);
}

/* Appends c's encoding to the history. CRAFT_ENOMEM leaves it as it was. */
static int history_push(struct craft_shard_ctrler *c, const struct craft_shard_config *cfg)
{
    CRAFT_ASSERT(cfg->num == c->n_history);
    if (c->n_history == c->cap_history) {
        size_t cap = c->cap_history ? c->cap_history * 2 : 16;
        struct blob *h = realloc(c->history, cap * sizeof *h);
        if (h == NULL) {
            return CRAFT_ENOMEM;
        }
        c->history = h;
        c->cap_history = cap;
    }
    size_t len = craft_shard_config_size(cfg);
    uint8_t *p = malloc(len);
    if (p == NULL) {
        return CRAFT_ENOMEM;
    }
    CRAFT_ASSERT(craft_shard_config_encode(cfg, p, len) == len);
    c->history[c->n_history++] = (struct blob){p, len};
    return CRAFT_OK;
}

int craft_shard_ctrler_open(struct craft_shard_ctrler **out)
{
    struct craft_shard_ctrler *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return CRAFT_ENOMEM;
    }
    c->sessions = malloc(CRAFT_SHARD_CTRLER_SESSIONS_MAX * sizeof *c->sessions);
    craft_shard_config_init(&c->latest);
    if (c->sessions == NULL || history_push(c, &c->latest) != CRAFT_OK) {
        craft_shard_ctrler_close(c);
        return CRAFT_ENOMEM;
    }
    *out = c;
    return CRAFT_OK;
}

void craft_shard_ctrler_close(struct craft_shard_ctrler *c)
{
    if (c == NULL) {
        return;
    }
    history_free(c->history, c->n_history);
    free(c->sessions);
    free(c);
}

const struct craft_shard_config *craft_shard_ctrler_latest(const struct craft_shard_ctrler *c)
{
    return &c->latest;
}

int craft_shard_ctrler_config(const struct craft_shard_ctrler *c, uint64_t num,
                              const uint8_t **p, size_t *len)
{
    if (num >= c->n_history)
        return CRAFT_ENOTFOUND;
    *p = c->history[num].p;
    *len = c->history[num].len;
    return CRAFT_OK;
}

uint64_t craft_shard_ctrler_applied(const struct craft_shard_ctrler *c)
{
    return c->applied;
}

/* ---- sessions ---- */

/* The position of client in the sessions, or where it would go (*found false). */
static size_t session_find(const struct craft_shard_ctrler *c, uint64_t client, bool *found)
{
    size_t lo = 0, hi = c->n_sessions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->sessions[mid].client < client) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < c->n_sessions && c->sessions[lo].client == client;
    return lo;
}

/* A new session for client at position pos; when the table is full the least recently
 * used session goes first (lowest index; indexes are unique, so the choice is the same on
 * every replica). Returns the new session's position. */
static size_t session_insert(struct craft_shard_ctrler *c, size_t pos, uint64_t client)
{
    if (c->n_sessions == CRAFT_SHARD_CTRLER_SESSIONS_MAX) {
        size_t victim = 0;
        for (size_t k = 1; k < c->n_sessions; k++) {
            if (c->sessions[k].index < c->sessions[victim].index) {
                victim = k;
            }
        }
        memmove(&c->sessions[victim], &c->sessions[victim + 1],
                (c->n_sessions - victim - 1) * sizeof *c->sessions);
        c->n_sessions--;
        pos -= victim < pos;
    }
    memmove(&c->sessions[pos + 1], &c->sessions[pos], (c->n_sessions - pos) * sizeof *c->sessions);
    c->n_sessions++;
    c->sessions[pos] = (struct session){.client = client};
    return pos;
}

/* ---- apply ---- */

static void answer_session(const struct session *s, struct craft_shard_ctrler_result *res)
{
    res->status = s->status;
    res->num = s->num;
    memcpy(res->err, s->err, sizeof res->err);
}

static void answer_stale(struct craft_shard_ctrler_result *res, const char *why)
{
    res->status = CRAFT_ESTALE;
    snprintf(res->err, sizeof res->err, "%s", why);
}

static int change(struct craft_shard_ctrler *c, const struct craft_shard_request *r,
                  struct craft_shard_ctrler_result *res)
{
    int rc;
    switch (r->op) {
    case CRAFT_SHARD_OP_JOIN:
        rc = craft_shard_join(&c->latest, r->groups, r->n, &c->next, res->err, sizeof res->err);
        break;
    case CRAFT_SHARD_OP_LEAVE:
        rc = craft_shard_leave(&c->latest, r->gids, r->n, &c->next, res->err, sizeof res->err);
        break;
    default:
        CRAFT_ASSERT(r->op == CRAFT_SHARD_OP_MOVE);
        rc = craft_shard_move(&c->latest, r->first, r->last, r->gid, &c->next, res->err,
                              sizeof res->err);
        break;
    }
    if (rc != CRAFT_OK) {
        CRAFT_ASSERT(rc == CRAFT_EINVAL);
        res->status = CRAFT_EINVAL;
        res->num = c->latest.num;
        return CRAFT_OK;
    }
    CRAFT_ASSERT(craft_shard_config_valid(&c->next) && c->next.num == c->latest.num + 1);
    rc = history_push(c, &c->next);
    if (rc != CRAFT_OK) {
        return rc;
    }
    memcpy(&c->latest, &c->next, sizeof c->latest);
    res->status = CRAFT_OK;
    res->num = c->latest.num;
    return CRAFT_OK;
}

int craft_shard_ctrler_apply(struct craft_shard_ctrler *c, uint64_t index, const uint8_t *p,
                             size_t len, struct craft_shard_ctrler_result *res)
{
    CRAFT_ASSERT(index > c->applied);
    memset(res, 0, sizeof *res);
    struct craft_shard_request *r = &c->req;
    int rc = craft_shard_request_decode(p, len, r);
    if (rc != CRAFT_OK) {
        c->applied = index;
        return rc;
    }
    if (r->op == CRAFT_SHARD_OP_QUERY) {
        uint64_t num = r->num < c->n_history ? r->num : c->n_history - 1;
        res->status = CRAFT_OK;
        res->num = num;
        res->config = c->history[num].p;
        res->config_len = c->history[num].len;
        c->applied = index;
        return CRAFT_OK;
    }
    bool found;
    if (r->op == CRAFT_SHARD_OP_REGISTER) {
        /* The entry's index is the new client's id: unique, and above every id handed out
         * before, so it is not in the table. */
        size_t pos = session_find(c, index, &found);
        CRAFT_ASSERT(!found);
        pos = session_insert(c, pos, index);
        c->sessions[pos].index = index;
        res->status = CRAFT_OK;
        res->num = index;
        c->applied = index;
        return CRAFT_OK;
    }
    size_t pos = session_find(c, r->client, &found);
    if (found && r->seq == c->sessions[pos].seq) {
        answer_session(&c->sessions[pos], res); /* a retry: the first answer again */
        c->applied = index;
        return CRAFT_OK;
    }
    if (!found || r->seq != c->sessions[pos].seq + 1) {
        answer_stale(res, !found ? "unknown client (never registered, or forgotten): register "
                                   "again"
                          : r->seq < c->sessions[pos].seq
                              ? "stale request: the client has made a later one"
                              : "a gap in the client's requests");
        c->applied = index;
        return CRAFT_OK;
    }
    rc = change(c, r, res);
    if (rc != CRAFT_OK) {
        return rc; /* nothing changed: the entry is applied again after the error */
    }
    struct session *s = &c->sessions[pos];
    s->seq = r->seq;
    s->index = index;
    s->status = res->status;
    s->num = res->num;
    memcpy(s->err, res->err, sizeof s->err);
    c->applied = index;
    return CRAFT_OK;
}

/* ---- snapshots ---- */

#define SESSION_FIXED_BYTES (8u + 8u + 8u + 1u + 8u + 1u)

int craft_shard_ctrler_snapshot(const struct craft_shard_ctrler *c, uint8_t **buf, size_t *len)
{
    size_t need = 1 + 8 + 4 + 4;
    for (size_t k = 0; k < c->n_history; k++) {
        need += 4 + c->history[k].len;
    }
    for (size_t k = 0; k < c->n_sessions; k++) {
        need += SESSION_FIXED_BYTES + strlen(c->sessions[k].err);
    }
    uint8_t *b = malloc(need), *p = b;
    if (b == NULL) {
        return CRAFT_ENOMEM;
    }
    *p++ = CRAFT_SHARD_CTRLER_SNAPSHOT_VERSION;
    craft_put_u64(p, c->applied);
    p += 8;
    craft_put_u32(p, (uint32_t)c->n_history);
    p += 4;
    for (size_t k = 0; k < c->n_history; k++) {
        craft_put_u32(p, (uint32_t)c->history[k].len);
        memcpy(p + 4, c->history[k].p, c->history[k].len);
        p += 4 + c->history[k].len;
    }
    craft_put_u32(p, (uint32_t)c->n_sessions);
    p += 4;
    for (size_t k = 0; k < c->n_sessions; k++) {
        const struct session *s = &c->sessions[k];
        size_t el = strlen(s->err);
        craft_put_u64(p, s->client);
        craft_put_u64(p + 8, s->seq);
        craft_put_u64(p + 16, s->index);
        p[24] = s->status == CRAFT_OK ? 0 : 1;
        craft_put_u64(p + 25, s->num);
        p[33] = (uint8_t)el;
        memcpy(p + 34, s->err, el);
        p += SESSION_FIXED_BYTES + el;
    }
    CRAFT_ASSERT((size_t)(p - b) == need);
    *buf = b;
    *len = need;
    return CRAFT_OK;
}

/* Decodes the history part into a new array (*out, *n_out); the last configuration into
 * *latest. */
static int restore_history(struct craft_reader *r, struct craft_shard_config *latest,
                           struct blob **out, size_t *n_out)
{
    const uint8_t *b = craft_take(r, 4);
    if (b == NULL) {
        return CRAFT_ECORRUPT;
    }
    uint32_t n = craft_get_u32(b);
    /* Each configuration takes at least 4 + 13 bytes: a bound before allocating. */
    if (n == 0 || n > r->left / 17) {
        return CRAFT_ECORRUPT;
    }
    struct blob *h = calloc(n, sizeof *h);
    if (h == NULL) {
        return CRAFT_ENOMEM;
    }
    int rc = CRAFT_OK;
    for (uint32_t k = 0; k < n && rc == CRAFT_OK; k++) {
        const uint8_t *lb = craft_take(r, 4), *cb;
        uint32_t len = lb ? craft_get_u32(lb) : 0;
        if (lb == NULL || (cb = craft_take(r, len)) == NULL) {
            rc = CRAFT_ECORRUPT;
            break;
        }
        rc = craft_shard_config_decode(cb, len, latest);
        if (rc != CRAFT_OK || latest->num != k) {
            rc = rc == CRAFT_EVERSION ? rc : CRAFT_ECORRUPT;
            break;
        }
        h[k].p = malloc(len ? len : 1);
        if (h[k].p == NULL) {
            rc = CRAFT_ENOMEM;
            break;
        }
        memcpy(h[k].p, cb, len);
        h[k].len = len;
    }
    if (rc != CRAFT_OK) {
        history_free(h, n);
        return rc;
    }
    *out = h;
    *n_out = n;
    return CRAFT_OK;
}

static int restore_sessions(struct craft_reader *r, uint64_t applied, struct session *out,
                            size_t *n_out)
{
    const uint8_t *b = craft_take(r, 4);
    if (b == NULL) {
        return CRAFT_ECORRUPT;
    }
    uint32_t n = craft_get_u32(b);
    if (n > CRAFT_SHARD_CTRLER_SESSIONS_MAX) {
        return CRAFT_ECORRUPT;
    }
    for (uint32_t k = 0; k < n; k++) {
        struct session *s = &out[k];
        if ((b = craft_take(r, SESSION_FIXED_BYTES)) == NULL) {
            return CRAFT_ECORRUPT;
        }
        *s = (struct session){.client = craft_get_u64(b), .seq = craft_get_u64(b + 8),
                              .index = craft_get_u64(b + 16),
                              .status = b[24] == 0 ? CRAFT_OK : CRAFT_EINVAL,
                              .num = craft_get_u64(b + 25)};
        uint8_t el = b[33];
        const uint8_t *e;
        /* A client's id is its registration's index: no later than its last use. */
        if (s->client == 0 || s->client > s->index || s->index > applied || b[24] > 1 ||
            el >= CRAFT_SHARD_CTRLER_ERR_BYTES || (k > 0 && out[k - 1].client >= s->client) ||
            (e = craft_take(r, el)) == NULL || memchr(e, '\0', el) != NULL) {
            return CRAFT_ECORRUPT;
        }
        memcpy(s->err, e, el); /* the rest is zero: NUL-ended */
    }
    *n_out = n;
    return CRAFT_OK;
}

int craft_shard_ctrler_restore(struct craft_shard_ctrler *c, const uint8_t *p, size_t len,
                               uint64_t index)
{
    struct craft_reader r = {p, len};
    const uint8_t *b = craft_take(&r, 1);
    if (b == NULL) {
        return CRAFT_ECORRUPT;
    }
    if (b[0] != CRAFT_SHARD_CTRLER_SNAPSHOT_VERSION) {
        return CRAFT_EVERSION;
    }
    if ((b = craft_take(&r, 8)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    uint64_t applied = craft_get_u64(b);
    if (applied > index) {
        return CRAFT_ECORRUPT; /* it would claim entries the log has not given it */
    }
    struct blob *h;
    size_t n_h, n_s;
    /* c->next is scratch, so the latest configuration is decoded there first. */
    int rc = restore_history(&r, &c->next, &h, &n_h);
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct session *s = malloc(CRAFT_SHARD_CTRLER_SESSIONS_MAX * sizeof *s);
    if (s == NULL) {
        history_free(h, n_h);
        return CRAFT_ENOMEM;
    }
    rc = restore_sessions(&r, applied, s, &n_s);
    for (size_t k = 0; rc == CRAFT_OK && k < n_s; k++) {
        if (s[k].num >= n_h) {
            rc = CRAFT_ECORRUPT; /* an answer naming a configuration that does not exist */
        }
    }
    if (rc == CRAFT_OK && r.left != 0) {
        rc = CRAFT_ECORRUPT;
    }
    if (rc != CRAFT_OK) {
        free(s);
        history_free(h, n_h);
        return rc;
    }
    history_free(c->history, c->n_history);
    free(c->sessions);
    c->history = h;
    c->n_history = c->cap_history = n_h;
    c->sessions = s;
    c->n_sessions = n_s;
    c->applied = index;
    memcpy(&c->latest, &c->next, sizeof c->latest);
    return CRAFT_OK;
}
