/* craftkv: running a command on a worker thread, and INFO.
 *
 * Reads: ReadIndex (linearizable, works on followers), then the local state machine.
 * Writes: on the leader, encode with the connection's session and seq and craft_apply;
 * elsewhere forward to the leader. Either way, retry on a leader change until the
 * command's deadline: the same session and seq make a retry apply at most once. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv/server_internal.h"

uint64_t craftkv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t craftkv_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void craftkv_nap(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits in slices so that shutdown is not held up by a long wait. */
int craftkv_wait_future(struct craftkv_server *s, struct craft_future *f, uint64_t deadline)
{
    for (;;) {
        uint64_t now = craftkv_mono_ms();
        if (s->stopping)
            return CRAFT_ESHUTDOWN;
        if (now >= deadline)
            return CRAFT_ETIMEOUT;
        uint64_t left = deadline - now;
        int rc = craft_future_wait(f, (int64_t)(left < 100 ? left : 100));
        if (rc != CRAFT_ETIMEOUT || craft_future_done(f))
            return rc; /* done, or the operation itself timed out */
    }
}

static void reply_timeout(struct craftkv_server *s, struct craftkv_task *t)
{
    t->out.len = 0;
    if (s->stopping)
        craft_resp_append_error(&t->out, "ERR server shutting down");
    else
        craft_resp_append_errorf(&t->out,
                                 "TRYAGAIN no leader or no quorum within %" PRIu32 " ms",
                                 s->opts.timeout_ms);
}

/* A linearizable read barrier shared by every reader that arrived before it was issued:
 * one ReadIndex round at a time, so N concurrent reads cost one or two rounds, not N.
 * A round issued after a reader arrived covers it (its read index is at least the commit
 * index the reader could have observed), so each reader waits for the first such round. */
static int read_barrier_shared(struct craftkv_server *s, uint64_t deadline)
{
    pthread_mutex_lock(&s->rmu);
    uint64_t want = s->r_issued + 1;
    int rc;
    for (;;) {
        if (s->r_ok >= want) {
            rc = CRAFT_OK;
            break;
        }
        if (s->r_failed >= want) {
            rc = s->r_failed_rc;
            break;
        }
        if (s->stopping) {
            rc = CRAFT_ESHUTDOWN;
            break;
        }
        uint64_t now = craftkv_mono_ms();
        if (now >= deadline) {
            rc = CRAFT_ETIMEOUT;
            break;
        }
        if (!s->r_inflight) {
            uint64_t gen = ++s->r_issued;
            s->r_inflight = true;
            pthread_mutex_unlock(&s->rmu);
            struct craft_future *f = craft_read_index(s->node);
            int frc = CRAFT_ENOMEM;
            if (f) {
                frc = craftkv_wait_future(s, f, deadline);
                craft_future_release(f);
            }
            pthread_mutex_lock(&s->rmu);
            s->r_inflight = false;
            if (frc == CRAFT_OK) {
                s->r_ok = gen;
            } else {
                s->r_failed = gen;
                s->r_failed_rc = frc;
            }
            pthread_cond_broadcast(&s->rcv);
            continue;
        }
        uint64_t left = deadline - now;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (left < 100 ? left : 100) * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&s->rcv, &s->rmu, &ts);
    }
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* The barrier a read needs before it looks at the local state machine. */
static int read_barrier(struct craftkv_server *s, uint8_t mode, uint64_t deadline)
{
    if (mode == CRAFTKV_READ_STALE)
        return CRAFT_OK;
    if (mode == CRAFTKV_READ_LEASE && craft_state(s->node) == CRAFT_LEADER) {
        struct craft_future *f = craft_read_lease(s->node);
        if (f) {
            int rc = craftkv_wait_future(s, f, deadline);
            craft_future_release(f);
            if (rc == CRAFT_OK)
                return rc;
        }
        /* no lease holds now: fall back to a round */
    }
    return read_barrier_shared(s, deadline);
}

/* A batch of reads: one barrier, one read transaction, a reply each. */
static void exec_reads(struct craftkv_server *s, struct craftkv_task *head, uint64_t deadline)
{
    for (;;) {
        int rc = read_barrier(s, head->read_mode, deadline);
        if (rc == CRAFT_OK)
            break;
        if (s->stopping || craftkv_mono_ms() >= deadline) {
            for (struct craftkv_task *t = head; t; t = t->chain)
                reply_timeout(s, t);
            return;
        }
        craftkv_nap(20); /* no leader yet, or it changed: ask again */
    }
    craftkv_serve_reads(s, head);
}

