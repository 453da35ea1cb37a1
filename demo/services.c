/* demo/services.c — the emoji and voting gRPC services (emojivoto.v1), on mesh/grpc.h.
 *
 * Unary methods answer from on_message: the request is whole by then. VoteDoughnut fails
 * with UNKNOWN "ERROR", as in emojivoto: the failure the demo's story is about.
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

#define METHOD_MAX 96

/* Packs |msg| and ends |call| with it, or with INTERNAL when out of memory. */
static void answer(struct mesh_grpc_call *call, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, "out of memory");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    if (mesh_grpc_call_send(call, buf, len) == 0)
        mesh_grpc_call_finish(call, MESH_GRPC_OK, NULL);
    else
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, "cannot send the response");
    free(buf);
}

/* Parses `--listen ADDR` into |*listen|: 0, -1 after --help, or an exit status. */
static int parse_listen(const char *name, int argc, char **argv, const char **listen)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'l') {
            *listen = optarg;
        } else if (opt == 'h') {
            printf("Usage: mesh demo-app %s [--listen ADDR]   (default %s)\n", name, *listen);
            return -1; /* help printed */
        } else {
            return demo_usage_error(name, argv[optind - 1], "unknown option or missing value");
        }
    }
    if (optind < argc)
        return demo_usage_error(name, argv[optind], "unexpected argument");
    struct mesh_addr addr;
    char why[160];
    if (mesh_addr_parse(*listen, &addr, why, sizeof(why)) != 0)
        return demo_usage_error(name, "--listen", why);
    return 0;
}

/* Serves |methods| on |listen| until SIGTERM. */
static int serve(const char *name, const char *listen, const struct mesh_grpc_method *methods,
                 size_t nmethods)
{
    char err[256];
    struct mesh_loop *loop = mesh_loop_new();
    if (loop == NULL) {
        fprintf(stderr, "demo-app %s: cannot create the event loop\n", name);
        return 1;
    }
    struct mesh_grpc_server *srv = mesh_grpc_server_new(loop, listen, methods, nmethods, NULL,
                                                        err, sizeof(err));
    if (srv == NULL) {
        fprintf(stderr, "demo-app %s: %s\n", name, err);
        mesh_loop_free(loop);
        return 1;
    }
    fprintf(stderr, "%s: ready, gRPC on port %d\n", name, mesh_grpc_server_port(srv));
    int status = demo_run_loop(loop);
    mesh_grpc_server_free(srv);
    mesh_loop_free(loop);
    return status;
}

/* --- emoji ---------------------------------------------------------------------------------- */

static Emojivoto__V1__Emoji *emoji_msgs;

static void list_all(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Emojivoto__V1__Emoji **list = calloc(demo_nemojis, sizeof(*list));
    if (list == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, "out of memory");
        return;
    }
    for (size_t i = 0; i < demo_nemojis; i++)
        list[i] = &emoji_msgs[i];
    Emojivoto__V1__ListAllEmojiResponse resp = EMOJIVOTO__V1__LIST_ALL_EMOJI_RESPONSE__INIT;
    resp.n_list = demo_nemojis;
    resp.list = list;
    answer(call, &resp.base);
    free(list);
}

static void find_by_shortcode(struct mesh_grpc_call *call, const uint8_t *msg, size_t len,
                              void *ctx)
{
    Emojivoto__V1__FindByShortcodeRequest *req =
        emojivoto__v1__find_by_shortcode_request__unpack(NULL, len, msg);
    if (req == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_INVALID_ARGUMENT, "not a FindByShortcodeRequest");
        return;
    }
    Emojivoto__V1__FindByShortcodeResponse resp = EMOJIVOTO__V1__FIND_BY_SHORTCODE_RESPONSE__INIT;
    const struct demo_emoji *e = demo_emoji_find(req->shortcode);
    if (e != NULL)
        resp.emoji = &emoji_msgs[e - demo_emojis]; /* absent when unknown, as emojivoto */
    answer(call, &resp.base);
    emojivoto__v1__find_by_shortcode_request__free_unpacked(req, NULL);
}

