/* TCP transport on 127.0.0.1 with ephemeral ports. Every wait is for a condition with a
 * generous deadline (WAIT_MS): timing never decides a pass, only a hang fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "transport/frame.h"
#include "transport/tcp_transport.h"
#include "unit.h"

#define CLUSTER 7
#define WAIT_MS 10000
#define N_MAX 4 /* node ids 1..3 */
#define FRAME_MAX 4096
#define N_MSGS 10000

/* ---- a node: a transport plus what it received, per sender ---- */

struct node {
    uint64_t id;
    struct craft_transport *t;
    uint16_t port;
    pthread_mutex_t mu;
    uint64_t next_seq[N_MAX]; /* per sender: the next seq expected (strict mode) */
    uint64_t last_seq[N_MAX]; /* per sender: the last seq seen + 1 */
    uint64_t n_rx[N_MAX];
    uint64_t n_tag[N_MAX][4]; /* per sender and tag */
    uint64_t n_order_err, n_content_err;
    bool strict; /* no loss allowed: seq must be exactly next_seq */
};

static struct node nodes[N_MAX];
static bool g_driven; /* node_start makes driven transports */

/* Message: u64 seq | u8 tag | filler (seq + i), length 9 + seq % 200. */
static size_t make_msg(uint8_t *buf, uint64_t seq, uint8_t tag)
{
    size_t len = 9 + seq % 200;
    memcpy(buf, &seq, 8);
    buf[8] = tag;
    for (size_t i = 9; i < len; i++) {
        buf[i] = (uint8_t)(seq + i);
    }
    return len;
}

/* The group a message is sent to: a function of its bytes, so the receiver can check the
 * group id travelled with it. */
static uint64_t msg_group(const uint8_t *buf, size_t len)
{
    uint64_t seq = 0;
    if (len >= 9) {
        memcpy(&seq, buf, 8);
    }
    return seq * 7 + (len >= 9 ? buf[8] : 0) + (seq % 3 == 0 ? (uint64_t)1 << 63 : 0);
}

static void on_recv(void *ctx, uint64_t from, uint64_t group, const uint8_t *bytes, size_t len)
{
    struct node *n = ctx;
    uint64_t seq = 0;
    bool content_ok = len >= 9 && from > 0 && from < N_MAX && group == msg_group(bytes, len);
    if (content_ok) {
        memcpy(&seq, bytes, 8);
        content_ok = len == 9 + seq % 200 && bytes[8] < 4;
        for (size_t i = 9; content_ok && i < len; i++) {
            content_ok = bytes[i] == (uint8_t)(seq + i);
        }
    }
    pthread_mutex_lock(&n->mu);
    if (!content_ok) {
        n->n_content_err++;
    } else {
        if (n->strict ? seq != n->next_seq[from] : seq < n->last_seq[from]) {
            n->n_order_err++;
        }
        n->next_seq[from] = seq + 1;
        n->last_seq[from] = seq + 1;
        n->n_rx[from]++;
        n->n_tag[from][bytes[8]]++;
    }
    pthread_mutex_unlock(&n->mu);
}

/* ---- the log sink: lines kept for the refusal checks ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[1 << 16];
static size_t log_len;

static void on_log(void *ctx, const char *line)
{
    (void)ctx;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(line);
    if (log_len + n + 2 < sizeof(log_text)) {
        memcpy(log_text + log_len, line, n);
        log_len += n;
        log_text[log_len++] = '\n';
        log_text[log_len] = '\0';
    }
    pthread_mutex_unlock(&log_mu);
    if (getenv("TRANSPORT_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "%s\n", line);
    }
}

static bool log_has(const char *s)
{
    pthread_mutex_lock(&log_mu);
    bool found = strstr(log_text, s) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

static void log_reset(void)
{
    pthread_mutex_lock(&log_mu);
    log_len = 0;
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_mu);
}

/* ---- helpers ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

/* Polls pred until it holds or WAIT_MS passes; returns whether it held. */
static bool wait_for(bool (*pred)(void *), void *arg)
{
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (!pred(arg)) {
        if (mono_ms() > deadline) {
            return false;
        }
        nap();
    }
    return true;
}