void craftkv_put_result(struct craft_resp_buf *out, const struct craft_kv_result *res)
{
    switch (res->type) {
    case CRAFT_KV_RES_OK:
        craft_resp_append_simple(out, "OK");
        break;
    case CRAFT_KV_RES_NIL:
        craft_resp_append_null_bulk(out);
        break;
    case CRAFT_KV_RES_INT:
        craft_resp_append_int(out, res->integer);
        break;
    case CRAFT_KV_RES_BULK:
        craft_resp_append_bulk(out, res->data, res->len);
        break;
    default:
        craft_resp_append_error(out, (const char *)res->data);
        break;
    }
}

/* Encodes c and proposes it on this node (the leader). Returns 0 with *f, or an error
 * (nothing proposed). */
static int propose_start(struct craftkv_server *s, const struct craft_kv_cmd *c, uint64_t deadline,
                         struct craft_future **f)
{
    uint64_t now = craftkv_mono_ms();
    return craftkv_propose_start(s, c, now < deadline ? (uint32_t)(deadline - now) : 1, f);
}

/* Waits for a proposal; returns the future's code and *res its result; releases f. */
static int propose_finish(struct craftkv_server *s, struct craft_future *f, uint64_t deadline,
                          struct craft_kv_result **res)
{
    *res = NULL;
    int rc = craftkv_wait_future(s, f, deadline);
    if (rc == CRAFT_OK)
        *res = craft_future_result(f);
    craft_future_release(f);
    return rc;
}

/* Proposes c on this node (the leader). Returns the future's code; *res the result. */
static int propose(struct craftkv_server *s, const struct craft_kv_cmd *c, uint64_t deadline,
                   struct craft_kv_result **res)
{
    struct craft_future *f;
    *res = NULL;
    int rc = propose_start(s, c, deadline, &f);
    return rc == CRAFT_OK ? propose_finish(s, f, deadline, res) : rc;
}

/* Opens session on the leader and waits for it: the outcome's code. */
static int open_session(struct craftkv_server *s, uint64_t session, uint64_t deadline)
{
    struct craft_future *f;
    uint64_t now = craftkv_mono_ms();
    int rc = craftkv_propose_session_open(s, session,
                                          now < deadline ? (uint32_t)(deadline - now) : 1, &f);
    struct craft_kv_result *res = NULL;
    if (rc == CRAFT_OK)
        rc = propose_finish(s, f, deadline, &res);
    if (res)
        craft_kv_result_free(res);
    return rc;
}

static bool retryable(int rc)
{
    return rc == CRAFT_ENOTLEADER || rc == CRAFT_ESTALE || rc == CRAFT_ETRANSFER ||
           rc == CRAFT_ETIMEOUT || rc == CRAFT_EBUSY;
}

static void exec_write(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline,
                       int *fwd_fd, char *fwd_addr, size_t fwd_addr_cap)
{
    bool need_open = t->open_session;
    struct craft_kv_bytes *items = malloc((t->argc + 1) * sizeof *items);
    if (!items) {
        craft_resp_append_error(&t->out, "ERR out of memory");
        return;
    }
    for (;;) {
        if (s->stopping || craftkv_mono_ms() >= deadline) {
            reply_timeout(s, t);
            break;
        }
        if (craft_state(s->node) == CRAFT_LEADER) {
            struct craft_kv_result *res = NULL;
            int rc;
            if (need_open) {
                if (open_session(s, t->session, deadline) != CRAFT_OK) {
                    craftkv_nap(20);
                    continue;
                }
                need_open = false;
            }
            struct craft_kv_cmd c;
            t->out.len = 0;
            if (!craftkv_task_command(t, craftkv_now_ms(), &c, items, &t->out))
                break; /* a syntax error: nothing proposed */
            rc = propose(s, &c, deadline, &res);
            if (rc == CRAFT_OK) {
                if (!res) {
                    craft_resp_append_error(&t->out, "ERR no result");
                    break;
                }
                if (craftkv_is_session_error(res)) {
                    craft_kv_result_free(res);
                    need_open = true; /* new here, or expired: open it and send again */
                    continue;
                }
                craftkv_put_result(&t->out, res);
                craft_kv_result_free(res);
                break;
            }
            if (rc == CRAFT_EINVAL) {
                craft_resp_append_errorf(&t->out,
                                         "ERR key or value too long (keys up to %u bytes, values up to %u)",
                                         CRAFT_KV_KEY_BYTES_MAX, CRAFT_KV_VALUE_BYTES_MAX);
                break;
            }
            if (rc == CRAFT_ETOOBIG) {
                craft_resp_append_error(&t->out, "ERR command too large");
                break;
            }
            if (!retryable(rc) && rc != CRAFT_ESHUTDOWN && rc != CRAFT_ENOMEM) {
                craft_resp_append_errorf(&t->out, "ERR %s", craft_strerror(rc));
                break;
            }
            craftkv_nap(20);
            continue;
        }
        if (t->forwarded) {
            /* Never forward twice: the follower asks the leader it knows again. */
            craftkv_reply_notleader(s, &t->out);
            break;
        }
        const char *addr = craftkv_leader_addr(s, NULL);
        if (!addr) {
            craftkv_nap(50);
            continue;
        }
        if (strcmp(addr, fwd_addr) != 0) {
            if (*fwd_fd >= 0)
                close(*fwd_fd);
            *fwd_fd = -1;
            snprintf(fwd_addr, fwd_addr_cap, "%s", addr);
        }
        uint64_t now = craftkv_mono_ms();
        uint32_t left = now < deadline ? (uint32_t)(deadline - now) : 1;
        if (craftkv_forward(t, addr, fwd_fd, left) == 0)
            break;
        craftkv_nap(50);
    }
    free(items);
}

