/* demo/web.c — the web workload: emojivoto's REST API and a page, on mesh/httpd.h,
 * calling the emoji and voting services over gRPC (through its sidecar in the demo).
 *
 * Every API request is asynchronous: the handler starts a gRPC call and answers from the
 * call's on_close, possibly after a second call (vote: FindByShortcode then Vote<Name>;
 * leaderboard: Results then ListAll). A client that leaves cancels the call in flight.
 * A failed call answers 500, as emojivoto's web does: that is how a failing vote shows.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "emojis.h"
#include "emojivoto/v1/emoji.pb-c.h"
#include "emojivoto/v1/voting.pb-c.h"
#include "mesh/err.h"
#include "mesh/grpc.h"
#include "mesh/httpd.h"

#define CALL_TIMEOUT_MS 5000
#define MAX_MESSAGE     (1u << 20)
#define JSON_CAP        (1u << 20)

struct backend {
    const char *name, *addr, *authority;
    struct mesh_grpc_client *client;
    struct mesh_loop *loop;
    unsigned backoff_ms;
};

enum step { STEP_LIST, STEP_FIND, STEP_VOTE, STEP_RESULTS, STEP_BOARD_LIST };

struct web_req {
    struct mesh_httpd_req *req;
    struct mesh_grpc_call *call;
    enum step step;
    char shortcode[64];
    const struct demo_emoji *emoji;
    struct mesh_buf msg;                   /* the current call's response message */
    Emojivoto__V1__ResultsResponse *results; /* leaderboard, between its two calls */
};

static struct backend emoji_be = {.name = "emoji"}, voting_be = {.name = "voting"};

/* --- backends ------------------------------------------------------------------------------ */

static int reconnect(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct backend *be = ctx;
    mesh_grpc_client_reconnect(be->client);
    return MESH_TIMER_DONE;
}

static void on_connected(struct mesh_grpc_client *client, void *ctx)
{
    struct backend *be = ctx;
    be->backoff_ms = 100;
}

static void on_lost(struct mesh_grpc_client *client, const char *why, void *ctx)
{
    struct backend *be = ctx;
    fprintf(stderr, "web: %s service (%s): %s; retrying in %u ms\n", be->name, be->addr, why,
            be->backoff_ms);
    mesh_loop_add_timer(be->loop, be->backoff_ms, reconnect, be);
    be->backoff_ms = be->backoff_ms * 2 > 2000 ? 2000 : be->backoff_ms * 2;
}

static int backend_start(struct backend *be, struct mesh_loop *loop)
{
    char err[256];
    struct mesh_grpc_client_opts opts = {
        .on_connected = on_connected,
        .on_lost = on_lost,
        .ctx = be,
        .max_recv_message = MAX_MESSAGE,
        .connect_timeout_ms = 2000,
        .authority = be->authority,
    };
    be->loop = loop;
    be->backoff_ms = 100;
    be->client = mesh_grpc_client_new(loop, be->addr, &opts, err, sizeof(err));
    if (be->client == NULL)
        return demo_usage_error("web", be->name, err);
    return 0;
}

/* --- answers ------------------------------------------------------------------------------- */

static void web_req_free(struct web_req *w)
{
    mesh_buf_free(&w->msg);
    if (w->results != NULL)
        emojivoto__v1__results_response__free_unpacked(w->results, NULL);
    free(w);
}

static void answer(struct web_req *w, int status, const struct mesh_buf *json)
{
    mesh_httpd_respond(w->req, status, "application/json", json->data ? json->data : "",
                       json->len);
    web_req_free(w);
}

static void answer_error(struct web_req *w, int status, const char *what)
{
    struct mesh_buf json;
    mesh_buf_init(&json, 4096);
    mesh_buf_appends(&json, "{\"error\":");
    mesh_buf_json_str(&json, what, strlen(what));
    mesh_buf_appends(&json, "}\n");
    answer(w, status, &json);
    mesh_buf_free(&json);
}

static void on_gone(struct mesh_httpd_req *req, void *ctx)
{
    struct web_req *w = ctx;
    if (w->call != NULL)
        mesh_grpc_call_cancel(w->call);
    web_req_free(w);
}

