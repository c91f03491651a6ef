/* One group on the raft loop thread: owns the group's driver and core; turns requests,
 * messages and disk completions into driver calls, and the driver's ports into work for
 * the other threads. The host's loop (host.c) runs every group's share of each round.
 *
 * Batching: a round takes everything queued in the group's inbox at once and steps all of
 * it between craft_driver_hold() and craft_driver_release(), so proposals arriving while
 * the previous batch was being handled leave together: one append per follower, one disk
 * job. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "runtime/host_msg.h"
#include "runtime/rt.h"

void rt_post(struct craft_node *n, struct rt_req *r)
{
    if (!rt_queue_push(&n->inbox, &r->item, false, 0)) {
        if (r->f != NULL) {
            rt_future_complete(r->f, CRAFT_ESHUTDOWN, 0, NULL);
        }
        free(r->conf);
        free(r);
    }
}

void rt_fail(struct craft_node *n, int err, const char *what)
{
    int expected = CRAFT_OK;
    if (!atomic_compare_exchange_strong(&n->failed, &expected, err)) {
        return;
    }
    fprintf(stderr, "craft node %" PRIu64 ": stopped after a %s error: %s\n", n->cfg.id, what,
            craft_strerror(err));
    struct rt_req *r = rt_req_new(REQ_FAILED, NULL, 0);
    if (r != NULL) {
        r->b = (uint64_t)err;
        rt_post(n, r);
    }
}

void rt_loop_recv(struct craft_node *n, uint64_t from, const uint8_t *bytes, size_t len)
{
    if (len > UINT32_MAX) {
        return;
    }
    struct rt_req *r = rt_req_new(REQ_MSG, bytes, (uint32_t)len);
    if (r == NULL) {
        return; /* dropped, as the network may drop it; Raft resends */
    }
    r->a = from;
    rt_post(n, r);
}

/* A Raft message for n, stepped (waking n first if it is quiesced and the message is work
 * for it). */
static void receive(struct craft_node *n, const uint8_t *bytes, size_t len, uint64_t now)
{
    if (rt_quiesce_msg_wakes(n, bytes, len)) {
        rt_quiesce_wake(n, false, now);
    }
    (void)craft_driver_receive(n->driver, bytes, len, now);
    rt_quiesce_settle(n, now);
}

void rt_loop_recv_direct(struct craft_node *n, uint64_t from, const uint8_t *bytes, size_t len)
{
    /* n->failed (which failed_seen follows): a write that failed on this thread earlier in
     * the round must stop the stepping at once, before its REQ_FAILED is taken. */
    if (atomic_load(&n->failed) != CRAFT_OK || atomic_load(&n->stopping)) {
        return;
    }
    uint64_t now = rt_now_ms();
    struct host_msg hm;
    if (host_msg_is(bytes, len)) {
        if (host_msg_decode(bytes, len, &hm) && hm.kind != HOST_MSG_PING) {
            rt_quiesce_recv(n, from, &hm, now);
        }
        return;
    }
    receive(n, bytes, len, now);
}

static void emit(struct craft_node *n, uint8_t type, enum craft_role role, uint64_t id,
                 uint64_t term, int err)
{
    if (n->cfg.observer != NULL) {
        struct craft_event ev = {.type = type, .role = role, .id = id, .term = term, .err = err};
        n->cfg.observer(n->cfg.observer_ctx, &ev);
    }
}

/* ---- the address book ---- */

static void learn_addrs(struct craft_node *n, const uint8_t *body, size_t len)
{
    struct rt_book tmp = {0};
    if (!rt_addrs_apply(&tmp, body, len)) {
        return;
    }
    for (size_t i = 0; i < tmp.n; i++) {
        rt_book_set(&n->loop_book, tmp.s[i].id, tmp.s[i].addr);
        rt_host_learn_peer(n->host, tmp.s[i].id, tmp.s[i].addr);
    }
    pthread_mutex_lock(&n->pub_mu);
    n->pub_book = n->loop_book;
    pthread_mutex_unlock(&n->pub_mu);
}

/* ---- futures waiting for an index ---- */

static void futs_fail_from_tail(struct craft_node *n, uint64_t index)
{
    /* A proposal at `index` means this leader's log has its own entry there: any older
     * future at or after it was truncated away and can never commit. Keeps the list
     * sorted by index. */
    while (n->futs_tail != NULL && n->futs_tail->index >= index) {
        struct craft_future *f = n->futs_head, *prev = NULL;
        while (f != n->futs_tail) {
            prev = f;
            f = f->next;
        }
        if (prev == NULL) {
            n->futs_head = n->futs_tail = NULL;
        } else {
            prev->next = NULL;
            n->futs_tail = prev;
        }
        rt_future_complete(f, CRAFT_ESTALE, 0, NULL);
    }
}

static void futs_push(struct craft_node *n, struct craft_future *f, uint64_t index, uint64_t term)
{
    futs_fail_from_tail(n, index);
    f->index = index;
    f->term = term;
    f->next = NULL;
    if (n->futs_tail != NULL) {
        n->futs_tail->next = f;
    } else {
        n->futs_head = f;
    }
    n->futs_tail = f;
}

static struct craft_future *futs_pop(struct craft_node *n)
{
    struct craft_future *f = n->futs_head;
    n->futs_head = f->next;
    if (n->futs_head == NULL) {
        n->futs_tail = NULL;
    }
    return f;
}

