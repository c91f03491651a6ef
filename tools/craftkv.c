/* craftkv: a replicated Redis-compatible key/value server on craft.
 *
 *   craftkv --id N --data-dir DIR --initial-cluster ID=HOST:PEER/HOST:CLIENT,...
 *           [--listen-client HOST:PORT] [--listen-peer HOST:PORT] [--timeout-ms MS]
 *   craftkv --id N --data-dir DIR --listen-peer IP:PORT --listen-client HOST:PORT
 *           --join HOST:CLIENTPORT           (joins a running cluster through any member)
 *   craftkv --id N --data-dir DIR            (a restart: the rest is in DIR/craftkv.conf)
 *   craftkv local --nodes N [--dir D] [--base-port P]
 *
 * Design: docs/design/craftkv.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv/server.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void install_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: craftkv --id N --data-dir DIR --initial-cluster ID=HOST:PEERPORT/HOST:CLIENTPORT,...\n"
            "               [--listen-client HOST:PORT] [--listen-peer HOST:PORT] [--timeout-ms MS]\n"
            "               [--snapshot-entries N] [--snapshot-bytes B] [--trailing-entries N]\n"
            "       craftkv --id N --data-dir DIR --listen-peer IP:PORT --listen-client HOST:PORT\n"
            "               --join HOST:CLIENTPORT [--timeout-ms MS]\n"
            "       craftkv --id N --data-dir DIR      restart: settings from DIR/craftkv.conf\n"
            "       craftkv --id N --data-dir DIR --force-new-cluster ID,...   lost quorum\n"
            "       craftkv local --nodes N [--dir D] [--base-port P] [--requirepass PASS]\n"
            "                     [--groups G [--initial-groups K] [--replicas R]]\n"
            "       (any start: [--requirepass PASS] [--listen-metrics HOST:PORT])\n"
            "       (a new sharded cluster: --shard-groups G [--shard-groups-initial K]\n"
            "                               [--shard-replicas R])\n"
            "       (sharded, any start: [--shard-handover-bytes B])\n"
            "\n"
            "A Redis-compatible key/value server replicated with Raft. A new cluster: every node\n"
            "lists every node's peer and client address in --initial-cluster (followers forward\n"
            "writes to the leader's client address); --listen-client/--listen-peer default to\n"
            "this node's entry. Growing a cluster: --join names any member's client address; the\n"
            "new node learns the members from it (RAFT.INFO), starts without bootstrapping and\n"
            "asks to be added (RAFT.ADDNODE): it joins as a learner and becomes a voter once it\n"
            "has caught up. With --join, --listen-peer and --listen-client are also the addresses\n"
            "the others use: give routable ones (the peer address with a numeric host). The\n"
            "first start writes DIR/craftkv.conf, so a restart needs only --id and --data-dir;\n"
            "raft data goes to DIR/raft, the LMDB store to DIR/kv. --timeout-ms (default 5000):\n"
            "how long a command waits for a leader and a quorum before failing with TRYAGAIN.\n"
            "--snapshot-entries N, --snapshot-bytes B (defaults 100000 entries, 64 MiB): snapshot\n"
            "after that much log since the last one; --trailing-entries N (default 10240): log\n"
            "kept behind a snapshot for followers that lag a little. These, and --timeout-ms,\n"
            "apply to the start they are given on (they are not saved in craftkv.conf).\n"
            "--requirepass PASS (or CRAFTKV_REQUIREPASS in the environment, which ps does not\n"
            "show): clients must AUTH PASS first (Redis's requirepass for the\n"
            "default user); every member must have the same, since members forward writes and\n"
            "admin commands to the leader as clients. Saved in craftkv.conf (mode 0600): a\n"
            "restart keeps it, and --requirepass on a restart replaces it.\n"
            "--listen-metrics HOST:PORT: Prometheus metrics at http://HOST:PORT/metrics (raft,\n"
            "server and process figures; not saved: give it at each start).\n"
            "--shard-groups G (first start, every member the same): a sharded cluster, Redis\n"
            "Cluster style: the 16384 slots are spread over G Raft groups by a replicated shard\n"
            "controller; clients route with MOVED and CROSSSLOT (redis-cli -c).\n"
            "--shard-groups-initial K: only groups 1..K get slots at first; CRAFT.SHARD\n"
            "JOIN/LEAVE/MOVE change that live. --shard-replicas R (default 3, or every member if\n"
            "fewer): members hosting each group, R consecutive members of --initial-cluster per\n"
            "group, wrapping around, so more members and groups spread the load; G * R must\n"
            "reach the member count. All three are saved in craftkv.conf.\n"
            "--shard-handover-bytes B (8 KiB to 32 MiB - 4 KiB, the default; each start): the\n"
            "largest log entry of a slot hand-over, more goes in several; every live client\n"
            "session of a group must fit in one.\n"
            "\n"
            "--force-new-cluster ID,... (a restart, unsharded): recovery from a lost quorum. When\n"
            "a majority of the members is gone for good, start the survivor with the highest\n"
            "commit_index in RAFT.INFO (read before stopping it; last_log_term, then last_index\n"
            "break ties) once with this node's id and the other survivors' (running: they\n"
            "elect nobody); it refuses while any member reports a leader.\n"
            "It appends that configuration to its log and leads the survivors again, with\n"
            "every write it had (writes in doubt may take effect). Start the other survivors\n"
            "as usual; never start a lost node with its old data (wipe it, then --join).\n"
            "\n"
            "Administration (redis-cli, any node): RAFT.INFO, RAFT.ADDNODE ID PEER CLIENT\n"
            "[VOTER|LEARNER], RAFT.REMOVENODE ID, RAFT.TRANSFER [ID], RAFT.SNAPSHOT.\n"
            "\n"
            "local: runs N nodes on 127.0.0.1 as child processes (client ports P..P+N-1, peer\n"
            "ports P+100..; default P=7001, D=./craftkv-local), restarts crashed ones, stops\n"
            "them all on Ctrl-C. --groups G [--initial-groups K] [--replicas R]: a sharded\n"
            "cluster (above).\n");
}

static int die(const char *fmt, const char *a)
{
    fprintf(stderr, "craftkv: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || !*s || *s == '-')
        return -1;
    *v = x;
    return 0;
}

/* ---- craftkv.conf: key=value lines ---- */

