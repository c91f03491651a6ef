/* The runtime's storage: opening and recovering the stores, bootstrap, and the disk thread
 * (group commit: every batch queued while the previous write ran goes into one write with
 * one fdatasync). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "runtime/rt.h"

/* ---- the log store: the group's WAL, its share of the host's log, or the memory log ----
 *
 * The host's log is shared by its groups: every call on it holds host->glog_mu (the disk
 * thread's writes, and the reads and bootstrap of a group being added). */

static void glog_count(struct craft_host *h, size_t entries)
{
    atomic_fetch_add(&h->log_writes, 1);
    atomic_fetch_add(&h->log_entries, entries);
    atomic_store(&h->log_syncs, craft_glog_syncs(h->glog));
}

static int glog_put(struct craft_node *n, const struct craft_glog_update *u)
{
    pthread_mutex_lock(&n->host->glog_mu);
    int rc = craft_glog_write(n->glog, u, 1);
    glog_count(n->host, u->n);
    pthread_mutex_unlock(&n->host->glog_mu);
    return rc;
}

static int log_write(struct craft_node *n, uint64_t t, const struct craft_entry *e, size_t k)
{
    if (n->glog != NULL) {
        struct craft_glog_update u = {.group = n->group, .truncate_from = t, .entries = e, .n = k};
        return glog_put(n, &u);
    }
    return n->wal ? craft_wal_write(n->wal, t, e, k) : craft_mem_log_write(n->mem_log, t, e, k);
}

static int log_compact(struct craft_node *n, uint64_t through)
{
    if (n->glog != NULL) {
        pthread_mutex_lock(&n->host->glog_mu);
        int rc = craft_glog_compact(n->glog, n->group, through);
        pthread_mutex_unlock(&n->host->glog_mu);
        return rc;
    }
    if (n->wal) {
        return craft_wal_compact(n->wal, through);
    }
    craft_mem_log_compact(n->mem_log, through);
    return CRAFT_OK;
}

static uint64_t log_first(struct craft_node *n)
{
    if (n->glog != NULL) {
        pthread_mutex_lock(&n->host->glog_mu);
        uint64_t v = craft_glog_first_index(n->glog, n->group);
        pthread_mutex_unlock(&n->host->glog_mu);
        return v;
    }
    return n->wal ? craft_wal_first_index(n->wal) : craft_mem_log_first_index(n->mem_log);
}

static uint64_t log_last(struct craft_node *n)
{
    if (n->glog != NULL) {
        pthread_mutex_lock(&n->host->glog_mu);
        uint64_t v = craft_glog_last_index(n->glog, n->group);
        pthread_mutex_unlock(&n->host->glog_mu);
        return v;
    }
    return n->wal ? craft_wal_last_index(n->wal) : craft_mem_log_last_index(n->mem_log);
}

static uint64_t log_term(struct craft_node *n, uint64_t index)
{
    if (n->glog != NULL) {
        pthread_mutex_lock(&n->host->glog_mu);
        uint64_t v = craft_glog_term_at(n->glog, n->group, index);
        pthread_mutex_unlock(&n->host->glog_mu);
        return v;
    }
    return n->wal ? craft_wal_term_at(n->wal, index) : craft_mem_log_term_at(n->mem_log, index);
}

static int log_read(struct craft_node *n, uint64_t lo, uint64_t hi, struct craft_wal_entries *out)
{
    if (n->glog != NULL) {
        pthread_mutex_lock(&n->host->glog_mu);
        int rc = craft_glog_read(n->glog, n->group, lo, hi, out);
        pthread_mutex_unlock(&n->host->glog_mu);
        return rc;
    }
    return n->wal ? craft_wal_read(n->wal, lo, hi, out) : craft_mem_log_read(n->mem_log, lo, hi, out);
}

static int hs_put(struct craft_node *n, const struct craft_hard_state *hs)
{
    if (n->glog != NULL) {
        struct craft_glog_update u = {.group = n->group, .has_hard_state = true, .hs = *hs};
        return glog_put(n, &u);
    }
    return n->stable ? craft_stable_put_hard_state(n->stable, hs)
                     : craft_mem_stable_put_hard_state(n->mem_stable, hs);
}

