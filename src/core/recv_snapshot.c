/* A follower receives a snapshot in chunks (thesis 5.2, figure 5.3: offset and done).
 * Chunks are written in order into the snapshot being received; a stale or duplicate chunk
 * only re-tells the leader which offset we want. The last chunk installs the snapshot. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "core/internal.h"

static void respond(struct craft_core *core, const struct craft_msg *m, uint64_t offset,
                    uint64_t installed_index, bool reject)
{
    struct craft_msg resp = {
        .type = CRAFT_MSG_SNAPSHOT_RESP,
        .to = m->from,
        .reject = reject,
        .offset = offset,
        .index = installed_index,
        .snap = {.index = m->snap.index, .term = m->snap.term},
    };
    core_send(core, &resp, true);
}

static bool same_snapshot(const struct craft_snapshot_meta *a, const struct craft_snapshot_meta *b)
{
    return a->index == b->index && a->term == b->term;
}

void recv_snapshot(struct craft_core *core, const struct craft_msg *m)
{
    if (!core_accept_leader(core, m)) {
        return;
    }
    /* Never move applied state backwards: a snapshot at or below commit is old news. */
    if (m->snap.index <= core->commit) {
        respond(core, m, 0, core->commit, false);
        return;
    }
    if (core->chunk_pending || core->install_waiting != 0) {
        /* One chunk per batch; the leader resends after its timeout. */
        return;
    }
    if (!core->recv_active || !same_snapshot(&core->recv_snap, &m->snap)) {
        if (m->offset != 0) {
            respond(core, m, 0, 0, true); /* start over from the beginning */
            return;
        }
        core->recv_active = true;
        core->recv_snap = m->snap;
        core->recv_snap_offset = 0;
    }
    if (m->offset != core->recv_snap_offset) {
        respond(core, m, core->recv_snap_offset, 0, false);
        return;
    }
    uint8_t *buf = NULL;
    if (m->chunk_len > 0) {
        buf = craft_malloc(m->chunk_len);
        if (buf == NULL) {
            core_fail(core, CRAFT_ENOMEM);
            return;
        }
        memcpy(buf, m->chunk, m->chunk_len);
    }
    free(core->chunk_buf);
    core->chunk_buf = buf;
    core->chunk_len = m->chunk_len;
    core->chunk_offset = m->offset;
    core->chunk_pending = true;
    core->chunk_install = m->last;
    core->chunk_keep_log = false;
    core->recv_snap_offset += m->chunk_len;
    TRACE(core, CRAFT_T_SNAP, "chunk of snapshot %llu/%llu at %llu (%u bytes%s)",
          (unsigned long long)m->snap.index, (unsigned long long)m->snap.term,
          (unsigned long long)m->offset, m->chunk_len, m->last ? ", last" : "");
    if (!m->last) {
        respond(core, m, core->recv_snap_offset, 0, false);
        return;
    }

    /* Install (thesis figure 5.3 steps 6-8): if our log has the snapshot's last entry,
     * keep what follows it; otherwise discard the whole log. */
    const struct craft_snapshot_meta *s = &m->snap;
    uint64_t have = 0;
    if (log_term_at(&core->log, s->index, &have) && have == s->term) {
        core->chunk_keep_log = true;
        log_compact(&core->log, s->index);
        /* Storage drops what the snapshot covers; a pending truncation below it moves up. */
        if (core->truncate_from != 0 && core->truncate_from <= s->index) {
            core->truncate_from = s->index + 1;
        }
        if (core->unstable_from < s->index + 1) {
            core->unstable_from = s->index + 1;
        }
    } else {
        log_reset(&core->log, s->index, s->term);
        core->truncate_from = 0; /* storage drops the whole log on install */
        core->unstable_from = s->index + 1;
        if (core->persisted > s->index) {
            core->persisted = s->index;
        }
    }
    core->snap = *s;
    core->commit = s->index;
    core->applied = s->index;
    core->install_waiting = s->index;
    core->recv_active = false;
    core_recompute_conf(core);
    TRACE(core, CRAFT_T_SNAP, "install snapshot %llu/%llu", (unsigned long long)s->index,
          (unsigned long long)s->term);
    respond(core, m, core->recv_snap_offset, s->index, false);
}
