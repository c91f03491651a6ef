/* A shard configuration: which replica group owns each of the 16384 slots, and which servers
 * each group has; and the controller's three changes to it (Join, Leave, Move), as pure
 * functions of the current configuration and the request, so that every replica of the
 * controller group computes the same next configuration (design: docs/design/sharding.md).
 *
 * Rebalancing (Join, Leave) is as even as possible (the group counts differ by at most one
 * slot) and moves as few slots as possible (only those a group holds beyond its new share,
 * and those of departed groups); Move assigns slots where asked and rebalances nothing.
 * Deterministic: no hash order, no clock, no randomness.
 *
 * Thread: none of their own; a configuration is a plain value (copy it with memcpy). */
#ifndef CRAFT_SHARD_CONFIG_H
#define CRAFT_SHARD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/slots.h"

#define CRAFT_SHARD_GROUPS_MAX  64u /* groups in one configuration */
#define CRAFT_SHARD_SERVERS_MAX 8u  /* servers of one group */
#define CRAFT_SHARD_ADDR_BYTES  64u /* "host:port", NUL included */
/* slot_owner's value of a slot no group owns (configuration 0, or no group left). */
#define CRAFT_SHARD_NONE 0xFFu

struct craft_shard_group {
    uint64_t gid; /* != 0 */
    uint32_t n_servers;
    char servers[CRAFT_SHARD_SERVERS_MAX][CRAFT_SHARD_ADDR_BYTES];
};

struct craft_shard_config {
    uint64_t num; /* 0: the initial configuration (no group, no slot owned) */
    uint32_t n_groups;
    struct craft_shard_group groups[CRAFT_SHARD_GROUPS_MAX]; /* ascending gid */
    uint8_t owner[CRAFT_SLOTS]; /* index into groups, or CRAFT_SHARD_NONE */
};

/* Configuration 0. */
void craft_shard_config_init(struct craft_shard_config *c);

/* The gid owning slot (0: none). */
uint64_t craft_shard_slot_gid(const struct craft_shard_config *c, uint16_t slot);

/* Slots owned by group gid (0 if it is not in the configuration). */
uint32_t craft_shard_group_slots(const struct craft_shard_config *c, uint64_t gid);

/* The changes. Each writes the next configuration (num + 1) into *next and returns
 * CRAFT_OK, or returns an error with *next untouched and err (cap bytes, may be NULL)
 * naming the cause, Redis style:
 *   join:  n groups, each with 1..CRAFT_SHARD_SERVERS_MAX servers of valid length, a gid not
 *          0, not already in the configuration, no gid twice; at most
 *          CRAFT_SHARD_GROUPS_MAX groups afterwards -> CRAFT_EINVAL;
 *   leave: n known gids, no gid twice, at least one group left (the last group cannot go:
 *          its slots would have nowhere to live) -> CRAFT_EINVAL;
 *   move:  slots [first, last] (first <= last < CRAFT_SLOTS) to a gid of the
 *          configuration -> CRAFT_EINVAL. A move that changes nothing still makes a new
 *          configuration (a request is one configuration, as the controller's clients
 *          count them). */
int craft_shard_join(const struct craft_shard_config *cur, const struct craft_shard_group *g,
                     size_t n, struct craft_shard_config *next, char *err, size_t cap);
int craft_shard_leave(const struct craft_shard_config *cur, const uint64_t *gids, size_t n,
                      struct craft_shard_config *next, char *err, size_t cap);
int craft_shard_move(const struct craft_shard_config *cur, uint16_t first, uint16_t last,
                     uint64_t gid, struct craft_shard_config *next, char *err, size_t cap);

/* Whether c is well formed: groups in ascending gid order, valid, owners index existing
 * groups; no slot unowned while a group exists. For assertions and decoders. */
bool craft_shard_config_valid(const struct craft_shard_config *c);

/* The encoding, for the controller's log entries and snapshots (little-endian):
 *   u8 version (1) | u64 num | u8 n_groups |
 *   per group: u64 gid | u8 n_servers | per server: u8 len | len bytes (no NUL) |
 *   u16 n_runs | per run: u16 count (>= 1) | u8 owner (a group index, or 0xFF with no
 *   group) -- the owners of slots 0.. in order, the counts adding up to CRAFT_SLOTS, no
 *   two neighbouring runs with one owner (so each configuration has one encoding).
 * A balanced configuration of n groups is a few runs per group: a few hundred bytes. */
#define CRAFT_SHARD_CONFIG_VERSION 1u
/* The largest encoding: every group full, and every slot its own run. */
#define CRAFT_SHARD_CONFIG_BYTES_MAX                                                      \
    (1u + 8u + 1u +                                                                       \
     CRAFT_SHARD_GROUPS_MAX * (8u + 1u + CRAFT_SHARD_SERVERS_MAX * CRAFT_SHARD_ADDR_BYTES) + \
     2u + CRAFT_SLOTS * 3u)

/* The encoded size of c (valid). */
size_t craft_shard_config_size(const struct craft_shard_config *c);
/* Encodes c (valid) into buf (cap >= craft_shard_config_size(c)); returns the bytes
 * written. */
size_t craft_shard_config_encode(const struct craft_shard_config *c, uint8_t *buf, size_t cap);
/* Decodes p[0..len) into *c: CRAFT_OK, CRAFT_EVERSION (another version), or CRAFT_ECORRUPT
 * (truncated, trailing bytes, a field out of range, runs that do not cover the slots
 * exactly once, a configuration craft_shard_config_valid refuses, a non-canonical
 * encoding). *c is garbage on error. */
int craft_shard_config_decode(const uint8_t *p, size_t len, struct craft_shard_config *c);

#endif
