/* A small hiredis program (Debian libhiredis-dev) against craftkv, built and run by
 * tests/blackbox/craftkv_types.sh: strings, a hash, a list, a sorted set, 200 pipelined
 * INCRs (redisAppendCommand, then the replies in order), a MULTI/EXEC, and an error reply,
 * each reply checked for its type and value as hiredis parses it. Prints "hiredis ok" or
 * the first mismatch, and exits non-zero on one.
 * Usage: hiredis_client HOST PORT */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void expect(const char *what, redisReply *r, int type, const char *str, long long integer)
{
    int ok = r != NULL && r->type == type;
    if (ok &&
        (type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS || type == REDIS_REPLY_ERROR)) {
        ok = str == NULL || (r->len == strlen(str) && memcmp(r->str, str, r->len) == 0);
    } else if (ok && type == REDIS_REPLY_INTEGER) {
        ok = r->integer == integer;
    } else if (ok && type == REDIS_REPLY_ARRAY) {
        ok = (long long)r->elements == integer;
    }
    if (!ok) {
        printf("%s: got type %d '%s' %lld\n", what, r ? r->type : -1, r && r->str ? r->str : "",
               r ? r->integer : 0);
        failures++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
        return 2;
    }
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout(argv[1], atoi(argv[2]), tv);
    if (c == NULL || c->err) {
        printf("connect: %s\n", c ? c->errstr : "no memory");
        return 1;
    }
    redisReply *r;
#define RUN(what, type, str, integer, ...)                                                         \
    do {                                                                                           \
        r = redisCommand(c, __VA_ARGS__);                                                          \
        expect(what, r, type, str, integer);                                                       \
        freeReplyObject(r);                                                                        \
    } while (0)
    RUN("SET", REDIS_REPLY_STATUS, "OK", 0, "SET hi:s %s", "v a l");
    RUN("GET", REDIS_REPLY_STRING, "v a l", 0, "GET hi:s");
    RUN("GET missing", REDIS_REPLY_NIL, NULL, 0, "GET hi:none");
    RUN("HSET", REDIS_REPLY_INTEGER, NULL, 2, "HSET hi:h f1 %b f2 v2", "a\0b", (size_t)3);
    r = redisCommand(c, "HGET hi:h f1");
    expect("HGET binary", r, REDIS_REPLY_STRING, NULL, 0);
    if (r && (r->len != 3 || memcmp(r->str, "a\0b", 3) != 0)) {
        printf("HGET binary: wrong bytes\n");
        failures++;
    }
    freeReplyObject(r);
    RUN("HGETALL", REDIS_REPLY_ARRAY, NULL, 4, "HGETALL hi:h");
    RUN("RPUSH", REDIS_REPLY_INTEGER, NULL, 3, "RPUSH hi:l a b c");
    r = redisCommand(c, "LRANGE hi:l 0 -1");
    expect("LRANGE", r, REDIS_REPLY_ARRAY, NULL, 3);
    if (r && r->elements == 3) {
        expect("LRANGE[2]", r->element[2], REDIS_REPLY_STRING, "c", 0);
    }
    freeReplyObject(r);
    RUN("ZADD", REDIS_REPLY_INTEGER, NULL, 2, "ZADD hi:z 1.5 a 2 b");
    r = redisCommand(c, "ZRANGE hi:z 0 -1 WITHSCORES");
    expect("ZRANGE", r, REDIS_REPLY_ARRAY, NULL, 4);
    if (r && r->elements == 4) {
        expect("ZRANGE score", r->element[1], REDIS_REPLY_STRING, "1.5", 0);
    }
    freeReplyObject(r);
    RUN("WRONGTYPE", REDIS_REPLY_ERROR, NULL, 0, "LPUSH hi:h x");
    /* Pipelined: 200 INCRs sent, then their replies in order. */
    for (int i = 0; i < 200; i++) {
        redisAppendCommand(c, "INCR hi:n");
    }
    for (long long i = 1; i <= 200; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK) {
            printf("pipeline: %s\n", c->errstr);
            return 1;
        }
        expect("pipelined INCR", reply, REDIS_REPLY_INTEGER, NULL, i);
        freeReplyObject(reply);
    }
    RUN("MULTI", REDIS_REPLY_STATUS, "OK", 0, "MULTI");
    RUN("queued SADD", REDIS_REPLY_STATUS, "QUEUED", 0, "SADD hi:set m1 m2");
    RUN("queued SCARD", REDIS_REPLY_STATUS, "QUEUED", 0, "SCARD hi:set");
    r = redisCommand(c, "EXEC");
    expect("EXEC", r, REDIS_REPLY_ARRAY, NULL, 2);
    if (r && r->elements == 2) {
        expect("EXEC[0]", r->element[0], REDIS_REPLY_INTEGER, NULL, 2);
        expect("EXEC[1]", r->element[1], REDIS_REPLY_INTEGER, NULL, 2);
    }
    freeReplyObject(r);
    redisFree(c);
    if (failures == 0) {
        printf("hiredis ok\n");
    }
    return failures == 0 ? 0 : 1;
}