struct conf {
    char id[24], listen_client[CRAFTKV_ADDR_MAX], listen_peer[CRAFTKV_ADDR_MAX];
    char cluster[2048];
    /* A node that joined: the member it joined through, and the members then (in
     * --initial-cluster syntax; their peer addresses reach the cluster at a restart). */
    char join[CRAFTKV_ADDR_MAX], peers[2048];
    char requirepass[CRAFTKV_PASS_MAX]; /* "" : none */
    char shard_groups[16], shard_groups_initial[16]; /* "": unsharded */
    /* Members hosting each group; "" in a file from before placement: every member. */
    char shard_replicas[16];
};

_Static_assert(CRAFTKV_PASS_MAX == 256, "the --requirepass errors say 255 bytes");

/* The password this process's own client connections send (--join, `local`). */
static char g_password[CRAFTKV_PASS_MAX];

/* --force-new-cluster IDS: this node's id and the other survivors' (members the server
 * knows the addresses of: checked at its start, server_recover.c). */
static int parse_survivors(const char *s, struct craftkv_opts *o)
{
    o->n_force_survivors = 0;
    bool self = false;
    while (*s) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(s, &end, 10);
        if (errno || end == s || id == 0 || (*end != ',' && *end != '\0') ||
            o->n_force_survivors == CRAFTKV_NODES_MAX)
            return -1;
        for (size_t i = 0; i < o->n_force_survivors; i++)
            if (o->force_survivors[i] == id)
                return -1;
        self |= id == o->id;
        o->force_survivors[o->n_force_survivors++] = id;
        s = *end ? end + 1 : end;
    }
    return self ? 0 : -1;
}


static int conf_load(const char *path, struct conf *c)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 1 : -1;
    char line[2200];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#')
            continue;
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(line, "id") == 0)
            snprintf(c->id, sizeof c->id, "%s", v);
        else if (strcmp(line, "listen_client") == 0)
            snprintf(c->listen_client, sizeof c->listen_client, "%s", v);
        else if (strcmp(line, "listen_peer") == 0)
            snprintf(c->listen_peer, sizeof c->listen_peer, "%s", v);
        else if (strcmp(line, "initial_cluster") == 0)
            snprintf(c->cluster, sizeof c->cluster, "%s", v);
        else if (strcmp(line, "join") == 0)
            snprintf(c->join, sizeof c->join, "%s", v);
        else if (strcmp(line, "peers") == 0)
            snprintf(c->peers, sizeof c->peers, "%s", v);
        else if (strcmp(line, "requirepass") == 0)
            snprintf(c->requirepass, sizeof c->requirepass, "%s", v);
        else if (strcmp(line, "shard_groups") == 0)
            snprintf(c->shard_groups, sizeof c->shard_groups, "%s", v);
        else if (strcmp(line, "shard_groups_initial") == 0)
            snprintf(c->shard_groups_initial, sizeof c->shard_groups_initial, "%s", v);
        else if (strcmp(line, "shard_replicas") == 0)
            snprintf(c->shard_replicas, sizeof c->shard_replicas, "%s", v);
    }
    fclose(f);
    return 0;
}

static int conf_save(const char *path, const struct conf *c)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* 0600: it may hold the password. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0 && fchmod(fd, 0600) != 0) { /* a .tmp left by a crash keeps its mode */
        close(fd);
        return -1;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(f, "# written by craftkv on first start; a restart needs only --id and --data-dir\n"
               "id=%s\nlisten_client=%s\nlisten_peer=%s\n",
            c->id, c->listen_client, c->listen_peer);
    if (c->join[0])
        fprintf(f, "join=%s\npeers=%s\n", c->join, c->peers);
    else
        fprintf(f, "initial_cluster=%s\n", c->cluster);
    if (c->requirepass[0])
        fprintf(f, "requirepass=%s\n", c->requirepass);
    if (c->shard_groups[0])
        fprintf(f, "shard_groups=%s\nshard_groups_initial=%s\nshard_replicas=%s\n",
                c->shard_groups, c->shard_groups_initial, c->shard_replicas);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return rename(tmp, path);
}

