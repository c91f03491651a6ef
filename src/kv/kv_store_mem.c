/* The in-memory craftkv store: one persistent treap per table.
 *
 * Persistent (path copying): a write never changes a node that a committed version or a
 * read transaction can reach; it copies the nodes on its search path instead. So a read
 * transaction is a reference to the committed roots (O(1), lives as long as it likes on
 * any thread), a write transaction is a private set of roots that commit swaps in, and
 * abort just drops them. Nodes and items are reference counted (atomically: a snapshot
 * thread may drop the last reference to a node the writer also dropped).
 *
 * Treap priorities are a hash of the key, so the shape depends only on the set of keys (no
 * randomness, identical on every run) and is balanced in expectation.
 *
 * Allocation failures surface as CRAFT_ENOMEM: before each change the nodes it can need
 * (bounded by the length of its search path) are allocated into a reserve, so the
 * recursive path copy itself never fails half way. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/kv_store.h"

struct item {
    atomic_uint refs;
    uint32_t klen;
    size_t vlen;
    uint8_t bytes[]; /* key, then value */
};

struct node {
    atomic_uint refs;
    uint64_t prio;
    struct node *l, *r;
    struct item *it;
};

struct mem_store {
    struct craft_kv_store base;
    pthread_mutex_t mu; /* guards roots and writing */
    struct node *roots[CRAFT_KV_TABLES];
    bool writing;
};

struct craft_kv_txn {
    struct mem_store *s;
    bool write;
    struct node *roots[CRAFT_KV_TABLES];
    struct node *reserve; /* spare nodes, linked through l */
};

/* ---- keys ---- */

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static int node_cmp(const uint8_t *key, size_t klen, const struct node *n)
{
    return key_cmp(key, klen, n->it->bytes, n->it->klen);
}

static uint64_t key_prio(const uint8_t *key, size_t klen)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then a 64-bit finalizer */
    for (size_t i = 0; i < klen; i++) {
        h = (h ^ key[i]) * 0x100000001b3u;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebu;
    return h ^ (h >> 31);
}

/* True if a belongs above b: a total order, as keys are unique within a tree. */
static bool higher(const struct node *a, const struct node *b)
{
    if (a->prio != b->prio) {
        return a->prio > b->prio;
    }
    return key_cmp(a->it->bytes, a->it->klen, b->it->bytes, b->it->klen) < 0;
}

/* ---- references ---- */

static void item_unref(struct item *it)
{
    if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) == 1) {
        free(it);
    }
}

static struct node *node_ref(struct node *n)
{
    if (n != NULL) {
        atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
    }
    return n;
}

static void node_unref(struct node *n)
{
    while (n != NULL && atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1) {
        struct node *r = n->r;
        node_unref(n->l);
        item_unref(n->it);
        free(n);
        n = r; /* the right spine without recursion */
    }
}

/* ---- the reserve ---- */

static int reserve_fill(struct craft_kv_txn *t, size_t want)
{
    size_t have = 0;
    for (struct node *n = t->reserve; n != NULL; n = n->l) {
        have++;
    }
    for (; have < want; have++) {
        struct node *n = malloc(sizeof *n);
        if (n == NULL) {
            return CRAFT_ENOMEM; /* the reserve stays for next time */
        }
        n->l = t->reserve;
        t->reserve = n;
    }
    return CRAFT_OK;
}

static void reserve_free(struct craft_kv_txn *t)
{
    while (t->reserve != NULL) {
        struct node *n = t->reserve;
        t->reserve = n->l;
        free(n);
    }
}

/* A node taking one reference to it and owning l and r. */
static struct node *node_make(struct craft_kv_txn *t, struct item *it, uint64_t prio,
                              struct node *l, struct node *r)
{
    struct node *n = t->reserve;
    CRAFT_ASSERT(n != NULL); /* the reserve was sized by search_len */
    t->reserve = n->l;
    atomic_init(&n->refs, 1);
    n->prio = prio;
    n->l = l;
    n->r = r;
    n->it = it;
    return n;
}

static struct node *node_copy(struct craft_kv_txn *t, const struct node *from, struct node *l,
                              struct node *r)
{
    atomic_fetch_add_explicit(&from->it->refs, 1, memory_order_relaxed);
    return node_make(t, from->it, from->prio, l, r);
}

/* ---- persistent treap operations (tree arguments borrowed, results owned) ---- */

