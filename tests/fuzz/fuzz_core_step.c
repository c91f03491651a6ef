/* libFuzzer target: one core (node 1 of a 3- or 5-voter cluster) driven by a fuzzed
 * sequence of operations: messages, ticks, proposals, batches and their (possibly delayed)
 * acknowledgements, snapshots and campaigns. The core must never crash or assert.
 *
 * Two modes. The default, "honest", builds every message a real network of honest peers
 * could deliver, delayed, duplicated or reordered: a model of the rest of the cluster keeps
 * one leader per term (node 2 + t % (voters - 1)), gives each leader a log that holds every
 * committed entry (leader completeness), lets leaders claim only commits they could have
 * made, and grants node 1 a vote only when its log holds every committed entry. An
 * assertion in this mode is a core bug. The model also checks node 1: every entry it hands
 * out for apply must be the committed entry of the model (state machine safety).
 *
 * With CRAFT_FUZZ_BYZANTINE=1 in the environment, messages are taken as fuzzed (only `to`
 * and `from` are sometimes forced): this finds the assertions that only a Byzantine peer
 * can reach. CRAFT_FUZZ_TRACE=1 prints each operation, to turn a crash file into a readable
 * reproducer. CRAFT_FUZZ_AVOID_KNOWN=1 steers around known core bugs (avoid_known()) so that
 * a long run can look past them.
 *
 * Input: byte 0 chooses the cluster (bit 0: 5 voters), then operations until the input
 * ends, each an opcode byte (mod OP_COUNT_) and its operands; a missing byte reads as 0. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "codec/msg_codec.h"
#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum op {
    OP_STEP_RAW,     /* u16 len, len bytes (craft_msg_decode), u8 flags */
    OP_STEP_GEN,     /* u8 type, then the generator's operands */
    OP_TICK,         /* u16 ms to advance */
    OP_PROPOSE,      /* u8 len (mod 64), len bytes */
    OP_READY,        /* u8: bit 0 acknowledge at once */
    OP_PERSIST,      /* u8: which pending batch to acknowledge through */
    OP_SNAPSHOT,     /* u8 index choice, u8 retain */
    OP_CAMPAIGN,     /* none */
    OP_LEADER_GROW,  /* u8: model leader appends entries and maybe advances its commit */
    OP_COUNT_
};

static const char *const op_names[OP_COUNT_] = {"step-raw", "step-gen", "tick", "propose",
                                                "ready", "persist", "snapshot-taken",
                                                "campaign", "leader-grow"};

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t rd_u8(struct reader *r)
{
    if (r->n == 0) {
        return 0;
    }
    r->n--;
    return *r->p++;
}

static uint16_t rd_u16(struct reader *r)
{
    uint16_t lo = rd_u8(r);
    return (uint16_t)(lo | (uint16_t)rd_u8(r) << 8);
}

/* Up to len bytes taken from the input (fewer if it ends). */
static const uint8_t *rd_bytes(struct reader *r, size_t len, size_t *got)
{
    *got = len < r->n ? len : r->n;
    const uint8_t *p = r->p;
    r->p += *got;
    r->n -= *got;
    return p;
}

/* Growable array of terms indexed by log index (index 0 holds term 0). */
struct terms {
    uint64_t *t;
    uint64_t n; /* last index */
    uint64_t cap;
};

static void terms_set(struct terms *ts, uint64_t index, uint64_t term)
{
    if (index + 1 > ts->cap) {
        uint64_t cap = ts->cap == 0 ? 64 : ts->cap;
        while (cap < index + 1) {
            cap *= 2;
        }
        uint64_t *grown = realloc(ts->t, cap * sizeof *grown);
        CRAFT_ASSERT(grown != NULL);
        memset(grown + ts->cap, 0, (cap - ts->cap) * sizeof *grown);
        ts->t = grown;
        ts->cap = cap;
    }
    ts->t[index] = term;
    if (index > ts->n) {
        ts->n = index;
    }
}

struct harness {
    bool byzantine, trace, avoid_known;
    uint32_t n_voters;
    uint64_t now;
    struct craft_core *core;
    struct craft_msg_decoder dec;

    /* Batches handed out and not acknowledged. */
    uint64_t pending[64];
    size_t n_pending;
    uint64_t last_commit, last_term, applied;

