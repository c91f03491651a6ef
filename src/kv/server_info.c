/* craftkv: INFO, the server's view of itself in Redis's format (design:
 * docs/design/craftkv.md, "Commands"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kv/server_internal.h"

const char *craftkv_peer_state_name(uint8_t state)
{
    return state == 1 ? "probe" : state == 2 ? "replicate" : state == 3 ? "snapshot" : "?";
}

const char *craftkv_role_name(enum craft_role role)
{
    switch (role) {
    case CRAFT_LEADER:
        return "leader";
    case CRAFT_FOLLOWER:
        return "follower";
    case CRAFT_PRECANDIDATE:
        return "precandidate";
    case CRAFT_CANDIDATE:
        return "candidate";
    default:
        return craft_role_name(role);
    }
}

/* INFO's sections, in the order INFO prints them. */
enum {
    SEC_SERVER = 1u << 0,
    SEC_CLIENTS = 1u << 1,
    SEC_STATS = 1u << 2,
    SEC_RAFT = 1u << 3,
    SEC_CLUSTER = 1u << 4,
    SEC_KEYSPACE = 1u << 5,
    SEC_ALL = (1u << 6) - 1,
};

static const struct {
    const char *name;
    unsigned bits;
} section_names[] = {
    {"server", SEC_SERVER},   {"clients", SEC_CLIENTS},   {"stats", SEC_STATS},
    {"raft", SEC_RAFT},       {"cluster", SEC_CLUSTER},   {"keyspace", SEC_KEYSPACE},
    {"default", SEC_ALL},     {"all", SEC_ALL},           {"everything", SEC_ALL},
};

unsigned craftkv_info_sections(size_t argc, const struct craft_resp_arg *argv)
{
    if (argc == 0)
        return SEC_ALL;
    unsigned mask = 0;
    for (size_t i = 0; i < argc; i++)
        for (size_t k = 0; k < sizeof section_names / sizeof section_names[0]; k++)
            if (argv[i].len == strlen(section_names[k].name) &&
                strncasecmp(argv[i].data, section_names[k].name, argv[i].len) == 0)
                mask |= section_names[k].bits;
    return mask; /* only unknown names: nothing, as Redis answers */
}

static void section_raft(struct craftkv_server *s, const struct craft_stats *st, FILE *f)
{
    const char *laddr = st->leader ? craftkv_client_addr(s, st->leader) : NULL;
    fprintf(f,
            "# Raft\r\nrole:%s\r\nterm:%" PRIu64 "\r\nleader_id:%" PRIu64
            "\r\nleader_client_addr:%s\r\ncommit_index:%" PRIu64 "\r\napplied_index:%" PRIu64
            "\r\nlast_index:%" PRIu64 "\r\nlast_log_term:%" PRIu64 "\r\nsnapshot_index:%" PRIu64
            "\r\npersisted_index:%" PRIu64 "\r\nentries_applied:%" PRIu64 "\r\nentries_written:%" PRIu64
            "\r\ndisk_writes:%" PRIu64 "\r\ndisk_syncs:%" PRIu64 "\r\nmsgs_sent:%" PRIu64
            "\r\nmsgs_received:%" PRIu64 "\r\nbad_msgs_received:%" PRIu64
            "\r\nsnapshots_taken:%" PRIu64 "\r\nsnapshots_installed:%" PRIu64
            "\r\nfailed:%s\r\npeers:%zu\r\n",
            craftkv_role_name(st->role), st->term,
            st->leader, laddr ? laddr : "", st->commit, st->applied, st->last_index,
            st->last_term, st->snap_index, st->persisted, st->entries_applied, st->entries_written,
            st->disk_writes, st->disk_syncs, st->msgs_sent, st->msgs_received,
            st->bad_msgs_received, st->snapshots_taken, st->snapshots_installed,
            st->failed ? craft_strerror(st->failed) : "no", st->n_peers);
    /* A leader's view of each follower's progress (followers track none). */
    for (size_t k = 0; k < st->n_peers; k++) {
        const struct craft_peer_status *p = &st->peers[k];
        const char *caddr = craftkv_client_addr(s, p->id);
        fprintf(f,
                "peer%zu:id=%" PRIu64 ",client_addr=%s,match_index=%" PRIu64
                ",next_index=%" PRIu64 ",lag=%" PRIu64 ",state=%s,active=%s\r\n",
                k, p->id, caddr ? caddr : "", p->match, p->next,
                st->last_index > p->match ? st->last_index - p->match : 0,
                craftkv_peer_state_name(p->state), p->recent_active ? "yes" : "no");
    }
}

