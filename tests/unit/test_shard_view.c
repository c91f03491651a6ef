/* A shard group's view of the slots (src/shard/view.c): the transitions of one migration
 * seen from both groups, the refusals, a random walk of groups joining, leaving and moving
 * slots while migrations complete in random orders (never two groups serving a slot; once
 * every group settles, the owners serve exactly their slots), and the encoding (round
 * trip, every truncation refused, canonical under byte flips). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/prng.h"
#include "shard/view.h"
#include "unit.h"

#define GROUPS 5

static struct craft_shard_group group_of(uint64_t gid)
{
    struct craft_shard_group g = {.gid = gid, .n_servers = 1};
    snprintf(g.servers[0], sizeof g.servers[0], "10.0.0.%u:7000", (unsigned)gid);
    return g;
}

static void join(struct craft_shard_config *c, uint64_t gid)
{
    struct craft_shard_group g = group_of(gid);
    struct craft_shard_config next;
    CHECK(craft_shard_join(c, &g, 1, &next, NULL, 0) == CRAFT_OK);
    *c = next;
}

static struct craft_shard_view *view_new(uint64_t gid)
{
    struct craft_shard_view *v = malloc(sizeof *v);
    craft_shard_view_init(v, gid);
    return v;
}

static uint32_t served(const struct craft_shard_view *v)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        n += craft_shard_view_serves(v, (uint16_t)s);
    }
    return n;
}

static void one_migration(void)
{
    struct craft_shard_config *c1 = malloc(sizeof *c1), *c2 = malloc(sizeof *c2);
    craft_shard_config_init(c1);
    join(c1, 1);
    *c2 = *c1;
    join(c2, 2);
    struct craft_shard_view *a = view_new(1), *b = view_new(2), *copy = malloc(sizeof *copy);
    bool ch;
    char err[128];
    /* Configuration 1: group 1 takes every slot from nobody, so it serves them at once. */
    CHECK(craft_shard_view_config(a, c1, &ch, err, sizeof err) == CRAFT_OK && ch);
    CHECK(served(a) == CRAFT_SLOTS && craft_shard_view_settled(a));
    CHECK(craft_shard_view_config(b, c1, &ch, err, sizeof err) == CRAFT_OK && ch);
    CHECK(served(b) == 0 && craft_shard_view_settled(b));
    /* A configuration applied twice, or one skipping a number, changes nothing. */
    CHECK(craft_shard_view_config(a, c1, &ch, err, sizeof err) == CRAFT_OK && !ch);
    struct craft_shard_config *c3 = malloc(sizeof *c3);
    *c3 = *c2;
    c3->num = 3;
    CHECK(craft_shard_view_config(a, c3, &ch, err, sizeof err) == CRAFT_EINVAL && !ch);
    /* Configuration 2: half the slots go from 1 to 2. */
    CHECK(craft_shard_view_config(a, c2, &ch, err, sizeof err) == CRAFT_OK && ch);
    CHECK(craft_shard_view_config(b, c2, &ch, err, sizeof err) == CRAFT_OK && ch);
    struct craft_slot_set giving, pulling, none;
    uint32_t n_giving, n_pulling;
    craft_shard_view_slots(a, CRAFT_SLOT_GIVING, 2, &giving, &n_giving);
    craft_shard_view_slots(b, CRAFT_SLOT_PULLING, 1, &pulling, &n_pulling);
    CHECK(n_giving == CRAFT_SLOTS / 2 && n_pulling == n_giving);
    CHECK(memcmp(&giving, &pulling, sizeof giving) == 0);
    CHECK(served(a) == CRAFT_SLOTS / 2 && served(b) == 0); /* the moving half: nobody */
    CHECK(!craft_shard_view_settled(a) && !craft_shard_view_settled(b));
    /* Neither takes configuration 3 before its migration is over. */
    memcpy(copy, b, sizeof *b);
    CHECK(craft_shard_view_config(b, c3, &ch, err, sizeof err) == CRAFT_EBUSY && !ch);
    CHECK(memcmp(copy, b, sizeof *b) == 0);
    /* Refusals: nothing, a configuration not reached, slots in two states, a settled one. */
    memset(&none, 0, sizeof none);
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 2, &none, &ch, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 3, &pulling, &ch, err, sizeof err) == CRAFT_EINVAL);
    struct craft_slot_set mixed = pulling;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (!craft_slot_set_has(&pulling, (uint16_t)s)) {
            craft_slot_set_add(&mixed, (uint16_t)s); /* ABSENT at b */
            break;
        }
    }
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 2, &mixed, &ch, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_DELETE, 2, &pulling, &ch, err, sizeof err) == CRAFT_EINVAL);
    CHECK(memcmp(copy, b, sizeof *b) == 0);
    /* Install at the receiver: served there; twice is done already. */
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 2, &pulling, &ch, err, sizeof err) == CRAFT_OK && ch);
    CHECK(served(b) == CRAFT_SLOTS / 2);
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 2, &pulling, &ch, err, sizeof err) == CRAFT_OK && !ch);
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 1, &pulling, &ch, err, sizeof err) == CRAFT_OK && !ch);
    /* Delete at the sender, then confirm at the receiver. */
    CHECK(craft_shard_view_step(a, CRAFT_SHARD_STEP_DELETE, 2, &giving, &ch, err, sizeof err) == CRAFT_OK && ch);
    CHECK(craft_shard_view_step(a, CRAFT_SHARD_STEP_DELETE, 2, &giving, &ch, err, sizeof err) == CRAFT_OK && !ch);
    CHECK(craft_shard_view_settled(a) && served(a) == CRAFT_SLOTS / 2);
    CHECK(!craft_shard_view_settled(b));
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_CONFIRM, 2, &pulling, &ch, err, sizeof err) == CRAFT_OK && ch);
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 2, &pulling, &ch, err, sizeof err) == CRAFT_OK && !ch);
    CHECK(craft_shard_view_settled(b) && craft_shard_view_config(b, c3, &ch, err, sizeof err) ==
                                             CRAFT_OK && ch);
    free(a);
    free(b);
    free(copy);
    free(c1);
    free(c2);
    free(c3);
}