static uint64_t rx_count(struct node *n, uint64_t from)
{
    pthread_mutex_lock(&n->mu);
    uint64_t c = n->n_rx[from];
    pthread_mutex_unlock(&n->mu);
    return c;
}

static uint64_t tag_count(struct node *n, uint64_t from, uint8_t tag)
{
    pthread_mutex_lock(&n->mu);
    uint64_t c = n->n_tag[from][tag];
    pthread_mutex_unlock(&n->mu);
    return c;
}

static void node_reset(struct node *n, uint64_t id, bool strict)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->strict = strict;
    pthread_mutex_init(&n->mu, NULL);
}

/* Starts node id knowing peers [1..n_nodes] plus extra unknown-address ids. */
static bool node_start(struct node *n, size_t n_nodes, uint16_t listen_port,
                       size_t queue_bytes_max)
{
    struct craft_peer_addr peers[N_MAX];
    size_t np = 0;
    for (uint64_t i = 1; i < N_MAX; i++) {
        if (i > n_nodes && i != 3) {
            continue;
        }
        peers[np].id = i;
        snprintf(peers[np].host, sizeof(peers[np].host), "127.0.0.1");
        peers[np].port = i <= n_nodes ? nodes[i].port : 0; /* 0: not known */
        np++;
    }
    struct craft_tcp_config cfg = {
        .cluster_id = CLUSTER,
        .self_id = n->id,
        .peers = peers,
        .n_peers = np,
        .listen_host = "127.0.0.1",
        .listen_port = listen_port,
        .frame_bytes_max = FRAME_MAX,
        .peer_queue_bytes_max = queue_bytes_max,
        .backoff_min_ms = 5,
        .backoff_max_ms = 100,
        .seed = 1234,
        .recv = on_recv,
        .recv_ctx = n,
        .log = on_log,
        .driven = g_driven,
    };
    int err;
    n->t = craft_tcp_transport_create(&cfg, &err);
    if (n->t == NULL) {
        return false;
    }
    n->port = craft_tcp_transport_port(n->t);
    return n->port != 0;
}

/* Tells every running node the current ports of nodes 1..n_nodes. */
static void publish_ports(size_t n_nodes)
{
    for (uint64_t a = 1; a <= n_nodes; a++) {
        for (uint64_t b = 1; b <= n_nodes; b++) {
            if (a != b && nodes[a].t != NULL) {
                CHECK(craft_tcp_transport_set_peer(nodes[a].t, b, "127.0.0.1", nodes[b].port) ==
                      CRAFT_OK);
            }
        }
    }
}

static void node_stop(struct node *n)
{
    if (n->t != NULL) {
        craft_transport_close(n->t);
        n->t = NULL;
    }
}

static void node_destroy(struct node *n)
{
    node_stop(n);
    pthread_mutex_destroy(&n->mu);
}

/* Sends, retrying while the queue is full (CRAFT_EBUSY is back-pressure, not failure). */
static int send_retry(struct craft_transport *t, uint64_t to, const uint8_t *b, size_t len)
{
    uint64_t deadline = mono_ms() + WAIT_MS;
    for (;;) {
        int rc = craft_transport_send(t, to, msg_group(b, len), b, len);
        if (rc != CRAFT_EBUSY || mono_ms() > deadline) {
            return rc;
        }
        sched_yield();
    }
}

/* ---- case: 3 nodes, 10k messages each way, in order ---- */

struct sender {
    struct node *n;
    size_t n_nodes;
    uint64_t count;
    int n_errors;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    uint8_t buf[256];
    for (uint64_t seq = 0; seq < s->count; seq++) {
        for (uint64_t to = 1; to <= s->n_nodes; to++) {
            if (to == s->n->id) {
                continue;
            }
            size_t len = make_msg(buf, seq, 0);
            if (send_retry(s->n->t, to, buf, len) != CRAFT_OK) {
                s->n_errors++;
            }
        }
    }
    return NULL;
}

