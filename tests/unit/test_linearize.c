/* Tests of the linearizability checker (src/sim/linearize.h): hand-made histories with a
 * known answer, random histories built from a sequential execution (linearizable by
 * construction) and the same with one read corrupted, and a 2000-op performance case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prng.h"
#include "sim/linearize.h"

static int n_passed, n_failed;
static bool case_failed;

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            case_failed = true;                                           \
        }                                                                 \
    } while (0)

#define CHECK_SEED(cond, seed)                                                        \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("%s:%d: check failed (seed %llu): %s\n", __FILE__, __LINE__,       \
                   (unsigned long long)(seed), #cond);                                \
            case_failed = true;                                                       \
        }                                                                             \
    } while (0)

static void run_case(const char *name, void (*fn)(void))
{
    case_failed = false;
    fn();
    if (case_failed) {
        printf("FAIL %s\n", name);
        n_failed++;
    } else {
        n_passed++;
    }
}

#define BUDGET 1000000u

/* ---- Hand-made histories. Strings are NUL-terminated literals; lengths from strlen. ---- */

struct hop {
    uint64_t client;
    enum sim_lin_kind kind;
    const char *key, *value; /* value: input of put/append, output of get */
    uint64_t call, ret;
};

static enum sim_lin_verdict check_hops(const struct hop *h, size_t n, struct sim_lin_result *res,
                                       char *desc, size_t desc_cap)
{
    struct sim_lin_op *ops = calloc(n > 0 ? n : 1, sizeof *ops);
    for (size_t i = 0; i < n; i++) {
        ops[i] = (struct sim_lin_op){
            .client = h[i].client,
            .kind = (uint8_t)h[i].kind,
            .key = (const uint8_t *)h[i].key,
            .key_len = strlen(h[i].key),
            .call = h[i].call,
            .ret = h[i].ret,
        };
        const uint8_t *v = (const uint8_t *)h[i].value;
        size_t len = strlen(h[i].value);
        if (h[i].kind == SIM_LIN_GET) {
            ops[i].output = v;
            ops[i].output_len = len;
        } else {
            ops[i].input = v;
            ops[i].input_len = len;
        }
    }
    memset(res, 0, sizeof *res);
    res->desc = desc;
    res->desc_cap = desc_cap;
    enum sim_lin_verdict v = sim_linearize_check(ops, n, BUDGET, res);
    free(ops);
    return v;
}

static enum sim_lin_verdict verdict_of(const struct hop *h, size_t n)
{
    struct sim_lin_result res;
    char desc[2048];
    return check_hops(h, n, &res, desc, sizeof desc);
}

#define G SIM_LIN_GET
#define P SIM_LIN_PUT
#define A SIM_LIN_APPEND
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_empty(void)
{
    struct sim_lin_result res = {0};
    CHECK(sim_linearize_check(NULL, 0, BUDGET, &res) == SIM_LIN_OK);
    CHECK(res.n_keys == 0);
    static const struct hop h[] = {{1, G, "k", "", 0, 1}};
    CHECK(verdict_of(h, N(h)) == SIM_LIN_OK); /* the initial state is "" */
}

static void test_sequential(void)
{
    static const struct hop h[] = {
        {1, P, "k", "a", 0, 10},
        {1, G, "k", "a", 20, 30},
        {2, A, "k", "b", 40, 50},
        {2, G, "k", "ab", 60, 70},
    };
    CHECK(verdict_of(h, N(h)) == SIM_LIN_OK);
}

static void test_stale_read(void)
{
    /* The second write completed before the read began: reading the first is stale. */
    static const struct hop h[] = {
        {1, P, "x", "a", 0, 10},
        {1, P, "x", "b", 20, 30},
        {2, G, "x", "a", 40, 50},
    };
    struct sim_lin_result res;
    char desc[2048];
    CHECK(check_hops(h, N(h), &res, desc, sizeof desc) == SIM_LIN_ILLEGAL);
    CHECK(res.verdict == SIM_LIN_ILLEGAL);
    CHECK(res.bad_key_ops == 3);
    CHECK(res.bad_key_linearized == 2);
    CHECK(strstr(desc, "key 'x'") != NULL);
    CHECK(strstr(desc, "get('x') -> 'a' [40, 50]") != NULL);
    /* A read concurrent with the second write may still see the first. */
    static const struct hop ok[] = {
        {1, P, "x", "a", 0, 10},
        {1, P, "x", "b", 20, 30},
        {2, G, "x", "a", 25, 50},
    };
    CHECK(verdict_of(ok, N(ok)) == SIM_LIN_OK);
}

