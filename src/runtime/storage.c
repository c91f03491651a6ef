/* The runtime's storage: opening and recovering the stores, bootstrap, and the disk thread
 * (group commit: every batch queued while the previous write ran goes into one write with
 * one fdatasync). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "runtime/rt.h"

/* ---- the log store: the WAL, or the memory log ---- */

static int log_write(struct craft_node *n, uint64_t t, const struct craft_entry *e, size_t k)
{
    return n->wal ? craft_wal_write(n->wal, t, e, k) : craft_mem_log_write(n->mem_log, t, e, k);
}

static int log_compact(struct craft_node *n, uint64_t through)
{
    if (n->wal) {
        return craft_wal_compact(n->wal, through);
    }
    craft_mem_log_compact(n->mem_log, through);
    return CRAFT_OK;
}

static uint64_t log_first(struct craft_node *n)
{
    return n->wal ? craft_wal_first_index(n->wal) : craft_mem_log_first_index(n->mem_log);
}

static uint64_t log_last(struct craft_node *n)
{
    return n->wal ? craft_wal_last_index(n->wal) : craft_mem_log_last_index(n->mem_log);
}

static uint64_t log_term(struct craft_node *n, uint64_t index)
{
    return n->wal ? craft_wal_term_at(n->wal, index) : craft_mem_log_term_at(n->mem_log, index);
}

static int log_read(struct craft_node *n, uint64_t lo, uint64_t hi, struct craft_wal_entries *out)
{
    return n->wal ? craft_wal_read(n->wal, lo, hi, out) : craft_mem_log_read(n->mem_log, lo, hi, out);
}

static int hs_put(struct craft_node *n, const struct craft_hard_state *hs)
{
    return n->stable ? craft_stable_put_hard_state(n->stable, hs)
                     : craft_mem_stable_put_hard_state(n->mem_stable, hs);
}

static int hs_get(struct craft_node *n, struct craft_hard_state *hs)
{
    return n->stable ? craft_stable_get_hard_state(n->stable, hs)
                     : craft_mem_stable_get_hard_state(n->mem_stable, hs);
}

/* ---- open ---- */

static int make_dir(struct craft_node *n, const char *path, const char *parent)
{
    int rc = n->fs.mkdir(&n->fs, path);
    if (rc == CRAFT_OK) {
        rc = n->fs.fsync_dir(&n->fs, parent);
    }
    return rc;
}

int rt_storage_open(struct craft_node *n, char *errbuf, size_t cap)
{
    pthread_mutex_init(&n->snap_mu, NULL);
    if (n->data_dir == NULL) {
        n->mem_log = craft_mem_log_create(0);
        n->mem_stable = craft_mem_stable_create();
        int rc = craft_snapshot_mem_create(n->cfg.snapshots_retained, &n->snaps);
        if (n->mem_log == NULL || n->mem_stable == NULL || rc != CRAFT_OK) {
            snprintf(errbuf, cap, "out of memory creating the in-memory stores");
            return CRAFT_ENOMEM;
        }
        return CRAFT_OK;
    }
    craft_fs_posix_init(&n->fs);
    char path[4096];
    const char *dir = n->data_dir;
    int rc = n->fs.mkdir(&n->fs, dir);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot create data directory %s: %s", dir, craft_strerror(rc));
        return rc;
    }
    snprintf(path, sizeof path, "%s/wal", dir);
    rc = make_dir(n, path, dir);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot create %s: %s", path, craft_strerror(rc));
        return rc;
    }
    struct craft_wal_config wc;
    craft_wal_config_default(&wc);
    /* One record holds the largest entry: payload + tag byte + header + padding. */
    uint64_t rec = (n->cfg.entry_bytes_max + 1 + CRAFT_WAL_RECORD_HEADER_BYTES + 7 + 7) & ~7ull;
    wc.record_bytes_max = (uint32_t)(rec > wc.record_bytes_max ? rec : wc.record_bytes_max);
    wc.segment_bytes = n->cfg.wal_segment_bytes;
    if (wc.segment_bytes < 2ull * wc.record_bytes_max + CRAFT_WAL_SEGMENT_HEADER_BYTES) {
        wc.segment_bytes = 2ull * wc.record_bytes_max + CRAFT_WAL_SEGMENT_HEADER_BYTES;
    }
    char msg[512] = "";
    rc = craft_wal_open(&n->fs, path, &wc, &n->wal, msg, sizeof msg);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot open the log in %s: %s (%s)", path, craft_strerror(rc), msg);
        return rc;
    }
    snprintf(path, sizeof path, "%s/state", dir);
    rc = craft_stable_open(&n->fs, path, &n->stable);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot open the hard state %s: %s", path, craft_strerror(rc));
        return rc;
    }
    snprintf(path, sizeof path, "%s/snapshots", dir);
    rc = craft_snapshot_file_open(&n->fs, path, n->cfg.snapshots_retained, &n->snaps);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot open the snapshots in %s: %s", path, craft_strerror(rc));
        return rc;
    }
    return CRAFT_OK;
}

