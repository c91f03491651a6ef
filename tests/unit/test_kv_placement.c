/* Where a sharded craftkv places its shard groups (craftkv_shard_hosts, src/kv/
 * server_shard.c; docs/design/sharding.md, "Placement"), for every member count, replica
 * count and group count the flags allow: each group on R distinct members, every member
 * hosting at least one group when G * R >= N, the load even (hosted counts differ by one at
 * most), the same answer whatever member asks, and the layouts the docs promise. */
#include <string.h>

#include "kv/server_internal.h"
#include "unit.h"

static void opts_of(struct craftkv_opts *o, size_t n, uint32_t r, uint32_t g, uint64_t me)
{
    memset(o, 0, sizeof *o);
    o->n_members = n;
    for (size_t i = 0; i < n; i++)
        o->members[i].id = 10 + i; /* ids are not indexes */
    o->shard_replicas = r;
    o->shard_groups = g;
    o->id = me;
}

static void every_shape(void)
{
    struct craftkv_opts o;
    for (size_t n = 1; n <= CRAFTKV_NODES_MAX; n++)
        for (uint32_t r = 1; r <= n && r <= CRAFTKV_SHARD_REPLICAS_MAX; r++)
            for (uint32_t g = 1; g <= CRAFTKV_SHARD_GROUPS_MAX; g++) {
                if ((size_t)g * r < n)
                    continue; /* refused at start */
                opts_of(&o, n, r, g, 10);
                size_t hosted[CRAFTKV_NODES_MAX] = {0};
                for (uint64_t gid = 1; gid <= g; gid++) {
                    size_t idx[CRAFTKV_SHARD_REPLICAS_MAX];
                    size_t k = craftkv_shard_hosts(&o, gid, idx);
                    CHECK(k == r);
                    for (size_t i = 0; i < k; i++) {
                        CHECK(idx[i] < n);
                        for (size_t j = 0; j < i; j++)
                            CHECK(idx[i] != idx[j]);
                        hosted[idx[i]]++;
                    }
                    /* hosts_here agrees with the list, for every member asking */
                    for (size_t m = 0; m < n; m++) {
                        o.id = o.members[m].id;
                        bool listed = false;
                        for (size_t i = 0; i < k; i++)
                            listed |= idx[i] == m;
                        CHECK(craftkv_shard_hosts_here(&o, gid) == listed);
                    }
                    o.id = 10;
                }
                size_t lo = SIZE_MAX, hi = 0;
                for (size_t m = 0; m < n; m++) {
                    lo = hosted[m] < lo ? hosted[m] : lo;
                    hi = hosted[m] > hi ? hosted[m] : hi;
                }
                CHECK(lo >= 1);
                CHECK(hi - lo <= 1);
            }
}

static void documented_layouts(void)
{
    struct craftkv_opts o;
    size_t idx[CRAFTKV_SHARD_REPLICAS_MAX];
    /* six members, groups of three: group 1 on members 1-3, group 2 on 4-6, group 3 on 1-3 */
    opts_of(&o, 6, 3, 3, 10);
    CHECK(craftkv_shard_hosts(&o, 1, idx) == 3 && idx[0] == 0 && idx[1] == 1 && idx[2] == 2);
    CHECK(craftkv_shard_hosts(&o, 2, idx) == 3 && idx[0] == 3 && idx[1] == 4 && idx[2] == 5);
    CHECK(craftkv_shard_hosts(&o, 3, idx) == 3 && idx[0] == 0 && idx[1] == 1 && idx[2] == 2);
    /* three members, three replicas (the default): every member hosts every group, as
     * before placement existed */
    opts_of(&o, 3, 3, 5, 10);
    for (uint64_t gid = 1; gid <= 5; gid++)
        for (size_t m = 0; m < 3; m++) {
            o.id = o.members[m].id;
            CHECK(craftkv_shard_hosts_here(&o, gid));
        }
    /* four members, four groups of three: wrapping around */
    opts_of(&o, 4, 3, 4, 10);
    CHECK(craftkv_shard_hosts(&o, 2, idx) == 3 && idx[0] == 3 && idx[1] == 0 && idx[2] == 1);
}

int main(void)
{
    run_case("every_shape", every_shape);
    run_case("documented_layouts", documented_layouts);
    return unit_finish();
}