static void test_concurrent_writes(void)
{
    /* Two concurrent puts; reads during them may see either order, once. */
    static const struct hop during[] = {
        {1, P, "k", "a", 0, 100},
        {2, P, "k", "b", 0, 100},
        {3, G, "k", "a", 10, 20},
        {3, G, "k", "b", 30, 40},
    };
    CHECK(verdict_of(during, N(during)) == SIM_LIN_OK);
    /* After both completed the value is fixed: seeing both orders is illegal. */
    static const struct hop after[] = {
        {1, P, "k", "a", 0, 100},
        {2, P, "k", "b", 0, 100},
        {3, G, "k", "a", 110, 120},
        {4, G, "k", "b", 110, 120},
    };
    CHECK(verdict_of(after, N(after)) == SIM_LIN_ILLEGAL);
    /* Flip-flopping during the writes: a, b, a needs a third write. */
    static const struct hop flip[] = {
        {1, P, "k", "a", 0, 100},
        {2, P, "k", "b", 0, 100},
        {3, G, "k", "a", 10, 20},
        {3, G, "k", "b", 30, 40},
        {3, G, "k", "a", 50, 60},
    };
    CHECK(verdict_of(flip, N(flip)) == SIM_LIN_ILLEGAL);
}

static void test_never_written(void)
{
    static const struct hop h[] = {
        {1, P, "k", "a", 0, 10},
        {2, G, "k", "z", 5, 15},
    };
    CHECK(verdict_of(h, N(h)) == SIM_LIN_ILLEGAL);
}

static void test_append(void)
{
    static const struct hop ok[] = {
        {1, A, "k", "x", 0, 10},
        {2, A, "k", "y", 5, 15},
        {3, G, "k", "yx", 20, 30},
    };
    CHECK(verdict_of(ok, N(ok)) == SIM_LIN_OK);
    static const struct hop bad[] = {
        {1, A, "k", "x", 0, 10},
        {2, A, "k", "y", 5, 15},
        {3, G, "k", "xyx", 20, 30},
    };
    CHECK(verdict_of(bad, N(bad)) == SIM_LIN_ILLEGAL);
    /* A read concurrent with an append sees before or after, never half. */
    static const struct hop mid[] = {
        {1, A, "k", "ab", 0, 10},
        {2, A, "k", "cd", 20, 40},
        {3, G, "k", "abc", 25, 30},
    };
    CHECK(verdict_of(mid, N(mid)) == SIM_LIN_ILLEGAL);
}

static void test_equal_times(void)
{
    /* Calls sort before returns at equal times: a read called when the write returns is
     * concurrent with it, so it may still see the old value. */
    static const struct hop h[] = {
        {1, P, "k", "a", 0, 10},
        {2, G, "k", "", 10, 20},
    };
    CHECK(verdict_of(h, N(h)) == SIM_LIN_OK);
    static const struct hop later[] = {
        {1, P, "k", "a", 0, 10},
        {2, G, "k", "", 11, 20},
    };
    CHECK(verdict_of(later, N(later)) == SIM_LIN_ILLEGAL);
}

static void test_keys(void)
{
    /* Keys are independent: "a" and "b" each fine. */
    static const struct hop ok[] = {
        {1, P, "a", "1", 0, 10},
        {2, P, "b", "2", 0, 10},
        {1, G, "a", "1", 20, 30},
        {2, G, "b", "2", 20, 30},
        {3, G, "ab", "", 20, 30},
    };
    struct sim_lin_result res;
    char desc[2048];
    CHECK(check_hops(ok, N(ok), &res, desc, sizeof desc) == SIM_LIN_OK);
    CHECK(res.n_keys == 3 && res.n_keys_checked == 3);
    /* Two failing keys: the smaller sub-history is the one described. */
    static const struct hop bad[] = {
        {1, P, "big", "1", 0, 10},
        {1, P, "big", "2", 20, 30},
        {1, P, "big", "3", 40, 50},
        {2, G, "big", "1", 60, 70},
        {3, P, "small", "x", 0, 10},
        {3, G, "small", "y", 20, 30},
        {4, P, "fine", "f", 0, 10},
    };
    CHECK(check_hops(bad, N(bad), &res, desc, sizeof desc) == SIM_LIN_ILLEGAL);
    CHECK(res.bad_key_ops == 2);
    CHECK(strstr(desc, "key 'small'") != NULL);
    CHECK(strstr(desc, "'big'") == NULL);
}

