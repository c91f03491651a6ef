/* craftkv: CRAFT.SHARD, the operator's commands of a sharded cluster (docs/design/
 * sharding.md, "Shard groups in craftkv").
 *
 *   CRAFT.SHARD JOIN gid [gid ...]      groups of the cluster (1..--shard-groups) get slots
 *   CRAFT.SHARD LEAVE gid [gid ...]     their slots go to the groups that stay
 *   CRAFT.SHARD MOVE first last gid     slots first..last to group gid
 *   CRAFT.SHARD INFO                    the configuration and each group's migration
 *
 * A change runs on the controller's leader (server_admin.c forwards it there), through a
 * session of its own (applied once, whatever the retries); then the command waits until
 * every group of the cluster has reached the new configuration and settled (asking a host
 * of each group placed elsewhere), so that "OK" means the slots moved. A change the controller refuses (an unknown or present gid, the
 * last group leaving, a bad range) changes nothing and answers why. Workers only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/server_admin.h"
#include "kv/server_internal.h"
#include "shard/ctrler.h"
#include "shard/view.h"

bool craftkv_shard_check(size_t argc, const struct craft_resp_arg *argv,
                         struct craft_resp_buf *out)
{
    const struct craft_resp_arg *sub = &argv[1];
    uint64_t v;
    if ((craftkv_arg_is(sub, "JOIN") || craftkv_arg_is(sub, "LEAVE")) && argc >= 3 &&
        argc - 2 <= CRAFT_SHARD_GROUPS_MAX) {
        for (size_t i = 2; i < argc; i++)
            if (!craftkv_arg_u64(&argv[i], UINT64_MAX - 1, &v) || v == 0) {
                craft_resp_append_error(out, "ERR bad group id (want a positive integer)");
                return false;
            }
        return true;
    }
    if (craftkv_arg_is(sub, "MOVE") && argc == 5) {
        uint64_t first, last;
        if (!craftkv_arg_u64(&argv[2], CRAFT_SLOTS - 1, &first) ||
            !craftkv_arg_u64(&argv[3], CRAFT_SLOTS - 1, &last) || first > last) {
            craft_resp_append_error(out, "ERR bad slot range (want first <= last, 0..16383)");
            return false;
        }
        if (!craftkv_arg_u64(&argv[4], UINT64_MAX - 1, &v) || v == 0) {
            craft_resp_append_error(out, "ERR bad group id (want a positive integer)");
            return false;
        }
        return true;
    }
    craft_resp_append_error(out, "ERR usage: CRAFT.SHARD JOIN gid... | LEAVE gid... | "
                                 "MOVE first last gid | INFO");
    return false;
}

/* Whether every shard group of the cluster reached configuration num and settled: as
 * this process's replica shows it for a group hosted here, as a host of it tells for the
 * others (p: NULL when out of memory, then never). */
static bool settled_at(struct craftkv_server *s, struct craftkv_peers *p,
                       struct craftkv_peer_state *ps, uint64_t num)
{
    for (uint64_t gid = 1; gid <= s->opts.shard_groups; gid++) {
        struct craftkv_group *g = craftkv_group_of(s, gid);
        struct craftkv_shard_state st;
        int rc = CRAFT_EIO;
        if (g)
            rc = craftkv_shard_group_state(g, &st);
        else if (p && ps && (rc = craftkv_peers_state(p, gid, ps)) == CRAFT_OK)
            craftkv_shard_state_count(ps->num, ps->state, &st);
        if (rc != CRAFT_OK || st.num < num || craftkv_shard_moving(&st) != 0)
            return false;
    }
    return true;
}

