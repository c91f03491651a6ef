/* Queues between the runtime's threads, requests, futures and the clock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "runtime/rt.h"

uint64_t rt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void to_timespec(uint64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000u);
    ts->tv_nsec = (long)(ms % 1000u) * 1000000L;
}

void rt_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

void rt_queue_init(struct rt_queue *q, size_t max)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    rt_cond_init_mono(&q->cv);
    rt_cond_init_mono(&q->room);
    q->max = max;
    atomic_init(&q->filled_own, false);
    q->filled = &q->filled_own;
}

void rt_queue_destroy(struct rt_queue *q)
{
    CRAFT_ASSERT(q->head == NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    pthread_cond_destroy(&q->room);
}

/* Links it at the tail; called with q->mu held. */
static void append_locked(struct rt_queue *q, struct rt_item *it, bool bounded)
{
    it->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = it;
    } else {
        q->head = it;
    }
    q->tail = it;
    q->len++;
    q->bounded_len += bounded;
    atomic_store(q->filled, true);
}

/* Wakes a sleeping consumer (called without the mutex). Only a sleeping one: a busy one
 * takes the items on its next pass, and skipping the wake keeps a hot producer cheap. */
static void wake_consumer(struct rt_queue *q)
{
    if (q->notify != NULL) {
        q->notify(q->notify_ctx);
    } else {
        pthread_cond_signal(&q->cv);
    }
}

bool rt_queue_push(struct rt_queue *q, struct rt_item *it, bool bounded, uint64_t deadline_ms)
{
    pthread_mutex_lock(&q->mu);
    while (bounded && q->max != 0 && q->bounded_len >= q->max && !q->closed) {
        if (deadline_ms == 0 || rt_now_ms() >= deadline_ms) {
            pthread_mutex_unlock(&q->mu);
            return false;
        }
        struct timespec ts;
        to_timespec(deadline_ms, &ts);
        pthread_cond_timedwait(&q->room, &q->mu, &ts);
    }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    append_locked(q, it, bounded);
    bool wake = q->consumer_sleeping != NULL ? atomic_load(q->consumer_sleeping) : q->waiting;
    pthread_mutex_unlock(&q->mu);
    if (wake) {
        wake_consumer(q);
    }
    return true;
}

struct rt_item *rt_queue_push_list(struct rt_queue *q, struct rt_item *head, bool bounded)
{
    pthread_mutex_lock(&q->mu);
    struct rt_item *it = head;
    while (!q->closed && it != NULL && !(bounded && q->max != 0 && q->bounded_len >= q->max)) {
        struct rt_item *next = it->next;
        append_locked(q, it, bounded);
        it = next;
    }
    bool wake =
        it != head && (q->consumer_sleeping != NULL ? atomic_load(q->consumer_sleeping) : q->waiting);
    pthread_mutex_unlock(&q->mu);
    if (wake) {
        wake_consumer(q);
    }
    return it;
}

/* Takes the whole list; called with q->mu held, returns with it released. */
static struct rt_item *detach_unlock(struct rt_queue *q)
{
    struct rt_item *all = q->head;
    bool had_room_waiters = q->max != 0 && q->bounded_len >= q->max;
    q->head = q->tail = NULL;
    q->len = 0;
    q->bounded_len = 0;
    atomic_store(q->filled, false);
    pthread_mutex_unlock(&q->mu);
    if (had_room_waiters) {
        pthread_cond_broadcast(&q->room);
    }
    return all;
}

struct rt_item *rt_queue_take_all(struct rt_queue *q, uint64_t wake_at_ms)
{
    pthread_mutex_lock(&q->mu);
    while (q->head == NULL && !q->closed) {
        if (wake_at_ms != 0 && rt_now_ms() >= wake_at_ms) {
            break;
        }
        q->waiting = true;
        if (wake_at_ms == 0) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec ts;
            to_timespec(wake_at_ms, &ts);
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
        q->waiting = false;
    }
    return detach_unlock(q);
}

