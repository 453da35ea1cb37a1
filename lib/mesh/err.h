/* mesh/err.h — every error code of the project, in one place.
 *
 * Functions return int: 0 on success, a negative MESH_E* on failure.
 * mesh_strerror() gives a short lower-case description for messages.
 * Parsers additionally report *why* through a `const char **err_desc`
 * pointing to a static string, so a message can name the exact problem.
 */
#ifndef MESH_ERR_H
#define MESH_ERR_H

enum {
    MESH_OK = 0,
    MESH_EINVAL = -1,   /* bad argument or bad usage */
    MESH_ENOMEM = -2,   /* allocation failed */
    MESH_EPROTO = -3,   /* the peer (or the capture) broke the protocol */
    MESH_ETOOBIG = -4,  /* input exceeded a hard cap */
    MESH_EIO = -5,      /* a file or socket failed */
    MESH_EFORMAT = -6,  /* not the file format we expected */
    MESH_ENOTSUP = -7,  /* valid, but we do not handle it */
    MESH_EDESYNC = -8,  /* bytes were lost; the decoder cannot go on */
};

const char *mesh_strerror(int err);

/* Exit statuses of the `mesh` command (DESIGN.md, "Errors"). */
enum { MESH_EXIT_OK = 0, MESH_EXIT_RUNTIME = 1, MESH_EXIT_USAGE = 2 };

#endif
