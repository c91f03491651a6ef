/* A shard group's view of the slots: which configuration it has reached, and for every slot
 * whether it serves it, waits for its data from the previous owner, holds it frozen for the
 * next owner, or is still to tell the previous owner that it may delete its copy (design:
 * docs/design/sharding.md, "Shard groups").
 *
 * Every replica of a group reaches the same view by applying the same log entries (the
 * transitions below are pure functions of the view and the entry), so a slot's keys are
 * served by exactly one group at any point of that group's log:
 *
 *   config n+1 (only once every slot is settled: SERVING or ABSENT)
 *     ours in n and n+1                     SERVING   -> SERVING
 *     ours in n+1 only, nobody's in n       ABSENT    -> SERVING   (no data anywhere yet)
 *     ours in n+1 only, another group's in n ABSENT   -> PULLING   (not served: its keys
 *                                                       are still at the previous owner)
 *     ours in n only                        SERVING   -> GIVING    (not served: frozen for
 *                                                       the next owner to copy)
 *   install (n, slots from one previous owner, with their keys)   PULLING -> NOTIFYING
 *   delete  (n, slots the next owner has installed)               GIVING  -> ABSENT
 *   confirm (n, slots whose previous owner has deleted them)      NOTIFYING -> SERVING
 *
 * One configuration at a time (MIT 6.5840 lab 5B): a group applies n+1 only once it has
 * received every slot of n and its handed-over slots have been deleted, so the previous
 * owner of a PULLING slot is always the owner in configuration n - 1, and the copy it
 * holds cannot change (GIVING slots accept no write). Install, delete and confirm that
 * arrive twice, late (for an older configuration) or early are answered without a change:
 * the caller treats CRAFT_OK with *changed false as "already done".
 *
 * Thread: none of its own; a view is a plain value (about 115 KiB: allocate it). */
#ifndef CRAFT_SHARD_VIEW_H
#define CRAFT_SHARD_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/config.h"

enum craft_slot_state {
    CRAFT_SLOT_ABSENT = 0, /* not ours, no data here */
    CRAFT_SLOT_SERVING,    /* ours, served */
    CRAFT_SLOT_PULLING,    /* ours, its data still at the previous owner: not served */
    CRAFT_SLOT_GIVING,     /* the next owner's, its data frozen here until it has a copy */
    CRAFT_SLOT_NOTIFYING,  /* ours, served; the previous owner is still to delete its copy */
    CRAFT_SLOT_STATES
};

/* A set of slots: bit s % 8 of byte s / 8. */
#define CRAFT_SLOT_SET_BYTES (CRAFT_SLOTS / 8u)
struct craft_slot_set {
    uint8_t bits[CRAFT_SLOT_SET_BYTES];
};

static inline bool craft_slot_set_has(const struct craft_slot_set *s, uint16_t slot)
{
    return (s->bits[slot / 8u] >> (slot % 8u)) & 1u;
}

static inline void craft_slot_set_add(struct craft_slot_set *s, uint16_t slot)
{
    s->bits[slot / 8u] = (uint8_t)(s->bits[slot / 8u] | (1u << (slot % 8u)));
}

/* Slots in s. */
uint32_t craft_slot_set_count(const struct craft_slot_set *s);

struct craft_shard_view {
    uint64_t gid; /* this group (!= 0) */
    uint8_t state[CRAFT_SLOTS];
    struct craft_shard_config prev; /* configuration cur.num - 1 (cur itself while cur.num is 0) */
    struct craft_shard_config cur;  /* the configuration applied last (num 0: none yet) */
};

/* Group gid before any configuration: configuration 0, no slot. */
void craft_shard_view_init(struct craft_shard_view *v, uint64_t gid);

/* Whether a slot in state st is served (SERVING or NOTIFYING). */
static inline bool craft_slot_state_served(uint8_t st)
{
    return st == CRAFT_SLOT_SERVING || st == CRAFT_SLOT_NOTIFYING;
}

/* Whether the group serves slot. */
static inline bool craft_shard_view_serves(const struct craft_shard_view *v, uint16_t slot)
{
    return craft_slot_state_served(v->state[slot]);
}

