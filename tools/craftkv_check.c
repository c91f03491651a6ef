/* craftkv-check: a black-box linearizability check of a running craftkv cluster.
 *
 *   craftkv-check --nodes HOST:PORT,HOST:PORT,... [--clients N] [--seconds S] [--keys K]
 *                 [--seed X] [--op-timeout-ms T] [--min-ok N] [--prefix P]
 *                 [--read-mode linearizable|lease|stale]
 *
 * N client threads speak plain RESP over TCP (as any Redis client does: no session, no
 * CRAFT.* command) to the nodes, each starting at its own node and moving to the next one
 * after an error, and run random GET / SET / APPEND on K keys for S seconds while the
 * caller injects faults (tests/blackbox/craftkv_linear.sh kills, pauses and restarts
 * nodes). Every operation is timed with the monotonic clock, call before the send, return
 * after the reply. Then each node is read once more, and the whole history goes to the
 * simulator's linearizability checker (src/sim/linearize.h, Porcupine's search).
 * --read-mode sends CRAFT.CONSISTENCY on every connection first (craftkv's reads are
 * linearizable by default; lease reads must be too while clocks run at the same rate;
 * stale reads are not, so a stale run is expected to fail under faults).
 *
 * Outcomes: a write answered OK (or APPEND's length) took effect once, between call and
 * return; a write answered with an error, or not answered (timeout, lost connection), may
 * have taken effect or not, at any time after its call: it enters the history with an
 * infinite return time. A read that failed is dropped. Values are unique tokens, so a read
 * names the writes it saw. Keys are named <prefix><n>; the default prefix is fresh for
 * every run (the model starts from empty values, so a --prefix must name unused keys).
 *
 * Prints one summary line; exit status 0 linearizable (and at least --min-ok operations
 * succeeded), 1 not linearizable (the failing key's history is printed), 2 anything else
 * (bad flags, too few successful operations, the checker's budget ran out). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kv/server.h" /* craftkv_client_connect */
#include "sim/linearize.h"

#define NODES_MAX 16
#define CLIENTS_MAX 64
#define REPLY_MAX (1u << 20)
#define VALUE_MAX 64
#define KEY_MAX 64

struct opts {
    char *nodes[NODES_MAX];
    size_t n_nodes;
    unsigned clients, seconds, keys, op_timeout_ms, min_ok;
    uint64_t seed;
    const char *prefix;
    const char *read_mode; /* NULL, or sent as CRAFT.CONSISTENCY <mode> on every connection */
};

/* One recorded operation; key/input/output are owned by the history. */
struct op {
    uint64_t client;
    uint8_t kind;
    unsigned key;
    char input[VALUE_MAX];
    uint8_t *output;
    size_t output_len;
    uint64_t call, ret;
};