void rt_storage_close(struct craft_node *n)
{
    if (n->recv_sink != NULL) {
        n->snaps->abort(n->snaps, n->recv_sink);
        n->recv_sink = NULL;
    }
    if (n->send_reader != NULL) {
        n->snaps->reader_close(n->snaps, n->send_reader);
        n->send_reader = NULL;
    }
    if (n->snaps != NULL) {
        n->snaps->destroy(n->snaps);
    }
    craft_wal_close(n->wal);
    craft_stable_close(n->stable);
    craft_mem_log_destroy(n->mem_log);
    craft_mem_stable_destroy(n->mem_stable);
    pthread_mutex_destroy(&n->snap_mu);
}

/* ---- recovery and bootstrap ---- */

static int bootstrap(struct craft_node *n, char *errbuf, size_t cap)
{
    const struct craft_config *c = &n->cfg;
    struct craft_conf conf;
    memset(&conf, 0, sizeof conf);
    for (size_t i = 0; i < c->n_initial_servers; i++) {
        const struct craft_server *s = &c->initial_servers[i];
        if (s->voter) {
            conf.voters[conf.n_voters++] = s->id;
        } else {
            conf.learners[conf.n_learners++] = s->id;
        }
    }
    uint8_t confbuf[4 + 4 * 8 * CRAFT_CONF_NODES_MAX];
    uint8_t addrbuf[1 + CRAFT_CONF_NODES_MAX * (9 + CRAFT_ADDR_BYTES_MAX)];
    struct craft_entry e[2] = {
        {.term = 1, .index = 1, .type = CRAFT_ENTRY_CONF, .data = confbuf},
        {.term = 1, .index = 2, .type = CRAFT_ENTRY_NORMAL, .data = addrbuf},
    };
    e[0].len = (uint32_t)craft_conf_encode(&conf, confbuf);
    addrbuf[0] = TAG_ADDRS;
    size_t alen = rt_addrs_encode(c->initial_servers, c->n_initial_servers, addrbuf + 1,
                                  sizeof addrbuf - 1);
    CRAFT_ASSERT(alen > 0);
    e[1].len = (uint32_t)(1 + alen);
    /* The hard state first: a crash before the log write leaves term 1 and an empty log,
     * which bootstraps again at the next start. */
    struct craft_hard_state hs = {.term = 1, .vote = CRAFT_NONE};
    int rc = hs_put(n, &hs);
    if (rc == CRAFT_OK) {
        rc = log_write(n, 0, e, 2);
    }
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot write the bootstrap configuration: %s", craft_strerror(rc));
    }
    return rc;
}

int rt_storage_recover(struct craft_node *n, struct craft_core_restore *r,
                       struct craft_wal_entries *hold, char *errbuf, size_t cap)
{
    memset(r, 0, sizeof *r);
    memset(hold, 0, sizeof *hold);
    int rc = hs_get(n, &r->hs);
    if (rc == CRAFT_ENOTFOUND) {
        memset(&r->hs, 0, sizeof r->hs);
    } else if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot read the hard state: %s", craft_strerror(rc));
        return rc;
    }
    /* The newest snapshot that checks, restored into the state machine now. */
    struct craft_snapshot_info info;
    size_t count = 0;
    n->snaps->list(n->snaps, &info, 1, &count);
    if (count > 0) {
        struct craft_snapshot_reader *rd;
        rc = n->snaps->open_newest(n->snaps, &info, &rd);
        if (rc == CRAFT_OK) {
            n->snaps->reader_close(n->snaps, rd);
            r->snap = info.meta;
            rc = rt_fsm_restore(n, &info.meta);
            if (rc != CRAFT_OK) {
                snprintf(errbuf, cap, "cannot restore the snapshot at index %" PRIu64 ": %s",
                         info.meta.index, craft_strerror(rc));
                return rc;
            }
        } else if (rc != CRAFT_ENOTFOUND) {
            snprintf(errbuf, cap, "cannot open the newest snapshot: %s (%s)", craft_strerror(rc),
                     n->snaps->errmsg(n->snaps));
            return rc;
        }
    }
    uint64_t s = r->snap.index;
    uint64_t first = log_first(n), last = log_last(n);
    if (s == 0 && last == 0 && r->hs.term <= 1 && r->hs.vote == CRAFT_NONE &&
        n->cfg.n_initial_servers > 0) {
        rc = bootstrap(n, errbuf, cap);
        if (rc != CRAFT_OK) {
            return rc;
        }
        r->hs.term = 1;
        first = log_first(n);
        last = log_last(n);
    }
    if (last >= first && s > 0) {
        if (s >= first && s <= last && log_term(n, s) != r->snap.term) {
            /* A crash between installing a snapshot and dropping the log it replaced: what
             * follows the snapshot in the log belongs to another history. */
            rc = log_write(n, s + 1, NULL, 0);
            if (rc != CRAFT_OK) {
                snprintf(errbuf, cap, "cannot drop the log after the snapshot: %s",
                         craft_strerror(rc));
                return rc;
            }
            last = s;
        } else if (first > s + 1) {
            snprintf(errbuf, cap,
                     "the log starts at index %" PRIu64 " but the newest usable snapshot ends "
                     "at %" PRIu64 ": entries are missing (%s)",
                     first, s, n->snaps->errmsg(n->snaps));
            return CRAFT_ECORRUPT;
        }
    }
    uint64_t lo = first > s + 1 ? first : s + 1;
    if (lo <= last) {
        rc = log_read(n, lo, last, hold);
        if (rc != CRAFT_OK) {
            snprintf(errbuf, cap, "cannot read the log: %s", craft_strerror(rc));
            return rc;
        }
        r->entries = hold->entries;
        r->n_entries = hold->n;
    }
    /* What the loop knows of addresses: the snapshot's book, the configured peers, then
     * every address record in the log. */
    n->loop_book = n->fsm_book;
    for (size_t i = 0; i < n->cfg.n_peers; i++) {
        rt_book_set(&n->loop_book, n->cfg.peers[i].id, n->cfg.peers[i].addr);
    }
    for (size_t i = 0; i < r->n_entries; i++) {
        const struct craft_entry *e = &r->entries[i];
        if (e->type == CRAFT_ENTRY_NORMAL && e->len > 0 && e->data[0] == TAG_ADDRS) {
            (void)rt_addrs_apply(&n->loop_book, e->data + 1, e->len - 1);
        }
    }
    return CRAFT_OK;
}