    /* Model of the cluster (honest mode). */
    struct terms committed; /* terms of the committed prefix 1..K */
    uint64_t max_grant_term; /* highest term in which a peer granted node 1 a vote */
    uint64_t *grant_terms;
    size_t n_grant_terms, cap_grant_terms;
    uint64_t lead_term; /* latest term with a leader, 0 if none */
    bool lead_self;     /* that leader is node 1 */
    struct terms lead_log; /* the model leader's log (when !lead_self) */
    uint64_t lead_commit;
    uint8_t scratch[64 * 8];
    struct craft_entry entries[8];
};

static void trace(const struct harness *h, const char *fmt, ...)
{
    if (!h->trace) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[t=%llu] ", (unsigned long long)h->now);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void trace_msg(const struct harness *h, const char *what, const struct craft_msg *m)
{
    if (!h->trace) {
        return;
    }
    fprintf(stderr,
            "[t=%llu] %s %s %llu->%llu term=%llu log=%llu/%llu commit=%llu index=%llu "
            "hint=%llu/%llu ctx=%llu reject=%d last=%d transfer=%d n_entries=%u",
            (unsigned long long)h->now, what,
            m->type > 0 && m->type < CRAFT_MSG_TYPE_COUNT_ ? craft_msg_type_name(m->type) : "?",
            (unsigned long long)m->from, (unsigned long long)m->to, (unsigned long long)m->term,
            (unsigned long long)m->log_index, (unsigned long long)m->log_term,
            (unsigned long long)m->commit, (unsigned long long)m->index,
            (unsigned long long)m->reject_hint, (unsigned long long)m->reject_term,
            (unsigned long long)m->ctx, m->reject, m->last, m->transfer, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        fprintf(stderr, " [%llu:%llu]", (unsigned long long)m->entries[i].index,
                (unsigned long long)m->entries[i].term);
    }
    if (m->type == CRAFT_MSG_SNAPSHOT || m->type == CRAFT_MSG_SNAPSHOT_RESP) {
        fprintf(stderr, " snap=%llu/%llu offset=%llu chunk_len=%u",
                (unsigned long long)m->snap.index, (unsigned long long)m->snap.term,
                (unsigned long long)m->offset, m->chunk_len);
    }
    fputc('\n', stderr);
}

static struct craft_conf base_conf(const struct harness *h)
{
    struct craft_conf c = {.n_voters = h->n_voters};
    for (uint32_t i = 0; i < h->n_voters; i++) {
        c.voters[i] = i + 1;
    }
    return c;
}

/* The one peer that may lead term t (honest mode). */
static uint64_t leader_of(const struct harness *h, uint64_t term)
{
    return 2 + term % (h->n_voters - 1);
}

static uint64_t peer_of(const struct harness *h, uint8_t b)
{
    return 2 + b % (h->n_voters - 1);
}

static bool granted_in(const struct harness *h, uint64_t term)
{
    for (size_t i = 0; i < h->n_grant_terms; i++) {
        if (h->grant_terms[i] == term) {
            return true;
        }
    }
    return false;
}

static void record_grant(struct harness *h, uint64_t term)
{
    if (granted_in(h, term)) {
        return;
    }
    if (h->n_grant_terms == h->cap_grant_terms) {
        size_t cap = h->cap_grant_terms == 0 ? 16 : 2 * h->cap_grant_terms;
        uint64_t *grown = realloc(h->grant_terms, cap * sizeof *grown);
        CRAFT_ASSERT(grown != NULL);
        h->grant_terms = grown;
        h->cap_grant_terms = cap;
    }
    h->grant_terms[h->n_grant_terms++] = term;
    if (term > h->max_grant_term) {
        h->max_grant_term = term;
    }
}

/* Node 1's term at index, or 0 if unknown. Compacted indexes are committed: the model
 * knows their terms. */
static uint64_t node_term_at(const struct harness *h, const struct craft_core_status *s,
                             uint64_t index)
{
    if (index == 0 || index > s->last_index) {
        return 0;
    }
    if (index < s->first_index) {
        return index <= h->committed.n ? h->committed.t[index] : 0;
    }
    const struct craft_entry *e = craft_core_entry(h->core, index);
    CRAFT_ASSERT(e != NULL && e->index == index);
    return e->term;
}

/* Extends the committed prefix from node 1's own commit (it may lead), and checks that what
 * it committed agrees with what the model committed. */
static void observe(struct harness *h)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    CRAFT_ASSERT(s.term >= h->last_term);
    CRAFT_ASSERT(s.commit >= h->last_commit); /* commit never decreases */
    CRAFT_ASSERT(s.persisted <= s.last_index);
    CRAFT_ASSERT(s.commit <= s.last_index);
    h->last_term = s.term;
    h->last_commit = s.commit;
    if (h->byzantine) {
        return;
    }
    if (s.role == CRAFT_LEADER && s.term > h->lead_term) {
        /* Election safety of the model: no peer leads a term node 1 won. */
        CRAFT_ASSERT(!h->lead_self || s.term != h->lead_term);
        h->lead_term = s.term;
        h->lead_self = true;
    }
    if (s.role == CRAFT_LEADER) {
        CRAFT_ASSERT(h->lead_self && h->lead_term == s.term);
    }
    for (uint64_t i = h->committed.n + 1; i <= s.commit; i++) {
        uint64_t t = node_term_at(h, &s, i);
        CRAFT_ASSERT(t != 0);
        terms_set(&h->committed, i, t);
    }
}

