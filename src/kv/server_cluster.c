/* craftkv: the Redis Cluster commands (CLUSTER ...), so that cluster-aware clients
 * (redis-cli -c, redis-py's RedisCluster, ...) can use a craftkv cluster (design:
 * docs/design/sharding.md, "Redis Cluster commands").
 *
 * Today a craftkv cluster is one Raft group owning all 16384 slots: the group's leader is
 * the slots' master, its other members are replicas. Any member serves any command (a
 * follower forwards writes within the group), so no slot is ever redirected yet.
 *
 * Runs on a worker (CRAFTKV_ADMIN in the command table): it reads the node's status and the
 * member table, and COUNTKEYSINSLOT / GETKEYSINSLOT scan this node's state machine (a local
 * read, as Redis answers them from the node asked). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/server_admin.h"
#include "kv/server_internal.h"
#include "shard/slots.h"
#include "shard/view.h"

#define NODE_ID_HEX 40 /* a Redis Cluster node id: 40 hex characters */
#define BUS_PORT_OFFSET 10000

/* The 40-hex-character id Redis Cluster names a node by: craft's member id, zero-padded. */
static void node_id(uint64_t id, char out[NODE_ID_HEX + 1])
{
    snprintf(out, NODE_ID_HEX + 1, "%040" PRIx64, id);
}

/* "host:port" into its parts; false if it is not one. */
static bool split_addr(const char *addr, char *host, size_t cap, long *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= cap)
        return false;
    char *end;
    *port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || *port <= 0 || *port > 65535)
        return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[colon - addr - 1] == ']') { /* [v6]:port */
        memmove(host, host + 1, (size_t)(colon - addr - 2));
        host[colon - addr - 2] = '\0';
    }
    return true;
}

/* The group as Redis Cluster shows it: members with a usable client address, the master
 * first: the leader, or, while no leader with an address is known (an election), the
 * lowest-id voter with one, which every node picks alike, so that their answers agree
 * (any member serves any command, so clients that follow it still work). */
struct view {
    struct craft_stats st;
    struct craftkv_member_view all[CRAFTKV_VIEW_MEMBERS_MAX]; /* the configuration */
    struct craftkv_member_view m[CRAFTKV_VIEW_MEMBERS_MAX];   /* those shown */
    size_t n;
    uint64_t master;
    char host[CRAFTKV_VIEW_MEMBERS_MAX][CRAFTKV_ADDR_MAX];
    long port[CRAFTKV_VIEW_MEMBERS_MAX];
};

static int view_load(struct craftkv_server *s, struct view *v)
{
    craft_stats(craftkv_main_group(s)->node, &v->st);
    size_t n_all;
    struct craftkv_member_view *all = v->all;
    int rc = craftkv_members_view(s, &v->st, all, &n_all);
    if (rc != CRAFT_OK)
        return rc;
    char host[CRAFTKV_ADDR_MAX];
    long port;
    v->master = 0;
    for (size_t i = 0; i < n_all; i++)
        if (all[i].m.id == v->st.leader &&
            split_addr(all[i].m.client_addr, host, sizeof host, &port))
            v->master = v->st.leader;
    for (size_t i = 0; i < n_all && v->master == 0; i++) /* ascending id */
        if (all[i].voter && split_addr(all[i].m.client_addr, host, sizeof host, &port))
            v->master = all[i].m.id;
    v->n = 0;
    for (int pass = 0; pass < 2; pass++) /* the master first, then the others by id */
        for (size_t i = 0; i < n_all; i++) {
            if ((pass == 0) != (all[i].m.id == v->master))
                continue;
            if (!split_addr(all[i].m.client_addr, v->host[v->n], sizeof v->host[v->n],
                            &v->port[v->n]))
                continue; /* no address known yet: clients could not reach it */
            v->m[v->n++] = all[i];
        }
    return CRAFT_OK;
}

static void append_str(struct craft_resp_buf *out, const char *s)
{
    craft_resp_append_bulk(out, s, strlen(s));
}

static const char *health(const struct view *v, uint64_t id, uint64_t self);

/* Replicas the leader sees failing are left out, as Redis leaves out failed replicas:
 * clients that read from replicas would send reads to them. */