static int mkdirs(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- joining a running cluster ---- */

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends one command to addr; the raw reply in *reply. 0, or -1 if addr could not be
 * reached or did not answer. */
static int call_once(const char *addr, size_t argc, const struct craft_resp_arg *argv,
                     struct craft_resp_buf *reply, uint32_t timeout_ms)
{
    int fd = craftkv_client_connect(addr, timeout_ms, g_password);
    if (fd < 0)
        return -1;
    int rc = craftkv_client_call(fd, argc, argv, reply);
    close(fd);
    return rc;
}

/* The value of "name=" in a RAFT.INFO member line (up to the next ',' or the end). */
static bool member_field(const char *line, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strchr(line, ':'); p && *p; p = strchr(p, ',')) {
        p++; /* past the ':' or ',' */
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1;
            size_t len = strcspn(v, ",");
            if (len >= cap)
                return false;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

/* Learns the cluster's members from RAFT.INFO at addr into o->members (this node left
 * out: it may be a member already when a join is retried, with the same peer address).
 * 0, or -1 with err naming the cause. */
static int join_fetch(const char *addr, struct craftkv_opts *o, const char *my_peer, char *err,
                      size_t cap)
{
    struct craft_resp_arg cmd[1] = {{"RAFT.INFO", 9}};
    struct craft_resp_buf reply = {0};
    if (call_once(addr, 1, cmd, &reply, 5000) != 0) {
        if (errno == EACCES)
            snprintf(err, cap, "--join %s: the cluster refused this node's password "
                     "(--requirepass must be the cluster's)", addr);
        else
            snprintf(err, cap, "--join %s: no answer to RAFT.INFO (is a craftkv node there?)",
                     addr);
        craft_resp_buf_free(&reply);
        return -1;
    }
    char *text = malloc(reply.len + 1);
    if (!text) {
        craft_resp_buf_free(&reply);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    memcpy(text, reply.data, reply.len);
    text[reply.len] = '\0';
    craft_resp_buf_free(&reply);
    int rc = -1;
    o->n_members = 0;
    if (text[0] != '$') {
        snprintf(err, cap, "--join %s: RAFT.INFO failed: %.200s", addr,
                 text[0] == '-' ? text + 1 : text);
        goto done;
    }
    for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        if (strncmp(line, "member", 6) != 0 || line[6] < '0' || line[6] > '9')
            continue;
        char idbuf[24];
        struct craftkv_member m = {0};
        uint64_t id = 0;
        if (!member_field(line, "id", idbuf, sizeof idbuf) || parse_u64(idbuf, &id) || id == 0) {
            snprintf(err, cap, "--join %s: bad RAFT.INFO line '%.200s'", addr, line);
            goto done;
        }
        m.id = id;
        if (!member_field(line, "peer_addr", m.peer_addr, sizeof m.peer_addr) ||
            !member_field(line, "client_addr", m.client_addr, sizeof m.client_addr) ||
            !m.peer_addr[0] || !m.client_addr[0]) {
            snprintf(err, cap, "--join %s: the addresses of node %llu are not known there yet; try again",
                     addr, (unsigned long long)id);
            goto done;
        }
        if (id == o->id) {
            if (strcmp(m.peer_addr, my_peer) != 0) {
                snprintf(err, cap, "node id %llu is already a member, with peer address %s",
                         (unsigned long long)id, m.peer_addr);
                goto done;
            }
            continue; /* a join that is retried */
        }
        if (o->n_members == CRAFTKV_NODES_MAX) {
            snprintf(err, cap, "--join %s: more than %d members", addr, CRAFTKV_NODES_MAX);
            goto done;
        }
        o->members[o->n_members++] = m;
    }
    if (o->n_members == 0) {
        snprintf(err, cap, "--join %s: that node knows no cluster members (is it part of a cluster?)",
                 addr);
        goto done;
    }
    rc = 0;
done:
    free(text);
    return rc;
}

/* Asks the cluster to add this node (RAFT.ADDNODE through addr, forwarded to the leader),
 * trying the other members' client addresses too, until it is added or timeout_ms pass.
 * 0, or -1 with err naming the cause. */
static int join_request(const char *addr, const struct craftkv_opts *o, uint32_t timeout_ms,
                        char *err, size_t cap)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)o->id);
    struct craft_resp_arg cmd[4] = {{"RAFT.ADDNODE", 12},
                                    {idbuf, strlen(idbuf)},
                                    {o->listen_peer, strlen(o->listen_peer)},
                                    {o->listen_client, strlen(o->listen_client)}};
    struct craft_resp_buf reply = {0};
    time_t until = time(NULL) + (time_t)(timeout_ms / 1000) + 1;
    snprintf(err, cap, "no member answered RAFT.ADDNODE");
    for (size_t attempt = 0; time(NULL) < until && !g_stop; attempt++) {
        /* The member we were told to join through, then each other member in turn. */
        size_t k = attempt % (o->n_members + 1);
        const char *to = k == 0 ? addr : o->members[k - 1].client_addr;
        reply.len = 0;
        if (call_once(to, 4, cmd, &reply, timeout_ms) == 0) {
            if (reply.len >= 3 && memcmp(reply.data, "+OK", 3) == 0) {
                craft_resp_buf_free(&reply);
                return 0;
            }
            int n = (int)(reply.len > 300 ? 300 : reply.len);
            while (n > 0 && (reply.data[n - 1] == '\r' || reply.data[n - 1] == '\n'))
                n--;
            snprintf(err, cap, "RAFT.ADDNODE through %s: %.*s", to, n > 0 ? n - 1 : 0,
                     reply.data + (n > 0 ? 1 : 0));
            /* No leader yet, a leader change, a change in progress: try again. Anything
             * else (a conflicting id, a bad address) will not get better. */
            bool again = reply.len > 0 && reply.data[0] == '-' &&
                         (strncmp(reply.data, "-TRYAGAIN", 9) == 0 ||
                          strncmp(reply.data, "-CRAFTNOTLEADER", 15) == 0 ||
                          strstr(reply.data, "configuration change is in progress") != NULL);
            if (!again)
                break;
        }
        nap_ms(200);
    }
    craft_resp_buf_free(&reply);
    return -1;
}

