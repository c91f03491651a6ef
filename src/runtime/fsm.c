/* A group's state machine jobs (apply, restore, read completion, snapshot capture), run
 * by the host's apply threads (apply_pool.c), and the snapshot thread (writes a captured
 * snapshot while apply goes on).
 *
 * A stored snapshot is a runtime header, then the state machine's bytes. The header holds
 * the address book as of the snapshot's index, so that a node restored from a snapshot
 * knows where every server listens: magic "CRAFTSN1", u32 body length, body (the TAG_ADDRS
 * encoding). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "runtime/rt.h"

#define SNAP_MAGIC "CRAFTSN1"
#define SNAP_HEADER_MAX (12 + 1 + 2 * CRAFT_CONF_NODES_MAX * (9 + CRAFT_ADDR_BYTES_MAX))

struct craft_sink {
    struct craft_node *n;
    struct craft_snapshot_sink *k;
    uint64_t off;
    int err;
};

struct craft_source {
    struct craft_node *n;
    struct craft_snapshot_reader *r;
    uint64_t off, size;
};

int craft_sink_write(struct craft_sink *sink, const void *buf, size_t len)
{
    if (sink->err != CRAFT_OK) {
        return sink->err;
    }
    struct craft_node *n = sink->n;
    /* The store lock is held for this one write only, so the loop's chunk reads (which
     * only try the lock) and received chunks interleave with a long snapshot write. */
    pthread_mutex_lock(&n->snap_mu);
    int rc = n->snaps->write(n->snaps, sink->k, sink->off, buf, len);
    pthread_mutex_unlock(&n->snap_mu);
    if (rc != CRAFT_OK) {
        sink->err = rc;
        return rc;
    }
    sink->off += len;
    return CRAFT_OK;
}

int craft_source_read(struct craft_source *src, void *buf, size_t cap, size_t *n_read)
{
    *n_read = 0;
    if (src->off >= src->size || cap == 0) {
        return CRAFT_OK;
    }
    struct craft_node *n = src->n;
    pthread_mutex_lock(&n->snap_mu);
    int rc = n->snaps->read(n->snaps, src->r, buf, cap, src->off, n_read);
    pthread_mutex_unlock(&n->snap_mu);
    if (rc == CRAFT_OK) {
        if (*n_read == 0 && src->off < src->size) {
            return CRAFT_EIO; /* shorter than its recorded size */
        }
        src->off += *n_read;
    }
    return rc;
}

static int read_exact(struct craft_source *src, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        size_t k;
        int rc = craft_source_read(src, (uint8_t *)buf + got, len - got, &k);
        if (rc != CRAFT_OK) {
            return rc;
        }
        if (k == 0) {
            return CRAFT_ECORRUPT;
        }
        got += k;
    }
    return CRAFT_OK;
}

