/* craftkv: metrics in Prometheus's text format (version 0.0.4) on an HTTP port of their own
 * (--listen-metrics HOST:PORT): GET /metrics. What is exported and why: docs/design/craftkv.md
 * "Metrics".
 *
 * One thread, blocking I/O, one scrape at a time: scrapes come seconds apart, and the
 * event loop must never wait on a slow scraper (nor a scraper on the loop): everything read
 * here is a copy (craft_stats) or an atomic counter. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv/server_internal.h"

/* A request's head beyond this is refused (a scrape's is a few hundred bytes). */
#define METRICS_REQUEST_MAX 8192
/* A client gets this long to send its request and take the answer. */
#define METRICS_IO_TIMEOUT_MS 2000

const char *const craftkv_error_kinds[CRAFTKV_ERROR_KINDS] = {
    "ERR", "WRONGTYPE", "MOVED", "ASK", "TRYAGAIN", "CROSSSLOT", "NOAUTH", "WRONGPASS",
    "EXECABORT", "CRAFTNOTLEADER", "OTHER"};

void craftkv_count_error(struct craftkv_server *s, const char *reply, size_t len)
{
    if (len < 2 || reply[0] != '-')
        return;
    size_t k = 0;
    for (; k < CRAFTKV_ERROR_KINDS - 1; k++) {
        size_t n = strlen(craftkv_error_kinds[k]);
        if (len - 1 >= n && memcmp(reply + 1, craftkv_error_kinds[k], n) == 0 &&
            (len - 1 == n || reply[1 + n] == ' ' || reply[1 + n] == '\r'))
            break;
    }
    atomic_fetch_add_explicit(&s->n_errors[k], 1, memory_order_relaxed);
}

static void put(struct craft_resp_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Every line here is far shorter (names and numbers); a longer one is dropped whole
     * rather than cut, which would break the format. */
    if (n > 0 && (size_t)n < sizeof line)
        (void)craftkv_buf_append_raw(b, line, (size_t)n);
}

static void head(struct craft_resp_buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct craft_resp_buf *b, const char *name, const char *help, uint64_t v)
{
    head(b, name, "gauge", help);
    put(b, "%s %" PRIu64 "\n", name, v);
}

static void counter(struct craft_resp_buf *b, const char *name, const char *help, uint64_t v)
{
    head(b, name, "counter", help);
    put(b, "%s %" PRIu64 "\n", name, v);
}

/* A histogram kept in microseconds, exported in seconds (Prometheus's base unit). */
static void histogram(struct craft_resp_buf *b, const char *name, const char *help,
                      const struct craft_histogram *h)
{
    head(b, name, "histogram", help);
    for (size_t i = 0; i < CRAFT_HISTOGRAM_BUCKETS - 1; i++)
        put(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
            (double)craft_histogram_bounds_us[i] / 1e6, h->buckets[i]);
    uint64_t count = h->buckets[CRAFT_HISTOGRAM_BUCKETS - 1];
    put(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, count);
    put(b, "%s_sum %.6f\n", name, (double)h->sum_us / 1e6);
    put(b, "%s_count %" PRIu64 "\n", name, count);
}

static void process_metrics(const struct craftkv_server *s, struct craft_resp_buf *b)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        head(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
        put(b, "process_cpu_seconds_total %.3f\n", cpu);
    }
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages_total = 0, pages_rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &pages_total, &pages_rss) == 2) {
            long page = sysconf(_SC_PAGESIZE);
            gauge(b, "process_resident_memory_bytes", "Resident memory size.",
                  (uint64_t)pages_rss * (uint64_t)page);
            gauge(b, "process_virtual_memory_bytes", "Virtual memory size.",
                  (uint64_t)pages_total * (uint64_t)page);
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        uint64_t n = 0;
        while (readdir(d))
            n++;
        closedir(d);
        gauge(b, "process_open_fds", "Open file descriptors.", n > 2 ? n - 3 : 0);
    }
    head(b, "process_start_time_seconds", "gauge", "Start time since the epoch, in seconds.");
    put(b, "process_start_time_seconds %.3f\n", (double)s->started_wall_ms / 1e3);
}

