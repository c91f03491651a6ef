/* craft_kv_client (src/kv/kv_client.c) against three craftkv servers run in this process,
 * and against fake servers that answer scripted bytes: every node as the only seed,
 * exactly-once by hand (CRAFT.FWD resent), the leader destroyed and restarted under a
 * writing client (no lost or doubled INCR), every node down, leader hints (an address,
 * "?" then INFO), resends byte-identical after TRYAGAIN and a dropped connection, a resumed
 * session, and malformed or oversized replies (an error, never a crash). Waits use
 * generous deadlines; nothing asserts on how long anything took. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "craft_kv_client.h"
#include "kv/resp.h"
#include "kv/server.h"
#include "unit.h"

#define N_NODES 3
#define WAIT_MS 20000u          /* how long to wait for a condition before failing */
#define CLIENT_TIMEOUT_MS 15000u /* above the servers' 3 s: their own retries fit inside */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- an in-process cluster -------------------------------------------------------------- */

struct node {
    char dir[256];
    struct craftkv_opts opts;
    struct craftkv_server *srv;
    pthread_t loop;
    volatile sig_atomic_t stop;
};

static char tmp_dir[] = "/tmp/test_kv_client.XXXXXX";
static struct node nodes[N_NODES];
static int base_port;

static void *loop_main(void *arg)
{
    struct node *n = arg;
    craftkv_server_run(n->srv, &n->stop);
    return NULL;
}

static int node_start(int i, char *err, size_t cap)
{
    struct node *n = &nodes[i];
    if (craftkv_server_start(&n->opts, &n->srv, err, cap) != 0)
        return -1;
    n->stop = 0;
    if (pthread_create(&n->loop, NULL, loop_main, n) != 0) {
        craftkv_server_destroy(n->srv);
        n->srv = NULL;
        snprintf(err, cap, "pthread_create");
        return -1;
    }
    return 0;
}

static void node_stop(int i)
{
    struct node *n = &nodes[i];
    if (!n->srv)
        return;
    craftkv_server_stop(n->srv);
    pthread_join(n->loop, NULL);
    craftkv_server_destroy(n->srv);
    n->srv = NULL;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    if (strlen(path) > 500)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%.500s'", path);
    if (system(cmd) != 0)
        printf("could not remove %s\n", path);
}

/* Starts N_NODES servers on ports from a random base in [20000, 29000): client ports
 * base+i, peer ports base+100+i; another base if one is taken. */
static bool cluster_start(void)
{
    char err[512] = "";
    for (int attempt = 0; attempt < 10; attempt++) {
        base_port = 20000 + rand() % (9000 - 200);
        bool ok = true;
        for (int i = 0; i < N_NODES; i++) {
            struct node *n = &nodes[i];
            memset(&n->opts, 0, sizeof n->opts);
            snprintf(n->dir, sizeof n->dir, "%s/n%d", tmp_dir, i + 1);
            rm_rf(n->dir);
            if (mkdir(n->dir, 0700) != 0) {
                printf("mkdir %s: %s\n", n->dir, strerror(errno));
                return false;
            }
            n->opts.id = (uint64_t)i + 1;
            n->opts.data_dir = n->dir;
            n->opts.timeout_ms = 3000;
            n->opts.workers = 8;
            n->opts.n_members = N_NODES;
            for (int j = 0; j < N_NODES; j++) {
                struct craftkv_member *m = &n->opts.members[j];
                m->id = (uint64_t)j + 1;
                snprintf(m->client_addr, sizeof m->client_addr, "127.0.0.1:%d", base_port + j);
                snprintf(m->peer_addr, sizeof m->peer_addr, "127.0.0.1:%d", base_port + 100 + j);
            }
            memcpy(n->opts.listen_client, n->opts.members[i].client_addr, CRAFTKV_ADDR_MAX);
            memcpy(n->opts.listen_peer, n->opts.members[i].peer_addr, CRAFTKV_ADDR_MAX);
        }
        for (int i = 0; i < N_NODES && ok; i++)
            ok = node_start(i, err, sizeof err) == 0;
        if (ok)
            return true;
        for (int i = 0; i < N_NODES; i++)
            node_stop(i);
    }
    printf("cannot start a cluster: %s\n", err);
    return false;
}

static void cluster_stop(void)
{
    for (int i = 0; i < N_NODES; i++)
        node_stop(i);
}

static const char *client_addr(int i)
{
    return nodes[i].opts.members[i].client_addr;
}

/* The index of the node whose INFO says role:leader, or -1 (asked with the server's own
 * blocking client, independent of the code under test). */