int rt_fsm_restore(struct craft_node *n, const struct craft_snapshot_meta *meta)
{
    struct craft_snapshot_info info;
    struct craft_snapshot_reader *r = NULL;
    pthread_mutex_lock(&n->snap_mu);
    int rc = n->snaps->open_newest(n->snaps, &info, &r);
    pthread_mutex_unlock(&n->snap_mu);
    if (rc != CRAFT_OK) {
        return rc;
    }
    /* A second snapshot installed before this restore ran replaced the one it names (the
     * store keeps the newest): the newer one extends the same committed log, so restore it
     * instead; entries up to its index still queued for apply are skipped (apply_job), and
     * its own restore job restores it again. Only an older snapshot is an error. */
    if (info.meta.index < meta->index ||
        (info.meta.index == meta->index && info.meta.term != meta->term)) {
        rc = CRAFT_ESTALE;
        goto out;
    }
    meta = &info.meta;
    struct craft_source src = {.n = n, .r = r, .off = 0, .size = info.size};
    uint8_t head[SNAP_HEADER_MAX];
    rc = read_exact(&src, head, 12);
    if (rc != CRAFT_OK) {
        goto out;
    }
    uint32_t blen = craft_get_u32(head + 8);
    if (memcmp(head, SNAP_MAGIC, 8) != 0 || blen > SNAP_HEADER_MAX - 12) {
        rc = CRAFT_ECORRUPT;
        goto out;
    }
    rc = read_exact(&src, head + 12, blen);
    if (rc != CRAFT_OK) {
        goto out;
    }
    struct rt_book book = {0};
    if (!rt_addrs_apply(&book, head + 12, blen)) {
        rc = CRAFT_ECORRUPT;
        goto out;
    }
    if (n->fsm.restore == NULL) {
        rc = CRAFT_EINVAL;
        goto out;
    }
    rc = n->fsm.restore(n->fsm.ctx, &src);
    if (rc == CRAFT_OK) {
        n->fsm_book = book;
        n->fsm_applied = meta->index;
        n->fsm_applied_term = meta->term;
        atomic_store_explicit(&n->pub_applied, n->fsm_applied, memory_order_release);
        n->fsm_conf = meta->conf;
        n->fsm_snap_index = meta->index;
    }
out:
    pthread_mutex_lock(&n->snap_mu);
    n->snaps->reader_close(n->snaps, r);
    pthread_mutex_unlock(&n->snap_mu);
    return rc;
}

/* ---- the snapshot thread ---- */

struct snap_job {
    struct craft_node *n;
    void *snap;
    struct craft_snapshot_meta meta;
    struct rt_book book;
};

static void post_snap_done(struct craft_node *n, uint64_t index, int err)
{
    struct rt_req *r = rt_req_new(REQ_SNAP_DONE, NULL, 0);
    CRAFT_ASSERT(r != NULL); /* TODO(limits) */
    r->a = index;
    r->b = (uint64_t)err;
    rt_post(n, r);
}

static void *snap_main(void *arg)
{
    pthread_setname_np(pthread_self(), "craft-snapshot"); /* top -H, perf, gdb */
    struct snap_job *job = arg;
    struct craft_node *n = job->n;
    struct craft_sink sink = {.n = n};
    pthread_mutex_lock(&n->snap_mu);
    int rc = n->snaps->create(n->snaps, &job->meta, &sink.k);
    pthread_mutex_unlock(&n->snap_mu);
    if (rc == CRAFT_OK) {
        uint8_t head[SNAP_HEADER_MAX];
        memcpy(head, SNAP_MAGIC, 8);
        size_t blen = rt_addrs_encode(job->book.s, job->book.n, head + 12, sizeof head - 12);
        CRAFT_ASSERT(blen > 0);
        craft_put_u32(head + 8, (uint32_t)blen);
        rc = craft_sink_write(&sink, head, 12 + blen);
        if (rc == CRAFT_OK) {
            rc = n->fsm.snapshot_write(n->fsm.ctx, job->snap, &sink);
        }
        if (rc == CRAFT_OK && sink.err != CRAFT_OK) {
            rc = sink.err;
        }
        pthread_mutex_lock(&n->snap_mu);
        if (rc == CRAFT_OK) {
            rc = n->snaps->commit(n->snaps, sink.k, NULL);
        } else {
            n->snaps->abort(n->snaps, sink.k);
        }
        pthread_mutex_unlock(&n->snap_mu);
    }
    if (n->fsm.snapshot_release != NULL) {
        n->fsm.snapshot_release(n->fsm.ctx, job->snap);
    }
    if (rc == CRAFT_OK) {
        atomic_fetch_add(&n->n_snapshots_taken, 1);
    }
    post_snap_done(n, rc == CRAFT_OK ? job->meta.index : 0, rc);
    free(job);
    return NULL;
}

