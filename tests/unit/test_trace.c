/* Unit tests of src/base/trace.c: topic list parsing and the exact line format, which
 * craft-log and anyone grepping a trace depend on. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prng.h"
#include "base/trace.h"

static int case_failed; /* checks failed in the running case */
static uint64_t case_seed;
static bool case_random;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            case_failed++;                                                                         \
            if (case_random) {                                                                     \
                printf("%s:%d: check failed: %s (seed %" PRIu64 ")\n", __FILE__, __LINE__, #cond,  \
                       case_seed);                                                                 \
            } else {                                                                               \
                printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                    \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define ALL_TOPICS ((1u << CRAFT_T_COUNT_) - 1)

/* ---- a sink that keeps the lines ---- */

enum { SINK_LINES_MAX = 8, SINK_LINE_BYTES = 2048 };

struct sink {
    int n_lines;
    char lines[SINK_LINES_MAX][SINK_LINE_BYTES];
};

static void sink_collect(void *ctx, const char *line)
{
    struct sink *s = ctx;
    if (s->n_lines < SINK_LINES_MAX) {
        snprintf(s->lines[s->n_lines], SINK_LINE_BYTES, "%s", line);
    }
    s->n_lines++;
}

/* ---- craft_trace_parse ---- */

static void test_parse_empty(void)
{
    CHECK(craft_trace_parse(NULL) == 0);
    CHECK(craft_trace_parse("") == 0);
    CHECK(craft_trace_parse(",") == 0);
    CHECK(craft_trace_parse(",,,") == 0);
}

static void test_parse_names(void)
{
    CHECK(craft_trace_parse("ELECT") == 1u << CRAFT_T_ELECT);
    CHECK(craft_trace_parse("ELECT,VOTE") == ((1u << CRAFT_T_ELECT) | (1u << CRAFT_T_VOTE)));
    CHECK(craft_trace_parse("vote,Net") == ((1u << CRAFT_T_VOTE) | (1u << CRAFT_T_NET)));
    CHECK(craft_trace_parse("TEST,") == 1u << CRAFT_T_TEST);
    CHECK(craft_trace_parse(",PERSIST") == 1u << CRAFT_T_PERSIST);
    CHECK(craft_trace_parse("ELECT,ELECT") == 1u << CRAFT_T_ELECT);
    for (int t = 0; t < CRAFT_T_COUNT_; t++) {
        CHECK(craft_trace_parse(craft_topic_name((enum craft_topic)t)) == 1u << t);
    }
}

static void test_parse_unknown_ignored(void)
{
    CHECK(craft_trace_parse("BOGUS") == 0);
    CHECK(craft_trace_parse("BOGUS,SNAP") == 1u << CRAFT_T_SNAP);
    /* Prefixes and extensions of a name are different names. */
    CHECK(craft_trace_parse("ELEC") == 0);
    CHECK(craft_trace_parse("ELECTX") == 0);
    CHECK(craft_trace_parse(" ELECT") == 0);
}

static void test_parse_all(void)
{
    CHECK(craft_trace_parse("all") == ALL_TOPICS);
    CHECK(craft_trace_parse("NET,all") == ALL_TOPICS);
    CHECK(craft_trace_parse("all,NET") == ALL_TOPICS);
    CHECK(craft_trace_parse("alll") == 0);
}

/* Random lists of names, with duplicates, mixed case, unknown names and empty items,
 * against the mask computed by hand. */
static void test_parse_random(void)
{
    static const uint64_t seeds[] = {1, 2, 3, 42, 1000, 0xdeadbeef};
    case_random = true;
    for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
        case_seed = seeds[si];
        struct craft_prng prng;
        craft_prng_seed(&prng, case_seed);
        for (int iter = 0; iter < 500; iter++) {
            char spec[512] = "";
            size_t len = 0;
            uint32_t expected = 0;
            int n_items = (int)craft_prng_range(&prng, 0, 8);
            for (int i = 0; i < n_items; i++) {
                char item[32];
                uint64_t kind = craft_prng_range(&prng, 0, 10);
                if (kind == 0) {
                    snprintf(item, sizeof item, "NOPE%d", i);
                } else if (kind == 1) {
                    item[0] = '\0';
                } else {
                    int t = (int)craft_prng_range(&prng, 0, CRAFT_T_COUNT_);
                    snprintf(item, sizeof item, "%s", craft_topic_name((enum craft_topic)t));
                    if (craft_prng_chance(&prng, 300)) {
                        item[0] = (char)(item[0] - 'A' + 'a');
                    }
                    expected |= 1u << t;
                }
                len += (size_t)snprintf(spec + len, sizeof spec - len, "%s%s", i ? "," : "", item);
            }
            int failed_before = case_failed;
            CHECK(len < sizeof spec);
            CHECK(craft_trace_parse(spec) == expected);
            if (case_failed != failed_before) {
                break; /* one failure per seed is enough to replay it */
            }
        }
    }
    case_random = false;
}

