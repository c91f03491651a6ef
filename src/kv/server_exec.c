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

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits in slices so that shutdown is not held up by a long wait. */
static int wait_future(struct craftkv_server *s, struct craft_future *f, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mono_ms();
        if (s->stopping)
            return CRAFT_ESHUTDOWN;
        if (now >= deadline)
            return CRAFT_ETIMEOUT;
        uint64_t left = deadline - now;
        int rc = craft_future_wait(f, (int64_t)(left < 100 ? left : 100));
        if (rc != CRAFT_ETIMEOUT)
            return rc;
        if (craft_future_done(f))
            return rc; /* the operation itself timed out */
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

static void exec_read(struct craftkv_server *s, struct craftkv_task *t, uint64_t deadline)
{
    for (;;) {
        struct craft_future *f = craft_read_index(s->node);
        if (!f) {
            craft_resp_append_error(&t->out, "ERR out of memory");
            return;
        }
        int rc = wait_future(s, f, deadline);
        craft_future_release(f);
        if (rc == CRAFT_OK)
            break;
        if (s->stopping || mono_ms() >= deadline) {
            reply_timeout(s, t);
            return;
        }
        nap(20); /* no leader yet, or it changed: ask again */
    }
    struct craft_kv_read *r;
    int rc = craft_kv_read_begin(s->sm, &r);
    if (rc != CRAFT_OK) {
        craft_resp_append_errorf(&t->out, "ERR storage error: %s", craft_strerror(rc));
        return;
    }
    t->def->read(s, r, t->argc, t->argv, &t->out);
    craft_kv_read_end(r);
}

static void put_result(struct craft_resp_buf *out, const struct craft_kv_result *res)
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

/* Proposes c on this node (the leader). Returns the future's code; *res the result. */
static int propose(struct craftkv_server *s, const struct craft_kv_cmd *c, uint64_t deadline,
                   struct craft_kv_result **res)
{
    *res = NULL;
    size_t size = craft_kv_cmd_size(c);
    if (size == 0)
        return CRAFT_EINVAL;
    uint8_t *buf = malloc(size);
    if (!buf)
        return CRAFT_ENOMEM;
    size_t len;
    int rc = craft_kv_cmd_encode(c, buf, size, &len);
    if (rc == CRAFT_OK) {
        uint64_t now = mono_ms();
        uint32_t left = now < deadline ? (uint32_t)(deadline - now) : 1;
        struct craft_future *f = craft_apply(s->node, buf, (uint32_t)len, left);
        if (!f) {
            rc = CRAFT_ENOMEM;
        } else {
            rc = wait_future(s, f, deadline);
            if (rc == CRAFT_OK)
                *res = craft_future_result(f);
            craft_future_release(f);
        }
    }
    free(buf);
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
        if (s->stopping || mono_ms() >= deadline) {
            reply_timeout(s, t);
            break;
        }
        if (craft_state(s->node) == CRAFT_LEADER) {
            struct craft_kv_result *res = NULL;
            int rc;
            if (need_open) {
                struct craft_kv_cmd open = {.op = CRAFT_KV_OP_SESSION_OPEN,
                                            .session = t->session,
                                            .now_ms = craftkv_now_ms()};
                rc = propose(s, &open, deadline, &res);
                if (res)
                    craft_kv_result_free(res);
                if (rc != CRAFT_OK) {
                    nap(20);
                    continue;
                }
                need_open = false;
            }
            struct craft_kv_cmd c = {0};
            uint64_t now = craftkv_now_ms();
            t->out.len = 0;
            if (!t->def->write(t->argc, t->argv, now, &c, items, &t->out))
                break; /* a syntax error: nothing proposed */
            c.session = t->session;
            c.seq = t->seq;
            c.now_ms = now;
            rc = propose(s, &c, deadline, &res);
            if (rc == CRAFT_OK) {
                if (!res) {
                    craft_resp_append_error(&t->out, "ERR no result");
                    break;
                }
                if (res->type == CRAFT_KV_RES_ERR &&
                    strcmp((const char *)res->data, CRAFT_KV_ERR_SESSION) == 0) {
                    craft_kv_result_free(res);
                    need_open = true; /* new here, or expired: open it and send again */
                    continue;
                }
                put_result(&t->out, res);
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
            nap(20);
            continue;
        }
        if (t->forwarded) {
            /* Never forward twice: the follower asks the leader it knows again. */
            craft_resp_append_error(&t->out, CRAFTKV_ERR_NOTLEADER);
            break;
        }
        uint64_t leader = craft_leader(s->node, NULL, 0);
        const char *addr = leader ? craftkv_client_addr(s, leader) : NULL;
        if (!addr || leader == s->opts.id) {
            nap(50);
            continue;
        }
        if (strcmp(addr, fwd_addr) != 0) {
            if (*fwd_fd >= 0)
                close(*fwd_fd);
            *fwd_fd = -1;
            snprintf(fwd_addr, fwd_addr_cap, "%s", addr);
        }
        uint64_t now = mono_ms();
        uint32_t left = now < deadline ? (uint32_t)(deadline - now) : 1;
        if (craftkv_forward(t, addr, fwd_fd, left) == 0)
            break;
        nap(50);
    }
    free(items);
}

void craftkv_exec(struct craftkv_server *s, struct craftkv_task *t, int *fwd_fd, char *fwd_addr,
                  size_t fwd_addr_cap)
{
    uint64_t deadline = mono_ms() + s->opts.timeout_ms;
    if (t->def->kind == CRAFTKV_READ)
        exec_read(s, t, deadline);
    else
        exec_write(s, t, deadline, fwd_fd, fwd_addr, fwd_addr_cap);
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
            "# Raft\r\nrole:%s\r\nterm:%" PRIu64 "\r\nleader_id:%" PRIu64
            "\r\nleader_client_addr:%s\r\ncommit_index:%" PRIu64 "\r\napplied_index:%" PRIu64
            "\r\nlast_index:%" PRIu64 "\r\nsnapshot_index:%" PRIu64 "\r\npersisted_index:%" PRIu64
            "\r\nentries_applied:%" PRIu64 "\r\nsnapshots_taken:%" PRIu64 "\r\nfailed:%s\r\n\r\n"
            "# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n",
            (int)getpid(), s->opts.id, s->opts.listen_client, s->opts.listen_peer, s->n_conns,
            st->role == CRAFT_LEADER ? "leader" : craft_role_name(st->role), st->term,
            st->leader, laddr ? laddr : "", st->commit, st->applied, st->last_index,
            st->snap_index, st->persisted, st->entries_applied, st->snapshots_taken,
            st->failed ? craft_strerror(st->failed) : "no", keys);
    fclose(f);
    craft_resp_append_bulk(out, text, len);
    free(text);
    free(st);
}
