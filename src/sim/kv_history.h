/* The history of a key/value service's client operations on the simulator (call and return
 * in virtual ms, what went in and what came out), checked by the linearizability checker
 * (linearize.h). Shared by the kvraft service and the shard groups. */
#ifndef CRAFT_SIM_KV_HISTORY_H
#define CRAFT_SIM_KV_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "sim/cluster.h"

struct sim_kv_history;

struct sim_kv_history *sim_kv_history_new(void);
void sim_kv_history_free(struct sim_kv_history *h);
/* A completed op (kind: enum sim_lin_kind): a get's output, a put's or append's input. */
void sim_kv_history_add(struct sim_kv_history *h, uint64_t client, uint8_t kind, const char *key,
                        const char *input, size_t input_len, const char *output,
                        size_t output_len, uint64_t call, uint64_t ret);
size_t sim_kv_history_len(const struct sim_kv_history *h);
/* Runs the checker with budget_steps: fails the run on ILLEGAL; UNKNOWN passes with a note
 * (porcupine's timeout in the Go tests). */
void sim_kv_history_check(struct sim_kv_history *h, struct sim_cluster *c, uint64_t budget_steps);

#endif
