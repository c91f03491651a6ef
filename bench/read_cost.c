/* What each read mode costs on a quiet, reliable 3-node simulated cluster: messages per
 * read (the cluster's messages during N reads minus those of an equally long quiet
 * period) and latency in virtual time from invocation to completion (mean, p99).
 *
 * Prints figures; never passes or fails on them. Usage: read_cost [N] [SEED]. */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/driver.h"
#include "sim/cluster.h"
#include "sim/linearize.h"
#include "sim/reads.h"
#include "sim/scenario.h"
#include "sim/sim_internal.h"

#define GAP_MS 50 /* between reads (and between bursts) */
#define BURST 10  /* reads issued at the same instant in the burst variant */

static int n_reads = 200;

struct counts {
    uint64_t requests; /* sim_rpc_total: requests sent */
    uint64_t msgs;     /* every message the drivers sent, requests and replies */
};

static struct counts counts_now(struct sim_cluster *c)
{
    struct counts k = {.requests = sim_rpc_total(c)};
    for (int i = 0; i < c->n; i++) {
        if (c->nodes[i].alive) {
            struct craft_driver_stats st;
            craft_driver_stats(c->nodes[i].d, &st);
            k.msgs += st.msgs_sent;
        }
    }
    return k;
}

static struct counts diff(struct counts a, struct counts b)
{
    return (struct counts){b.requests - a.requests, b.msgs - a.msgs};
}

static void wait_done(struct sim_cluster *c)
{
    while (sim_reads_pending(c) > 0) {
        sim_sleep(c, 1);
    }
}

/* Runs n reads in mode on node i, burst at a time, GAP_MS apart; returns the messages. */
static struct counts run_reads(struct sim_cluster *c, enum sim_read_mode mode, int i, int burst,
                               uint64_t *span_ms)
{
    struct counts k0 = counts_now(c);
    uint64_t t0 = sim_now(c);
    for (int k = 0; k < n_reads; k += burst) {
        for (int b = 0; b < burst; b++) {
            if (sim_reads_read(c, 1 + b, i, mode, "k0", 5000) == 0) {
                fprintf(stderr, "read refused (mode %d on node %d)\n", mode, i);
                exit(1);
            }
        }
        sim_sleep(c, GAP_MS);
    }
    wait_done(c);
    uint64_t span = sim_now(c) - t0;
    if (span < (uint64_t)(n_reads / burst) * GAP_MS) {
        sim_sleep(c, (uint64_t)(n_reads / burst) * GAP_MS - span);
    }
    *span_ms = sim_now(c) - t0;
    return diff(k0, counts_now(c));
}

static void bench(void)
{
    struct sim_cluster_opts opts;
    sim_cluster_opts_default(&opts, 3, false, false);
    opts.disk_latency_max_ms = 0;
    opts.dup_per_mille = 0;
    opts.election_timeout_ms = 0;
    opts.snapshot_chunk_bytes = 0;
    opts.kv = true;
    struct sim_cluster *c = sim_cluster_create(&opts);
    int l = sim_check_one_leader(c);
    sim_reads_attach(c);
    uint64_t w = sim_reads_write(c, 1, l, SIM_LIN_PUT, "k0", "v", 5000);
    while (w != 0 && sim_reads_status(c, w) == SIM_OP_PENDING) {
        sim_sleep(c, 1);
    }
    sim_sleep(c, 1000);
    int f = (l + 1) % 3;

    static const char *const names[] = {"read-index (leader)", "lease (leader)",
                                        "follower read"};
    uint64_t quiet_ms = (uint64_t)n_reads * GAP_MS;
    struct counts q0 = counts_now(c);
    sim_sleep(c, quiet_ms);
    struct counts quiet = diff(q0, counts_now(c));
    printf("read_cost: 3 nodes, reliable network (0-1 ms delays), default timers, %d reads "
           "per mode, one every %d ms\n", n_reads, GAP_MS);
    printf("quiet cluster over %llu ms: %llu requests, %llu messages\n",
           (unsigned long long)quiet_ms, (unsigned long long)quiet.requests,
           (unsigned long long)quiet.msgs);
    printf("%-22s %6s %10s %10s %10s %8s\n", "mode", "burst", "req/read", "msgs/read",
           "mean_ms", "p99_ms");
    for (int burst = 1; burst <= BURST; burst += BURST - 1) {
        for (int m = 0; m < SIM_READ_MODES_; m++) {
            struct sim_reads_stats before, after;
            sim_reads_get_stats(c, &before);
            int node = m == SIM_READ_FOLLOWER ? f : l;
            uint64_t span;
            struct counts k = run_reads(c, (enum sim_read_mode)m, node, burst, &span);
            /* The quiet cluster's traffic over the same span. */
            double base_req = (double)quiet.requests * (double)span / (double)quiet_ms;
            double base_msgs = (double)quiet.msgs * (double)span / (double)quiet_ms;
            sim_reads_get_stats(c, &after);
            uint64_t ok = after.reads_ok[m] - before.reads_ok[m];
            /* Latency over this run only: the stats are cumulative, so recompute. */
            double mean = ok ? (after.lat_mean[m] * (double)after.reads_ok[m] -
                                before.lat_mean[m] * (double)before.reads_ok[m]) /
                                   (double)ok
                             : 0;
            printf("%-22s %6d %10.2f %10.2f %10.2f %8llu\n", names[m], burst,
                   ((double)k.requests - base_req) / n_reads,
                   ((double)k.msgs - base_msgs) / n_reads, mean,
                   (unsigned long long)after.lat_p99[m]);
            if (ok != (uint64_t)n_reads) {
                printf("  (only %llu of %d reads succeeded)\n", (unsigned long long)ok, n_reads);
            }
        }
    }
    printf("(p99 is over every read of that mode so far, both bursts included)\n");
    sim_reads_check(c, 100000000);
    sim_cluster_destroy(c);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        n_reads = atoi(argv[1]);
        if (n_reads < BURST || n_reads % BURST != 0) {
            fprintf(stderr, "N must be a positive multiple of %d\n", BURST);
            return 2;
        }
    }
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    struct sim_scenario s = {"bench/read-cost", "read cost", bench};
    struct sim_run_result r = sim_run_scenario(&s, seed, false);
    return r.passed ? 0 : 1;
}