static void fail_list(struct craft_future **head, int err)
{
    while (*head != NULL) {
        struct craft_future *f = *head;
        *head = f->next;
        rt_future_complete(f, err, 0, NULL);
    }
}

/* ---- ports ---- */

static void port_send(void *ctx, uint64_t to, const uint8_t *bytes, size_t len)
{
    struct craft_node *n = ctx;
    (void)craft_transport_send(n->host->transport, to, n->group, bytes, len);
}

/* Whether the loop writes batch b itself, at once, instead of handing it to the disk thread:
 * on a follower, whose acknowledgement waits for the write anyway (the two hand-offs, loop
 * -> disk -> loop, cost more than the loop's wait on this VM), while the disk thread is
 * idle, so the stores have one user at a time and writes stay in seq order. A leader's
 * batch is written on the loop too, but after the round's messages left (defer_here).
 * Snapshot chunks go to the disk thread (the snapshot store's lock, larger writes). */
static bool write_here(struct craft_node *n, const struct craft_batch *b)
{
    /* Never the host's shared log: the loop steps every group and must not wait for a
     * write of all of them (and the disk thread writes it meanwhile). */
    return n->glog == NULL && !b->has_snap_chunk && n->disk_done_seq == n->disk_submitted_seq &&
           n->disk_jobs_pushed ==
               atomic_load_explicit(&n->disk_jobs_finished, memory_order_acquire) &&
           craft_core_role(craft_driver_core(n->driver)) == CRAFT_FOLLOWER;
}

/* Whether a leader's batch waits for the end of the round and is written on the loop: a
 * group with stores of its own (never the host's shared log), while the disk thread has
 * none of its jobs. The write then starts as soon as the round's messages left (its
 * followers write theirs meanwhile, thesis 10.2.1) without the two hand-offs loop -> disk
 * thread -> loop, and its completion is stepped in the next round. */
static bool defer_here(struct craft_node *n)
{
    return n->glog == NULL && n->disk_done_seq == n->disk_submitted_seq &&
           n->disk_jobs_pushed ==
               atomic_load_explicit(&n->disk_jobs_finished, memory_order_acquire) &&
           craft_core_role(craft_driver_core(n->driver)) == CRAFT_LEADER;
}

/* Queues job j: behind the round's deferred jobs if there are some (order is the log's),
 * deferred itself if defer (a leader's batch, defer_here), else for the disk thread. */
static void submit_job(struct craft_node *n, struct rt_disk_job *j, bool defer)
{
    if (n->deferred_head == NULL && !defer) {
        rt_disk_push(n, j);
        return;
    }
    j->item.next = NULL;
    if (n->deferred_tail != NULL) {
        n->deferred_tail->item.next = &j->item;
    } else {
        n->deferred_head = j;
    }
    n->deferred_tail = j;
}

/* After the round's flush: the deferred jobs, written in order on the loop; their
 * completion is queued for the group's next round (where it is stepped before that
 * round's messages leave). */
static void write_deferred(struct craft_node *n)
{
    uint64_t done = 0;
    int rc = atomic_load(&n->failed);
    while (n->deferred_head != NULL) {
        struct rt_disk_job *j = n->deferred_head;
        n->deferred_head = (struct rt_disk_job *)j->item.next;
        if (rc == CRAFT_OK) {
            rc = rt_disk_run_job(n, j);
            if (j->kind == DISK_BATCH) {
                done = j->seq;
            }
        }
        rt_disk_job_free(j);
    }
    n->deferred_tail = NULL;
    if (rc != CRAFT_OK) {
        rt_fail(n, rc, "disk write"); /* nothing more is acknowledged */
        return;
    }
    if (done != 0) {
        rt_post_persisted(n, done);
    }
}

/* Address records in a batch's entries: the loop learns them as they are persisted. */
static void learn_batch_addrs(struct craft_node *n, const struct craft_batch *b)
{
    for (size_t i = 0; i < b->n_entries; i++) {
        const struct craft_entry *e = &b->entries[i];
        if (e->type == CRAFT_ENTRY_NORMAL && e->len > 0 && e->data[0] == TAG_ADDRS) {
            learn_addrs(n, e->data + 1, e->len - 1);
        }
    }
}