static int run_server(int argc, char **argv)
{
    struct conf flags = {0}, file = {0};
    const char *dir = NULL, *timeout = NULL, *snap_entries = NULL, *snap_bytes = NULL,
               *trailing = NULL, *pass = NULL, *metrics = NULL, *handover = NULL, *force = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return die("%s needs a value (see --help)", a);
        const char *v = argv[++i];
        if (strcmp(a, "--id") == 0)
            snprintf(flags.id, sizeof flags.id, "%s", v);
        else if (strcmp(a, "--data-dir") == 0)
            dir = v;
        else if (strcmp(a, "--listen-client") == 0)
            snprintf(flags.listen_client, sizeof flags.listen_client, "%s", v);
        else if (strcmp(a, "--listen-peer") == 0)
            snprintf(flags.listen_peer, sizeof flags.listen_peer, "%s", v);
        else if (strcmp(a, "--initial-cluster") == 0)
            snprintf(flags.cluster, sizeof flags.cluster, "%s", v);
        else if (strcmp(a, "--join") == 0)
            snprintf(flags.join, sizeof flags.join, "%s", v);
        else if (strcmp(a, "--timeout-ms") == 0)
            timeout = v;
        else if (strcmp(a, "--snapshot-entries") == 0)
            snap_entries = v;
        else if (strcmp(a, "--snapshot-bytes") == 0)
            snap_bytes = v;
        else if (strcmp(a, "--trailing-entries") == 0)
            trailing = v;
        else if (strcmp(a, "--requirepass") == 0)
            pass = v;
        else if (strcmp(a, "--listen-metrics") == 0)
            metrics = v;
        else if (strcmp(a, "--shard-groups") == 0)
            snprintf(flags.shard_groups, sizeof flags.shard_groups, "%s", v);
        else if (strcmp(a, "--shard-handover-bytes") == 0)
            handover = v;
        else if (strcmp(a, "--shard-groups-initial") == 0)
            snprintf(flags.shard_groups_initial, sizeof flags.shard_groups_initial, "%s", v);
        else if (strcmp(a, "--shard-replicas") == 0)
            snprintf(flags.shard_replicas, sizeof flags.shard_replicas, "%s", v);
        else if (strcmp(a, "--force-new-cluster") == 0)
            force = v;
        else
            return die("unknown flag %s (see --help)", a);
    }
    if (!dir)
        return die("%s", "--data-dir is required (see --help)");
    if (!flags.id[0])
        return die("%s", "--id is required (see --help)");
    struct craftkv_opts o = {0};
    if (parse_u64(flags.id, &o.id) || o.id == 0)
        return die("bad --id '%s' (want a positive integer)", flags.id);
    if (timeout) {
        uint64_t t;
        if (parse_u64(timeout, &t) || t == 0 || t > 600000)
            return die("bad --timeout-ms '%s'", timeout);
        o.timeout_ms = (uint32_t)t;
    }
    struct {
        const char *flag, *value;
        uint64_t *out;
    } sizes[] = {{"--snapshot-entries", snap_entries, &o.snapshot_entries},
                 {"--snapshot-bytes", snap_bytes, &o.snapshot_bytes},
                 {"--trailing-entries", trailing, &o.trailing_entries}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        if (sizes[k].value && (parse_u64(sizes[k].value, sizes[k].out) || *sizes[k].out == 0))
        {
            fprintf(stderr, "craftkv: bad %s '%s' (want a positive integer)\n", sizes[k].flag,
                    sizes[k].value);
            return 2;
        }
    }
    if (handover) {
        uint64_t b;
        if (parse_u64(handover, &b) || b < CRAFTKV_HANDOVER_BYTES_MIN ||
            b > CRAFTKV_HANDOVER_BYTES_MAX) {
            fprintf(stderr, "craftkv: bad --shard-handover-bytes '%s' (want %u to %u)\n",
                    handover, CRAFTKV_HANDOVER_BYTES_MIN, CRAFTKV_HANDOVER_BYTES_MAX);
            return 2;
        }
        o.shard_handover_bytes = (size_t)b;
    }
    if (flags.join[0] && flags.cluster[0])
        return die("%s", "--join and --initial-cluster exclude each other (see --help)");
    if (metrics) {
        if (strlen(metrics) >= sizeof o.listen_metrics)
            return die("bad --listen-metrics '%s'", metrics);
        snprintf(o.listen_metrics, sizeof o.listen_metrics, "%s", metrics);
    }
    /* The environment keeps the password out of the process list (ps shows argv). */
    if (!pass && getenv("CRAFTKV_REQUIREPASS") && getenv("CRAFTKV_REQUIREPASS")[0])
        pass = getenv("CRAFTKV_REQUIREPASS");
    if (pass && (strlen(pass) >= CRAFTKV_PASS_MAX || strpbrk(pass, "\r\n") != NULL))
        return die("%s", "bad --requirepass: at most 255 bytes, no line breaks");

    char conf_path[4200];
    snprintf(conf_path, sizeof conf_path, "%s/craftkv.conf", dir);
    int lr = conf_load(conf_path, &file);
    if (lr < 0) {
        fprintf(stderr, "craftkv: cannot read %s: %s\n", conf_path, strerror(errno));
        return 1;
    }
    bool first = lr == 1;
    char err[512];
    if (!first) {
        if (strcmp(file.id, flags.id) != 0) {
            fprintf(stderr, "craftkv: --id %s but %s belongs to node %s\n", flags.id, conf_path,
                    file.id);
            return 2;
        }
        if (flags.join[0] && !file.join[0]) {
            fprintf(stderr, "craftkv: --join: %s belongs to a cluster already (see %s)\n", dir,
                    conf_path);
            return 2;
        }
        if (flags.cluster[0] && (file.join[0] || strcmp(flags.cluster, file.cluster) != 0)) {
            fprintf(stderr,
                    "craftkv: --initial-cluster differs from the one in %s (the cluster is fixed at first start)\n",
                    conf_path);
            return 2;
        }
        if ((flags.shard_groups[0] && strcmp(flags.shard_groups, file.shard_groups) != 0) ||
            (flags.shard_groups_initial[0] &&
             strcmp(flags.shard_groups_initial, file.shard_groups_initial) != 0) ||
            (flags.shard_replicas[0] && strcmp(flags.shard_replicas, file.shard_replicas) != 0)) {
            fprintf(stderr, "craftkv: --shard-groups or --shard-replicas differs from %s (the "
                            "groups and their placement are fixed at first start)\n", conf_path);
            return 2;
        }
        snprintf(flags.shard_groups, sizeof flags.shard_groups, "%s", file.shard_groups);
        snprintf(flags.shard_groups_initial, sizeof flags.shard_groups_initial, "%s",
                 file.shard_groups_initial);
        snprintf(flags.shard_replicas, sizeof flags.shard_replicas, "%s", file.shard_replicas);
        snprintf(flags.cluster, sizeof flags.cluster, "%s", file.cluster);
        snprintf(flags.join, sizeof flags.join, "%s", file.join);
        snprintf(flags.peers, sizeof flags.peers, "%s", file.peers);
        snprintf(flags.requirepass, sizeof flags.requirepass, "%s",
                 pass ? pass : file.requirepass);
        if (!flags.listen_client[0])
            snprintf(flags.listen_client, sizeof flags.listen_client, "%s", file.listen_client);
        if (!flags.listen_peer[0])
            snprintf(flags.listen_peer, sizeof flags.listen_peer, "%s", file.listen_peer);
    } else if (!flags.cluster[0] && !flags.join[0]) {
        return die("%s has no craftkv.conf: the first start needs --initial-cluster or --join", dir);
    } else if (pass) {
        snprintf(flags.requirepass, sizeof flags.requirepass, "%s", pass);
    }
    snprintf(o.requirepass, sizeof o.requirepass, "%s", flags.requirepass);
    snprintf(g_password, sizeof g_password, "%s", flags.requirepass);
    o.join = flags.join[0] != '\0';
    if (flags.shard_groups[0]) {
        uint64_t g = 0, gi = 0;
        if (parse_u64(flags.shard_groups, &g) || g == 0 || g > CRAFTKV_SHARD_GROUPS_MAX)
            return die("bad --shard-groups '%s' (1..16)", flags.shard_groups);
        if (!flags.shard_groups_initial[0])
            snprintf(flags.shard_groups_initial, sizeof flags.shard_groups_initial, "%llu",
                     (unsigned long long)g);
        if (parse_u64(flags.shard_groups_initial, &gi) || gi == 0 || gi > g)
            return die("bad --shard-groups-initial '%s' (1..--shard-groups)",
                       flags.shard_groups_initial);
        if (o.join)
            return die("%s", "--join: a sharded cluster's members are fixed at first start "
                             "(adding processes to one is not built yet)");
        o.shard_groups = (uint32_t)g;
        o.shard_groups_initial = (uint32_t)gi;
        uint64_t rep = 0;
        if (flags.shard_replicas[0] &&
            (parse_u64(flags.shard_replicas, &rep) || rep == 0 || rep > CRAFTKV_SHARD_REPLICAS_MAX))
            return die("bad --shard-replicas '%s' (1..16)", flags.shard_replicas);
        o.shard_replicas = (uint32_t)rep; /* 0 (a file from before placement): below */
    } else if (flags.shard_groups_initial[0] || flags.shard_replicas[0]) {
        return die("%s", "--shard-groups-initial and --shard-replicas need --shard-groups "
                         "(see --help)");
    }
    if (o.join) {
        /* The members' peer addresses let this node answer the leader before its log tells
         * it anything; their client addresses are where it forwards until then. */
        if (!flags.listen_client[0] || !flags.listen_peer[0])
            return die("%s", "--join needs --listen-peer and --listen-client (see --help)");
        snprintf(o.listen_client, sizeof o.listen_client, "%s", flags.listen_client);
        snprintf(o.listen_peer, sizeof o.listen_peer, "%s", flags.listen_peer);
        if (first) {
            if (join_fetch(flags.join, &o, flags.listen_peer, err, sizeof err) != 0) {
                fprintf(stderr, "craftkv: %s\n", err);
                return 1;
            }
            size_t off = 0;
            for (size_t i = 0; i < o.n_members && off < sizeof flags.peers; i++)
                off += (size_t)snprintf(flags.peers + off, sizeof flags.peers - off, "%s%llu=%s/%s",
                                        i ? "," : "", (unsigned long long)o.members[i].id,
                                        o.members[i].peer_addr, o.members[i].client_addr);
            if (off >= sizeof flags.peers)
                return die("%s", "--join: the member list is too long");
        } else if (craftkv_parse_cluster(flags.peers, &o, err, sizeof err) != 0) {
            fprintf(stderr, "craftkv: %s: peers: %s\n", conf_path, err);
            return 2;
        }
    } else {
        if (craftkv_parse_cluster(flags.cluster, &o, err, sizeof err) != 0) {
            fprintf(stderr, "craftkv: %s\n", err);
            return 2;
        }
        const struct craftkv_member *me = NULL;
        for (size_t i = 0; i < o.n_members; i++)
            if (o.members[i].id == o.id)
                me = &o.members[i];
        if (!me)
            return die("--id %s is not in --initial-cluster", flags.id);
        if (!flags.listen_client[0])
            snprintf(flags.listen_client, sizeof flags.listen_client, "%s", me->client_addr);
        if (!flags.listen_peer[0])
            snprintf(flags.listen_peer, sizeof flags.listen_peer, "%s", me->peer_addr);
        snprintf(o.listen_client, sizeof o.listen_client, "%s", flags.listen_client);
        snprintf(o.listen_peer, sizeof o.listen_peer, "%s", flags.listen_peer);
    }
    if (force) {
        if (first)
            return die("%s", "--force-new-cluster recovers a node's data: DIR holds none");
        if (parse_survivors(force, &o) != 0)
            return die("bad --force-new-cluster '%s' (want this node's id and the other "
                       "survivors', comma-separated, e.g. 1,3)", force);
    }
    if (o.shard_groups && o.shard_replicas == 0) {
        /* First start: 3 or every member if fewer (saved); a craftkv.conf written before
         * placement existed: every member hosted every group, and still does. */
        size_t r = first ? (o.n_members < 3 ? o.n_members : 3) : o.n_members;
        o.shard_replicas = (uint32_t)r;
        snprintf(flags.shard_replicas, sizeof flags.shard_replicas, "%zu", r);
    }
    o.data_dir = dir;
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "craftkv: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }

    install_signals();
    /* Only this thread takes SIGINT/SIGTERM: the server's threads are created with them
     * blocked (they inherit the mask), so the handler never races the loop's reads. */
    sigset_t stop_sigs, old_mask;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, &old_mask);
    struct craftkv_server *s;
    int started = craftkv_server_start(&o, &s, err, sizeof err);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (started != 0) {
        fprintf(stderr, "craftkv: node %s: %s\n", flags.id, err);
        return 1;
    }
    if (first && o.join) {
        /* Settings are saved only once the cluster took this node: a refused join leaves
         * nothing that a corrected command line would have to fight. */
        fprintf(stderr, "craftkv: node %s asking to join the cluster through %s\n", flags.id,
                flags.join);
        uint32_t t = o.timeout_ms ? o.timeout_ms : 5000;
        if (join_request(flags.join, &o, t < 30000 ? 30000 : t, err, sizeof err) != 0) {
            fprintf(stderr, "craftkv: node %s could not join: %s\n", flags.id, err);
            craftkv_server_destroy(s);
            return 1;
        }
        fprintf(stderr, "craftkv: node %s added as a learner; it becomes a voter once caught up\n",
                flags.id);
    }
    /* A restart rewrites the file only for a new password, and only that: one-off listen
     * overrides given on a restart are not saved. */
    bool pass_changed = !first && strcmp(flags.requirepass, file.requirepass) != 0;
    if (pass_changed)
        snprintf(file.requirepass, sizeof file.requirepass, "%s", flags.requirepass);
    if ((first || pass_changed) && conf_save(conf_path, first ? &flags : &file) != 0) {
        fprintf(stderr, "craftkv: cannot write %s: %s\n", conf_path, strerror(errno));
        craftkv_server_destroy(s);
        return 1;
    }
    fprintf(stderr, "craftkv: node %s serving clients on %s, peers on %s, data in %s\n", flags.id,
            o.listen_client, o.listen_peer, dir);
    craftkv_server_run(s, &g_stop);
    fprintf(stderr, "craftkv: node %s stopping\n", flags.id);
    craftkv_server_destroy(s);
    return 0;
}