/* A hand-over in two parts: each half installed on its own, then deleted and confirmed
 * whole (slots already past a step are left as they are). */
static void split_hand_over(void)
{
    struct craft_shard_config *c1 = malloc(sizeof *c1), *c2 = malloc(sizeof *c2);
    craft_shard_config_init(c1);
    join(c1, 1);
    *c2 = *c1;
    join(c2, 2);
    struct craft_shard_view *a = view_new(1), *b = view_new(2);
    bool ch;
    CHECK(craft_shard_view_config(a, c1, &ch, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_view_config(b, c1, &ch, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_view_config(a, c2, &ch, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_view_config(b, c2, &ch, NULL, 0) == CRAFT_OK);
    struct craft_slot_set all, half;
    uint32_t n;
    craft_shard_view_slots(b, CRAFT_SLOT_PULLING, 1, &all, &n);
    memset(&half, 0, sizeof half);
    for (uint32_t s = 0, k = 0; s < CRAFT_SLOTS && k < n / 2; s++) {
        if (craft_slot_set_has(&all, (uint16_t)s)) {
            craft_slot_set_add(&half, (uint16_t)s);
            k++;
        }
    }
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 2, &half, &ch, NULL, 0) == CRAFT_OK && ch);
    CHECK(served(b) == n / 2);
    bool changes;
    CHECK(craft_shard_view_check(b, CRAFT_SHARD_STEP_INSTALL, 2, &half, &changes, NULL, 0) ==
              CRAFT_OK && !changes);
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_INSTALL, 2, &all, &ch, NULL, 0) == CRAFT_OK && ch);
    CHECK(served(b) == n);
    CHECK(craft_shard_view_step(a, CRAFT_SHARD_STEP_DELETE, 2, &half, &ch, NULL, 0) == CRAFT_OK && ch);
    CHECK(craft_shard_view_step(a, CRAFT_SHARD_STEP_DELETE, 2, &all, &ch, NULL, 0) == CRAFT_OK && ch);
    CHECK(craft_shard_view_settled(a));
    CHECK(craft_shard_view_step(b, CRAFT_SHARD_STEP_CONFIRM, 2, &all, &ch, NULL, 0) == CRAFT_OK && ch);
    CHECK(craft_shard_view_settled(b));
    free(a);
    free(b);
    free(c1);
    free(c2);
}