/* --- calls --------------------------------------------------------------------------------- */

static void call_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx);
static void call_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx);
static const struct mesh_grpc_client_cbs call_cbs = {call_message, call_close, NULL};

/* Starts |method| of |be| with |req| for step |step|; answers 503 if it cannot. */
static void start_call(struct web_req *w, struct backend *be, const char *method,
                       const ProtobufCMessage *req, enum step step)
{
    uint8_t buf[256];
    size_t len = protobuf_c_message_get_packed_size(req);
    char path[128];
    snprintf(path, sizeof(path), "/%s/%s",
             be == &emoji_be ? DEMO_EMOJI_SERVICE : DEMO_VOTING_SERVICE, method);
    w->step = step;
    mesh_buf_reset(&w->msg);
    if (len > sizeof(buf)) {
        answer_error(w, 400, "request too large");
        return;
    }
    protobuf_c_message_pack(req, buf);
    w->call = mesh_grpc_client_call(be->client, path, &call_cbs, CALL_TIMEOUT_MS, w);
    if (w->call == NULL) {
        char why[96];
        snprintf(why, sizeof(why), "%s service unavailable", be->name);
        answer_error(w, 503, why);
        return;
    }
    if (mesh_grpc_call_send(w->call, buf, len) != 0 || mesh_grpc_call_close_send(w->call) != 0) {
        mesh_grpc_call_cancel(w->call);
        w->call = NULL;
        answer_error(w, 500, "cannot send the request");
    }
}

static void call_message(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct web_req *w = ctx;
    mesh_buf_reset(&w->msg);
    if (mesh_buf_append(&w->msg, msg, len) != 0)
        mesh_buf_reset(&w->msg);
}

static void json_emoji(struct mesh_buf *json, const char *shortcode, const char *unicode)
{
    mesh_buf_appends(json, "{\"shortcode\":");
    mesh_buf_json_str(json, shortcode, strlen(shortcode));
    mesh_buf_appends(json, ",\"unicode\":");
    mesh_buf_json_str(json, unicode, strlen(unicode));
}

static void got_list(struct web_req *w)
{
    Emojivoto__V1__ListAllEmojiResponse *resp = emojivoto__v1__list_all_emoji_response__unpack(
        NULL, w->msg.len, (const uint8_t *)(w->msg.data ? w->msg.data : ""));
    if (resp == NULL) {
        answer_error(w, 500, "emoji service: not a ListAllEmojiResponse");
        return;
    }
    struct mesh_buf json;
    mesh_buf_init(&json, JSON_CAP);
    mesh_buf_appends(&json, "[");
    if (w->step == STEP_LIST) {
        for (size_t i = 0; i < resp->n_list; i++) {
            mesh_buf_appends(&json, i ? ",\n" : "\n");
            json_emoji(&json, resp->list[i]->shortcode, resp->list[i]->unicode);
            mesh_buf_appends(&json, "}");
        }
    } else { /* the leaderboard: results joined with the list for the pictures */
        for (size_t i = 0; i < w->results->n_results; i++) {
            const Emojivoto__V1__VotingResult *r = w->results->results[i];
            const char *unicode = "";
            for (size_t k = 0; k < resp->n_list; k++)
                if (strcmp(resp->list[k]->shortcode, r->shortcode) == 0)
                    unicode = resp->list[k]->unicode;
            mesh_buf_appends(&json, i ? ",\n" : "\n");
            json_emoji(&json, r->shortcode, unicode);
            mesh_buf_printf(&json, ",\"votes\":%d}", (int)r->votes);
        }
    }
    mesh_buf_appends(&json, "\n]\n");
    emojivoto__v1__list_all_emoji_response__free_unpacked(resp, NULL);
    answer(w, 200, &json);
    mesh_buf_free(&json);
}

