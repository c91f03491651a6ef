/* Linearizability checker for key/value client histories (the simulator's last invariant).
 *
 * The algorithm is Porcupine's, as the MIT 6.5840 labs use it: the Wing-Gong search with
 * Lowe's memoization. The history is split by key (a history is linearizable iff each key's
 * sub-history is); each sub-history becomes a list of call and return events sorted by time,
 * calls before returns at equal times; the search repeatedly linearizes the earliest pending
 * call the model allows, skips configurations (set of linearized ops, model state) it has
 * already seen, and backtracks when it reaches a return whose operation is not linearized.
 *
 * The model is a string per key, initially empty: get is legal iff its output equals the
 * state; put sets the state to its input; append concatenates its input. The outputs of put
 * and append are ignored.
 *
 * Everything is single-threaded and deterministic; the step budget (not a clock) bounds
 * the search, so a verdict never depends on the machine. */
#ifndef CRAFT_SIM_LINEARIZE_H
#define CRAFT_SIM_LINEARIZE_H

#include <stddef.h>
#include <stdint.h>

enum sim_lin_kind {
    SIM_LIN_GET = 0,
    SIM_LIN_PUT = 1,
    SIM_LIN_APPEND = 2,
};

/* One completed client operation. Byte strings may contain any byte; a pointer may be NULL
 * when its length is 0. call <= ret (virtual time, any unit, the same for every op). */
struct sim_lin_op {
    uint64_t client;
    uint8_t kind; /* enum sim_lin_kind */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *input; /* put/append value */
    size_t input_len;
    const uint8_t *output; /* get result */
    size_t output_len;
    uint64_t call, ret;
};

enum sim_lin_verdict {
    SIM_LIN_OK = 0,   /* linearizable */
    SIM_LIN_ILLEGAL,  /* some key's sub-history is not linearizable */
    SIM_LIN_UNKNOWN,  /* the step budget ran out (or memory did) before a verdict */
};

const char *sim_lin_verdict_name(enum sim_lin_verdict v);

struct sim_lin_result {
    /* Set by the caller before the call: where the description of a failure goes (may be
     * NULL / 0). Always NUL-terminated when desc_cap > 0; cut short if it does not fit. */
    char *desc;
    size_t desc_cap;

    /* Set by sim_linearize_check. */
    enum sim_lin_verdict verdict;
    uint64_t steps;       /* search steps spent, at most the budget */
    size_t n_keys;        /* partitions in the history */
    size_t n_keys_checked;
    /* SIM_LIN_ILLEGAL: the smallest failing key's sub-history (fewest ops) and the longest
     * linearization the search found for it. */
    size_t bad_key_ops;
    size_t bad_key_linearized;
    int err; /* CRAFT_OK, or CRAFT_ENOMEM (verdict is then SIM_LIN_UNKNOWN) */
};

/* Checks ops[0..n) against the key/value model. Keys are checked from the smallest
 * sub-history up, so the first failure found is the smallest failing key; its description
 * (the ops in the longest linearization found, then the ops that could not follow them)
 * goes to out->desc. budget_steps bounds the total search steps over all keys (a step is one
 * move of the search: a try, a lift or a backtrack). ops and what they point to are only
 * read and may be freed after the call. Asserts call <= ret and a known kind for every op.
 * Returns out->verdict. */
enum sim_lin_verdict sim_linearize_check(const struct sim_lin_op *ops, size_t n,
                                         uint64_t budget_steps, struct sim_lin_result *out);

#endif
