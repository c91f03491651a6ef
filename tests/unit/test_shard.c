/* Slots and shard configurations (src/shard): the key-to-slot function against values
 * Redis's own CLUSTER KEYSLOT returned, and the controller's Join / Leave / Move against the
 * checks of the MIT 6.5840 shardctrler suite, adapted to 16384 slots: every slot owned by a
 * present group, counts within one of each other, server lists kept verbatim, minimal
 * movement (TestMinimalAgain), refused requests leaving the configuration as it was. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "base/prng.h"
#include "shard/config.h"
#include "shard/slots.h"
#include "unit.h"

static uint16_t slot_of(const char *k)
{
    return craft_key_slot((const uint8_t *)k, strlen(k));
}

static void key_slots(void)
{
    CHECK(craft_crc16((const uint8_t *)"123456789", 9) == 0x31C3);
    /* From redis-server 7 (cluster-enabled), CLUSTER KEYSLOT <key>. */
    static const struct {
        const char *key;
        uint16_t slot;
    } want[] = {
        {"foo", 12182},           {"bar", 5061},
        {"somekey", 11058},       {"123456789", 12739},
        {"{user1000}.following", 3443}, {"{user1000}.followers", 3443},
        {"foo{}{bar}", 8363},     {"foo{{bar}}zap", 4015},
        {"foo{bar}{zap}", 5061},  {"{}", 15257},
        {"a", 15495},             {"{a}", 15495},
        {"}{x}", 16287},          {"{", 4092},
        {"}", 12090},             {"user:1000", 1649},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint16_t got = slot_of(want[i].key);
        if (got != want[i].slot)
            printf("  slot of '%s': %u, want %u\n", want[i].key, got, want[i].slot);
        CHECK(got == want[i].slot);
    }
    char k[301];
    memset(k, 'k', 300);
    k[300] = '\0';
    CHECK(slot_of(k) == 16002);
}

static struct craft_shard_group group(uint64_t gid, uint32_t n_servers)
{
    struct craft_shard_group g = {.gid = gid, .n_servers = n_servers};
    for (uint32_t i = 0; i < n_servers; i++)
        snprintf(g.servers[i], sizeof g.servers[i], "10.0.%u.%u:7%03u", (unsigned)(gid % 250),
                 i, (unsigned)i);
    return g;
}

/* MIT's check(groups): exactly these groups, every slot on one of them, balanced. */
static bool check_groups(const struct craft_shard_config *c, const uint64_t *gids, size_t n)
{
    bool ok = craft_shard_config_valid(c) && c->n_groups == n;
    uint32_t min = UINT32_MAX, max = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = craft_shard_group_slots(c, gids[i]);
        bool present = false;
        for (uint32_t j = 0; j < c->n_groups; j++)
            present |= c->groups[j].gid == gids[i];
        ok = ok && present;
        min = k < min ? k : min;
        max = k > max ? k : max;
    }
    if (n > 0)
        ok = ok && max - min <= 1 && craft_shard_slot_gid(c, 0) != 0;
    else
        ok = ok && craft_shard_slot_gid(c, 0) == 0;
    if (!ok)
        printf("  check: %u groups (want %zu), min %u max %u\n", c->n_groups, n, min, max);
    return ok;
}

/* Slots whose owner changed from a to b. */
static uint32_t moved(const struct craft_shard_config *a, const struct craft_shard_config *b)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++)
        n += craft_shard_slot_gid(a, (uint16_t)s) != craft_shard_slot_gid(b, (uint16_t)s);
    return n;
}

static struct craft_shard_config *cfg_new(void)
{
    struct craft_shard_config *c = malloc(sizeof *c);
    CRAFT_ASSERT(c != NULL);
    craft_shard_config_init(c);
    return c;
}

