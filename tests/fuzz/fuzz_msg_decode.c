/* libFuzzer target: craft_msg_decode on arbitrary bytes.
 *
 * Any input must either fail cleanly or decode to a message whose encoding is exactly the
 * input (the encoding is canonical) and decodes again to an equal message, field by field.
 * ASan/UBSan catch any read outside the input. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "codec/msg_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool conf_equal(const struct craft_conf *a, const struct craft_conf *b)
{
    return a->n_voters == b->n_voters && a->n_voters_outgoing == b->n_voters_outgoing &&
           a->n_learners == b->n_learners && a->n_learners_next == b->n_learners_next &&
           memcmp(a->voters, b->voters, a->n_voters * sizeof(uint64_t)) == 0 &&
           memcmp(a->voters_outgoing, b->voters_outgoing,
                  a->n_voters_outgoing * sizeof(uint64_t)) == 0 &&
           memcmp(a->learners, b->learners, a->n_learners * sizeof(uint64_t)) == 0 &&
           memcmp(a->learners_next, b->learners_next, a->n_learners_next * sizeof(uint64_t)) == 0;
}

static bool bytes_equal(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    return (a == NULL) == (b == NULL) && (n == 0 || memcmp(a, b, n) == 0);
}

static bool msg_equal(const struct craft_msg *a, const struct craft_msg *b)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Kept across inputs so that scratch reuse and growth are fuzzed too; still reachable at
     * exit, so LeakSanitizer does not report it. */
    static struct craft_msg_decoder d1, d2;
    struct craft_msg m1, m2;
    int rv = craft_msg_decode(&d1, data, size, &m1);
    if (rv != CRAFT_OK) {
        CRAFT_ASSERT(rv == CRAFT_EMALFORMED || rv == CRAFT_EVERSION || rv == CRAFT_ETOOBIG);
        return 0;
    }
    CRAFT_ASSERT(craft_msg_peek_type(data, size) == m1.type);
    size_t n = craft_msg_encoded_size(&m1);
    CRAFT_ASSERT(n == size);
    uint8_t *buf = malloc(n);
    CRAFT_ASSERT(buf != NULL);
    CRAFT_ASSERT(craft_msg_encode(&m1, buf) == n);
    CRAFT_ASSERT(memcmp(buf, data, n) == 0);
    CRAFT_ASSERT(craft_msg_decode(&d2, buf, n, &m2) == CRAFT_OK);
    CRAFT_ASSERT(msg_equal(&m1, &m2));
    free(buf);
    return 0;
}
