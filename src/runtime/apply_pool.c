/* The host's apply threads (docs/design/multiraft.md, "Threads"): a fixed number of
 * threads run every group's state machine jobs, whatever the number of groups.
 *
 * A group is assigned to one thread when it joins (the one with the fewest groups), so its
 * jobs run in order on one thread at a time. The loop queues a group's jobs in its own
 * queue (fsm_q) and, when the group is not scheduled yet, its ticket in its thread's ready
 * queue; the thread takes the tickets, clears each group's flag, then takes and runs its
 * jobs (a job queued after the take schedules the group again). A slow state machine
 * delays the groups that share its thread, not the others. */
#include <stddef.h>
#include <stdlib.h>

#include "base/assert.h"
#include "runtime/rt.h"

void rt_fsm_push(struct craft_node *n, struct rt_fsm_job *j)
{
    n->apply_pushed++;
    (void)rt_queue_push(&n->fsm_q, &j->item, false, 0); /* nobody sleeps on fsm_q */
    if (!atomic_exchange(&n->apply_scheduled, true)) {
        n->apply_tickets_pushed++;
        (void)rt_queue_push(&n->apply_thread->ready, &n->apply_ticket, false, 0);
    }
}

static void *apply_main(void *arg)
{
    pthread_setname_np(pthread_self(), "craft-apply"); /* top -H, perf, gdb */
    struct rt_apply_thread *t = arg;
    struct craft_host *h = t->host;
    struct rt_apply_scratch *s = rt_apply_scratch_new();
    CRAFT_ASSERT(s != NULL); /* TODO(limits): a host that cannot allocate stops */
    for (;;) {
        struct rt_item *it = rt_queue_take_all(&t->ready, 0);
        if (it == NULL) {
            break; /* closed and drained */
        }
        while (it != NULL) {
            struct craft_node *n =
                (struct craft_node *)((char *)it - offsetof(struct craft_node, apply_ticket));
            it = it->next; /* before the flag: once cleared the ticket may be queued again */
            atomic_store(&n->apply_scheduled, false);
            size_t k = rt_fsm_run(n, rt_queue_take_nowait(&n->fsm_q), s);
            if (k > 0) {
                atomic_fetch_add(&n->apply_finished, k);
            }
            /* The last touch of n, for every ticket (one that found its jobs already run by
             * an earlier take included): a removed group may be freed from here on. */
            atomic_fetch_add(&n->apply_tickets_done, 1);
            if (atomic_load(&h->apply_waiters) > 0) {
                pthread_mutex_lock(&h->apply_mu);
                pthread_cond_broadcast(&h->apply_cv);
                pthread_mutex_unlock(&h->apply_mu);
            }
        }
    }
    rt_apply_scratch_free(s);
    return NULL;
}

int rt_apply_pool_start(struct craft_host *h, size_t threads)
{
    CRAFT_ASSERT(threads >= 1);
    h->apply = calloc(threads, sizeof *h->apply);
    if (h->apply == NULL) {
        return CRAFT_ENOMEM;
    }
    pthread_mutex_init(&h->apply_mu, NULL);
    pthread_cond_init(&h->apply_cv, NULL);
    for (size_t i = 0; i < threads; i++) {
        struct rt_apply_thread *t = &h->apply[i];
        t->host = h;
        rt_queue_init(&t->ready, 0);
        if (pthread_create(&t->thread, NULL, apply_main, t) != 0) {
            rt_queue_destroy(&t->ready);
            return CRAFT_ENOMEM; /* the n_apply started stop in rt_apply_pool_stop */
        }
        h->n_apply++;
    }
    return CRAFT_OK;
}

void rt_apply_pool_stop(struct craft_host *h)
{
    for (size_t i = 0; i < h->n_apply; i++) {
        rt_queue_close(&h->apply[i].ready);
        pthread_join(h->apply[i].thread, NULL);
        rt_queue_destroy(&h->apply[i].ready);
    }
    if (h->apply != NULL) {
        pthread_mutex_destroy(&h->apply_mu);
        pthread_cond_destroy(&h->apply_cv);
    }
    free(h->apply);
    h->apply = NULL;
    h->n_apply = 0;
}

void rt_apply_assign(struct craft_host *h, struct craft_node *n)
{
    /* Under h->mu (attach). */
    struct rt_apply_thread *best = &h->apply[0];
    for (size_t i = 1; i < h->n_apply; i++) {
        if (h->apply[i].groups < best->groups) {
            best = &h->apply[i];
        }
    }
    best->groups++;
    n->apply_thread = best;
}

void rt_apply_release(struct craft_node *n)
{
    struct craft_host *h = n->host;
    pthread_mutex_lock(&h->apply_mu);
    atomic_fetch_add(&h->apply_waiters, 1);
    while (atomic_load(&n->apply_finished) < n->apply_pushed ||
           atomic_load(&n->apply_tickets_done) < n->apply_tickets_pushed) {
        pthread_cond_wait(&h->apply_cv, &h->apply_mu);
    }
    atomic_fetch_sub(&h->apply_waiters, 1);
    pthread_mutex_unlock(&h->apply_mu);
    rt_fsm_join_snapshot(n);
    pthread_mutex_lock(&h->mu);
    n->apply_thread->groups--;
    pthread_mutex_unlock(&h->mu);
}
