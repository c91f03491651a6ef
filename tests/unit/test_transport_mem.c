/* In-memory transport: delivery, order, limits, drops, determinism of the pump. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/prng.h"
#include "transport/mem_transport.h"
#include "unit.h"

#define N_NODES 3
#define LOG_MAX 4096

struct rx {
    uint64_t id;
    size_t n;
    uint64_t from[LOG_MAX];
    uint32_t seq[LOG_MAX];
    struct craft_transport *self; /* for echo */
    bool echo;
};

static void on_recv(void *ctx, uint64_t from, uint64_t group, const uint8_t *bytes, size_t len)
{
    struct rx *r = ctx;
    CHECK(len >= 4);
    uint32_t seq;
    memcpy(&seq, bytes, 4);
    CHECK(group == (uint64_t)seq * 3 + 1); /* the group travels beside the message */
    for (size_t i = 4; i < len; i++) {
        CHECK(bytes[i] == (uint8_t)(seq + i));
    }
    if (r->n < LOG_MAX) {
        r->from[r->n] = from;
        r->seq[r->n] = seq;
        r->n++;
    }
    if (r->echo) {
        CHECK(craft_transport_send(r->self, from, group, bytes, len) == CRAFT_OK);
    }
}

static size_t make_msg(uint8_t *buf, uint32_t seq)
{
    size_t len = 4 + seq % 37;
    memcpy(buf, &seq, 4);
    for (size_t i = 4; i < len; i++) {
        buf[i] = (uint8_t)(seq + i);
    }
    return len;
}

static void test_delivery_order(void)
{
    struct craft_mem_hub *hub = craft_mem_hub_create(1024, 1 << 20);
    static struct rx rx[N_NODES + 1];
    struct craft_transport *t[N_NODES + 1];
    memset(rx, 0, sizeof(rx));
    for (uint64_t i = 1; i <= N_NODES; i++) {
        rx[i].id = i;
        t[i] = craft_mem_transport_create(hub, i, on_recv, &rx[i]);
        CHECK(t[i] != NULL);
    }
    uint8_t buf[64];
    /* Nothing moves before a pump. */
    for (uint32_t s = 0; s < 100; s++) {
        for (uint64_t a = 1; a <= N_NODES; a++) {
            for (uint64_t b = 1; b <= N_NODES; b++) {
                if (a != b) {
                    size_t len = make_msg(buf, s);
                    CHECK(craft_transport_send(t[a], b, (uint64_t)s * 3 + 1, buf, len) == CRAFT_OK);
                }
            }
        }
    }
    CHECK(rx[1].n == 0 && rx[2].n == 0 && rx[3].n == 0);
    CHECK(craft_mem_hub_queued(hub) == 600);
    CHECK(craft_mem_hub_pump(hub) == 600);
    CHECK(craft_mem_hub_queued(hub) == 0);
    for (uint64_t i = 1; i <= N_NODES; i++) {
        CHECK(rx[i].n == 200);
        uint32_t next[N_NODES + 1] = {0};
        for (size_t k = 0; k < rx[i].n; k++) {
            CHECK(rx[i].from[k] != i);
            CHECK(rx[i].seq[k] == next[rx[i].from[k]]);
            next[rx[i].from[k]]++;
        }
    }
    for (uint64_t i = 1; i <= N_NODES; i++) {
        craft_transport_close(t[i]);
    }
    craft_mem_hub_destroy(hub);
}