struct want {
    size_t n_nodes;
    uint64_t count;
};

static bool all_received(void *arg)
{
    struct want *w = arg;
    for (uint64_t a = 1; a <= w->n_nodes; a++) {
        for (uint64_t b = 1; b <= w->n_nodes; b++) {
            if (a != b && rx_count(&nodes[b], a) < w->count) {
                return false;
            }
        }
    }
    return true;
}

static void test_exchange_in_order(void)
{
    for (uint64_t i = 1; i <= 3; i++) {
        node_reset(&nodes[i], i, true);
    }
    for (uint64_t i = 1; i <= 3; i++) {
        CHECK(node_start(&nodes[i], 3, 0, 64 << 10)); /* small queues: back-pressure */
    }
    publish_ports(3);
    struct sender s[N_MAX];
    pthread_t th[N_MAX];
    for (uint64_t i = 1; i <= 3; i++) {
        s[i] = (struct sender){.n = &nodes[i], .n_nodes = 3, .count = N_MSGS};
        CHECK(pthread_create(&th[i], NULL, sender_main, &s[i]) == 0);
    }
    for (uint64_t i = 1; i <= 3; i++) {
        pthread_join(th[i], NULL);
        CHECK(s[i].n_errors == 0);
    }
    struct want w = {3, N_MSGS};
    CHECK(wait_for(all_received, &w));
    for (uint64_t i = 1; i <= 3; i++) {
        pthread_mutex_lock(&nodes[i].mu);
        CHECK(nodes[i].n_order_err == 0);
        CHECK(nodes[i].n_content_err == 0);
        for (uint64_t f = 1; f <= 3; f++) {
            CHECK(nodes[i].n_rx[f] == (f == i ? 0 : N_MSGS));
        }
        pthread_mutex_unlock(&nodes[i].mu);
    }
    for (uint64_t i = 1; i <= 3; i++) {
        node_destroy(&nodes[i]);
    }
}

/* ---- case: send errors; the queue limit with an unreachable peer ---- */

static void test_send_errors(void)
{
    node_reset(&nodes[1], 1, true);
    node_reset(&nodes[2], 2, true);
    CHECK(node_start(&nodes[1], 2, 0, 1000)); /* node 2's address unknown: nothing drains */
    struct craft_transport *t = nodes[1].t;
    uint8_t buf[FRAME_MAX + 1] = {0};
    CHECK(craft_transport_send(t, 9, msg_group(buf, 10), buf, 10) == CRAFT_EUNKNOWNPEER);
    CHECK(craft_transport_send(t, 1, msg_group(buf, 10), buf, 10) == CRAFT_EUNKNOWNPEER);
    CHECK(craft_transport_send(t, 2, msg_group(buf, 0), buf, 0) == CRAFT_EINVAL);
    CHECK(craft_transport_send(t, 2, 5, buf, FRAME_MAX + 1) == CRAFT_ETOOBIG);
    /* 1000 bytes of queue: 9 frames of 12 (length, group) + 99 bytes fit, the 10th does
     * not. */
    for (int i = 0; i < 9; i++) {
        CHECK(craft_transport_send(t, 2, msg_group(buf, 99), buf, 99) == CRAFT_OK);
    }
    CHECK(craft_transport_send(t, 2, msg_group(buf, 99), buf, 99) == CRAFT_EBUSY);
    CHECK(craft_tcp_transport_set_peer(t, 0, "127.0.0.1", 1) == CRAFT_EINVAL);
    /* An unknown peer is added (a server joining the cluster); sending to it then queues. */
    CHECK(craft_tcp_transport_set_peer(t, 9, "127.0.0.1", 1) == CRAFT_OK);
    CHECK(craft_transport_send(t, 9, msg_group(buf, 10), buf, 10) == CRAFT_OK);
    CHECK(craft_tcp_transport_set_peer(t, 2, "localhost", 1) == CRAFT_EINVAL);
    /* Once node 2 appears, the queued frames drain and sending works again. */
    CHECK(node_start(&nodes[2], 2, 0, 1000));
    publish_ports(2);
    uint8_t m[256];
    for (uint64_t seq = 0; seq < 50; seq++) {
        CHECK(send_retry(nodes[2].t, 1, m, make_msg(m, seq, 1)) == CRAFT_OK);
    }
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (rx_count(&nodes[1], 2) < 50 && mono_ms() < deadline) {
        nap();
    }
    CHECK(rx_count(&nodes[1], 2) == 50);
    /* The 9 zero-filled frames reached node 2 and count as malformed test messages. */
    deadline = mono_ms() + WAIT_MS;
    for (;;) {
        pthread_mutex_lock(&nodes[2].mu);
        uint64_t bad = nodes[2].n_content_err;
        pthread_mutex_unlock(&nodes[2].mu);
        if (bad == 9 || mono_ms() > deadline) {
            CHECK(bad == 9);
            break;
        }
        nap();
    }
    CHECK(craft_transport_send(t, 2, msg_group(buf, 100), buf, 100) == CRAFT_OK);
    node_destroy(&nodes[1]);
    node_destroy(&nodes[2]);
}