static int find_leader(void)
{
    for (int i = 0; i < N_NODES; i++) {
        if (!nodes[i].srv)
            continue;
        int fd = craftkv_client_connect(client_addr(i), 2000, NULL);
        if (fd < 0)
            continue;
        struct craft_resp_arg info = {"INFO", 4};
        struct craft_resp_buf out = {0};
        bool leader = craftkv_client_call(fd, 1, &info, &out) == 0 && out.len > 0 &&
                      memmem(out.data, out.len, "role:leader", 11) != NULL;
        craft_resp_buf_free(&out);
        close(fd);
        if (leader)
            return i;
    }
    return -1;
}

static int wait_leader(void)
{
    uint64_t end = mono_ms() + WAIT_MS;
    int l;
    while ((l = find_leader()) < 0 && mono_ms() < end)
        sleep_ms(50);
    return l;
}

static struct craft_kv_client *open_client(const char *const *addrs, size_t n, uint32_t timeout_ms)
{
    struct craft_kv_client_opts o = {.addrs = addrs, .n_addrs = n, .timeout_ms = timeout_ms};
    struct craft_kv_client *c = NULL;
    int rc = craft_kv_client_open(&o, &c);
    CHECK(rc == CRAFT_OK && c != NULL);
    return c;
}

static bool get_is(struct craft_kv_client *c, const char *key, const char *want)
{
    void *v = NULL;
    size_t n = 0;
    int rc = craft_kv_client_get(c, key, strlen(key), &v, &n);
    bool ok = rc == CRAFT_OK && n == strlen(want) && memcmp(v, want, n) == 0;
    if (!ok)
        printf("  GET %s: rc %d (%s) '%.*s', want '%s'\n", key, rc, craft_kv_client_errmsg(c),
               (int)n, v ? (char *)v : "", want);
    free(v);
    return ok;
}

/* ---- cases against the cluster ----------------------------------------------------- */

static void test_each_node_as_only_seed(void)
{
    for (int i = 0; i < N_NODES; i++) {
        const char *seed[] = {client_addr(i)};
        struct craft_kv_client *c = open_client(seed, 1, CLIENT_TIMEOUT_MS);
        if (!c)
            return;
        char key[32], val[32];
        snprintf(key, sizeof key, "seed%d", i);
        snprintf(val, sizeof val, "value%d", i);
        int rc = craft_kv_client_set(c, key, strlen(key), val, strlen(val));
        CHECK(rc == CRAFT_OK);
        if (rc != CRAFT_OK)
            printf("  SET via %s: %s (%s)\n", seed[0], craft_kv_client_strerror(rc),
                   craft_kv_client_errmsg(c));
        CHECK(get_is(c, key, val));
        /* after a write the client points at the leader */
        int l = find_leader();
        CHECK(l >= 0 && strcmp(craft_kv_client_node(c), client_addr(l)) == 0);
        uint64_t session, seq;
        craft_kv_client_session(c, &session, &seq);
        CHECK(session != 0 && seq == 1);
        craft_kv_client_close(c);
    }
    /* every value read back through a client seeded with another node */
    const char *seed[] = {client_addr(2)};
    struct craft_kv_client *c = open_client(seed, 1, CLIENT_TIMEOUT_MS);
    if (!c)
        return;
    CHECK(get_is(c, "seed0", "value0") && get_is(c, "seed1", "value1"));
    void *v = (void *)1;
    size_t n = 1;
    CHECK(craft_kv_client_get(c, "absent", 6, &v, &n) == CRAFT_ENOTFOUND && v == NULL && n == 0);
    int64_t x = 0;
    CHECK(craft_kv_client_incrby(c, "ctr", 3, 5, &x) == CRAFT_OK && x == 5);
    CHECK(craft_kv_client_incrby(c, "ctr", 3, -7, &x) == CRAFT_OK && x == -2);
    CHECK(craft_kv_client_del(c, "ctr", 3, &x) == CRAFT_OK && x == 1);
    CHECK(craft_kv_client_del(c, "ctr", 3, &x) == CRAFT_OK && x == 0);
    /* binary-safe keys and values */
    CHECK(craft_kv_client_set(c, "b\0k", 3, "v\r\n\0", 4) == CRAFT_OK);
    CHECK(craft_kv_client_get(c, "b\0k", 3, &v, &n) == CRAFT_OK && n == 4 &&
          memcmp(v, "v\r\n\0", 4) == 0);
    free(v);
    /* server errors come back as error replies, not retried */
    CHECK(craft_kv_client_incrby(c, "seed0", 5, 1, &x) == CRAFT_KV_CLIENT_EREPLY &&
          strstr(craft_kv_client_errmsg(c), "not an integer") != NULL);
    struct craft_kv_reply *r = NULL;
    const char *bad[] = {"set", "k"};
    CHECK(craft_kv_client_command(c, 2, bad, NULL, &r) == CRAFT_OK && r &&
          r->type == CRAFT_KV_REPLY_ERROR && strstr(r->str, "wrong number") != NULL);
    craft_kv_reply_free(r);
    /* a read through the generic call: an array with a nil */
    const char *mget[] = {"MGET", "seed0", "absent", "seed1"};
    CHECK(craft_kv_client_command(c, 4, mget, NULL, &r) == CRAFT_OK && r &&
          r->type == CRAFT_KV_REPLY_ARRAY && r->n_elements == 3 &&
          r->elements[0].type == CRAFT_KV_REPLY_BULK && strcmp(r->elements[0].str, "value0") == 0 &&
          r->elements[1].type == CRAFT_KV_REPLY_NIL &&
          r->elements[2].type == CRAFT_KV_REPLY_BULK && strcmp(r->elements[2].str, "value1") == 0);
    craft_kv_reply_free(r);
    /* lower-case write names are writes too (they consume a seq) */
    uint64_t s0, s1;
    craft_kv_client_session(c, NULL, &s0);
    const char *incr[] = {"incr", "lower"};
    CHECK(craft_kv_client_command(c, 2, incr, NULL, &r) == CRAFT_OK && r &&
          r->type == CRAFT_KV_REPLY_INTEGER && r->integer == 1);
    craft_kv_reply_free(r);
    craft_kv_client_session(c, NULL, &s1);
    CHECK(s1 == s0 + 1);
    CHECK(craft_kv_client_command(c, 0, mget, NULL, &r) == CRAFT_EINVAL && r == NULL);
    craft_kv_client_close(c);
}