static int hs_get(struct craft_node *n, struct craft_hard_state *hs)
{
    if (n->glog != NULL) {
        pthread_mutex_lock(&n->host->glog_mu);
        bool found = craft_glog_hard_state(n->glog, n->group, hs);
        pthread_mutex_unlock(&n->host->glog_mu);
        return found ? CRAFT_OK : CRAFT_ENOTFOUND;
    }
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

/* The file snapshot store in <dir>/snapshots. */
static int open_snapshots(struct craft_node *n, const char *dir, char *errbuf, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/snapshots", dir);
    int rc = craft_snapshot_file_open(&n->fs, path, n->cfg.snapshots_retained, &n->snaps);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot open the snapshots in %s: %s", path, craft_strerror(rc));
    }
    return rc;
}

/* A group in the host's log: its snapshots in <host data_dir>/groups/<id>/snapshots. */
static int open_in_host_log(struct craft_node *n, char *errbuf, size_t cap)
{
    craft_fs_posix_init(&n->fs);
    n->glog = n->host->glog;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/groups/%016" PRIx64, n->host->data_dir, n->group);
    int rc = n->fs.mkdir(&n->fs, dir);
    if (rc == CRAFT_OK) {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s/groups", n->host->data_dir);
        rc = n->fs.fsync_dir(&n->fs, parent);
    }
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot create %s: %s", dir, craft_strerror(rc));
        return rc;
    }
    return open_snapshots(n, dir, errbuf, cap);
}

/* Removes the files of directory dir (not its subdirectories), then dir itself. */
static int remove_dir_files(struct craft_fs *fs, const char *dir);

struct rm_ctx {
    struct craft_fs *fs;
    const char *dir;
    int err;
};

static int rm_one(void *arg, const char *name)
{
    struct rm_ctx *c = arg;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    int rc = c->fs->unlink(c->fs, path);
    if (rc != CRAFT_OK && c->err == CRAFT_OK) {
        c->err = rc;
    }
    return 0;
}

static int remove_dir_files(struct craft_fs *fs, const char *dir)
{
    struct rm_ctx c = {.fs = fs, .dir = dir, .err = CRAFT_OK};
    int rc = fs->list_dir(fs, dir, rm_one, &c);
    if (rc == CRAFT_ENOTFOUND) {
        return CRAFT_OK;
    }
    if (rc == CRAFT_OK) {
        rc = c.err;
    }
    /* The fs interface has no rmdir: the directory is POSIX's to remove. */
    if (rc == CRAFT_OK && rmdir(dir) != 0 && errno != ENOENT) {
        rc = CRAFT_EIO;
    }
    return rc;
}

int rt_storage_drop(struct craft_host *h, uint64_t group, char *errbuf, size_t cap)
{
    pthread_mutex_lock(&h->glog_mu);
    int rc = craft_glog_drop(h->glog, group);
    if (rc == CRAFT_OK) {
        atomic_store(&h->log_syncs, craft_glog_syncs(h->glog));
    }
    pthread_mutex_unlock(&h->glog_mu);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot drop group %" PRIu64 " from the shared log: %s",
                 group, craft_strerror(rc));
        return rc;
    }
    char dir[4096], snaps[4200];
    snprintf(dir, sizeof dir, "%s/groups/%016" PRIx64, h->data_dir, group);
    snprintf(snaps, sizeof snaps, "%s/snapshots", dir);
    rc = remove_dir_files(&h->fs, snaps);
    if (rc == CRAFT_OK) {
        rc = remove_dir_files(&h->fs, dir);
    }
    if (rc == CRAFT_OK) {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s/groups", h->data_dir);
        rc = h->fs.fsync_dir(&h->fs, parent);
    }
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "cannot remove %s: %s", dir, craft_strerror(rc));
    }
    return rc;
}