static void cluster_slots(const struct view *v, uint64_t self, struct craft_resp_buf *out)
{
    if (v->n == 0) {
        craft_resp_append_array(out, 0);
        return;
    }
    size_t shown = 0;
    for (size_t i = 0; i < v->n; i++)
        shown += i == 0 || strcmp(health(v, v->m[i].m.id, self), "online") == 0;
    craft_resp_append_array(out, 1);
    craft_resp_append_array(out, 2 + shown);
    craft_resp_append_int(out, 0);
    craft_resp_append_int(out, CRAFT_SLOTS - 1);
    for (size_t i = 0; i < v->n; i++) {
        if (i > 0 && strcmp(health(v, v->m[i].m.id, self), "online") != 0)
            continue;
        char id[NODE_ID_HEX + 1];
        node_id(v->m[i].m.id, id);
        craft_resp_append_array(out, 4);
        append_str(out, v->host[i]);
        craft_resp_append_int(out, v->port[i]);
        append_str(out, id);
        craft_resp_append_array(out, 0); /* Redis 7's metadata: no hostname */
    }
}

static const char *health(const struct view *v, uint64_t id, uint64_t self)
{
    if (v->st.role != CRAFT_LEADER || id == self)
        return "online";
    for (size_t k = 0; k < v->st.n_peers; k++)
        if (v->st.peers[k].id == id)
            return v->st.peers[k].recent_active ? "online" : "fail";
    return "online";
}

static void cluster_shards(const struct view *v, uint64_t self, struct craft_resp_buf *out)
{
    craft_resp_append_array(out, 1);
    craft_resp_append_array(out, 4);
    append_str(out, "slots");
    craft_resp_append_array(out, v->n ? 2 : 0);
    if (v->n) {
        craft_resp_append_int(out, 0);
        craft_resp_append_int(out, CRAFT_SLOTS - 1);
    }
    append_str(out, "nodes");
    craft_resp_append_array(out, v->n);
    for (size_t i = 0; i < v->n; i++) {
        char id[NODE_ID_HEX + 1];
        node_id(v->m[i].m.id, id);
        uint64_t offset = v->st.applied;
        for (size_t k = 0; k < v->st.n_peers; k++)
            if (v->st.peers[k].id == v->m[i].m.id)
                offset = v->st.peers[k].match;
        craft_resp_append_array(out, 14);
        append_str(out, "id");
        append_str(out, id);
        append_str(out, "port");
        craft_resp_append_int(out, v->port[i]);
        append_str(out, "ip");
        append_str(out, v->host[i]);
        append_str(out, "endpoint");
        append_str(out, v->host[i]);
        append_str(out, "role");
        append_str(out, v->m[i].m.id == v->master ? "master" : "replica");
        append_str(out, "replication-offset");
        craft_resp_append_int(out, (int64_t)offset);
        append_str(out, "health");
        append_str(out, health(v, v->m[i].m.id, self));
    }
}

static void cluster_nodes(const struct view *v, uint64_t self, struct craft_resp_buf *out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    char master_id[NODE_ID_HEX + 1];
    node_id(v->master, master_id);
    for (size_t i = 0; i < v->n; i++) {
        uint64_t id = v->m[i].m.id;
        char nid[NODE_ID_HEX + 1];
        node_id(id, nid);
        bool is_master = id == v->master;
        bool failed = strcmp(health(v, id, self), "online") != 0;
        long bus = v->port[i] + BUS_PORT_OFFSET <= 65535 ? v->port[i] + BUS_PORT_OFFSET : 0;
        fprintf(f, "%s %s:%ld@%ld %s%s%s %s 0 0 %" PRIu64 " connected", nid, v->host[i],
                v->port[i], bus, id == self ? "myself," : "",
                is_master ? "master" : "slave", failed ? ",fail" : "",
                is_master ? "-" : master_id, v->st.term);
        if (is_master)
            fprintf(f, " 0-%u", CRAFT_SLOTS - 1);
        fprintf(f, "\n");
    }
    fclose(f);
    craft_resp_append_bulk(out, text, len);
    free(text);
}

