#include "mesh/labels.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/err.h"

#define LABELS_MAX_ENTRIES 100000
#define LABELS_MAX_LINE 1024

struct entry {
    char addr[INET6_ADDRSTRLEN];
    unsigned port;                  /* 0 = any */
    struct mesh_labels labels;
    char *strings;
};

struct mesh_labelmap {
    struct entry *entries;
    size_t n;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->addr, y->addr);
    return c ? c : (x->port > y->port) - (x->port < y->port);
}

/* Splits "IP:PORT", "[V6]:PORT", "IP" or "V6" into a normalised address and port. */
static int parse_endpoint(const char *tok, char *addr, unsigned *port)
{
    char host[LABELS_MAX_LINE];
    const char *colon = strrchr(tok, ':');
    *port = 0;
    if (tok[0] == '[') {
        const char *close = strchr(tok, ']');
        if (close == NULL || (size_t)(close - tok - 1) >= sizeof(host))
            return -1;
        memcpy(host, tok + 1, (size_t)(close - tok - 1));
        host[close - tok - 1] = '\0';
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != '\0' && colon == NULL)
            return -1;
    } else if (colon != NULL && strchr(tok, ':') == colon) {
        memcpy(host, tok, (size_t)(colon - tok));
        host[colon - tok] = '\0';
    } else {
        snprintf(host, sizeof(host), "%s", tok);
        colon = NULL;
    }
    if (colon != NULL) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (*end != '\0' || end == colon + 1 || p == 0 || p > 65535)
            return -1;
        *port = (unsigned)p;
    }
    unsigned char bin[16];
    if (inet_pton(AF_INET, host, bin) == 1)
        inet_ntop(AF_INET, bin, addr, INET6_ADDRSTRLEN);
    else if (inet_pton(AF_INET6, host, bin) == 1)
        inet_ntop(AF_INET6, bin, addr, INET6_ADDRSTRLEN);
    else
        return -1;
    return 0;
}

static int parse_line(char *line, struct entry *e, const char **why)
{
    char *save = NULL, *ep = strtok_r(line, " \t", &save);
    char *lab = strtok_r(NULL, " \t", &save);
    if (lab == NULL || strtok_r(NULL, " \t", &save) != NULL) {
        *why = "expected `IP:PORT namespace/deployment[/pod]`";
        return -1;
    }
    if (parse_endpoint(ep, e->addr, &e->port) != 0) {
        *why = "not an IP address with an optional port";
        return -1;
    }
    char *ns = lab, *dep = strchr(lab, '/'), *pod = NULL;
    if (dep == NULL || dep == ns || dep[1] == '\0') {
        *why = "labels must be namespace/deployment[/pod]";
        return -1;
    }
    *dep++ = '\0';
    if ((pod = strchr(dep, '/')) != NULL) {
        *pod++ = '\0';
        if (*pod == '\0' || strchr(pod, '/') != NULL) {
            *why = "labels must be namespace/deployment[/pod]";
            return -1;
        }
    }
    size_t len = strlen(ns) + strlen(dep) + (pod ? strlen(pod) : 0) + 3;
    if ((e->strings = malloc(len)) == NULL) {
        *why = "out of memory";
        return -1;
    }
    char *p = e->strings;
    e->labels.ns = strcpy(p, ns);
    p += strlen(ns) + 1;
    e->labels.deploy = strcpy(p, dep);
    p += strlen(dep) + 1;
    e->labels.pod = pod ? strcpy(p, pod) : NULL;
    return 0;
}

int mesh_labelmap_load(const char *path, struct mesh_labelmap **out, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return MESH_EIO;
    }
    struct mesh_labelmap *map = calloc(1, sizeof(*map));
    size_t alloc = 0, lineno = 0;
    char line[LABELS_MAX_LINE];
    int rv = map ? 0 : MESH_ENOMEM;
    while (rv == 0 && fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%zu: line longer than %d bytes", path, lineno,
                     LABELS_MAX_LINE - 2);
            rv = MESH_EFORMAT;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (line[strspn(line, " \t")] == '\0')
            continue;
        if (map->n == LABELS_MAX_ENTRIES) {
            snprintf(err, errlen, "%s:%zu: more than %d entries", path, lineno,
                     LABELS_MAX_ENTRIES);
            rv = MESH_ETOOBIG;
            break;
        }
        if (map->n == alloc) {
            size_t nalloc = alloc ? alloc * 2 : 16;
            struct entry *grown = realloc(map->entries, nalloc * sizeof(*grown));
            if (grown == NULL) {
                rv = MESH_ENOMEM;
                break;
            }
            map->entries = grown;
            alloc = nalloc;
        }
        const char *why = NULL;
        struct entry *e = &map->entries[map->n];
        memset(e, 0, sizeof(*e));
        if (parse_line(line, e, &why) != 0) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
            rv = MESH_EFORMAT;
            break;
        }
        map->n++;
    }
    if (rv == 0 && ferror(fp)) {
        snprintf(err, errlen, "%s: read error", path);
        rv = MESH_EIO;
    }
    fclose(fp);
    if (rv == MESH_ENOMEM)
        snprintf(err, errlen, "%s: out of memory", path);
    if (rv != 0) {
        mesh_labelmap_free(map);
        return rv;
    }
    qsort(map->entries, map->n, sizeof(*map->entries), cmp_entry);
    *out = map;
    return 0;
}

const struct mesh_labels *mesh_labelmap_find(const struct mesh_labelmap *map, const char *ip,
                                             unsigned port)
{
    if (map == NULL || map->n == 0)
        return NULL;
    struct entry key;
    snprintf(key.addr, sizeof(key.addr), "%s", ip);
    key.port = port;
    const struct entry *e = bsearch(&key, map->entries, map->n, sizeof(key), cmp_entry);
    if (e == NULL) {
        key.port = 0;
        e = bsearch(&key, map->entries, map->n, sizeof(key), cmp_entry);
    }
    return e ? &e->labels : NULL;
}

void mesh_labelmap_free(struct mesh_labelmap *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->n; i++)
        free(map->entries[i].strings);
    free(map->entries);
    free(map);
}