/* True if node 1 holds the whole committed prefix, so an honest peer may vote for it. */
static bool node_may_win(const struct harness *h)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    uint64_t k = h->committed.n;
    return k == 0 || (s.last_index >= k && node_term_at(h, &s, k) == h->committed.t[k]);
}

/* Starts the model leader of term t: its log is the latest leader's log cut somewhere at or
 * after the committed prefix, then its no-op. */
static void lead_start(struct harness *h, uint64_t term, uint8_t cut)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    CRAFT_ASSERT(term > h->lead_term);
    struct terms src = {0};
    if (h->lead_self) {
        for (uint64_t i = 1; i <= s.last_index; i++) {
            terms_set(&src, i, node_term_at(h, &s, i));
        }
    } else {
        for (uint64_t i = 1; i <= h->lead_log.n; i++) {
            terms_set(&src, i, h->lead_log.t[i]);
        }
    }
    uint64_t k = h->committed.n;
    CRAFT_ASSERT(src.n >= k);
    uint64_t keep = k + cut % (src.n - k + 1);
    h->lead_log.n = 0;
    for (uint64_t i = 1; i <= keep; i++) {
        CRAFT_ASSERT(i > k || src.t[i] == h->committed.t[i]); /* leader completeness */
        terms_set(&h->lead_log, i, src.t[i]);
    }
    terms_set(&h->lead_log, keep + 1, term);
    free(src.t);
    h->lead_term = term;
    h->lead_self = false;
    h->lead_commit = k;
    trace(h, "model: leader %llu of term %llu, log %llu entries (cut at %llu), commit %llu",
          (unsigned long long)leader_of(h, term), (unsigned long long)term,
          (unsigned long long)h->lead_log.n, (unsigned long long)keep,
          (unsigned long long)h->lead_commit);
}

static void lead_commit_to(struct harness *h, uint64_t c)
{
    if (c <= h->lead_commit) {
        return;
    }
    CRAFT_ASSERT(c <= h->lead_log.n);
    h->lead_commit = c;
    for (uint64_t i = h->committed.n + 1; i <= c; i++) {
        terms_set(&h->committed, i, h->lead_log.t[i]);
    }
}

/* How much of node 1's log matches the model leader's (log matching: one term suffices). */
static uint64_t lead_match(const struct harness *h)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    uint64_t i = s.last_index < h->lead_log.n ? s.last_index : h->lead_log.n;
    for (; i > 0; i--) {
        if (i < s.first_index || node_term_at(h, &s, i) == h->lead_log.t[i]) {
            break;
        }
    }
    return i;
}

static uint64_t below(struct reader *r, uint64_t max)
{
    uint64_t v = rd_u16(r);
    return max == UINT64_MAX ? v : v % (max + 1);
}

/* A term for a generated message: mostly node 1's, sometimes ahead or behind. */
static uint64_t pick_term(struct reader *r, uint64_t cur)
{
    uint8_t b = rd_u8(r);
    uint64_t t = cur;
    if (b >= 160 && b < 230) {
        t = cur + 1 + b % 3;
    } else if (b >= 230) {
        uint64_t back = 1 + b % 3;
        t = cur > back ? cur - back : 1;
    }
    return t == 0 ? 1 : t;
}

