/* Unit tests of the pure core through a tiny in-process cluster: a perfect network (every
 * message encoded and decoded, delivered in order), immediate persistence, and a clock
 * advanced by hand. The simulator covers faults; this covers the protocol's basic paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "codec/msg_codec.h"
#include "core/core.h"
#include "core/log.h"

static int failures, cases;
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            failures++;                                                        \
        }                                                                      \
    } while (0)

#define N_MAX 5
struct wire {
    uint64_t to;
    size_t len;
    uint8_t *bytes;
};

struct tcluster {
    int n;
    uint64_t now;
    struct craft_core *cores[N_MAX];
    bool down[N_MAX];
    struct wire *q;
    size_t qn, qcap;
    uint64_t applied_count[N_MAX];
    uint64_t applied_sum[N_MAX];
    uint64_t msgs;
};

static void enqueue(struct tcluster *c, const struct craft_msg *m)
{
    if (c->qn == c->qcap) {
        c->qcap = c->qcap ? c->qcap * 2 : 64;
        c->q = realloc(c->q, c->qcap * sizeof *c->q);
    }
    size_t len = craft_msg_encoded_size(m);
    uint8_t *bytes = malloc(len);
    CRAFT_ASSERT(craft_msg_encode(m, bytes) == len);
    c->q[c->qn++] = (struct wire){.to = m->to, .len = len, .bytes = bytes};
    c->msgs++;
}

static void process(struct tcluster *c, int i)
{
    struct craft_batch b;
    while (craft_core_ready(c->cores[i], &b)) {
        for (size_t k = 0; k < b.n_msgs; k++) {
            struct craft_msg m = b.msgs[k];
            if (m.type == CRAFT_MSG_SNAPSHOT) {
                m.last = true; /* no snapshot data in these tests */
            }
            enqueue(c, &m);
        }
        for (size_t k = 0; k < b.n_msgs_durable; k++) {
            enqueue(c, &b.msgs_durable[k]);
        }
        for (size_t k = 0; k < b.n_committed; k++) {
            const struct craft_entry *e = &b.committed[k];
            if (e->type == CRAFT_ENTRY_NORMAL) {
                uint64_t v = 0;
                memcpy(&v, e->data, sizeof v);
                c->applied_count[i]++;
                c->applied_sum[i] += v;
            }
        }
        craft_core_persisted(c->cores[i], b.seq, c->now);
    }
}

static void tcluster_init(struct tcluster *c, int n)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    struct craft_core_restore r;
    memset(&r, 0, sizeof r);
    r.bootstrap_conf.n_voters = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        r.bootstrap_conf.voters[i] = (uint64_t)i + 1;
    }
    for (int i = 0; i < n; i++) {
        struct craft_core_config cfg;
        craft_core_config_default(&cfg, (uint64_t)i + 1);
        cfg.seed = 1000 + (uint64_t)i;
        c->cores[i] = craft_core_create(&cfg, &r, 0);
    }
}

static void tcluster_free(struct tcluster *c)
{
    for (int i = 0; i < c->n; i++) {
        craft_core_destroy(c->cores[i]);
    }
    for (size_t k = 0; k < c->qn; k++) {
        free(c->q[k].bytes);
    }
    free(c->q);
}

/* Delivers every queued message (and the ones they cause) at the current time. */
static void deliver_all(struct tcluster *c)
{
    struct craft_msg_decoder d;
    craft_msg_decoder_init(&d);
    for (int i = 0; i < c->n; i++) {
        process(c, i);
    }
    while (c->qn > 0) {
        struct wire w = c->q[0];
        memmove(c->q, c->q + 1, (c->qn - 1) * sizeof *c->q);
        c->qn--;
        int to = (int)w.to - 1;
        if (!c->down[to]) {
            struct craft_msg m;
            CHECK(craft_msg_decode(&d, w.bytes, w.len, &m) == CRAFT_OK);
            if (!c->down[(int)m.from - 1]) {
                CHECK(craft_core_step(c->cores[to], &m, c->now) == CRAFT_OK);
                process(c, to);
            }
        }
        free(w.bytes);
    }
    craft_msg_decoder_free(&d);
}

/* Advances time to the next timer and fires it. */
static void advance(struct tcluster *c)
{
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < c->n; i++) {
        if (!c->down[i]) {
            uint64_t t = craft_core_next_timeout(c->cores[i]);
            next = t < next ? t : next;
        }
    }
    c->now = next > c->now ? next : c->now;
    for (int i = 0; i < c->n; i++) {
        if (!c->down[i] && craft_core_next_timeout(c->cores[i]) <= c->now) {
            craft_core_tick(c->cores[i], c->now);
        }
    }
    deliver_all(c);
}

static int leader_of(struct tcluster *c)
{
    int leader = -1;
    for (int i = 0; i < c->n; i++) {
        struct craft_core_status s;
        craft_core_status(c->cores[i], &s);
        if (!c->down[i] && s.role == CRAFT_LEADER) {
            CHECK(leader == -1);
            leader = i;
        }
    }
    return leader;
}

