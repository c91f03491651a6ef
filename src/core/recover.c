/* Recovery from a lost quorum: the operator's last resort, outside Raft's rules (the thesis
 * assumes a majority survives; etcd's --force-new-cluster and hashicorp/raft's
 * RecoverCluster are the same escape hatch). When a majority of the voters is gone for
 * good, no entry can commit and no leader can be elected under the configuration in the
 * log. One surviving node, chosen by the operator as the one that knew the most committed,
 * appends a configuration naming the survivors, as if a leader of a new term had written
 * it (design: docs/design/core.md, "Recovery from a lost quorum").
 *
 * Why this is as safe as it can be:
 *   - The entry's term is above every term this node has seen and above min_term (what the
 *     operator's tool learned from the other survivors), so no other survivor holds an entry
 *     of that term: the Log Matching property (thesis 3.5) still holds between the forced log
 *     and theirs, and their logs are repaired from it as from any leader's.
 *   - Only one node may run it: two forced entries of one term at one index could differ.
 *   - Raft uses the newest configuration in the log, committed or not (thesis 4.1), so the
 *     survivors form the quorums from the node's next start on; once this node leads under
 *     them, it commits its whole log, entries the old majority never committed included (the
 *     price of the escape hatch: a write that was in doubt may take effect).
 *   - Nodes left out must never come back with their old data: they may hold higher terms
 *     or entries of the forced term's index. */
#include <string.h>

#include "core/core.h"

int craft_core_force_conf(const struct craft_core_restore *r, const struct craft_conf *conf,
                          uint64_t min_term, uint8_t *buf, size_t cap, struct craft_entry *entry,
                          struct craft_hard_state *hs)
{
    if (!craft_conf_valid(conf) || conf->n_voters == 0 || conf->n_voters_outgoing != 0 ||
        conf->n_learners_next != 0) {
        return CRAFT_EINVAL;
    }
    size_t size = craft_conf_encoded_size(conf);
    if (size > cap) {
        return CRAFT_EINVAL;
    }
    uint64_t last_index = r->snap.index, last_term = r->snap.term;
    if (r->n_entries > 0) {
        last_index = r->entries[r->n_entries - 1].index;
        last_term = r->entries[r->n_entries - 1].term;
    }
    uint64_t term = r->hs.term > last_term ? r->hs.term : last_term;
    term = term > min_term ? term : min_term;
    if (term == UINT64_MAX) {
        return CRAFT_EINVAL;
    }
    *entry = (struct craft_entry){.term = term + 1, .index = last_index + 1,
                                  .type = CRAFT_ENTRY_CONF, .data = buf};
    entry->len = (uint32_t)craft_conf_encode(conf, buf);
    *hs = (struct craft_hard_state){.term = term + 1, .vote = CRAFT_NONE};
    return CRAFT_OK;
}
