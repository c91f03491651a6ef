/* craftkv: INFO, the server's view of itself in Redis's format (design:
 * docs/design/craftkv.md, "Commands"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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

void craftkv_info(struct craftkv_server *s, struct craft_resp_buf *out)
{
    struct craft_stats *st = malloc(sizeof *st);
    if (!st) {
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    craft_stats(s->node, st);
    uint64_t keys = 0;
    struct craft_kv_read *r;
    if (craft_kv_read_begin(s->sm, &r) == CRAFT_OK) {
        craft_kv_read_dbsize(r, &keys);
        craft_kv_read_end(r);
    }
    const char *laddr = st->leader ? craftkv_client_addr(s, st->leader) : NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        free(st);
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    fprintf(f,
            "# Server\r\nredis_version:7.0.0\r\ncraftkv_version:0.1\r\nprocess_id:%d\r\n"
            "node_id:%" PRIu64 "\r\nlisten_client:%s\r\nlisten_peer:%s\r\n\r\n"
            "# Clients\r\nconnected_clients:%zu\r\n\r\n"
            "# Stats\r\nwrites_retried:%" PRIu64 "\r\n\r\n"
            "# Raft\r\nrole:%s\r\nterm:%" PRIu64 "\r\nleader_id:%" PRIu64
            "\r\nleader_client_addr:%s\r\ncommit_index:%" PRIu64 "\r\napplied_index:%" PRIu64
            "\r\nlast_index:%" PRIu64 "\r\nsnapshot_index:%" PRIu64 "\r\npersisted_index:%" PRIu64
            "\r\nentries_applied:%" PRIu64 "\r\nentries_written:%" PRIu64
            "\r\ndisk_writes:%" PRIu64 "\r\ndisk_syncs:%" PRIu64 "\r\nmsgs_sent:%" PRIu64
            "\r\nmsgs_received:%" PRIu64 "\r\nbad_msgs_received:%" PRIu64
            "\r\nsnapshots_taken:%" PRIu64 "\r\nsnapshots_installed:%" PRIu64
            "\r\nfailed:%s\r\npeers:%zu\r\n",
            (int)getpid(), s->opts.id, s->opts.listen_client, s->opts.listen_peer, s->n_conns,
            (uint64_t)atomic_load(&s->n_retried),
            craftkv_role_name(st->role), st->term,
            st->leader, laddr ? laddr : "", st->commit, st->applied, st->last_index,
            st->snap_index, st->persisted, st->entries_applied, st->entries_written,
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
    /* Cluster-aware clients (redis-py's RedisCluster) refuse a node without it; the slots
     * are CLUSTER's (server_cluster.c). */
    fprintf(f, "\r\n# Cluster\r\ncluster_enabled:1\r\n");
    fprintf(f, "\r\n# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n", keys);
    fclose(f);
    craft_resp_append_bulk(out, text, len);
    free(text);
    free(st);
}