static void port_persist(void *ctx, const struct craft_batch *b)
{
    struct craft_node *n = ctx;
    if (atomic_load(&n->failed) != CRAFT_OK) {
        /* A failed node writes nothing more (a later batch written after a failed one
         * could leave a log that no longer follows its snapshot or its hard state) and
         * acknowledges nothing. */
        return;
    }
    if (b->truncate_from != 0) {
        futs_fail_from_tail(n, b->truncate_from);
    }
    if (b->snap_install && !b->snap_keep_log) {
        futs_fail_from_tail(n, b->snap_meta.index + 1);
    }
    bool empty = !b->has_hard_state && b->truncate_from == 0 && b->n_entries == 0 &&
                 !b->has_snap_chunk;
    if (empty && n->disk_done_seq == n->disk_submitted_seq) {
        /* Nothing to write and nothing ahead of it: durable now. */
        n->disk_submitted_seq = n->disk_done_seq = b->seq;
        craft_driver_persisted(n->driver, b->seq, rt_now_ms());
        return;
    }
    learn_batch_addrs(n, b);
    if (write_here(n, b)) {
        n->disk_submitted_seq = b->seq;
        int rc = rt_disk_write_now(n, b);
        if (rc != CRAFT_OK) {
            rt_fail(n, rc, "disk write"); /* nothing more is acknowledged */
            return;
        }
        n->disk_done_seq = b->seq;
        craft_driver_persisted(n->driver, b->seq, rt_now_ms());
        return;
    }
    struct rt_disk_job *j = calloc(1, sizeof *j);
    size_t bytes = b->has_snap_chunk ? b->snap_chunk_len : 0;
    for (size_t i = 0; i < b->n_entries; i++) {
        bytes += b->entries[i].len;
    }
    j->buf = malloc(bytes ? bytes : 1);
    j->entries = b->n_entries ? malloc(b->n_entries * sizeof *j->entries) : NULL;
    CRAFT_ASSERT(j != NULL && j->buf != NULL && (b->n_entries == 0 || j->entries != NULL));
    j->kind = DISK_BATCH;
    j->seq = b->seq;
    j->has_hs = b->has_hard_state;
    j->hs = b->hs;
    j->truncate_from = b->truncate_from;
    size_t off = 0;
    for (size_t i = 0; i < b->n_entries; i++) {
        const struct craft_entry *e = &b->entries[i];
        j->entries[i] = *e;
        if (e->len > 0) {
            memcpy(j->buf + off, e->data, e->len);
            j->entries[i].data = j->buf + off;
            off += e->len;
        }
    }
    j->n_entries = b->n_entries;
    if (b->has_snap_chunk) {
        j->has_chunk = true;
        j->install = b->snap_install;
        j->keep_log = b->snap_keep_log;
        j->meta = b->snap_meta;
        j->chunk_off = b->snap_offset;
        j->chunk_len = b->snap_chunk_len;
        j->chunk = j->buf + off;
        if (b->snap_chunk_len > 0) {
            memcpy(j->chunk, b->snap_chunk, b->snap_chunk_len);
        }
    }
    bool defer = n->deferred_head == NULL && defer_here(n);
    if (n->disk_done_seq == n->disk_submitted_seq) {
        n->disk_oldest_ms = rt_now_ms();
    }
    n->disk_submitted_seq = b->seq;
    submit_job(n, j, defer);
}

/* Whether the loop applies a batch of count commands itself (apply_on_loop): nothing of
 * the group is queued for its apply thread, and the loop is the only one that queues, so
 * the state machine is the loop's until it queues again. */
static bool apply_here(struct craft_node *n, size_t count)
{
    if (!n->cfg.apply_on_loop || count > RT_APPLY_ON_LOOP_ENTRIES_MAX ||
        n->apply_pushed != atomic_load_explicit(&n->apply_finished, memory_order_acquire)) {
        return false;
    }
    if (n->host->loop_scratch == NULL) {
        n->host->loop_scratch = rt_apply_scratch_new();
    }
    return n->host->loop_scratch != NULL;
}

static void port_apply(void *ctx, const struct craft_entry *entries, size_t count)
{
    struct craft_node *n = ctx;
    /* The futures waiting for these indexes: ours if the term matches. */
    struct craft_future **futs = NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++) {
        const struct craft_entry *e = &entries[i];
        bytes += e->len;
        while (n->futs_head != NULL && n->futs_head->index <= e->index) {
            struct craft_future *f = futs_pop(n);
            if (f->index == e->index && f->term == e->term) {
                if (futs == NULL) {
                    futs = calloc(count, sizeof *futs);
                    CRAFT_ASSERT(futs != NULL); /* TODO(limits) */
                }
                futs[i] = f;
            } else {
                rt_future_complete(f, CRAFT_ESTALE, 0, NULL);
            }
        }
    }
    n->since_snap_entries += count;
    n->since_snap_bytes += bytes;
    if (apply_here(n, count)) {
        rt_fsm_apply_now(n, entries, count, futs, n->host->loop_scratch); /* no copy */
        return;
    }
    struct rt_fsm_job *j = calloc(1, sizeof *j);
    CRAFT_ASSERT(j != NULL); /* TODO(limits) */
    j->buf = malloc(bytes ? bytes : 1);
    j->entries = malloc(count * sizeof *j->entries);
    CRAFT_ASSERT(j->buf != NULL && j->entries != NULL); /* TODO(limits) */
    j->kind = FSM_APPLY;
    j->n = count;
    j->futs = futs;
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        const struct craft_entry *e = &entries[i];
        j->entries[i] = *e;
        if (e->len > 0) {
            memcpy(j->buf + off, e->data, e->len);
            j->entries[i].data = j->buf + off;
            off += e->len;
        }
    }
    rt_fsm_push(n, j);
}

static void port_restore(void *ctx, const struct craft_snapshot_meta *meta)
{
    struct craft_node *n = ctx;
    /* Futures covered by the snapshot: their commands may or may not be in it. */
    while (n->futs_head != NULL && n->futs_head->index <= meta->index) {
        rt_future_complete(futs_pop(n), CRAFT_ETIMEOUT, 0, NULL);
    }
    struct rt_fsm_job *j = calloc(1, sizeof *j);
    CRAFT_ASSERT(j != NULL);
    j->kind = FSM_RESTORE;
    j->meta = *meta;
    n->since_snap_entries = n->since_snap_bytes = 0;
    rt_fsm_push(n, j);
}

