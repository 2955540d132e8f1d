/* What to say when UCX_TLS leaves UCX nothing to use. UCX itself names the
 * valid transports only in a warning on stderr ("transport 'x' is not
 * available, please use one or more of: ..."), which a program's log may
 * not keep; our sentence lists them too, found by a second context made
 * with TLS=all (costly, but only on this failure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "transport/transport.h"

/* Adds `name` to the list ("a, b, c") unless it is there already. */
static void add_name(char *list, size_t size, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ',' || p[len] == '\0'))
            return;
    size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s", used ? ", " : "", name);
}

/* The transport names of a context's resources, as ucp_context_print_info()
 * shows them ("resource 1 : md 1 dev 1 flags -- tcp/lo"). */
static void offered(ucp_context_h ctx, char *list, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return;
    ucp_context_print_info(ctx, f);
    fclose(f);
    for (char *p = text; p != NULL && (p = strstr(p, "flags -- ")) != NULL;) {
        p += strlen("flags -- ");
        size_t n = strcspn(p, "/ \n");
        char name[32];
        if (n > 0 && n < sizeof name && p[n] == '/') {
            memcpy(name, p, n);
            name[n] = '\0';
            add_name(list, size, name);
        }
    }
    free(text);
    /* UCX's aliases for groups of them, where members are here */
    if (strstr(list, "posix") || strstr(list, "sysv"))
        add_name(list, size, "mm");
    if (strstr(list, "posix") || strstr(list, "sysv") || strstr(list, "cma"))
        add_name(list, size, "sm");
}

int nxc_ucx_init_failed(ucs_status_t st, const ucp_params_t *params)
{
    const char *tls = getenv("UCX_TLS");
    char list[256] = "";
    ucp_config_t *config;
    ucp_context_h ctx;
    if (st != UCS_ERR_NO_DEVICE || tls == NULL || tls[0] == '\0' ||
        ucp_config_read(NULL, NULL, &config) != UCS_OK)
        return nxc_ucx_fail(st, "ucp_init");
    if (ucp_config_modify(config, "TLS", "all") == UCS_OK &&
        ucp_init(params, config, &ctx) == UCS_OK) {
        offered(ctx, list, sizeof list);
        ucp_cleanup(ctx);
    }
    ucp_config_release(config);
    if (list[0] == '\0')
        return nxc_ucx_fail(st, "ucp_init");
    return nxc_fail(NXC_ERR_TRANSPORT,
                    "ucp_init failed: %s: UCX_TLS=%s leaves UCX no transport it can use "
                    "here; it offers %s (or unset UCX_TLS to let UCX choose)",
                    ucs_status_string(st), tls, list);
}