static struct craft_kv_reply *fwd(struct craft_kv_client *c, const char *session,
                                  const char *seq, const char *cmd, const char *key)
{
    const char *argv[] = {"CRAFT.FWD", session, seq, cmd, key};
    struct craft_kv_reply *r = NULL;
    int rc = craft_kv_client_command(c, 5, argv, NULL, &r);
    CHECK(rc == CRAFT_OK && r != NULL);
    return rc == CRAFT_OK ? r : NULL;
}

static void test_exactly_once_by_hand(void)
{
    int l = wait_leader();
    CHECK(l >= 0);
    if (l < 0)
        return;
    /* a follower refuses CRAFT.FWD with CRAFTNOTLEADER (what the client parses) */
    int f = (l + 1) % N_NODES;
    int fd = craftkv_client_connect(client_addr(f), 5000, NULL);
    CHECK(fd >= 0);
    if (fd >= 0) {
        struct craft_resp_arg argv[] = {{"CRAFT.FWD", 9}, {"99", 2}, {"1", 1}, {"INCR", 4},
                                        {"never", 5}};
        struct craft_resp_buf out = {0};
        CHECK(craftkv_client_call(fd, 5, argv, &out) == 0 && out.len > 15 &&
              memcmp(out.data, "-CRAFTNOTLEADER", 15) == 0);
        craft_resp_buf_free(&out);
        close(fd);
    }
    const char *seed[] = {client_addr(f)}; /* the client must find the leader itself */
    struct craft_kv_client *c = open_client(seed, 1, CLIENT_TIMEOUT_MS);
    if (!c)
        return;
    char session[24];
    snprintf(session, sizeof session, "%u", 1000000u + (unsigned)rand());
    struct craft_kv_reply *r = fwd(c, session, "1", "INCR", "once");
    CHECK(r && r->type == CRAFT_KV_REPLY_INTEGER && r->integer == 1);
    craft_kv_reply_free(r);
    r = fwd(c, session, "1", "INCR", "once"); /* the resend: the saved result */
    CHECK(r && r->type == CRAFT_KV_REPLY_INTEGER && r->integer == 1);
    craft_kv_reply_free(r);
    CHECK(get_is(c, "once", "1"));
    r = fwd(c, session, "2", "INCR", "once");
    CHECK(r && r->type == CRAFT_KV_REPLY_INTEGER && r->integer == 2);
    craft_kv_reply_free(r);
    r = fwd(c, session, "1", "INCR", "once");
    CHECK(r && r->type == CRAFT_KV_REPLY_ERROR && strcmp(r->str, "ERR stale request") == 0);
    craft_kv_reply_free(r);
    CHECK(get_is(c, "once", "2"));
    craft_kv_client_close(c);
}

