// The module's header compiles as C++ (extern "C", no C-only constructs):
// built, never run; a failure is a build error.
#include "nixl_connect_nats.h"

int nxc_nats_header_cxx_check();
int nxc_nats_header_cxx_check()
{
    nxc_nats_config_t cfg = {};
    cfg.field_mask = NXC_NATS_CONFIG_TIMEOUT;
    return cfg.timeout_ms + NXC_NATS_ERR_NATS;
}
