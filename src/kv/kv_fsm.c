/* craftkv as a craft state machine (struct craft_fsm): glue between the runtime's
 * callbacks, sinks and sources and kv_sm. */
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"
#include "kv/kv_sm.h"

static int fsm_apply(void *ctx, const struct craft_command *cmds, size_t n, void **results)
{
    int rc = craft_kv_sm_apply_batch(ctx, cmds, n, results);
    if (rc != CRAFT_OK) {
        /* The batch's write transaction was aborted: the store still holds the last
         * committed batch, and the node stops (a restart replays the log from there). */
        fprintf(stderr, "craftkv: applying entries %llu..%llu failed: %s\n",
                (unsigned long long)cmds[0].index, (unsigned long long)cmds[n - 1].index,
                craft_strerror(rc));
    }
    return rc;
}

static int fsm_snapshot(void *ctx, void **snap)
{
    struct craft_kv_snap *s = NULL;
    int rc = craft_kv_sm_snapshot(ctx, &s);
    *snap = s;
    return rc;
}

static int sink_write(void *ctx, const void *buf, size_t len)
{
    return craft_sink_write(ctx, buf, len);
}

static int fsm_snapshot_write(void *ctx, void *snap, struct craft_sink *sink)
{
    (void)ctx;
    return craft_kv_snap_write(snap, sink_write, sink);
}

static void fsm_snapshot_release(void *ctx, void *snap)
{
    (void)ctx;
    craft_kv_snap_release(snap);
}

static int source_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    return craft_source_read(ctx, buf, cap, n);
}

static int fsm_restore(void *ctx, struct craft_source *src)
{
    return craft_kv_sm_restore(ctx, source_read, src);
}

static void fsm_result_free(void *ctx, void *result)
{
    (void)ctx;
    craft_kv_result_free(result);
}

void craft_kv_fsm_init(struct craft_fsm *fsm, struct craft_kv_sm *sm)
{
    *fsm = (struct craft_fsm){.ctx = sm,
                              .apply = fsm_apply,
                              .snapshot = fsm_snapshot,
                              .snapshot_write = fsm_snapshot_write,
                              .snapshot_release = fsm_snapshot_release,
                              .restore = fsm_restore,
                              .result_free = fsm_result_free};
}