static void got_find(struct web_req *w)
{
    Emojivoto__V1__FindByShortcodeResponse *resp =
        emojivoto__v1__find_by_shortcode_response__unpack(
            NULL, w->msg.len, (const uint8_t *)(w->msg.data ? w->msg.data : ""));
    int found = resp != NULL && resp->emoji != NULL;
    if (resp != NULL)
        emojivoto__v1__find_by_shortcode_response__free_unpacked(resp, NULL);
    if (!found) {
        answer_error(w, 400, "no such emoji");
        return;
    }
    /* the voting service has one method per emoji; the web knows their names */
    w->emoji = demo_emoji_find(w->shortcode);
    if (w->emoji == NULL) {
        answer_error(w, 400, "no vote method for this emoji");
        return;
    }
    Emojivoto__V1__VoteRequest req = EMOJIVOTO__V1__VOTE_REQUEST__INIT;
    start_call(w, &voting_be, w->emoji->vote, &req.base, STEP_VOTE);
}

static void got_results(struct web_req *w)
{
    w->results = emojivoto__v1__results_response__unpack(
        NULL, w->msg.len, (const uint8_t *)(w->msg.data ? w->msg.data : ""));
    if (w->results == NULL) {
        answer_error(w, 500, "voting service: not a ResultsResponse");
        return;
    }
    Emojivoto__V1__ListAllEmojiRequest req = EMOJIVOTO__V1__LIST_ALL_EMOJI_REQUEST__INIT;
    start_call(w, &emoji_be, "ListAll", &req.base, STEP_BOARD_LIST);
}

static void call_close(struct mesh_grpc_call *call, int status, const char *message, void *ctx)
{
    struct web_req *w = ctx;
    w->call = NULL;
    if (status != MESH_GRPC_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s: %s%s%s", mesh_grpc_call_method(call),
                 mesh_grpc_status_name(status), *message ? ": " : "", message);
        answer_error(w, 500, why);
        return;
    }
    switch (w->step) {
    case STEP_LIST:
    case STEP_BOARD_LIST: got_list(w); break;
    case STEP_FIND: got_find(w); break;
    case STEP_RESULTS: got_results(w); break;
    case STEP_VOTE: {
        struct mesh_buf json;
        mesh_buf_init(&json, 256);
        mesh_buf_appends(&json, "{}\n");
        answer(w, 200, &json);
        mesh_buf_free(&json);
        break;
    }
    }
}

/* --- the HTTP side ------------------------------------------------------------------------- */

