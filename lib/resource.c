#include "mesh/resource.h"

#include <string.h>

#include "mesh/err.h"

static const struct {
    const char *word;
    enum mesh_rtype type;
} rtype_words[] = {
    {"ns", MESH_RT_NS},         {"namespace", MESH_RT_NS},      {"namespaces", MESH_RT_NS},
    {"deploy", MESH_RT_DEPLOY}, {"deployment", MESH_RT_DEPLOY}, {"deployments", MESH_RT_DEPLOY},
    {"po", MESH_RT_POD},        {"pod", MESH_RT_POD},           {"pods", MESH_RT_POD},
    {"au", MESH_RT_AUTH},       {"authority", MESH_RT_AUTH},    {"authorities", MESH_RT_AUTH},
};

enum mesh_rtype mesh_rtype_parse(const char *word)
{
    for (size_t i = 0; i < sizeof(rtype_words) / sizeof(rtype_words[0]); i++)
        if (strcmp(word, rtype_words[i].word) == 0)
            return rtype_words[i].type;
    return MESH_RT_NONE;
}

const char *mesh_rtype_name(enum mesh_rtype type)
{
    switch (type) {
    case MESH_RT_NS: return "ns";
    case MESH_RT_DEPLOY: return "deploy";
    case MESH_RT_POD: return "po";
    case MESH_RT_AUTH: return "au";
    default: return "?";
    }
}

int mesh_resource_parse(char *arg, struct mesh_resource *res, const char **err_desc)
{
    char *slash = strchr(arg, '/');
    res->name = NULL;
    res->ns = NULL;
    if (slash != NULL) {
        *slash = '\0';
        if (slash[1] == '\0') {
            *err_desc = "resource name missing after '/'";
            return MESH_EINVAL;
        }
        res->name = slash + 1;
    }
    res->type = mesh_rtype_parse(arg);
    if (res->type == MESH_RT_NONE) {
        *err_desc = "unknown resource type (expected ns, deploy, po or au)";
        return MESH_EINVAL;
    }
    return 0;
}

const char *mesh_resource_of(const struct mesh_evt *evt, enum mesh_rtype type, int src_side)
{
    const struct mesh_labels *l = src_side ? &evt->src_labels : &evt->dst_labels;
    switch (type) {
    case MESH_RT_NS: return l->ns;
    case MESH_RT_DEPLOY: return l->deploy;
    case MESH_RT_POD: return l->pod;
    case MESH_RT_AUTH: return src_side ? NULL : evt->authority;
    default: return NULL;
    }
}

int mesh_resource_match(const struct mesh_resource *res, const struct mesh_evt *evt, int src_side)
{
    const char *name = mesh_resource_of(evt, res->type, src_side);
    if (name == NULL)
        return 0;
    if (res->name != NULL && strcmp(res->name, name) != 0)
        return 0;
    if (res->ns != NULL && res->type != MESH_RT_NS && res->type != MESH_RT_AUTH) {
        const char *ns = src_side ? evt->src_labels.ns : evt->dst_labels.ns;
        if (ns == NULL || strcmp(ns, res->ns) != 0)
            return 0;
    }
    return 1;
}