int craftkv_shard_lead(struct craftkv_server *s, size_t argc, const struct craft_resp_arg *argv,
                       uint64_t deadline, struct craft_resp_buf *out)
{
    (void)deadline; /* a change is one proposal; the wait for its migration has its own */
    struct craft_shard_request *req = calloc(1, sizeof *req);
    if (!req) {
        craft_resp_append_error(out, "ERR out of memory");
        return 0;
    }
    const struct craft_resp_arg *sub = &argv[1];
    uint64_t v = 0;
    if (craftkv_arg_is(sub, "MOVE")) {
        req->op = CRAFT_SHARD_OP_MOVE;
        craftkv_arg_u64(&argv[2], CRAFT_SLOTS - 1, &v);
        req->first = (uint16_t)v;
        craftkv_arg_u64(&argv[3], CRAFT_SLOTS - 1, &v);
        req->last = (uint16_t)v;
        craftkv_arg_u64(&argv[4], UINT64_MAX - 1, &req->gid);
    } else {
        bool join = craftkv_arg_is(sub, "JOIN");
        req->op = join ? CRAFT_SHARD_OP_JOIN : CRAFT_SHARD_OP_LEAVE;
        for (size_t i = 2; i < argc; i++) {
            craftkv_arg_u64(&argv[i], UINT64_MAX - 1, &v);
            if (!join) {
                req->gids[req->n++] = v;
                continue;
            }
            if (v > s->opts.shard_groups) {
                craft_resp_append_errorf(out, "ERR group %" PRIu64 " is not hosted by this "
                                              "cluster (groups 1..%" PRIu32 ")", v,
                                         s->opts.shard_groups);
                free(req);
                return 0;
            }
            craftkv_shard_group_placed(s, v, &req->groups[req->n++]);
        }
    }
    uint64_t num = 0;
    char err[CRAFT_SHARD_CTRLER_ERR_BYTES] = "";
    int rc = craftkv_ctrler_change(s, req, &num, err, sizeof err);
    free(req);
    if (rc == CRAFT_ENOTLEADER || rc == CRAFT_ETRANSFER || rc == CRAFT_ESTALE)
        return 1; /* not applied (no attempt in doubt): start over on the new leader */
    if (rc == CRAFT_EINVAL) {
        craft_resp_append_errorf(out, "ERR %s", err);
        return 0;
    }
    if (rc != CRAFT_OK) {
        /* Lost in a leader change or a timeout: it may or may not have applied. */
        craft_resp_append_errorf(out, "TRYAGAIN the change's outcome is unknown (%s): see "
                                      "CRAFT.SHARD INFO before sending it again",
                                 craft_strerror(rc));
        return 0;
    }
    uint64_t until = craftkv_mono_ms() + CRAFTKV_SHARD_WAIT_MS;
    struct craftkv_peers *p = craftkv_peers_new(s); /* this worker's, for this wait */
    struct craftkv_peer_state *ps = malloc(sizeof *ps);
    bool settled;
    while (!(settled = settled_at(s, p, ps, num)) && !s->stopping && craftkv_mono_ms() < until)
        craftkv_nap(50);
    craftkv_peers_free(p);
    free(ps);
    if (settled)
        craft_resp_append_simple(out, "OK");
    else
        craft_resp_append_errorf(out, "TRYAGAIN configuration %" PRIu64 " is in force but its "
                                      "slots are still moving (CRAFT.SHARD INFO)", num);
    return 0;
}

void craftkv_shard_info(struct craftkv_server *s, struct craft_resp_buf *out)
{
    if (!s->sharded) {
        craft_resp_append_error(out, "ERR this craftkv is not sharded (a new cluster started "
                                     "with --shard-groups is)");
        return;
    }
    struct craft_shard_config *cfg = malloc(sizeof *cfg);
    char *text = NULL;
    size_t len = 0;
    FILE *f = cfg ? open_memstream(&text, &len) : NULL;
    if (!f || craftkv_shard_latest(s, cfg) != CRAFT_OK) {
        if (f)
            fclose(f);
        free(text);
        free(cfg);
        craft_resp_append_error(out, "ERR cannot read the shard configuration");
        return;
    }
    fprintf(f, "configuration:%" PRIu64 "\r\ngroups_hosted:%zu\r\n", cfg->num, s->n_groups);
    for (size_t i = 0; i < s->n_groups; i++) {
        struct craftkv_group *g = &s->groups[i];
        struct craftkv_shard_state st = {0};
        int rc = craftkv_shard_group_state(g, &st);
        uint64_t leader = craft_leader(g->node, NULL, 0);
        const char *addr = leader ? craftkv_client_addr(s, leader) : NULL;
        fprintf(f, "group:%" PRIu64 ",owned:%" PRIu32 ",leader:%s,applied_configuration:%" PRIu64
                   ",serving:%" PRIu32 ",pulling:%" PRIu32 ",giving:%" PRIu32
                   ",notifying:%" PRIu32 "%s\r\n",
                g->gid, craft_shard_group_slots(cfg, g->gid), addr ? addr : "?", st.num,
                st.slots[CRAFT_SLOT_SERVING], st.slots[CRAFT_SLOT_PULLING],
                st.slots[CRAFT_SLOT_GIVING], st.slots[CRAFT_SLOT_NOTIFYING],
                rc == CRAFT_OK ? "" : ",unreadable");
    }
    /* Groups placed elsewhere: what the configuration and the driver's last word on their
     * leader say (their progress: CRAFT.SHARD INFO on one of their hosts). */
    for (uint64_t gid = 1; gid <= s->opts.shard_groups; gid++) {
        if (craftkv_group_of(s, gid))
            continue;
        uint64_t leader = gid <= CRAFTKV_SHARD_GROUPS_MAX ? atomic_load(&s->leader_hint[gid]) : 0;
        const char *addr = leader ? craftkv_client_addr(s, leader) : NULL;
        fprintf(f, "group:%" PRIu64 ",owned:%" PRIu32 ",leader:%s,hosted_elsewhere\r\n", gid,
                craft_shard_group_slots(cfg, gid), addr ? addr : "?");
    }
    fclose(f);
    craft_resp_append_bulk(out, text, len);
    free(text);
    free(cfg);
}
