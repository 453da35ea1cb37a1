#include "tap/tap.h"

#include <string.h>
#include <time.h>

#include "mesh/buf.h"
#include "mesh/fmt.h"
#include "mesh/hdrcap.h"
#include "top/screen.h"

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

/* |s| with control bytes as \xNN, so that a header (whatever a Report
 * sender put in it) cannot write to the terminal; with |quote|, " and \
 * escaped too. */
static void print_escaped(FILE *out, const char *s, int quote)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else if (quote && (*p == '"' || *p == '\\'))
            fprintf(out, "\\%c", *p);
        else
            fputc(*p, out);
    }
}

/* A captured header on the req (or rsp) line: name=value, the value quoted
 * when it has spaces or quotes; a redacted one as name=<redacted>. */
static void print_header(FILE *out, const struct mesh_header *h)
{
    fputc(' ', out);
    print_escaped(out, h->name, 0);
    fputc('=', out);
    if (h->redacted || h->value == NULL) {
        fputs(h->redacted ? "<redacted>" : "", out);
        return;
    }
    int quote = h->value[0] == '\0' || strpbrk(h->value, " \t\"\\") != NULL;
    if (quote)
        fputc('"', out);
    print_escaped(out, h->value, quote);
    if (quote)
        fputc('"', out);
}

/* The captured headers of |kind| (MESH_HDR_*: the req line's, the rsp
 * line's, the end line's trailers). */
static void print_headers(FILE *out, const struct mesh_evt *e, unsigned kind)
{
    for (size_t i = 0; e->headers != NULL && i < e->nheaders; i++) {
        const struct mesh_header *h = &e->headers[i];
        unsigned k = h->trailer ? MESH_HDR_TRAILER : h->response ? MESH_HDR_RESPONSE : MESH_HDR_REQUEST;
        if (k == kind)
            print_header(out, h);
    }
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
    print_headers(out, e, MESH_HDR_REQUEST);
    fputc('\n', out);
    if (e->status >= 0) {
        fprintf(out, "rsp id=%s proxy=%s src=%s dst=%s :status=%d latency=%s", id, dir, src,
                dst, e->status, mesh_fmt_latency(lat, sizeof(lat), e->latency_us));
        print_headers(out, e, MESH_HDR_RESPONSE);
        fputc('\n', out);
    }
    fprintf(out, "end id=%s proxy=%s src=%s dst=%s", id, dir, src, dst);
    if (e->grpc_status >= 0)
        fprintf(out, " grpc-status=%d", e->grpc_status);
    if (e->reset >= 0)
        fprintf(out, " reset-error=%lld", (long long)e->reset);
    if (e->error)
        fprintf(out, " error=\"%s\"", e->error);
    fprintf(out, " duration=%s response-length=%lluB",
            mesh_fmt_latency(dur, sizeof(dur), e->duration_us),
            (unsigned long long)e->rsp_bytes);
    print_headers(out, e, MESH_HDR_TRAILER);
    fputc('\n', out);
}

/* --- the live screen ------------------------------------------------------------------------ */

/* One line per exchange: a screen has no room for Linkerd's three. HEADERS:
 * the captured ones, "> " before the request's and "< " before the
 * response's, as curl -v marks them; the workloads only with -o wide. */
static const struct mesh_ui_col tap_cols[] = {
    {"TIME", 0, 0},
    {"PROXY", 0, 0},
    {"SRC", 0, MESH_UI_SHRINK},
    {"DST", 0, MESH_UI_SHRINK},
    {"METHOD", 0, 0},
    {"AUTHORITY", 0, MESH_UI_SHRINK},
    {"PATH", 0, MESH_UI_SHRINK | MESH_UI_KEEP},
    {"STATUS", 0, MESH_UI_RIGHT},
    {"GRPC", 0, MESH_UI_RIGHT},
    {"LATENCY", 0, MESH_UI_RIGHT},
    {"DURATION", 0, MESH_UI_RIGHT},
    {"BYTES", 0, MESH_UI_RIGHT},
    {"ERROR", 0, MESH_UI_SHRINK},
    {"HEADERS", 0, MESH_UI_SHRINK},
    {"SRC_WORKLOAD", 0, MESH_UI_SHRINK},
    {"DST_WORKLOAD", 0, MESH_UI_SHRINK},
};