void craftkv_metrics_render(struct craftkv_server *s, struct craft_resp_buf *b)
{
    struct craft_stats st;
    craft_stats(craftkv_main_group(s)->node, &st);
    gauge(b, "craft_raft_term", "The node's current term.", st.term);
    gauge(b, "craft_raft_leader_id", "The leader this node knows of (0: none).", st.leader);
    head(b, "craft_raft_role", "gauge", "1 for the node's role, 0 for the others.");
    static const char *const roles[] = {"follower", "precandidate", "candidate", "leader"};
    static const enum craft_role role_of[] = {CRAFT_FOLLOWER, CRAFT_PRECANDIDATE,
                                              CRAFT_CANDIDATE, CRAFT_LEADER};
    for (size_t i = 0; i < 4; i++)
        put(b, "craft_raft_role{role=\"%s\"} %d\n", roles[i], st.role == role_of[i]);
    gauge(b, "craft_raft_commit_index", "Highest log index known committed.", st.commit);
    gauge(b, "craft_raft_applied_index", "Highest log index applied here.", st.applied);
    gauge(b, "craft_raft_last_index", "Last index of the local log.", st.last_index);
    gauge(b, "craft_raft_persisted_index", "Highest index durable here.", st.persisted);
    gauge(b, "craft_raft_snapshot_index", "Index of the latest snapshot.", st.snap_index);
    gauge(b, "craft_raft_proposals_queued", "Proposals waiting for the raft loop.",
          st.proposals_queued);
    counter(b, "craft_raft_leader_changes_total", "Times this node learned of a new leader.",
            st.leader_changes);
    counter(b, "craft_raft_entries_written_total", "Log entries made durable here.",
            st.entries_written);
    counter(b, "craft_raft_entries_applied_total", "Log entries applied here.", st.entries_applied);
    counter(b, "craft_raft_disk_writes_total", "Durable log writes.", st.disk_writes);
    counter(b, "craft_raft_disk_syncs_total", "fdatasync calls (or shares of a host's one).",
            st.disk_syncs);
    counter(b, "craft_raft_snapshots_taken_total", "Snapshots taken here.", st.snapshots_taken);
    counter(b, "craft_raft_snapshots_installed_total", "Snapshots installed from a leader.",
            st.snapshots_installed);
    counter(b, "craft_raft_messages_sent_total", "Raft messages sent.", st.msgs_sent);
    counter(b, "craft_raft_messages_received_total", "Raft messages received.", st.msgs_received);
    counter(b, "craft_raft_bad_messages_received_total", "Raft messages refused as malformed.",
            st.bad_msgs_received);
    histogram(b, "craft_raft_disk_write_seconds",
              "Time of a durable write of log entries and hard state (write and fdatasync).",
              &st.disk_write_us);
    histogram(b, "craft_raft_apply_seconds", "Time of one batch of the state machine's apply.",
              &st.apply_us);
    head(b, "craft_raft_peer_match_index", "gauge",
         "Leader only: the highest index known replicated on each peer.");
    for (size_t i = 0; i < st.n_peers; i++)
        put(b, "craft_raft_peer_match_index{peer=\"%" PRIu64 "\"} %" PRIu64 "\n",
            st.peers[i].id, st.peers[i].match);
    head(b, "craft_raft_peer_lag_entries", "gauge",
         "Leader only: entries each peer lacks of the leader's log.");
    for (size_t i = 0; i < st.n_peers; i++)
        put(b, "craft_raft_peer_lag_entries{peer=\"%" PRIu64 "\"} %" PRIu64 "\n", st.peers[i].id,
            st.last_index > st.peers[i].match ? st.last_index - st.peers[i].match : 0);
    gauge(b, "craft_raft_failed", "1 once the node stopped on an error (see the log).",
          st.failed != 0);

    gauge(b, "craftkv_connected_clients", "Client connections open.",
          (uint64_t)atomic_load(&s->n_conns));
    head(b, "craftkv_commands_total", "counter", "Commands received, by name.");
    for (size_t i = 0; craftkv_cmd_at(i); i++) {
        uint64_t n = atomic_load_explicit(&s->cmd_calls[i], memory_order_relaxed);
        if (n > 0)
            put(b, "craftkv_commands_total{command=\"%s\"} %" PRIu64 "\n", craftkv_cmd_at(i)->name,
                n);
    }
    head(b, "craftkv_errors_total", "counter",
         "Error replies of reads, writes and admin commands, and refused commands, by kind.");
    uint64_t redirects = 0;
    for (size_t k = 0; k < CRAFTKV_ERROR_KINDS; k++) {
        uint64_t n = atomic_load_explicit(&s->n_errors[k], memory_order_relaxed);
        put(b, "craftkv_errors_total{kind=\"%s\"} %" PRIu64 "\n", craftkv_error_kinds[k], n);
        if (!strcmp(craftkv_error_kinds[k], "MOVED") || !strcmp(craftkv_error_kinds[k], "ASK") ||
            !strcmp(craftkv_error_kinds[k], "CRAFTNOTLEADER"))
            redirects += n;
    }
    counter(b, "craftkv_redirects_total", "Replies sending a client elsewhere (MOVED, ASK, "
                                          "CRAFTNOTLEADER).", redirects);
    counter(b, "craftkv_writes_retried_total", "Writes sent again after a failed attempt.",
            atomic_load(&s->n_retried));
    counter(b, "craftkv_sessions_ended_total", "Sessions ended with their connection.",
            atomic_load(&s->n_sessions_ended));
    counter(b, "craftkv_auth_failures_total", "AUTH with a wrong password.",
            atomic_load(&s->n_auth_failures));
    process_metrics(s, b);
}

