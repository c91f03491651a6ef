/* craftkv: cluster administration (RAFT.INFO, RAFT.ADDNODE, RAFT.REMOVENODE,
 * RAFT.TRANSFER, RAFT.SNAPSHOT, CRAFT.ADMIN) and the member-table keeper (server_admin.h;
 * design: docs/design/craftkv.md, "Commands").
 *
 * Who knows which address: craft replicates each member's Raft (peer) address in its log;
 * the client addresses, which followers need to forward writes and admin commands to the
 * leader, are replicated through the KV state machine's member table (MEMBER_SET /
 * MEMBER_DEL, kv.md). A node is added first (the configuration change commits), then
 * recorded; removed first, then unrecorded. Each step is idempotent, so a command cut
 * short by a leader change is simply sent again, and the keeper thread repairs what no
 * one retried. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv/server_admin.h"
#include "kv/server_internal.h"

_Static_assert(CRAFT_KV_ADDR_BYTES_MAX < CRAFTKV_ADDR_MAX, "a recorded address fits opts");
_Static_assert(CRAFT_KV_ADDR_BYTES_MAX < CRAFT_ADDR_BYTES_MAX, "a recorded address fits craft");

#define KEEPER_PERIOD_MS  500u
#define KEEPER_PROPOSE_MS 2000u
#define ERR_CONFCHANGE    "ERR a configuration change is in progress, try again"

/* Waits for f until deadline (a monotonic instant) in slices, so that shutdown is not held
 * up: the future's code, CRAFT_ETIMEOUT (the deadline passed, or the operation itself
 * timed out: craft_future_done tells) or CRAFT_ESHUTDOWN (the server is stopping). Admin
 * commands are the only ones that block, on a worker thread. */
static int wait_future(struct craftkv_server *s, struct craft_future *f, uint64_t deadline)
{
    for (;;) {
        uint64_t now = craftkv_mono_ms();
        if (s->stopping)
            return CRAFT_ESHUTDOWN;
        if (now >= deadline)
            return CRAFT_ETIMEOUT;
        uint64_t left = deadline - now;
        int rc = craft_future_wait(f, (int64_t)(left < 100 ? left : 100));
        if (rc != CRAFT_ETIMEOUT || craft_future_done(f))
            return rc; /* done, or the operation itself timed out */
    }
}

/* Waits for f, releases it, returns its code. */
static int finish(struct craftkv_server *s, struct craft_future *f, uint64_t deadline)
{
    if (!f)
        return CRAFT_ENOMEM;
    int rc = wait_future(s, f, deadline);
    craft_future_release(f);
    return rc;
}

/* A leader change makes a cluster command start over (on the new leader). */
static bool lost_leadership(int rc)
{
    return rc == CRAFT_ENOTLEADER || rc == CRAFT_ESTALE || rc == CRAFT_ETRANSFER;
}

/* ---- arguments ---- */

/* A node id: decimal digits only, 1..UINT64_MAX. */
static bool parse_id(const struct craft_resp_arg *a, uint64_t *id)
{
    return craftkv_arg_u64(a, UINT64_MAX, id) && *id != 0;
}

static void reply_bad_id(struct craft_resp_buf *out, const struct craft_resp_arg *a)
{
    craft_resp_append_errorf(out, "ERR node id '%.*s' is not a number (want a positive integer)",
                             (int)(a->len > 32 ? 32 : a->len), a->data);
}

/* "HOST:PORT" with a port 1..65535, copied into out. numeric: the host must be an IPv4 or
 * IPv6 literal ([::1]:7001), as craft's TCP transport requires of a peer address. */