void craftkv_info(struct craftkv_server *s, unsigned sections, struct craft_resp_buf *out)
{
    struct craft_stats *st = malloc(sizeof *st);
    char *text = NULL;
    size_t len = 0;
    FILE *f = st ? open_memstream(&text, &len) : NULL;
    if (!f) {
        free(st);
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    craft_stats(craftkv_main_group(s)->node, st);
    const char *sep = "";
    if (sections & SEC_SERVER) {
        fprintf(f,
                "# Server\r\nredis_version:7.0.0\r\ncraftkv_version:0.1\r\nprocess_id:%d\r\n"
                "node_id:%" PRIu64 "\r\nlisten_client:%s\r\nlisten_peer:%s\r\n",
                (int)getpid(), s->opts.id, s->opts.listen_client, s->opts.listen_peer);
        sep = "\r\n";
    }
    if (sections & SEC_CLIENTS) {
        fprintf(f, "%s# Clients\r\nconnected_clients:%zu\r\n", sep, (size_t)atomic_load(&s->n_conns));
        sep = "\r\n";
    }
    if (sections & SEC_STATS) {
        fprintf(f,
                "%s# Stats\r\nwrites_retried:%" PRIu64 "\r\nsessions_ended:%" PRIu64
                "\r\nauth_failures:%" PRIu64 "\r\n",
                sep, (uint64_t)atomic_load(&s->n_retried),
                (uint64_t)atomic_load(&s->n_sessions_ended),
                (uint64_t)atomic_load(&s->n_auth_failures));
        sep = "\r\n";
    }
    if (sections & SEC_RAFT) {
        fputs(sep, f);
        section_raft(s, st, f); /* sharded: the first group hosted here, then a line per group */
        for (size_t i = 0; s->sharded && i < s->n_groups; i++) {
            const struct craftkv_group *g = &s->groups[i];
            craft_stats(g->node, st);
            fprintf(f,
                    "group%" PRIu64 ":role=%s,term=%" PRIu64 ",leader_id=%" PRIu64
                    ",commit_index=%" PRIu64 ",applied_index=%" PRIu64 ",quiesced=%s\r\n",
                    g->gid, craftkv_role_name(st->role), st->term, st->leader, st->commit,
                    st->applied, st->quiesced ? "yes" : "no");
        }
        if (s->sharded && s->host) {
            /* The shared log: one write and one fdatasync per round for every group (the
             * groups' disk_syncs count their shares of them). */
            struct craft_host_stats hs;
            craft_host_stats(s->host, &hs);
            fprintf(f,
                    "host_rounds:%" PRIu64 "\r\nhost_log_writes:%" PRIu64
                    "\r\nhost_log_syncs:%" PRIu64 "\r\nhost_log_entries:%" PRIu64
                    "\r\nhost_groups_quiesced:%" PRIu64 "\r\n",
                    hs.rounds, hs.log_writes, hs.log_syncs, hs.log_entries, hs.groups_quiesced);
        }
        sep = "\r\n";
    }
    if (sections & SEC_CLUSTER) {
        /* Cluster-aware clients (redis-py's RedisCluster) refuse a node without it; the
         * slots are CLUSTER's (server_cluster.c). */
        fprintf(f, "%s# Cluster\r\ncluster_enabled:1\r\n", sep);
        const struct craftkv_route *r = craftkv_route_now(s);
        if (s->sharded) {
            /* Groups here with a slot on its way in or out (a read of each group's view). */
            unsigned moving = 0;
            for (size_t i = 0; i < s->n_groups; i++) {
                struct craftkv_shard_state ss;
                if (craftkv_shard_group_state(&s->groups[i], &ss) == CRAFT_OK &&
                    craftkv_shard_moving(&ss) > 0)
                    moving++;
            }
            fprintf(f,
                    "craft_shard_groups_hosted:%zu\r\ncraft_shard_configuration:%" PRIu64
                    "\r\ncraft_shard_groups:%u\r\ncraft_migrations_in_progress:%u\r\n"
                    "craft_handover_entries:%" PRIu64 "\r\ncraft_handover_bytes:%" PRIu64 "\r\n",
                    s->n_groups, r ? r->cfg.num : 0, r ? r->cfg.n_groups : 0, moving,
                    (uint64_t)atomic_load(&s->n_handover_entries),
                    (uint64_t)atomic_load(&s->n_handover_bytes));
        }
        sep = "\r\n";
    }
    if (sections & SEC_KEYSPACE) {
        /* This process's replicas, as applied here: every group's keys when sharded (a slot
         * being handed over counts at both ends until the sender deletes it). */
        uint64_t keys = 0;
        for (size_t i = 0; i < s->n_groups; i++) {
            struct craft_kv_read *r;
            uint64_t n = 0;
            if (craft_kv_read_begin(s->groups[i].sm, &r) == CRAFT_OK) {
                if (craft_kv_read_dbsize(r, &n) == CRAFT_OK)
                    keys += n;
                craft_kv_read_end(r);
            }
        }
        fprintf(f, "%s# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n", sep, keys);
    }
    fclose(f);
    craft_resp_append_bulk(out, text, len);
    free(text);
    free(st);
}