/* The groups' views, and the configuration history the controller made. */
static struct craft_shard_view *views[GROUPS + 1];
static struct craft_shard_config *hist;
static uint64_t n_hist;

/* One step of a group's driver, as a shard group's leader takes them: the next
 * configuration once settled; otherwise one migration step with one peer. */
static void drive(struct craft_prng *r, uint64_t gid)
{
    struct craft_shard_view *v = views[gid];
    bool ch;
    if (craft_shard_view_settled(v)) {
        if (v->cur.num + 1 < n_hist) {
            CHECK(craft_shard_view_config(v, &hist[v->cur.num + 1], &ch, NULL, 0) == CRAFT_OK &&
                  ch);
        }
        return;
    }
    uint64_t peer = 1 + craft_prng_range(r, 0, GROUPS);
    struct craft_shard_view *p = views[peer];
    struct craft_slot_set set;
    uint32_t n;
    craft_shard_view_slots(v, CRAFT_SLOT_PULLING, peer, &set, &n);
    /* The sender hands over only once it applied the same configuration (it then holds
     * the slots GIVING, frozen). */
    if (n > 0 && p->cur.num == v->cur.num) {
        for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
            if (craft_slot_set_has(&set, (uint16_t)s)) {
                CHECK(p->state[s] == CRAFT_SLOT_GIVING);
            }
        }
        CHECK(craft_shard_view_step(v, CRAFT_SHARD_STEP_INSTALL, v->cur.num, &set, &ch, NULL, 0) == CRAFT_OK && ch);
        return;
    }
    craft_shard_view_slots(v, CRAFT_SLOT_NOTIFYING, peer, &set, &n);
    if (n > 0) {
        /* The sender deletes (it is at this configuration: it cannot move on while GIVING);
         * then the receiver stops notifying. */
        CHECK(p->cur.num == v->cur.num);
        CHECK(craft_shard_view_step(p, CRAFT_SHARD_STEP_DELETE, v->cur.num, &set, &ch, NULL, 0) == CRAFT_OK);
        CHECK(craft_shard_view_step(v, CRAFT_SHARD_STEP_CONFIRM, v->cur.num, &set, &ch, NULL, 0) == CRAFT_OK && ch);
    }
}

static void check_exclusive(void)
{
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        int serving = 0, holding = 0;
        for (uint64_t g = 1; g <= GROUPS; g++) {
            serving += craft_shard_view_serves(views[g], (uint16_t)s);
            uint8_t st = views[g]->state[s];
            holding += st == CRAFT_SLOT_SERVING || st == CRAFT_SLOT_NOTIFYING ||
                       st == CRAFT_SLOT_GIVING;
        }
        CHECK(serving <= 1);
        CHECK(holding <= 2); /* a copy frozen at the sender, one served at the receiver */
    }
}