static void cluster_info(const struct view *v, struct craft_resp_buf *out)
{
    bool ok = v->st.leader != 0 && v->n > 0;
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "cluster_enabled:1\r\ncluster_state:%s\r\n"
                     "cluster_slots_assigned:%u\r\ncluster_slots_ok:%u\r\n"
                     "cluster_slots_pfail:0\r\ncluster_slots_fail:%u\r\n"
                     "cluster_known_nodes:%zu\r\ncluster_size:1\r\n"
                     "cluster_current_epoch:%" PRIu64 "\r\ncluster_my_epoch:%" PRIu64 "\r\n"
                     "cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n"
                     "total_cluster_links_buffer_limit_exceeded:0\r\n"
                     "craft_shard_groups:1\r\ncraft_migrations_in_progress:0\r\n",
                     ok ? "ok" : "fail", CRAFT_SLOTS, ok ? CRAFT_SLOTS : 0,
                     ok ? 0 : CRAFT_SLOTS, v->n, v->st.term, v->st.term);
    craft_resp_append_bulk(out, text, (size_t)n);
}

/* A slot argument, Redis's way: an integer in [0, 16383], else -1 with the error sent. */
static int slot_arg(const struct craft_resp_arg *a, struct craft_resp_buf *out)
{
    char buf[24];
    if (a->len == 0 || a->len >= sizeof buf)
        goto bad;
    memcpy(buf, a->data, a->len);
    buf[a->len] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (*end != '\0' || v < 0 || v >= (long)CRAFT_SLOTS)
        goto bad;
    return (int)v;
bad:
    craft_resp_append_error(out, "ERR Invalid or out of range slot");
    return -1;
}

struct slot_keys {
    uint16_t slot;
    uint64_t want; /* keys to collect (0: count only) */
    uint64_t found;
    struct craft_resp_buf keys; /* collected keys, each a bulk string */
};

static int slot_emit(void *ctx, const uint8_t *key, size_t klen)
{
    struct slot_keys *sk = ctx;
    if (craft_key_slot(key, klen) != sk->slot)
        return CRAFT_OK;
    if (sk->found < sk->want && craft_resp_append_bulk(&sk->keys, key, klen) != CRAFT_OK)
        return CRAFT_ENOMEM;
    sk->found++;
    return CRAFT_OK;
}

/* Walks every key of this node's state machine: craftkv keeps no index by slot (one group
 * owns them all today), so this costs a pass over the key space, like KEYS. */
static int scan_slot(struct craftkv_server *s, struct slot_keys *sk)
{
    struct craft_kv_read *r;
    struct craftkv_group *g = craftkv_main_group(s);
    const struct craftkv_route *rt = craftkv_route_now(s);
    if (s->sharded) { /* the owner's replica here; none: no key */
        uint8_t k = rt ? rt->cfg.owner[sk->slot] : CRAFT_SHARD_NONE;
        if (k == CRAFT_SHARD_NONE || rt->local[k] < 0)
            return CRAFT_OK;
        g = &s->groups[rt->local[k]];
    }
    int rc = craft_kv_read_begin(g->sm, &r);
    if (rc != CRAFT_OK)
        return rc;
    uint64_t cursor = 0;
    do {
        rc = craft_kv_read_scan(r, cursor, NULL, 0, 1024, slot_emit, sk, &cursor);
    } while (rc == CRAFT_OK && cursor != 0 && (sk->want == 0 || sk->found < sk->want));
    craft_kv_read_end(r);
    return rc;
}