static void fill_entries(struct harness *h, struct reader *r, struct craft_msg *m,
                         const uint64_t *terms, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        size_t len = rd_u8(r) % 8, got = 0;
        const uint8_t *p = rd_bytes(r, len, &got);
        memcpy(h->scratch + i * 8, p, got);
        h->entries[i] = (struct craft_entry){
            .term = terms[i],
            .index = m->log_index + 1 + i,
            .type = got == 0 ? CRAFT_ENTRY_NOOP : CRAFT_ENTRY_NORMAL,
            .len = (uint32_t)got,
            .data = got > 0 ? h->scratch + i * 8 : NULL,
        };
    }
    m->n_entries = n;
    m->entries = n > 0 ? h->entries : NULL;
}

/* A message from the model leader of term lead_term (honest). Returns false to skip. */
static bool gen_leader_msg(struct harness *h, struct reader *r, uint8_t type,
                           struct craft_msg *m)
{
    m->from = leader_of(h, h->lead_term);
    m->term = h->lead_term;
    uint64_t n = h->lead_log.n;
    /* A delayed message carries an older commit. */
    uint64_t commit = rd_u8(r) < 200 ? h->lead_commit : below(r, h->lead_commit);
    switch (type) {
    case CRAFT_MSG_APPEND: {
        uint8_t how = rd_u8(r);
        struct craft_core_status s;
        craft_core_status(h->core, &s);
        uint64_t prev;
        if (how < 128) {
            prev = s.last_index < n ? s.last_index : n; /* where node 1 is */
        } else if (how < 192) {
            prev = lead_match(h);
        } else {
            prev = below(r, n);
        }
        uint64_t avail = n - prev;
        uint32_t k = (uint32_t)(rd_u8(r) % 9);
        if (k > avail) {
            k = (uint32_t)avail;
        }
        m->type = CRAFT_MSG_APPEND;
        m->log_index = prev;
        m->log_term = h->lead_log.t[prev];
        m->commit = commit;
        fill_entries(h, r, m, h->lead_log.t + prev + 1, k);
        return true;
    }
    case CRAFT_MSG_HEARTBEAT: {
        uint64_t match = lead_match(h);
        m->type = CRAFT_MSG_HEARTBEAT;
        m->commit = commit < match ? commit : match;
        m->ctx = rd_u8(r);
        return true;
    }
    case CRAFT_MSG_SNAPSHOT: {
        if (h->lead_commit == 0) {
            return false;
        }
        size_t got = 0;
        m->type = CRAFT_MSG_SNAPSHOT;
        m->snap.index = 1 + below(r, h->lead_commit - 1);
        m->snap.term = h->lead_log.t[m->snap.index];
        m->snap.conf = base_conf(h);
        m->offset = rd_u8(r) < 128 ? 0 : rd_u8(r) % 32;
        m->chunk = rd_bytes(r, rd_u8(r) % 16, &got);
        m->chunk_len = (uint32_t)got;
        m->chunk = got > 0 ? m->chunk : NULL;
        m->last = rd_u8(r) & 1;
        return true;
    }
    case CRAFT_MSG_TIMEOUT_NOW:
        m->type = CRAFT_MSG_TIMEOUT_NOW;
        return true;
    default:
        return false;
    }
}

static bool is_leader_type(uint8_t type)
{
    return type == CRAFT_MSG_APPEND || type == CRAFT_MSG_HEARTBEAT ||
           type == CRAFT_MSG_SNAPSHOT || type == CRAFT_MSG_TIMEOUT_NOW;
}

/* Makes a leader message of term t honest: stale terms pass (they are only answered), a
 * current or future term goes through the model leader of that term, created if no peer
 * voted for node 1 in it. Returns false to skip. */