/* ---- case: a restarted peer is reconnected to ---- */

struct flow {
    uint64_t from, to;
    uint8_t tag;
    uint64_t *seq;
};

/* Sends one more tagged message and reports whether one with that tag arrived. */
static bool tagged_arrives(void *arg)
{
    struct flow *f = arg;
    if (tag_count(&nodes[f->to], f->from, f->tag) > 0) {
        return true;
    }
    uint8_t buf[256];
    size_t len = make_msg(buf, (*f->seq)++, f->tag);
    int rc = craft_transport_send(nodes[f->from].t, f->to, msg_group(buf, len), buf, len);
    CHECK(rc == CRAFT_OK || rc == CRAFT_EBUSY);
    return false;
}

static void send_n(uint64_t from, uint64_t to, uint64_t *seq, uint64_t count, uint8_t tag)
{
    uint8_t buf[256];
    for (uint64_t i = 0; i < count; i++) {
        CHECK(send_retry(nodes[from].t, to, buf, make_msg(buf, (*seq)++, tag)) == CRAFT_OK);
    }
}

static bool tag_done(void *arg)
{
    struct flow *f = arg;
    return tag_count(&nodes[f->to], f->from, f->tag) >= 1000;
}

static void test_restart_reconnects(void)
{
    node_reset(&nodes[1], 1, false);
    node_reset(&nodes[2], 2, false);
    CHECK(node_start(&nodes[1], 2, 0, 1 << 20));
    CHECK(node_start(&nodes[2], 2, 0, 1 << 20));
    publish_ports(2);
    uint64_t seq12 = 0, seq21 = 0;
    struct flow f12 = {1, 2, 1, &seq12}, f21 = {2, 1, 1, &seq21};
    CHECK(wait_for(tagged_arrives, &f12));
    CHECK(wait_for(tagged_arrives, &f21));

    /* Restart node 2 on the same port (the address node 1 knows). */
    uint16_t port2 = nodes[2].port;
    node_stop(&nodes[2]);
    send_n(1, 2, &seq12, 100, 1); /* into a dead peer: lost or queued, never an error */
    node_destroy(&nodes[2]);
    node_reset(&nodes[2], 2, false);
    nodes[2].port = port2;
    if (!node_start(&nodes[2], 2, port2, 1 << 20)) {
        /* The port was taken meanwhile: fall back to telling node 1 the new one. */
        CHECK(node_start(&nodes[2], 2, 0, 1 << 20));
        CHECK(craft_tcp_transport_set_peer(nodes[1].t, 2, "127.0.0.1", nodes[2].port) ==
              CRAFT_OK);
    }
    struct flow g12 = {1, 2, 2, &seq12}, g21 = {2, 1, 2, &seq21};
    CHECK(wait_for(tagged_arrives, &g12));
    CHECK(wait_for(tagged_arrives, &g21));
    /* Now connected both ways: a full batch arrives, complete and in order. */
    struct flow h12 = {1, 2, 3, &seq12}, h21 = {2, 1, 3, &seq21};
    send_n(1, 2, &seq12, 1000, 3);
    send_n(2, 1, &seq21, 1000, 3);
    CHECK(wait_for(tag_done, &h12));
    CHECK(wait_for(tag_done, &h21));
    for (uint64_t i = 1; i <= 2; i++) {
        pthread_mutex_lock(&nodes[i].mu);
        CHECK(nodes[i].n_order_err == 0 && nodes[i].n_content_err == 0);
        pthread_mutex_unlock(&nodes[i].mu);
    }
    node_destroy(&nodes[1]);
    node_destroy(&nodes[2]);
}