/* ---- craftkv local ---- */

struct child {
    pid_t pid;
    char dir[4096];
    int client_port;
    time_t started;
    int quick_crashes;
};

/* `local --groups G [--initial-groups K]`: passed to each child's first start. */
static char g_groups[16], g_groups_initial[16], g_replicas[16];

static pid_t spawn(const char *self, int id, struct child *c, const char *cluster, int base)
{
    char conf[4200], idbuf[16], lc[32], lp[32], log[4200];
    snprintf(conf, sizeof conf, "%s/craftkv.conf", c->dir);
    snprintf(idbuf, sizeof idbuf, "%d", id);
    snprintf(lc, sizeof lc, "127.0.0.1:%d", base + id - 1);
    snprintf(lp, sizeof lp, "127.0.0.1:%d", base + 100 + id - 1);
    snprintf(log, sizeof log, "%s.log", c->dir);
    bool restart = access(conf, F_OK) == 0;
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    FILE *f = freopen(log, "a", stderr);
    (void)f;
    /* The password, if any, goes through the environment (not argv: ps shows that), on the
     * first start only: craftkv.conf keeps it. */
    if (g_password[0] && !restart)
        setenv("CRAFTKV_REQUIREPASS", g_password, 1);
    else
        unsetenv("CRAFTKV_REQUIREPASS");
    /* A restart takes its settings from craftkv.conf; a first start is given them all. */
    char *args[16] = {(char *)self, "--id", idbuf, "--data-dir", c->dir};
    size_t n = 5;
    if (!restart) {
        args[n++] = "--initial-cluster";
        args[n++] = (char *)cluster;
    }
    if (!restart && g_groups[0]) {
        args[n++] = "--shard-groups";
        args[n++] = g_groups;
        args[n++] = "--shard-groups-initial";
        args[n++] = g_groups_initial[0] ? g_groups_initial : g_groups;
    }
    if (!restart && g_replicas[0]) {
        args[n++] = "--shard-replicas";
        args[n++] = g_replicas;
    }
    args[n] = NULL;
    execv(self, args);
    _exit(127);
}