/* ---- topic names ---- */

static void test_topic_names(void)
{
    for (int t = 0; t < CRAFT_T_COUNT_; t++) {
        const char *name = craft_topic_name((enum craft_topic)t);
        CHECK(name != NULL && name[0] != '\0');
        /* craft-log recognises topics as upper-case words. */
        for (const char *p = name; *p != '\0'; p++) {
            CHECK(*p >= 'A' && *p <= 'Z');
        }
        for (int u = 0; u < t; u++) {
            CHECK(strcmp(name, craft_topic_name((enum craft_topic)u)) != 0);
        }
    }
    CHECK(strcmp(craft_topic_name(CRAFT_T_ELECT), "ELECT") == 0);
    CHECK(strcmp(craft_topic_name(CRAFT_T_NET), "NET") == 0);
    CHECK(strcmp(craft_topic_name(CRAFT_T_COUNT_), "?") == 0);
    CHECK(strcmp(craft_topic_name((enum craft_topic)1000), "?") == 0);
}

/* ---- craft_trace_emit and the line format ---- */

static void test_emit_format(void)
{
    struct sink s = {0};
    craft_trace_setup(ALL_TOPICS, sink_collect, &s);
    craft_trace_emit(CRAFT_T_ELECT, 5, 3, 7, "became %s at %d", "leader", 42);
    craft_trace_emit(CRAFT_T_NET, 123456789, 0, 0, "drop");
    craft_trace_emit(CRAFT_T_APPLY, 0, 1, 2, "%s", "");
    craft_trace_setup(0, NULL, NULL);
    CHECK(s.n_lines == 3);
    /* The time is right-aligned in 8 characters; the text follows "t<term> ". */
    CHECK(strcmp(s.lines[0], "       5 n3 ELECT t7 became leader at 42") == 0);
    CHECK(strcmp(s.lines[1], "123456789 n0 NET t0 drop") == 0);
    CHECK(strcmp(s.lines[2], "       0 n1 APPLY t2 ") == 0);
}

static void test_emit_extremes(void)
{
    struct sink s = {0};
    craft_trace_setup(ALL_TOPICS, sink_collect, &s);
    craft_trace_emit(CRAFT_T_TEST, UINT64_MAX, UINT64_MAX, UINT64_MAX, "max");
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    craft_trace_emit(CRAFT_T_SNAP, 1, 2, 3, "%s", big);
    craft_trace_setup(0, NULL, NULL);
    CHECK(s.n_lines == 2);
    CHECK(strcmp(s.lines[0], "18446744073709551615 n18446744073709551615 TEST "
                             "t18446744073709551615 max") == 0);
    /* A long text is cut, not overflowed; the prefix is intact. */
    size_t len = strlen(s.lines[1]);
    CHECK(len > 100 && len < 1024);
    CHECK(strncmp(s.lines[1], "       1 n2 SNAP t3 xxxx", 24) == 0);
    CHECK(s.lines[1][len - 1] == 'x');
}

/* Emitted lines parse back into the values that went in, for random values: the contract
 * craft-log relies on. */