static int port_snapshot_read(void *ctx, const struct craft_snapshot_meta *meta,
                              uint64_t offset, uint8_t *buf, uint32_t cap, uint32_t *len,
                              bool *last)
{
    struct craft_node *n = ctx;
    /* Never wait for the store on the loop: if a snapshot is being written or received
     * right now, skip this chunk; the core sends it again. */
    if (pthread_mutex_trylock(&n->snap_mu) != 0) {
        return CRAFT_EBUSY;
    }
    int rc = CRAFT_OK;
    if (n->send_reader != NULL && (n->send_info.meta.index != meta->index ||
                                   n->send_info.meta.term != meta->term)) {
        n->snaps->reader_close(n->snaps, n->send_reader);
        n->send_reader = NULL;
    }
    if (n->send_reader == NULL) {
        rc = n->snaps->open_newest(n->snaps, &n->send_info, &n->send_reader);
        if (rc == CRAFT_OK && (n->send_info.meta.index != meta->index ||
                               n->send_info.meta.term != meta->term)) {
            n->snaps->reader_close(n->snaps, n->send_reader);
            n->send_reader = NULL;
            rc = CRAFT_ENOTFOUND;
        }
    }
    size_t got = 0;
    if (rc == CRAFT_OK) {
        rc = n->snaps->read(n->snaps, n->send_reader, buf, cap, offset, &got);
    }
    pthread_mutex_unlock(&n->snap_mu);
    if (rc == CRAFT_OK) {
        *len = (uint32_t)got;
        *last = offset + got >= n->send_info.size;
    }
    return rc;
}

static void post_fsm_read(struct craft_node *n, struct craft_future *f, uint64_t index)
{
    /* Applied through index already (the common case of a read with no write in flight):
     * complete it here and spare the state machine thread a wake-up. Not on a failed node:
     * a failed restore may have left the state machine half replaced, and the state
     * machine thread fails the reads it gets (CRAFT_ESHUTDOWN). */
    uint64_t applied = atomic_load_explicit(&n->pub_applied, memory_order_acquire);
    if (applied >= index && atomic_load(&n->failed) == CRAFT_OK) {
        rt_future_complete(f, CRAFT_OK, applied, NULL);
        return;
    }
    struct rt_fsm_job *j = calloc(1, sizeof *j);
    CRAFT_ASSERT(j != NULL);
    j->kind = FSM_READ;
    j->f = f;
    j->index = index;
    rt_fsm_push(n, j);
}

static void port_read(void *ctx, const struct craft_read_state *rs)
{
    struct craft_node *n = ctx;
    struct craft_future **pp = &n->reads;
    while (*pp != NULL && (*pp)->ctx != rs->ctx) {
        pp = &(*pp)->next;
    }
    if (*pp == NULL) {
        return;
    }
    struct craft_future *f = *pp;
    *pp = f->next;
    if (rs->err != CRAFT_OK) {
        rt_future_complete(f, rs->err, 0, NULL);
    } else if (f->kind == FUT_VERIFY) {
        rt_future_complete(f, CRAFT_OK, rs->index, NULL);
    } else {
        /* Served once the state machine thread has applied through index: it is in that
         * thread's queue after the entries up to index. */
        post_fsm_read(n, f, rs->index);
    }
}

static void port_caught_up(void *ctx, uint64_t id)
{
    struct craft_node *n = ctx;
    /* Ports may not call into the driver: promote after the batch. */
    if (n->cfg.auto_promote && n->n_promote < CRAFT_CONF_NODES_MAX) {
        n->promote[n->n_promote++] = id;
    }
}

/* The core stopped (out of memory in a step): the node fails as after a disk error (the
 * event; waiting futures answered when it is destroyed); its storage is as of the last
 * batch. */
static void port_failed(void *ctx, int err)
{
    rt_fail(ctx, err, "memory (the protocol core)");
}

void rt_loop_ports(struct craft_driver_ports *p, struct craft_node *n);
void rt_loop_ports(struct craft_driver_ports *p, struct craft_node *n)
{
    *p = (struct craft_driver_ports){.ctx = n,
                                     .send = port_send,
                                     .persist = port_persist,
                                     .apply = port_apply,
                                     .restore = port_restore,
                                     .snapshot_read = port_snapshot_read,
                                     .read = port_read,
                                     .caught_up = port_caught_up,
                                     .failed = port_failed};
}

/* ---- requests ---- */

static void propose_apply(struct craft_node *n, struct rt_req *r, uint64_t now, bool *blocked)
{
    uint64_t index, term;
    int rc = craft_driver_propose(n->driver, r->data, r->len, now, &index, &term);
    if (rc == CRAFT_EBUSY && (r->deadline == 0 || now < r->deadline)) {
        *blocked = true; /* uncommitted bytes at the limit: retry after the next commits */
        return;
    }
    *blocked = false;
    if (rc == CRAFT_EBUSY) {
        rc = CRAFT_ETIMEOUT;
    }
    if (rc != CRAFT_OK) {
        rt_future_complete(r->f, rc, 0, NULL);
    } else {
        futs_push(n, r->f, index, term);
    }
    free(r);
}

