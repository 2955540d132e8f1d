/* Printable names of the enums, as Dynamo prints them. */
#include "nixl_connect.h"

const char *nxc_op_status_name(nxc_op_status_t status)
{
    /* Dynamo's OperationStatus.__str__ short forms; UNINITIALIZED has none
     * because no live operation is ever in that state. */
    switch (status) {
    case NXC_OP_INITIALIZED:
        return "INIT";
    case NXC_OP_IN_PROGRESS:
        return "PROC";
    case NXC_OP_COMPLETE:
        return "DONE";
    case NXC_OP_CANCELLED:
        return "STOP";
    case NXC_OP_ERRORED:
        return "ERR";
    case NXC_OP_UNINITIALIZED:
    default:
        return "<invalid>";
    }
}

const char *nxc_op_kind_name(nxc_op_kind_t kind)
{
    switch (kind) {
    case NXC_OP_READ:
        return "READ";
    case NXC_OP_WRITE:
        return "WRITE";
    case NXC_OP_KIND_UNSPECIFIED:
    default:
        return "<invalid>";
    }
}