static void keys_in_slot(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                         bool get, struct craft_resp_buf *out)
{
    if (argc != (get ? 4u : 3u)) {
        craft_resp_append_errorf(out, "ERR wrong number of arguments for 'cluster|%s' command",
                                 get ? "getkeysinslot" : "countkeysinslot");
        return;
    }
    int slot = slot_arg(&argv[2], out);
    if (slot < 0)
        return;
    struct slot_keys sk = {.slot = (uint16_t)slot};
    if (get) {
        char buf[24];
        long long n = -1;
        if (argv[3].len > 0 && argv[3].len < sizeof buf) {
            memcpy(buf, argv[3].data, argv[3].len);
            buf[argv[3].len] = '\0';
            char *end;
            n = strtoll(buf, &end, 10);
            if (*end != '\0')
                n = -1;
        }
        if (n < 0) {
            craft_resp_append_error(out, "ERR Invalid number of keys");
            return;
        }
        if (n == 0) {
            craft_resp_append_array(out, 0);
            return;
        }
        sk.want = (uint64_t)n;
    }
    int rc = scan_slot(s, &sk);
    if (rc != CRAFT_OK) {
        craft_resp_append_errorf(out, "ERR %s", craft_strerror(rc));
    } else if (get) {
        size_t mark = out->len;
        if (craft_resp_append_array(out, sk.found < sk.want ? sk.found : sk.want) != CRAFT_OK ||
            craftkv_buf_append_raw(out, sk.keys.data, sk.keys.len) != 0) {
            out->len = mark; /* never a header without its elements */
            craft_resp_append_error(out, "ERR out of memory");
        }
    } else {
        craft_resp_append_int(out, (int64_t)sk.found);
    }
    craft_resp_buf_free(&sk.keys);
}

/* ---- a sharded cluster (sharding.md, "Shard groups in craftkv") ----
 *
 * Each shard group of the latest configuration is a Redis Cluster "shard": its slot ranges,
 * its leader (as this process's replica knows it) as the master, its other servers as
 * replicas. A process leads some groups and follows in others; CLUSTER NODES shows it as a
 * master of the ranges of the groups it leads (a replica of group 1's master if it leads
 * none), which is what redis-cli and cluster clients route by. */

struct shard_node {
    uint64_t id; /* the member whose client address this is; 0: unknown */
    char host[CRAFTKV_ADDR_MAX];
    long port;
};

/* Whether member id leads a group that owns slots (the master of those slots): clients
 * (redis-py's among them) give a node one role, the last they read, so such a node is never
 * listed as another group's replica as well. */
static bool masters_some(struct craftkv_server *s, const struct craftkv_route *r, uint64_t id)
{
    for (uint32_t k = 0; r && k < r->cfg.n_groups; k++)
        if (craft_shard_group_slots(&r->cfg, r->cfg.groups[k].gid) > 0 &&
            craftkv_shard_leader(s, r, k) == id)
            return true;
    return false;
}

/* Group k's servers, the master first (its leader if known and among them), then those
 * that are no master elsewhere (masters_some). */
static size_t group_nodes(struct craftkv_server *s, const struct craftkv_route *r, uint32_t k,
                          struct shard_node *out)
{
    const struct craft_shard_group *grp = &r->cfg.groups[k];
    uint64_t leader = craftkv_shard_leader(s, r, k);
    const char *laddr = leader ? craftkv_client_addr(s, leader) : NULL;
    char lead[CRAFTKV_ADDR_MAX] = "";
    if (laddr)
        snprintf(lead, sizeof lead, "%s", laddr);
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < grp->n_servers; i++) {
            bool is_lead = strcmp(grp->servers[i], lead) == 0;
            if ((pass == 0) != is_lead)
                continue;
            struct shard_node *nd = &out[n];
            if (!split_addr(grp->servers[i], nd->host, sizeof nd->host, &nd->port))
                continue;
            nd->id = 0;
            for (size_t m = 0; m < s->opts.n_members; m++)
                if (strcmp(s->opts.members[m].client_addr, grp->servers[i]) == 0)
                    nd->id = s->opts.members[m].id;
            if (n > 0 && masters_some(s, r, nd->id))
                continue;
            n++;
        }
    return n;
}

static void put_node(struct craft_resp_buf *out, const struct shard_node *nd)
{
    char id[NODE_ID_HEX + 1];
    node_id(nd->id, id);
    craft_resp_append_array(out, 4);
    append_str(out, nd->host);
    craft_resp_append_int(out, nd->port);
    append_str(out, id);
    craft_resp_append_array(out, 0);
}