static void block(struct craft_node *n, struct rt_req *r)
{
    r->item.next = NULL;
    if (n->blocked_tail != NULL) {
        n->blocked_tail->item.next = &r->item;
    } else {
        n->blocked_head = r;
    }
    n->blocked_tail = r;
}

static void retry_blocked(struct craft_node *n, uint64_t now)
{
    while (n->blocked_head != NULL) {
        struct rt_req *r = n->blocked_head;
        bool blocked;
        struct rt_req *next = (struct rt_req *)r->item.next;
        propose_apply(n, r, now, &blocked);
        if (blocked) {
            return; /* order kept: the rest waits behind it */
        }
        n->blocked_head = next;
        if (next == NULL) {
            n->blocked_tail = NULL;
        }
    }
}

static void do_conf(struct craft_node *n, struct rt_req *r, uint64_t now)
{
    struct rt_conf_req *c = r->conf;
    struct craft_core_status st;
    craft_core_status(craft_driver_core(n->driver), &st);
    int rc = CRAFT_OK;
    if (st.role != CRAFT_LEADER) {
        rc = CRAFT_ENOTLEADER;
    } else if (c->prev_index != 0 && c->prev_index != st.conf_index) {
        rc = CRAFT_ESTALE;
    }
    if (rc == CRAFT_OK && !c->joint && c->n == 1 &&
        (c->changes[0].type == CRAFT_CONF_REMOVE || c->demote)) {
        uint64_t id = c->changes[0].id;
        bool voter = false, learner = false;
        for (uint32_t k = 0; k < st.conf.n_voters; k++) voter = voter || st.conf.voters[k] == id;
        for (uint32_t k = 0; k < st.conf.n_learners; k++) learner = learner || st.conf.learners[k] == id;
        if (!voter && !learner) {
            rc = CRAFT_EUNKNOWNPEER;
        }
    }
    uint64_t index = 0, term = 0, cindex = 0, cterm = 0;
    if (rc == CRAFT_OK) {
        rc = craft_driver_propose_conf_change(n->driver, c->changes, c->n, c->joint, now, &cindex,
                                              &cterm);
    }
    if (rc == CRAFT_OK && c->n_addrs > 0) {
        /* The addresses follow the change in the same batch (the loop holds the driver),
         * so every node learns them with the configuration that names the new servers;
         * a refused change records no address. */
        uint8_t buf[1 + CRAFT_CONF_NODES_MAX * (9 + CRAFT_ADDR_BYTES_MAX)];
        buf[0] = TAG_ADDRS;
        size_t len = rt_addrs_encode(c->addrs, c->n_addrs, buf + 1, sizeof buf - 1);
        CRAFT_ASSERT(len > 0);
        rc = craft_driver_propose(n->driver, buf, (uint32_t)(len + 1), now, &index, &term);
    }
    if (rc != CRAFT_OK) {
        rt_future_complete(r->f, rc, 0, NULL);
    } else {
        futs_push(n, r->f, cindex, cterm);
    }
}

static void start_read(struct craft_node *n, struct craft_future *f, uint64_t now, bool leader_only)
{
    struct craft_core_status st;
    craft_core_status(craft_driver_core(n->driver), &st);
    if (leader_only && st.role != CRAFT_LEADER) {
        rt_future_complete(f, CRAFT_ENOTLEADER, 0, NULL);
        return;
    }
    f->ctx = ++n->next_read_ctx;
    int rc = craft_driver_read_index(n->driver, f->ctx, now);
    if (rc != CRAFT_OK) {
        rt_future_complete(f, rc, 0, NULL);
        return;
    }
    f->next = n->reads;
    n->reads = f;
}

static void start_snapshot(struct craft_node *n)
{
    struct rt_fsm_job *j = calloc(1, sizeof *j);
    CRAFT_ASSERT(j != NULL);
    j->kind = FSM_SNAPSHOT;
    n->snapshot_running = true;
    rt_fsm_push(n, j);
}

/* How many entries before a snapshot's index stay in the log: trailing_entries, but not
 * more than trailing_bytes of them (so large entries do not pin memory). */
static uint64_t retain_for(struct craft_node *n, uint64_t index)
{
    struct craft_core *core = craft_driver_core(n->driver);
    uint64_t bytes = 0, count = 0;
    while (count < n->cfg.trailing_entries && index > count) {
        const struct craft_entry *e = craft_core_entry(core, index - count);
        if (e == NULL || bytes + e->len > n->cfg.trailing_bytes) {
            break;
        }
        bytes += e->len;
        count++;
    }
    return count;
}

static void snap_done(struct craft_node *n, uint64_t index, int err)
{
    n->snapshot_running = false;
    if (index > 0) {
        uint64_t retain = retain_for(n, index);
        craft_driver_snapshot_taken(n->driver, index, retain);
        if (index > retain + 1) {
            struct rt_disk_job *j = calloc(1, sizeof *j);
            CRAFT_ASSERT(j != NULL);
            j->kind = DISK_COMPACT;
            j->compact_through = index - retain - 1;
            submit_job(n, j, false);
        }
        n->since_snap_entries = n->since_snap_bytes = 0;
    }
    while (n->snapshot_waiters != NULL) {
        struct craft_future *f = n->snapshot_waiters;
        n->snapshot_waiters = f->next;
        rt_future_complete(f, index > 0 ? CRAFT_OK : err, index, NULL);
    }
    if (n->snapshot_next != NULL) {
        n->snapshot_waiters = n->snapshot_next;
        n->snapshot_next = NULL;
        start_snapshot(n);
    }
}