static void test_session_resumed(void)
{
    const char *seeds[] = {client_addr(0), client_addr(1), client_addr(2)};
    struct craft_kv_client *c = open_client(seeds, 3, CLIENT_TIMEOUT_MS);
    if (!c)
        return;
    CHECK(craft_kv_client_incrby(c, "resume", 6, 1, NULL) == CRAFT_OK);
    CHECK(craft_kv_client_incrby(c, "resume", 6, 1, NULL) == CRAFT_OK);
    uint64_t session, seq;
    craft_kv_client_session(c, &session, &seq);
    craft_kv_client_close(c);
    CHECK(seq == 2);

    struct craft_kv_client_opts o = {.addrs = seeds, .n_addrs = 3,
                                     .timeout_ms = CLIENT_TIMEOUT_MS, .session = session,
                                     .last_seq = seq};
    c = NULL;
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_OK);
    int64_t v = 0;
    CHECK(c && craft_kv_client_incrby(c, "resume", 6, 1, &v) == CRAFT_OK && v == 3);
    craft_kv_client_close(c);

    /* the same session numbered from the start again: refused, not re-applied */
    o.last_seq = 0;
    c = NULL;
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_OK);
    CHECK(c && craft_kv_client_incrby(c, "resume", 6, 1, &v) == CRAFT_KV_CLIENT_EREPLY &&
          strstr(craft_kv_client_errmsg(c), "stale") != NULL);
    CHECK(c && get_is(c, "resume", "3"));
    craft_kv_client_close(c);
}

/* A client INCRs one counter and reads it back, over and over, while the test destroys the
 * leader and later restarts it. One writer: every INCR must answer exactly the previous
 * answer plus one, and every GET the last INCR's value. */
struct writer {
    struct craft_kv_client *c;
    atomic_bool stop;
    atomic_long ok;     /* INCRs answered */
    long in_doubt;      /* INCRs that timed out */
    long bad_sequence;  /* an INCR answer other than last + 1 (a lost or doubled write) */
    long bad_reads;
    long read_timeouts; /* GETs without an answer within CLIENT_TIMEOUT_MS */
    long other_errors;
    int64_t last;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    while (!atomic_load(&w->stop)) {
        int64_t v = 0;
        int rc = craft_kv_client_incrby(w->c, "failover", 8, 1, &v);
        if (rc == CRAFT_ETIMEOUT) {
            w->in_doubt++;
            printf("  INCR in doubt: %s\n", craft_kv_client_errmsg(w->c));
            continue;
        }
        if (rc != CRAFT_OK) {
            w->other_errors++;
            printf("  INCR: %s (%s)\n", craft_kv_client_strerror(rc), craft_kv_client_errmsg(w->c));
            continue;
        }
        if (v != w->last + 1 && w->in_doubt == 0) {
            w->bad_sequence++;
            printf("  INCR answered %lld after %lld\n", (long long)v, (long long)w->last);
        }
        w->last = v;
        atomic_fetch_add(&w->ok, 1);
        void *val = NULL;
        size_t n = 0;
        rc = craft_kv_client_get(w->c, "failover", 8, &val, &n);
        if (rc == CRAFT_OK) {
            if (strtoll(val, NULL, 10) != w->last) {
                w->bad_reads++;
                printf("  GET %s after INCR %lld\n", (char *)val, (long long)w->last);
            }
        } else if (rc == CRAFT_ETIMEOUT) {
            w->read_timeouts++;
            printf("  GET timed out: %s\n", craft_kv_client_errmsg(w->c));
        } else {
            w->other_errors++;
        }
        free(val);
    }
    return NULL;
}

static bool wait_ok_count(struct writer *w, long target)
{
    uint64_t end = mono_ms() + WAIT_MS;
    while (atomic_load(&w->ok) < target && mono_ms() < end)
        sleep_ms(20);
    return atomic_load(&w->ok) >= target;
}

static void test_leader_destroyed_and_restarted(void)
{
    int l = wait_leader();
    CHECK(l >= 0);
    if (l < 0)
        return;
    const char *seeds[] = {client_addr(0), client_addr(1), client_addr(2)};
    struct writer w = {.c = open_client(seeds, 3, CLIENT_TIMEOUT_MS)};
    if (!w.c)
        return;
    pthread_t th;
    if (pthread_create(&th, NULL, writer_main, &w) != 0) {
        CHECK(!"pthread_create");
        craft_kv_client_close(w.c);
        return;
    }
    CHECK(wait_ok_count(&w, 20));
    node_stop(l); /* the leader's server goes away under the client */
    long at_stop = atomic_load(&w.ok);
    CHECK(wait_ok_count(&w, at_stop + 20));
    char err[512] = "";
    int rc = -1;
    uint64_t end = mono_ms() + WAIT_MS;
    while ((rc = node_start(l, err, sizeof err)) != 0 && mono_ms() < end)
        sleep_ms(200); /* a port still held: try again */
    CHECK(rc == 0);
    if (rc != 0)
        printf("  restart of node %d: %s\n", l + 1, err);
    long at_restart = atomic_load(&w.ok);
    CHECK(wait_ok_count(&w, at_restart + 20));
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    CHECK(w.in_doubt == 0 && w.read_timeouts == 0 && w.other_errors == 0);
    CHECK(w.bad_sequence == 0 && w.bad_reads == 0);
    /* the count in the store equals the INCRs answered: none lost, none doubled */
    char want[32];
    snprintf(want, sizeof want, "%ld", atomic_load(&w.ok));
    CHECK(get_is(w.c, "failover", want));
    CHECK(w.last == atomic_load(&w.ok));
    craft_kv_client_close(w.c);
    /* the restarted node caught up (a linearizable read through it alone) */
    if (rc == 0) {
        const char *seed[] = {client_addr(l)};
        struct craft_kv_client *c = open_client(seed, 1, CLIENT_TIMEOUT_MS);
        CHECK(c && get_is(c, "failover", want));
        CHECK(c && strcmp(craft_kv_client_node(c), client_addr(l)) == 0);
        craft_kv_client_close(c);
    }
}