int rt_storage_open(struct craft_node *n, char *errbuf, size_t cap)
{
    pthread_mutex_init(&n->snap_mu, NULL);
    if (n->data_dir == NULL && n->host != NULL && n->host->glog != NULL) {
        return open_in_host_log(n, errbuf, cap);
    }
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
    return open_snapshots(n, dir, errbuf, cap);
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

/* The configuration of servers[0..n) (craft_config_validate checked their count and ids). */
static void servers_conf(const struct craft_server *servers, size_t n, struct craft_conf *conf)
{
    CRAFT_ASSERT(n <= CRAFT_CONF_NODES_MAX);
    memset(conf, 0, sizeof *conf);
    for (size_t i = 0; i < n; i++) {
        if (servers[i].voter) {
            conf->voters[conf->n_voters++] = servers[i].id;
        } else {
            conf->learners[conf->n_learners++] = servers[i].id;
        }
    }
}

static int bootstrap(struct craft_node *n, char *errbuf, size_t cap)
{
    const struct craft_config *c = &n->cfg;
    struct craft_conf conf;
    servers_conf(c->initial_servers, c->n_initial_servers, &conf);
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

/* Whether the ids a[0..na) and b[0..nb) (each without repeats) are the same set. */
static bool same_ids(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t i = 0; i < na; i++) {
        bool found = false;
        for (uint32_t j = 0; j < nb; j++) {
            found = found || a[i] == b[j];
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

/* Whether a and b hold the same voters and the same learners, and neither is joint. */
static bool same_simple_conf(const struct craft_conf *a, const struct craft_conf *b)
{
    return a->n_voters_outgoing == 0 && b->n_voters_outgoing == 0 &&
           same_ids(a->voters, a->n_voters, b->voters, b->n_voters) &&
           same_ids(a->learners, a->n_learners, b->learners, b->n_learners);
}

/* The newest configuration of r: its log's last CONF entry, else its snapshot's. */
static bool latest_conf(const struct craft_core_restore *r, struct craft_conf *out)
{
    for (size_t i = r->n_entries; i > 0; i--) {
        const struct craft_entry *e = &r->entries[i - 1];
        if (e->type == CRAFT_ENTRY_CONF) {
            return craft_conf_decode(e->data, e->len, out) == CRAFT_OK;
        }
    }
    *out = r->snap.conf;
    return r->snap.index > 0;
}

/* Recovery from a lost quorum (craft_config.force_servers; the rule: src/core/recover.c):
 * the forced configuration appended to the recovered log, hard state first (a crash
 * between the two leaves a higher term and the old log: the next forced start appends it
 * then), then r and hold re-read to include it. A start given the configuration already in
 * force does nothing: forcing again, above the terms of a recovered cluster that went on
 * without this node, could overwrite what it committed meanwhile. */
static int force_conf(struct craft_node *n, struct craft_core_restore *r,
                      struct craft_wal_entries *hold, char *errbuf, size_t cap)
{
    const struct craft_config *c = &n->cfg;
    if (r->snap.index == 0 && r->n_entries == 0) {
        snprintf(errbuf, cap, "force_servers: the storage holds no log to recover");
        return CRAFT_EINVAL;
    }
    struct craft_conf conf;
    servers_conf(c->force_servers, c->n_force_servers, &conf);
    struct craft_conf now;
    if (latest_conf(r, &now) && same_simple_conf(&now, &conf)) {
        return CRAFT_OK; /* in force already: nothing to do */
    }
    uint8_t confbuf[4 + 4 * 8 * CRAFT_CONF_NODES_MAX];
    struct craft_entry e;
    struct craft_hard_state hs;
    int rc = craft_core_force_conf(r, &conf, c->force_min_term, confbuf, sizeof confbuf, &e, &hs);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "force_servers: cannot force this configuration (at least one "
                              "voter, no id twice, at most %d servers; terms not exhausted)",
                 CRAFT_CONF_NODES_MAX);
        return rc;
    }
    rc = hs_put(n, &hs);
    if (rc == CRAFT_OK) {
        /* From e.index: a log whose stale tail ends below the snapshot (a crash between a
         * snapshot and the log's compaction) restarts there. */
        rc = log_write(n, e.index, &e, 1);
    }
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "force_servers: cannot write the forced configuration: %s",
                 craft_strerror(rc));
        return rc;
    }
    r->hs = hs;
    craft_wal_entries_free(hold);
    memset(hold, 0, sizeof *hold);
    uint64_t lo = r->snap.index + 1 > log_first(n) ? r->snap.index + 1 : log_first(n);
    rc = log_read(n, lo, e.index, hold);
    if (rc != CRAFT_OK) {
        snprintf(errbuf, cap, "force_servers: cannot read the log back: %s", craft_strerror(rc));
        return rc;
    }
    CRAFT_ASSERT(hold->n > 0 && hold->entries[hold->n - 1].index == e.index &&
                 hold->entries[hold->n - 1].term == e.term);
    r->entries = hold->entries;
    r->n_entries = hold->n;
    return CRAFT_OK;
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
        n->cfg.n_initial_servers > 0 && n->cfg.n_force_servers == 0) {
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
    if (n->cfg.n_force_servers > 0) {
        rc = force_conf(n, r, hold, errbuf, cap);
        if (rc != CRAFT_OK) {
            return rc;
        }
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
    /* A forced configuration's addresses last: the operator's word is the newest. (Not
     * written to the log: a restart takes them from cfg.peers, as craftkv gives them.) */
    for (size_t i = 0; i < n->cfg.n_force_servers; i++) {
        rt_book_set(&n->loop_book, n->cfg.force_servers[i].id, n->cfg.force_servers[i].addr);
    }
    return CRAFT_OK;
}

/* ---- the disk thread: one per host ---- */

void rt_disk_job_free(struct rt_disk_job *j)
{
    free(j->entries);
    free(j->buf);
    free(j);
}

/* The hard state (if hs), then a truncation from t (0: none) and entries e[0..k), each
 * durable, counted in the node's disk counters: a group with stores of its own. */
static int write_hs_and_log(struct craft_node *n, const struct craft_hard_state *hs, uint64_t t,
                            const struct craft_entry *e, size_t k)
{
    int rc = CRAFT_OK;
    uint64_t t0 = rt_mono_us();
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
    if (hs != NULL || t != 0 || k > 0) {
        rt_hist_observe(&n->disk_write_us, rt_mono_us() - t0);
    }
    return rc;
}

/* A batch that carries a snapshot chunk, written on its own. */
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
    CRAFT_ASSERT(!b->has_snap_chunk && n->glog == NULL);
    CRAFT_ASSERT(n->disk_jobs_pushed == atomic_load_explicit(&n->disk_jobs_finished,
                                                             memory_order_acquire));
    return write_hs_and_log(n, b->has_hard_state ? &b->hs : NULL, b->truncate_from, b->entries,
                            b->n_entries);
}