static void fill_stats(struct craft_node *n, struct craft_stats *s)
{
    struct craft_core *core = craft_driver_core(n->driver);
    struct craft_core_status st;
    craft_core_status(core, &st);
    struct craft_driver_stats ds;
    craft_driver_stats(n->driver, &ds);
    memset(s, 0, sizeof *s);
    s->id = st.id;
    s->term = st.term;
    s->leader = st.leader;
    s->vote = st.vote;
    s->role = st.role;
    s->commit = st.commit;
    s->applied = st.applied;
    s->last_index = st.last_index;
    s->last_term = st.last_term;
    s->first_index = st.first_index;
    s->snap_index = st.snap_index;
    s->persisted = st.persisted;
    s->conf_index = st.conf_index;
    s->conf = st.conf;
    s->n_peers = craft_core_peers(core, s->peers, CRAFT_STATS_PEERS_MAX);
    s->quiesced = n->quiet.quiesced;
    size_t blocked = 0;
    for (struct rt_req *r = n->blocked_head; r != NULL; r = (struct rt_req *)r->item.next) {
        blocked++;
    }
    s->proposals_queued = blocked + rt_queue_bounded_len(&n->inbox);
    s->disk_jobs_queued = n->disk_jobs_pushed - atomic_load(&n->disk_jobs_finished);
    s->apply_jobs_queued = n->apply_pushed - atomic_load(&n->apply_finished);
    s->disk_writes = atomic_load(&n->n_disk_writes);
    s->disk_syncs = atomic_load(&n->n_disk_syncs);
    s->entries_written = atomic_load(&n->n_entries_written);
    s->entries_applied = atomic_load(&n->n_entries_applied);
    s->snapshots_taken = atomic_load(&n->n_snapshots_taken);
    s->snapshots_installed = atomic_load(&n->n_snapshots_installed);
    s->msgs_sent = ds.msgs_sent;
    s->msgs_received = ds.msgs_received;
    s->bad_msgs_received = ds.bad_msgs_received;
    s->leader_changes = ds.leader_changes;
    rt_hist_read(&n->disk_write_us, &s->disk_write_us);
    rt_hist_read(&n->apply_us, &s->apply_us);
    s->failed = atomic_load(&n->failed);
}

/* Handles one request; returns false if r was kept (blocked proposal). */
static void handle(struct craft_node *n, struct rt_req *r, uint64_t now)
{
    bool failed = n->failed_seen;
    /* Work wakes a quiesced group; a stats request or a completion is none. */
    if (r->kind != REQ_MSG && r->kind != REQ_STATS && r->kind != REQ_PERSISTED &&
        r->kind != REQ_SNAP_DONE) {
        rt_quiesce_wake(n, true, now);
    }
    switch (r->kind) {
    case REQ_MSG: {
        struct host_msg hm;
        if (host_msg_is(r->data, r->len)) {
            if (!failed && host_msg_decode(r->data, r->len, &hm) && hm.kind != HOST_MSG_PING) {
                rt_quiesce_recv(n, r->a, &hm, now);
            }
        } else if (!failed) {
            receive(n, r->data, r->len, now);
        }
        break;
    }
    case REQ_APPLY: {
        if (failed) {
            break;
        }
        if (n->blocked_head != NULL) {
            block(n, r); /* keep submission order behind the blocked ones */
            return;
        }
        bool blocked;
        propose_apply(n, r, now, &blocked);
        if (blocked) {
            block(n, r);
        }
        return;
    }
    case REQ_CONF:
        if (!failed) {
            do_conf(n, r, now);
            r->f = NULL;
        }
        break;
    case REQ_BARRIER:
    case REQ_VERIFY:
    case REQ_READ_INDEX:
        if (!failed) {
            start_read(n, r->f, now, r->kind != REQ_READ_INDEX);
            r->f = NULL;
        }
        break;
    case REQ_READ_LEASE:
        if (!failed) {
            uint64_t index;
            int rc = craft_driver_read_lease(n->driver, now, &index);
            if (rc != CRAFT_OK) {
                rt_future_complete(r->f, rc, 0, NULL);
            } else {
                r->f->ctx = index;
                r->f->next = n->lease_reads;
                n->lease_reads = r->f;
            }
            r->f = NULL;
        }
        break;
    case REQ_TRANSFER:
        if (!failed) {
            int rc = n->transfer_f != NULL
                         ? CRAFT_ETRANSFER
                         : craft_driver_transfer_leadership(n->driver, r->a, now);
            if (rc != CRAFT_OK) {
                rt_future_complete(r->f, rc, 0, NULL);
            } else {
                n->transfer_f = r->f;
            }
            r->f = NULL;
        }
        break;
    case REQ_SNAPSHOT:
        if (!failed) {
            if (n->snapshot_running) {
                r->f->next = n->snapshot_next;
                n->snapshot_next = r->f;
            } else {
                r->f->next = n->snapshot_waiters;
                n->snapshot_waiters = r->f;
                start_snapshot(n);
            }
            r->f = NULL;
        }
        break;
    case REQ_STATS:
        fill_stats(n, r->stats);
        rt_future_complete(r->f, CRAFT_OK, 0, NULL);
        r->f = NULL;
        break;
    case REQ_PERSISTED:
        if (!failed && r->a > n->disk_done_seq) {
            n->disk_done_seq = r->a;
            n->disk_oldest_ms = n->disk_done_seq == n->disk_submitted_seq ? 0 : now;
            craft_driver_persisted(n->driver, r->a, now);
        }
        break;
    case REQ_SNAP_DONE:
        snap_done(n, r->a, (int)r->b);
        break;
    case REQ_FAILED:
        n->failed_seen = true;
        emit(n, CRAFT_EVENT_FAILED, CRAFT_FOLLOWER, n->cfg.id, 0, (int)r->b);
        break;
    default:
        CRAFT_UNREACHABLE();
    }
    if (r->f != NULL) {
        rt_future_complete(r->f, CRAFT_ESHUTDOWN, 0, NULL);
    }
    free(r->conf);
    free(r);
}