static void basic(void)
{
    struct craft_shard_config *c = cfg_new(), *n = cfg_new();
    CHECK(c->num == 0 && check_groups(c, NULL, 0));
    struct craft_shard_group g1 = group(1, 3), g2 = group(2, 3);
    CHECK(craft_shard_join(c, &g1, 1, n, NULL, 0) == CRAFT_OK);
    uint64_t w1[] = {1};
    CHECK(n->num == 1 && check_groups(n, w1, 1));
    CHECK(craft_shard_group_slots(n, 1) == CRAFT_SLOTS);
    CHECK(memcmp(&n->groups[0], &g1, sizeof g1) == 0); /* servers verbatim */
    memcpy(c, n, sizeof *c);
    CHECK(craft_shard_join(c, &g2, 1, n, NULL, 0) == CRAFT_OK);
    uint64_t w12[] = {1, 2};
    CHECK(n->num == 2 && check_groups(n, w12, 2));
    CHECK(moved(c, n) == CRAFT_SLOTS / 2); /* only what group 2 takes */
    memcpy(c, n, sizeof *c);
    uint64_t one = 1, two = 2;
    CHECK(craft_shard_leave(c, &one, 1, n, NULL, 0) == CRAFT_OK);
    CHECK(n->num == 3 && check_groups(n, &two, 1));
    memcpy(c, n, sizeof *c);
    /* The last group cannot leave; a refused request changes nothing. */
    memset(n, 0xAB, sizeof *n);
    char err[128] = "";
    CHECK(craft_shard_leave(c, &two, 1, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(strstr(err, "last group") != NULL);
    CHECK(n->owner[0] == 0xAB && n->num == 0xABABABABABABABABull);
    /* A gid may come back after it left. */
    CHECK(craft_shard_join(c, &g1, 1, n, NULL, 0) == CRAFT_OK && check_groups(n, w12, 2));
    free(c);
    free(n);
}

static void refused(void)
{
    struct craft_shard_config *c = cfg_new(), *n = cfg_new(), *before = cfg_new();
    struct craft_shard_group g[2] = {group(5, 2), group(6, 1)};
    CHECK(craft_shard_join(c, g, 2, n, NULL, 0) == CRAFT_OK);
    memcpy(c, n, sizeof *c);
    memcpy(before, c, sizeof *c);
    char err[128];
    struct craft_shard_group bad = group(7, 0), zero = group(0, 1), dup[2] = {group(8, 1),
                                                                            group(8, 2)};
    CHECK(craft_shard_join(c, &g[0], 1, n, err, sizeof err) == CRAFT_EINVAL &&
          strstr(err, "already") != NULL);
    CHECK(craft_shard_join(c, &bad, 1, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_join(c, &zero, 1, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_join(c, dup, 2, n, err, sizeof err) == CRAFT_EINVAL &&
          strstr(err, "twice") != NULL);
    CHECK(craft_shard_join(c, g, 0, n, err, sizeof err) == CRAFT_EINVAL);
    struct craft_shard_group longaddr = group(9, 1);
    memset(longaddr.servers[0], 'x', sizeof longaddr.servers[0]); /* no NUL */
    CHECK(craft_shard_join(c, &longaddr, 1, n, err, sizeof err) == CRAFT_EINVAL);
    uint64_t unknown = 42, twice[2] = {5, 5}, all[2] = {5, 6};
    CHECK(craft_shard_leave(c, &unknown, 1, n, err, sizeof err) == CRAFT_EINVAL &&
          strstr(err, "unknown group 42") != NULL);
    CHECK(craft_shard_leave(c, twice, 2, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_leave(c, all, 2, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_move(c, 10, 5, 5, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_move(c, 0, CRAFT_SLOTS, 5, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(craft_shard_move(c, 0, 1, 42, n, err, sizeof err) == CRAFT_EINVAL);
    CHECK(memcmp(c, before, sizeof *c) == 0);
    /* At most CRAFT_SHARD_GROUPS_MAX groups. */
    struct craft_shard_group many[CRAFT_SHARD_GROUPS_MAX];
    for (uint32_t i = 0; i < CRAFT_SHARD_GROUPS_MAX; i++)
        many[i] = group(100 + i, 1);
    CHECK(craft_shard_join(c, many, CRAFT_SHARD_GROUPS_MAX - 1, n, NULL, 0) == CRAFT_EINVAL);
    CHECK(craft_shard_join(c, many, CRAFT_SHARD_GROUPS_MAX - 2, n, NULL, 0) == CRAFT_OK);
    CHECK(n->n_groups == CRAFT_SHARD_GROUPS_MAX && craft_shard_config_valid(n));
    free(c);
    free(n);
    free(before);
}

static void move(void)
{
    struct craft_shard_config *c = cfg_new(), *n = cfg_new();
    struct craft_shard_group g[2] = {group(503, 1), group(504, 1)};
    CHECK(craft_shard_join(c, g, 2, n, NULL, 0) == CRAFT_OK);
    memcpy(c, n, sizeof *c);
    CHECK(craft_shard_move(c, 0, 99, 504, n, NULL, 0) == CRAFT_OK);
    CHECK(n->num == c->num + 1);
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t want = s < 100 ? 504 : craft_shard_slot_gid(c, (uint16_t)s);
        CHECK(craft_shard_slot_gid(n, (uint16_t)s) == want); /* nothing else moves */
    }
    memcpy(c, n, sizeof *c);
    CHECK(craft_shard_move(c, 5000, 5000, 503, n, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_slot_gid(n, 5000) == 503 && moved(c, n) <= 1);
    /* In place. */
    CHECK(craft_shard_move(n, CRAFT_SLOTS - 1, CRAFT_SLOTS - 1, 504, n, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_slot_gid(n, CRAFT_SLOTS - 1) == 504);
    free(c);
    free(n);
}

/* TestMinimalAgain: a join moves only what the new group takes, at most a third of the
 * slots plus one for the third group; a leave moves only the departed group's slots. */
static void minimal_again(void)
{
    struct craft_shard_config *c1 = cfg_new(), *c2 = cfg_new(), *c3 = cfg_new(), *t = cfg_new();
    struct craft_shard_group g1 = group(1, 1), g2 = group(2, 1), g3 = group(3, 1);
    CHECK(craft_shard_join(c1, &g1, 1, t, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_join(t, &g2, 1, c1, NULL, 0) == CRAFT_OK);
    CHECK(craft_shard_join(c1, &g3, 1, c2, NULL, 0) == CRAFT_OK);
    uint32_t changed = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t a = craft_shard_slot_gid(c1, (uint16_t)s), b = craft_shard_slot_gid(c2, (uint16_t)s);
        if (a != b) {
            changed++;
            CHECK(b == 3); /* only to the new group */
        }
    }
    CHECK(changed <= CRAFT_SLOTS / 3 + 1);
    uint64_t one = 1;
    CHECK(craft_shard_leave(c2, &one, 1, c3, NULL, 0) == CRAFT_OK);
    changed = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t a = craft_shard_slot_gid(c2, (uint16_t)s), b = craft_shard_slot_gid(c3, (uint16_t)s);
        if (a != b) {
            changed++;
            CHECK(a == 1); /* only the departed group's */
        }
    }
    CHECK(changed <= CRAFT_SLOTS / 3 + 1);
    free(c1);
    free(c2);
    free(c3);
    free(t);
}

static uint8_t codec_buf[CRAFT_SHARD_CONFIG_BYTES_MAX];

/* Encodes c, decodes it back: the same configuration, and the size said beforehand. */
static bool roundtrips(const struct craft_shard_config *c)
{
    size_t size = craft_shard_config_size(c);
    size_t len = craft_shard_config_encode(c, codec_buf, sizeof codec_buf);
    struct craft_shard_config *d = cfg_new();
    bool ok = len == size && craft_shard_config_decode(codec_buf, len, d) == CRAFT_OK &&
              memcmp(c, d, sizeof *c) == 0;
    free(d);
    return ok;
}

static void codec(void)
{
    struct craft_shard_config *c = cfg_new(), *n = cfg_new(), *d = cfg_new();
    CHECK(roundtrips(c)); /* configuration 0: one run of unowned slots */
    struct craft_shard_group g[3] = {group(7, 3), group(9, 1), group(11, 8)};
    CHECK(craft_shard_join(c, g, 3, n, NULL, 0) == CRAFT_OK);
    CHECK(roundtrips(n));
    size_t len = craft_shard_config_encode(n, codec_buf, sizeof codec_buf);
    CHECK(len < 1024); /* balanced: a few runs per group */
    /* Every truncation and every trailing byte is refused. */
    for (size_t cut = 0; cut < len; cut++)
        CHECK(craft_shard_config_decode(codec_buf, cut, d) == CRAFT_ECORRUPT || cut == 0);
    CHECK(craft_shard_config_decode(codec_buf, 0, d) == CRAFT_ECORRUPT);
    codec_buf[len] = 0;
    CHECK(craft_shard_config_decode(codec_buf, len + 1, d) == CRAFT_ECORRUPT);
    /* Another version. */
    codec_buf[0] = 2;
    CHECK(craft_shard_config_decode(codec_buf, len, d) == CRAFT_EVERSION);
    codec_buf[0] = CRAFT_SHARD_CONFIG_VERSION;
    /* Groups out of order: swap the first two gids. */
    uint8_t *gid0 = codec_buf + 10, saved[8];
    memcpy(saved, gid0, 8);
    gid0[0] = 99;
    CHECK(craft_shard_config_decode(codec_buf, len, d) == CRAFT_ECORRUPT);
    memcpy(gid0, saved, 8);
    CHECK(craft_shard_config_decode(codec_buf, len, d) == CRAFT_OK);
    /* An owner index past the groups, in the last run. */
    codec_buf[len - 1] = 3;
    CHECK(craft_shard_config_decode(codec_buf, len, d) == CRAFT_ECORRUPT);
    free(c);
    free(n);
    free(d);
}

/* Random joins (several groups at once too), leaves and moves: after each, the checks
 * above, and a rebalance that moves the fewest slots (no group both gains and loses); the
 * same requests give the same bytes (determinism). */
static void random_changes(void)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        cur_seed = seed;
        struct craft_prng p;
        craft_prng_seed(&p, seed);
        struct craft_shard_config *c = cfg_new(), *n = cfg_new(), *again = cfg_new();
        uint64_t next_gid = 1;
        for (int step = 0; step < 60; step++) {
            uint32_t kind = (uint32_t)craft_prng_range(&p, 0, 3);
            int rc;
            if (c->n_groups <= 1 || (kind == 0 && c->n_groups < 40)) {
                kind = 0;
                struct craft_shard_group gs[3];
                size_t k = (size_t)craft_prng_range(&p, 1, 4);
                for (size_t i = 0; i < k; i++)
                    gs[i] = group(next_gid++, (uint32_t)craft_prng_range(&p, 1, 4));
                rc = craft_shard_join(c, gs, k, n, NULL, 0);
                CHECK(craft_shard_join(c, gs, k, again, NULL, 0) == rc);
            } else if (kind == 1) {
                kind = 1;
                uint64_t gid = c->groups[craft_prng_range(&p, 0, c->n_groups)].gid;
                rc = craft_shard_leave(c, &gid, 1, n, NULL, 0);
                CHECK(craft_shard_leave(c, &gid, 1, again, NULL, 0) == rc);
            } else {
                kind = 2;
                uint16_t a = (uint16_t)craft_prng_range(&p, 0, CRAFT_SLOTS);
                uint16_t b = (uint16_t)craft_prng_range(&p, a, CRAFT_SLOTS);
                uint64_t gid = c->groups[craft_prng_range(&p, 0, c->n_groups)].gid;
                rc = craft_shard_move(c, a, b, gid, n, NULL, 0);
                CHECK(craft_shard_move(c, a, b, gid, again, NULL, 0) == rc);
            }
            CHECK(rc == CRAFT_OK);
            CHECK(memcmp(n, again, sizeof *n) == 0);
            CHECK(n->num == c->num + 1 && craft_shard_config_valid(n));
            CHECK(roundtrips(n));
            if (kind != 2) {
                uint32_t min = UINT32_MAX, max = 0;
                for (uint32_t i = 0; i < n->n_groups; i++) {
                    uint64_t gid = n->groups[i].gid;
                    uint32_t before = craft_shard_group_slots(c, gid);
                    uint32_t after = craft_shard_group_slots(n, gid);
                    min = after < min ? after : min;
                    max = after > max ? after : max;
                    /* a group that gains lost nothing, and one that loses gained nothing */
                    uint32_t in = 0, out = 0;
                    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
                        bool was = craft_shard_slot_gid(c, (uint16_t)s) == gid;
                        bool is = craft_shard_slot_gid(n, (uint16_t)s) == gid;
                        in += !was && is;
                        out += was && !is;
                    }
                    CHECK(in == 0 || out == 0);
                    CHECK(after - before == in - out);
                }
                CHECK(max - min <= 1);
                /* The fewest moves possible: the departed groups' slots, plus what each
                 * group holds beyond its share when the groups holding the most keep the
                 * extra slots. */
                uint32_t befores[CRAFT_SHARD_GROUPS_MAX], m = n->n_groups, expect = 0;
                for (uint32_t i = 0; i < m; i++)
                    befores[i] = craft_shard_group_slots(c, n->groups[i].gid);
                for (uint32_t i = 1; i < m; i++) /* descending */
                    for (uint32_t j = i; j > 0 && befores[j - 1] < befores[j]; j--) {
                        uint32_t x = befores[j];
                        befores[j] = befores[j - 1];
                        befores[j - 1] = x;
                    }
                for (uint32_t i = 0; i < c->n_groups; i++)
                    if (craft_shard_group_slots(n, c->groups[i].gid) == 0 &&
                        craft_shard_group_slots(c, c->groups[i].gid) > 0) {
                        bool stays = false;
                        for (uint32_t j = 0; j < m; j++)
                            stays |= n->groups[j].gid == c->groups[i].gid;
                        if (!stays)
                            expect += craft_shard_group_slots(c, c->groups[i].gid);
                    }
                for (uint32_t s2 = 0; s2 < CRAFT_SLOTS; s2++)
                    expect += craft_shard_slot_gid(c, (uint16_t)s2) == 0; /* configuration 0 */
                for (uint32_t i = 0; i < m; i++) {
                    uint32_t target = CRAFT_SLOTS / m + (i < CRAFT_SLOTS % m ? 1 : 0);
                    expect += befores[i] > target ? befores[i] - target : 0;
                }
                CHECK(moved(c, n) == expect);
            }
            memcpy(c, n, sizeof *c);
        }
        free(c);
        free(n);
        free(again);
    }
}

int main(void)
{
    run_case("key_slots", key_slots);
    run_case("basic", basic);
    run_case("refused", refused);
    run_case("move", move);
    run_case("minimal_again", minimal_again);
    run_case("random_changes", random_changes);
    run_case("codec", codec);
    return unit_finish();
}