static void split(struct craft_kv_txn *t, const struct node *n, const uint8_t *key, size_t klen,
                  struct node **l, struct node **r)
{
    if (n == NULL) {
        *l = *r = NULL;
        return;
    }
    int c = node_cmp(key, klen, n);
    CRAFT_ASSERT(c != 0); /* see insert */
    struct node *x;
    if (c < 0) {
        split(t, n->l, key, klen, l, &x);
        *r = node_copy(t, n, x, node_ref(n->r));
    } else {
        split(t, n->r, key, klen, &x, r);
        *l = node_copy(t, n, node_ref(n->l), x);
    }
}

/* nw: a fresh node (owned) with no children. */
static struct node *insert(struct craft_kv_txn *t, const struct node *n, struct node *nw)
{
    if (n == NULL) {
        return nw;
    }
    int c = node_cmp(nw->it->bytes, nw->it->klen, n);
    if (c == 0) {
        /* Same key, same priority: the new node takes the old one's place. */
        nw->l = node_ref(n->l);
        nw->r = node_ref(n->r);
        return nw;
    }
    if (higher(nw, n)) {
        /* nw goes here. Its key is not below: a node with that key would have nw's
         * priority, so it would be higher than n and found above. */
        split(t, n, nw->it->bytes, nw->it->klen, &nw->l, &nw->r);
        return nw;
    }
    if (c < 0) {
        return node_copy(t, n, insert(t, n->l, nw), node_ref(n->r));
    }
    return node_copy(t, n, node_ref(n->l), insert(t, n->r, nw));
}

static struct node *merge(struct craft_kv_txn *t, const struct node *a, const struct node *b)
{
    if (a == NULL) {
        return node_ref((struct node *)b);
    }
    if (b == NULL) {
        return node_ref((struct node *)a);
    }
    if (higher(a, b)) {
        return node_copy(t, a, node_ref(a->l), merge(t, a->r, b));
    }
    return node_copy(t, b, merge(t, a, b->l), node_ref(b->r));
}

/* The key is present in n. */
static struct node *remove_key(struct craft_kv_txn *t, const struct node *n, const uint8_t *key,
                               size_t klen)
{
    int c = node_cmp(key, klen, n);
    if (c == 0) {
        return merge(t, n->l, n->r);
    }
    if (c < 0) {
        return node_copy(t, n, remove_key(t, n->l, key, klen), node_ref(n->r));
    }
    return node_copy(t, n, node_ref(n->l), remove_key(t, n->r, key, klen));
}

/* Nodes on the search path for key, and through it the spines a removal merges: an upper
 * bound on the nodes insert or remove_key create. Sets *found. */
static size_t search_len(const struct node *n, const uint8_t *key, size_t klen, bool *found)
{
    size_t len = 0;
    *found = false;
    while (n != NULL) {
        len++;
        int c = node_cmp(key, klen, n);
        if (c == 0) {
            *found = true;
            for (const struct node *x = n->l; x != NULL; x = x->r) {
                len++;
            }
            for (const struct node *x = n->r; x != NULL; x = x->l) {
                len++;
            }
            break;
        }
        n = c < 0 ? n->l : n->r;
    }
    return len + 1;
}

/* ---- the vtable ---- */

static int mem_begin(struct craft_kv_store *base, bool write, struct craft_kv_txn **out)
{
    struct mem_store *s = (struct mem_store *)base;
    struct craft_kv_txn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return CRAFT_ENOMEM;
    }
    t->s = s;
    t->write = write;
    pthread_mutex_lock(&s->mu);
    if (write) {
        CRAFT_ASSERT(!s->writing);
        s->writing = true;
    }
    for (int i = 0; i < CRAFT_KV_TABLES; i++) {
        t->roots[i] = node_ref(s->roots[i]);
    }
    pthread_mutex_unlock(&s->mu);
    *out = t;
    return CRAFT_OK;
}

static int mem_get(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen,
                   const uint8_t **val, size_t *vlen)
{
    CRAFT_ASSERT(table >= 0 && table < CRAFT_KV_TABLES);
    const struct node *n = t->roots[table];
    while (n != NULL) {
        int c = node_cmp(key, klen, n);
        if (c == 0) {
            *val = n->it->bytes + n->it->klen;
            *vlen = n->it->vlen;
            return CRAFT_OK;
        }
        n = c < 0 ? n->l : n->r;
    }
    return CRAFT_ENOTFOUND;
}

