#include "engine/keytable.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "engine/op.h"

#define INITIAL_BUCKETS 256u

static size_t bucket_of(const struct nxc_keytable *t, const uint8_t key[NXC_KEY_BYTES])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h)); /* keys are uniformly random already */
    return (size_t)(h & (t->n_buckets - 1));
}

static int grow_keys(struct nxc_keytable *t)
{
    size_t old_n = t->n_buckets, new_n = old_n ? old_n * 2 : INITIAL_BUCKETS;
    nxc_op_t **fresh = calloc(new_n, sizeof(*fresh));
    if (fresh == NULL)
        return nxc_fail(NXC_ERR_NO_MEMORY, "no memory to grow a key table to %zu", new_n);
    nxc_op_t **old = t->buckets;
    t->buckets = fresh;
    t->n_buckets = new_n;
    for (size_t b = 0; b < old_n; b++) {
        for (nxc_op_t *op = old[b], *next; op != NULL; op = next) {
            next = op->key_next;
            size_t nb = bucket_of(t, op->key);
            op->key_next = fresh[nb];
            fresh[nb] = op;
        }
    }
    free(old);
    return NXC_OK;
}

int nxc_keys_insert(struct nxc_keytable *t, nxc_op_t *op)
{
    if (t->count >= t->n_buckets) {
        int rc = grow_keys(t);
        if (rc != NXC_OK)
            return rc;
    }
    size_t b = bucket_of(t, op->key);
    op->key_next = t->buckets[b];
    t->buckets[b] = op;
    op->key_table = t;
    t->count++;
    return NXC_OK;
}

nxc_op_t *nxc_keys_find(struct nxc_keytable *t, const uint8_t key[NXC_KEY_BYTES])
{
    if (t->n_buckets == 0)
        return NULL;
    for (nxc_op_t *op = t->buckets[bucket_of(t, key)]; op != NULL; op = op->key_next)
        if (memcmp(op->key, key, NXC_KEY_BYTES) == 0)
            return op;
    return NULL;
}

nxc_op_t *nxc_keys_find_tagged(struct nxc_keytable *t, const uint8_t key[NXC_KEY_BYTES],
                               uint64_t tag)
{
    if (t->n_buckets == 0)
        return NULL;
    for (nxc_op_t *op = t->buckets[bucket_of(t, key)]; op != NULL; op = op->key_next)
        if (op->tag == tag && memcmp(op->key, key, NXC_KEY_BYTES) == 0)
            return op;
    return NULL;
}

void nxc_keys_remove(nxc_op_t *op)
{
    struct nxc_keytable *t = op->key_table;
    if (t == NULL)
        return;
    for (nxc_op_t **pp = &t->buckets[bucket_of(t, op->key)]; *pp != NULL;
         pp = &(*pp)->key_next) {
        if (*pp == op) {
            *pp = op->key_next;
            break;
        }
    }
    op->key_table = NULL;
    t->count--;
}

int nxc_keys_init(struct nxc_keytable *t)
{
    return grow_keys(t);
}

void nxc_keys_fini(struct nxc_keytable *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->n_buckets = t->count = 0;
}
