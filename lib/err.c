#include "mesh/err.h"

const char *mesh_strerror(int err)
{
    switch (err) {
    case MESH_OK: return "success";
    case MESH_EINVAL: return "invalid argument";
    case MESH_ENOMEM: return "out of memory";
    case MESH_EPROTO: return "protocol error";
    case MESH_ETOOBIG: return "too large";
    case MESH_EIO: return "input/output error";
    case MESH_EFORMAT: return "unrecognised format";
    case MESH_ENOTSUP: return "not supported";
    case MESH_EDESYNC: return "lost bytes, cannot resynchronise";
    default: return "unknown error";
    }
}
