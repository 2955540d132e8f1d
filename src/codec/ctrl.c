/* The control-message codec (see ctrl.h). */
#include "codec/ctrl.h"

#include <string.h>

#include "common/bytes.h"

size_t nxc_ctrl_len(const nxc_ctrl_msg_t *m)
{
    size_t len = NXC_CTRL_FIXED_LEN + m->name_len;
    if (m->flags & NXC_CTRL_FLAG_ADDR)
        len += 4 + m->addr_len;
    if (m->type == NXC_CTRL_WRITE)
        len += m->data_len;
    return len;
}

size_t nxc_ctrl_encode(const nxc_ctrl_msg_t *m, uint8_t *buf)
{
    buf[0] = (uint8_t)(m->type | m->flags);
    buf[1] = NXC_CTRL_VERSION;
    nxc_put_u16(buf + 2, (uint16_t)m->name_len);
    nxc_put_u32(buf + 4, m->sender.pid);
    nxc_put_u64(buf + 8, m->sender.pidns);
    memcpy(buf + 16, m->sender.host_id, NXC_HOST_ID_BYTES);
    memcpy(buf + 32, m->key, NXC_KEY_BYTES);
    nxc_put_u64(buf + 48, m->tag);
    buf[56] = m->reason;
    memcpy(buf + NXC_CTRL_FIXED_LEN, m->name, m->name_len);
    size_t len = NXC_CTRL_FIXED_LEN + m->name_len;
    if (m->flags & NXC_CTRL_FLAG_ADDR) {
        nxc_put_u32(buf + len, (uint32_t)m->addr_len);
        memcpy(buf + len + 4, m->addr, m->addr_len);
        len += 4 + m->addr_len;
    }
    if (m->type == NXC_CTRL_WRITE) {
        memcpy(buf + len, m->data, m->data_len);
        len += m->data_len;
    }
    return len;
}

int nxc_ctrl_decode(const uint8_t *m, size_t len, nxc_ctrl_msg_t *out)
{
    if (len < NXC_CTRL_FIXED_LEN || m[1] != NXC_CTRL_VERSION)
        return -1;
    size_t name_len = nxc_get_u16(m + 2);
    if (name_len == 0 || name_len > NXC_NAME_MAX || len < NXC_CTRL_FIXED_LEN + name_len)
        return -1;
    size_t end = NXC_CTRL_FIXED_LEN + name_len;
    out->type = m[0] & NXC_CTRL_TYPE_MASK;
    out->flags = m[0] & (uint8_t)~NXC_CTRL_TYPE_MASK;
    out->key = m + 32;
    out->name = (const char *)m + NXC_CTRL_FIXED_LEN;
    out->name_len = name_len;
    out->sender.pid = nxc_get_u32(m + 4);
    out->sender.pidns = nxc_get_u64(m + 8);
    memcpy(out->sender.host_id, m + 16, NXC_HOST_ID_BYTES);
    out->tag = nxc_get_u64(m + 48);
    out->reason = m[56];
    out->addr = NULL;
    out->addr_len = 0;
    out->data = NULL;
    out->data_len = 0;
    if (out->flags & NXC_CTRL_FLAG_ADDR) {
        if (len - end < 4)
            return -1;
        out->addr_len = nxc_get_u32(m + end);
        out->addr = m + end + 4;
        if (out->addr_len == 0 || out->addr_len > NXC_MAX_WORKER_ADDR ||
            out->addr_len > len - end - 4)
            return -1;
        end += 4 + out->addr_len;
    }
    if (out->type == NXC_CTRL_WRITE) {
        out->data = m + end;
        out->data_len = len - end;
        return out->data_len > 0 ? 0 : -1;
    }
    return len == end ? 0 : -1;
}