static void conf_events(struct craft_node *n, const struct craft_conf *c, uint64_t term)
{
    const struct craft_conf *o = &n->last_conf;
    uint64_t now_ids[3 * CRAFT_CONF_NODES_MAX], old_ids[3 * CRAFT_CONF_NODES_MAX];
    size_t nn = 0, no = 0;
    for (uint32_t i = 0; i < c->n_voters; i++) now_ids[nn++] = c->voters[i];
    for (uint32_t i = 0; i < c->n_voters_outgoing; i++) now_ids[nn++] = c->voters_outgoing[i];
    for (uint32_t i = 0; i < c->n_learners; i++) now_ids[nn++] = c->learners[i];
    for (uint32_t i = 0; i < o->n_voters; i++) old_ids[no++] = o->voters[i];
    for (uint32_t i = 0; i < o->n_voters_outgoing; i++) old_ids[no++] = o->voters_outgoing[i];
    for (uint32_t i = 0; i < o->n_learners; i++) old_ids[no++] = o->learners[i];
    for (size_t i = 0; i < nn; i++) {
        bool found = false;
        for (size_t k = 0; k < no && !found; k++) found = old_ids[k] == now_ids[i];
        for (size_t k = 0; k < i && !found; k++) found = now_ids[k] == now_ids[i];
        if (!found) {
            emit(n, CRAFT_EVENT_PEER_ADDED, CRAFT_FOLLOWER, now_ids[i], term, 0);
        }
    }
    for (size_t i = 0; i < no; i++) {
        bool found = false;
        for (size_t k = 0; k < nn && !found; k++) found = now_ids[k] == old_ids[i];
        for (size_t k = 0; k < i && !found; k++) found = old_ids[k] == old_ids[i];
        if (!found) {
            emit(n, CRAFT_EVENT_PEER_REMOVED, CRAFT_FOLLOWER, old_ids[i], term, 0);
        }
    }
    n->last_conf = *c;
}

/* After each round: events, transfer outcome, disk stall, promotions, automatic
 * snapshots. */
static void after_round(struct craft_node *n, uint64_t now)
{
    struct craft_core *core = craft_driver_core(n->driver);
    struct craft_core_status st;
    craft_core_status(core, &st);
    size_t keep = 0;
    for (size_t i = 0; i < n->n_promote && st.role == CRAFT_LEADER; i++) {
        uint64_t id = n->promote[i];
        bool learner = false;
        for (uint32_t k = 0; k < st.conf.n_learners; k++) learner = learner || st.conf.learners[k] == id;
        if (!learner) continue;
        struct craft_conf_change c = {.type = CRAFT_CONF_ADD_VOTER, .id = id};
        uint64_t index, term;
        int rc = craft_driver_propose_conf_change(n->driver, &c, 1, false, now, &index, &term);
        if (rc == CRAFT_OK) {
            emit(n, CRAFT_EVENT_PROMOTED, CRAFT_LEADER, id, term, 0);
        } else if (rc == CRAFT_ECONFCHANGE || rc == CRAFT_EBUSY) {
            n->promote[keep++] = id;
        }
    }
    n->n_promote = st.role == CRAFT_LEADER ? keep : 0;
    craft_core_status(core, &st); /* a stopped core: a follower without a leader */
    if (st.role == CRAFT_LEADER && n->failed_seen) {
        /* A failed node acknowledges nothing more: leading on would hold the cluster until
         * the disk-stall bound; stepping down lets the others elect at once. */
        fprintf(stderr, "craft node %" PRIu64 ": failed while leading: stepping down\n",
                n->cfg.id);
        craft_driver_step_down(n->driver, now);
        craft_core_status(core, &st);
    }
    if (st.role == CRAFT_LEADER && n->cfg.disk_stall_ms != 0 && n->disk_oldest_ms != 0 &&
        now > n->disk_oldest_ms && now - n->disk_oldest_ms > n->cfg.disk_stall_ms) {
        fprintf(stderr,
                "craft node %" PRIu64 ": disk write pending for %" PRIu64 " ms: stepping down\n",
                n->cfg.id, now - n->disk_oldest_ms);
        craft_driver_step_down(n->driver, now);
        emit(n, CRAFT_EVENT_DISK_STALL, CRAFT_FOLLOWER, n->cfg.id, st.term, 0);
        craft_core_status(core, &st);
    }
    if (st.role != n->last_role) {
        n->last_role = st.role;
        atomic_store(&n->pub_role, (int)st.role);
        emit(n, CRAFT_EVENT_ROLE, st.role, n->cfg.id, st.term, 0);
    }
    atomic_store(&n->pub_term, st.term);
    if (st.leader != n->last_leader) {
        n->last_leader = st.leader;
        atomic_store(&n->pub_leader, st.leader);
        emit(n, CRAFT_EVENT_LEADER, st.role, st.leader, st.term, 0);
    }
    if (memcmp(&st.conf, &n->last_conf, sizeof st.conf) != 0) {
        conf_events(n, &st.conf, st.term);
    }
    if (n->transfer_f != NULL) {
        if (st.leader != CRAFT_NONE && st.leader != n->cfg.id) {
            rt_future_complete(n->transfer_f, CRAFT_OK, 0, NULL);
            n->transfer_f = NULL;
        } else if (st.role == CRAFT_LEADER && st.transfer_target == CRAFT_NONE) {
            rt_future_complete(n->transfer_f, CRAFT_ETIMEOUT, 0, NULL);
            n->transfer_f = NULL;
        }
    }
    if (!n->snapshot_running && n->fsm.snapshot != NULL && !n->failed_seen &&
        ((n->cfg.snapshot_threshold_entries != 0 &&
          n->since_snap_entries >= n->cfg.snapshot_threshold_entries) ||
         (n->cfg.snapshot_threshold_bytes != 0 &&
          n->since_snap_bytes >= n->cfg.snapshot_threshold_bytes))) {
        n->since_snap_entries = n->since_snap_bytes = 0;
        start_snapshot(n);
    }
}

