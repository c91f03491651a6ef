/* The shared driver: batch -> port calls, completions -> core (see driver.h).
 *
 * The one subtle rule is re-entrancy. A batch is borrowed from the core until the next call
 * on it, so while ports run we must not call into the core. Completions that ports report
 * from inside a port call (an in-memory disk acknowledges at once; the applier takes a
 * snapshot while applying) are recorded here and handled by the process loop once the
 * port returns. */
#include "runtime/driver.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "codec/msg_codec.h"

/* A message that may leave only once batch `seq` is durable. Its bytes live in the arena. */
struct held_msg {
    uint64_t seq;
    uint64_t to;
    size_t off;
    size_t len;
};

/* A batch that installed a snapshot: the state machine is restored once it is durable. */
struct held_install {
    uint64_t seq;
    struct craft_snapshot_meta meta;
};

struct craft_driver {
    struct craft_core *core;
    struct craft_driver_ports ports;
    bool failed_reported; /* ports.failed was called */
    uint32_t snapshot_chunk_bytes_max;
    uint64_t now;
    uint64_t last_leader; /* for stats.leader_changes */

    struct craft_msg_decoder decoder;
    uint8_t *enc; /* reusable encode buffer */
    size_t enc_cap;
    uint8_t *chunk; /* reusable snapshot chunk buffer, snapshot_chunk_bytes_max bytes */

    /* Held queue: FIFO in seq order, because batches are handed out in seq order. */
    uint8_t *arena;
    size_t arena_len, arena_cap;
    struct held_msg *held;
    size_t held_head, held_len, held_cap;

    struct held_install *installs;
    size_t installs_head, installs_len, installs_cap;

    /* Completions reported while a port was running (or while processing). */
    bool busy;
    bool holding; /* craft_driver_hold: no batches until release */
    bool persisted_pending;
    uint64_t persisted_seq;
    bool snap_pending;
    uint64_t snap_index, snap_retain;

    struct craft_driver_stats stats;
};

/* Grows *buf to hold at least need elements of size elem. Out of memory on the hot path is
 * not recoverable for a node: the driver cannot drop a batch without breaking Raft. */
static void grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) {
        return;
    }
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        n *= 2;
    }
    void *p = realloc(*buf, n * elem);
    CRAFT_ASSERT(p != NULL);
    *buf = p;
    *cap = n;
}

struct craft_driver *craft_driver_create(const struct craft_core_config *cfg,
                                         const struct craft_core_restore *restore,
                                         const struct craft_driver_ports *ports, uint64_t now)
{
    CRAFT_ASSERT(cfg != NULL && restore != NULL && ports != NULL);
    CRAFT_ASSERT(ports->send && ports->persist && ports->apply && ports->restore &&
                 ports->snapshot_read);
    struct craft_driver *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return NULL;
    }
    d->chunk = malloc(cfg->snapshot_chunk_bytes_max ? cfg->snapshot_chunk_bytes_max : 1);
    if (d->chunk == NULL) {
        free(d);
        return NULL;
    }
    d->core = craft_core_create(cfg, restore, now);
    if (d->core == NULL) {
        free(d->chunk);
        free(d);
        return NULL;
    }
    d->ports = *ports;
    d->snapshot_chunk_bytes_max = cfg->snapshot_chunk_bytes_max;
    d->now = now;
    craft_msg_decoder_init(&d->decoder);
    return d;
}

void craft_driver_destroy(struct craft_driver *d)
{
    if (d == NULL) {
        return;
    }
    CRAFT_ASSERT(!d->busy);
    craft_core_destroy(d->core);
    craft_msg_decoder_free(&d->decoder);
    free(d->enc);
    free(d->chunk);
    free(d->arena);
    free(d->held);
    free(d->installs);
    free(d);
}

struct craft_core *craft_driver_core(struct craft_driver *d)
{
    return d->core;
}

static size_t encode(struct craft_driver *d, const struct craft_msg *m)
{
    size_t need = craft_msg_encoded_size(m);
    grow((void **)&d->enc, &d->enc_cap, need, 1);
    size_t n = craft_msg_encode(m, d->enc);
    CRAFT_ASSERT(n == need);
    return n;
}

static void send_bytes(struct craft_driver *d, uint64_t to, const uint8_t *bytes, size_t len)
{
    d->stats.msgs_sent++;
    d->stats.bytes_sent += len;
    d->ports.send(d->ports.ctx, to, bytes, len);
}

/* Leader snapshot chunks come out of the core without data (the core holds no snapshot
 * bytes); fill them from the snapshot store. Returns false if the chunk cannot be read, in
 * which case the message is skipped and the core's retry logic resends later. */
static bool fill_snapshot_chunk(struct craft_driver *d, struct craft_msg *m)
{
    uint32_t len = 0;
    bool last = false;
    int err = d->ports.snapshot_read(d->ports.ctx, &m->snap, m->offset, d->chunk,
                                     d->snapshot_chunk_bytes_max, &len, &last);
    if (err != CRAFT_OK) {
        return false;
    }
    CRAFT_ASSERT(len <= d->snapshot_chunk_bytes_max);
    m->chunk = len ? d->chunk : NULL;
    m->chunk_len = len;
    m->last = last;
    return true;
}