static void test_desc_buffer(void)
{
    static const struct hop bad[] = {
        {1, P, "k", "a\n\x01", 0, 10},
        {2, G, "k", "zz", 20, 30},
    };
    struct sim_lin_result res;
    char small[16];
    CHECK(check_hops(bad, N(bad), &res, small, sizeof small) == SIM_LIN_ILLEGAL);
    CHECK(strlen(small) == sizeof small - 1); /* cut short, still terminated */
    char desc[1024];
    CHECK(check_hops(bad, N(bad), &res, desc, sizeof desc) == SIM_LIN_ILLEGAL);
    CHECK(strstr(desc, "put('k', 'a\\x0a\\x01')") != NULL);
    CHECK(check_hops(bad, N(bad), &res, NULL, 0) == SIM_LIN_ILLEGAL);
}

static void test_budget(void)
{
    /* Many concurrent writes and an impossible read: the search needs many steps. */
    struct hop h[14];
    static const char *const vals[] = {"0", "1", "2", "3", "4", "5", "6",
                                       "7", "8", "9", "10", "11", "12"};
    for (int i = 0; i < 13; i++) {
        h[i] = (struct hop){(uint64_t)i, A, "k", vals[i], 0, 100};
    }
    h[13] = (struct hop){99, G, "k", "nope", 0, 100};
    struct sim_lin_op ops[14];
    for (int i = 0; i < 14; i++) {
        ops[i] = (struct sim_lin_op){.client = h[i].client, .kind = (uint8_t)h[i].kind,
                                     .key = (const uint8_t *)"k", .key_len = 1,
                                     .call = h[i].call, .ret = h[i].ret};
        const uint8_t *v = (const uint8_t *)h[i].value;
        if (h[i].kind == SIM_LIN_GET) {
            ops[i].output = v;
            ops[i].output_len = strlen(h[i].value);
        } else {
            ops[i].input = v;
            ops[i].input_len = strlen(h[i].value);
        }
    }
    struct sim_lin_result res = {0};
    CHECK(sim_linearize_check(ops, 14, 1000, &res) == SIM_LIN_UNKNOWN);
    CHECK(res.steps == 1000);
}

/* ---- Random histories from a sequential execution. ---- */

struct gen {
    struct sim_lin_op *ops;
    size_t n;
    uint8_t *bytes; /* values and outputs live here */
    size_t used, cap;
    char *states[4]; /* per key, the current value (NUL-free bytes; we use letters) */
    size_t lens[4];
};

static const uint8_t *gen_store(struct gen *g, const char *p, size_t len)
{
    if (g->used + len > g->cap) {
        abort(); /* sized up front */
    }
    uint8_t *dst = g->bytes + g->used;
    memcpy(dst, p, len);
    g->used += len;
    return dst;
}

static const char *const key_names[4] = {"k0", "k1", "k2", "k3"};

/* n ops by n_clients clients over n_keys keys: op i takes effect at time 10 * i + 5 inside
 * an interval of its client's; outputs come from running the ops in that order. */