static void shutdown_fail_all(struct craft_node *n)
{
    while (n->blocked_head != NULL) {
        struct rt_req *r = n->blocked_head;
        n->blocked_head = (struct rt_req *)r->item.next;
        rt_future_complete(r->f, CRAFT_ESHUTDOWN, 0, NULL);
        free(r);
    }
    n->blocked_tail = NULL;
    while (n->futs_head != NULL) {
        rt_future_complete(futs_pop(n), CRAFT_ESHUTDOWN, 0, NULL);
    }
    fail_list(&n->reads, CRAFT_ESHUTDOWN);
    fail_list(&n->lease_reads, CRAFT_ESHUTDOWN);
    fail_list(&n->snapshot_waiters, CRAFT_ESHUTDOWN);
    fail_list(&n->snapshot_next, CRAFT_ESHUTDOWN);
    if (n->transfer_f != NULL) {
        rt_future_complete(n->transfer_f, CRAFT_ESHUTDOWN, 0, NULL);
        n->transfer_f = NULL;
    }
}

/* ---- one group's share of a host round (host.c runs the rounds) ---- */

uint64_t rt_group_wake(struct craft_node *n, uint64_t now)
{
    if (n->quiet.quiesced) {
        return UINT64_MAX; /* nothing in flight: only work wakes it */
    }
    uint64_t wake = craft_driver_next_timeout(n->driver);
    if (n->blocked_head != NULL && wake > now + 10) {
        wake = now + 10; /* blocked proposals have deadlines */
    }
    if (n->disk_oldest_ms != 0 && n->cfg.disk_stall_ms != 0 &&
        wake > n->disk_oldest_ms + n->cfg.disk_stall_ms + 1) {
        wake = n->disk_oldest_ms + n->cfg.disk_stall_ms + 1;
    }
    return wake;
}

void rt_group_hold(struct craft_node *n)
{
    craft_driver_hold(n->driver);
}

void rt_group_step(struct craft_node *n, struct rt_item *it, uint64_t now)
{
    bool stopping = atomic_load(&n->stopping);
    while (it != NULL) {
        struct rt_req *r = (struct rt_req *)it;
        it = it->next;
        if (stopping && r->kind != REQ_STATS) {
            if (r->f != NULL) {
                rt_future_complete(r->f, CRAFT_ESHUTDOWN, 0, NULL);
            }
            free(r->conf);
            free(r);
            continue;
        }
        handle(n, r, now);
    }
    if (!stopping && !n->failed_seen && !n->quiet.quiesced &&
        now >= craft_driver_next_timeout(n->driver)) {
        craft_driver_tick(n->driver, now);
    }
    if (!stopping && !n->failed_seen) {
        retry_blocked(n, now);
    }
    craft_driver_release(n->driver);
}

void rt_group_after_send(struct craft_node *n)
{
    if (n->deferred_head != NULL) {
        write_deferred(n);
    }
    if (n->lease_reads != NULL) {
        struct craft_core_status st;
        craft_core_status(craft_driver_core(n->driver), &st);
        struct craft_future **pp = &n->lease_reads;
        while (*pp != NULL) {
            struct craft_future *f = *pp;
            if (f->ctx <= st.applied) {
                *pp = f->next;
                post_fsm_read(n, f, f->ctx);
            } else {
                pp = &f->next;
            }
        }
    }
    if (!atomic_load(&n->stopping)) {
        uint64_t now = rt_now_ms();
        after_round(n, now);
        rt_quiesce_check(n, now);
    }
}

void rt_group_shutdown(struct craft_node *n)
{
    CRAFT_ASSERT(n->deferred_head == NULL); /* written at the end of every round */
    rt_quiesce_leave(n);
    shutdown_fail_all(n);
}
