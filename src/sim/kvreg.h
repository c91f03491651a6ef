/* The key/value register state machine of the read scenarios: a map from short keys to
 * byte-string values per node, applied from the log next to the MIT applier (opts.kv).
 *
 * Commands are encoded ops (sim_kv_encode): {client id, op id, kind put/append, key,
 * value}. Every NORMAL entry of a kv cluster must be one. Reads never go through the log:
 * the read scenarios (reads.h) serve them from a node's map through the core's read paths.
 *
 * Snapshots (opts.snapshot) serialize the map together with the MIT applier's command
 * list (log index of each command), so a node that ingests one keeps counting commands
 * the way the checkers expect. The configuration travels in the snapshot metadata (node.c
 * records the applied configuration there), not in the blob. Ingesting checks that the
 * snapshot's map equals the replay of the commands the cluster committed. */
#ifndef CRAFT_SIM_KVREG_H
#define CRAFT_SIM_KVREG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define SIM_KV_KEY_MAX 15     /* bytes in a key */
#define SIM_KV_VALUE_MAX 255  /* bytes in one op's value (a value in the map may be longer) */

struct sim_node;
struct sim_kv;

/* One write. kind is SIM_LIN_PUT or SIM_LIN_APPEND (src/sim/linearize.h). value is
 * borrowed (by sim_kv_decode: points into the decoded bytes). */
struct sim_kv_op {
    uint64_t client;
    uint64_t op;
    uint8_t kind;
    uint8_t key_len;
    char key[SIM_KV_KEY_MAX + 1]; /* NUL-terminated */
    const uint8_t *value;
    uint32_t value_len;
};

/* Encodes op into buf (at most SIM_KV_OP_BYTES_MAX bytes). Returns the length. Asserts
 * that key and value fit. */
#define SIM_KV_OP_BYTES_MAX (1 + 8 + 8 + 1 + 1 + SIM_KV_KEY_MAX + 4 + SIM_KV_VALUE_MAX)
size_t sim_kv_encode(const struct sim_kv_op *op, uint8_t *buf, size_t cap);
/* Decodes bytes into *op (op->value then points into bytes). Returns false if bytes are not
 * a well-formed op. */
bool sim_kv_decode(const uint8_t *bytes, size_t len, struct sim_kv_op *op);

/* The map alone (used by the nodes and by checks). Aborts on out of memory. */
struct sim_kv *sim_kv_create(void);
void sim_kv_destroy(struct sim_kv *kv);
void sim_kv_clear(struct sim_kv *kv);
void sim_kv_apply(struct sim_kv *kv, const struct sim_kv_op *op);
/* The value of key (empty if absent: the model's initial state); borrowed until the next
 * change of kv. *len is set; the result may be NULL when *len is 0. */
const uint8_t *sim_kv_get(const struct sim_kv *kv, const char *key, size_t key_len, size_t *len);
/* The highest log index reflected in the map (node maps only). */
uint64_t sim_kv_applied(const struct sim_kv *kv);
bool sim_kv_equal(const struct sim_kv *a, const struct sim_kv *b);

/* ---- node glue (called from node.c when opts.kv) ---- */
/* The node (re)starts: an empty map at index 0 (before any snapshot is ingested). */
void sim_kv_node_start(struct sim_node *node);
/* The node applied entry e (any type; node->last_applied is already e->index): NORMAL
 * entries must be ops and change the map; then the client histories hear of it
 * (reads.c). Fails the run on a NORMAL entry that is not an op. */
void sim_kv_node_apply(struct sim_node *node, const struct craft_entry *e);
/* Serializes node's state through index (its last applied index) for a snapshot. The
 * bytes are owned by node's map and valid until its next call. */
const uint8_t *sim_kv_node_snapshot(struct sim_node *node, uint64_t index, size_t *len);
/* Replaces node's map, command list and applied index with the snapshot's (config.go's
 * ingestSnap); fails the run on a blob that does not decode, does not match index, or
 * whose map differs from the replay of the committed commands it lists. */
void sim_kv_node_ingest(struct sim_node *node, const uint8_t *blob, size_t len, uint64_t index);
void sim_kv_node_free(struct sim_node *node);

#endif
