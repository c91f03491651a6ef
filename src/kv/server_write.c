/* craftkv: the steps every write path shares (the loop's own path, server_async.c; a
 * follower's forwarding, server_fwd_async.c; a worker's retries, server_exec.c): building a
 * command from a task, proposing it, opening a session, telling the state machine's
 * "unknown session" answer apart, and finding where the leader takes writes. One copy
 * each: the paths call these, and these call nothing of theirs. */
#include <stdlib.h>
#include <string.h>

#include "kv/server_internal.h"

bool craftkv_task_command(const struct craftkv_task *t, uint64_t now, struct craft_kv_cmd *c,
                          struct craft_kv_bytes *items, struct craft_resp_buf *out)
{
    *c = (struct craft_kv_cmd){0};
    if (!t->def->write(t->argc, t->argv, now, c, items, out))
        return false;
    c->session = t->session;
    c->seq = t->seq;
    c->ack = t->ack;
    c->now_ms = now;
    return true;
}

int craftkv_propose_start(struct craftkv_server *s, const struct craft_kv_cmd *c,
                          uint32_t queue_timeout_ms, struct craft_future **f)
{
    *f = NULL;
    size_t size = craft_kv_cmd_size(c);
    if (size == 0)
        return CRAFT_EINVAL;
    uint8_t stack[512];
    uint8_t *buf = size <= sizeof stack ? stack : malloc(size);
    if (!buf)
        return CRAFT_ENOMEM;
    size_t len;
    int rc = craft_kv_cmd_encode(c, buf, size, &len);
    if (rc == CRAFT_OK) {
        *f = craft_apply(s->node, buf, (uint32_t)len, queue_timeout_ms);
        if (!*f)
            rc = CRAFT_ENOMEM;
    }
    if (buf != stack)
        free(buf);
    return rc;
}

int craftkv_propose_session_open(struct craftkv_server *s, uint64_t session,
                                 uint32_t queue_timeout_ms, struct craft_future **f)
{
    struct craft_kv_cmd open = {.op = CRAFT_KV_OP_SESSION_OPEN, .session = session,
                                .now_ms = craftkv_now_ms()};
    return craftkv_propose_start(s, &open, queue_timeout_ms, f);
}

bool craftkv_is_session_error(const struct craft_kv_result *res)
{
    return res != NULL && res->type == CRAFT_KV_RES_ERR &&
           strcmp((const char *)res->data, CRAFT_KV_ERR_SESSION) == 0;
}

const char *craftkv_leader_addr(struct craftkv_server *s, uint64_t *leader)
{
    uint64_t id = craft_leader(s->node, NULL, 0);
    if (leader != NULL)
        *leader = id;
    return id != 0 && id != s->opts.id ? craftkv_client_addr(s, id) : NULL;
}

void craftkv_reply_notleader(struct craftkv_server *s, struct craft_resp_buf *out)
{
    const char *addr = craftkv_leader_addr(s, NULL);
    craft_resp_append_errorf(out, "%s %s", CRAFTKV_ERR_NOTLEADER, addr ? addr : "?");
}