/* ---- raw clients: refusals and bad frames ---- */

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void raw_send(int fd, const void *b, size_t len)
{
    ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
    CHECK(n == (ssize_t)len);
}

/* True if the server closes fd (EOF or reset) within WAIT_MS. */
static bool raw_closed(int fd)
{
    uint64_t deadline = mono_ms() + WAIT_MS;
    uint8_t b[256];
    while (mono_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            ssize_t n = recv(fd, b, sizeof(b), 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) {
                return true;
            }
        }
    }
    return false;
}

static void raw_handshake(int fd, uint64_t cluster, uint64_t from, uint64_t to)
{
    struct craft_handshake hs = {.cluster_id = cluster, .from = from, .to = to};
    uint8_t b[CRAFT_FRAME_HEADER_BYTES + CRAFT_HANDSHAKE_BYTES];
    raw_send(fd, b, craft_handshake_encode(&hs, b));
}

static bool log_has_arg(void *arg)
{
    return log_has(arg);
}

static void test_refusals(void)
{
    log_reset();
    node_reset(&nodes[1], 1, true);
    node_reset(&nodes[2], 2, true);
    CHECK(node_start(&nodes[1], 2, 0, 1 << 20));
    uint16_t port = nodes[1].port;
    int fd = raw_connect(port);
    CHECK(fd >= 0);
    raw_handshake(fd, CLUSTER + 1, 2, 1);
    CHECK(raw_closed(fd));
    CHECK(wait_for(log_has_arg, "foreign cluster id 8, ours is 7"));
    close(fd);

    fd = raw_connect(port);
    raw_handshake(fd, CLUSTER, 99, 1);
    CHECK(raw_closed(fd));
    CHECK(wait_for(log_has_arg, "unknown node 99"));
    close(fd);

    fd = raw_connect(port);
    raw_handshake(fd, CLUSTER, 2, 5);
    CHECK(raw_closed(fd));
    CHECK(wait_for(log_has_arg, "addressed to node 5, this is node 1"));
    close(fd);

    /* A real transport of another cluster is refused the same way. */
    struct craft_peer_addr peer = {.id = 1, .host = "127.0.0.1", .port = port};
    struct craft_tcp_config cfg = {
        .cluster_id = 8, .self_id = 2, .peers = &peer, .n_peers = 1,
        .listen_host = "127.0.0.1", .recv = on_recv, .recv_ctx = &nodes[2], .log = on_log,
        .backoff_min_ms = 5, .backoff_max_ms = 50,
    };
    int err;
    struct craft_transport *foreign = craft_tcp_transport_create(&cfg, &err);
    CHECK(foreign != NULL);
    uint8_t m[64];
    size_t mlen = make_msg(m, 0, 0);
    CHECK(craft_transport_send(foreign, 1, msg_group(m, mlen), m, mlen) == CRAFT_OK);
    CHECK(wait_for(log_has_arg, "(node 2): foreign cluster id 8"));
    craft_transport_close(foreign);
    CHECK(rx_count(&nodes[1], 2) == 0);
    node_destroy(&nodes[1]);
    node_destroy(&nodes[2]);
}

