/* A shard group's view of the slots through reconfigurations (view.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/err.h"
#include "shard/runs.h"
#include "shard/view.h"

_Static_assert(CRAFT_SLOT_STATES <= UINT8_MAX, "a state fits a byte");

uint32_t craft_slot_set_count(const struct craft_slot_set *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < CRAFT_SLOT_SET_BYTES; i++) {
        n += (uint32_t)__builtin_popcount(s->bits[i]);
    }
    return n;
}

void craft_shard_view_init(struct craft_shard_view *v, uint64_t gid)
{
    CRAFT_ASSERT(gid != 0);
    memset(v, 0, sizeof *v);
    v->gid = gid;
    craft_shard_config_init(&v->prev);
    craft_shard_config_init(&v->cur);
}

bool craft_shard_view_settled(const struct craft_shard_view *v)
{
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (v->state[s] != CRAFT_SLOT_SERVING && v->state[s] != CRAFT_SLOT_ABSENT) {
            return false;
        }
    }
    return true;
}

/* The group on the other side of slot's migration: the previous owner of a slot being
 * received, the next owner of one being handed over; 0 for a settled slot. */
static uint64_t peer_of(const struct craft_shard_view *v, uint16_t slot)
{
    switch (v->state[slot]) {
    case CRAFT_SLOT_PULLING:
    case CRAFT_SLOT_NOTIFYING:
        return craft_shard_slot_gid(&v->prev, slot);
    case CRAFT_SLOT_GIVING:
        return craft_shard_slot_gid(&v->cur, slot);
    default:
        return 0;
    }
}

void craft_shard_view_slots(const struct craft_shard_view *v, uint8_t st, uint64_t gid,
                            struct craft_slot_set *out, uint32_t *n)
{
    memset(out, 0, sizeof *out);
    uint32_t count = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (v->state[s] == st && peer_of(v, (uint16_t)s) == gid) {
            craft_slot_set_add(out, (uint16_t)s);
            count++;
        }
    }
    if (n != NULL) {
        *n = count;
    }
}

static int fail(int rc, char *err, size_t cap, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* One configuration at a time (view.h): the slots move between the owners of
 * configurations num and num + 1 only. */
int craft_shard_view_config(struct craft_shard_view *v, const struct craft_shard_config *next,
                            bool *changed, char *err, size_t cap)
{
    *changed = false;
    if (!craft_shard_config_valid(next)) {
        return fail(CRAFT_EINVAL, err, cap, "invalid configuration");
    }
    if (next->num <= v->cur.num) {
        return CRAFT_OK; /* applied already */
    }
    if (next->num != v->cur.num + 1) {
        return fail(CRAFT_EINVAL, err, cap, "configuration %llu follows %llu",
                    (unsigned long long)next->num, (unsigned long long)v->cur.num);
    }
    if (!craft_shard_view_settled(v)) {
        return fail(CRAFT_EBUSY, err, cap, "configuration %llu still migrating",
                    (unsigned long long)v->cur.num);
    }
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t was = craft_shard_slot_gid(&v->cur, (uint16_t)s);
        bool ours = craft_shard_slot_gid(next, (uint16_t)s) == v->gid;
        if (ours) {
            v->state[s] = was == v->gid || was == 0 ? CRAFT_SLOT_SERVING : CRAFT_SLOT_PULLING;
        } else {
            v->state[s] = was == v->gid ? CRAFT_SLOT_GIVING : CRAFT_SLOT_ABSENT;
        }
    }
    v->prev = v->cur;
    v->cur = *next;
    *changed = true;
    CRAFT_ASSERT(craft_shard_view_valid(v));
    return CRAFT_OK;
}

/* The states a transition moves slots from and to. */
static void step_states(enum craft_shard_step step, uint8_t *from, uint8_t *to)
{
    switch (step) {
    case CRAFT_SHARD_STEP_INSTALL:
        *from = CRAFT_SLOT_PULLING;
        *to = CRAFT_SLOT_NOTIFYING;
        break;
    case CRAFT_SHARD_STEP_DELETE:
        *from = CRAFT_SLOT_GIVING;
        *to = CRAFT_SLOT_ABSENT;
        break;
    default:
        CRAFT_ASSERT(step == CRAFT_SHARD_STEP_CONFIRM);
        *from = CRAFT_SLOT_NOTIFYING;
        *to = CRAFT_SLOT_SERVING;
        break;
    }
}

/* Whether a slot in state st is past `from` on the way a step takes it: in `to` or later
 * (a received slot may already be SERVING when its install is retried). */
static bool past(uint8_t st, uint8_t to)
{
    return st == to || (to == CRAFT_SLOT_NOTIFYING && st == CRAFT_SLOT_SERVING);
}

