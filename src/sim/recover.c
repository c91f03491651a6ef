/* Recovery from a lost quorum on the simulator (docs/design/core.md, "Recovery from a lost
 * quorum"): what an operator does with craft_config.force_servers, on the simulated disks,
 * through the same core function the runtime uses (craft_core_force_conf). */
#include <string.h>

#include "base/assert.h"
#include "sim/sim_internal.h"

int sim_recover_lost_quorum(struct sim_cluster *c, uint64_t lost, uint64_t *forced_index,
                            uint64_t *forced_term)
{
    /* The operator asks every survivor for its commit index, its log's end and its term
     * (craftkv: RAFT.INFO) and forces the one that knows the most committed (committed
     * prefixes never disagree, so it holds every entry any survivor knew committed; the
     * longest log is not enough: a follower may know entries committed while holding only
     * a prefix of its leader's log, of an older term than another survivor's uncommitted
     * tail), the most complete log breaking ties, above the highest term any reports. */
    int best = -1;
    uint64_t max_term = 0, keep = 0, best_commit = 0, best_term = 0, best_last = 0;
    struct craft_conf conf;
    memset(&conf, 0, sizeof conf);
    for (int i = 0; i < c->n; i++) {
        if (lost >> i & 1) {
            CRAFT_ASSERT(!c->nodes[i].alive);
            c->nodes[i].gone = true;
            continue;
        }
        struct sim_node *node = &c->nodes[i];
        conf.voters[conf.n_voters++] = (uint64_t)i + 1;
        uint64_t commit = node->last_commit; /* as last seen, before the operator stops it */
        if (node->alive) {
            sim_crash(c, i); /* the operator stops them to read their state */
        }
        const struct sim_disk *d = &node->disk;
        uint64_t last = sim_disk_last_index(d);
        uint64_t last_term = d->n_log > 0 ? d->log[d->n_log - 1].term : d->snap.term;
        if (d->hs.term > max_term) {
            max_term = d->hs.term;
        }
        if (commit > keep) {
            keep = commit;
        }
        if (best < 0 || commit > best_commit ||
            (commit == best_commit &&
             (last_term > best_term || (last_term == best_term && last > best_last)))) {
            best = i;
            best_commit = commit;
            best_term = last_term;
            best_last = last;
        }
    }
    CRAFT_ASSERT(best >= 0 && c->nodes[best].rd == NULL);
    struct sim_node *node = &c->nodes[best];
    struct craft_core_restore r = {.hs = node->disk.hs, .snap = node->disk.snap,
                                   .entries = node->disk.log, .n_entries = node->disk.n_log};
    uint8_t buf[4 + 4 * 8 * CRAFT_CONF_NODES_MAX];
    struct craft_entry e;
    struct craft_hard_state hs;
    int rc = craft_core_force_conf(&r, &conf, max_term, buf, sizeof buf, &e, &hs);
    CRAFT_ASSERT(rc == CRAFT_OK);
    sim_disk_force(&node->disk, &hs, &e);
    c->ch.forced_index = e.index;
    sim_checks_lost(c, lost, keep, max_term);
    char a[256];
    sim_note(c, "recovery: n%d forced %s at index %llu term %llu (survivors knew committed "
                "through %llu)", best + 1, sim_conf_fmt(a, sizeof a, &conf),
             (unsigned long long)e.index, (unsigned long long)e.term, (unsigned long long)keep);
    for (int i = 0; i < c->n; i++) {
        if (!(lost >> i & 1)) {
            sim_start(c, i);
            sim_connect(c, i);
        }
    }
    if (forced_index != NULL) {
        *forced_index = e.index;
    }
    if (forced_term != NULL) {
        *forced_term = e.term;
    }
    return best;
}