static void take_snapshot(struct craft_node *n)
{
    if (n->fsm.snapshot == NULL || n->fsm_applied <= n->fsm_snap_index) {
        post_snap_done(n, 0, n->fsm.snapshot == NULL ? CRAFT_EINVAL : CRAFT_ESTALE);
        return;
    }
    struct snap_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        post_snap_done(n, 0, CRAFT_ENOMEM);
        return;
    }
    int rc = n->fsm.snapshot(n->fsm.ctx, &job->snap);
    if (rc != CRAFT_OK) {
        free(job);
        post_snap_done(n, 0, rc);
        return;
    }
    job->n = n;
    job->meta.index = n->fsm_applied;
    job->meta.term = n->fsm_applied_term;
    job->meta.conf = n->fsm_conf;
    job->book = n->fsm_book;
    n->fsm_snap_index = n->fsm_applied;
    /* One snapshot at a time (the loop asks for the next only after this one is done), so
     * the previous thread has posted its result and is about to exit. */
    if (n->snap_thread_started) {
        pthread_join(n->snap_thread, NULL);
    }
    n->snap_thread_started = pthread_create(&n->snap_thread, NULL, snap_main, job) == 0;
    if (!n->snap_thread_started) {
        if (n->fsm.snapshot_release != NULL) {
            n->fsm.snapshot_release(n->fsm.ctx, job->snap);
        }
        free(job);
        post_snap_done(n, 0, CRAFT_ENOMEM);
    }
}

/* ---- the state machine thread ---- */

void rt_fsm_job_free(struct rt_fsm_job *j)
{
    free(j->entries);
    free(j->futs);
    free(j->buf);
    free(j);
}

struct rt_apply_scratch {
    struct craft_command *cmds;
    void **results;
    size_t *from; /* cmds[k] is entries[from[k]] */
    size_t cap;
};

/* Completes every future a job carries with CRAFT_ESHUTDOWN (a failed node). */
static void fail_job_futures(struct rt_fsm_job *j)
{
    if (j->f != NULL) {
        rt_future_complete(j->f, CRAFT_ESHUTDOWN, 0, NULL);
        j->f = NULL;
    }
    for (size_t i = 0; j->futs != NULL && i < j->n; i++) {
        if (j->futs[i] != NULL) {
            rt_future_complete(j->futs[i], CRAFT_ESHUTDOWN, 0, NULL);
            j->futs[i] = NULL;
        }
    }
}

static void apply_job(struct craft_node *n, struct rt_fsm_job *j, struct rt_apply_scratch *s)
{
    if (j->n > s->cap) {
        size_t cap = j->n * 2;
        s->cmds = realloc(s->cmds, cap * sizeof *s->cmds);
        s->results = realloc(s->results, cap * sizeof *s->results);
        s->from = realloc(s->from, cap * sizeof *s->from);
        CRAFT_ASSERT(s->cmds && s->results && s->from); /* TODO(limits) */
        s->cap = cap;
    }
    size_t k = 0;
    for (size_t i = 0; i < j->n; i++) {
        const struct craft_entry *e = &j->entries[i];
        if (e->index <= n->fsm_applied) {
            /* Covered by a newer snapshot restored in place of an older one (see
             * rt_fsm_restore): the state has it already. */
            continue;
        }
        if (e->type == CRAFT_ENTRY_NORMAL && e->len > 0 && e->data[0] == TAG_USER) {
            s->cmds[k] = (struct craft_command){.index = e->index, .term = e->term,
                                                .data = e->data + 1, .len = e->len - 1};
            s->results[k] = NULL;
            s->from[k] = i;
            k++;
        } else if (e->type == CRAFT_ENTRY_NORMAL && e->len > 0 && e->data[0] == TAG_ADDRS) {
            (void)rt_addrs_apply(&n->fsm_book, e->data + 1, e->len - 1);
        } else if (e->type == CRAFT_ENTRY_CONF) {
            struct craft_conf conf;
            if (craft_conf_decode(e->data, e->len, &conf) == CRAFT_OK) {
                n->fsm_conf = conf;
            }
        }
    }
    if (k > 0) {
        uint64_t t0 = rt_mono_us();
        int rc = n->fsm.apply(n->fsm.ctx, s->cmds, k, s->results);
        rt_hist_observe(&n->apply_us, rt_mono_us() - t0);
        if (rc != CRAFT_OK) {
            for (size_t i = 0; i < k; i++) {
                if (s->results[i] != NULL && n->fsm.result_free != NULL) {
                    n->fsm.result_free(n->fsm.ctx, s->results[i]);
                }
            }
            fail_job_futures(j);
            rt_fail(n, rc, "state machine apply");
            return; /* nothing of the batch counts as applied */
        }
    }
    /* Futures in commit order: entry order within the job, jobs in queue order. */
    size_t c = 0;
    for (size_t i = 0; i < j->n; i++) {
        void *result = NULL;
        if (c < k && s->from[c] == i) {
            result = s->results[c++];
        }
        struct craft_future *f = j->futs != NULL ? j->futs[i] : NULL;
        if (f != NULL) {
            f->result_free = n->fsm.result_free;
            f->result_ctx = n->fsm.ctx;
            rt_future_complete(f, CRAFT_OK, j->entries[i].index, result);
        } else if (result != NULL && n->fsm.result_free != NULL) {
            n->fsm.result_free(n->fsm.ctx, result);
        }
    }
    const struct craft_entry *last = &j->entries[j->n - 1];
    if (last->index > n->fsm_applied) {
        n->fsm_applied = last->index;
        n->fsm_applied_term = last->term;
        atomic_store_explicit(&n->pub_applied, n->fsm_applied, memory_order_release);
    }
    atomic_fetch_add(&n->n_entries_applied, j->n);
}