static bool honest_leader_msg(struct harness *h, struct reader *r, uint8_t type, uint64_t t,
                              struct craft_msg *m)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    if (t < s.term) {
        m->type = type;
        m->term = t;
        m->from = leader_of(h, t);
        m->n_entries = 0;
        m->entries = NULL;
        return true; /* stale: answered and dropped */
    }
    bool started = false;
    if (t != h->lead_term || h->lead_self) {
        if (t <= h->lead_term || granted_in(h, t)) {
            return false; /* node 1 leads t, or could have: no second leader */
        }
        lead_start(h, t, rd_u8(r));
        started = true;
    }
    struct craft_msg keep = *m;
    *m = (struct craft_msg){.to = 1};
    bool ok = gen_leader_msg(h, r, type, m);
    if (!ok && started) {
        /* A new leader's first word reaches node 1 at once, so that the model's latest
         * leader is never in a term node 1 has not seen (it could miss node 1's commits). */
        *m = (struct craft_msg){.to = 1};
        ok = gen_leader_msg(h, r, CRAFT_MSG_HEARTBEAT, m);
        type = CRAFT_MSG_HEARTBEAT;
    }
    if (ok && type == CRAFT_MSG_SNAPSHOT && keep.type == CRAFT_MSG_SNAPSHOT) {
        /* Keep the fuzzed chunk geometry of a decoded snapshot message. */
        m->offset = keep.offset % 64;
        m->chunk = keep.chunk;
        m->chunk_len = keep.chunk_len;
        m->last = keep.last;
    }
    return ok;
}

/* A vote answer is granted only if an honest peer could grant it. */
static void honest_vote_resp(struct harness *h, struct craft_msg *m)
{
    if (m->reject) {
        return;
    }
    bool pre = m->type == CRAFT_MSG_PREVOTE_RESP;
    bool ok = node_may_win(h) && (pre || !(h->lead_term == m->term && !h->lead_self));
    if (!ok) {
        m->reject = true;
        return;
    }
    if (!pre) {
        record_grant(h, m->term);
    }
}

/* Message fields of a generated non-leader message. */
static void gen_peer_msg(struct harness *h, struct reader *r, uint8_t type, uint64_t t,
                         struct craft_msg *m)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    m->type = type;
    m->term = t;
    m->from = peer_of(h, rd_u8(r));
    switch (type) {
    case CRAFT_MSG_APPEND_RESP:
        m->reject = rd_u8(r) & 1;
        m->index = below(r, s.last_index + 2);
        if (m->reject) {
            m->reject_hint = below(r, m->index);
            m->reject_term = below(r, t);
        }
        break;
    case CRAFT_MSG_HEARTBEAT_RESP:
    case CRAFT_MSG_READ_INDEX:
        m->ctx = rd_u8(r);
        break;
    case CRAFT_MSG_VOTE:
    case CRAFT_MSG_PREVOTE:
        m->log_index = below(r, s.last_index + 3);
        m->log_term = below(r, t);
        m->transfer = (rd_u8(r) & 7) == 0;
        if (type == CRAFT_MSG_PREVOTE && rd_u8(r) < 128) {
            m->term = s.term + 1;
        }
        break;
    case CRAFT_MSG_VOTE_RESP:
    case CRAFT_MSG_PREVOTE_RESP:
        m->reject = rd_u8(r) < 64;
        if (type == CRAFT_MSG_PREVOTE_RESP && !m->reject) {
            m->term = s.term + 1; /* a granted pre-vote names the term asked about */
        }
        break;
    case CRAFT_MSG_SNAPSHOT_RESP:
        m->reject = rd_u8(r) < 32;
        m->index = rd_u8(r) < 128 ? 0 : below(r, s.last_index + 2);
        m->offset = rd_u8(r);
        m->snap.index = below(r, s.last_index);
        m->snap.term = h->byzantine ? below(r, t) : node_term_at(h, &s, m->snap.index);
        break;
    case CRAFT_MSG_READ_INDEX_RESP:
        m->index = below(r, s.commit + 1);
        m->ctx = rd_u8(r);
        break;
    default:
        break;
    }
}