static void random_walk(void)
{
    hist = malloc(64 * sizeof *hist);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        cur_seed = seed;
        struct craft_prng r;
        craft_prng_seed(&r, seed);
        craft_shard_config_init(&hist[0]);
        n_hist = 1;
        bool in[GROUPS + 1] = {false};
        for (uint64_t g = 1; g <= GROUPS; g++) {
            views[g] = view_new(g);
        }
        for (int step = 0; step < 1500; step++) {
            if (n_hist < 40 && craft_prng_range(&r, 0, 50) == 0) {
                struct craft_shard_config *cur = &hist[n_hist - 1], *next = &hist[n_hist];
                uint64_t g = 1 + craft_prng_range(&r, 0, GROUPS);
                int rc;
                if (!in[g]) {
                    struct craft_shard_group grp = group_of(g);
                    rc = craft_shard_join(cur, &grp, 1, next, NULL, 0);
                } else if (craft_prng_range(&r, 0, 2) == 0) {
                    rc = craft_shard_leave(cur, &g, 1, next, NULL, 0);
                } else {
                    uint16_t a = (uint16_t)craft_prng_range(&r, 0, CRAFT_SLOTS);
                    uint16_t b = (uint16_t)(a + craft_prng_range(&r, 0, CRAFT_SLOTS - a));
                    rc = craft_shard_move(cur, a, b, g, next, NULL, 0);
                }
                if (rc == CRAFT_OK) {
                    memset(in, 0, sizeof in);
                    for (uint32_t i = 0; i < next->n_groups; i++) {
                        in[next->groups[i].gid] = true;
                    }
                    n_hist++;
                }
            }
            drive(&r, 1 + craft_prng_range(&r, 0, GROUPS));
            if (step % 16 == 0) {
                check_exclusive();
            }
        }
        /* Let every group finish: then the last configuration's owners serve their slots. */
        for (int round = 0; round < 2000; round++) {
            drive(&r, 1 + craft_prng_range(&r, 0, GROUPS));
        }
        const struct craft_shard_config *last = &hist[n_hist - 1];
        for (uint64_t g = 1; g <= GROUPS; g++) {
            CHECK(views[g]->cur.num == last->num && craft_shard_view_settled(views[g]));
            for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
                CHECK(craft_shard_view_serves(views[g], (uint16_t)s) ==
                      (craft_shard_slot_gid(last, (uint16_t)s) == g));
            }
            free(views[g]);
        }
    }
    free(hist);
}

static void encoding(void)
{
    struct craft_shard_config *c = malloc(sizeof *c);
    craft_shard_config_init(c);
    join(c, 1);
    struct craft_shard_view *v = view_new(1), *w = malloc(sizeof *w);
    bool ch;
    CHECK(craft_shard_view_config(v, c, &ch, NULL, 0) == CRAFT_OK);
    join(c, 7);
    CHECK(craft_shard_view_config(v, c, &ch, NULL, 0) == CRAFT_OK);
    size_t n = craft_shard_view_size(v);
    uint8_t *buf = malloc(n), *enc2 = malloc(CRAFT_SHARD_VIEW_BYTES_MAX);
    CHECK(craft_shard_view_encode(v, buf, n) == n);
    CHECK(craft_shard_view_decode(buf, n, w) == CRAFT_OK && w->gid == 1 && w->cur.num == 2);
    CHECK(craft_shard_view_encode(w, enc2, CRAFT_SHARD_VIEW_BYTES_MAX) == n &&
          memcmp(enc2, buf, n) == 0);
    CHECK(memcmp(v->state, w->state, sizeof v->state) == 0);
    for (size_t cut = 0; cut < n; cut++) {
        CHECK(craft_shard_view_decode(buf, cut, w) != CRAFT_OK);
    }
    /* A flipped byte is refused, or is another valid view that encodes to those bytes. */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            buf[i] ^= (uint8_t)(1u << bit);
            if (craft_shard_view_decode(buf, n, w) == CRAFT_OK) {
                CHECK(craft_shard_view_encode(w, enc2, CRAFT_SHARD_VIEW_BYTES_MAX) == n);
                CHECK(memcmp(enc2, buf, n) == 0);
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    buf[0] = 9;
    CHECK(craft_shard_view_decode(buf, n, w) == CRAFT_EVERSION);
    free(buf);
    free(enc2);
    free(v);
    free(w);
    free(c);
}

int main(void)
{
    run_case("one_migration", one_migration);
    run_case("split_hand_over", split_hand_over);
    run_case("random_walk", random_walk);
    run_case("encoding", encoding);
    return unit_finish();
}
