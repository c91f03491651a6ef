/* The runtime's configuration: defaults and validation that names the bad field. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "runtime/rt.h"

void craft_config_default(struct craft_config *cfg, uint64_t id)
{
    memset(cfg, 0, sizeof *cfg);
    struct craft_core_config core;
    craft_core_config_default(&core, id);
    cfg->id = id;
    cfg->cluster_id = 1;
    cfg->snapshots_retained = 2;
    cfg->wal_segment_bytes = 64ull << 20;
    cfg->transport = CRAFT_TRANSPORT_TCP;
    snprintf(cfg->listen_addr, sizeof cfg->listen_addr, "127.0.0.1:0");
    cfg->heartbeat_ms = core.heartbeat_ms;
    cfg->election_timeout_ms = core.election_timeout_ms;
    cfg->pre_vote = core.pre_vote;
    cfg->check_quorum = core.check_quorum;
    cfg->inflight_msgs_max = core.inflight_msgs_max;
    cfg->append_bytes_max = core.append_bytes_max;
    cfg->entry_bytes_max = core.entry_bytes_max;
    cfg->snapshot_chunk_bytes_max = core.snapshot_chunk_bytes_max;
    cfg->clock_drift_bound_ms = core.clock_drift_bound_ms;
    cfg->snapshot_threshold_entries = 8192;
    cfg->snapshot_threshold_bytes = 64ull << 20;
    cfg->trailing_entries = 10240;
    cfg->trailing_bytes = 16ull << 20;
    cfg->disk_stall_ms = 5000;
    cfg->queue_max = 65536;
    cfg->seed = id * 0x9E3779B97F4A7C15ull;
}

static bool numeric_addr(const char *addr)
{
    if (memchr(addr, '\0', CRAFT_ADDR_BYTES_MAX) == NULL) {
        return false;
    }
    char host[CRAFT_ADDR_BYTES_MAX];
    uint16_t port;
    if (!rt_addr_split(addr, host, sizeof host, &port)) {
        return false;
    }
    uint8_t buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int bad(const char **field, const char *name)
{
    if (field != NULL) {
        *field = name;
    }
    return CRAFT_EINVAL;
}

/* Checks a server list; on failure names "<list>[i].<field>" in a static buffer (the
 * failure path of a configuration check, not a hot path, and one per thread). */
static int check_servers(const struct craft_server *s, size_t n, const char *list, bool tcp,
                         const char **field)
{
    static _Thread_local char name[96];
    if (n > CRAFT_CONF_NODES_MAX) {
        snprintf(name, sizeof name, "n_%s", list);
        return bad(field, name);
    }
    if (n > 0 && s == NULL) {
        return bad(field, list);
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++) {
            dup = dup || s[j].id == s[i].id;
        }
        if (s[i].id == 0 || dup) {
            snprintf(name, sizeof name, "%s[%zu].id", list, i);
            return bad(field, name);
        }
        if (tcp && !numeric_addr(s[i].addr)) {
            snprintf(name, sizeof name, "%s[%zu].addr", list, i);
            return bad(field, name);
        }
    }
    return CRAFT_OK;
}

int craft_config_validate(const struct craft_config *cfg, const char **field)
{
    if (cfg->id == 0) {
        return bad(field, "id");
    }
    if (cfg->snapshots_retained == 0) {
        return bad(field, "snapshots_retained");
    }
    if (cfg->wal_segment_bytes < (4u << 20) || cfg->wal_segment_bytes % 8 != 0) {
        return bad(field, "wal_segment_bytes");
    }
    bool tcp = cfg->transport == CRAFT_TRANSPORT_TCP;
    if (!tcp && cfg->transport != CRAFT_TRANSPORT_MEM) {
        return bad(field, "transport");
    }
    if (tcp && !numeric_addr(cfg->listen_addr)) {
        return bad(field, "listen_addr");
    }
    if (!tcp && cfg->mem_net == NULL) {
        return bad(field, "mem_net");
    }
    int rc = check_servers(cfg->peers, cfg->n_peers, "peers", tcp, field);
    if (rc != CRAFT_OK) {
        return rc;
    }
    rc = check_servers(cfg->initial_servers, cfg->n_initial_servers, "initial_servers", tcp,
                       field);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (cfg->n_initial_servers > 0) {
        bool self = false, voter = false;
        for (size_t i = 0; i < cfg->n_initial_servers; i++) {
            self = self || cfg->initial_servers[i].id == cfg->id;
            voter = voter || cfg->initial_servers[i].voter;
        }
        if (!self || !voter) {
            return bad(field, "initial_servers");
        }
    }
    rc = check_servers(cfg->force_servers, cfg->n_force_servers, "force_servers", tcp, field);
    if (rc != CRAFT_OK) {
        return rc;
    }
    if (cfg->n_force_servers > 0) {
        bool self_voter = false;
        for (size_t i = 0; i < cfg->n_force_servers; i++) {
            self_voter = self_voter || (cfg->force_servers[i].id == cfg->id &&
                                        cfg->force_servers[i].voter);
        }
        if (!self_voter) {
            return bad(field, "force_servers"); /* it must lead them: a voter among them */
        }
    }
    if (cfg->queue_max == 0) {
        return bad(field, "queue_max");
    }
    /* The entry limit must leave room for the tag byte and fit one WAL record. */
    if (cfg->entry_bytes_max == 0 || cfg->entry_bytes_max > (64u << 20)) {
        return bad(field, "entry_bytes_max");
    }
    struct craft_core_config core;
    craft_core_config_default(&core, cfg->id);
    core.heartbeat_ms = cfg->heartbeat_ms;
    core.election_timeout_ms = cfg->election_timeout_ms;
    core.pre_vote = cfg->pre_vote;
    core.check_quorum = cfg->check_quorum;
    core.inflight_msgs_max = cfg->inflight_msgs_max;
    core.append_bytes_max = cfg->append_bytes_max;
    core.entry_bytes_max = cfg->entry_bytes_max + 1;
    core.snapshot_chunk_bytes_max = cfg->snapshot_chunk_bytes_max;
    core.clock_drift_bound_ms = cfg->clock_drift_bound_ms;
    return craft_core_config_validate(&core, field);
}