/* ---- a fake server that answers scripted bytes ------------------------------------------ */

#define FAKE_REQS_MAX 16
#define FAKE_REQ_BYTES_MAX 512

/* Reply actions: bytes to send, or "!close" (drop the connection unanswered), "!silent"
 * (never answer), "!drip<bytes>" (send the bytes one at a time). The k-th request gets
 * script[k]; the last entry repeats. */
struct fake {
    int lfd, port;
    pthread_t th;
    atomic_bool stop;
    const char *const *script;
    size_t n_script;
    pthread_mutex_t mu;
    size_t n_requests;
    char req[FAKE_REQS_MAX][FAKE_REQ_BYTES_MAX];
    size_t req_len[FAKE_REQS_MAX];
};

static void send_bytes(int fd, const char *p, size_t n, bool drip)
{
    while (n > 0) {
        ssize_t w = send(fd, p, drip ? 1 : n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
        if (drip)
            sleep_ms(1);
    }
}

/* Serves one connection until the client closes it, the script says so, or stop. */
static void fake_serve(struct fake *f, int fd)
{
    char buf[65536];
    size_t len = 0;
    struct craft_resp_parser p;
    craft_resp_parser_init(&p, NULL);
    while (!atomic_load(&f->stop)) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + len, sizeof buf - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        struct craft_resp_cmd cmd;
        int rc = craft_resp_parse(&p, buf, len, &cmd);
        if (rc == CRAFT_RESP_NEED_MORE)
            continue;
        if (rc != CRAFT_OK)
            break;
        pthread_mutex_lock(&f->mu);
        size_t k = f->n_requests++;
        if (k < FAKE_REQS_MAX) {
            f->req_len[k] = cmd.consumed < FAKE_REQ_BYTES_MAX ? cmd.consumed : FAKE_REQ_BYTES_MAX;
            memcpy(f->req[k], buf, f->req_len[k]);
        }
        const char *action = f->script[k < f->n_script ? k : f->n_script - 1];
        pthread_mutex_unlock(&f->mu);
        bool is_info = cmd.argc == 1 && cmd.argv[0].len == 4 &&
                       memcmp(cmd.argv[0].data, "INFO", 4) == 0;
        memmove(buf, buf + cmd.consumed, len - cmd.consumed);
        len -= cmd.consumed;
        craft_resp_parser_reset(&p);
        if (is_info && strncmp(action, "!info", 5) == 0) {
            char body[128], out[200];
            int bl = snprintf(body, sizeof body, "# Raft\r\nrole:follower\r\nleader_client_addr:%s\r\n",
                              action + 5);
            int ol = snprintf(out, sizeof out, "$%d\r\n%s\r\n", bl, body);
            send_bytes(fd, out, (size_t)ol, false);
            continue;
        }
        if (strcmp(action, "!close") == 0)
            break;
        if (strcmp(action, "!silent") == 0)
            continue;
        bool drip = strncmp(action, "!drip", 5) == 0;
        const char *bytes = drip ? action + 5 : action;
        send_bytes(fd, bytes, strlen(bytes), drip);
    }
    craft_resp_parser_free(&p);
    close(fd);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd pf = {.fd = f->lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd >= 0)
            fake_serve(f, fd);
    }
    return NULL;
}

/* Listens on a loopback port the kernel picks (no collision with anyone's). */
static bool fake_start(struct fake *f, const char *const *script, size_t n_script)
{
    memset(f, 0, sizeof *f);
    f->script = script;
    f->n_script = n_script;
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(f->lfd, 16) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&a, &alen) != 0) {
        CHECK(!"fake server socket");
        if (f->lfd >= 0)
            close(f->lfd);
        return false;
    }
    f->port = ntohs(a.sin_port);
    if (pthread_create(&f->th, NULL, fake_main, f) != 0) {
        CHECK(!"pthread_create");
        close(f->lfd);
        return false;
    }
    return true;
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    close(f->lfd);
    pthread_mutex_destroy(&f->mu);
}

static struct craft_kv_client *fake_client(const struct fake *f, uint32_t timeout_ms,
                                           uint32_t attempt_ms, size_t reply_max)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    const char *seed[] = {addr};
    struct craft_kv_client_opts o = {.addrs = seed, .n_addrs = 1, .timeout_ms = timeout_ms,
                                     .attempt_timeout_ms = attempt_ms, .reply_bytes_max = reply_max};
    struct craft_kv_client *c = NULL;
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_OK);
    return c;
}