static void ui_status(struct mesh_ui *ui, char *buf, size_t len, void *ctx)
{
    const struct mesh_tap *tap = ctx;
    snprintf(buf, len, "%s  shown %llu  missed %llu  held while paused %llu  older lines cut %llu",
             tap->source ? tap->source : "", (unsigned long long)tap->shown,
             (unsigned long long)tap->missed, (unsigned long long)tap->held,
             (unsigned long long)mesh_ui_cut(ui));
}

struct mesh_ui *mesh_tap_ui_open(struct mesh_tap *tap, const char *source, char *err,
                                 size_t errlen)
{
    int wide = tap->opts.output == MESH_OUT_WIDE;
    struct mesh_ui_opts o = {.title = "mesh tap", .mode = MESH_UI_LOG, .cols = tap_cols,
                             .ncols = sizeof(tap_cols) / sizeof(tap_cols[0]) - (wide ? 0 : 2),
                             .sort = -1, .status = ui_status, .ctx = tap};
    tap->source = source;
    tap->ui = mesh_ui_open(&o, err, errlen);
    return tap->ui;
}

static void workload(char *buf, size_t len, const struct mesh_labels *l)
{
    snprintf(buf, len, "%s%s%s%s%s", l->ns ? l->ns : "", l->ns ? "/" : "",
             l->deploy ? l->deploy : "-", l->pod ? "/" : "", l->pod ? l->pod : "");
}

/* The HEADERS cell: "> name=value … < name=value …", escaped as on the
 * req and rsp lines; "-" when the event carries none. */
static const char *headers_cell(const struct mesh_evt *e, char *buf, size_t len)
{
    FILE *m;
    buf[len - 1] = '\0'; /* the stream has one byte less: a cut still ends there */
    if (e->nheaders == 0 || (m = fmemopen(buf, len - 1, "w")) == NULL)
        return "-";
    for (unsigned side = 0; side < 2; side++) {
        const char *mark = side ? " <" : ">";
        for (size_t i = 0; i < e->nheaders; i++)
            if (e->headers[i].response == side) {
                fputs(mark, m);
                mark = "";
                print_header(m, &e->headers[i]);
            }
    }
    fclose(m); /* what does not fit is cut */
    return buf[0] == ' ' ? buf + 1 : buf;
}

static void ui_line(struct mesh_ui *ui, const struct mesh_evt *e, int wide)
{
    char when[32], status[16], grpc[16], lat[24], dur[24], bytes[24], err[96], sw[160], dw[160];
    char hdrs[1024];
    time_t secs = (time_t)(e->ts_us / 1000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(when, sizeof(when), "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(e->ts_us % 1000000u / 1000u));
    snprintf(status, sizeof(status), e->status >= 0 ? "%d" : "-", e->status);
    snprintf(grpc, sizeof(grpc), e->grpc_status >= 0 ? "%d" : "-", e->grpc_status);
    snprintf(bytes, sizeof(bytes), "%lluB", (unsigned long long)e->rsp_bytes);
    if (e->error)
        snprintf(err, sizeof(err), "%s", e->error);
    else if (e->reset >= 0)
        snprintf(err, sizeof(err), "reset %lld", (long long)e->reset);
    else
        snprintf(err, sizeof(err), "-");
    if (wide) {
        workload(sw, sizeof(sw), &e->src_labels);
        workload(dw, sizeof(dw), &e->dst_labels);
    }
    struct mesh_ui_cell cells[] = {
        {when, 0, 0},
        {short_dir(e->direction), 0, 0},
        {e->src, 0, 0},
        {e->dst, 0, 0},
        {e->method, 0, 0},
        {e->authority, 0, 0},
        {e->path, 0, 0},
        {status, 0, 0},
        {grpc, 0, 0},
        {mesh_fmt_latency(lat, sizeof(lat), e->latency_us), 0, 0},
        {mesh_fmt_latency(dur, sizeof(dur), e->duration_us), 0, 0},
        {bytes, 0, 0},
        {err, 0, 0},
        {headers_cell(e, hdrs, sizeof(hdrs)), 0, 0},
        {wide ? sw : "-", 0, 0},
        {wide ? dw : "-", 0, 0},
    };
    mesh_ui_add(ui, cells, mesh_evt_failed(e) ? MESH_UI_FAIL : 0);
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
    if (tap->ui != NULL) {
        if (mesh_ui_paused(tap->ui)) {
            tap->held++;
            return 0;
        }
        tap->shown++;
        ui_line(tap->ui, evt, tap->opts.output == MESH_OUT_WIDE);
        return 1;
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