void rt_queue_close(struct rt_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_mutex_unlock(&q->mu);
    pthread_cond_broadcast(&q->cv);
    pthread_cond_broadcast(&q->room);
    if (q->notify != NULL) {
        q->notify(q->notify_ctx); /* the consumer sleeps in its transport's poll */
    }
}

struct rt_item *rt_queue_take_nowait(struct rt_queue *q)
{
    pthread_mutex_lock(&q->mu);
    return detach_unlock(q);
}

size_t rt_queue_len(struct rt_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t rt_queue_bounded_len(struct rt_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->bounded_len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

struct rt_req *rt_req_new(uint8_t kind, const void *data, uint32_t len)
{
    struct rt_req *r = malloc(sizeof *r + len);
    if (r == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->len = len;
    if (len > 0 && data != NULL) {
        memcpy(r->data, data, len);
    }
    return r;
}

/* ---- futures ---- */

struct craft_future *rt_future_new(uint8_t kind)
{
    struct craft_future *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    rt_cond_init_mono(&f->cv);
    atomic_init(&f->refs, 2);
    f->kind = kind;
    return f;
}

struct craft_future *rt_future_failed(int err)
{
    struct craft_future *f = rt_future_new(0);
    if (f != NULL) {
        rt_future_complete(f, err, 0, NULL);
    }
    return f;
}

static void future_free(struct craft_future *f)
{
    if (f->result != NULL && f->result_free != NULL) {
        f->result_free(f->result_ctx, f->result);
    }
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

void rt_future_unref(struct craft_future *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        future_free(f);
    }
}

void rt_future_complete(struct craft_future *f, int err, uint64_t index, void *result)
{
    pthread_mutex_lock(&f->mu);
    CRAFT_ASSERT(!f->done);
    f->done = true;
    f->err = err;
    f->index = index;
    f->result = result;
    void (*notify)(void *) = f->notify;
    void *notify_ctx = f->notify_ctx;
    pthread_mutex_unlock(&f->mu);
    pthread_cond_broadcast(&f->cv);
    if (notify != NULL) {
        notify(notify_ctx);
    }
    rt_future_unref(f);
}

void craft_future_notify(struct craft_future *f, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&f->mu);
    CRAFT_ASSERT(f->notify == NULL);
    bool done = f->done;
    if (!done) {
        f->notify = fn;
        f->notify_ctx = ctx;
    }
    pthread_mutex_unlock(&f->mu);
    if (done) {
        fn(ctx);
    }
}

int craft_future_wait(struct craft_future *f, int64_t timeout_ms)
{
    if (timeout_ms != 0) {
        rt_batch_flush(); /* a future held in this thread's batch would never complete */
    }
    pthread_mutex_lock(&f->mu);
    if (!f->done && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (!f->done) {
                pthread_cond_wait(&f->cv, &f->mu);
            }
        } else {
            struct timespec ts;
            to_timespec(rt_now_ms() + (uint64_t)timeout_ms, &ts);
            while (!f->done) {
                if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) != 0) {
                    break;
                }
            }
        }
    }
    int err = f->done ? f->err : CRAFT_ETIMEOUT;
    pthread_mutex_unlock(&f->mu);
    return err;
}

bool craft_future_done(struct craft_future *f)
{
    pthread_mutex_lock(&f->mu);
    bool done = f->done;
    pthread_mutex_unlock(&f->mu);
    return done;
}

uint64_t craft_future_index(struct craft_future *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t index = f->index;
    pthread_mutex_unlock(&f->mu);
    return index;
}

void *craft_future_result(struct craft_future *f)
{
    pthread_mutex_lock(&f->mu);
    void *r = f->done ? f->result : NULL;
    if (f->done) {
        f->result = NULL;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

void craft_future_release(struct craft_future *f)
{
    if (f != NULL) {
        rt_future_unref(f);
    }
}