int demo_emoji_main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    int rv = parse_listen("emoji", argc, argv, &listen);
    if (rv != 0)
        return rv < 0 ? MESH_EXIT_OK : rv;
    emoji_msgs = calloc(demo_nemojis, sizeof(*emoji_msgs));
    if (emoji_msgs == NULL)
        return 1;
    for (size_t i = 0; i < demo_nemojis; i++) {
        emojivoto__v1__emoji__init(&emoji_msgs[i]);
        emoji_msgs[i].unicode = (char *)demo_emojis[i].unicode;
        emoji_msgs[i].shortcode = (char *)demo_emojis[i].shortcode;
    }
    static const struct mesh_grpc_handler list_h = {.on_message = list_all};
    static const struct mesh_grpc_handler find_h = {.on_message = find_by_shortcode};
    const struct mesh_grpc_method methods[] = {
        {"/" DEMO_EMOJI_SERVICE "/ListAll", MESH_GRPC_UNARY, &list_h, NULL},
        {"/" DEMO_EMOJI_SERVICE "/FindByShortcode", MESH_GRPC_UNARY, &find_h, NULL},
    };
    int status = serve("emoji", listen, methods, 2);
    free(emoji_msgs);
    return status;
}

/* --- voting --------------------------------------------------------------------------------- */

static unsigned *votes; /* per demo_emojis entry */

static void vote(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    const struct demo_emoji *e = ctx;
    if (strcmp(e->shortcode, ":doughnut:") == 0) {
        mesh_grpc_call_finish(call, MESH_GRPC_UNKNOWN, "ERROR");
        return;
    }
    votes[e - demo_emojis]++;
    Emojivoto__V1__VoteResponse resp = EMOJIVOTO__V1__VOTE_RESPONSE__INIT;
    answer(call, &resp.base);
}

static int cmp_votes(const void *a, const void *b)
{
    const Emojivoto__V1__VotingResult *x = *(Emojivoto__V1__VotingResult *const *)a;
    const Emojivoto__V1__VotingResult *y = *(Emojivoto__V1__VotingResult *const *)b;
    return (y->votes > x->votes) - (y->votes < x->votes);
}

static void results(struct mesh_grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    Emojivoto__V1__VotingResult *rows = calloc(demo_nemojis, sizeof(*rows));
    Emojivoto__V1__VotingResult **ptrs = calloc(demo_nemojis, sizeof(*ptrs));
    size_t n = 0;
    for (size_t i = 0; rows != NULL && ptrs != NULL && i < demo_nemojis; i++) {
        if (votes[i] == 0)
            continue;
        emojivoto__v1__voting_result__init(&rows[n]);
        rows[n].shortcode = (char *)demo_emojis[i].shortcode;
        rows[n].votes = (int32_t)votes[i];
        ptrs[n] = &rows[n];
        n++;
    }
    if (rows == NULL || ptrs == NULL) {
        mesh_grpc_call_finish(call, MESH_GRPC_INTERNAL, "out of memory");
    } else {
        qsort(ptrs, n, sizeof(*ptrs), cmp_votes);
        Emojivoto__V1__ResultsResponse resp = EMOJIVOTO__V1__RESULTS_RESPONSE__INIT;
        resp.n_results = n;
        resp.results = ptrs;
        answer(call, &resp.base);
    }
    free(rows);
    free(ptrs);
}

int demo_voting_main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8081";
    int rv = parse_listen("voting", argc, argv, &listen);
    if (rv != 0)
        return rv < 0 ? MESH_EXIT_OK : rv;
    static const struct mesh_grpc_handler vote_h = {.on_message = vote};
    static const struct mesh_grpc_handler results_h = {.on_message = results};
    size_t n = demo_nemojis + 1;
    votes = calloc(demo_nemojis, sizeof(*votes));
    char (*names)[METHOD_MAX] = calloc(n, METHOD_MAX);
    struct mesh_grpc_method *methods = calloc(n, sizeof(*methods));
    int status = 1;
    if (votes == NULL || names == NULL || methods == NULL)
        goto out;
    for (size_t i = 0; i < demo_nemojis; i++) {
        snprintf(names[i], METHOD_MAX, "/%s/%s", DEMO_VOTING_SERVICE, demo_emojis[i].vote);
        methods[i] = (struct mesh_grpc_method){names[i], MESH_GRPC_UNARY, &vote_h,
                                               (void *)&demo_emojis[i]};
    }
    snprintf(names[n - 1], METHOD_MAX, "/%s/Results", DEMO_VOTING_SERVICE);
    methods[n - 1] = (struct mesh_grpc_method){names[n - 1], MESH_GRPC_UNARY, &results_h, NULL};
    status = serve("voting", listen, methods, n);
out:
    free(votes);
    free(names);
    free(methods);
    return status;
}
