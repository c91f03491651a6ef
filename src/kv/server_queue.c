/* craftkv: the queues that carry batches between the stages of the server.
 *
 * Every stage change that does not happen inside one call on the loop goes through here:
 * a future completed on a node thread, or a worker finished an admin command (done: any
 * thread, under the mutex, one eventfd write per drain); the forwarding connection settled
 * a batch, or the read round finished (ready: loop thread only, no lock, no wake-up); a
 * batch waits before it is routed again (later: loop thread, by due time). The loop takes
 * them all in one list every round (craftkv_ready_take) and steps each batch: so a module
 * that completes a batch never calls back into the one that started it. */
#include <stdlib.h>
#include <unistd.h>

#include "base/assert.h"
#include "kv/server_internal.h"

static void task_push(struct craftkv_task **head, struct craftkv_task **tail,
                      struct craftkv_task *t)
{
    t->next = NULL;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
}

static struct craftkv_task *task_pop(struct craftkv_task **head, struct craftkv_task **tail)
{
    struct craftkv_task *t = *head;
    if (t) {
        *head = t->next;
        if (!*head)
            *tail = NULL;
        t->next = NULL;
    }
    return t;
}

void craftkv_batch_free(struct craftkv_task *t)
{
    while (t) {
        struct craftkv_task *next = t->chain;
        if (t->fut)
            craft_future_release(t->fut);
        craft_resp_buf_free(&t->out);
        free(t); /* its arguments live in the same block (server_conn.c, submit) */
        t = next;
    }
}

void craftkv_done_push(struct craftkv_server *s, struct craftkv_task *head)
{
    bool wake = head == NULL;
    pthread_mutex_lock(&s->mu);
    if (head) {
        /* The loop reads the eventfd before it takes the list, so a push that finds the
         * list non-empty is taken by a drain that is already due: no second write. */
        wake = s->done_head == NULL;
        task_push(&s->done_head, &s->done_tail, head);
    }
    pthread_mutex_unlock(&s->mu);
    uint64_t one = 1;
    if (wake && write(s->evfd, &one, sizeof one) < 0) {
        /* the counter cannot overflow in practice; the loop also polls on a timeout */
    }
}

void craftkv_ready_push(struct craftkv_server *s, struct craftkv_task *head)
{
    task_push(&s->ready_head, &s->ready_tail, head);
}

void craftkv_later_push(struct craftkv_server *s, struct craftkv_task *head, uint64_t due_ms)
{
    CRAFT_ASSERT(head->stage == CRAFTKV_STAGE_BACKOFF);
    head->due_ms = due_ms;
    /* Sorted by due time; few batches wait at once (one per connection at most). */
    struct craftkv_task **p = &s->later;
    while (*p && (*p)->due_ms <= due_ms)
        p = &(*p)->next;
    head->next = *p;
    *p = head;
}

struct craftkv_task *craftkv_ready_take(struct craftkv_server *s, bool woken)
{
    uint64_t n;
    if (woken && read(s->evfd, &n, sizeof n) < 0) {
        /* nothing pending (EAGAIN): fine */
    }
    pthread_mutex_lock(&s->mu);
    struct craftkv_task *done = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (done) {
        struct craftkv_task *t = done;
        done = t->next;
        craftkv_ready_push(s, t);
    }
    uint64_t now = craftkv_mono_ms();
    while (s->later && s->later->due_ms <= now) {
        struct craftkv_task *t = s->later;
        s->later = t->next;
        craftkv_ready_push(s, t);
    }
    struct craftkv_task *list = s->ready_head;
    s->ready_head = s->ready_tail = NULL;
    return list;
}

int craftkv_later_wait_ms(struct craftkv_server *s, int max_ms)
{
    if (s->ready_head)
        return 0;
    return s->later ? craftkv_ms_until(s->later->due_ms, max_ms) : max_ms;
}

void craftkv_todo_push(struct craftkv_server *s, struct craftkv_task *head)
{
    pthread_mutex_lock(&s->mu);
    task_push(&s->todo_head, &s->todo_tail, head);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

struct craftkv_task *craftkv_todo_pop(struct craftkv_server *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stopping && !s->todo_head)
        pthread_cond_wait(&s->cv, &s->mu);
    struct craftkv_task *t = s->stopping ? NULL : task_pop(&s->todo_head, &s->todo_tail);
    pthread_mutex_unlock(&s->mu);
    return t;
}

void craftkv_queues_free(struct craftkv_server *s)
{
    struct craftkv_task *t;
    while ((t = task_pop(&s->todo_head, &s->todo_tail)))
        craftkv_batch_free(t);
    while ((t = task_pop(&s->done_head, &s->done_tail)))
        craftkv_batch_free(t);
    while ((t = task_pop(&s->ready_head, &s->ready_tail)))
        craftkv_batch_free(t);
    while ((t = s->later)) {
        s->later = t->next;
        craftkv_batch_free(t);
    }
}