/* The runs of consecutive slots with one owner, [first[i], last[i]] owned by owner[i]. */
static size_t slot_runs(const struct craftkv_route *r, uint16_t *first, uint16_t *last,
                        uint8_t *owner, size_t cap)
{
    size_t n = 0;
    for (uint32_t sl = 0; sl < CRAFT_SLOTS; sl++) {
        uint8_t k = r->cfg.owner[sl];
        if (k == CRAFT_SHARD_NONE)
            continue;
        if (n > 0 && owner[n - 1] == k && last[n - 1] + 1u == sl) {
            last[n - 1] = (uint16_t)sl;
        } else if (n < cap) {
            first[n] = last[n] = (uint16_t)sl;
            owner[n++] = k;
        }
    }
    return n;
}

#define RUNS_MAX CRAFT_SLOTS

static void sharded_cluster(struct craftkv_server *s, const struct craft_resp_arg *sub,
                            struct craft_resp_buf *out)
{
    const struct craftkv_route *r = craftkv_route_now(s);
    uint16_t *first = malloc(RUNS_MAX * sizeof *first), *last = malloc(RUNS_MAX * sizeof *last);
    uint8_t *owner = malloc(RUNS_MAX);
    /* Each group's servers, read once per reply (leaders move: one reply, one reading). */
    struct shard_node *all = malloc(CRAFT_SHARD_GROUPS_MAX * CRAFT_SHARD_SERVERS_MAX * sizeof *all);
    size_t gnn[CRAFT_SHARD_GROUPS_MAX] = {0};
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = NULL;
    if (!first || !last || !owner || !all) {
        craft_resp_append_error(out, "ERR out of memory");
        goto done;
    }
    for (uint32_t k = 0; r && k < r->cfg.n_groups; k++)
        gnn[k] = group_nodes(s, r, k, &all[k * CRAFT_SHARD_SERVERS_MAX]);
#define GROUP_NODES(k) (&all[(k) * CRAFT_SHARD_SERVERS_MAX])
    size_t nr = r ? slot_runs(r, first, last, owner, RUNS_MAX) : 0;
    if (craftkv_arg_is(sub, "SLOTS")) {
        craft_resp_append_array(out, nr);
        for (size_t i = 0; i < nr; i++) {
            size_t nn = gnn[owner[i]];
            const struct shard_node *nodes = GROUP_NODES(owner[i]);
            craft_resp_append_array(out, 2 + nn);
            craft_resp_append_int(out, first[i]);
            craft_resp_append_int(out, last[i]);
            for (size_t j = 0; j < nn; j++)
                put_node(out, &nodes[j]);
        }
    } else if (craftkv_arg_is(sub, "SHARDS")) {
        uint32_t ng = r ? r->cfg.n_groups : 0, shown = 0;
        for (uint32_t k = 0; k < ng; k++)
            shown += craft_shard_group_slots(&r->cfg, r->cfg.groups[k].gid) > 0;
        craft_resp_append_array(out, shown);
        for (uint32_t k = 0; k < ng; k++) {
            if (craft_shard_group_slots(&r->cfg, r->cfg.groups[k].gid) == 0)
                continue;
            size_t runs = 0;
            for (size_t i = 0; i < nr; i++)
                runs += owner[i] == k;
            craft_resp_append_array(out, 4);
            append_str(out, "slots");
            craft_resp_append_array(out, 2 * runs);
            for (size_t i = 0; i < nr; i++)
                if (owner[i] == k) {
                    craft_resp_append_int(out, first[i]);
                    craft_resp_append_int(out, last[i]);
                }
            size_t nn = gnn[k];
            const struct shard_node *nodes = GROUP_NODES(k);
            append_str(out, "nodes");
            craft_resp_append_array(out, nn);
            for (size_t j = 0; j < nn; j++) {
                char id[NODE_ID_HEX + 1];
                node_id(nodes[j].id, id);
                craft_resp_append_array(out, 12);
                append_str(out, "id");
                append_str(out, id);
                append_str(out, "port");
                craft_resp_append_int(out, nodes[j].port);
                append_str(out, "ip");
                append_str(out, nodes[j].host);
                append_str(out, "endpoint");
                append_str(out, nodes[j].host);
                append_str(out, "role");
                append_str(out, j == 0 ? "master" : "replica");
                append_str(out, "health");
                append_str(out, "online");
            }
        }
    } else if (craftkv_arg_is(sub, "NODES")) {
        f = open_memstream(&text, &tlen);
        if (!f) {
            craft_resp_append_error(out, "ERR out of memory");
            goto done;
        }
        uint64_t gm[CRAFT_SHARD_GROUPS_MAX] = {0}; /* each group's master */
        for (uint32_t k = 0; r && k < r->cfg.n_groups; k++)
            if (gnn[k] > 0)
                gm[k] = GROUP_NODES(k)[0].id;
        /* Whom a process that masters nothing follows: the master of the first group with
         * slots that it hosts, else of slot 0's group. */
        uint64_t any_master = nr > 0 ? gm[owner[0]] : 0;
        char mid[NODE_ID_HEX + 1];
        for (size_t m = 0; m < s->opts.n_members; m++) {
            uint64_t follows = any_master;
            for (uint32_t k = 0; r && k < r->cfg.n_groups && follows == any_master; k++) {
                const struct craft_shard_group *grp = &r->cfg.groups[k];
                for (uint32_t i = 0; gm[k] != 0 && i < grp->n_servers; i++)
                    if (strcmp(grp->servers[i], s->opts.members[m].client_addr) == 0 &&
                        craft_shard_group_slots(&r->cfg, grp->gid) > 0)
                        follows = gm[k];
            }
            node_id(follows, mid);
            const struct craftkv_member *mb = &s->opts.members[m];
            struct shard_node me;
            if (!split_addr(mb->client_addr, me.host, sizeof me.host, &me.port))
                continue;
            char nid[NODE_ID_HEX + 1];
            node_id(mb->id, nid);
            bool master = false;
            for (size_t i = 0; i < nr && !master; i++)
                master = gm[owner[i]] == mb->id;
            long bus = me.port + BUS_PORT_OFFSET <= 65535 ? me.port + BUS_PORT_OFFSET : 0;
            fprintf(f, "%s %s:%ld@%ld %s%s %s 0 0 %" PRIu64 " connected", nid, me.host, me.port,
                    bus, mb->id == s->opts.id ? "myself," : "", master ? "master" : "slave",
                    master ? "-" : mid, r ? r->cfg.num : 0);
            for (size_t i = 0; i < nr && master; i++)
                if (gm[owner[i]] == mb->id) {
                    if (first[i] == last[i])
                        fprintf(f, " %u", (unsigned)first[i]);
                    else
                        fprintf(f, " %u-%u", (unsigned)first[i], (unsigned)last[i]);
                }
            fprintf(f, "\n");
        }
        fclose(f);
        f = NULL;
        craft_resp_append_bulk(out, text, tlen);
    } else { /* INFO */
        uint32_t assigned = 0, ok = 0, groups = r ? r->cfg.n_groups : 0, size = 0, moving = 0;
        bool led[CRAFT_SHARD_GROUPS_MAX] = {false};
        for (uint32_t k = 0; k < groups; k++)
            led[k] = craftkv_shard_leader(s, r, k) != 0;
        for (uint32_t sl = 0; r && sl < CRAFT_SLOTS; sl++) {
            uint8_t k = r->cfg.owner[sl];
            if (k == CRAFT_SHARD_NONE)
                continue;
            assigned++;
            ok += led[k];
        }
        for (uint32_t k = 0; k < groups; k++)
            size += craft_shard_group_slots(&r->cfg, r->cfg.groups[k].gid) > 0;
        for (size_t i = 0; i < s->n_groups; i++) {
            struct craftkv_shard_state st;
            if (craftkv_shard_group_state(&s->groups[i], &st) == CRAFT_OK &&
                craftkv_shard_moving(&st) > 0)
                moving++;
        }
        bool up = assigned == CRAFT_SLOTS && ok == CRAFT_SLOTS;
        char info[1024];
        int n = snprintf(info, sizeof info,
                         "cluster_enabled:1\r\ncluster_state:%s\r\n"
                         "cluster_slots_assigned:%u\r\ncluster_slots_ok:%u\r\n"
                         "cluster_slots_pfail:0\r\ncluster_slots_fail:%u\r\n"
                         "cluster_known_nodes:%zu\r\ncluster_size:%u\r\n"
                         "cluster_current_epoch:%" PRIu64 "\r\ncluster_my_epoch:%" PRIu64 "\r\n"
                         "cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n"
                         "total_cluster_links_buffer_limit_exceeded:0\r\n"
                         "craft_shard_groups:%u\r\ncraft_migrations_in_progress:%u\r\n"
                         "craft_shard_configuration:%" PRIu64 "\r\n",
                         up ? "ok" : "fail", assigned, ok, assigned - ok, s->opts.n_members,
                         size, r ? r->cfg.num : 0, r ? r->cfg.num : 0, groups, moving,
                         r ? r->cfg.num : 0);
        craft_resp_append_bulk(out, info, (size_t)n);
    }
done:
    if (f)
        fclose(f);
    free(text);
    free(first);
    free(last);
    free(owner);
    free(all);
#undef GROUP_NODES
}