static void test_reply_parsing(void)
{
    /* every reply type, nested, a bulk holding CRLF, sent one byte at a time */
    struct fake f;
    const char *argv[] = {"GET", "x"};
    struct craft_kv_client *c;
    struct craft_kv_reply *r = NULL;
    int rc;
    static const char *const script[] = {
        "!drip*6\r\n$5\r\na\r\nXb\r\n:-9223372036854775808\r\n*2\r\n+OK\r\n$-1\r\n-ERR x y\r\n*0\r\n*-1\r\n"};
    if (!fake_start(&f, script, 1))
        return;
    c = fake_client(&f, 5000, 0, 0);
    rc = c ? craft_kv_client_command(c, 2, argv, NULL, &r) : -1;
    if (rc != CRAFT_OK)
        printf("  %s (%s)\n", craft_kv_client_strerror(rc), c ? craft_kv_client_errmsg(c) : "");
    CHECK(rc == CRAFT_OK && r && r->type == CRAFT_KV_REPLY_ARRAY && r->n_elements == 6);
    if (rc == CRAFT_OK && r->n_elements == 6) {
        struct craft_kv_reply *e = r->elements;
        CHECK(e[0].type == CRAFT_KV_REPLY_BULK && e[0].len == 5 &&
              memcmp(e[0].str, "a\r\nXb", 6) == 0);
        CHECK(e[1].type == CRAFT_KV_REPLY_INTEGER && e[1].integer == INT64_MIN);
        CHECK(e[2].type == CRAFT_KV_REPLY_ARRAY && e[2].n_elements == 2 &&
              e[2].elements[0].type == CRAFT_KV_REPLY_STATUS &&
              strcmp(e[2].elements[0].str, "OK") == 0 &&
              e[2].elements[1].type == CRAFT_KV_REPLY_NIL);
        CHECK(e[3].type == CRAFT_KV_REPLY_ERROR && strcmp(e[3].str, "ERR x y") == 0);
        CHECK(e[4].type == CRAFT_KV_REPLY_ARRAY && e[4].n_elements == 0);
        CHECK(e[5].type == CRAFT_KV_REPLY_NIL);
    }
    craft_kv_reply_free(r);
    craft_kv_client_close(c);
    fake_stop(&f);
}

static void test_malformed_replies(void)
{
    static const char *const garbage[] = {
        "hello\r\n",                    /* no type byte */
        ":12a\r\n",                     /* not a number */
        ":99999999999999999999\r\n",    /* overflows */
        "$99999999999\r\n",             /* a bulk past the cap */
        "*99999999999\r\n",             /* an array that cannot fit */
        "$3\r\nabcXY",                  /* bulk without its CRLF */
        "+OK\n",                        /* LF without CR */
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", /* too deep */
        "$10\r\nabc",                   /* cut short */
        "!close",                       /* no reply at all */
        "!silent",                      /* a node that hangs */
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        const char *script[] = {garbage[i]};
        struct fake f;
        if (!fake_start(&f, script, 1))
            return;
        struct craft_kv_client *c = fake_client(&f, 200, 70, 1u << 20);
        if (!c) {
            fake_stop(&f);
            return;
        }
        struct craft_kv_reply *r = (struct craft_kv_reply *)1;
        const char *get[] = {"GET", "k"};
        int rc = craft_kv_client_command(c, 2, get, NULL, &r);
        if (rc != CRAFT_ETIMEOUT || r != NULL)
            printf("  garbage %zu: rc %d\n", i, rc);
        CHECK(rc == CRAFT_ETIMEOUT && r == NULL);
        CHECK(craft_kv_client_errmsg(c)[0] != '\0');
        int64_t v;
        rc = craft_kv_client_incrby(c, "k", 1, 1, &v); /* a write: the same */
        CHECK(rc == CRAFT_ETIMEOUT);
        craft_kv_client_close(c);
        fake_stop(&f);
    }
    /* a reply larger than reply_bytes_max */
    static char big[5000];
    memcpy(big, "$4000\r\n", 7);
    memset(big + 7, 'x', 4000);
    memcpy(big + 4007, "\r\n", 3);
    const char *script[] = {big};
    struct fake f;
    if (!fake_start(&f, script, 1))
        return;
    struct craft_kv_client *c = fake_client(&f, 600, 200, 1024);
    void *v = NULL;
    size_t n;
    CHECK(c && craft_kv_client_get(c, "k", 1, &v, &n) == CRAFT_ETIMEOUT && v == NULL);
    craft_kv_client_close(c);
    fake_stop(&f);
    /* a well-formed reply of the wrong type for a typed helper */
    static const char *const wrong[] = {":5\r\n"};
    if (!fake_start(&f, wrong, 1))
        return;
    c = fake_client(&f, 2000, 0, 0);
    CHECK(c && craft_kv_client_get(c, "k", 1, &v, &n) == CRAFT_EMALFORMED && v == NULL);
    craft_kv_client_close(c);
    fake_stop(&f);
}

