/* The in-memory stores (src/storage/mem_store.h): the log against a naive model over random
 * workloads (appends, truncations, restarts, compactions, reads, bad arguments), the same
 * workloads without compaction against the real WAL on fs_mem (same semantics), and the
 * stable store's contract. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prng.h"
#include "storage/fs_mem.h"
#include "storage/mem_store.h"
#include "storage/stable.h"
#include "unit.h"




/* The model: entry index i (first <= i <= last) has term terms[i], type and a payload
 * derived from (index, term): len = (index * 7 + term) % 40, byte j = index + term + j. */
#define MODEL_MAX 4096

struct model {
    uint64_t first, last;
    uint64_t terms[MODEL_MAX];
};

static uint32_t payload_len(uint64_t index, uint64_t term)
{
    return (uint32_t)((index * 7 + term) % 40);
}

static uint8_t payload_byte(uint64_t index, uint64_t term, uint32_t j)
{
    return (uint8_t)(index + term + j);
}

static uint8_t entry_type(uint64_t index)
{
    return (uint8_t)(1 + index % 3);
}

/* Builds entries lo.. lo+n-1 of term `term` into es, payloads into bufs. */
static void make_entries(struct craft_entry *es, uint8_t (*bufs)[40], uint64_t lo, size_t n,
                         uint64_t term)
{
    for (size_t k = 0; k < n; k++) {
        uint64_t idx = lo + k;
        uint32_t len = payload_len(idx, term);
        for (uint32_t j = 0; j < len; j++) {
            bufs[k][j] = payload_byte(idx, term, j);
        }
        es[k] = (struct craft_entry){.term = term,
                                     .index = idx,
                                     .type = entry_type(idx),
                                     .len = len,
                                     .data = len > 0 ? bufs[k] : NULL};
    }
}

static void model_write(struct model *md, uint64_t t, uint64_t lo, size_t n, uint64_t term)
{
    if (t != 0) {
        if (t < md->first || t > md->last + 1) {
            md->first = t;
            md->last = t - 1;
        } else {
            md->last = t - 1;
        }
    } else if (md->last + 1 == md->first && n > 0) {
        md->first = lo;
        md->last = lo - 1;
    }
    for (size_t k = 0; k < n; k++) {
        md->terms[lo + k] = term;
    }
    md->last += n;
}

/* Checks entries lo..hi read back against the model. */
static void check_read(const struct model *md, const struct craft_wal_entries *es, uint64_t lo,
                       uint64_t hi)
{
    CHECK(es->n == hi - lo + 1);
    for (size_t k = 0; k < es->n; k++) {
        const struct craft_entry *e = &es->entries[k];
        uint64_t idx = lo + k;
        uint64_t term = md->terms[idx];
        CHECK(e->index == idx && e->term == term && e->type == entry_type(idx));
        CHECK(e->len == payload_len(idx, term));
        for (uint32_t j = 0; j < e->len; j++) {
            if (e->data[j] != payload_byte(idx, term, j)) {
                CHECK(e->data[j] == payload_byte(idx, term, j));
                break;
            }
        }
    }
}

#define WDIR "wal"