static const char *const help[] = {
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>", "    Return key names stored by this node in a slot.",
    "INFO", "    Return information about the cluster.",
    "KEYSLOT <key>", "    Return the hash slot for <key>.",
    "MYID", "    Return the node id.",
    "MYSHARDID", "    Return the node's shard id.",
    "NODES", "    Return cluster configuration seen by node.",
    "SHARDS", "    Return information about slot range mappings and the nodes.",
    "SLOTS", "    Return information about slots range mappings.",
    "HELP", "    Print this help.",
};

void craftkv_a_cluster(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    (void)deadline;
    size_t argc = t->argc;
    const struct craft_resp_arg *argv = t->argv;
    struct craft_resp_buf *out = &t->out;
    const struct craft_resp_arg *sub = &argv[1];
    if (craftkv_arg_is(sub, "KEYSLOT") && argc == 3) {
        craft_resp_append_int(out, craft_key_slot((const uint8_t *)argv[2].data, argv[2].len));
        return;
    }
    if (craftkv_arg_is(sub, "MYID") && argc == 2) {
        char id[NODE_ID_HEX + 1];
        node_id(s->opts.id, id);
        append_str(out, id);
        return;
    }
    if (craftkv_arg_is(sub, "MYSHARDID") && argc == 2) {
        /* The one group; sharded, the first group this node leads (else the first). */
        uint64_t gid = s->sharded ? s->groups[0].gid : 1;
        for (size_t i = 0; s->sharded && i < s->n_groups; i++)
            if (craft_state(s->groups[i].node) == CRAFT_LEADER) {
                gid = s->groups[i].gid;
                break;
            }
        char id[NODE_ID_HEX + 1];
        node_id(gid, id);
        append_str(out, id);
        return;
    }
    if (craftkv_arg_is(sub, "COUNTKEYSINSLOT") || craftkv_arg_is(sub, "GETKEYSINSLOT")) {
        keys_in_slot(s, argc, argv, craftkv_arg_is(sub, "GETKEYSINSLOT"), out);
        return;
    }
    if (craftkv_arg_is(sub, "HELP") && argc == 2) {
        craft_resp_append_array(out, sizeof help / sizeof help[0]);
        for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
            craft_resp_append_simple(out, help[i]);
        return;
    }
    bool slots = craftkv_arg_is(sub, "SLOTS"), shards = craftkv_arg_is(sub, "SHARDS"), nodes = craftkv_arg_is(sub, "NODES"),
         info = craftkv_arg_is(sub, "INFO");
    if (argc != 2 || !(slots || shards || nodes || info)) {
        craft_resp_append_errorf(out, "ERR unknown subcommand or wrong number of arguments for "
                                      "'%.*s'. Try CLUSTER HELP.",
                                 (int)(sub->len > 64 ? 64 : sub->len), sub->data);
        return;
    }
    if (s->sharded) {
        sharded_cluster(s, sub, out);
        return;
    }
    struct view *v = malloc(sizeof *v);
    if (!v || view_load(s, v) != CRAFT_OK) {
        free(v);
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    if (slots)
        cluster_slots(v, s->opts.id, out);
    else if (shards)
        cluster_shards(v, s->opts.id, out);
    else if (nodes)
        cluster_nodes(v, s->opts.id, out);
    else
        cluster_info(v, out);
    free(v);
}