int rt_disk_run_job(struct craft_node *n, const struct rt_disk_job *j)
{
    CRAFT_ASSERT(n->glog == NULL);
    CRAFT_ASSERT(n->disk_jobs_pushed == atomic_load_explicit(&n->disk_jobs_finished,
                                                             memory_order_acquire));
    if (j->kind == DISK_COMPACT) {
        return log_compact(n, j->compact_through);
    }
    if (j->has_chunk) {
        return write_special(n, j);
    }
    return write_hs_and_log(n, j->has_hs ? &j->hs : NULL, j->truncate_from, j->entries,
                            j->n_entries);
}

void rt_disk_push(struct craft_node *n, struct rt_disk_job *j)
{
    j->node = n;
    n->disk_jobs_pushed++;
    bool queued = rt_queue_push(&n->host->disk_q, &j->item, false, 0);
    CRAFT_ASSERT(queued); /* the host closes its disk queue after its last group left */
}

void rt_disk_wait(struct craft_node *n)
{
    struct craft_host *h = n->host;
    pthread_mutex_lock(&h->disk_mu);
    while (atomic_load_explicit(&n->disk_jobs_finished, memory_order_acquire) <
           n->disk_jobs_pushed) {
        pthread_cond_wait(&h->disk_cv, &h->disk_mu);
    }
    pthread_mutex_unlock(&h->disk_mu);
}

void rt_post_persisted(struct craft_node *n, uint64_t seq)
{
    struct rt_req *r = rt_req_new(REQ_PERSISTED, NULL, 0);
    CRAFT_ASSERT(r != NULL); /* TODO(limits): a node that cannot allocate stops */
    r->a = seq;
    rt_post(n, r);
}

/* One group's share of a pass over the disk queue: what it has to write at the next flush
 * (its batches merged: the latest hard state, a truncation only as the first thing, the
 * entries in order, pointing into the jobs kept until then), and its outcome. */