struct count_want {
    struct node *n;
    uint64_t from, count;
};

static bool count_reached(void *arg)
{
    struct count_want *c = arg;
    return rx_count(c->n, c->from) >= c->count;
}

static void test_bad_frames(void)
{
    log_reset();
    node_reset(&nodes[1], 1, true);
    node_reset(&nodes[2], 2, true);
    CHECK(node_start(&nodes[1], 2, 0, 1 << 20)); /* knows nodes 2 and 3 */
    CHECK(node_start(&nodes[2], 2, 0, 1 << 20));
    publish_ports(2);
    uint64_t seq = 0;
    send_n(2, 1, &seq, 100, 0);
    struct count_want c = {&nodes[1], 2, 100};
    CHECK(wait_for(count_reached, &c));

    /* Oversized frame after a valid handshake (as node 3, so node 2's link stays). */
    int fd = raw_connect(nodes[1].port);
    raw_handshake(fd, CLUSTER, 3, 1);
    uint8_t hdr[CRAFT_MESSAGE_HEADER_BYTES];
    craft_frame_header_encode(hdr, FRAME_MAX + CRAFT_GROUP_ID_BYTES + 1);
    raw_send(fd, hdr, 4);
    CHECK(raw_closed(fd));
    CHECK(wait_for(log_has_arg, "bad frame (" ));
    close(fd);

    /* A frame with a group id and no message. */
    log_reset();
    fd = raw_connect(nodes[1].port);
    raw_handshake(fd, CLUSTER, 3, 1);
    craft_message_header_encode(hdr, 7, 0);
    raw_send(fd, hdr, sizeof hdr);
    CHECK(raw_closed(fd));
    CHECK(wait_for(log_has_arg, "bad frame (" ));
    close(fd);

    /* Garbage instead of a handshake: an HTTP request. */
    log_reset();
    fd = raw_connect(nodes[1].port);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_send(fd, http, strlen(http));
    CHECK(raw_closed(fd));
    CHECK(wait_for(log_has_arg, "before its handshake"));
    close(fd);

    /* Garbage with a plausible length: a malformed handshake payload. */
    log_reset();
    fd = raw_connect(nodes[1].port);
    uint8_t junk[4 + CRAFT_HANDSHAKE_BYTES];
    craft_frame_header_encode(junk, CRAFT_HANDSHAKE_BYTES);
    for (size_t i = 4; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 37);
    }
    raw_send(fd, junk, sizeof(junk));
    CHECK(raw_closed(fd));
    CHECK(wait_for(log_has_arg, "bad handshake"));
    close(fd);

    /* A zero-length frame after the handshake. */
    fd = raw_connect(nodes[1].port);
    raw_handshake(fd, CLUSTER, 3, 1);
    craft_frame_header_encode(hdr, 0);
    raw_send(fd, hdr, 4);
    CHECK(raw_closed(fd));
    close(fd);

    /* Node 1 still serves node 2 on the same connection: order continues unbroken. */
    send_n(2, 1, &seq, 100, 0);
    c.count = 200;
    CHECK(wait_for(count_reached, &c));
    pthread_mutex_lock(&nodes[1].mu);
    CHECK(nodes[1].n_order_err == 0 && nodes[1].n_content_err == 0);
    CHECK(nodes[1].n_rx[3] == 0);
    pthread_mutex_unlock(&nodes[1].mu);
    node_destroy(&nodes[1]);
    node_destroy(&nodes[2]);
}

/* ---- case: shutdown with traffic in flight ---- */

static void test_shutdown_in_flight(void)
{
    for (uint64_t i = 1; i <= 3; i++) {
        node_reset(&nodes[i], i, false);
    }
    for (uint64_t i = 1; i <= 3; i++) {
        CHECK(node_start(&nodes[i], 3, 0, 4 << 20));
    }
    publish_ports(3);
    struct sender s[N_MAX];
    pthread_t th[N_MAX];
    for (uint64_t i = 1; i <= 3; i++) {
        s[i] = (struct sender){.n = &nodes[i], .n_nodes = 3, .count = 5000};
        CHECK(pthread_create(&th[i], NULL, sender_main, &s[i]) == 0);
    }
    for (uint64_t i = 1; i <= 3; i++) {
        pthread_join(th[i], NULL);
    }
    /* Queues are full of unsent frames and sockets of unread ones: close now. */
    node_destroy(&nodes[2]);
    node_destroy(&nodes[1]);
    node_destroy(&nodes[3]);
}

