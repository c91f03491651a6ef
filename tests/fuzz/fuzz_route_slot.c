/* libFuzzer target: the slot a sharded craftkv routes a command by (src/kv/server_route.c),
 * on any arguments a client can send, CRAFT.EXEC's nested lists included (a client may send
 * CRAFT.EXEC itself).
 *
 * Input: arguments separated by '\n' (at most 64); the first names the command. The slot
 * is computed for that command (if the table has it) and for CRAFT.EXEC over the same
 * arguments. It must be -1 (no key), -2 (keys of several slots) or a slot; a command with
 * one key must give that key's slot; ASan/UBSan catch any read outside the arguments. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/server_internal.h"
#include "shard/slots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARGS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of its own: the arguments point into it, and ASan sees its exact bounds. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct craft_resp_arg argv[ARGS_MAX];
    size_t argc = 0, start = 0;
    for (size_t i = 0; i <= size && argc < ARGS_MAX; i++) {
        if (i == size || buf[i] == '\n') {
            argv[argc++] = (struct craft_resp_arg){buf + start, i - start};
            start = i + 1;
        }
    }
    const struct craftkv_cmd_def *d = craftkv_cmd_find(argv[0].data, argv[0].len);
    if (d) {
        int slot = craftkv_cmd_slot(d, argc, argv);
        CRAFT_ASSERT(slot >= -2 && slot < (int)CRAFT_SLOTS);
        if (d->keys == K_ONE && argc > 1 && strcmp(d->name, CRAFTKV_EXEC_CMD) != 0)
            CRAFT_ASSERT(slot == craft_key_slot((const uint8_t *)argv[1].data, argv[1].len));
        if (d->keys == K_NONE && strcmp(d->name, CRAFTKV_EXEC_CMD) != 0)
            CRAFT_ASSERT(slot == -1);
    }
    const struct craftkv_cmd_def *x = craftkv_cmd_find(CRAFTKV_EXEC_CMD, strlen(CRAFTKV_EXEC_CMD));
    CRAFT_ASSERT(x != NULL);
    int slot = craftkv_cmd_slot(x, argc, argv);
    CRAFT_ASSERT(slot >= -2 && slot < (int)CRAFT_SLOTS);
    free(buf);
    return 0;
}