static size_t n_req(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->n_requests;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static bool same_request(struct fake *f, size_t a, size_t b)
{
    pthread_mutex_lock(&f->mu);
    bool same = f->n_requests > a && f->n_requests > b && a < FAKE_REQS_MAX &&
                b < FAKE_REQS_MAX && f->req_len[a] == f->req_len[b] &&
                memcmp(f->req[a], f->req[b], f->req_len[a]) == 0;
    pthread_mutex_unlock(&f->mu);
    return same;
}

static bool request_has(struct fake *f, size_t k, const char *s)
{
    pthread_mutex_lock(&f->mu);
    bool has = k < f->n_requests && k < FAKE_REQS_MAX &&
               memmem(f->req[k], f->req_len[k], s, strlen(s)) != NULL;
    pthread_mutex_unlock(&f->mu);
    return has;
}

/* Resends after TRYAGAIN and after a dropped connection carry the same session and seq. */
static void test_resend_same_seq(void)
{
    static const char *const script[] = {"-TRYAGAIN no leader or no quorum within 5 ms\r\n",
                                         "!close", ":7\r\n", ":8\r\n"};
    struct fake f;
    if (!fake_start(&f, script, 4))
        return;
    struct craft_kv_client *c = fake_client(&f, 10000, 0, 0);
    int64_t v = 0;
    CHECK(c && craft_kv_client_incrby(c, "k", 1, 1, &v) == CRAFT_OK && v == 7);
    CHECK(n_req(&f) == 3 && same_request(&f, 0, 1) && same_request(&f, 0, 2));
    CHECK(request_has(&f, 0, "CRAFT.FWD") && request_has(&f, 0, "\r\n$1\r\n1\r\n$6\r\nINCRBY"));
    /* the next write has the next seq */
    CHECK(c && craft_kv_client_incrby(c, "k", 1, 1, &v) == CRAFT_OK && v == 8);
    CHECK(request_has(&f, 3, "\r\n$1\r\n2\r\n$6\r\nINCRBY"));
    /* a read is sent as it is */
    static const char *const r_script[] = {"$1\r\nv\r\n"};
    pthread_mutex_lock(&f.mu);
    f.script = r_script;
    f.n_script = 1;
    pthread_mutex_unlock(&f.mu);
    void *val = NULL;
    size_t n;
    CHECK(c && craft_kv_client_get(c, "k", 1, &val, &n) == CRAFT_OK && n == 1);
    free(val);
    CHECK(request_has(&f, 4, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") && !request_has(&f, 4, "CRAFT"));
    craft_kv_client_close(c);
    fake_stop(&f);
}

/* CRAFTNOTLEADER with an address moves to it; with "?" the client asks INFO. */
static void test_leader_hints(void)
{
    static const char *const leader_script[] = {":1\r\n"};
    struct fake leader, follower;
    if (!fake_start(&leader, leader_script, 1))
        return;
    char notleader[80], info[48];
    snprintf(notleader, sizeof notleader, "-CRAFTNOTLEADER 127.0.0.1:%d\r\n", leader.port);
    const char *follower_script[] = {notleader};
    if (!fake_start(&follower, follower_script, 1)) {
        fake_stop(&leader);
        return;
    }
    struct craft_kv_client *c = fake_client(&follower, 10000, 0, 0);
    char laddr[32];
    snprintf(laddr, sizeof laddr, "127.0.0.1:%d", leader.port);
    CHECK(c && craft_kv_client_incrby(c, "k", 1, 1, NULL) == CRAFT_OK);
    CHECK(c && strcmp(craft_kv_client_node(c), laddr) == 0);
    CHECK(n_req(&follower) == 1 && n_req(&leader) == 1);
    /* the leader got byte for byte what the follower refused */
    pthread_mutex_lock(&follower.mu);
    pthread_mutex_lock(&leader.mu);
    CHECK(follower.req_len[0] == leader.req_len[0] &&
          memcmp(follower.req[0], leader.req[0], leader.req_len[0]) == 0);
    pthread_mutex_unlock(&leader.mu);
    pthread_mutex_unlock(&follower.mu);
    craft_kv_client_close(c);
    fake_stop(&follower);

    /* "?" (and the old text without an address): INFO names the leader */
    snprintf(info, sizeof info, "!info127.0.0.1:%d", leader.port);
    const char *unknown_script[] = {"-CRAFTNOTLEADER ?\r\n", info,
                                    "-CRAFTNOTLEADER this node is not the leader\r\n", info};
    if (!fake_start(&follower, unknown_script, 4)) {
        fake_stop(&leader);
        return;
    }
    c = fake_client(&follower, 10000, 0, 0);
    CHECK(c && craft_kv_client_incrby(c, "k", 1, 1, NULL) == CRAFT_OK);
    CHECK(c && strcmp(craft_kv_client_node(c), laddr) == 0);
    CHECK(n_req(&follower) == 2 && request_has(&follower, 1, "INFO"));
    craft_kv_client_close(c);
    c = fake_client(&follower, 10000, 0, 0);
    CHECK(c && craft_kv_client_incrby(c, "k", 1, 1, NULL) == CRAFT_OK);
    CHECK(n_req(&follower) == 4 && request_has(&follower, 3, "INFO"));
    craft_kv_client_close(c);
    fake_stop(&follower);
    fake_stop(&leader);
}

/* Nothing listens on any node's port: a timeout error within the deadline, not a hang. */
static void test_all_nodes_down(void)
{
    /* ports of the fake servers, closed again: nobody listens there now */
    int ports[3];
    for (int i = 0; i < 3; i++) {
        static const char *const s[] = {"+OK\r\n"};
        struct fake f;
        if (!fake_start(&f, s, 1))
            return;
        ports[i] = f.port;
        fake_stop(&f);
    }
    char a[3][32];
    const char *addrs[3];
    for (int i = 0; i < 3; i++) {
        snprintf(a[i], sizeof a[i], "127.0.0.1:%d", ports[i]);
        addrs[i] = a[i];
    }
    struct craft_kv_client *c = open_client(addrs, 3, 1000);
    if (!c)
        return;
    int64_t v;
    CHECK(craft_kv_client_incrby(c, "k", 1, 1, &v) == CRAFT_ETIMEOUT);
    CHECK(strstr(craft_kv_client_errmsg(c), "cannot connect") != NULL);
    void *val = NULL;
    size_t n;
    CHECK(craft_kv_client_get(c, "k", 1, &val, &n) == CRAFT_ETIMEOUT && val == NULL);
    uint64_t seq;
    craft_kv_client_session(c, NULL, &seq);
    CHECK(seq == 1); /* the write in doubt spent its seq */
    CHECK(craft_kv_client_incrby(c, "k", 1, 1, &v) == CRAFT_ETIMEOUT);
    craft_kv_client_session(c, NULL, &seq);
    CHECK(seq == 2);
    craft_kv_client_close(c);
}

static void test_open_errors(void)
{
    struct craft_kv_client *c = NULL;
    const char *bad[] = {"localhost"};
    struct craft_kv_client_opts o = {.addrs = bad, .n_addrs = 1};
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_EINVAL && c == NULL);
    const char *bad2[] = {"host:port"};
    o.addrs = bad2;
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_EINVAL && c == NULL);
    o.n_addrs = 0;
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_EINVAL && c == NULL);
    const char *good[] = {"[::1]:7", "127.0.0.1:1"};
    o.addrs = good;
    o.n_addrs = 2;
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_OK && c != NULL);
    uint64_t s1 = 0, s2 = 0, seq = 9;
    craft_kv_client_session(c, &s1, &seq);
    CHECK(s1 != 0 && seq == 0);
    craft_kv_client_close(c);
    CHECK(craft_kv_client_open(&o, &c) == CRAFT_OK);
    craft_kv_client_session(c, &s2, NULL);
    CHECK(s2 != 0 && s2 != s1); /* random: equal with probability 2^-64 */
    craft_kv_client_close(c);
    craft_kv_client_close(NULL);
    CHECK(strcmp(craft_kv_client_strerror(CRAFT_KV_CLIENT_EREPLY), "unknown error") != 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the servers' own sockets */
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    run_case("open_errors", test_open_errors);
    run_case("reply_parsing", test_reply_parsing);
    run_case("malformed_replies", test_malformed_replies);
    run_case("resend_same_seq", test_resend_same_seq);
    run_case("leader_hints", test_leader_hints);
    run_case("all_nodes_down", test_all_nodes_down);
    if (!mkdtemp(tmp_dir)) {
        printf("mkdtemp: %s\n", strerror(errno));
        n_failed++;
        return unit_finish();
    }
    if (cluster_start()) {
        if (wait_leader() < 0)
            printf("no leader within %u ms\n", WAIT_MS);
        run_case("each_node_as_only_seed", test_each_node_as_only_seed);
        run_case("exactly_once_by_hand", test_exactly_once_by_hand);
        run_case("session_resumed", test_session_resumed);
        run_case("leader_destroyed_and_restarted", test_leader_destroyed_and_restarted);
        cluster_stop();
    } else {
        n_failed++;
    }
    rm_rf(tmp_dir);
    return unit_finish();
}