static int elect(struct tcluster *c)
{
    for (int round = 0; round < 100 && leader_of(c) < 0; round++) {
        advance(c);
    }
    return leader_of(c);
}

static void test_elect_and_replicate(void)
{
    cases++;
    struct tcluster c;
    tcluster_init(&c, 3);
    int l = elect(&c);
    CHECK(l >= 0);
    uint64_t sum = 0;
    for (uint64_t v = 1; v <= 100; v++) {
        uint64_t index = 0, term = 0;
        CHECK(craft_core_propose(c.cores[l], (const uint8_t *)&v, sizeof v, c.now, &index,
                                 &term) == CRAFT_OK);
        sum += v;
        if (v % 7 == 0) {
            deliver_all(&c);
        }
    }
    deliver_all(&c);
    advance(&c); /* a heartbeat carries the last commit index */
    for (int i = 0; i < 3; i++) {
        CHECK(c.applied_count[i] == 100);
        CHECK(c.applied_sum[i] == sum);
    }
    /* A follower refuses proposals. */
    uint64_t v = 7;
    CHECK(craft_core_propose(c.cores[(l + 1) % 3], (const uint8_t *)&v, 8, c.now, NULL, NULL) ==
          CRAFT_ENOTLEADER);
    tcluster_free(&c);
}

static void test_leader_failover(void)
{
    cases++;
    struct tcluster c;
    tcluster_init(&c, 5);
    int l = elect(&c);
    CHECK(l >= 0);
    uint64_t v = 1;
    craft_core_propose(c.cores[l], (const uint8_t *)&v, 8, c.now, NULL, NULL);
    deliver_all(&c);
    struct craft_core_status s1;
    craft_core_status(c.cores[l], &s1);
    c.down[l] = true;
    int l2 = elect(&c);
    CHECK(l2 >= 0 && l2 != l);
    struct craft_core_status s2;
    craft_core_status(c.cores[l2], &s2);
    CHECK(s2.term > s1.term);
    v = 2;
    CHECK(craft_core_propose(c.cores[l2], (const uint8_t *)&v, 8, c.now, NULL, NULL) == CRAFT_OK);
    deliver_all(&c);
    advance(&c);
    for (int i = 0; i < 5; i++) {
        if (i != l) {
            CHECK(c.applied_count[i] == 2);
        }
    }
    tcluster_free(&c);
}

static void test_single_node(void)
{
    cases++;
    struct tcluster c;
    tcluster_init(&c, 1);
    int l = elect(&c);
    CHECK(l == 0);
    uint64_t v = 5;
    CHECK(craft_core_propose(c.cores[0], (const uint8_t *)&v, 8, c.now, NULL, NULL) == CRAFT_OK);
    deliver_all(&c);
    CHECK(c.applied_count[0] == 1);
    tcluster_free(&c);
}

static void test_log_view(void)
{
    cases++;
    struct craft_log log;
    log_init(&log, 10, 3);
    CHECK(log_last_index(&log) == 10 && log_last_term(&log) == 3);
    uint64_t t = 0;
    CHECK(log_term_at(&log, 10, &t) && t == 3);
    CHECK(!log_term_at(&log, 9, &t) && !log_term_at(&log, 11, &t));
    uint8_t data[4] = {1, 2, 3, 4};
    for (uint64_t i = 11; i <= 20; i++) {
        struct craft_entry e = {.term = i < 15 ? 3 : 4, .index = i, .type = 1, .len = 4, .data = data};
        CHECK(log_append(&log, &e) == CRAFT_OK);
    }
    CHECK(log_last_index(&log) == 20 && log_last_term(&log) == 4);
    CHECK(log_find_conflict_by_term(&log, 20, 3) == 14);
    CHECK(log_find_conflict_by_term(&log, 20, 2) == 10);
    CHECK(log_bytes(&log, 11, 20) == 40);
    log_compact(&log, 12);
    CHECK(log_term_at(&log, 12, &t) && t == 3 && log_entry(&log, 12) == NULL);
    CHECK(log_entry(&log, 13)->index == 13);
    log_truncate_from(&log, 16);
    CHECK(log_last_index(&log) == 15);
    CHECK(log_is_up_to_date(&log, 15, 4) && !log_is_up_to_date(&log, 14, 4) &&
          log_is_up_to_date(&log, 1, 5));
    log_reset(&log, 30, 6);
    CHECK(log_last_index(&log) == 30 && log_last_term(&log) == 6);
    log_free(&log);
}

static int failed_cases;

static void run(void (*test)(void))
{
    int before = failures;
    test();
    if (failures != before) {
        failed_cases++;
    }
}

int main(void)
{
    run(test_log_view);
    run(test_single_node);
    run(test_elect_and_replicate);
    run(test_leader_failover);
    printf("%d passed, %d failed\n", cases - failed_cases, failed_cases);
    return failed_cases == 0 ? 0 : 1;
}