/* ---- case: driven transports (no thread of their own), as the runtime's loop runs them ---- */

struct driver {
    struct node *n;
    uint64_t peer;
    uint64_t count; /* messages to send from the owner thread, 100 per round */
    atomic_bool stop;
    int n_errors;
};

/* The owner: rounds of poll, sends made on this thread (no wake-up), flush. */
static void *driver_main(void *arg)
{
    struct driver *d = arg;
    uint8_t buf[256];
    uint64_t seq = 0;
    uint64_t deadline = mono_ms() + WAIT_MS;
    while (!atomic_load(&d->stop) && mono_ms() < deadline) {
        craft_tcp_transport_poll(d->n->t, seq < d->count ? 0 : 50);
        for (int i = 0; i < 100 && seq < d->count; i++, seq++) {
            size_t len = make_msg(buf, seq, 0);
            if (send_retry(d->n->t, d->peer, buf, len) != CRAFT_OK) {
                d->n_errors++;
            }
        }
        craft_tcp_transport_flush(d->n->t);
    }
    return NULL;
}

static bool tag1_received(void *arg)
{
    struct want *w = arg;
    return tag_count(&nodes[2], 1, 1) >= w->count;
}

static void test_driven(void)
{
    g_driven = true;
    for (uint64_t i = 1; i <= 2; i++) {
        node_reset(&nodes[i], i, false);
    }
    for (uint64_t i = 1; i <= 2; i++) {
        CHECK(node_start(&nodes[i], 2, 0, 64 << 10));
    }
    g_driven = false;
    publish_ports(2);
    struct driver d[3];
    pthread_t th[3];
    for (uint64_t i = 1; i <= 2; i++) {
        d[i] = (struct driver){.n = &nodes[i], .peer = 3 - i, .count = N_MSGS};
        atomic_init(&d[i].stop, false);
        CHECK(pthread_create(&th[i], NULL, driver_main, &d[i]) == 0);
    }
    struct want w = {2, N_MSGS};
    CHECK(wait_for(all_received, &w));
    /* Another thread's sends wake the owner's poll and go out from it. */
    uint8_t buf[256];
    for (uint64_t seq = N_MSGS; seq < N_MSGS + 100; seq++) {
        size_t len = make_msg(buf, seq, 1);
        CHECK(send_retry(nodes[1].t, 2, buf, len) == CRAFT_OK);
    }
    struct want w1 = {2, 100};
    CHECK(wait_for(tag1_received, &w1));
    for (uint64_t i = 1; i <= 2; i++) {
        atomic_store(&d[i].stop, true);
        pthread_join(th[i], NULL);
        CHECK(d[i].n_errors == 0);
        pthread_mutex_lock(&nodes[i].mu);
        CHECK(nodes[i].n_order_err == 0);
        CHECK(nodes[i].n_content_err == 0);
        pthread_mutex_unlock(&nodes[i].mu);
    }
    for (uint64_t i = 1; i <= 2; i++) {
        node_destroy(&nodes[i]); /* close from a thread that is not the owner */
    }
}

int main(void)
{
    memset(nodes, 0, sizeof(nodes));
    run_case("exchange_in_order", test_exchange_in_order);
    run_case("send_errors", test_send_errors);
    run_case("restart_reconnects", test_restart_reconnects);
    run_case("refusals", test_refusals);
    run_case("bad_frames", test_bad_frames);
    run_case("shutdown_in_flight", test_shutdown_in_flight);
    run_case("driven", test_driven);
    return unit_finish();
}