static const char page[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Emoji Vote</title>\n"
    "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto}"
    "button{font-size:2em;margin:.1em;border:none;background:none;cursor:pointer}"
    "#msg{height:1.5em}</style></head>\n<body>\n"
    "<h1>&#x1F5F3;&#xFE0F; Emoji Vote</h1>\n"
    "<p>Tap an emoji to vote for it. (Voting for the doughnut fails: that is the demo's bug.)</p>\n"
    "<p id=\"msg\"></p><div id=\"emojis\"></div>\n"
    "<h2>Leaderboard</h2><ol id=\"board\"></ol>\n"
    "<script>\n"
    "const $=id=>document.getElementById(id);\n"
    "async function board(){const r=await fetch('/api/leaderboard');if(!r.ok)return;\n"
    " $('board').innerHTML='';for(const e of (await r.json()).slice(0,10)){\n"
    "  const li=document.createElement('li');li.textContent=e.unicode+' '+e.shortcode+': '+e.votes;\n"
    "  $('board').appendChild(li);}}\n"
    "async function vote(e){const r=await fetch('/api/vote?choice='+encodeURIComponent(e.shortcode));\n"
    " $('msg').textContent=r.ok?'You voted for '+e.unicode:'Voting for '+e.unicode+' failed ('+r.status+')';\n"
    " board();}\n"
    "(async()=>{const r=await fetch('/api/list');for(const e of await r.json()){\n"
    "  const b=document.createElement('button');b.textContent=e.unicode;b.title=e.shortcode;\n"
    "  b.onclick=()=>vote(e);$('emojis').appendChild(b);}board();})();\n"
    "</script></body></html>\n";

static void handle(struct mesh_httpd_req *req, void *ctx)
{
    const char *path = mesh_httpd_path(req);
    const char *method = mesh_httpd_method(req);
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int api = strcmp(path, "/api/list") == 0 || strcmp(path, "/api/vote") == 0 ||
              strcmp(path, "/api/leaderboard") == 0;
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        if (!get) {
            mesh_httpd_add_header(req, "Allow", "GET, HEAD");
            mesh_httpd_respond(req, 405, "text/plain", "method not allowed\n", 19);
            return;
        }
        mesh_httpd_respond(req, 200, "text/html; charset=utf-8", page, sizeof(page) - 1);
        return;
    }
    if (!api) {
        mesh_httpd_respond(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    struct web_req *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        mesh_httpd_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    w->req = req;
    mesh_buf_init(&w->msg, MAX_MESSAGE);
    mesh_httpd_set_ctx(req, w);
    mesh_httpd_watch(req, on_gone, NULL);
    if (strcmp(path, "/api/list") == 0) {
        Emojivoto__V1__ListAllEmojiRequest r = EMOJIVOTO__V1__LIST_ALL_EMOJI_REQUEST__INIT;
        start_call(w, &emoji_be, "ListAll", &r.base, STEP_LIST);
    } else if (strcmp(path, "/api/leaderboard") == 0) {
        Emojivoto__V1__ResultsRequest r = EMOJIVOTO__V1__RESULTS_REQUEST__INIT;
        start_call(w, &voting_be, "Results", &r.base, STEP_RESULTS);
    } else {
        int n = mesh_httpd_query_param(mesh_httpd_query(req), "choice", w->shortcode,
                                       sizeof(w->shortcode));
        if (n <= 0) {
            answer_error(w, 400, "give ?choice=:shortcode:");
            return;
        }
        Emojivoto__V1__FindByShortcodeRequest r = EMOJIVOTO__V1__FIND_BY_SHORTCODE_REQUEST__INIT;
        r.shortcode = w->shortcode;
        start_call(w, &emoji_be, "FindByShortcode", &r.base, STEP_FIND);
    }
}

static const char usage[] =
    "Usage: mesh demo-app web [--listen ADDR] [--emoji ADDR] [--voting ADDR]\n"
    "                         [--emoji-authority A] [--voting-authority A]\n"
    "emojivoto's web: GET /, /api/list, /api/vote?choice=:joy:, /api/leaderboard.\n";

int demo_web_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"emoji", required_argument, NULL, 'e'},
        {"voting", required_argument, NULL, 'v'},
        {"emoji-authority", required_argument, NULL, 'E'},
        {"voting-authority", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:8082";
    emoji_be.addr = "127.0.0.1:8080";
    voting_be.addr = "127.0.0.1:8081";
    emoji_be.authority = "emoji-svc.emojivoto:8080";
    voting_be.authority = "voting-svc.emojivoto:8080";
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': listen = optarg; break;
        case 'e': emoji_be.addr = optarg; break;
        case 'v': voting_be.addr = optarg; break;
        case 'E': emoji_be.authority = optarg; break;
        case 'V': voting_be.authority = optarg; break;
        case 'h': fputs(usage, stdout); return MESH_EXIT_OK;
        default: return demo_usage_error("web", argv[optind - 1], "unknown option or missing value");
        }
    }
    if (optind < argc)
        return demo_usage_error("web", argv[optind], "unexpected argument");
    struct mesh_addr addr;
    char why[160];
    if (mesh_addr_parse(listen, &addr, why, sizeof(why)) != 0)
        return demo_usage_error("web", "--listen", why);
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL)
        return 1;
    char err[256];
    int status = 1;
    struct mesh_httpd *srv = NULL;
    if ((status = backend_start(&emoji_be, loop)) != 0 ||
        (status = backend_start(&voting_be, loop)) != 0)
        goto out;
    struct mesh_httpd_opts hopts = {.handler = handle};
    srv = mesh_httpd_new(loop, listen, &hopts, err, sizeof(err));
    if (srv == NULL) {
        fprintf(stderr, "demo-app web: %s\n", err);
        status = 1;
        goto out;
    }
    fprintf(stderr, "web: ready, HTTP on port %d, emoji at %s (%s), voting at %s (%s)\n",
            mesh_httpd_port(srv), emoji_be.addr, emoji_be.authority, voting_be.addr,
            voting_be.authority);
    status = demo_run_loop(loop);
out:
    mesh_httpd_free(srv);
    mesh_grpc_client_free(emoji_be.client);
    mesh_grpc_client_free(voting_be.client);
    mesh_loop_free(loop);
    return status;
}