/* The fast path for a batch of pipelined writes on the leader: every command is proposed
 * before the first is waited for, so the batch shares rounds of replication and one group
 * commit instead of taking one round each. Commands are proposed in request order by this
 * one thread and land in the log in that order, so a later seq of the session cannot commit
 * unless the earlier ones did (log matching). Whatever did not succeed here (a leader
 * change, a new session) goes through exec_write one by one, in order, which retries with
 * the same seq. Returns false if this node does not lead (nothing was done). */
static bool exec_writes_leader(struct craftkv_server *s, struct craftkv_task *head, uint64_t deadline,
                               int *fwd_fd, char *fwd_addr, size_t fwd_addr_cap)
{
    if (craft_state(s->node) != CRAFT_LEADER)
        return false;
    size_t n = 0;
    for (struct craftkv_task *t = head; t; t = t->chain)
        n++;
    struct craft_future **futs = calloc(n, sizeof *futs);
    uint8_t *state = calloc(n, 1); /* 0: answered, 1: proposed, 2: to exec_write */
    size_t items_cap = 0;
    for (struct craftkv_task *t = head; t; t = t->chain)
        if (t->argc + 1 > items_cap)
            items_cap = t->argc + 1;
    struct craft_kv_bytes *items = malloc(items_cap * sizeof *items);
    if (!futs || !state || !items) {
        free(futs);
        free(state);
        free(items);
        return false;
    }
    if (!head->forwarded && head->open_session && open_session(s, head->session, deadline) == CRAFT_OK)
        head->open_session = false;
    size_t i = 0;
    bool stop = head->open_session; /* could not open it: all go the slow way */
    for (struct craftkv_task *t = head; t; t = t->chain, i++) {
        if (stop) {
            state[i] = 2;
            continue;
        }
        struct craft_kv_cmd c;
        if (!craftkv_task_command(t, craftkv_now_ms(), &c, items, &t->out)) {
            state[i] = 0; /* a syntax error: answered, nothing proposed */
            continue;
        }
        int rc = propose_start(s, &c, deadline, &futs[i]);
        if (rc == CRAFT_OK) {
            state[i] = 1;
        } else {
            /* encoding limits: exec_write words the error; a full queue: stop proposing
             * so that no later seq goes in ahead of this one */
            t->out.len = 0;
            state[i] = 2;
            stop = true;
        }
    }
    i = 0;
    for (struct craftkv_task *t = head; t; t = t->chain, i++) {
        if (state[i] != 1)
            continue;
        struct craft_kv_result *res;
        int rc = propose_finish(s, futs[i], deadline, &res);
        if (rc == CRAFT_OK && res && !craftkv_is_session_error(res)) {
            craftkv_put_result(&t->out, res);
            state[i] = 0;
        } else {
            t->out.len = 0;
            state[i] = 2;
        }
        if (res)
            craft_kv_result_free(res);
    }
    free(futs);
    free(items);
    i = 0;
    for (struct craftkv_task *t = head; t; t = t->chain, i++)
        if (state[i] == 2)
            exec_write(s, t, deadline, fwd_fd, fwd_addr, fwd_addr_cap);
    free(state);
    return true;
}

void craftkv_exec(struct craftkv_server *s, struct craftkv_task *t, int *fwd_fd, char *fwd_addr,
                  size_t fwd_addr_cap)
{
    uint64_t deadline = craftkv_mono_ms() + s->opts.timeout_ms;
    if (t->phase == 2) {
        /* What the loop's own path could not finish, in request order, one round each. The
         * first run of 128 counts its time from the batch's arrival (a client's timeout
         * covers the wait on the loop's path too), leaving at least a quarter of it; each
         * later run gets the full timeout (as batches of 128 did before forwarded batches
         * grew to 4096), so a big batch's tail is not cut short by the time its head took. */
        uint64_t now = craftkv_mono_ms(), from_arrival = t->arrived_ms + s->opts.timeout_ms;
        deadline = from_arrival > now + s->opts.timeout_ms / 4 ? from_arrival
                                                               : now + s->opts.timeout_ms / 4;
        size_t run = 0;
        for (; t; t = t->chain) {
            if (!t->retry)
                continue;
            if (run++ % 128 == 127)
                deadline = craftkv_mono_ms() + s->opts.timeout_ms;
            exec_write(s, t, deadline, fwd_fd, fwd_addr, fwd_addr_cap);
        }
    } else if (t->def->kind == CRAFTKV_ADMIN) {
        t->def->admin(s, t, deadline);
    } else if (t->def->kind == CRAFTKV_READ) {
        exec_reads(s, t, deadline);
    } else if (t->chain == NULL || !exec_writes_leader(s, t, deadline, fwd_fd, fwd_addr, fwd_addr_cap)) {
        for (; t; t = t->chain)
            exec_write(s, t, deadline, fwd_fd, fwd_addr, fwd_addr_cap);
    }
}