/* Honest constraints on a decoded message; returns false to skip it. */
static bool honest_raw(struct harness *h, struct reader *r, struct craft_msg *m)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    /* Honest terms stay near node 1's: no peer can be 2^64 terms ahead. */
    if (m->term > s.term + 3) {
        m->term = s.term + m->term % 4;
    }
    if (m->term == 0) {
        m->term = 1;
    }
    if (is_leader_type(m->type)) {
        return honest_leader_msg(h, r, m->type, m->term, m);
    }
    if (m->n_entries > 0) {
        return false;
    }
    switch (m->type) {
    case CRAFT_MSG_VOTE:
        m->from = leader_of(h, m->term);
        m->log_term = m->log_term > m->term ? m->term : m->log_term;
        break;
    case CRAFT_MSG_VOTE_RESP:
    case CRAFT_MSG_PREVOTE_RESP:
        m->from = peer_of(h, (uint8_t)m->from);
        if (m->type == CRAFT_MSG_PREVOTE_RESP && !m->reject) {
            m->term = s.term + 1;
        }
        honest_vote_resp(h, m);
        break;
    case CRAFT_MSG_PREVOTE:
        m->log_term = m->log_term > m->term ? m->term : m->log_term;
        break;
    default:
        break;
    }
    return true;
}

/* Known core bugs that an honest network reaches, sidestepped only when
 * CRAFT_FUZZ_AVOID_KNOWN=1 so that a long run can look past them. */
static void avoid_known(const struct harness *h, struct craft_msg *m)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    /* A chunk acknowledged for a snapshot older than the leader's current one: the core
     * then asserts in send_snapshot_chunk (replication.c). */
    if (m->type == CRAFT_MSG_SNAPSHOT_RESP && m->snap.index != s.snap_index) {
        m->offset = 0;
    }
}

static void step(struct harness *h, struct craft_msg *m)
{
    if (h->avoid_known) {
        avoid_known(h, m);
    }
    trace_msg(h, "step", m);
    int rv = craft_core_step(h->core, m, h->now);
    CRAFT_ASSERT(rv == CRAFT_OK || rv == CRAFT_EINVAL);
    if (h->trace && rv != CRAFT_OK) {
        trace(h, "  -> %s", craft_strerror(rv));
    }
}

static void op_step_raw(struct harness *h, struct reader *r)
{
    size_t len = rd_u16(r), got = 0;
    const uint8_t *buf = rd_bytes(r, len, &got);
    uint8_t flags = rd_u8(r);
    struct craft_msg m;
    if (craft_msg_decode(&h->dec, buf, got, &m) != CRAFT_OK) {
        trace(h, "step-raw: %zu bytes do not decode", got);
        return;
    }
    if (!h->byzantine || (flags & 1)) {
        m.to = 1;
    }
    if (!h->byzantine || (flags & 2)) {
        if (m.from < 2 || m.from > h->n_voters || (flags & 4)) {
            m.from = peer_of(h, (uint8_t)(flags >> 3));
        }
    }
    /* Operands the honest rewrite needs come from the message's own bytes, so that a
     * rewrite does not shift the operations that follow. */
    struct reader sub = {buf, got};
    if (!h->byzantine && !honest_raw(h, &sub, &m)) {
        trace_msg(h, "skip (not honest)", &m);
        return;
    }
    step(h, &m);
}

static void op_step_gen(struct harness *h, struct reader *r)
{
    uint8_t type = 1 + rd_u8(r) % (CRAFT_MSG_TYPE_COUNT_ - 1);
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    uint64_t t = pick_term(r, s.term);
    struct craft_msg m = {.to = 1};
    if (h->byzantine) {
        if (is_leader_type(type)) {
            /* Any peer, any log: only the codec's shape rules hold. */
            m.type = type;
            m.term = t;
            m.from = peer_of(h, rd_u8(r));
            m.log_index = below(r, s.last_index + 4);
            m.log_term = below(r, t);
            m.commit = below(r, s.last_index + 8);
            uint64_t terms[8];
            uint32_t k = rd_u8(r) % 9;
            uint64_t prev_term = m.log_term;
            for (uint32_t i = 0; i < k; i++) {
                prev_term += rd_u8(r) < 200 ? 0 : 1;
                terms[i] = prev_term > t ? t : prev_term;
            }
            if (type == CRAFT_MSG_APPEND) {
                fill_entries(h, r, &m, terms, k);
            } else if (type == CRAFT_MSG_SNAPSHOT) {
                m.snap.index = below(r, s.last_index + 8);
                m.snap.term = below(r, t);
                m.snap.conf = base_conf(h);
                m.offset = rd_u8(r) % 32;
                size_t got = 0;
                m.chunk = rd_bytes(r, rd_u8(r) % 16, &got);
                m.chunk_len = (uint32_t)got;
                m.chunk = got > 0 ? m.chunk : NULL;
                m.last = rd_u8(r) & 1;
            }
        } else {
            gen_peer_msg(h, r, type, t, &m);
        }
        if (rd_u8(r) >= 250) {
            m.term = UINT64_MAX - rd_u8(r); /* terms no honest cluster reaches */
        }
        step(h, &m);
        return;
    }
    if (is_leader_type(type)) {
        if (!honest_leader_msg(h, r, type, t, &m)) {
            trace(h, "step-gen: no honest %s in term %llu", craft_msg_type_name(type),
                  (unsigned long long)t);
            return;
        }
        m.to = 1;
    } else {
        gen_peer_msg(h, r, type, t, &m);
        if (type == CRAFT_MSG_VOTE) {
            m.from = leader_of(h, m.term);
        }
        if (type == CRAFT_MSG_VOTE_RESP || type == CRAFT_MSG_PREVOTE_RESP) {
            honest_vote_resp(h, &m);
        }
    }
    step(h, &m);
}

