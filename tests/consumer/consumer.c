/* A program built only from an installed nixl_connect (tests/consumer/run.sh):
 * "consumer serve" exposes a buffer and prints its metadata line, "consumer
 * get" reads that line on stdin, reads the buffer and checks every byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nixl_connect.h>
#ifdef CONSUMER_WITH_NATS
#include <nixl_connect_nats.h>
#endif

#define SIZE (1u << 20)

static int fail(const char *what, int rc)
{
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, nxc_err_name(rc), nxc_last_error());
    return 1;
}

static void fill(unsigned char *buf)
{
    for (unsigned i = 0; i < SIZE; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
}

static int serve(nxc_connector_t *c, unsigned char *buf)
{
    nxc_descriptor_t d = { buf, SIZE, { NXC_DEVICE_HOST, 0 } };
    nxc_op_t *op;
    const char *json;
    size_t len;
    int rc;
    fill(buf);
    if ((rc = nxc_create_readable(c, &d, 1, &op)) != NXC_OK)
        return fail("create_readable", rc);
    if ((rc = nxc_op_metadata(op, &json, &len)) != NXC_OK)
        return fail("metadata", rc);
    printf("%.*s\n", (int)len, json);
    fflush(stdout);
    rc = nxc_op_wait(op, 30000);
    nxc_op_release(op);
    return rc == NXC_OK ? 0 : fail("wait (serve)", rc);
}

static int get(nxc_connector_t *c, unsigned char *buf)
{
    static char line[1 << 16];
    nxc_descriptor_t d = { buf, SIZE, { NXC_DEVICE_HOST, 0 } };
    nxc_metadata_t *md;
    nxc_op_t *op;
    int rc;
    if (!fgets(line, sizeof line, stdin))
        return fail("no metadata on stdin", NXC_ERR_BAD_METADATA);
    if ((rc = nxc_metadata_parse(line, strcspn(line, "\n"), &md)) != NXC_OK)
        return fail("metadata_parse", rc);
    if ((rc = nxc_begin_read(c, md, &d, 1, &op)) != NXC_OK)
        return fail("begin_read", rc);
    rc = nxc_op_wait(op, 30000);
    nxc_op_release(op);
    nxc_metadata_free(md);
    if (rc != NXC_OK)
        return fail("wait (get)", rc);
    for (unsigned i = 0; i < SIZE; i++) {
        if (buf[i] != (unsigned char)(i * 7 + 3)) {
            fprintf(stderr, "consumer: byte %u differs\n", i);
            return 1;
        }
    }
    printf("consumer: %u bytes read and checked (nixl_connect %s)\n", SIZE, nxc_version());
    return 0;
}

int main(int argc, char **argv)
{
    nxc_connector_t *c;
    int rc = NXC_CHECK_COMPATIBILITY();
    if (rc != NXC_OK)
        return fail("compatibility", rc);
#ifdef CONSUMER_WITH_NATS
    if (!nxc_nats_strerror(NXC_OK))   /* links the NATS module too */
        return 1;
#endif
    if (argc != 2 || (strcmp(argv[1], "serve") != 0 && strcmp(argv[1], "get") != 0)) {
        fprintf(stderr, "usage: consumer serve|get\n");
        return 2;
    }
    unsigned char *buf = calloc(1, SIZE);
    if (!buf || (rc = nxc_connector_create(NULL, &c)) != NXC_OK)
        return fail("connector_create", buf ? rc : NXC_ERR_NO_MEMORY);
    rc = strcmp(argv[1], "serve") == 0 ? serve(c, buf) : get(c, buf);
    nxc_connector_destroy(c);
    free(buf);
    return rc;
}