static int mem_put(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
    CRAFT_ASSERT(t->write && table >= 0 && table < CRAFT_KV_TABLES);
    if (klen > UINT32_MAX || vlen > SIZE_MAX - sizeof(struct item) - klen) {
        return CRAFT_EINVAL;
    }
    bool found;
    int rc = reserve_fill(t, search_len(t->roots[table], key, klen, &found));
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct item *it = malloc(sizeof *it + klen + vlen);
    if (it == NULL) {
        return CRAFT_ENOMEM;
    }
    atomic_init(&it->refs, 1);
    it->klen = (uint32_t)klen;
    it->vlen = vlen;
    if (klen > 0) {
        memcpy(it->bytes, key, klen);
    }
    if (vlen > 0) {
        memcpy(it->bytes + klen, val, vlen);
    }
    struct node *nw = node_make(t, it, key_prio(key, klen), NULL, NULL);
    struct node *root = insert(t, t->roots[table], nw);
    node_unref(t->roots[table]);
    t->roots[table] = root;
    return CRAFT_OK;
}

static int mem_del(struct craft_kv_txn *t, int table, const uint8_t *key, size_t klen)
{
    CRAFT_ASSERT(t->write && table >= 0 && table < CRAFT_KV_TABLES);
    bool found;
    size_t need = search_len(t->roots[table], key, klen, &found);
    if (!found) {
        return CRAFT_ENOTFOUND;
    }
    int rc = reserve_fill(t, need);
    if (rc != CRAFT_OK) {
        return rc;
    }
    struct node *root = remove_key(t, t->roots[table], key, klen);
    node_unref(t->roots[table]);
    t->roots[table] = root;
    return CRAFT_OK;
}

static int mem_drop(struct craft_kv_txn *t, int table)
{
    CRAFT_ASSERT(t->write && table >= 0 && table < CRAFT_KV_TABLES);
    node_unref(t->roots[table]);
    t->roots[table] = NULL;
    return CRAFT_OK;
}

/* In order, keys >= from (from NULL: all). The tree is stable: fn must not write. */
static int iter_node(const struct node *n, const uint8_t *from, size_t from_len,
                     craft_kv_iter_fn fn, void *ctx)
{
    while (n != NULL) {
        const struct item *it = n->it;
        if (from != NULL && node_cmp(from, from_len, n) > 0) {
            n = n->r; /* this node and its left subtree are below from */
            continue;
        }
        int rc = iter_node(n->l, from, from_len, fn, ctx);
        if (rc != CRAFT_OK) {
            return rc;
        }
        rc = fn(ctx, it->bytes, it->klen, it->bytes + it->klen, it->vlen);
        if (rc != CRAFT_OK) {
            return rc;
        }
        from = NULL; /* everything to the right is above from */
        n = n->r;
    }
    return CRAFT_OK;
}

static int mem_iter(struct craft_kv_txn *t, int table, const uint8_t *from, size_t from_len,
                    craft_kv_iter_fn fn, void *ctx)
{
    CRAFT_ASSERT(table >= 0 && table < CRAFT_KV_TABLES);
    int rc = iter_node(t->roots[table], from, from_len, fn, ctx);
    return rc == CRAFT_KV_ITER_STOP ? CRAFT_OK : rc;
}

static void txn_free(struct craft_kv_txn *t)
{
    for (int i = 0; i < CRAFT_KV_TABLES; i++) {
        node_unref(t->roots[i]);
    }
    reserve_free(t);
    free(t);
}

static int mem_commit(struct craft_kv_txn *t)
{
    CRAFT_ASSERT(t->write);
    struct mem_store *s = t->s;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < CRAFT_KV_TABLES; i++) {
        struct node *old = s->roots[i];
        s->roots[i] = t->roots[i];
        t->roots[i] = old; /* freed below, outside the lock */
    }
    s->writing = false;
    pthread_mutex_unlock(&s->mu);
    txn_free(t);
    return CRAFT_OK;
}

static void mem_abort(struct craft_kv_txn *t)
{
    if (t->write) {
        pthread_mutex_lock(&t->s->mu);
        t->s->writing = false;
        pthread_mutex_unlock(&t->s->mu);
    }
    txn_free(t);
}

static void mem_close(struct craft_kv_store *base)
{
    struct mem_store *s = (struct mem_store *)base;
    CRAFT_ASSERT(!s->writing);
    for (int i = 0; i < CRAFT_KV_TABLES; i++) {
        node_unref(s->roots[i]);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const struct craft_kv_store_ops mem_ops = {
    .begin = mem_begin,
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .drop = mem_drop,
    .iter = mem_iter,
    .commit = mem_commit,
    .abort = mem_abort,
    .close = mem_close,
};

int craft_kv_store_mem_open(struct craft_kv_store **out)
{
    struct mem_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return CRAFT_ENOMEM;
    }
    s->base.ops = &mem_ops;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return CRAFT_ENOMEM;
    }
    *out = &s->base;
    return CRAFT_OK;
}
