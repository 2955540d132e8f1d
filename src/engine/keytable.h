/* Private: a connector's key tables, ops found by their 128-bit key (a
 * chained hash table; keys are random, so their first bytes are the hash).
 * An op is in at most one table (op->key_table) and leaves it when it
 * reaches a final state, so a key is consumed once. Lock held. */
#ifndef NXC_KEYTABLE_H
#define NXC_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "codec/metadata.h"

struct nxc_keytable {
    nxc_op_t **buckets;   /* chained on op->key_next */
    size_t     n_buckets; /* power of two */
    size_t     count;
};

/* Allocates the first buckets. Returns 0 or NXC_ERR_NO_MEMORY. */
int  nxc_keys_init(struct nxc_keytable *t);
/* Frees the buckets (not the ops). */
void nxc_keys_fini(struct nxc_keytable *t);

/* Adds the op under op->key (grows the table as needed). Returns 0 or
 * NXC_ERR_NO_MEMORY. */
int       nxc_keys_insert(struct nxc_keytable *t, nxc_op_t *op);
nxc_op_t *nxc_keys_find(struct nxc_keytable *t, const uint8_t key[NXC_KEY_BYTES]);
/* The active op with this key and tag (several may share a key). */
nxc_op_t *nxc_keys_find_tagged(struct nxc_keytable *t, const uint8_t key[NXC_KEY_BYTES],
                               uint64_t tag);
/* Takes the op out of its table, if it is in one. */
void      nxc_keys_remove(nxc_op_t *op);

#endif