/* One random workload; with_wal: also on the WAL (then no compaction). */
static void workload(uint64_t seed, bool with_wal)
{
    cur_seed = seed;
    struct craft_prng p;
    craft_prng_seed(&p, seed);
    struct model *md = calloc(1, sizeof(*md));
    md->first = 1;
    md->last = 0;
    struct craft_mem_log *l = craft_mem_log_create(1000);
    struct craft_fs_mem *m = NULL;
    struct craft_wal *w = NULL;
    if (with_wal) {
        m = craft_fs_mem_create(seed);
        struct craft_wal_config cfg;
        craft_wal_config_default(&cfg);
        cfg.segment_bytes = 4096;
        cfg.record_bytes_max = 1024;
        char err[256];
        CHECK(craft_wal_open(craft_fs_mem_fs(m), WDIR, &cfg, &w, err, sizeof(err)) ==
              CRAFT_OK);
    }
    struct craft_entry es[16];
    uint8_t bufs[16][40];
    uint64_t term = 1;
    for (int step = 0; step < 300; step++) {
        uint64_t r = craft_prng_range(&p, 0, 100);
        uint64_t last = md->last;
        if (r < 45) { /* append */
            size_t n = (size_t)craft_prng_range(&p, 1, 16);
            if (last + n >= MODEL_MAX) {
                continue;
            }
            uint64_t lo = last + 1 == md->first && md->first == 1 ? 1 : last + 1;
            make_entries(es, bufs, lo, n, term);
            CHECK(craft_mem_log_append(l, es, n) == CRAFT_OK);
            if (w != NULL) {
                CHECK(craft_wal_append(w, es, n) == CRAFT_OK);
            }
            model_write(md, 0, lo, n, term);
        } else if (r < 65) { /* truncate inside (or at the ends), then maybe append */
            uint64_t t = craft_prng_range(&p, md->first, md->last + 2);
            if (t == 0) {
                continue;
            }
            term += craft_prng_chance(&p, 500) ? 1 : 0;
            size_t n = (size_t)craft_prng_range(&p, 0, 8);
            if (t + n >= MODEL_MAX) {
                continue;
            }
            make_entries(es, bufs, t, n, term);
            CHECK(craft_mem_log_write(l, t, es, n) == CRAFT_OK);
            if (w != NULL) {
                CHECK(craft_wal_write(w, t, es, n) == CRAFT_OK);
            }
            model_write(md, t, t, n, term);
        } else if (r < 70) { /* a snapshot install: restart beyond the end */
            uint64_t t = md->last + craft_prng_range(&p, 2, 30);
            if (t + 16 >= MODEL_MAX) {
                continue;
            }
            term++;
            make_entries(es, bufs, t, 2, term);
            CHECK(craft_mem_log_write(l, t, es, 2) == CRAFT_OK);
            if (w != NULL) {
                CHECK(craft_wal_write(w, t, es, 2) == CRAFT_OK);
            }
            model_write(md, t, t, 2, term);
        } else if (r < 78 && w == NULL) { /* compact */
            uint64_t through = craft_prng_range(&p, md->first > 1 ? md->first - 1 : 0,
                                                md->last + 3);
            craft_mem_log_compact(l, through);
            if (through >= md->first) {
                if (through >= md->last) {
                    md->first = through + 1;
                    md->last = through;
                } else {
                    md->first = through + 1;
                }
            }
        } else if (r < 90) { /* bad arguments change nothing */
            uint64_t lo = md->last + 2;
            make_entries(es, bufs, lo, 2, term);
            int want = md->last + 1 == md->first ? CRAFT_OK : CRAFT_EINVAL;
            if (want == CRAFT_EINVAL) {
                CHECK(craft_mem_log_append(l, es, 2) == CRAFT_EINVAL);
                es[1].index = lo + 5; /* not contiguous */
                es[0].index = md->last + 1;
                CHECK(craft_mem_log_append(l, es, 2) == CRAFT_EINVAL);
                make_entries(es, bufs, md->last + 1, 1, term);
                es[0].type = 0;
                CHECK(craft_mem_log_append(l, es, 1) == CRAFT_EINVAL);
                uint8_t big[1001] = {0};
                make_entries(es, bufs, md->last + 1, 1, term);
                es[0].len = sizeof(big);
                es[0].data = big;
                CHECK(craft_mem_log_append(l, es, 1) == CRAFT_ETOOBIG);
                CHECK(craft_mem_log_truncate(l, 0) == CRAFT_EINVAL);
            }
        }
        /* Compare. */
        CHECK(craft_mem_log_first_index(l) == md->first);
        CHECK(craft_mem_log_last_index(l) == md->last);
        if (w != NULL) {
            CHECK(craft_wal_first_index(w) == md->first);
            CHECK(craft_wal_last_index(w) == md->last);
        }
        for (int q = 0; q < 3 && md->last >= md->first; q++) {
            uint64_t lo = craft_prng_range(&p, md->first, md->last + 1);
            uint64_t hi = craft_prng_range(&p, lo, md->last + 1);
            CHECK(craft_mem_log_term_at(l, lo) == md->terms[lo]);
            struct craft_wal_entries got;
            CHECK(craft_mem_log_read(l, lo, hi, &got) == CRAFT_OK);
            check_read(md, &got, lo, hi);
            craft_wal_entries_free(&got);
            if (w != NULL) {
                CHECK(craft_wal_term_at(w, lo) == md->terms[lo]);
                CHECK(craft_wal_read(w, lo, hi, &got) == CRAFT_OK);
                check_read(md, &got, lo, hi);
                craft_wal_entries_free(&got);
            }
        }
        CHECK(craft_mem_log_term_at(l, md->last + 1) == 0);
        CHECK(md->first == 0 || craft_mem_log_term_at(l, md->first - 1) == 0);
        struct craft_wal_entries got;
        CHECK(craft_mem_log_read(l, md->last + 1, md->last, &got) == CRAFT_OK && got.n == 0);
        CHECK(craft_mem_log_read(l, md->first, md->last + 1, &got) == CRAFT_EINVAL);
        if (md->first > 1) {
            CHECK(craft_mem_log_read(l, md->first - 1, md->last, &got) == CRAFT_EINVAL);
        }
        if (case_failed) {
            break;
        }
    }
    craft_mem_log_destroy(l);
    craft_wal_close(w);
    if (m != NULL) {
        craft_fs_mem_destroy(m);
    }
    free(md);
}