/* The id of the leader a node reports, or 0. */
static uint64_t leader_of(int port)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd = craftkv_client_connect(addr, 500, g_password);
    if (fd < 0)
        return 0;
    struct craft_resp_arg cmd[2] = {{"INFO", 4}, {"raft", 4}};
    struct craft_resp_buf reply = {0};
    uint64_t id = 0;
    if (craftkv_client_call(fd, 2, cmd, &reply) == 0 && reply.len > 0) {
        char *text = malloc(reply.len + 1);
        if (text) {
            memcpy(text, reply.data, reply.len);
            text[reply.len] = '\0';
            const char *p = strstr(text, "\nrole:leader");
            const char *l = strstr(text, "leader_id:");
            if (p && l)
                id = strtoull(l + 10, NULL, 10);
            free(text);
        }
    }
    craft_resp_buf_free(&reply);
    close(fd);
    return id;
}

/* Whether the node at port answers CLUSTER INFO with cluster_state:ok (sharded: it knows
 * the configuration and every slot's group has a leader). */
static bool cluster_ok(int port)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd = craftkv_client_connect(addr, 500, g_password);
    if (fd < 0)
        return false;
    struct craft_resp_arg cmd[2] = {{"CLUSTER", 7}, {"INFO", 4}};
    struct craft_resp_buf reply = {0};
    bool ok = craftkv_client_call(fd, 2, cmd, &reply) == 0 && reply.len > 0 &&
              memmem(reply.data, reply.len, "cluster_state:ok", 16) != NULL;
    craft_resp_buf_free(&reply);
    close(fd);
    return ok;
}

