/* A writable/write pair: the passive side exposes a buffer, the active side
 * writes into it. Two connectors in one process stand in for two workers;
 * in real use the metadata string crosses the network (see nxc serve/get). */
#include <stdio.h>
#include <string.h>

#include "nixl_connect.h"

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != NXC_OK) {                                                   \
            fprintf(stderr, "%s: %s (%s)\n", #call, nxc_strerror(rc_),         \
                    nxc_last_error());                                         \
            return 1;                                                          \
        }                                                                      \
    } while (0)

int main(void)
{
    static char inbox[64], message[64] = "hello from the active side";
    /* The passive worker only waits at the end, so it lets the connector
     * drive itself; the active one is driven by its own nxc_op_wait. */
    nxc_connector_config_t cfg = { .field_mask = NXC_CONFIG_PROGRESS_THREAD,
                                   .progress_thread = 1 };
    nxc_connector_t *passive, *active;
    CHECK(nxc_connector_create(&cfg, &passive));
    CHECK(nxc_connector_create(NULL, &active));

    /* Passive worker: expose `inbox` and publish the metadata. */
    nxc_descriptor_t in = { inbox, sizeof(inbox), { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *writable;
    const char *json;
    size_t len;
    CHECK(nxc_create_writable(passive, &in, 1, &writable));
    CHECK(nxc_op_metadata(writable, &json, &len));

    /* Active worker: parse the metadata and write `message` into `inbox`. */
    nxc_metadata_t *md;
    nxc_op_t *write;
    nxc_descriptor_t out = { message, sizeof(message), { NXC_DEVICE_HOST, 0 } };
    CHECK(nxc_metadata_parse(json, len, &md));
    CHECK(nxc_begin_write(active, &out, 1, md, &write));

    CHECK(nxc_op_wait(write, 5000));    /* data in place, passive side told */
    CHECK(nxc_op_wait(writable, 5000)); /* ... and the passive side knows */
    printf("passive side received: \"%s\" (%zu bytes of metadata)\n", inbox, len);

    nxc_op_release(write);
    nxc_op_release(writable);
    nxc_metadata_free(md);
    nxc_connector_destroy(active);
    nxc_connector_destroy(passive);
    return strcmp(inbox, message) == 0 ? 0 : 1;
}