const char *craftkv_peer_state_name(uint8_t state)
{
    return state == 1 ? "probe" : state == 2 ? "replicate" : state == 3 ? "snapshot" : "?";
}

const char *craftkv_role_name(enum craft_role role)
{
    switch (role) {
    case CRAFT_LEADER:
        return "leader";
    case CRAFT_FOLLOWER:
        return "follower";
    case CRAFT_PRECANDIDATE:
        return "precandidate";
    case CRAFT_CANDIDATE:
        return "candidate";
    default:
        return craft_role_name(role);
    }
}

void craftkv_info(struct craftkv_server *s, struct craft_resp_buf *out)
{
    struct craft_stats *st = malloc(sizeof *st);
    if (!st) {
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    craft_stats(s->node, st);
    uint64_t keys = 0;
    struct craft_kv_read *r;
    if (craft_kv_read_begin(s->sm, &r) == CRAFT_OK) {
        craft_kv_read_dbsize(r, &keys);
        craft_kv_read_end(r);
    }
    const char *laddr = st->leader ? craftkv_client_addr(s, st->leader) : NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        free(st);
        craft_resp_append_error(out, "ERR out of memory");
        return;
    }
    fprintf(f,
            "# Server\r\nredis_version:7.0.0\r\ncraftkv_version:0.1\r\nprocess_id:%d\r\n"
            "node_id:%" PRIu64 "\r\nlisten_client:%s\r\nlisten_peer:%s\r\n\r\n"
            "# Clients\r\nconnected_clients:%zu\r\n\r\n"
            "# Stats\r\nwrites_retried:%" PRIu64 "\r\n\r\n"
            "# Raft\r\nrole:%s\r\nterm:%" PRIu64 "\r\nleader_id:%" PRIu64
            "\r\nleader_client_addr:%s\r\ncommit_index:%" PRIu64 "\r\napplied_index:%" PRIu64
            "\r\nlast_index:%" PRIu64 "\r\nsnapshot_index:%" PRIu64 "\r\npersisted_index:%" PRIu64
            "\r\nentries_applied:%" PRIu64 "\r\nentries_written:%" PRIu64
            "\r\ndisk_writes:%" PRIu64 "\r\ndisk_syncs:%" PRIu64 "\r\nmsgs_sent:%" PRIu64
            "\r\nmsgs_received:%" PRIu64 "\r\nbad_msgs_received:%" PRIu64
            "\r\nsnapshots_taken:%" PRIu64 "\r\nsnapshots_installed:%" PRIu64
            "\r\nfailed:%s\r\npeers:%zu\r\n",
            (int)getpid(), s->opts.id, s->opts.listen_client, s->opts.listen_peer, s->n_conns,
            (uint64_t)atomic_load(&s->n_retried),
            craftkv_role_name(st->role), st->term,
            st->leader, laddr ? laddr : "", st->commit, st->applied, st->last_index,
            st->snap_index, st->persisted, st->entries_applied, st->entries_written,
            st->disk_writes, st->disk_syncs, st->msgs_sent, st->msgs_received,
            st->bad_msgs_received, st->snapshots_taken, st->snapshots_installed,
            st->failed ? craft_strerror(st->failed) : "no", st->n_peers);
    /* A leader's view of each follower's progress (followers track none). */
    for (size_t k = 0; k < st->n_peers; k++) {
        const struct craft_peer_status *p = &st->peers[k];
        const char *caddr = craftkv_client_addr(s, p->id);
        fprintf(f,
                "peer%zu:id=%" PRIu64 ",client_addr=%s,match_index=%" PRIu64
                ",next_index=%" PRIu64 ",lag=%" PRIu64 ",state=%s,active=%s\r\n",
                k, p->id, caddr ? caddr : "", p->match, p->next,
                st->last_index > p->match ? st->last_index - p->match : 0,
                craftkv_peer_state_name(p->state), p->recent_active ? "yes" : "no");
    }
    fprintf(f, "\r\n# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n", keys);
    fclose(f);
    craft_resp_append_bulk(out, text, len);
    free(text);
    free(st);
}