struct client {
    const struct opts *o;
    unsigned id;
    uint64_t rng;
    int fd;
    size_t node;
    uint64_t deadline_us;
    struct op *ops;
    size_t n_ops, cap_ops;
    uint64_t n_ok, n_unknown, n_read_fail;
    char rbuf[REPLY_MAX];
    size_t rlen, rpos;
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t next_rand(uint64_t *s)
{
    /* splitmix64: enough for picking operations; seeded per client. */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- one blocking RESP connection ---- */

static void hang_up(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->rlen = c->rpos = 0;
    c->node = (c->node + 1) % c->o->n_nodes; /* an error: try the next node */
}

static bool send_cmd(struct client *c, int argc, const char *const *argv)
{
    char buf[512];
    int len = snprintf(buf, sizeof buf, "*%d\r\n", argc);
    for (int i = 0; i < argc && len > 0 && (size_t)len < sizeof buf; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "$%zu\r\n%s\r\n", strlen(argv[i]),
                        argv[i]);
    if (len <= 0 || (size_t)len >= sizeof buf)
        return false;
    for (size_t off = 0; off < (size_t)len;) {
        ssize_t w = send(c->fd, buf + off, (size_t)len - off, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        off += (size_t)w;
    }
    return true;
}

/* Reads until the buffer holds a line ending at or after rpos; returns its length (without
 * CRLF) or -1. */
static long read_line(struct client *c)
{
    for (;;) {
        for (size_t i = c->rpos; i + 1 < c->rlen; i++)
            if (c->rbuf[i] == '\r' && c->rbuf[i + 1] == '\n')
                return (long)(i - c->rpos);
        if (c->rlen == sizeof c->rbuf)
            return -1;
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
        if (r <= 0)
            return -1;
        c->rlen += (size_t)r;
    }
}

enum reply_kind { R_FAIL, R_STATUS, R_ERROR, R_INT, R_BULK, R_NIL };

/* Reads one reply (no arrays: the check sends none that return one). A bulk's bytes are
 * copied to *data (malloc'd). */
static enum reply_kind read_reply(struct client *c, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    long n = read_line(c);
    if (n < 1)
        return R_FAIL;
    char type = c->rbuf[c->rpos];
    char line[64];
    size_t ll = (size_t)n - 1 < sizeof line - 1 ? (size_t)n - 1 : sizeof line - 1;
    memcpy(line, c->rbuf + c->rpos + 1, ll);
    line[ll] = '\0';
    c->rpos += (size_t)n + 2;
    switch (type) {
    case '+':
        return R_STATUS;
    case '-':
        return R_ERROR;
    case ':':
        return R_INT;
    case '$': {
        long blen = strtol(line, NULL, 10);
        if (blen == -1)
            return R_NIL;
        if (blen < 0 || (size_t)blen + 2 > sizeof c->rbuf)
            return R_FAIL;
        /* Compact, then read until the payload and its CRLF are in. */
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
        while (c->rlen < (size_t)blen + 2) {
            ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
            if (r <= 0)
                return R_FAIL;
            c->rlen += (size_t)r;
        }
        if (c->rbuf[blen] != '\r' || c->rbuf[blen + 1] != '\n')
            return R_FAIL; /* the payload is not followed by CRLF: a broken stream */
        *data = malloc((size_t)blen + 1);
        if (!*data)
            return R_FAIL;
        memcpy(*data, c->rbuf, (size_t)blen);
        *len = (size_t)blen;
        c->rpos = (size_t)blen + 2;
        return R_BULK;
    }
    default:
        return R_FAIL;
    }
}

/* Asks the new connection for the configured read mode; false if it did not say OK. */
static bool set_read_mode(struct client *c)
{
    const char *argv[2] = {"CRAFT.CONSISTENCY", c->o->read_mode};
    uint8_t *data = NULL;
    size_t len = 0;
    bool ok = send_cmd(c, 2, argv) && read_reply(c, &data, &len) == R_STATUS;
    free(data);
    return ok;
}

/* ---- the workload ---- */

static struct op *new_op(struct client *c)
{
    if (c->n_ops == c->cap_ops) {
        size_t cap = c->cap_ops ? c->cap_ops * 2 : 1024;
        struct op *ops = realloc(c->ops, cap * sizeof *ops);
        if (!ops)
            return NULL;
        c->ops = ops;
        c->cap_ops = cap;
    }
    struct op *op = &c->ops[c->n_ops++];
    memset(op, 0, sizeof *op);
    op->client = c->id;
    return op;
}

/* Runs one operation against the current node (connecting first if needed) and records
 * it. Returns false when the client should stop (out of memory). */
static bool run_op(struct client *c, uint8_t kind, unsigned key, uint64_t n)
{
    char keyname[KEY_MAX];
    snprintf(keyname, sizeof keyname, "%s%u", c->o->prefix, key);
    if (c->fd < 0) {
        c->fd = craftkv_client_connect(c->o->nodes[c->node], c->o->op_timeout_ms, NULL);
        if (c->fd >= 0 && c->o->read_mode && !set_read_mode(c)) {
            close(c->fd);
            c->fd = -1;
            c->rlen = c->rpos = 0; /* a partial reply must not meet the next connection */
        }
        if (c->fd < 0) {
            c->node = (c->node + 1) % c->o->n_nodes;
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL); /* the node is down: do not spin */
            return true;
        }
    }
    struct op *op = new_op(c);
    if (!op)
        return false;
    op->kind = kind;
    op->key = key;
    const char *argv[3] = {kind == SIM_LIN_GET ? "GET" : kind == SIM_LIN_PUT ? "SET" : "APPEND",
                           keyname, op->input};
    if (kind != SIM_LIN_GET)
        snprintf(op->input, sizeof op->input, "c%un%" PRIu64 ";", c->id, n);
    op->call = mono_us();
    enum reply_kind rk = R_FAIL;
    uint8_t *data = NULL;
    size_t len = 0;
    if (send_cmd(c, kind == SIM_LIN_GET ? 2 : 3, argv))
        rk = read_reply(c, &data, &len);
    op->ret = mono_us();
    bool ok = kind == SIM_LIN_GET   ? (rk == R_BULK || rk == R_NIL)
              : kind == SIM_LIN_PUT ? rk == R_STATUS
                                    : rk == R_INT;
    if (ok) {
        c->n_ok++;
        op->output = data;
        op->output_len = len;
        return true;
    }
    free(data);
    if (kind == SIM_LIN_GET) {
        c->n_read_fail++;
        c->n_ops--; /* a failed read says nothing */
    } else {
        c->n_unknown++;
        op->ret = UINT64_MAX; /* may take effect at any time after its call */
    }
    hang_up(c); /* after an error the stream's state is unknown: start afresh */
    return true;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    uint64_t n = 0;
    while (mono_us() < c->deadline_us) {
        uint64_t r = next_rand(&c->rng);
        unsigned pick = (unsigned)(r % 10);
        uint8_t kind = pick < 4 ? SIM_LIN_GET : pick < 7 ? SIM_LIN_PUT : SIM_LIN_APPEND;
        if (!run_op(c, kind, (unsigned)((r >> 8) % c->o->keys), ++n))
            break;
    }
    return NULL;
}

/* After the run: one read of every key through every node (each node must reach the
 * others again; failed reads are retried, for at most 60 s in all). */
static void final_reads(struct client *c)
{
    uint64_t until = mono_us() + 60u * 1000000u;
    for (size_t node = 0; node < c->o->n_nodes; node++)
        for (unsigned key = 0; key < c->o->keys; key++) {
            for (;;) {
                if (c->fd >= 0)
                    close(c->fd);
                c->fd = -1;
                c->rlen = c->rpos = 0;
                c->node = node;
                size_t before = c->n_ops;
                if (!run_op(c, SIM_LIN_GET, key, 0))
                    return;
                if (c->n_ops > before || mono_us() > until)
                    break;
            }
        }
}

/* ---- flags and the check ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: craftkv-check --nodes HOST:PORT,... [--clients N] [--seconds S] "
               "[--keys K]\n"
               "                     [--seed X] [--op-timeout-ms T] [--min-ok N] [--prefix P]\n"
               "                     [--read-mode linearizable|lease|stale]\n"
               "  Runs random GET/SET/APPEND through plain RESP connections and checks that "
               "the\n  history is linearizable. Exit 0: linearizable; 1: not; 2: error or "
               "undecided.\n");
}

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.clients = 8, .seconds = 10, .keys = 8, .op_timeout_ms = 8000,
                       .min_ok = 100};
    o->seed = (uint64_t)time(NULL);
    /* The model starts from empty values: a fresh key space per run. */
    static char fresh[48];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(fresh, sizeof fresh, "lin:%lx%lx:", (unsigned long)ts.tv_sec,
             (unsigned long)ts.tv_nsec ^ (unsigned long)getpid());
    o->prefix = fresh;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "craftkv-check: %s needs a value\n", f);
            return -1;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(f, "--nodes")) {
            char *list = strdup(v);
            o->n_nodes = 0;
            for (char *save = NULL, *t = strtok_r(list, ",", &save); t && ok;
                 t = strtok_r(NULL, ",", &save)) {
                ok = o->n_nodes < NODES_MAX && strchr(t, ':') != NULL;
                if (ok)
                    o->nodes[o->n_nodes++] = strdup(t);
            }
            free(list);
            ok = ok && o->n_nodes > 0;
        } else if (!strcmp(f, "--clients")) {
            ok = parse_uint(v, 1, CLIENTS_MAX, &o->clients);
        } else if (!strcmp(f, "--seconds")) {
            ok = parse_uint(v, 1, 3600, &o->seconds);
        } else if (!strcmp(f, "--keys")) {
            ok = parse_uint(v, 1, 10000, &o->keys);
        } else if (!strcmp(f, "--op-timeout-ms")) {
            ok = parse_uint(v, 100, 600000, &o->op_timeout_ms);
        } else if (!strcmp(f, "--min-ok")) {
            ok = parse_uint(v, 0, 100000000, &o->min_ok);
        } else if (!strcmp(f, "--seed")) {
            char *end;
            o->seed = strtoull(v, &end, 10);
            ok = *end == '\0' && end != v;
        } else if (!strcmp(f, "--read-mode")) {
            ok = !strcmp(v, "linearizable") || !strcmp(v, "lease") || !strcmp(v, "stale");
            o->read_mode = v;
        } else if (!strcmp(f, "--prefix")) {
            ok = strlen(v) < KEY_MAX - 12;
            o->prefix = v;
        } else {
            fprintf(stderr, "craftkv-check: unknown flag %s\n", f);
            usage(stderr);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "craftkv-check: bad value for %s: %s\n", f, v);
            return -1;
        }
    }
    if (o->n_nodes == 0) {
        fprintf(stderr, "craftkv-check: --nodes is required\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    struct client *cs = calloc(o.clients + 1, sizeof *cs);
    pthread_t *th = calloc(o.clients, sizeof *th);
    if (!cs || !th) {
        fprintf(stderr, "craftkv-check: out of memory\n");
        return 2;
    }
    uint64_t deadline = mono_us() + (uint64_t)o.seconds * 1000000u;
    for (unsigned i = 0; i <= o.clients; i++) {
        cs[i] = (struct client){.o = &o, .id = i, .rng = o.seed * 1000003u + i, .fd = -1,
                                .node = i % o.n_nodes, .deadline_us = deadline};
    }
    for (unsigned i = 0; i < o.clients; i++)
        if (pthread_create(&th[i], NULL, client_main, &cs[i]) != 0) {
            fprintf(stderr, "craftkv-check: cannot start client threads\n");
            return 2;
        }
    for (unsigned i = 0; i < o.clients; i++)
        pthread_join(th[i], NULL);
    struct client *last = &cs[o.clients]; /* the final reads' client */
    final_reads(last);

    size_t total = 0;
    uint64_t ok = 0, unknown = 0, read_fail = 0;
    for (unsigned i = 0; i <= o.clients; i++) {
        total += cs[i].n_ops;
        ok += cs[i].n_ok;
        unknown += cs[i].n_unknown;
        read_fail += cs[i].n_read_fail;
    }
    struct sim_lin_op *ops = calloc(total ? total : 1, sizeof *ops);
    char(*keys)[KEY_MAX] = calloc(o.keys, KEY_MAX);
    if (!ops || !keys) {
        fprintf(stderr, "craftkv-check: out of memory\n");
        return 2;
    }
    for (unsigned k = 0; k < o.keys; k++)
        snprintf(keys[k], KEY_MAX, "%u", k);
    size_t n = 0;
    for (unsigned i = 0; i <= o.clients; i++)
        for (size_t j = 0; j < cs[i].n_ops; j++) {
            const struct op *p = &cs[i].ops[j];
            ops[n++] = (struct sim_lin_op){
                .client = p->client, .kind = p->kind, .key = (const uint8_t *)keys[p->key],
                .key_len = strlen(keys[p->key]), .input = (const uint8_t *)p->input,
                .input_len = p->kind == SIM_LIN_GET ? 0 : strlen(p->input),
                .output = p->output, .output_len = p->output_len, .call = p->call,
                .ret = p->ret};
        }
    static char desc[1 << 16];
    struct sim_lin_result res = {.desc = desc, .desc_cap = sizeof desc};
    enum sim_lin_verdict v = sim_linearize_check(ops, n, 200u * 1000u * 1000u, &res);
    size_t final_ok = last->n_ok;
    printf("craftkv-check: seed=%" PRIu64 " reads=%s clients=%u keys=%u ops=%zu ok=%" PRIu64
           " unknown_writes=%" PRIu64 " failed_reads=%" PRIu64 " final_reads=%zu/%zu "
           "verdict=%s steps=%" PRIu64 "\n",
           o.seed, o.read_mode ? o.read_mode : "default", o.clients, o.keys, n, ok, unknown, read_fail, final_ok,
           (size_t)o.keys * o.n_nodes, sim_lin_verdict_name(v), res.steps);
    int rc = 0;
    if (v == SIM_LIN_ILLEGAL) {
        printf("not linearizable:\n%s\n", desc);
        rc = 1;
    } else if (v != SIM_LIN_OK) {
        printf("craftkv-check: the checker could not decide\n");
        rc = 2;
    } else if (ok < o.min_ok) {
        printf("craftkv-check: only %" PRIu64 " operations succeeded (--min-ok %u)\n", ok,
               o.min_ok);
        rc = 2;
    } else if (final_ok < (size_t)o.keys * o.n_nodes) {
        printf("craftkv-check: some node did not answer its final reads\n");
        rc = 2;
    }
    for (unsigned i = 0; i <= o.clients; i++) {
        for (size_t j = 0; j < cs[i].n_ops; j++)
            free(cs[i].ops[j].output);
        free(cs[i].ops);
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    }
    for (size_t i = 0; i < o.n_nodes; i++)
        free(o.nodes[i]);
    free(ops);
    free(keys);
    free(cs);
    free(th);
    return rc;
}