static void gen_history(struct gen *g, uint64_t seed, size_t n, uint32_t n_clients,
                        uint32_t n_keys, uint32_t width_max)
{
    struct craft_prng prng;
    craft_prng_seed(&prng, seed);
    memset(g, 0, sizeof *g);
    g->ops = calloc(n, sizeof *g->ops);
    g->cap = n * (64 + 8) + 1024;
    g->bytes = malloc(g->cap);
    char *states[4];
    size_t lens[4] = {0};
    size_t state_cap = n * 4 + 16;
    for (uint32_t k = 0; k < 4; k++) {
        states[k] = malloc(state_cap);
    }
    uint64_t last_ret[16] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t point = 10 * (uint64_t)i + 5;
        /* A client free at the point; if none is, the op goes to the one free soonest and
         * the point moves (still increasing, so the order stays the execution order). */
        uint32_t c = (uint32_t)craft_prng_range(&prng, 0, n_clients);
        for (uint32_t t = 0; t < n_clients && last_ret[c] >= point; t++) {
            c = (c + 1) % n_clients;
        }
        if (last_ret[c] >= point) {
            abort(); /* the generator keeps widths small enough for this not to happen */
        }
        uint64_t lo = last_ret[c] + 1;
        uint64_t call_min = point > width_max ? point - width_max : 0;
        if (call_min < lo) {
            call_min = lo;
        }
        uint64_t call = craft_prng_range(&prng, call_min, point + 1);
        uint64_t ret = point + craft_prng_range(&prng, 0, width_max + 1);
        last_ret[c] = ret;
        uint32_t k = (uint32_t)craft_prng_range(&prng, 0, n_keys);
        struct sim_lin_op *op = &g->ops[i];
        *op = (struct sim_lin_op){.client = c, .key = (const uint8_t *)key_names[k],
                                  .key_len = 2, .call = call, .ret = ret};
        uint64_t r = craft_prng_range(&prng, 0, 10);
        char val[4];
        size_t vlen = 1 + (size_t)craft_prng_range(&prng, 0, 3);
        for (size_t j = 0; j < vlen; j++) {
            val[j] = (char)('a' + craft_prng_range(&prng, 0, 26));
        }
        if (r < 4) {
            op->kind = SIM_LIN_GET;
            op->output = gen_store(g, states[k], lens[k]);
            op->output_len = lens[k];
        } else if (r < 6) {
            op->kind = SIM_LIN_PUT;
            op->input = gen_store(g, val, vlen);
            op->input_len = vlen;
            memcpy(states[k], val, vlen);
            lens[k] = vlen;
        } else {
            op->kind = SIM_LIN_APPEND;
            op->input = gen_store(g, val, vlen);
            op->input_len = vlen;
            if (lens[k] + vlen > 60) {
                /* Keep states short so the store above stays sized; a put resets. */
                op->kind = SIM_LIN_PUT;
                memcpy(states[k], val, vlen);
                lens[k] = vlen;
            } else {
                memcpy(states[k] + lens[k], val, vlen);
                lens[k] += vlen;
            }
        }
    }
    for (uint32_t k = 0; k < 4; k++) {
        free(states[k]);
    }
    /* The checker must not depend on the order of the array. */
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)craft_prng_range(&prng, 0, i);
        struct sim_lin_op t = g->ops[i - 1];
        g->ops[i - 1] = g->ops[j];
        g->ops[j] = t;
    }
    g->n = n;
}

static void gen_free(struct gen *g)
{
    free(g->ops);
    free(g->bytes);
}

static const uint64_t seeds[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 42, 1234, 99991, 31337};

static void test_random_linearizable(void)
{
    for (size_t s = 0; s < N(seeds); s++) {
        struct gen g;
        gen_history(&g, seeds[s], 200, 4, 3, 30);
        struct sim_lin_result res = {0};
        enum sim_lin_verdict v = sim_linearize_check(g.ops, g.n, BUDGET, &res);
        CHECK_SEED(v == SIM_LIN_OK, seeds[s]);
        gen_free(&g);
    }
}

/* One read corrupted with a byte never written ('!'): always illegal. */
static void test_random_mutated(void)
{
    for (size_t s = 0; s < N(seeds); s++) {
        struct gen g;
        gen_history(&g, seeds[s], 200, 4, 3, 30);
        struct craft_prng prng;
        craft_prng_seed(&prng, seeds[s] ^ 0xabcdef);
        size_t start = (size_t)craft_prng_range(&prng, 0, g.n), victim = g.n;
        for (size_t t = 0; t < g.n; t++) {
            size_t i = (start + t) % g.n;
            if (g.ops[i].kind == SIM_LIN_GET) {
                victim = i;
                break;
            }
        }
        CHECK_SEED(victim < g.n, seeds[s]);
        if (victim == g.n) {
            gen_free(&g);
            continue;
        }
        uint8_t *bad = malloc(g.ops[victim].output_len + 1);
        memcpy(bad, g.ops[victim].output, g.ops[victim].output_len);
        bad[g.ops[victim].output_len] = '!';
        g.ops[victim].output = bad;
        g.ops[victim].output_len++;
        char desc[4096];
        struct sim_lin_result res = {.desc = desc, .desc_cap = sizeof desc};
        enum sim_lin_verdict v = sim_linearize_check(g.ops, g.n, BUDGET, &res);
        CHECK_SEED(v == SIM_LIN_ILLEGAL, seeds[s]);
        CHECK_SEED(strstr(desc, "!'") != NULL, seeds[s]); /* the bad read is named */
        free(bad);
        gen_free(&g);
    }
}

