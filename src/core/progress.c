#include "base/alloc.h"
#include "core/progress.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

bool progress_init(struct progress *pr, uint64_t id, bool is_learner, uint32_t ring_cap)
{
    CRAFT_ASSERT(ring_cap > 0);
    memset(pr, 0, sizeof *pr);
    pr->ring = craft_calloc(ring_cap, sizeof *pr->ring);
    if (pr->ring == NULL) {
        return false;
    }
    pr->id = id;
    pr->is_learner = is_learner;
    pr->ring_cap = ring_cap;
    pr->state = PROGRESS_PROBE;
    pr->next = 1;
    pr->vote = -1;
    return true;
}

void progress_free(struct progress *pr)
{
    free(pr->ring);
    pr->ring = NULL;
}

static void inflights_reset(struct progress *pr)
{
    pr->ring_start = 0;
    pr->ring_count = 0;
    pr->ring_bytes = 0;
}

void progress_reset(struct progress *pr, uint64_t next_index, uint64_t now)
{
    CRAFT_ASSERT(next_index >= 1);
    pr->match = 0;
    pr->next = next_index;
    pr->commit_sent = 0;
    pr->recent_active = false;
    pr->window_moved_at = now;
    pr->state = PROGRESS_PROBE;
    progress_become_probe(pr);
    /* Optimistic start (thesis 3.5): probe right after the leader's last entry. */
    pr->next = next_index;
}

void progress_become_probe(struct progress *pr)
{
    /* Leaving SNAPSHOT: resume right after the snapshot the follower installed, if that is
     * beyond what it acknowledged. */
    if (pr->state == PROGRESS_SNAPSHOT) {
        uint64_t resume = pr->match + 1 > pr->snap_index + 1 ? pr->match + 1 : pr->snap_index + 1;
        pr->next = resume;
    } else {
        pr->next = pr->match + 1;
    }
    pr->state = PROGRESS_PROBE;
    pr->probe_sent = false;
    pr->snap_chunk_inflight = false;
    inflights_reset(pr);
}

void progress_become_replicate(struct progress *pr)
{
    pr->state = PROGRESS_REPLICATE;
    pr->next = pr->match + 1;
    pr->probe_sent = false;
    inflights_reset(pr);
}

void progress_become_snapshot(struct progress *pr, uint64_t snap_index)
{
    pr->state = PROGRESS_SNAPSHOT;
    pr->snap_index = snap_index;
    pr->snap_offset = 0;
    pr->snap_chunk_inflight = false;
    pr->probe_sent = false;
    inflights_reset(pr);
}

bool progress_maybe_update(struct progress *pr, uint64_t index, uint64_t now)
{
    bool updated = false;
    if (pr->match < index) {
        pr->match = index;
        pr->window_moved_at = now;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < index + 1) {
        pr->next = index + 1;
    }
    return updated;
}

bool progress_maybe_decrease(struct progress *pr, uint64_t rejected, uint64_t next_guess)
{
    if (pr->state == PROGRESS_REPLICATE) {
        /* A rejection of an index we know matches is stale (reordered). */
        if (rejected <= pr->match) {
            return false;
        }
        progress_become_probe(pr);
        /* Resume at the hint, but never past the rejected probe: the leader knows nothing
         * beyond it for this follower (and a hint from a longer follower log may point past
         * the leader's own last entry). */
        uint64_t next = next_guess < rejected ? next_guess : rejected;
        pr->next = next > pr->match + 1 ? next : pr->match + 1;
        return true;
    }
    if (pr->state == PROGRESS_SNAPSHOT) {
        return false;
    }
    /* PROBE: only the answer to the outstanding probe counts. */
    if (pr->next - 1 != rejected) {
        return false;
    }
    uint64_t next = next_guess < rejected ? next_guess : rejected;
    if (next < pr->match + 1) {
        next = pr->match + 1;
    }
    if (next < 1) {
        next = 1;
    }
    pr->next = next;
    pr->probe_sent = false;
    return true;
}

void progress_sent_entries(struct progress *pr, uint64_t last_index, uint64_t bytes,
                           uint32_t n_entries, uint64_t now)
{
    switch (pr->state) {
    case PROGRESS_REPLICATE:
        if (n_entries > 0) {
            if (pr->ring_count == 0) {
                /* Stall detection measures from here, not from an ack long ago. */
                pr->window_moved_at = now;
            }
            CRAFT_ASSERT(pr->ring_count < pr->ring_cap);
            uint32_t slot = (pr->ring_start + pr->ring_count) % pr->ring_cap;
            pr->ring[slot].last_index = last_index;
            pr->ring[slot].bytes = bytes;
            pr->ring_count++;
            pr->ring_bytes += bytes;
            pr->next = last_index + 1;
        }
        break;
    case PROGRESS_PROBE:
        pr->probe_sent = true;
        break;
    case PROGRESS_SNAPSHOT:
        CRAFT_UNREACHABLE();
    }
}

bool progress_is_paused(const struct progress *pr, uint64_t inflight_bytes_max)
{
    switch (pr->state) {
    case PROGRESS_PROBE:
        return pr->probe_sent;
    case PROGRESS_REPLICATE:
        return pr->ring_count == pr->ring_cap || pr->ring_bytes >= inflight_bytes_max;
    case PROGRESS_SNAPSHOT:
        return true;
    }
    CRAFT_UNREACHABLE();
}

void progress_free_inflights_to(struct progress *pr, uint64_t index)
{
    while (pr->ring_count > 0 && pr->ring[pr->ring_start].last_index <= index) {
        pr->ring_bytes -= pr->ring[pr->ring_start].bytes;
        pr->ring_start = (pr->ring_start + 1) % pr->ring_cap;
        pr->ring_count--;
    }
}