static void check_batch(struct harness *h, const struct craft_batch *b)
{
    for (size_t i = 0; i < b->n_entries; i++) {
        CRAFT_ASSERT(i == 0 || b->entries[i].index == b->entries[i - 1].index + 1);
    }
    if (b->snap_install) {
        h->applied = b->snap_meta.index;
    }
    for (size_t i = 0; i < b->n_committed; i++) {
        const struct craft_entry *e = &b->committed[i];
        CRAFT_ASSERT(e->index == h->applied + 1);
        h->applied = e->index;
        /* State machine safety: node 1 applies exactly the committed entries. */
        if (!h->byzantine && e->index <= h->committed.n) {
            CRAFT_ASSERT(e->term == h->committed.t[e->index]);
        }
    }
    for (size_t i = 0; i < b->n_msgs + b->n_msgs_durable; i++) {
        const struct craft_msg *m =
            i < b->n_msgs ? &b->msgs[i] : &b->msgs_durable[i - b->n_msgs];
        CRAFT_ASSERT(m->from == 1 && m->to != 1 && m->to != CRAFT_NONE);
        CRAFT_ASSERT(m->type > 0 && m->type < CRAFT_MSG_TYPE_COUNT_);
        trace_msg(h, "  out", m);
    }
}

static void ack(struct harness *h, size_t k)
{
    uint64_t seq = h->pending[k];
    trace(h, "persisted through batch %llu", (unsigned long long)seq);
    craft_core_persisted(h->core, seq, h->now);
    memmove(h->pending, h->pending + k + 1, (h->n_pending - k - 1) * sizeof *h->pending);
    h->n_pending -= k + 1;
}

static void op_ready(struct harness *h, uint8_t flags)
{
    struct craft_batch b;
    if (!craft_core_ready(h->core, &b)) {
        trace(h, "ready: nothing");
        return;
    }
    trace(h, "ready: batch %llu hs=%d entries=%zu truncate=%llu chunk=%d install=%d "
             "msgs=%zu+%zu committed=%zu",
          (unsigned long long)b.seq, b.has_hard_state, b.n_entries,
          (unsigned long long)b.truncate_from, b.has_snap_chunk, b.snap_install, b.n_msgs,
          b.n_msgs_durable, b.n_committed);
    check_batch(h, &b);
    if (h->n_pending == sizeof h->pending / sizeof h->pending[0]) {
        ack(h, 0);
    }
    h->pending[h->n_pending++] = b.seq;
    if (flags & 1) {
        ack(h, h->n_pending - 1);
    }
}

static void op_snapshot(struct harness *h, struct reader *r)
{
    struct craft_core_status s;
    craft_core_status(h->core, &s);
    uint8_t which = rd_u8(r), retain = rd_u8(r);
    if (s.applied <= s.snap_index) {
        trace(h, "snapshot-taken: nothing applied past %llu", (unsigned long long)s.snap_index);
        return;
    }
    uint64_t index = s.snap_index + 1 + which % (s.applied - s.snap_index);
    trace(h, "snapshot-taken %llu retain %u", (unsigned long long)index, retain % 8);
    int rv = craft_core_snapshot_taken(h->core, index, retain % 8);
    CRAFT_ASSERT(rv == CRAFT_OK);
}

