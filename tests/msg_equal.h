/* Field-by-field equality of decoded messages and configurations, shared by the codec's
 * unit test and fuzz targets. Payload pointers must agree on NULL-ness (core.h: NULL
 * exactly when the length is 0) as well as on bytes. */
#ifndef CRAFT_TESTS_MSG_EQUAL_H
#define CRAFT_TESTS_MSG_EQUAL_H

#include <stdbool.h>
#include <string.h>

#include "core/core.h"

static inline bool conf_equal(const struct craft_conf *a, const struct craft_conf *b)
{
    return a->n_voters == b->n_voters && a->n_voters_outgoing == b->n_voters_outgoing &&
           a->n_learners == b->n_learners && a->n_learners_next == b->n_learners_next &&
           memcmp(a->voters, b->voters, a->n_voters * sizeof(uint64_t)) == 0 &&
           memcmp(a->voters_outgoing, b->voters_outgoing,
                  a->n_voters_outgoing * sizeof(uint64_t)) == 0 &&
           memcmp(a->learners, b->learners, a->n_learners * sizeof(uint64_t)) == 0 &&
           memcmp(a->learners_next, b->learners_next,
                  a->n_learners_next * sizeof(uint64_t)) == 0;
}

static inline bool bytes_equal(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    return (a == NULL) == (b == NULL) && (n == 0 || memcmp(a, b, n) == 0);
}

static inline bool msg_equal(const struct craft_msg *a, const struct craft_msg *b)
{
    if (a->type != b->type || a->reject != b->reject || a->last != b->last ||
        a->transfer != b->transfer || a->from != b->from || a->to != b->to ||
        a->term != b->term || a->log_index != b->log_index || a->log_term != b->log_term ||
        a->commit != b->commit || a->index != b->index || a->reject_hint != b->reject_hint ||
        a->reject_term != b->reject_term || a->ctx != b->ctx || a->n_entries != b->n_entries ||
        a->offset != b->offset || a->chunk_len != b->chunk_len ||
        a->snap.index != b->snap.index || a->snap.term != b->snap.term ||
        !conf_equal(&a->snap.conf, &b->snap.conf) ||
        !bytes_equal(a->chunk, b->chunk, a->chunk_len)) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct craft_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type ||
            x->len != y->len || !bytes_equal(x->data, y->data, x->len)) {
            return false;
        }
    }
    return true;
}

#endif