/* Whether every slot is SERVING or ABSENT: the next configuration may be applied. */
bool craft_shard_view_settled(const struct craft_shard_view *v);

/* The slots in state st whose owner in the previous configuration (PULLING, NOTIFYING) or
 * in the current one (GIVING) is group gid; *n (may be NULL) their number. The peer of a
 * migration, for the caller that drives it. */
void craft_shard_view_slots(const struct craft_shard_view *v, uint8_t st, uint64_t gid,
                            struct craft_slot_set *out, uint32_t *n);

/* The transitions (above). Each returns CRAFT_OK, *changed telling whether v changed, or
 * an error with v untouched and err (cap bytes, may be NULL) naming the cause:
 *   config:  CRAFT_EINVAL for an invalid configuration or one that skips a number,
 *            CRAFT_EBUSY while a slot is not settled;
 *   install, delete, confirm: CRAFT_EINVAL for no slot, a slot neither in the state the
 *            step moves from nor past it, pending slots of more than one peer group, or a
 *            configuration not reached yet (a peer never asks before it and we both
 *            applied num).
 * A configuration already applied, or a step for an older configuration, is done already:
 * CRAFT_OK, *changed false. Of a step's slots, those already past it are left as they are
 * and the others move (so a hand-over split into parts may be deleted or confirmed whole). */
enum craft_shard_step {
    CRAFT_SHARD_STEP_INSTALL, /* PULLING -> NOTIFYING */
    CRAFT_SHARD_STEP_DELETE,  /* GIVING -> ABSENT */
    CRAFT_SHARD_STEP_CONFIRM, /* NOTIFYING -> SERVING */
};
/* What a step would do, without doing it: its answer, and *changes whether v would change
 * (the state machine copies its view only then). */
int craft_shard_view_check(const struct craft_shard_view *v, enum craft_shard_step step,
                           uint64_t num, const struct craft_slot_set *slots, bool *changes,
                           char *err, size_t cap);
int craft_shard_view_config(struct craft_shard_view *v, const struct craft_shard_config *next,
                            bool *changed, char *err, size_t cap);
/* The step (its answer as craft_shard_view_check says), done. */
int craft_shard_view_step(struct craft_shard_view *v, enum craft_shard_step step, uint64_t num,
                          const struct craft_slot_set *slots, bool *changed, char *err,
                          size_t cap);

/* Whether v is consistent: states within range and matching the configurations (a slot
 * ours in cur is SERVING, PULLING or NOTIFYING; PULLING and NOTIFYING only if another
 * group owned it in prev; GIVING only if we owned it in prev; every other slot ABSENT),
 * prev.num + 1 == cur.num (both 0 before the first). For assertions and decoders. */
bool craft_shard_view_valid(const struct craft_shard_view *v);

/* The encoding, for the state machine's store and snapshots (little-endian):
 *   u8 version (1) | u64 gid | u32 plen | prev's encoding | u32 clen | cur's encoding |
 *   the states, as runs: u16 n_runs | per run: u16 count (>= 1) | u8 state, the counts
 *   adding up to CRAFT_SLOTS, no two neighbouring runs with one state. */
#define CRAFT_SHARD_VIEW_VERSION 1u
#define CRAFT_SHARD_VIEW_BYTES_MAX \
    (1u + 8u + 2u * (4u + CRAFT_SHARD_CONFIG_BYTES_MAX) + 2u + CRAFT_SLOTS * 3u)
size_t craft_shard_view_size(const struct craft_shard_view *v);
/* Encodes v (valid) into buf (cap >= craft_shard_view_size(v)); returns the bytes written. */
size_t craft_shard_view_encode(const struct craft_shard_view *v, uint8_t *buf, size_t cap);
/* Decodes p[0..len) into *v: CRAFT_OK, CRAFT_EVERSION, or CRAFT_ECORRUPT (truncated,
 * trailing bytes, a bad configuration, a view craft_shard_view_valid refuses, runs not
 * canonical). *v is garbage on error. */
int craft_shard_view_decode(const uint8_t *p, size_t len, struct craft_shard_view *v);

#endif
