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
    if (c->authed || craftkv_arg_is(&argv[0], "AUTH") || craftkv_arg_is(&argv[0], "QUIT") ||
        craftkv_arg_is(&argv[0], "HELLO")) /* HELLO ... AUTH authenticates; else it refuses */
        return false;
    craft_resp_append_error(&c->out, "NOAUTH Authentication required.");
    craftkv_count_error(s, "-NOAUTH ", 8);
    return true;
}

/* user and password as AUTH and HELLO's AUTH check them: true if they pass (then the
 * connection is authenticated); else the error is in c->out and counted. */
static bool check_password(struct craftkv_server *s, struct craftkv_conn *c,
                           const struct craft_resp_arg *user, const struct craft_resp_arg *given)
{
    const char *pass = s->opts.requirepass;
    /* craftkv has the default user only. */
    bool user_ok = user == NULL || (user->len == 7 && memcmp(user->data, "default", 7) == 0);
    bool ok = pass[0] && same_secret(given->data, given->len, pass, strlen(pass)) && user_ok;
    if (!ok) {
        atomic_fetch_add(&s->n_auth_failures, 1);
        craftkv_count_error(s, "-WRONGPASS ", 11);
        /* As Redis 6+: a failed AUTH leaves the connection as it was. */
        craft_resp_append_error(&c->out, "WRONGPASS invalid username-password pair or user "
                                         "is disabled.");
        return false;
    }
    c->authed = true;
    return true;
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]: RESP2 only (3 answers NOPROTO, and
 * clients such as go-redis and Lettuce then carry on in RESP2), the server's description
 * as Redis's map in RESP2 (a flat array). */
void craftkv_l_hello(struct craftkv_server *s, struct craftkv_conn *c, size_t argc,
                     const struct craft_resp_arg *argv)
{
    size_t i = 1;
    if (argc > 1) {
        if (!craftkv_arg_is(&argv[1], "2")) {
            craft_resp_append_error(&c->out, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    const struct craft_resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (; i < argc; i++) {
        if (craftkv_arg_is(&argv[i], "AUTH") && i + 2 < argc) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (craftkv_arg_is(&argv[i], "SETNAME") && i + 1 < argc) {
            name = &argv[i + 1];
            i++;
        } else {
            craft_resp_append_errorf(&c->out, "ERR Syntax error in HELLO option '%.*s'",
                                     (int)(argv[i].len > 64 ? 64 : argv[i].len), argv[i].data);
            return;
        }
    }
    if (pass != NULL && !check_password(s, c, user, pass))
        return;
    if (!c->authed) {
        craft_resp_append_error(&c->out, "NOAUTH HELLO must be called with the client already "
                                         "authenticated, otherwise the HELLO <proto> AUTH "
                                         "<user> <pass> option can be used to authenticate "
                                         "the client and select the RESP protocol version at "
                                         "the same time");
        return;
    }
    if (name != NULL) {
        size_t n = name->len < sizeof c->name - 1 ? name->len : sizeof c->name - 1;
        memcpy(c->name, name->data, n);
        c->name[n] = '\0';
    }
    craft_resp_append_array(&c->out, 14);
    craft_resp_append_bulk(&c->out, "server", 6);
    craft_resp_append_bulk(&c->out, "redis", 5);
    craft_resp_append_bulk(&c->out, "version", 7);
    craft_resp_append_bulk(&c->out, "7.0.0", 5); /* INFO's redis_version */
    craft_resp_append_bulk(&c->out, "proto", 5);
    craft_resp_append_int(&c->out, 2);
    craft_resp_append_bulk(&c->out, "id", 2);
    craft_resp_append_int(&c->out, (int64_t)c->id);
    craft_resp_append_bulk(&c->out, "mode", 4);
    const char *mode = s->sharded ? "cluster" : "standalone";
    craft_resp_append_bulk(&c->out, mode, strlen(mode));
    craft_resp_append_bulk(&c->out, "role", 4);
    craft_resp_append_bulk(&c->out, "master", 6);
    craft_resp_append_bulk(&c->out, "modules", 7);
    craft_resp_append_array(&c->out, 0);
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
    /* AUTH <password> or AUTH default <password>. */
    if (check_password(s, c, argc == 3 ? &argv[1] : NULL, &argv[argc - 1]))
        craft_resp_append_simple(&c->out, "OK");
}