struct disk_acc {
    struct craft_node *n;
    bool pending;
    bool has_hs;
    struct craft_hard_state hs;
    uint64_t truncate_from;
    struct craft_entry *e;
    size_t k, cap; /* e's capacity stays with the slot from pass to pass */
    struct rt_disk_job *kept;
    uint64_t done_seq; /* the last batch written */
    uint64_t jobs;     /* jobs taken */
    int err;
};

struct disk_pass {
    struct disk_acc *acc;
    size_t n, cap;
    struct craft_glog_update *upd;
    size_t cap_upd;
};

/* n's accumulator in this pass (made on first use); NULL: out of memory. */
static struct disk_acc *acc_of(struct disk_pass *p, struct craft_node *n)
{
    if (n->disk_acc != SIZE_MAX) {
        CRAFT_ASSERT(n->disk_acc < p->n && p->acc[n->disk_acc].n == n);
        return &p->acc[n->disk_acc];
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        struct disk_acc *acc = realloc(p->acc, cap * sizeof *acc);
        if (acc == NULL) {
            return NULL;
        }
        memset(acc + p->cap, 0, (cap - p->cap) * sizeof *acc);
        p->acc = acc;
        p->cap = cap;
    }
    struct disk_acc *a = &p->acc[p->n];
    struct craft_entry *e = a->e;
    size_t cap = a->cap;
    memset(a, 0, sizeof *a);
    a->e = e;
    a->cap = cap;
    a->n = n;
    n->disk_acc = p->n++;
    return a;
}

static int acc_add(struct disk_acc *a, struct rt_disk_job *j)
{
    CRAFT_ASSERT(j->kind == DISK_BATCH && !j->has_chunk);
    CRAFT_ASSERT(!a->pending || j->truncate_from == 0);
    if (a->k + j->n_entries > a->cap) {
        size_t cap = a->cap ? a->cap : 64;
        while (cap < a->k + j->n_entries) {
            cap *= 2;
        }
        struct craft_entry *e = realloc(a->e, cap * sizeof *e);
        if (e == NULL) {
            return CRAFT_ENOMEM;
        }
        a->e = e;
        a->cap = cap;
    }
    if (!a->pending) {
        a->truncate_from = j->truncate_from;
    }
    a->pending = true;
    if (j->has_hs) {
        a->has_hs = true;
        a->hs = j->hs;
    }
    if (j->n_entries > 0) {
        memcpy(a->e + a->k, j->entries, j->n_entries * sizeof *j->entries);
        a->k += j->n_entries;
    }
    j->item.next = (struct rt_item *)a->kept;
    a->kept = j;
    a->done_seq = j->seq;
    return CRAFT_OK;
}

static void acc_clear(struct disk_acc *a)
{
    while (a->kept != NULL) {
        struct rt_disk_job *j = a->kept;
        a->kept = (struct rt_disk_job *)j->item.next;
        rt_disk_job_free(j);
    }
    a->pending = a->has_hs = false;
    a->truncate_from = 0;
    a->k = 0;
}

/* Writes what every group accumulated: the groups in the host's log with one
 * craft_glog_write (one fdatasync for all of them), each group with stores of its own
 * with its own write. */