/* One read made to return another value of the same key that was real at some time (a
 * stale or future read): usually illegal, never a crash, and a verdict within budget. */
static void test_random_stale(void)
{
    int illegal = 0, total = 0;
    for (size_t s = 0; s < N(seeds); s++) {
        struct gen g;
        gen_history(&g, seeds[s], 200, 4, 1, 30);
        struct craft_prng prng;
        craft_prng_seed(&prng, seeds[s] ^ 0x5eed);
        /* Pick two gets with different outputs; give the first the second's output. */
        size_t a = g.n, b = g.n;
        size_t start = (size_t)craft_prng_range(&prng, 0, g.n);
        for (size_t t = 0; t < g.n && b == g.n; t++) {
            size_t i = (start + t) % g.n;
            if (g.ops[i].kind != SIM_LIN_GET) {
                continue;
            }
            if (a == g.n) {
                a = i;
            } else if (g.ops[i].output_len != g.ops[a].output_len ||
                       memcmp(g.ops[i].output, g.ops[a].output, g.ops[a].output_len) != 0) {
                uint64_t da = g.ops[i].call > g.ops[a].ret ? g.ops[i].call - g.ops[a].ret : 0;
                uint64_t db = g.ops[a].call > g.ops[i].ret ? g.ops[a].call - g.ops[i].ret : 0;
                if (da > 200 || db > 200) {
                    b = i; /* far apart in time: the value is surely out of place */
                }
            }
        }
        if (b == g.n) {
            gen_free(&g);
            continue;
        }
        g.ops[a].output = g.ops[b].output;
        g.ops[a].output_len = g.ops[b].output_len;
        struct sim_lin_result res = {0};
        enum sim_lin_verdict v = sim_linearize_check(g.ops, g.n, BUDGET, &res);
        CHECK_SEED(v != SIM_LIN_UNKNOWN, seeds[s]);
        total++;
        illegal += v == SIM_LIN_ILLEGAL;
        gen_free(&g);
    }
    CHECK(total >= (int)N(seeds) / 2);
    CHECK(illegal * 10 >= total * 8);
}

/* 2000 ops on one key by 5 concurrent clients: linearizable, well within the budget. */
static void test_performance(void)
{
    static const uint64_t perf_seeds[] = {7, 8, 9};
    for (size_t s = 0; s < N(perf_seeds); s++) {
        struct gen g;
        gen_history(&g, perf_seeds[s], 2000, 5, 1, 40);
        struct sim_lin_result res = {0};
        enum sim_lin_verdict v = sim_linearize_check(g.ops, g.n, BUDGET, &res);
        CHECK_SEED(v == SIM_LIN_OK, perf_seeds[s]);
        CHECK_SEED(res.steps < BUDGET / 10, perf_seeds[s]);
        /* Corrupt the last read: the search must still finish within the budget. */
        size_t last = g.n;
        uint64_t last_call = 0;
        for (size_t i = 0; i < g.n; i++) {
            if (g.ops[i].kind == SIM_LIN_GET && g.ops[i].call >= last_call) {
                last = i;
                last_call = g.ops[i].call;
            }
        }
        CHECK_SEED(last < g.n, perf_seeds[s]);
        if (last < g.n) {
            static const uint8_t bang[] = "!";
            g.ops[last].output = bang;
            g.ops[last].output_len = 1;
            v = sim_linearize_check(g.ops, g.n, BUDGET, &res);
            CHECK_SEED(v == SIM_LIN_ILLEGAL, perf_seeds[s]);
        }
        gen_free(&g);
    }
}

int main(void)
{
    run_case("empty", test_empty);
    run_case("sequential", test_sequential);
    run_case("stale_read", test_stale_read);
    run_case("concurrent_writes", test_concurrent_writes);
    run_case("never_written", test_never_written);
    run_case("append", test_append);
    run_case("equal_times", test_equal_times);
    run_case("keys", test_keys);
    run_case("desc_buffer", test_desc_buffer);
    run_case("budget", test_budget);
    run_case("random_linearizable", test_random_linearizable);
    run_case("random_mutated", test_random_mutated);
    run_case("random_stale", test_random_stale);
    run_case("performance", test_performance);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}