int craft_shard_view_check(const struct craft_shard_view *v, enum craft_shard_step step,
                           uint64_t num, const struct craft_slot_set *slots, bool *changes,
                           char *err, size_t cap)
{
    *changes = false;
    uint8_t from, to;
    step_states(step, &from, &to);
    if (num > v->cur.num) {
        return fail(CRAFT_EINVAL, err, cap, "configuration %llu not reached (at %llu)",
                    (unsigned long long)num, (unsigned long long)v->cur.num);
    }
    if (num < v->cur.num) {
        return CRAFT_OK; /* done in an older configuration */
    }
    uint32_t n = 0, pending = 0;
    uint64_t peer = 0;
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (!craft_slot_set_has(slots, (uint16_t)s)) {
            continue;
        }
        n++;
        if (v->state[s] == from) {
            uint64_t p = peer_of(v, (uint16_t)s);
            if (pending > 0 && p != peer) {
                return fail(CRAFT_EINVAL, err, cap, "slots from more than one group");
            }
            peer = p;
            pending++;
        } else if (!past(v->state[s], to)) {
            return fail(CRAFT_EINVAL, err, cap, "slot %u is not being migrated", s);
        }
    }
    if (n == 0) {
        return fail(CRAFT_EINVAL, err, cap, "no slot");
    }
    *changes = pending > 0; /* slots already past the step are done: left as they are */
    return CRAFT_OK;
}

/* A step: checked whole, then the slots still in `from` move to `to`. */
int craft_shard_view_step(struct craft_shard_view *v, enum craft_shard_step step, uint64_t num,
                          const struct craft_slot_set *slots, bool *changed, char *err,
                          size_t cap)
{
    int rc = craft_shard_view_check(v, step, num, slots, changed, err, cap);
    if (rc != CRAFT_OK || !*changed) {
        return rc;
    }
    uint8_t from, to;
    step_states(step, &from, &to);
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        if (craft_slot_set_has(slots, (uint16_t)s) && v->state[s] == from) {
            v->state[s] = to;
        }
    }
    CRAFT_ASSERT(craft_shard_view_valid(v));
    return CRAFT_OK;
}

bool craft_shard_view_valid(const struct craft_shard_view *v)
{
    if (v->gid == 0 || !craft_shard_config_valid(&v->prev) ||
        !craft_shard_config_valid(&v->cur)) {
        return false;
    }
    if (v->cur.num == 0 ? v->prev.num != 0 : v->prev.num + 1 != v->cur.num) {
        return false;
    }
    for (uint32_t s = 0; s < CRAFT_SLOTS; s++) {
        uint64_t was = craft_shard_slot_gid(&v->prev, (uint16_t)s);
        bool ours = craft_shard_slot_gid(&v->cur, (uint16_t)s) == v->gid;
        bool was_ours = was == v->gid;
        switch (v->state[s]) {
        case CRAFT_SLOT_SERVING:
            if (!ours) {
                return false;
            }
            break;
        case CRAFT_SLOT_PULLING:
        case CRAFT_SLOT_NOTIFYING:
            if (!ours || was_ours || was == 0) {
                return false;
            }
            break;
        case CRAFT_SLOT_GIVING:
            if (ours || !was_ours) {
                return false;
            }
            break;
        case CRAFT_SLOT_ABSENT:
            if (ours) {
                return false;
            }
            break;
        default:
            return false;
        }
    }
    return true;
}

size_t craft_shard_view_size(const struct craft_shard_view *v)
{
    return 1 + 8 + 4 + craft_shard_config_size(&v->prev) + 4 + craft_shard_config_size(&v->cur) +
           craft_slot_runs_size(v->state);
}

static uint8_t *put_config(uint8_t *p, const struct craft_shard_config *c)
{
    size_t n = craft_shard_config_size(c);
    craft_put_u32(p, (uint32_t)n);
    return p + 4 + craft_shard_config_encode(c, p + 4, n);
}

size_t craft_shard_view_encode(const struct craft_shard_view *v, uint8_t *buf, size_t cap)
{
    CRAFT_ASSERT(craft_shard_view_valid(v));
    size_t need = craft_shard_view_size(v);
    CRAFT_ASSERT(cap >= need && need <= CRAFT_SHARD_VIEW_BYTES_MAX);
    uint8_t *p = buf;
    *p++ = CRAFT_SHARD_VIEW_VERSION;
    craft_put_u64(p, v->gid);
    p = put_config(p + 8, &v->prev);
    p = put_config(p, &v->cur);
    p += craft_slot_runs_encode(v->state, p);
    CRAFT_ASSERT((size_t)(p - buf) == need);
    return need;
}

static int take_config(struct craft_reader *r, struct craft_shard_config *c)
{
    const uint8_t *b = craft_take(r, 4), *enc;
    if (b == NULL || (enc = craft_take(r, craft_get_u32(b))) == NULL) {
        return CRAFT_ECORRUPT;
    }
    return craft_shard_config_decode(enc, craft_get_u32(b), c) == CRAFT_OK ? CRAFT_OK
                                                                          : CRAFT_ECORRUPT;
}

int craft_shard_view_decode(const uint8_t *p, size_t len, struct craft_shard_view *v)
{
    struct craft_reader r = {p, len};
    const uint8_t *b;
    if ((b = craft_take(&r, 1)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    if (b[0] != CRAFT_SHARD_VIEW_VERSION) {
        return CRAFT_EVERSION;
    }
    if ((b = craft_take(&r, 8)) == NULL) {
        return CRAFT_ECORRUPT;
    }
    v->gid = craft_get_u64(b);
    if (take_config(&r, &v->prev) != CRAFT_OK || take_config(&r, &v->cur) != CRAFT_OK ||
        craft_slot_runs_decode(&r, v->state) != CRAFT_OK || r.left != 0 ||
        !craft_shard_view_valid(v)) {
        return CRAFT_ECORRUPT;
    }
    return CRAFT_OK;
}
