#include "tap/tap.h"

#include <string.h>

#include "mesh/buf.h"
#include "mesh/fmt.h"

void mesh_tap_init(struct mesh_tap *tap, const struct mesh_tap_opts *opts, FILE *out)
{
    memset(tap, 0, sizeof(*tap));
    tap->opts = *opts;
    tap->out = out;
    tap->tokens = opts->max_rps;
    mesh_buf_init(&tap->json, 1u << 20);
}

void mesh_tap_free(struct mesh_tap *tap)
{
    mesh_buf_free(&tap->json);
}

static const char *short_dir(enum mesh_direction dir)
{
    switch (dir) {
    case MESH_DIR_INBOUND: return "in";
    case MESH_DIR_OUTBOUND: return "out";
    case MESH_DIR_REPLAY: return "replay";
    default: return "-";
    }
}

static void print_labels(FILE *out, const char *side, const struct mesh_labels *l)
{
    if (l->ns)
        fprintf(out, " %s_ns=%s", side, l->ns);
    if (l->deploy)
        fprintf(out, " %s_deploy=%s", side, l->deploy);
    if (l->pod)
        fprintf(out, " %s_pod=%s", side, l->pod);
}

void mesh_tap_format(FILE *out, const struct mesh_evt *e, int wide)
{
    char lat[24], dur[24];
    const char *id = e->id ? e->id : "-", *dir = short_dir(e->direction);
    const char *src = e->src ? e->src : "-", *dst = e->dst ? e->dst : "-";
    fprintf(out, "req id=%s proxy=%s src=%s dst=%s :method=%s :authority=%s :path=%s", id, dir,
            src, dst, e->method ? e->method : "-", e->authority ? e->authority : "-",
            e->path ? e->path : "-");
    if (wide) {
        print_labels(out, "src", &e->src_labels);
        print_labels(out, "dst", &e->dst_labels);
    }
    fputc('\n', out);
    if (e->status >= 0)
        fprintf(out, "rsp id=%s proxy=%s src=%s dst=%s :status=%d latency=%s\n", id, dir, src,
                dst, e->status, mesh_fmt_latency(lat, sizeof(lat), e->latency_us));
    fprintf(out, "end id=%s proxy=%s src=%s dst=%s", id, dir, src, dst);
    if (e->grpc_status >= 0)
        fprintf(out, " grpc-status=%d", e->grpc_status);
    if (e->reset >= 0)
        fprintf(out, " reset-error=%lld", (long long)e->reset);
    if (e->error)
        fprintf(out, " error=\"%s\"", e->error);
    fprintf(out, " duration=%s response-length=%lluB\n",
            mesh_fmt_latency(dur, sizeof(dur), e->duration_us),
            (unsigned long long)e->rsp_bytes);
}

int mesh_tap_add(struct mesh_tap *tap, const struct mesh_evt *evt)
{
    if (!mesh_filter_match(&tap->opts.filter, evt))
        return 0;
    if (tap->opts.max_rps > 0) {
        if (evt->ts_us > tap->last_ts) {
            tap->tokens += (double)(evt->ts_us - tap->last_ts) / 1e6 * tap->opts.max_rps;
            if (tap->tokens > tap->opts.max_rps)
                tap->tokens = tap->opts.max_rps;
            tap->last_ts = evt->ts_us;
        }
        if (tap->tokens < 1) {
            tap->missed++;
            return 0;
        }
        tap->tokens -= 1;
    }
    tap->shown++;
    if (tap->opts.output == MESH_OUT_JSON) {
        mesh_buf_reset(&tap->json);
        if (mesh_evt_to_json(evt, &tap->json) == 0 && mesh_buf_append(&tap->json, "\n", 1) == 0)
            fwrite(tap->json.data, 1, tap->json.len, tap->out);
    } else {
        mesh_tap_format(tap->out, evt, tap->opts.output == MESH_OUT_WIDE);
    }
    return 1;
}
