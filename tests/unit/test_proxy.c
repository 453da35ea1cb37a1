/* tests/unit/test_proxy.c — mesh-proxy's core without sockets: protocol
 * detection from first bytes, route specs, route lookup, the
 * --transparent per-connection route (header capture: test_lib). */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"
#include "proxy.h"
#include "test.h"

static int detect_str(const char *s)
{
    return px_detect((const uint8_t *)s, strlen(s));
}

static void test_detect(void)
{
    CHECK_EQ_INT(detect_str("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), PX_DETECT_H2);
    CHECK_EQ_INT(detect_str("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\x12\x04"), PX_DETECT_H2);
    /* a preface cut short could still be it, or "PRI" as an HTTP/1 method */
    CHECK_EQ_INT(detect_str("PRI * HTT"), PX_DETECT_MORE);
    CHECK_EQ_INT(detect_str("P"), PX_DETECT_MORE);
    CHECK_EQ_INT(detect_str("GET / HTTP/1.1\r\n"), PX_DETECT_H1);
    CHECK_EQ_INT(detect_str("GET"), PX_DETECT_MORE);
    CHECK_EQ_INT(detect_str("CCM_POST /x HTTP/1.1\r\n"), PX_DETECT_H1);
    CHECK_EQ_INT(detect_str("PRI /x HTTP/1.1\r\n"), PX_DETECT_H1);
    /* TLS, SSH, binary, a space first, an over-long token */
    CHECK_EQ_INT(px_detect((const uint8_t *)"\x16\x03\x01\x02\x00", 5), PX_DETECT_TCP);
    CHECK_EQ_INT(detect_str("SSH-2.0-OpenSSH_9.2\r\n"), PX_DETECT_TCP);
    CHECK_EQ_INT(detect_str(" GET / HTTP/1.1"), PX_DETECT_TCP);
    CHECK_EQ_INT(detect_str("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), PX_DETECT_TCP);
    CHECK_EQ_INT(detect_str("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), PX_DETECT_MORE);
}

static void test_route_parse(void)
{
    struct px_route r;
    char err[256];
    CHECK_EQ_INT(px_route_parse("web:80=127.0.0.1:8080,[::1]:8081@emojivoto/web", &r, err,
                                sizeof(err)),
                 0);
    CHECK_EQ_STR(r.authority, "web:80");
    CHECK_EQ_INT(r.neps, 2);
    CHECK_EQ_STR(r.eps[0].name, "127.0.0.1:8080");
    CHECK_EQ_STR(r.eps[1].name, "[::1]:8081");
    CHECK_EQ_STR(r.labels.ns, "emojivoto");
    CHECK_EQ_STR(r.labels.deploy, "web");
    px_route_free(&r);

    CHECK_EQ_INT(px_route_parse("*=127.0.0.1:1", &r, err, sizeof(err)), 0);
    CHECK_EQ_STR(r.authority, "*");
    CHECK(r.labels.ns == NULL);
    px_route_free(&r);

    static const char *bad[] = {"web", "=127.0.0.1:1", "web=", "web=127.0.0.1",
                                "web=127.0.0.1:1,", "web=127.0.0.1:1@ns", "web=127.0.0.1:1@/d",
                                "web=127.0.0.1:1@a/b/c", "web=host.example:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        CHECK_EQ_INT(px_route_parse(bad[i], &r, err, sizeof(err)), MESH_EINVAL);
        CHECK(strstr(err, bad[i]) != NULL); /* the message names the input */
        CHECK(r.eps == NULL && r.authority == NULL);
    }
}

static void test_route_find(void)
{
    struct px px;
    struct px_conn conn;
    char err[256];
    memset(&px, 0, sizeof(px));
    memset(&conn, 0, sizeof(conn));
    conn.px = &px;
    conn.dir = MESH_DIR_OUTBOUND;
    struct px_route routes[3];
    CHECK_EQ_INT(px_route_parse("web.emojivoto:80=127.0.0.1:1", &routes[0], err, sizeof(err)), 0);
    CHECK_EQ_INT(px_route_parse("*=127.0.0.1:2", &routes[1], err, sizeof(err)), 0);
    CHECK_EQ_INT(px_route_parse("voting:8080=127.0.0.1:3", &routes[2], err, sizeof(err)), 0);
    px.routes = routes;
    px.nroutes = 3;
    CHECK(px_route_find(&px, &conn, "web.emojivoto:80", 16) == &routes[0]);
    CHECK(px_route_find(&px, &conn, "WEB.emojivoto:80", 16) == &routes[0]);
    CHECK(px_route_find(&px, &conn, "web.emojivoto", 13) == &routes[0]); /* :80 implied */
    CHECK(px_route_find(&px, &conn, "voting:8080", 11) == &routes[2]);
    CHECK(px_route_find(&px, &conn, "voting", 6) == &routes[1]);      /* no :8080 implied */
    CHECK(px_route_find(&px, &conn, "voting:80801", 12) == &routes[1]);
    CHECK(px_route_find(&px, &conn, NULL, 0) == &routes[1]);
    px.nroutes = 1;
    CHECK(px_route_find(&px, &conn, "other", 5) == NULL);

    /* inbound ignores the authority: everything goes to the application */
    conn.dir = MESH_DIR_INBOUND;
    CHECK(px_route_find(&px, &conn, "web.emojivoto:80", 16) == NULL);
    CHECK_EQ_INT(px_route_parse("*=127.0.0.1:9", &px.inbound_route, err, sizeof(err)), 0);
    CHECK(px_route_find(&px, &conn, "anything", 8) == &px.inbound_route);
    for (int i = 0; i < 3; i++)
        px_route_free(&routes[i]);
    px_route_free(&px.inbound_route);
}

static struct sockaddr_storage sa(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &s4->sin_addr);
    }
    return ss;
}

/* --transparent: the per-connection route from the original destination */
static void test_transparent(void)
{
    struct px px;
    struct px_conn conn;
    char err[256];
    memset(&px, 0, sizeof(px));
    memset(&conn, 0, sizeof(conn));
    conn.px = &px;
    conn.dir = MESH_DIR_OUTBOUND;
    struct px_route routes[2];
    CHECK_EQ_INT(px_route_parse("web.emojivoto:80=127.0.0.1:1", &routes[0], err, sizeof(err)), 0);
    CHECK_EQ_INT(px_route_parse("*=127.0.0.1:2", &routes[1], err, sizeof(err)), 0);
    px.routes = routes;
    px.nroutes = 2;

    /* outbound: the original address itself */
    struct sockaddr_storage orig = sa("10.77.0.2", 8080), local = sa("127.0.0.1", 4140);
    CHECK_EQ_INT(px_conn_set_orig(&conn, &orig, &local), 0);
    CHECK(conn.has_orig);
    CHECK_EQ_STR(conn.orig_ep.name, "10.77.0.2:8080");
    CHECK_EQ_INT(conn.orig_route.neps, 1);
    CHECK(conn.orig_route.eps == &conn.orig_ep);
    /* a route naming the authority still wins; otherwise the original
     * destination, before "*" and for opaque TCP too */
    CHECK(px_route_find(&px, &conn, "web.emojivoto:80", 16) == &routes[0]);
    CHECK(px_route_find(&px, &conn, "10.77.0.2:8080", 14) == &conn.orig_route);
    CHECK(px_route_find(&px, &conn, NULL, 0) == &conn.orig_route);

    /* not redirected (the original destination is the listener itself): no
     * per-connection route, so "*" as without --transparent */
    memset(&conn, 0, sizeof(conn));
    conn.px = &px;
    conn.dir = MESH_DIR_OUTBOUND;
    CHECK_EQ_INT(px_conn_set_orig(&conn, &local, &local), MESH_EINVAL);
    CHECK(!conn.has_orig);
    CHECK(px_route_find(&px, &conn, NULL, 0) == &routes[1]);
    struct sockaddr_storage unix_ss;
    memset(&unix_ss, 0, sizeof(unix_ss));
    unix_ss.ss_family = AF_UNIX;
    CHECK_EQ_INT(px_conn_set_orig(&conn, &unix_ss, NULL), MESH_EINVAL);

    /* inbound: the application on loopback at the original port, before
     * --inbound-to */
    conn.dir = MESH_DIR_INBOUND;
    CHECK_EQ_INT(px_route_parse("*=127.0.0.1:9", &px.inbound_route, err, sizeof(err)), 0);
    CHECK(px_route_find(&px, &conn, "x", 1) == &px.inbound_route);
    orig = sa("10.77.0.2", 8080);
    local = sa("10.77.0.2", 4143);
    CHECK_EQ_INT(px_conn_set_orig(&conn, &orig, &local), 0);
    CHECK_EQ_STR(conn.orig_ep.name, "127.0.0.1:8080");
    CHECK(px_route_find(&px, &conn, "x", 1) == &conn.orig_route);
    orig = sa("fd00::2", 8081);
    local = sa("fd00::2", 4143);
    CHECK_EQ_INT(px_conn_set_orig(&conn, &orig, &local), 0);
    CHECK_EQ_STR(conn.orig_ep.name, "[::1]:8081");
    conn.dir = MESH_DIR_OUTBOUND;
    CHECK_EQ_INT(px_conn_set_orig(&conn, &orig, &local), 0);
    CHECK_EQ_STR(conn.orig_ep.name, "[fd00::2]:8081");

    for (int i = 0; i < 2; i++)
        px_route_free(&routes[i]);
    px_route_free(&px.inbound_route);
}

int main(void)
{
    RUN(test_detect);
    RUN(test_route_parse);
    RUN(test_route_find);
    RUN(test_transparent);
    return TEST_REPORT();
}