static int run_local(int argc, char **argv)
{
    uint64_t n = 0, base = 7001;
    const char *dir = "craftkv-local";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return die("%s needs a value (see --help)", argv[i]);
        const char *a = argv[i], *v = argv[++i];
        if (strcmp(a, "--nodes") == 0) {
            if (parse_u64(v, &n) || n == 0 || n > CRAFTKV_NODES_MAX)
                return die("bad --nodes '%s' (1..16)", v);
        } else if (strcmp(a, "--dir") == 0) {
            dir = v;
        } else if (strcmp(a, "--base-port") == 0) {
            if (parse_u64(v, &base) || base == 0 || base + 100 + CRAFTKV_NODES_MAX > 65535)
                return die("bad --base-port '%s'", v);
        } else if (strcmp(a, "--requirepass") == 0) {
            if (strlen(v) >= CRAFTKV_PASS_MAX || strpbrk(v, "\r\n") != NULL)
                return die("%s", "bad --requirepass: at most 255 bytes, no line breaks");
            snprintf(g_password, sizeof g_password, "%s", v);
        } else if (strcmp(a, "--groups") == 0) {
            uint64_t g;
            if (parse_u64(v, &g) || g == 0 || g > CRAFTKV_SHARD_GROUPS_MAX)
                return die("bad --groups '%s' (1..16)", v);
            snprintf(g_groups, sizeof g_groups, "%s", v);
        } else if (strcmp(a, "--initial-groups") == 0) {
            snprintf(g_groups_initial, sizeof g_groups_initial, "%s", v);
        } else if (strcmp(a, "--replicas") == 0) {
            snprintf(g_replicas, sizeof g_replicas, "%s", v);
        } else {
            return die("unknown flag %s (see --help)", a);
        }
    }
    if (n == 0)
        return die("%s", "local needs --nodes N (see --help)");
    if ((g_replicas[0] || g_groups_initial[0]) && !g_groups[0])
        return die("%s", "--replicas and --initial-groups need --groups (see --help)");
    if (!g_password[0] && getenv("CRAFTKV_REQUIREPASS"))
        snprintf(g_password, sizeof g_password, "%s", getenv("CRAFTKV_REQUIREPASS"));
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        return die("%s", "cannot find my own executable (/proc/self/exe)");
    self[sl] = '\0';
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "craftkv: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char cluster[2048] = "";
    size_t off = 0;
    for (uint64_t i = 1; i <= n; i++)
        off += (size_t)snprintf(cluster + off, sizeof cluster - off,
                                "%s%llu=127.0.0.1:%llu/127.0.0.1:%llu", i > 1 ? "," : "",
                                (unsigned long long)i, (unsigned long long)(base + 100 + i - 1),
                                (unsigned long long)(base + i - 1));
    install_signals();
    struct child kids[CRAFTKV_NODES_MAX] = {0};
    for (uint64_t i = 0; i < n; i++) {
        snprintf(kids[i].dir, sizeof kids[i].dir, "%s/n%llu", dir, (unsigned long long)(i + 1));
        kids[i].client_port = (int)(base + i);
        kids[i].pid = spawn(self, (int)i + 1, &kids[i], cluster, (int)base);
        kids[i].started = time(NULL);
    }
    uint64_t leader = 0;
    for (int tries = 0; tries < 300 && !leader && !g_stop; tries++) {
        for (uint64_t i = 0; i < n && !leader; i++)
            leader = leader_of(kids[i].client_port);
        if (!leader)
            nap_ms(100);
    }
    if (!leader && !g_stop)
        fprintf(stderr, "craftkv local: no leader after 30 s; see %s/n*.log\n", dir);
    for (int tries = 0; leader && g_groups[0] && tries < 300 && !g_stop; tries++) {
        if (cluster_ok(kids[0].client_port))
            break; /* the first configuration is in force */
        nap_ms(100);
    }
    if (leader) {
        printf("craftkv local: %llu nodes running in %s (logs: %s/n*.log), leader: node %llu\n",
               (unsigned long long)n, dir, dir, (unsigned long long)leader);
        for (uint64_t i = 0; i < n; i++)
            printf("  node %llu: redis-cli%s -p %d\n", (unsigned long long)(i + 1),
                   g_password[0] ? " -a PASSWORD" : "", kids[i].client_port);
        if (g_groups[0])
            printf("sharded: %s shard groups, %s of them owning slots now; use redis-cli -c, "
                   "CRAFT.SHARD INFO | JOIN gid.. | LEAVE gid.. | MOVE first last gid\n",
                   g_groups, g_groups_initial[0] ? g_groups_initial : g_groups);
        printf("Ctrl-C stops them all.\n");
        fflush(stdout);
    }
    while (!g_stop) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            nap_ms(200);
            continue;
        }
        for (uint64_t i = 0; i < n; i++) {
            if (kids[i].pid != pid)
                continue;
            kids[i].pid = 0;
            if (WIFSIGNALED(status))
                fprintf(stderr, "craftkv local: node %llu (pid %d) killed by signal %d",
                        (unsigned long long)(i + 1), (int)pid, WTERMSIG(status));
            else
                fprintf(stderr, "craftkv local: node %llu (pid %d) exited with status %d",
                        (unsigned long long)(i + 1), (int)pid, WEXITSTATUS(status));
            kids[i].quick_crashes = time(NULL) - kids[i].started < 5 ? kids[i].quick_crashes + 1 : 0;
            if (kids[i].quick_crashes >= 3) {
                fprintf(stderr, "; it keeps failing, not restarting it (see %s.log)\n", kids[i].dir);
            } else {
                fprintf(stderr, "; restarting it\n");
                nap_ms(500);
                kids[i].pid = spawn(self, (int)i + 1, &kids[i], cluster, (int)base);
                kids[i].started = time(NULL);
            }
        }
    }
    fprintf(stderr, "craftkv local: stopping\n");
    for (uint64_t i = 0; i < n; i++)
        if (kids[i].pid > 0)
            kill(kids[i].pid, SIGTERM);
    for (int tries = 0; tries < 100; tries++) {
        bool alive = false;
        for (uint64_t i = 0; i < n; i++)
            if (kids[i].pid > 0) {
                if (waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid)
                    kids[i].pid = 0;
                else
                    alive = true;
            }
        if (!alive)
            return 0;
        nap_ms(100);
    }
    for (uint64_t i = 0; i < n; i++)
        if (kids[i].pid > 0) {
            kill(kids[i].pid, SIGKILL);
            waitpid(kids[i].pid, NULL, 0);
        }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "local") == 0)
        return run_local(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    return run_server(argc, argv);
}