static bool parse_addr(const struct craft_resp_arg *a, bool numeric, char out[CRAFTKV_ADDR_MAX])
{
    if (!craft_kv_addr_ok((const uint8_t *)a->data, a->len))
        return false;
    memcpy(out, a->data, a->len);
    out[a->len] = '\0';
    char *colon = strrchr(out, ':');
    if (!colon || colon == out || colon[1] == '\0')
        return false;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return false;
    if (!numeric)
        return true;
    char host[CRAFTKV_ADDR_MAX];
    const char *h = out;
    size_t hlen = (size_t)(colon - out);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    uint8_t buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* ---- the configuration and the member table ---- */

enum { ROLE_NONE, ROLE_VOTER, ROLE_LEARNER };

static bool in_list(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* A node's role in a configuration (joint: a voter of either half is a voter). */
static int conf_role(const struct craft_conf *c, uint64_t id)
{
    if (in_list(c->voters, c->n_voters, id) ||
        in_list(c->voters_outgoing, c->n_voters_outgoing, id))
        return ROLE_VOTER;
    if (in_list(c->learners, c->n_learners, id) ||
        in_list(c->learners_next, c->n_learners_next, id))
        return ROLE_LEARNER;
    return ROLE_NONE;
}

#define CONF_IDS_MAX CRAFTKV_VIEW_MEMBERS_MAX

static int cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every node of the configuration, ascending, once each. */
static size_t conf_ids(const struct craft_conf *c, uint64_t ids[CONF_IDS_MAX])
{
    size_t n = 0;
    const uint64_t *lists[4] = {c->voters, c->voters_outgoing, c->learners, c->learners_next};
    uint32_t counts[4] = {c->n_voters, c->n_voters_outgoing, c->n_learners, c->n_learners_next};
    for (int l = 0; l < 4; l++)
        for (uint32_t i = 0; i < counts[l]; i++)
            if (!in_list(ids, (uint32_t)n, lists[l][i]))
                ids[n++] = lists[l][i];
    qsort(ids, n, sizeof *ids, cmp_id);
    return n;
}

/* Member id's record in the replicated table: 1 found, 0 absent, -1 a store error. */
static int member_recorded(struct craftkv_server *s, uint64_t id, struct craft_kv_member *m)
{
    struct craft_kv_read *r;
    if (craft_kv_read_begin(craftkv_main_group(s)->sm, &r) != CRAFT_OK)
        return -1;
    int rc = craft_kv_read_member(r, id, m);
    craft_kv_read_end(r);
    return rc == CRAFT_OK ? 1 : rc == CRAFT_ENOTFOUND ? 0 : -1;
}

/* Member id's addresses from this node's own settings (--initial-cluster, or the members
 * learned at --join; this node's own listen addresses unless they listen on any address). */
static bool member_from_opts(const struct craftkv_server *s, uint64_t id, struct craft_kv_member *m)
{
    for (size_t i = 0; i < s->opts.n_members; i++)
        if (s->opts.members[i].id == id) {
            m->id = id;
            snprintf(m->peer_addr, sizeof m->peer_addr, "%s", s->opts.members[i].peer_addr);
            snprintf(m->client_addr, sizeof m->client_addr, "%s", s->opts.members[i].client_addr);
            return m->peer_addr[0] && m->client_addr[0];
        }
    if (id != s->opts.id)
        return false;
    const char *p = s->opts.listen_peer, *c = s->opts.listen_client;
    if (!p[0] || !c[0] || strncmp(p, "0.0.0.0:", 8) == 0 || strncmp(c, "0.0.0.0:", 8) == 0 ||
        strncmp(p, "[::]:", 5) == 0 || strncmp(c, "[::]:", 5) == 0 || p[0] == ':' || c[0] == ':')
        return false;
    m->id = id;
    snprintf(m->peer_addr, sizeof m->peer_addr, "%s", p);
    snprintf(m->client_addr, sizeof m->client_addr, "%s", c);
    return true;
}

int craftkv_members_view(struct craftkv_server *s, const struct craft_stats *st,
                         struct craftkv_member_view *out, size_t *n)
{
    struct craft_kv_member *recs = calloc(CRAFT_KV_MEMBERS_MAX, sizeof *recs);
    if (!recs)
        return CRAFT_ENOMEM;
    size_t n_recs = 0;
    struct craft_kv_read *r;
    if (craft_kv_read_begin(craftkv_main_group(s)->sm, &r) == CRAFT_OK) {
        if (craft_kv_read_members(r, recs, CRAFT_KV_MEMBERS_MAX, &n_recs) != CRAFT_OK)
            n_recs = 0;
        craft_kv_read_end(r);
    }
    if (n_recs > CRAFT_KV_MEMBERS_MAX)
        n_recs = CRAFT_KV_MEMBERS_MAX;
    uint64_t ids[CONF_IDS_MAX];
    *n = conf_ids(&st->conf, ids);
    for (size_t i = 0; i < *n; i++) {
        struct craftkv_member_view *v = &out[i];
        memset(v, 0, sizeof *v);
        v->m.id = ids[i];
        v->voter = conf_role(&st->conf, ids[i]) == ROLE_VOTER;
        bool known = false;
        for (size_t k = 0; k < n_recs && !known; k++)
            if (recs[k].id == ids[i]) {
                v->m = recs[k];
                known = true;
            }
        if (!known)
            member_from_opts(s, ids[i], &v->m);
    }
    free(recs);
    return CRAFT_OK;
}

/* Proposes a member-table command (session 0: each is idempotent) and waits for it. */
static int propose_member(struct craftkv_server *s, uint8_t op, const struct craft_kv_member *m,
                          uint64_t deadline)
{
    struct craft_kv_cmd c = {.op = op, .now_ms = craftkv_now_ms(), .member_id = m->id};
    if (op == CRAFT_KV_OP_MEMBER_SET) {
        c.peer_addr =
            (struct craft_kv_bytes){(const uint8_t *)m->peer_addr, (uint32_t)strlen(m->peer_addr)};
        c.client_addr = (struct craft_kv_bytes){(const uint8_t *)m->client_addr,
                                                (uint32_t)strlen(m->client_addr)};
    }
    uint8_t buf[CRAFT_KV_CMD_HEADER_BYTES + 16 + 2 * CRAFT_KV_ADDR_BYTES_MAX];
    size_t len;
    int rc = craft_kv_cmd_encode(&c, buf, sizeof buf, &len);
    if (rc != CRAFT_OK)
        return rc;
    uint64_t now = craftkv_mono_ms();
    uint32_t left = now < deadline ? (uint32_t)(deadline - now) : 1;
    struct craft_future *f = craft_apply(craftkv_main_group(s)->node, buf, (uint32_t)len, left);
    if (!f)
        return CRAFT_ENOMEM;
    rc = wait_future(s, f, deadline);
    if (rc == CRAFT_OK) {
        struct craft_kv_result *res = craft_future_result(f);
        if (res && res->type == CRAFT_KV_RES_ERR)
            rc = CRAFT_EBUSY; /* the table is full */
        craft_kv_result_free(res);
    }
    craft_future_release(f);
    return rc;
}

/* ---- commands that run on the leader ---- */

struct admin_cmd {
    const char *name;
    craftkv_admin_check_fn check;
    craftkv_admin_lead_fn lead;
    bool ctrl; /* runs on the shard controller's leader, not the main group's */
};

/* RAFT.ADDNODE id peer client [VOTER|LEARNER] */
enum { ADD_DEFAULT, ADD_VOTER, ADD_LEARNER };

struct addnode {
    uint64_t id;
    char peer[CRAFTKV_ADDR_MAX], client[CRAFTKV_ADDR_MAX];
    int mode;
};

static bool addnode_parse(size_t argc, const struct craft_resp_arg *argv, struct addnode *a,
                          struct craft_resp_buf *out)
{
    if (argc < 4 || argc > 5) {
        craft_resp_append_error(out, "ERR wrong number of arguments for 'raft.addnode' command");
        return false;
    }
    if (!parse_id(&argv[1], &a->id)) {
        reply_bad_id(out, &argv[1]);
        return false;
    }
    if (!parse_addr(&argv[2], true, a->peer)) {
        craft_resp_append_errorf(out, "ERR bad peer address '%.*s' (want IP:PORT, a numeric host)",
                                 (int)(argv[2].len > 64 ? 64 : argv[2].len), argv[2].data);
        return false;
    }
    if (!parse_addr(&argv[3], false, a->client)) {
        craft_resp_append_errorf(out, "ERR bad client address '%.*s' (want HOST:PORT)",
                                 (int)(argv[3].len > 64 ? 64 : argv[3].len), argv[3].data);
        return false;
    }
    a->mode = ADD_DEFAULT;
    if (argc == 5) {
        if (craftkv_arg_is(&argv[4], "VOTER")) {
            a->mode = ADD_VOTER;
        } else if (craftkv_arg_is(&argv[4], "LEARNER")) {
            a->mode = ADD_LEARNER;
        } else {
            craft_resp_append_error(out,
                                    "ERR syntax error (the last argument is VOTER or LEARNER)");
            return false;
        }
    }
    return true;
}

static bool addnode_check(size_t argc, const struct craft_resp_arg *argv,
                          struct craft_resp_buf *out)
{
    struct addnode a;
    return addnode_parse(argc, argv, &a, out);
}

/* Replies to a refused configuration change; returns 1 if it should start over. */
static int conf_change_failed(struct craftkv_server *s, int rc, uint64_t id, uint64_t deadline,
                              struct craft_resp_buf *out)
{
    if (lost_leadership(rc))
        return 1;
    if (rc == CRAFT_ECONFCHANGE && craftkv_mono_ms() + 100 < deadline) {
        craftkv_nap(100); /* the change in progress (an auto-promotion, say) commits soon */
        return 1;
    }
    out->len = 0;
    if (rc == CRAFT_ECONFCHANGE)
        craft_resp_append_error(out, ERR_CONFCHANGE);
    else if (rc == CRAFT_EUNKNOWNPEER)
        craft_resp_append_errorf(out, "ERR unknown node %" PRIu64, id);
    else if (rc == CRAFT_ETIMEOUT || rc == CRAFT_ESHUTDOWN)
        craftkv_reply_timeout(s, out);
    else
        craft_resp_append_errorf(out, "ERR configuration change for node %" PRIu64 " refused: %s",
                                 id, craft_strerror(rc));
    return 0;
}

static int addnode_lead(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                        uint64_t deadline, struct craft_resp_buf *out)
{
    struct addnode a;
    if (!addnode_parse(argc, argv, &a, out))
        return 0;
    struct craft_stats *st = malloc(sizeof *st);
    if (!st) {
        craft_resp_append_error(out, "ERR out of memory");
        return 0;
    }
    craft_stats(craftkv_main_group(s)->node, st);
    bool leads = st->role == CRAFT_LEADER;
    int role = conf_role(&st->conf, a.id);
    free(st);
    if (!leads)
        return 1;
    struct craft_kv_member rec;
    int recorded = member_recorded(s, a.id, &rec);
    if (recorded < 0) {
        craft_resp_append_error(out, "ERR storage error reading the member table");
        return 0;
    }
    if (role != ROLE_NONE && recorded && strcmp(rec.peer_addr, a.peer) != 0) {
        craft_resp_append_errorf(out,
                                 "ERR node %" PRIu64 " is already a member, with peer address %s",
                                 a.id, rec.peer_addr);
        return 0;
    }
    if (role == ROLE_VOTER && a.mode == ADD_LEARNER) {
        craft_resp_append_errorf(out, "ERR node %" PRIu64 " is already a voter", a.id);
        return 0;
    }
    struct craft_future *f = NULL;
    if (role == ROLE_NONE)
        f = a.mode == ADD_VOTER ? craft_add_voter(craftkv_main_group(s)->node, a.id, a.peer, 0)
                                : craft_add_nonvoter(craftkv_main_group(s)->node, a.id, a.peer, 0);
    else if (role == ROLE_LEARNER && a.mode == ADD_VOTER)
        f = craft_add_voter(craftkv_main_group(s)->node, a.id, a.peer, 0); /* promotes it */
    if (f) {
        int rc = finish(s, f, deadline);
        if (rc != CRAFT_OK)
            return conf_change_failed(s, rc, a.id, deadline, out);
    }
    /* A member already recorded with these addresses (a retry) needs no new record. */
    if (recorded != 1 || strcmp(rec.client_addr, a.client) != 0 ||
        strcmp(rec.peer_addr, a.peer) != 0) {
        struct craft_kv_member m = {.id = a.id};
        snprintf(m.peer_addr, sizeof m.peer_addr, "%s", a.peer);
        snprintf(m.client_addr, sizeof m.client_addr, "%s", a.client);
        int rc = propose_member(s, CRAFT_KV_OP_MEMBER_SET, &m, deadline);
        if (lost_leadership(rc))
            return 1; /* the new leader finds it a member and records it */
        if (rc == CRAFT_EBUSY) {
            craft_resp_append_error(out, "ERR the member table is full");
            return 0;
        }
        if (rc != CRAFT_OK) {
            craftkv_reply_timeout(s, out);
            return 0;
        }
    }
    craft_resp_append_simple(out, "OK");
    return 0;
}

/* RAFT.REMOVENODE id */
static bool removenode_check(size_t argc, const struct craft_resp_arg *argv,
                             struct craft_resp_buf *out)
{
    uint64_t id;
    if (argc != 2) {
        craft_resp_append_error(out, "ERR wrong number of arguments for 'raft.removenode' command");
        return false;
    }
    if (!parse_id(&argv[1], &id)) {
        reply_bad_id(out, &argv[1]);
        return false;
    }
    return true;
}

static int removenode_lead(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                           uint64_t deadline, struct craft_resp_buf *out)
{
    (void)argc;
    uint64_t id;
    if (!parse_id(&argv[1], &id)) {
        reply_bad_id(out, &argv[1]);
        return 0;
    }
    if (craft_state(craftkv_main_group(s)->node) != CRAFT_LEADER)
        return 1;
    int rc = finish(s, craft_remove_server(craftkv_main_group(s)->node, id, 0), deadline);
    if (rc != CRAFT_OK)
        return conf_change_failed(s, rc, id, deadline, out);
    /* Best effort: a leader that removed itself no longer leads, and the next leader's
     * keeper drops the record. */
    struct craft_kv_member m = {.id = id};
    (void)propose_member(s, CRAFT_KV_OP_MEMBER_DEL, &m, deadline);
    craft_resp_append_simple(out, "OK");
    return 0;
}

/* RAFT.TRANSFER [id] */
static bool transfer_check(size_t argc, const struct craft_resp_arg *argv,
                           struct craft_resp_buf *out)
{
    uint64_t id;
    if (argc > 2) {
        craft_resp_append_error(out, "ERR wrong number of arguments for 'raft.transfer' command");
        return false;
    }
    if (argc == 2 && !parse_id(&argv[1], &id)) {
        reply_bad_id(out, &argv[1]);
        return false;
    }
    return true;
}

static int transfer_lead(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                         uint64_t deadline, struct craft_resp_buf *out)
{
    uint64_t id = 0;
    if (argc == 2 && !parse_id(&argv[1], &id)) {
        reply_bad_id(out, &argv[1]);
        return 0;
    }
    struct craft_stats *st = malloc(sizeof *st);
    if (!st) {
        craft_resp_append_error(out, "ERR out of memory");
        return 0;
    }
    craft_stats(craftkv_main_group(s)->node, st);
    bool leads = st->role == CRAFT_LEADER;
    int role = conf_role(&st->conf, id);
    free(st);
    if (!leads)
        return 1;
    if (id == s->opts.id) {
        craft_resp_append_simple(out, "OK"); /* it leads already */
        return 0;
    }
    if (id != 0 && role == ROLE_NONE) {
        craft_resp_append_errorf(out, "ERR unknown node %" PRIu64, id);
        return 0;
    }
    if (id != 0 && role == ROLE_LEARNER) {
        craft_resp_append_errorf(out, "ERR node %" PRIu64 " is a learner: only a voter can lead",
                                 id);
        return 0;
    }
    struct craft_future *f = craft_transfer_leadership(craftkv_main_group(s)->node, id);
    if (!f) {
        craft_resp_append_error(out, "ERR out of memory");
        return 0;
    }
    int rc = wait_future(s, f, deadline);
    bool done = craft_future_done(f);
    craft_future_release(f);
    if (rc == CRAFT_OK) {
        craft_resp_append_simple(out, "OK");
    } else if (rc == CRAFT_ENOTLEADER) {
        return 1;
    } else if (rc == CRAFT_ETRANSFER) {
        craft_resp_append_error(out, "ERR a leadership transfer is already in progress");
    } else if (rc == CRAFT_EUNKNOWNPEER) {
        craft_resp_append_errorf(out, "ERR unknown node %" PRIu64, id);
    } else if (rc == CRAFT_ETIMEOUT && done) {
        craft_resp_append_errorf(out,
                                 "ERR leadership transfer abandoned: no node took over in time "
                                 "(is node %" PRIu64 " up and caught up?)",
                                 id);
    } else if (rc == CRAFT_ETIMEOUT || rc == CRAFT_ESHUTDOWN) {
        craftkv_reply_timeout(s, out);
    } else {
        craft_resp_append_errorf(out, "ERR leadership transfer failed: %s", craft_strerror(rc));
    }
    return 0;
}

static const struct admin_cmd admin_cmds[] = {
    {"raft.addnode", addnode_check, addnode_lead, false},
    {"raft.removenode", removenode_check, removenode_lead, false},
    {"raft.transfer", transfer_check, transfer_lead, false},
    {"craft.shard", craftkv_shard_check, craftkv_shard_lead, true}, /* server_shard_admin.c */
};

/* Sends CRAFT.ADMIN <argv...> to the leader at addr: 0 with its reply in out, 1 to try
 * again (it does not lead, or could not be reached: out empty). */
static int forward_admin(const struct craftkv_server *s, const char *addr, size_t argc,
                         const struct craft_resp_arg *argv, uint64_t deadline,
                         struct craft_resp_buf *out)
{
    uint64_t now = craftkv_mono_ms();
    uint32_t left = now < deadline ? (uint32_t)(deadline - now) : 1;
    int fd = craftkv_client_connect(addr, left, s->opts.requirepass);
    if (fd < 0)
        return 1;
    struct craft_resp_arg *fargv = malloc((argc + 1) * sizeof *fargv);
    int rc = -1;
    if (fargv) {
        fargv[0] = (struct craft_resp_arg){"CRAFT.ADMIN", 11};
        memcpy(fargv + 1, argv, argc * sizeof *argv);
        out->len = 0;
        rc = craftkv_client_call(fd, argc + 1, fargv, out);
        free(fargv);
    }
    close(fd);
    size_t n = strlen("-" CRAFTKV_ERR_NOTLEADER);
    if (rc != 0 || (out->len >= n && memcmp(out->data, "-" CRAFTKV_ERR_NOTLEADER, n) == 0)) {
        out->len = 0;
        return 1;
    }
    return 0;
}

/* Runs a cluster-changing command on the leader: here, or forwarded (unless it arrived
 * forwarded: a node that does not lead then refuses, so two nodes that disagree about the
 * leader cannot bounce it between them). Retries across leader changes until deadline. */
static void run_on_leader(struct craftkv_server *s, const struct admin_cmd *ac, size_t argc,
                          const struct craft_resp_arg *argv, bool forwarded, uint64_t deadline,
                          struct craft_resp_buf *out)
{
    if (!ac->check(argc, argv, out))
        return;
    if (ac->ctrl && !s->sharded) {
        craft_resp_append_error(out, "ERR this craftkv is not sharded (a new cluster started "
                                     "with --shard-groups is)");
        return;
    }
    if (!ac->ctrl && s->sharded && ac->lead != transfer_lead) {
        craft_resp_append_error(out, "ERR membership changes of a sharded craftkv are not "
                                     "built yet: its members are fixed at the first start");
        return;
    }
    struct craft_node *node = ac->ctrl ? s->ctrl_node : craftkv_main_group(s)->node;
    for (;;) {
        if (s->stopping || craftkv_mono_ms() >= deadline) {
            craftkv_reply_timeout(s, out);
            return;
        }
        uint64_t leader = craft_leader(node, NULL, 0);
        if (craft_state(node) == CRAFT_LEADER) {
            out->len = 0;
            if (ac->lead(s, argc, argv, deadline, out) == 0)
                return;
            out->len = 0;
            craftkv_nap(20);
            continue;
        }
        if (forwarded) {
            const char *a = leader != 0 && leader != s->opts.id ? craftkv_client_addr(s, leader)
                                                                 : NULL;
            craft_resp_append_errorf(out, "%s %s", CRAFTKV_ERR_NOTLEADER, a ? a : "?");
            return;
        }
        const char *a = leader != 0 && leader != s->opts.id ? craftkv_client_addr(s, leader) : NULL;
        if (a) {
            char addr[CRAFTKV_ADDR_MAX];
            snprintf(addr, sizeof addr, "%s", a);
            if (forward_admin(s, addr, argc, argv, deadline, out) == 0)
                return;
        }
        craftkv_nap(50);
    }
}

void craftkv_a_addnode(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    run_on_leader(s, &admin_cmds[0], t->argc, t->argv, false, deadline, &t->out);
}

void craftkv_a_removenode(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    run_on_leader(s, &admin_cmds[1], t->argc, t->argv, false, deadline, &t->out);
}

void craftkv_a_transfer(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    run_on_leader(s, &admin_cmds[2], t->argc, t->argv, false, deadline, &t->out);
}

void craftkv_a_shard(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    if (t->argc == 2 && craftkv_arg_is(&t->argv[1], "INFO")) {
        craftkv_shard_info(s, &t->out); /* this process's view: no leader needed */
        return;
    }
    if (craftkv_shard_peer_cmd(t->argc, t->argv)) {
        craftkv_shard_peer_answer(s, t->argc, t->argv, &t->out); /* another driver asks */
        return;
    }
    /* The leader answers once the slots moved (CRAFTKV_SHARD_WAIT_MS at most): a follower
     * that forwards it waits as long, rather than giving up and sending it again. */
    run_on_leader(s, &admin_cmds[3], t->argc, t->argv, false,
                  deadline + CRAFTKV_SHARD_WAIT_MS, &t->out);
}

void craftkv_a_admin(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    for (size_t i = 0; i < sizeof admin_cmds / sizeof admin_cmds[0]; i++)
        if (craftkv_arg_is(&t->argv[1], admin_cmds[i].name)) {
            run_on_leader(s, &admin_cmds[i], t->argc - 1, t->argv + 1, true, deadline, &t->out);
            return;
        }
    craft_resp_append_error(&t->out,
                            "ERR CRAFT.ADMIN runs RAFT.ADDNODE, RAFT.REMOVENODE, RAFT.TRANSFER or CRAFT.SHARD");
}

/* ---- commands that run on this node ---- */

void craftkv_a_snapshot(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    int rc = CRAFT_ENOMEM;
    uint64_t index = 0;
    struct craft_future *f = craft_snapshot(craftkv_main_group(s)->node);
    if (f) {
        rc = wait_future(s, f, deadline);
        if (rc == CRAFT_OK)
            index = craft_future_index(f);
        craft_future_release(f);
    }
    if (rc == CRAFT_ESTALE) {
        /* Nothing applied since the last snapshot: that one covers everything. */
        struct craft_stats *st = malloc(sizeof *st);
        if (st) {
            craft_stats(craftkv_main_group(s)->node, st);
            index = st->snap_index;
            free(st);
            rc = CRAFT_OK;
        }
    }
    if (rc == CRAFT_OK)
        craft_resp_append_int(&t->out, (int64_t)index);
    else if (rc == CRAFT_ETIMEOUT || rc == CRAFT_ESHUTDOWN)
        craftkv_reply_timeout(s, &t->out);
    else
        craft_resp_append_errorf(&t->out, "ERR snapshot failed: %s", craft_strerror(rc));
}

void craftkv_a_info(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    (void)deadline;
    struct craft_stats *st = malloc(sizeof *st);
    struct craftkv_member_view *mv = calloc(CRAFTKV_VIEW_MEMBERS_MAX, sizeof *mv);
    char *text = NULL;
    size_t len = 0, n_mv = 0;
    FILE *f = st && mv ? open_memstream(&text, &len) : NULL;
    if (f) {
        craft_stats(craftkv_main_group(s)->node, st);
        if (craftkv_members_view(s, st, mv, &n_mv) != CRAFT_OK) {
            fclose(f);
            free(text);
            f = NULL;
        }
    }
    if (!f) {
        free(st);
        free(mv);
        craft_resp_append_error(&t->out, "ERR out of memory");
        return;
    }
    size_t n_recorded = 0;
    struct craft_kv_read *r;
    if (craft_kv_read_begin(craftkv_main_group(s)->sm, &r) == CRAFT_OK) {
        (void)craft_kv_read_members(r, NULL, 0, &n_recorded);
        craft_kv_read_end(r);
    }
    const char *laddr = st->leader ? craftkv_client_addr(s, st->leader) : NULL;
    fprintf(f,
            "# Raft\r\nnode_id:%" PRIu64 "\r\nrole:%s\r\nterm:%" PRIu64 "\r\nleader_id:%" PRIu64
            "\r\nleader_client_addr:%s\r\ncommit_index:%" PRIu64 "\r\napplied_index:%" PRIu64
            "\r\nlast_index:%" PRIu64 "\r\nlast_log_term:%" PRIu64 "\r\nsnapshot_index:%" PRIu64
            "\r\nconf_index:%" PRIu64
            "\r\njoint:%s\r\nmembers:%zu\r\nmembers_recorded:%zu\r\n",
            s->opts.id, craftkv_role_name(st->role), st->term, st->leader, laddr ? laddr : "", st->commit,
            st->applied, st->last_index, st->last_term, st->snap_index, st->conf_index,
            st->conf.n_voters_outgoing > 0 ? "yes" : "no", n_mv, n_recorded);
    for (size_t i = 0; i < n_mv; i++) {
        const struct craft_kv_member *m = &mv[i].m;
        fprintf(f, "member%zu:id=%" PRIu64 ",role=%s,peer_addr=%s,client_addr=%s", i, m->id,
                mv[i].voter ? "voter" : "learner", m->peer_addr, m->client_addr);
        if (m->id == s->opts.id)
            fprintf(f, ",self=yes");
        for (size_t k = 0; k < st->n_peers; k++)
            if (st->peers[k].id == m->id && m->id != s->opts.id)
                fprintf(f, ",match_index=%" PRIu64 ",next_index=%" PRIu64 ",state=%s,active=%s",
                        st->peers[k].match, st->peers[k].next, craftkv_peer_state_name(st->peers[k].state),
                        st->peers[k].recent_active ? "yes" : "no");
        fprintf(f, "\r\n");
    }
    fclose(f);
    craft_resp_append_bulk(&t->out, text, len);
    free(text);
    free(mv);
    free(st);
}

/* ---- the keeper ---- */

/* One pass, on the leader: record the members the table lacks (whose addresses this node
 * knows), drop records of nodes that left. Acts only on a configuration that committed,
 * was applied and stayed the same since the previous pass, so that it never races the
 * record RAFT.ADDNODE writes right after its change commits. */
static void keeper_pass(struct craftkv_server *s, uint64_t *prev_conf_index)
{
    struct craft_stats *st = malloc(sizeof *st);
    struct craft_kv_member *recs = calloc(CRAFT_KV_MEMBERS_MAX, sizeof *recs);
    if (!st || !recs) {
        free(st);
        free(recs);
        return;
    }
    craft_stats(craftkv_main_group(s)->node, st);
    bool stable = st->role == CRAFT_LEADER && st->conf_index == *prev_conf_index &&
                  st->commit >= st->conf_index && st->applied >= st->conf_index;
    *prev_conf_index = st->role == CRAFT_LEADER ? st->conf_index : 0;
    size_t n_recs = 0;
    struct craft_kv_read *r;
    if (stable && craft_kv_read_begin(craftkv_main_group(s)->sm, &r) == CRAFT_OK) {
        if (craft_kv_read_members(r, recs, CRAFT_KV_MEMBERS_MAX, &n_recs) != CRAFT_OK)
            stable = false;
        craft_kv_read_end(r);
    } else {
        stable = false;
    }
    if (n_recs > CRAFT_KV_MEMBERS_MAX)
        n_recs = CRAFT_KV_MEMBERS_MAX;
    uint64_t ids[CONF_IDS_MAX];
    size_t n_ids = stable ? conf_ids(&st->conf, ids) : 0;
    for (size_t i = 0; i < n_ids && !s->stopping; i++) {
        bool recorded = false;
        for (size_t k = 0; k < n_recs; k++)
            recorded = recorded || recs[k].id == ids[i];
        struct craft_kv_member m;
        if (!recorded && member_from_opts(s, ids[i], &m))
            (void)propose_member(s, CRAFT_KV_OP_MEMBER_SET, &m, craftkv_mono_ms() + KEEPER_PROPOSE_MS);
    }
    for (size_t k = 0; stable && k < n_recs && !s->stopping; k++)
        if (conf_role(&st->conf, recs[k].id) == ROLE_NONE)
            (void)propose_member(s, CRAFT_KV_OP_MEMBER_DEL, &recs[k],
                                 craftkv_mono_ms() + KEEPER_PROPOSE_MS);
    free(recs);
    free(st);
}

void *craftkv_admin_main(void *arg)
{
    pthread_setname_np(pthread_self(), "kv-keeper"); /* top -H, perf, gdb */
    struct craftkv_server *s = arg;
    uint64_t prev_conf_index = 0;
    while (!s->stopping) {
        for (uint32_t slept = 0; slept < KEEPER_PERIOD_MS && !s->stopping; slept += 100)
            craftkv_nap(100);
        if (!s->stopping && craft_state(craftkv_main_group(s)->node) == CRAFT_LEADER)
            keeper_pass(s, &prev_conf_index);
        else
            prev_conf_index = 0;
    }
    return NULL;
}