static void send_msg(struct craft_driver *d, const struct craft_msg *m)
{
    if (m->type == CRAFT_MSG_SNAPSHOT) {
        struct craft_msg filled = *m;
        if (!fill_snapshot_chunk(d, &filled)) {
            return;
        }
        size_t n = encode(d, &filled);
        send_bytes(d, filled.to, d->enc, n);
        return;
    }
    size_t n = encode(d, m);
    send_bytes(d, m->to, d->enc, n);
}

static void hold_msg(struct craft_driver *d, uint64_t seq, const struct craft_msg *msg)
{
    struct craft_msg filled;
    const struct craft_msg *m = msg;
    if (msg->type == CRAFT_MSG_SNAPSHOT) {
        filled = *msg;
        if (!fill_snapshot_chunk(d, &filled)) {
            return;
        }
        m = &filled;
    }
    size_t need = craft_msg_encoded_size(m);
    grow((void **)&d->arena, &d->arena_cap, d->arena_len + need, 1);
    size_t n = craft_msg_encode(m, d->arena + d->arena_len);
    CRAFT_ASSERT(n == need);
    grow((void **)&d->held, &d->held_cap, d->held_len + 1, sizeof *d->held);
    d->held[d->held_len++] = (struct held_msg){.seq = seq, .to = m->to, .off = d->arena_len,
                                                .len = n};
    d->arena_len += n;
}

static void release_held(struct craft_driver *d, uint64_t seq)
{
    while (d->held_head < d->held_len && d->held[d->held_head].seq <= seq) {
        struct held_msg *h = &d->held[d->held_head++];
        send_bytes(d, h->to, d->arena + h->off, h->len);
    }
    /* The queue drains completely at every durable point in steady state, so resetting on
     * empty keeps the arena from growing without a memmove. */
    if (d->held_head == d->held_len) {
        d->held_head = d->held_len = 0;
        d->arena_len = 0;
    } else if (d->held_head > 1024 && d->held_head * 2 > d->held_len) {
        size_t base = d->held[d->held_head].off;
        memmove(d->arena, d->arena + base, d->arena_len - base);
        d->arena_len -= base;
        size_t keep = d->held_len - d->held_head;
        memmove(d->held, d->held + d->held_head, keep * sizeof *d->held);
        for (size_t i = 0; i < keep; i++) {
            d->held[i].off -= base;
        }
        d->held_head = 0;
        d->held_len = keep;
    }
}

static void restore_installed(struct craft_driver *d, uint64_t seq)
{
    while (d->installs_head < d->installs_len && d->installs[d->installs_head].seq <= seq) {
        struct held_install *in = &d->installs[d->installs_head++];
        d->ports.restore(d->ports.ctx, &in->meta);
    }
    if (d->installs_head == d->installs_len) {
        d->installs_head = d->installs_len = 0;
    }
}

/* Runs one batch through the ports in the order craft_batch prescribes. */
static void run_batch(struct craft_driver *d, const struct craft_batch *b)
{
    d->stats.batches++;
    d->stats.entries_persisted += b->n_entries;
    for (size_t i = 0; i < b->n_msgs; i++) {
        send_msg(d, &b->msgs[i]);
    }
    for (size_t i = 0; i < b->n_msgs_durable; i++) {
        hold_msg(d, b->seq, &b->msgs_durable[i]);
    }
    if (b->snap_install) {
        grow((void **)&d->installs, &d->installs_cap, d->installs_len + 1, sizeof *d->installs);
        d->installs[d->installs_len++] = (struct held_install){.seq = b->seq,
                                                               .meta = b->snap_meta};
    }
    if (b->n_committed > 0) {
        d->stats.entries_applied += b->n_committed;
        d->ports.apply(d->ports.ctx, b->committed, b->n_committed);
    }
    /* Reads after the apply above: the core releases a read only once its index is
     * applied, counting this batch's entries. */
    for (size_t i = 0; i < b->n_reads && d->ports.read != NULL; i++) {
        d->ports.read(d->ports.ctx, &b->reads[i]);
    }
    for (size_t i = 0; i < b->n_caught_up && d->ports.caught_up != NULL; i++) {
        d->ports.caught_up(d->ports.ctx, b->caught_up[i]);
    }
    /* Last: a synchronous store acknowledges from inside this call, and the acknowledgement
     * must not overtake the sends and applies above. */
    d->ports.persist(d->ports.ctx, b);
}

static void handle_persisted(struct craft_driver *d, uint64_t seq)
{
    release_held(d, seq);
    restore_installed(d, seq);
    craft_core_persisted(d->core, seq, d->now);
}