static void test_emit_roundtrip_random(void)
{
    static const uint64_t seeds[] = {7, 8, 9, 12345};
    case_random = true;
    for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
        case_seed = seeds[si];
        struct craft_prng prng;
        craft_prng_seed(&prng, case_seed);
        for (int iter = 0; iter < 300; iter++) {
            int failed_before = case_failed;
            struct sink s = {0};
            enum craft_topic topic = (enum craft_topic)craft_prng_range(&prng, 0, CRAFT_T_COUNT_);
            uint64_t now = craft_prng_chance(&prng, 100) ? craft_prng_next(&prng)
                                                         : craft_prng_range(&prng, 0, 100000);
            uint64_t node = craft_prng_range(&prng, 0, 10);
            uint64_t term = craft_prng_range(&prng, 0, 1000);
            uint64_t value = craft_prng_next(&prng);
            craft_trace_setup(ALL_TOPICS, sink_collect, &s);
            craft_trace_emit(topic, now, node, term, "v=%" PRIu64, value);
            craft_trace_setup(0, NULL, NULL);
            CHECK(s.n_lines == 1);

            unsigned long long p_now, p_node, p_term, p_value;
            char p_topic[16];
            int consumed = 0;
            int n = sscanf(s.lines[0], " %llu n%llu %15s t%llu v=%llu%n", &p_now, &p_node, p_topic,
                           &p_term, &p_value, &consumed);
            CHECK(n == 5);
            CHECK(s.lines[0][consumed] == '\0');
            CHECK(p_now == now && p_node == node && p_term == term && p_value == value);
            CHECK(strcmp(p_topic, craft_topic_name(topic)) == 0);
            /* Times below 10^8 are padded to 8 characters, so columns line up. */
            if (now < 100000000u) {
                CHECK(s.lines[0][8] == ' ' && s.lines[0][9] == 'n');
            }
            if (case_failed != failed_before) {
                break; /* one failure per seed is enough to replay it */
            }
        }
    }
    case_random = false;
}

/* ---- the mask ---- */

static void test_mask_gates_macro(void)
{
    struct sink s = {0};
    int evaluated = 0;
    craft_trace_setup(1u << CRAFT_T_VOTE, sink_collect, &s);
    CHECK(CRAFT_TRACE_ON(CRAFT_T_VOTE));
    CHECK(!CRAFT_TRACE_ON(CRAFT_T_NET));
    /* A disabled topic does not even evaluate its arguments. */
    CRAFT_TRACE(CRAFT_T_NET, 1, 1, 1, "x%d", ++evaluated);
    CHECK(s.n_lines == 0);
    CHECK(evaluated == 0);
    CRAFT_TRACE(CRAFT_T_VOTE, 2, 1, 1, "granted %d", ++evaluated);
    CHECK(s.n_lines == 1);
    CHECK(evaluated == 1);
    CHECK(strcmp(s.lines[0], "       2 n1 VOTE t1 granted 1") == 0);
    craft_trace_setup(0, NULL, NULL);
    CRAFT_TRACE(CRAFT_T_VOTE, 3, 1, 1, "off");
    CHECK(s.n_lines == 1);
    CHECK(craft_trace_mask == 0);
}

static void test_setup_from_env(void)
{
    craft_trace_setup(0, NULL, NULL);
    unsetenv("CRAFT_TRACE");
    craft_trace_setup_from_env();
    CHECK(craft_trace_mask == 0);
    setenv("CRAFT_TRACE", "ELECT,net", 1);
    craft_trace_setup_from_env();
    CHECK(craft_trace_mask == ((1u << CRAFT_T_ELECT) | (1u << CRAFT_T_NET)));
    setenv("CRAFT_TRACE", "all", 1);
    craft_trace_setup_from_env();
    CHECK(craft_trace_mask == ALL_TOPICS);
    unsetenv("CRAFT_TRACE");
    craft_trace_setup(0, NULL, NULL);
}

/* ---- runner ---- */

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"parse_empty", test_parse_empty},
    {"parse_names", test_parse_names},
    {"parse_unknown_ignored", test_parse_unknown_ignored},
    {"parse_all", test_parse_all},
    {"parse_random", test_parse_random},
    {"topic_names", test_topic_names},
    {"emit_format", test_emit_format},
    {"emit_extremes", test_emit_extremes},
    {"emit_roundtrip_random", test_emit_roundtrip_random},
    {"mask_gates_macro", test_mask_gates_macro},
    {"setup_from_env", test_setup_from_env},
};

int main(void)
{
    int passed = 0;
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        case_failed = 0;
        cases[i].fn();
        if (case_failed == 0) {
            passed++;
        } else {
            printf("FAIL %s\n", cases[i].name);
            failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