static void test_errors_and_limits(void)
{
    struct craft_mem_hub *hub = craft_mem_hub_create(100, 250);
    static struct rx r1, r2;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    struct craft_transport *a = craft_mem_transport_create(hub, 1, on_recv, &r1);
    struct craft_transport *b = craft_mem_transport_create(hub, 2, on_recv, &r2);
    CHECK(craft_mem_transport_create(hub, 1, on_recv, &r1) == NULL); /* duplicate */
    CHECK(craft_mem_transport_create(hub, 0, on_recv, &r1) == NULL);
    uint8_t buf[128] = {0};
    for (size_t i = 4; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)i; /* seq 0: a valid message at every length */
    }
    CHECK(craft_transport_send(a, 3, 1, buf, 4) == CRAFT_EUNKNOWNPEER);
    CHECK(craft_transport_send(a, 1, 1, buf, 4) == CRAFT_EUNKNOWNPEER);
    CHECK(craft_transport_send(a, 2, 1, buf, 0) == CRAFT_EINVAL);
    CHECK(craft_transport_send(a, 2, 1, buf, 101) == CRAFT_ETOOBIG);
    CHECK(craft_transport_send(a, 2, 1, buf, 100) == CRAFT_OK);
    CHECK(craft_transport_send(a, 2, 1, buf, 100) == CRAFT_OK);
    CHECK(craft_transport_send(a, 2, 1, buf, 100) == CRAFT_EBUSY); /* 300 > 250 */
    CHECK(craft_transport_send(a, 2, 1, buf, 50) == CRAFT_OK);     /* exactly 250 */
    CHECK(craft_transport_send(b, 1, 1, buf, 100) == CRAFT_OK); /* another pair's queue */
    CHECK(craft_mem_hub_pump(hub) == 4);
    CHECK(craft_transport_send(a, 2, 1, buf, 100) == CRAFT_OK); /* room again */
    /* A receiver that leaves drops what was queued for it. */
    craft_transport_close(b);
    CHECK(craft_mem_hub_pump(hub) == 0);
    CHECK(craft_mem_hub_dropped(hub) == 1);
    craft_transport_close(a);
    craft_mem_hub_destroy(hub);
}

/* Echo ping-pong: messages sent from callbacks wait for the next round, and the whole
 * exchange is identical for identical inputs. */
static void run_echo(uint64_t seed, uint64_t *digest, size_t *rounds)
{
    struct craft_mem_hub *hub = craft_mem_hub_create(1024, 1 << 20);
    static struct rx r1, r2;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    struct craft_transport *a = craft_mem_transport_create(hub, 1, on_recv, &r1);
    struct craft_transport *b = craft_mem_transport_create(hub, 2, on_recv, &r2);
    r2.self = b;
    r2.echo = true;
    struct craft_prng prng;
    craft_prng_seed(&prng, seed);
    uint8_t buf[64];
    for (int i = 0; i < 50; i++) {
        uint32_t s = (uint32_t)craft_prng_range(&prng, 0, 1000);
        CHECK(craft_transport_send(a, 2, (uint64_t)s * 3 + 1, buf, make_msg(buf, s)) == CRAFT_OK);
    }
    CHECK(craft_mem_hub_pump(hub) == 50);
    CHECK(r2.n == 50 && r1.n == 0);
    CHECK(craft_mem_hub_queued(hub) == 50);
    *rounds = 1;
    *rounds += craft_mem_hub_pump_all(hub, 10) > 0;
    CHECK(r1.n == 50);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < r1.n; i++) {
        CHECK(r1.seq[i] == r2.seq[i]);
        h = (h ^ r1.seq[i]) * 1099511628211ull;
    }
    *digest = h;
    craft_transport_close(a);
    craft_transport_close(b);
    craft_mem_hub_destroy(hub);
}

static void test_echo_deterministic(void)
{
    static const uint64_t seeds[] = {1, 2, 42};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        cur_seed = seeds[i];
        uint64_t d1, d2;
        size_t r1, r2;
        run_echo(seeds[i], &d1, &r1);
        run_echo(seeds[i], &d2, &r2);
        CHECK(d1 == d2 && r1 == 2 && r2 == 2);
    }
}

int main(void)
{
    run_case("delivery_order", test_delivery_order);
    run_case("errors_and_limits", test_errors_and_limits);
    run_case("echo_deterministic", test_echo_deterministic);
    return unit_finish();
}
