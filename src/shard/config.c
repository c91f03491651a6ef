/* Shard configurations and the controller's changes to them (config.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "shard/config.h"

_Static_assert(CRAFT_SHARD_GROUPS_MAX < CRAFT_SHARD_NONE, "owner indexes fit a byte");

void craft_shard_config_init(struct craft_shard_config *c)
{
    memset(c, 0, sizeof *c);
    memset(c->owner, CRAFT_SHARD_NONE, sizeof c->owner);
}

static int group_index(const struct craft_shard_config *c, uint64_t gid)
{
    for (uint32_t i = 0; i < c->n_groups; i++) {
        if (c->groups[i].gid == gid) {
            return (int)i;
        }
    }
    return -1;
}

uint64_t craft_shard_slot_gid(const struct craft_shard_config *c, uint16_t slot)
{
    CRAFT_ASSERT(slot < CRAFT_SLOTS);
    uint8_t i = c->owner[slot];
    return i == CRAFT_SHARD_NONE ? 0 : c->groups[i].gid;
}

uint32_t craft_shard_group_slots(const struct craft_shard_config *c, uint64_t gid)
{
    int g = group_index(c, gid);
    uint32_t n = 0;
    for (uint32_t s = 0; g >= 0 && s < CRAFT_SLOTS; s++) {
        n += c->owner[s] == (uint8_t)g;
    }
    return n;
}

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return CRAFT_EINVAL;
}

static bool group_ok(const struct craft_shard_group *g)
{
    if (g->gid == 0 || g->n_servers == 0 || g->n_servers > CRAFT_SHARD_SERVERS_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < g->n_servers; i++) {
        size_t len = strnlen(g->servers[i], CRAFT_SHARD_ADDR_BYTES);
        if (len == 0 || len == CRAFT_SHARD_ADDR_BYTES) {
            return false;
        }
    }
    return true;
}

/* Gives next the groups of list (n, ascending gid) and the owners of cur mapped onto them:
 * a slot of a group not in list becomes unowned. */
static void regroup(const struct craft_shard_config *cur, const struct craft_shard_group *list,
                    uint32_t n, struct craft_shard_config *next)
{
    uint8_t map[CRAFT_SHARD_GROUPS_MAX];
    for (uint32_t i = 0; i < cur->n_groups; i++) {
        map[i] = CRAFT_SHARD_NONE;
        for (uint32_t j = 0; j < n; j++) {
            if (list[j].gid == cur->groups[i].gid) {
                map[i] = (uint8_t)j;
            }
        }
    }
    next->num = cur->num + 1;
    next->n_groups = n;
    memmove(next->groups, list, n * sizeof *list);
    memset(next->groups + n, 0, (CRAFT_SHARD_GROUPS_MAX - n) * sizeof *list);
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint8_t o = cur->owner[s];
        next->owner[s] = o == CRAFT_SHARD_NONE ? CRAFT_SHARD_NONE : map[o];
    }
}

/* As even as possible, moving as little as possible: each group's share is
 * CRAFT_SLOTS / n, and the CRAFT_SLOTS % n groups that hold the most (the lower gid on a
 * tie) keep one more. Slots a group holds beyond its share are freed, highest slots first;
 * free slots go, lowest first, to the groups under their share, in gid order, so a new
 * group gets a contiguous run where it can. */
static void rebalance(struct craft_shard_config *c)
{
    uint32_t n = c->n_groups;
    if (n == 0) {
        memset(c->owner, CRAFT_SHARD_NONE, sizeof c->owner);
        return;
    }
    uint32_t count[CRAFT_SHARD_GROUPS_MAX] = {0}, target[CRAFT_SHARD_GROUPS_MAX];
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (c->owner[s] != CRAFT_SHARD_NONE) {
            count[c->owner[s]]++;
        }
    }
    uint8_t order[CRAFT_SHARD_GROUPS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        order[i] = (uint8_t)i;
    }
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: count desc, index asc; stable */
        uint8_t x = order[i];
        uint32_t j = i;
        while (j > 0 && count[order[j - 1]] < count[x]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    uint32_t base = CRAFT_SLOTS / n, extra = CRAFT_SLOTS % n;
    for (uint32_t k = 0; k < n; k++) {
        target[order[k]] = base + (k < extra ? 1 : 0);
    }
    for (uint32_t s = CRAFT_SLOTS; s-- > 0;) {
        uint8_t o = c->owner[s];
        if (o != CRAFT_SHARD_NONE && count[o] > target[o]) {
            c->owner[s] = CRAFT_SHARD_NONE;
            count[o]--;
        }
    }
    uint32_t g = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (c->owner[s] != CRAFT_SHARD_NONE) {
            continue;
        }
        while (count[g] >= target[g]) {
            g++;
            CRAFT_ASSERT(g < n); /* the targets add up to CRAFT_SLOTS */
        }
        c->owner[s] = (uint8_t)g;
        count[g]++;
    }
}