/* ---- the disk thread ---- */

void rt_disk_job_free(struct rt_disk_job *j)
{
    free(j->entries);
    free(j->buf);
    free(j);
}

struct group {
    struct craft_entry *e;
    size_t n, cap;
    bool has_hs;
    struct craft_hard_state hs;
};

/* The hard state (if hs), then a truncation from t (0: none) and entries e[0..k), each
 * durable, counted in the node's disk counters. */
static int write_hs_and_log(struct craft_node *n, const struct craft_hard_state *hs, uint64_t t,
                            const struct craft_entry *e, size_t k)
{
    int rc = CRAFT_OK;
    if (hs != NULL) {
        rc = hs_put(n, hs);
        atomic_fetch_add(&n->n_disk_syncs, 1);
    }
    if (rc == CRAFT_OK && (t != 0 || k > 0)) {
        rc = log_write(n, t, e, k);
        atomic_fetch_add(&n->n_disk_writes, 1);
        atomic_fetch_add(&n->n_disk_syncs, 1);
        atomic_fetch_add(&n->n_entries_written, k);
    }
    return rc;
}

static int group_flush(struct craft_node *n, struct group *g)
{
    int rc = write_hs_and_log(n, g->has_hs ? &g->hs : NULL, 0, g->e, g->n);
    g->n = 0;
    g->has_hs = false;
    return rc;
}

static int group_add(struct group *g, const struct rt_disk_job *j)
{
    if (j->has_hs) {
        g->has_hs = true;
        g->hs = j->hs;
    }
    if (g->n + j->n_entries > g->cap) {
        size_t cap = g->cap ? g->cap : 256;
        while (cap < g->n + j->n_entries) {
            cap *= 2;
        }
        struct craft_entry *e = realloc(g->e, cap * sizeof *e);
        if (e == NULL) {
            return CRAFT_ENOMEM;
        }
        g->e = e;
        g->cap = cap;
    }
    if (j->n_entries > 0) {
        memcpy(g->e + g->n, j->entries, j->n_entries * sizeof *j->entries);
        g->n += j->n_entries;
    }
    return CRAFT_OK;
}