static void test_log_model(void)
{
    for (uint64_t seed = 1; seed <= 200 && !case_failed; seed++) {
        workload(seed, false);
    }
}

static void test_log_vs_wal(void)
{
    for (uint64_t seed = 1; seed <= 40 && !case_failed; seed++) {
        workload(seed, true);
    }
}

static void test_log_basics(void)
{
    struct craft_mem_log *l = craft_mem_log_create(0);
    CHECK(craft_mem_log_first_index(l) == 1 && craft_mem_log_last_index(l) == 0);
    struct craft_entry es[4];
    uint8_t bufs[4][40];
    /* An empty log starts anywhere. */
    make_entries(es, bufs, 50, 4, 3);
    CHECK(craft_mem_log_append(l, es, 4) == CRAFT_OK);
    CHECK(craft_mem_log_first_index(l) == 50 && craft_mem_log_last_index(l) == 53);
    CHECK(craft_mem_log_term_at(l, 52) == 3);
    /* Compacting everything leaves an empty log after the point. */
    craft_mem_log_compact(l, 60);
    CHECK(craft_mem_log_first_index(l) == 61 && craft_mem_log_last_index(l) == 60);
    craft_mem_log_compact(l, 10); /* below: nothing */
    CHECK(craft_mem_log_first_index(l) == 61);
    make_entries(es, bufs, 61, 2, 4);
    CHECK(craft_mem_log_append(l, es, 2) == CRAFT_OK);
    /* A truncation below first drops everything and restarts there; entries must start
     * at the truncation point. */
    make_entries(es, bufs, 5, 1, 5);
    CHECK(craft_mem_log_write(l, 4, es, 1) == CRAFT_EINVAL);
    CHECK(craft_mem_log_last_index(l) == 62);
    CHECK(craft_mem_log_write(l, 5, es, 1) == CRAFT_OK);
    CHECK(craft_mem_log_first_index(l) == 5 && craft_mem_log_last_index(l) == 5);
    /* No size limit when 0. */
    static uint8_t big[100000];
    struct craft_entry e = {.term = 5, .index = 6, .type = 1, .len = sizeof(big), .data = big};
    CHECK(craft_mem_log_append(l, &e, 1) == CRAFT_OK);
    struct craft_wal_entries got;
    CHECK(craft_mem_log_read(l, 5, 6, &got) == CRAFT_OK && got.n == 2 &&
          got.entries[1].len == sizeof(big));
    craft_wal_entries_free(&got);
    craft_mem_log_destroy(l);
    craft_mem_log_destroy(NULL);
}