int craft_shard_join(const struct craft_shard_config *cur, const struct craft_shard_group *g,
                     size_t n, struct craft_shard_config *next, char *err, size_t cap)
{
    CRAFT_ASSERT(craft_shard_config_valid(cur));
    if (n == 0) {
        return fail(err, cap, "ERR join needs at least one group");
    }
    if (cur->n_groups + n > CRAFT_SHARD_GROUPS_MAX) {
        return fail(err, cap, "ERR too many groups (at most %u)", CRAFT_SHARD_GROUPS_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if (!group_ok(&g[i])) {
            return fail(err, cap,
                        "ERR bad group %llu (want a gid > 0 and 1 to %u servers HOST:PORT)",
                        (unsigned long long)g[i].gid, CRAFT_SHARD_SERVERS_MAX);
        }
        if (group_index(cur, g[i].gid) >= 0) {
            return fail(err, cap, "ERR group %llu is already in the configuration",
                        (unsigned long long)g[i].gid);
        }
        for (size_t j = 0; j < i; j++) {
            if (g[j].gid == g[i].gid) {
                return fail(err, cap, "ERR group %llu appears twice", (unsigned long long)g[i].gid);
            }
        }
    }
    /* The union, ascending by gid (a merge of two sorted lists). */
    struct craft_shard_group list[CRAFT_SHARD_GROUPS_MAX];
    uint32_t m = 0;
    for (uint32_t i = 0; i < cur->n_groups; i++) {
        list[m++] = cur->groups[i];
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t at = m;
        while (at > 0 && list[at - 1].gid > g[i].gid) {
            list[at] = list[at - 1];
            at--;
        }
        list[at] = g[i];
        m++;
    }
    regroup(cur, list, m, next);
    rebalance(next);
    CRAFT_ASSERT(craft_shard_config_valid(next));
    return CRAFT_OK;
}

int craft_shard_leave(const struct craft_shard_config *cur, const uint64_t *gids, size_t n,
                      struct craft_shard_config *next, char *err, size_t cap)
{
    CRAFT_ASSERT(craft_shard_config_valid(cur));
    if (n == 0) {
        return fail(err, cap, "ERR leave needs at least one group");
    }
    for (size_t i = 0; i < n; i++) {
        if (group_index(cur, gids[i]) < 0) {
            return fail(err, cap, "ERR unknown group %llu", (unsigned long long)gids[i]);
        }
        for (size_t j = 0; j < i; j++) {
            if (gids[j] == gids[i]) {
                return fail(err, cap, "ERR group %llu appears twice", (unsigned long long)gids[i]);
            }
        }
    }
    if (n >= cur->n_groups) {
        return fail(err, cap, "ERR the last group cannot leave: its slots would have no owner");
    }
    struct craft_shard_group list[CRAFT_SHARD_GROUPS_MAX];
    uint32_t m = 0;
    for (uint32_t i = 0; i < cur->n_groups; i++) {
        bool leaving = false;
        for (size_t j = 0; j < n; j++) {
            leaving |= gids[j] == cur->groups[i].gid;
        }
        if (!leaving) {
            list[m++] = cur->groups[i];
        }
    }
    regroup(cur, list, m, next);
    rebalance(next);
    CRAFT_ASSERT(craft_shard_config_valid(next));
    return CRAFT_OK;
}

int craft_shard_move(const struct craft_shard_config *cur, uint16_t first, uint16_t last,
                     uint64_t gid, struct craft_shard_config *next, char *err, size_t cap)
{
    CRAFT_ASSERT(craft_shard_config_valid(cur));
    if (first > last || last >= CRAFT_SLOTS) {
        return fail(err, cap, "ERR bad slot range %u-%u (slots are 0 to %u)", first, last,
                    CRAFT_SLOTS - 1);
    }
    int g = group_index(cur, gid);
    if (g < 0) {
        return fail(err, cap, "ERR unknown group %llu", (unsigned long long)gid);
    }
    if (next != cur) {
        memcpy(next, cur, sizeof *next);
    }
    next->num = cur->num + 1;
    memset(next->owner + first, g, (size_t)last - first + 1);
    CRAFT_ASSERT(craft_shard_config_valid(next));
    return CRAFT_OK;
}

bool craft_shard_config_valid(const struct craft_shard_config *c)
{
    if (c->n_groups > CRAFT_SHARD_GROUPS_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < c->n_groups; i++) {
        if (!group_ok(&c->groups[i]) || (i > 0 && c->groups[i - 1].gid >= c->groups[i].gid)) {
            return false;
        }
    }
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint8_t o = c->owner[s];
        if (c->n_groups == 0 ? o != CRAFT_SHARD_NONE : o >= c->n_groups) {
            return false;
        }
    }
    return true;
}