/* A batch that truncates or carries a snapshot chunk, written on its own. */
static int write_special(struct craft_node *n, const struct rt_disk_job *j)
{
    int rc = CRAFT_OK;
    if (j->has_hs) {
        rc = hs_put(n, &j->hs);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    if (j->install && j->truncate_from != 0) {
        rc = log_write(n, j->truncate_from, NULL, 0);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    if (j->has_chunk) {
        pthread_mutex_lock(&n->snap_mu);
        if (n->recv_sink != NULL && j->chunk_off == 0) {
            n->snaps->abort(n->snaps, n->recv_sink); /* a transfer that started over */
            n->recv_sink = NULL;
        }
        if (n->recv_sink == NULL) {
            rc = n->snaps->create(n->snaps, NULL, &n->recv_sink);
        }
        if (rc == CRAFT_OK && j->chunk_len > 0) {
            rc = n->snaps->write(n->snaps, n->recv_sink, j->chunk_off, j->chunk, j->chunk_len);
        }
        if (rc == CRAFT_OK && j->install) {
            rc = n->snaps->commit(n->snaps, n->recv_sink, &j->meta);
            n->recv_sink = NULL;
            atomic_fetch_add(&n->n_snapshots_installed, 1);
        }
        pthread_mutex_unlock(&n->snap_mu);
        if (rc != CRAFT_OK) {
            return rc;
        }
    }
    if (j->install) {
        uint64_t s = j->meta.index;
        rc = log_write(n, (j->keep_log && log_last(n) >= s) ? 0 : s + 1, j->entries, j->n_entries);
        if (rc == CRAFT_OK) {
            rc = log_compact(n, s);
        }
    } else if (j->truncate_from != 0 || j->n_entries > 0) {
        rc = log_write(n, j->truncate_from, j->entries, j->n_entries);
    }
    atomic_fetch_add(&n->n_disk_writes, 1);
    atomic_fetch_add(&n->n_entries_written, j->n_entries);
    return rc;
}

int rt_disk_write_now(struct craft_node *n, const struct craft_batch *b)
{
    CRAFT_ASSERT(!b->has_snap_chunk);
    CRAFT_ASSERT(n->disk_jobs_pushed == atomic_load_explicit(&n->disk_jobs_finished,
                                                             memory_order_acquire));
    return write_hs_and_log(n, b->has_hard_state ? &b->hs : NULL, b->truncate_from, b->entries,
                            b->n_entries);
}

static void post_persisted(struct craft_node *n, uint64_t seq, int err)
{
    struct rt_req *r = rt_req_new(REQ_PERSISTED, NULL, 0);
    CRAFT_ASSERT(r != NULL); /* TODO(limits): a node that cannot allocate stops */
    r->a = seq;
    r->b = (uint64_t)err;
    rt_post(n, r);
}

static bool groupable(const struct rt_disk_job *j)
{
    return j->kind == DISK_BATCH && j->truncate_from == 0 && !j->has_chunk;
}

/* Writes the group and frees the jobs whose entries it pointed into. */
static int flush_and_free(struct craft_node *n, struct group *g, struct rt_disk_job **kept)
{
    int rc = group_flush(n, g);
    while (*kept != NULL) {
        struct rt_disk_job *j = *kept;
        *kept = (struct rt_disk_job *)j->item.next;
        rt_disk_job_free(j);
    }
    return rc;
}

void *rt_disk_main(void *arg)
{
    pthread_setname_np(pthread_self(), "craft-disk"); /* top -H, perf, gdb */
    struct craft_node *n = arg;
    struct group g = {0};
    int failed = CRAFT_OK;
    for (;;) {
        struct rt_item *it = rt_queue_take_all(&n->disk_q, 0);
        if (it == NULL) {
            break; /* closed and drained */
        }
        uint64_t done_seq = 0, jobs = 0;
        struct rt_disk_job *kept = NULL; /* jobs in the group, freed after its write */
        while (it != NULL) {
            struct rt_disk_job *j = (struct rt_disk_job *)it;
            it = it->next;
            jobs++;
            /* Failed here, or elsewhere (a write the loop made itself, the state machine):
             * nothing more is written. */
            int rc = failed != CRAFT_OK ? failed : atomic_load(&n->failed);
            if (rc != CRAFT_OK) {
                failed = rc;
                rt_disk_job_free(j);
                continue;
            }
            if (groupable(j)) {
                rc = group_add(&g, j);
                done_seq = j->seq;
                j->item.next = (struct rt_item *)kept;
                kept = j;
            } else {
                rc = flush_and_free(n, &g, &kept);
                if (rc == CRAFT_OK) {
                    rc = j->kind == DISK_COMPACT ? log_compact(n, j->compact_through)
                                                 : write_special(n, j);
                }
                if (j->kind == DISK_BATCH) {
                    done_seq = j->seq;
                }
                rt_disk_job_free(j);
            }
            if (rc != CRAFT_OK) {
                failed = rc;
            }
        }
        int rc = flush_and_free(n, &g, &kept);
        if (failed == CRAFT_OK && rc != CRAFT_OK) {
            failed = rc;
        }
        /* Done with the stores for these jobs (the loop may write while none is queued). */
        atomic_fetch_add_explicit(&n->disk_jobs_finished, jobs, memory_order_release);
        if (failed != CRAFT_OK) {
            rt_fail(n, failed, "disk write");
            /* Drain and drop the rest: nothing more is acknowledged. */
            continue;
        }
        if (done_seq != 0) {
            post_persisted(n, done_seq, CRAFT_OK);
        }
    }
    free(g.e);
    return NULL;
}