/* Waits until fd is ready for events, the deadline (monotonic ms) passes or the server
 * stops: true only if ready. Short polls, so a stop is seen within 200 ms. */
static bool wait_ready(struct craftkv_server *s, int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = craftkv_mono_ms();
        if (atomic_load(&s->stopping) || now >= deadline)
            return false;
        uint64_t left = deadline - now;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left < 200 ? (int)left : 200);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/* Sends everything by the deadline (a scraper that does not read is dropped then). */
static void send_all(struct craftkv_server *s, int fd, const char *p, size_t len,
                     uint64_t deadline)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_ready(s, fd, POLLOUT, deadline))
                return;
        } else {
            return;
        }
    }
}

/* The status line and headers, then the body (HEAD: the headers of GET, no body). */
static void answer(struct craftkv_server *s, int fd, uint64_t deadline, const char *status,
                   const char *type, const char *body, size_t len, bool with_body)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, type, len);
    send_all(s, fd, hdr, (size_t)n, deadline);
    if (with_body)
        send_all(s, fd, body, len, deadline);
}

/* Reads a request head and answers it, all within METRICS_IO_TIMEOUT_MS of the accept: a
 * client that sends slowly, or nothing, or does not read, holds the thread no longer (and
 * a stopping server no longer than a poll). */
static void serve(struct craftkv_server *s, int fd)
{
    uint64_t deadline = craftkv_mono_ms() + METRICS_IO_TIMEOUT_MS;
    char req[METRICS_REQUEST_MAX + 1];
    size_t len = 0;
    bool complete = false;
    while (len < METRICS_REQUEST_MAX && !complete) {
        ssize_t r = recv(fd, req + len, METRICS_REQUEST_MAX - len, 0);
        if (r > 0) {
            len += (size_t)r;
            req[len] = '\0';
            complete = strstr(req, "\r\n\r\n") || strstr(req, "\n\n");
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_ready(s, fd, POLLIN, deadline))
                return; /* too slow, or stopping */
        } else {
            return; /* gone */
        }
    }
    req[len] = '\0';
    if (!complete) {
        const char *msg = "request head too large\n";
        answer(s, fd, deadline, "431 Request Header Fields Too Large", "text/plain", msg,
               strlen(msg), true);
        return;
    }
    bool get = strncmp(req, "GET ", 4) == 0, head_only = strncmp(req, "HEAD ", 5) == 0;
    const char *path = get ? req + 4 : head_only ? req + 5 : NULL;
    if (!path) {
        const char *msg = "only GET /metrics\n";
        answer(s, fd, deadline, "405 Method Not Allowed", "text/plain", msg, strlen(msg), true);
        return;
    }
    size_t plen = strcspn(path, " ?\r\n");
    if (!(plen == 8 && memcmp(path, "/metrics", 8) == 0)) {
        const char *msg = "not found: try /metrics\n";
        answer(s, fd, deadline, "404 Not Found", "text/plain", msg, strlen(msg), !head_only);
        return;
    }
    struct craft_resp_buf body = {0};
    craftkv_metrics_render(s, &body);
    answer(s, fd, deadline, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body.data,
           body.len, !head_only);
    craft_resp_buf_free(&body);
}

static void *metrics_main(void *arg)
{
    struct craftkv_server *s = arg;
    while (!atomic_load(&s->stopping)) {
        struct pollfd p = {.fd = s->metrics_fd, .events = POLLIN};
        int n = poll(&p, 1, 200); /* wakes to see stopping */
        if (n <= 0)
            continue;
        int fd = accept4(s->metrics_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

int craftkv_metrics_start(struct craftkv_server *s, int listen_fd)
{
    s->metrics_fd = listen_fd;
    if (pthread_create(&s->metrics_thread, NULL, metrics_main, s) != 0)
        return -1;
    s->metrics_started = true;
    return 0;
}

void craftkv_metrics_join(struct craftkv_server *s)
{
    if (s->metrics_started)
        pthread_join(s->metrics_thread, NULL);
    s->metrics_started = false;
    if (s->metrics_fd >= 0)
        close(s->metrics_fd);
    s->metrics_fd = -1;
}
