/* craft_kv_client in a few lines: exactly-once writes to a craftkv cluster.
 *
 *   craftkv local --nodes 3 --base-port 7001 &
 *   kv_client_demo 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003
 *
 * Any one address is enough; the client finds the leader and follows it. Each INCR is
 * applied exactly once even if the leader fails while it is in flight. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craft_kv_client.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT [HOST:PORT...]\n", argv[0]);
        return 2;
    }
    struct craft_kv_client_opts o = {.addrs = (const char *const *)(argv + 1),
                                     .n_addrs = (size_t)argc - 1,
                                     .timeout_ms = 10000};
    struct craft_kv_client *c;
    int rc = craft_kv_client_open(&o, &c);
    if (rc != CRAFT_OK) {
        fprintf(stderr, "open: %s\n", craft_kv_client_strerror(rc));
        return 1;
    }
    rc = craft_kv_client_set(c, "greeting", 8, "hello", 5);
    void *v = NULL;
    size_t n = 0;
    if (rc == CRAFT_OK)
        rc = craft_kv_client_get(c, "greeting", 8, &v, &n);
    if (rc == CRAFT_OK)
        printf("greeting = %.*s\n", (int)n, (char *)v);
    free(v);
    for (int i = 0; i < 5 && rc == CRAFT_OK; i++) {
        int64_t count;
        rc = craft_kv_client_incrby(c, "visits", 6, 1, &count);
        if (rc == CRAFT_OK)
            printf("visits = %" PRId64 " (leader %s)\n", count, craft_kv_client_node(c));
    }
    if (rc != CRAFT_OK)
        fprintf(stderr, "error: %s (%s)\n", craft_kv_client_strerror(rc),
                craft_kv_client_errmsg(c));
    craft_kv_client_close(c);
    return rc == CRAFT_OK ? 0 : 1;
}