static void test_stable(void)
{
    struct craft_mem_stable *st = craft_mem_stable_create();
    uint8_t buf[CRAFT_STABLE_BYTES_MAX + 1];
    size_t len = 0;
    struct craft_hard_state hs = {0};
    CHECK(craft_mem_stable_get(st, buf, sizeof(buf), &len) == CRAFT_ENOTFOUND);
    CHECK(craft_mem_stable_get_hard_state(st, &hs) == CRAFT_ENOTFOUND);
    struct craft_hard_state put = {.term = 9, .vote = 2};
    CHECK(craft_mem_stable_put_hard_state(st, &put) == CRAFT_OK);
    CHECK(craft_mem_stable_get_hard_state(st, &hs) == CRAFT_OK && hs.term == 9 && hs.vote == 2);
    memset(buf, 0x5a, sizeof(buf));
    CHECK(craft_mem_stable_put(st, buf, sizeof(buf)) == CRAFT_ETOOBIG);
    CHECK(craft_mem_stable_get_hard_state(st, &hs) == CRAFT_OK && hs.term == 9); /* kept */
    CHECK(craft_mem_stable_put(st, buf, 100) == CRAFT_OK);
    CHECK(craft_mem_stable_get(st, buf, 10, &len) == CRAFT_ETOOBIG && len == 100);
    CHECK(craft_mem_stable_get_hard_state(st, &hs) == CRAFT_ECORRUPT);
    memset(buf, 0, sizeof(buf));
    CHECK(craft_mem_stable_get(st, buf, sizeof(buf), &len) == CRAFT_OK && len == 100 &&
          buf[0] == 0x5a && buf[99] == 0x5a && buf[100] == 0);
    CHECK(craft_mem_stable_put(st, NULL, 0) == CRAFT_OK);
    CHECK(craft_mem_stable_get(st, buf, 0, &len) == CRAFT_OK && len == 0);
    CHECK(craft_mem_stable_get_hard_state(st, &hs) == CRAFT_ECORRUPT);
    /* The same bytes as the durable store's hard state encoding. */
    struct craft_fs_mem *m = craft_fs_mem_create(1);
    struct craft_stable *ds;
    CHECK(craft_stable_open(craft_fs_mem_fs(m), "hs", &ds) == CRAFT_OK);
    put = (struct craft_hard_state){.term = 0x0102030405060708ull, .vote = 77};
    CHECK(craft_stable_put_hard_state(ds, &put) == CRAFT_OK);
    CHECK(craft_mem_stable_put_hard_state(st, &put) == CRAFT_OK);
    uint8_t a[16], b[16];
    size_t la = 0, lb = 0;
    CHECK(craft_stable_get(ds, a, sizeof(a), &la) == CRAFT_OK);
    CHECK(craft_mem_stable_get(st, b, sizeof(b), &lb) == CRAFT_OK);
    CHECK(la == 16 && lb == 16 && memcmp(a, b, 16) == 0);
    craft_stable_close(ds);
    craft_fs_mem_destroy(m);
    craft_mem_stable_destroy(st);
    craft_mem_stable_destroy(NULL);
}

int main(void)
{
    run_case("log_basics", test_log_basics);
    run_case("log_model", test_log_model);
    run_case("log_vs_wal", test_log_vs_wal);
    run_case("stable", test_stable);
    return unit_finish();
}