struct rt_apply_scratch *rt_apply_scratch_new(void)
{
    return calloc(1, sizeof(struct rt_apply_scratch));
}

void rt_apply_scratch_free(struct rt_apply_scratch *s)
{
    if (s != NULL) {
        free(s->cmds);
        free(s->results);
        free(s->from);
        free(s);
    }
}

size_t rt_fsm_run(struct craft_node *n, struct rt_item *it, struct rt_apply_scratch *s)
{
    size_t count = 0;
    while (it != NULL) {
        struct rt_fsm_job *j = (struct rt_fsm_job *)it;
        it = it->next;
        count++;
        if (atomic_load(&n->failed) != CRAFT_OK) {
            /* The state machine's state is unknown after a failure: apply nothing. */
            fail_job_futures(j);
            rt_fsm_job_free(j);
            continue;
        }
        switch (j->kind) {
        case FSM_APPLY:
            apply_job(n, j, s);
            break;
        case FSM_RESTORE: {
            int rc = rt_fsm_restore(n, &j->meta);
            if (rc != CRAFT_OK) {
                rt_fail(n, rc, "snapshot restore");
            }
            break;
        }
        case FSM_READ:
            rt_future_complete(j->f, CRAFT_OK,
                               n->fsm_applied > j->index ? n->fsm_applied : j->index, NULL);
            break;
        case FSM_SNAPSHOT:
            take_snapshot(n);
            break;
        default:
            CRAFT_UNREACHABLE();
        }
        rt_fsm_job_free(j);
    }
    return count;
}

void rt_fsm_apply_now(struct craft_node *n, const struct craft_entry *entries, size_t count,
                      struct craft_future **futs, struct rt_apply_scratch *s)
{
    /* A job on the stack over the borrowed entries: apply_job only reads them. */
    struct rt_fsm_job j = {.kind = FSM_APPLY,
                           .entries = (struct craft_entry *)entries,
                           .futs = futs,
                           .n = count};
    if (atomic_load(&n->failed) != CRAFT_OK) {
        fail_job_futures(&j); /* the state machine's state is unknown after a failure */
    } else {
        apply_job(n, &j, s);
    }
    free(futs);
}

void rt_fsm_join_snapshot(struct craft_node *n)
{
    if (n->snap_thread_started) {
        pthread_join(n->snap_thread, NULL);
        n->snap_thread_started = false;
    }
}
