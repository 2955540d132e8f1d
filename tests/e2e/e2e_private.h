/* Probes of the library's private structures, for the e2e tests that link
 * nxc_static (nxc_e2e_common_private): e2e_common.h stays public-API only. */
#ifndef NXC_E2E_PRIVATE_H
#define NXC_E2E_PRIVATE_H

#include <string.h>

#include "engine/connector.h"

/* The peers the connector knows and how many of them have an endpoint,
 * read under its lock. */
static inline void e2e_count_peers(nxc_connector_t *c, unsigned *peers, unsigned *endpoints)
{
    *peers = *endpoints = 0;
    nxc_lock(c);
    for (nxc_peer_t *p = c->peers; p != NULL; p = p->next) {
        ++*peers;
        *endpoints += p->ep != NULL;
    }
    nxc_unlock(c);
}

/* Whether the connector's peer of that name has answered its first message
 * (the first-answer deadline no longer applies to it); -1 if it has none. */
static inline int e2e_peer_reached(nxc_connector_t *c, const char *name)
{
    int reached = -1;
    nxc_lock(c);
    for (nxc_peer_t *p = c->peers; p != NULL; p = p->next)
        if (strcmp(p->name, name) == 0)
            reached = p->reached;
    nxc_unlock(c);
    return reached;
}

#endif
