/* Client histories of key/value services (kv_history.h). */
#include "sim/kv_history.h"

#include <stdlib.h>
#include <string.h>

#include "sim/linearize.h"
#include "sim/sim_internal.h"

struct hist_op {
    uint64_t client;
    uint8_t kind;
    char *key, *input, *output;
    size_t input_len, output_len;
    uint64_t call, ret;
};

struct sim_kv_history {
    struct hist_op *ops;
    size_t n, cap;
};

static char *dup_bytes(const char *s, size_t n)
{
    char *p = sim_xrealloc(NULL, n + 1);
    if (n > 0) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

struct sim_kv_history *sim_kv_history_new(void)
{
    struct sim_kv_history *h = sim_xrealloc(NULL, sizeof *h);
    *h = (struct sim_kv_history){0};
    return h;
}

void sim_kv_history_free(struct sim_kv_history *h)
{
    for (size_t k = 0; k < h->n; k++) {
        free(h->ops[k].key);
        free(h->ops[k].input);
        free(h->ops[k].output);
    }
    free(h->ops);
    free(h);
}

void sim_kv_history_add(struct sim_kv_history *h, uint64_t client, uint8_t kind, const char *key,
                        const char *input, size_t input_len, const char *output,
                        size_t output_len, uint64_t call, uint64_t ret)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->ops = sim_xrealloc(h->ops, h->cap * sizeof *h->ops);
    }
    struct hist_op *o = &h->ops[h->n++];
    *o = (struct hist_op){.client = client, .kind = kind, .call = call, .ret = ret};
    o->key = dup_bytes(key, strlen(key));
    if (kind == SIM_LIN_GET) {
        o->output = dup_bytes(output, output_len);
        o->output_len = output_len;
    } else {
        o->input = dup_bytes(input, input_len);
        o->input_len = input_len;
    }
}

size_t sim_kv_history_len(const struct sim_kv_history *h)
{
    return h->n;
}

void sim_kv_history_check(struct sim_kv_history *h, struct sim_cluster *c, uint64_t budget_steps)
{
    struct sim_lin_op *ops = sim_xrealloc(NULL, (h->n ? h->n : 1) * sizeof *ops);
    for (size_t k = 0; k < h->n; k++) {
        const struct hist_op *o = &h->ops[k];
        ops[k] = (struct sim_lin_op){
            .client = o->client, .kind = o->kind, .key = (const uint8_t *)o->key,
            .key_len = strlen(o->key), .input = (const uint8_t *)o->input,
            .input_len = o->input_len, .output = (const uint8_t *)o->output,
            .output_len = o->output_len, .call = o->call, .ret = o->ret};
    }
    static char desc[4096];
    struct sim_lin_result res = {.desc = desc, .desc_cap = sizeof desc};
    enum sim_lin_verdict v = sim_linearize_check(ops, h->n, budget_steps, &res);
    free(ops);
    sim_note(c, "linearizability: %s (%zu ops, %llu steps, %zu keys)", sim_lin_verdict_name(v),
             h->n, (unsigned long long)res.steps, res.n_keys);
    if (v == SIM_LIN_ILLEGAL) {
        sim_fail(c, "history is not linearizable: %s", desc);
    }
    if (v == SIM_LIN_UNKNOWN) {
        sim_note(c, "info: linearizability check timed out, assuming history is ok");
    }
}