/* The tail of every entry point: handles deferred completions and drains ready batches. */
static void process(struct craft_driver *d)
{
    if (d->busy || d->holding) {
        return; /* re-entered from a port, or held: the outer loop picks the work up */
    }
    d->busy = true;
    for (;;) {
        if (d->snap_pending) {
            d->snap_pending = false;
            /* ESTALE means a newer snapshot (installed from the leader) already covers it. */
            (void)craft_core_snapshot_taken(d->core, d->snap_index, d->snap_retain);
            continue;
        }
        if (d->persisted_pending) {
            d->persisted_pending = false;
            handle_persisted(d, d->persisted_seq);
            continue;
        }
        if (!craft_core_has_ready(d->core)) {
            break;
        }
        struct craft_batch b;
        if (!craft_core_ready(d->core, &b)) {
            break;
        }
        run_batch(d, &b);
    }
    uint64_t leader = craft_core_leader(d->core);
    if (leader != d->last_leader) {
        d->stats.leader_changes += leader != CRAFT_NONE;
        d->last_leader = leader;
    }
    d->busy = false;
    int err = craft_core_error(d->core);
    if (err != CRAFT_OK && !d->failed_reported) {
        d->failed_reported = true;
        if (d->ports.failed != NULL) {
            d->ports.failed(d->ports.ctx, err);
        }
    }
}

static void advance(struct craft_driver *d, uint64_t now)
{
    /* The core requires a monotonic clock; a caller's clock that steps back is clamped. */
    if (now > d->now) {
        d->now = now;
    }
}

int craft_driver_receive(struct craft_driver *d, const uint8_t *bytes, size_t len, uint64_t now)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    struct craft_msg m;
    int err = craft_msg_decode(&d->decoder, bytes, len, &m);
    if (err != CRAFT_OK) {
        d->stats.bad_msgs_received++;
        process(d);
        return err;
    }
    d->stats.msgs_received++;
    err = craft_core_step(d->core, &m, d->now);
    process(d);
    return err;
}

void craft_driver_tick(struct craft_driver *d, uint64_t now)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    craft_core_tick(d->core, d->now);
    process(d);
}

uint64_t craft_driver_next_timeout(const struct craft_driver *d)
{
    return craft_core_next_timeout(d->core);
}

int craft_driver_propose(struct craft_driver *d, const uint8_t *data, uint32_t len,
                         uint64_t now, uint64_t *index, uint64_t *term)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    int err = craft_core_propose(d->core, data, len, d->now, index, term);
    process(d);
    return err;
}

int craft_driver_propose_conf_change(struct craft_driver *d,
                                     const struct craft_conf_change *changes, size_t n,
                                     bool joint, uint64_t now, uint64_t *index, uint64_t *term)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    int err = craft_core_propose_conf_change(d->core, changes, n, joint, d->now, index, term);
    process(d);
    return err;
}

int craft_driver_leave_joint(struct craft_driver *d, uint64_t now, uint64_t *index,
                             uint64_t *term)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    int err = craft_core_leave_joint(d->core, d->now, index, term);
    process(d);
    return err;
}

int craft_driver_transfer_leadership(struct craft_driver *d, uint64_t target, uint64_t now)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    int err = craft_core_transfer_leadership(d->core, target, d->now);
    process(d);
    return err;
}

int craft_driver_read_index(struct craft_driver *d, uint64_t ctx, uint64_t now)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    int err = craft_core_read_index(d->core, ctx, d->now);
    process(d);
    return err;
}

int craft_driver_read_lease(struct craft_driver *d, uint64_t now, uint64_t *index)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    int err = craft_core_read_lease(d->core, d->now, index);
    process(d);
    return err;
}

void craft_driver_hold(struct craft_driver *d)
{
    CRAFT_ASSERT(!d->busy && !d->holding);
    d->holding = true;
}

void craft_driver_release(struct craft_driver *d)
{
    CRAFT_ASSERT(d->holding);
    d->holding = false;
    process(d);
}

void craft_driver_step_down(struct craft_driver *d, uint64_t now)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    craft_core_step_down(d->core, d->now);
    process(d);
}

void craft_driver_campaign(struct craft_driver *d, uint64_t now)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    craft_core_campaign(d->core, d->now);
    process(d);
}

void craft_driver_resume(struct craft_driver *d, uint64_t now)
{
    CRAFT_ASSERT(!d->busy);
    advance(d, now);
    craft_core_resume(d->core, d->now);
    process(d);
}

void craft_driver_persisted(struct craft_driver *d, uint64_t seq, uint64_t now)
{
    advance(d, now);
    if (!d->persisted_pending || seq > d->persisted_seq) {
        d->persisted_seq = seq;
    }
    d->persisted_pending = true;
    process(d);
}

void craft_driver_snapshot_taken(struct craft_driver *d, uint64_t index, uint64_t retain_entries)
{
    /* Two snapshots in one port call: the newer one subsumes the older. */
    if (!d->snap_pending || index > d->snap_index) {
        d->snap_index = index;
        d->snap_retain = retain_entries;
    }
    d->snap_pending = true;
    process(d);
}

void craft_driver_stats(const struct craft_driver *d, struct craft_driver_stats *stats)
{
    *stats = d->stats;
}
