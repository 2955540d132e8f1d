/* nxc bench: the results, as an aligned table or as JSON lines. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nxc_bench.h"

const char *bench_tls(void)
{
    const char *tls = getenv("UCX_TLS");
    return tls && tls[0] ? tls : "default";
}

/* Whether the passive worker's connector offers same-host direct copies:
 * the flag, else the library's default (NXC_DIRECT_LOCAL=0 turns it off;
 * a malformed value fails the connector). Whether an op takes the path is
 * the library's choice: not over UCX_TLS=tcp, for instance. */
static int bench_direct_offered(const bench_cfg_t *cfg)
{
    const char *env = getenv("NXC_DIRECT_LOCAL");
    return cfg->direct_local || env == NULL || env[0] == '\0' || strcmp(env, "0") != 0;
}

static const char *bench_direct(const bench_cfg_t *cfg)
{
    const char *env = getenv("NXC_DIRECT_LOCAL");
    if (cfg->direct_local)
        return "on";
    if (!bench_direct_offered(cfg))
        return "off (NXC_DIRECT_LOCAL=0)";
    return env != NULL && env[0] != '\0' ? "on (NXC_DIRECT_LOCAL=1)" : "default (on)";
}

static const char *op_name(nxc_op_kind_t k)
{
    return k == NXC_OP_READ ? "read" : "write";
}

void report_header(const bench_cfg_t *cfg)
{
    if (cfg->json)
        return;
    const char *pin = getenv("NXC_BENCH_PINNING");
    printf("# nxc bench: mem=%s tls=%s direct=%s; workers: %s; GB/s = 1e9 B/s\n",
           cfg->mem, bench_tls(), bench_direct(cfg), pin ? pin : "not pinned");
    if (cfg->passive_idle_ms >= 0 || cfg->passive_spin_us >= 0 || cfg->passive_thread ||
        cfg->direct_local)
        printf("# passive worker: idle %ld ms before each op (active %s meanwhile), "
               "spin_us %s, %s%s\n",
               cfg->passive_idle_ms < 0 ? 0 : cfg->passive_idle_ms,
               cfg->active_busy ? "busy" : "asleep",
               cfg->passive_spin_us < 0 ? "default" : "set",
               cfg->passive_thread ? "progress thread" : "no progress thread",
               cfg->direct_local ? ", same-host direct copies offered" : "");
    if (cfg->chan_spin_us > 0)
        printf("# channel: each worker polls its socket %u us before sleeping on it\n",
               cfg->chan_spin_us);
    printf("# timed: begin_* -> completion on the active side, metadata parsed "
           "beforehand, endpoint warm (GB/s, lat)\n"
           "# passive: active begin_* -> passive op complete; cycle: create, "
           "metadata, socket, parse, begin, complete both, release\n"
           "# backstop: the passive worker's sleeps in the timed phase ended by its safety "
           "bound that then found work / all ended by it\n");
    printf("%-5s %9s %5s %9s %6s %8s %10s %10s %10s %11s %11s %11s %9s\n", "op", "size",
           "descs", "desc_size", "iters", "GB/s", "lat_p50_us", "lat_p90_us", "lat_p99_us",
           "pasv_p50_us", "pasv_p90_us", "cycle_ops/s", "backstop");
    fflush(stdout);
}

void report_skip(const bench_cfg_t *cfg, nxc_op_kind_t kind, uint64_t size,
                 uint64_t descs)
{
    (void)cfg;
    fprintf(stderr, "nxc: bench: skipping %s of %" PRIu64 " B over %" PRIu64
            " descriptors (fewer bytes than descriptors)\n", op_name(kind),
            size, descs);
}

static void report_json(const bench_cfg_t *cfg, const bench_result_t *r)
{
    printf("{\"tool\":\"nxc\",\"op\":\"%s\",\"mem\":", op_name(r->kind));
    json_string(cfg->mem);
    printf(",\"tls\":");
    json_string(bench_tls());
    printf(",\"size\":%" PRIu64 ",\"desc_size\":%" PRIu64 ",\"descs\":%" PRIu64
           ",\"iters\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"gbps\":%.6g"
           ",\"lat_p50_us\":%.3f,\"lat_p90_us\":%.3f,\"lat_p99_us\":%.3f"
           ",\"passive_lat_p50_us\":%.3f,\"passive_lat_p90_us\":%.3f"
           ",\"passive_lat_p99_us\":%.3f"
           ",\"cycle_ops_per_s\":%.3f,\"cycle_iters\":%" PRIu64
           ",\"passive_idle_ms\":%ld,\"passive_spin_us\":%ld,\"passive_thread\":%s"
           ",\"active_busy\":%s,\"direct_local\":%s,\"chan_spin_us\":%u"
           ",\"passive_sleeps\":%" PRIu64 ",\"passive_backstop_fired\":%" PRIu64
           ",\"passive_backstop_served\":%" PRIu64
           ",\"verified\":true,\"timed\":\"begin->complete\"}\n",
           r->size, r->desc_size, r->descs, r->iters, r->warmup, r->gbps,
           r->lat_p50_us, r->lat_p90_us, r->lat_p99_us, r->plat_p50_us, r->plat_p90_us,
           r->plat_p99_us, r->cycle_ops_per_s, r->cycle_iters, cfg->passive_idle_ms,
           cfg->passive_spin_us, cfg->passive_thread ? "true" : "false",
           cfg->active_busy ? "true" : "false", bench_direct_offered(cfg) ? "true" : "false",
           cfg->chan_spin_us, r->pasv_sleeps,
           r->pasv_backstop_fired, r->pasv_backstop_served);
}

static void report_row(const bench_result_t *r)
{
    char size[32], dsize[32];
    printf("%-5s %9s %5" PRIu64 " %9s %6" PRIu64 " %8.3f %10.1f %10.1f %10.1f %11.1f "
           "%11.1f %11.1f %4" PRIu64 "/%-4" PRIu64 "\n",
           op_name(r->kind), human_bytes(r->size, size, sizeof size), r->descs,
           human_bytes(r->desc_size, dsize, sizeof dsize), r->iters, r->gbps,
           r->lat_p50_us, r->lat_p90_us, r->lat_p99_us, r->plat_p50_us, r->plat_p90_us,
           r->cycle_ops_per_s, r->pasv_backstop_served, r->pasv_backstop_fired);
}

int report_result(const bench_cfg_t *cfg, const bench_result_t *r)
{
    if (cfg->json)
        report_json(cfg, r);
    else
        report_row(r);
    if (fflush(stdout) != 0 || ferror(stdout))
        return runtime_error("bench: cannot write the results to stdout");
    return 0;
}
