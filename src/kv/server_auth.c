/* craftkv: AUTH, and the gate a connection passes before any other command (Redis's
 * requirepass for the default user; docs/design/craftkv.md "Security"). Loop thread. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "kv/server_internal.h"

/* Compares without an early exit, so the time taken does not tell how much of a guess was
 * right (the length still shows: passwords are not secret in length here). */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

bool craftkv_auth_refuses(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                          const struct craft_resp_arg *argv)
{
    (void)argc;
    if (c->authed || craftkv_arg_is(&argv[0], "AUTH") || craftkv_arg_is(&argv[0], "QUIT"))
        return false;
    craft_resp_append_error(&c->out, "NOAUTH Authentication required.");
    craftkv_count_error(s, "-NOAUTH ", 8);
    return true;
}

void craftkv_l_auth(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                    const struct craft_resp_arg *argv)
{
    const char *pass = s->opts.requirepass;
    if (!pass[0]) {
        craft_resp_append_error(&c->out, "ERR AUTH <password> called without any password "
                                         "configured for the default user. Are you sure "
                                         "your configuration is correct?");
        return;
    }
    if (argc > 3) {
        craft_resp_append_error(&c->out, "ERR syntax error");
        return;
    }
    /* AUTH <password> or AUTH default <password>: craftkv has the default user only. */
    const struct craft_resp_arg *given = &argv[argc - 1];
    bool user_ok = argc == 2 || (argv[1].len == 7 && memcmp(argv[1].data, "default", 7) == 0);
    bool ok = same_secret(given->data, given->len, pass, strlen(pass)) && user_ok;
    if (!ok) {
        atomic_fetch_add(&s->n_auth_failures, 1);
        craftkv_count_error(s, "-WRONGPASS ", 11);
        /* As Redis 6+: a failed AUTH leaves the connection as it was. */
        craft_resp_append_error(&c->out, "WRONGPASS invalid username-password pair or user "
                                         "is disabled.");
        return;
    }
    c->authed = true;
    craft_resp_append_simple(&c->out, "OK");
}