static void flush(struct craft_host *h, struct disk_pass *p)
{
    size_t nu = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct disk_acc *a = &p->acc[i];
        if (!a->pending || a->err != CRAFT_OK) {
            continue;
        }
        if (a->n->glog == NULL) {
            a->err = write_hs_and_log(a->n, a->has_hs ? &a->hs : NULL, a->truncate_from, a->e,
                                      a->k);
            continue;
        }
        if (nu == p->cap_upd) {
            size_t cap = p->cap_upd ? 2 * p->cap_upd : 16;
            struct craft_glog_update *u = realloc(p->upd, cap * sizeof *u);
            if (u == NULL) {
                a->err = CRAFT_ENOMEM;
                continue;
            }
            p->upd = u;
            p->cap_upd = cap;
        }
        p->upd[nu++] = (struct craft_glog_update){.group = a->n->group,
                                                  .has_hard_state = a->has_hs,
                                                  .hs = a->hs,
                                                  .truncate_from = a->truncate_from,
                                                  .entries = a->e,
                                                  .n = a->k};
    }
    if (nu > 0) {
        size_t entries = 0;
        for (size_t i = 0; i < nu; i++) {
            entries += p->upd[i].n;
        }
        uint64_t t0 = rt_mono_us();
        pthread_mutex_lock(&h->glog_mu);
        int rc = craft_glog_write(h->glog, p->upd, nu);
        glog_count(h, entries);
        pthread_mutex_unlock(&h->glog_mu);
        uint64_t took = rt_mono_us() - t0;
        for (size_t i = 0; i < p->n; i++) {
            struct disk_acc *a = &p->acc[i];
            if (a->pending && a->err == CRAFT_OK && a->n->glog != NULL) {
                a->err = rc;
                atomic_fetch_add(&a->n->n_disk_writes, 1);
                atomic_fetch_add(&a->n->n_disk_syncs, 1); /* shared with the others */
                atomic_fetch_add(&a->n->n_entries_written, a->k);
                rt_hist_observe(&a->n->disk_write_us, took);
            }
        }
    }
    for (size_t i = 0; i < p->n; i++) {
        acc_clear(&p->acc[i]);
    }
}

/* One pass: every job taken from the queue (oldest first, any group). */
static void pass_run(struct craft_host *h, struct disk_pass *p, struct rt_item *it)
{
    while (it != NULL) {
        struct rt_disk_job *j = (struct rt_disk_job *)it;
        it = it->next;
        struct craft_node *n = j->node;
        struct disk_acc *a = acc_of(p, n);
        if (a == NULL) {
            rt_fail(n, CRAFT_ENOMEM, "disk write");
            rt_disk_job_free(j);
            atomic_fetch_add_explicit(&n->disk_jobs_finished, 1, memory_order_release);
            continue;
        }
        a->jobs++;
        /* Failed here, or elsewhere (a write the loop made itself, the state machine):
         * nothing more is written for the group. */
        if (a->err == CRAFT_OK) {
            a->err = atomic_load(&n->failed);
        }
        if (a->err != CRAFT_OK) {
            rt_disk_job_free(j);
            continue;
        }
        if (j->kind == DISK_BATCH && !j->has_chunk) {
            if (a->pending && j->truncate_from != 0) {
                flush(h, p); /* a truncation starts the group's next write */
            }
            a->err = a->err != CRAFT_OK ? a->err : acc_add(a, j);
            if (a->err != CRAFT_OK) {
                rt_disk_job_free(j);
            }
            continue;
        }
        /* Compaction and snapshot chunks: after everything before them. */
        flush(h, p);
        if (a->err == CRAFT_OK) {
            a->err = j->kind == DISK_COMPACT ? log_compact(n, j->compact_through)
                                             : write_special(n, j);
        }
        if (j->kind == DISK_BATCH) {
            a->done_seq = j->seq;
        }
        rt_disk_job_free(j);
    }
    flush(h, p);
    for (size_t i = 0; i < p->n; i++) {
        struct disk_acc *a = &p->acc[i];
        struct craft_node *n = a->n;
        if (a->err != CRAFT_OK) {
            rt_fail(n, a->err, "disk write"); /* nothing more is acknowledged */
        } else if (a->done_seq != 0) {
            rt_post_persisted(n, a->done_seq);
        }
        n->disk_acc = SIZE_MAX;
        /* The last touch of n: a removed group may be freed from here on. */
        atomic_fetch_add_explicit(&n->disk_jobs_finished, a->jobs, memory_order_release);
    }
    p->n = 0;
    pthread_mutex_lock(&h->disk_mu);
    pthread_cond_broadcast(&h->disk_cv);
    pthread_mutex_unlock(&h->disk_mu);
}

void *rt_disk_main(void *arg)
{
    pthread_setname_np(pthread_self(), "craft-disk"); /* top -H, perf, gdb */
    struct craft_host *h = arg;
    struct disk_pass p = {0};
    for (;;) {
        struct rt_item *it = rt_queue_take_all(&h->disk_q, 0);
        if (it == NULL) {
            break; /* closed and drained */
        }
        pass_run(h, &p, it);
    }
    for (size_t i = 0; i < p.cap; i++) {
        free(p.acc[i].e);
    }
    free(p.acc);
    free(p.upd);
    return NULL;
}
