/* A byte per slot, encoded as runs: u16 n_runs | per run: u16 count (>= 1) | u8 value, the
 * counts adding up to CRAFT_SLOTS and no two neighbouring runs with one value, so each
 * table has one encoding (little-endian). Slot owners (config_codec.c) and slot states
 * (view.c) use it: both change in long ranges, so a table is a few runs, not 16 KiB.
 * Pure functions; any thread. */
#ifndef CRAFT_SHARD_RUNS_H
#define CRAFT_SHARD_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "base/bytes.h"
#include "shard/slots.h"

/* The largest encoding: every slot its own run. */
#define CRAFT_SLOT_RUNS_BYTES_MAX (2u + CRAFT_SLOTS * 3u)

/* The encoded size of t[0..CRAFT_SLOTS). */
size_t craft_slot_runs_size(const uint8_t *t);
/* Encodes t into p (room for craft_slot_runs_size(t)); returns the bytes written. */
size_t craft_slot_runs_encode(const uint8_t *t, uint8_t *p);
/* Decodes runs from r into t[0..CRAFT_SLOTS): CRAFT_OK, or CRAFT_ECORRUPT (truncated, an
 * empty run, counts past or short of CRAFT_SLOTS, two neighbouring runs with one value).
 * Values are not checked: the caller does. */
int craft_slot_runs_decode(struct craft_reader *r, uint8_t *t);

#endif
