/* Helpers shared by the Raft scenarios: begin/end of a test and Go-style formatting. */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "raft_scenarios.h"

static struct sim_cluster *begin(int n, bool unreliable, bool snapshot, bool counted,
                                 const char *description, uint64_t *t0)
{
    CRAFT_ASSERT(n > 0);
    CRAFT_ASSERT(description != NULL && t0 != NULL);
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, n, unreliable, snapshot);
    if (counted) {
        /* Exact message bounds: labrpc never duplicates, and the bounds assume the
         * default election timeout. Disk latency stays seed-drawn. */
        opts.dup_per_mille = 0;
        opts.tail_per_mille = 0;
        opts.election_timeout_ms = 0;
    }
    struct sim_cluster *c = sim_cluster_create(&opts);
    CRAFT_ASSERT(c != NULL);
    sim_note(c, "begin: %s", description);
    *t0 = sim_now(c);
    return c;
}

struct sim_cluster *sim_raft_begin(int n, bool unreliable, bool snapshot, const char *description,
                                   uint64_t *t0)
{
    return begin(n, unreliable, snapshot, false, description, t0);
}

struct sim_cluster *sim_raft_begin_counted(int n, const char *description, uint64_t *t0)
{
    return begin(n, false, false, true, description, t0);
}

void sim_raft_end(struct sim_cluster *c, uint64_t t0)
{
    uint64_t took_ms = sim_now(c) - t0;
    if (took_ms > SIM_RAFT_TEST_LIMIT_MS) {
        sim_fail(c, "test took longer than 120 seconds (%llu ms)", (unsigned long long)took_ms);
    }
    sim_cluster_destroy(c);
}

uint64_t sim_raft_rand_cmd(struct sim_cluster *c)
{
    return sim_rand(c, 0, (uint64_t)1 << 62);
}

const char *sim_raft_fmt_ints(char *buf, size_t cap, const uint64_t *vals, size_t n_vals)
{
    CRAFT_ASSERT(cap >= 8);
    size_t used = 0;
    buf[used++] = '[';
    buf[used] = '\0';
    for (size_t i = 0; i < n_vals; i++) {
        char item[32];
        int len = snprintf(item, sizeof item, "%s%llu", i == 0 ? "" : " ",
                           (unsigned long long)vals[i]);
        CRAFT_ASSERT(len > 0 && (size_t)len < sizeof item);
        /* Room for the item, "]" and NUL, or else for "...]" and NUL. */
        if (used + (size_t)len + 2 > cap) {
            if (used + 5 > cap) {
                used = cap - 5;
            }
            memcpy(buf + used, "...]", 5);
            return buf;
        }
        memcpy(buf + used, item, (size_t)len);
        used += (size_t)len;
    }
    buf[used++] = ']';
    buf[used] = '\0';
    return buf;
}