static void op_leader_grow(struct harness *h, uint8_t b)
{
    if (h->byzantine || h->lead_self || h->lead_term == 0) {
        return;
    }
    uint32_t k = b % 4;
    for (uint32_t i = 0; i < k; i++) {
        terms_set(&h->lead_log, h->lead_log.n + 1, h->lead_term);
    }
    /* The leader commits with the other peers' acks; not once any of them has voted in a
     * later term (it would have refused the leader's appends). */
    if ((b & 0x80) && h->max_grant_term < h->lead_term) {
        lead_commit_to(h, h->lead_log.n);
    }
    trace(h, "model: leader of term %llu has %llu entries, commit %llu",
          (unsigned long long)h->lead_term, (unsigned long long)h->lead_log.n,
          (unsigned long long)h->lead_commit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int byzantine = -1, tracing = 0, avoid = 0;
    if (byzantine < 0) {
        const char *e = getenv("CRAFT_FUZZ_BYZANTINE");
        byzantine = e != NULL && e[0] == '1';
        e = getenv("CRAFT_FUZZ_TRACE");
        tracing = e != NULL && e[0] == '1';
        e = getenv("CRAFT_FUZZ_AVOID_KNOWN");
        avoid = e != NULL && e[0] == '1';
    }
    struct reader r = {data, size};
    struct harness *h = calloc(1, sizeof *h);
    CRAFT_ASSERT(h != NULL);
    h->byzantine = byzantine;
    h->trace = tracing;
    h->avoid_known = avoid;
    h->n_voters = (rd_u8(&r) & 1) ? 5 : 3;
    h->now = 1000;
    craft_msg_decoder_init(&h->dec);
    struct craft_core_config cfg;
    craft_core_config_default(&cfg, 1);
    struct craft_core_restore restore = {.bootstrap_conf = base_conf(h)};
    h->core = craft_core_create(&cfg, &restore, h->now);
    CRAFT_ASSERT(h->core != NULL);
    trace(h, "start: node 1 of %u voters, %s", h->n_voters, h->byzantine ? "byzantine" : "honest");

    while (r.n > 0) {
        uint8_t op = rd_u8(&r) % OP_COUNT_;
        if (h->trace && op != OP_STEP_RAW && op != OP_STEP_GEN) {
            trace(h, "op %s", op_names[op]);
        }
        switch ((enum op)op) {
        case OP_STEP_RAW:
            op_step_raw(h, &r);
            break;
        case OP_STEP_GEN:
            op_step_gen(h, &r);
            break;
        case OP_TICK:
            h->now += rd_u16(&r);
            craft_core_tick(h->core, h->now);
            break;
        case OP_PROPOSE: {
            size_t got = 0;
            const uint8_t *p = rd_bytes(&r, rd_u8(&r) % 64, &got);
            uint64_t index = 0, term = 0;
            int rv = craft_core_propose(h->core, got > 0 ? p : NULL, (uint32_t)got, h->now,
                                        &index, &term);
            trace(h, "propose %zu bytes -> %s index %llu", got, craft_strerror(rv),
                  (unsigned long long)index);
            break;
        }
        case OP_READY:
            op_ready(h, rd_u8(&r));
            break;
        case OP_PERSIST:
            if (h->n_pending > 0) {
                ack(h, rd_u8(&r) % h->n_pending);
            }
            break;
        case OP_SNAPSHOT:
            op_snapshot(h, &r);
            break;
        case OP_CAMPAIGN:
            craft_core_campaign(h->core, h->now);
            break;
        case OP_LEADER_GROW:
            op_leader_grow(h, rd_u8(&r));
            break;
        case OP_COUNT_:
            CRAFT_UNREACHABLE();
        }
        observe(h);
    }
    /* Drain: a driver that keeps processing and acknowledging batches. */
    for (int i = 0; i < 8 && craft_core_has_ready(h->core); i++) {
        op_ready(h, 1);
        observe(h);
    }
    if (h->n_pending > 0) {
        ack(h, h->n_pending - 1);
    }

    craft_core_destroy(h->core);
    craft_msg_decoder_free(&h->dec);
    free(h->committed.t);
    free(h->lead_log.t);
    free(h->grant_terms);
    free(h);
    return 0;
}
