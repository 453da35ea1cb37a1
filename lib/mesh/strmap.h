/* mesh/strmap.h — a string-keyed hash map of fixed-size values.
 *
 * Views aggregate rows by a key (resource name; source, destination, method
 * and path). The map copies keys and owns zeroed value blocks of |vsize|
 * bytes; pointers to values stay valid until the map is freed (values are
 * allocated one by one, never moved). Insertion order is kept for iteration.
 */
#ifndef MESH_STRMAP_H
#define MESH_STRMAP_H

#include <stddef.h>

struct mesh_strmap_entry {
    struct mesh_strmap_entry *hnext;
    char *key;
    void *val;
};

struct mesh_strmap {
    struct mesh_strmap_entry **buckets;
    size_t nbuckets;
    struct mesh_strmap_entry **order;   /* entries in insertion order */
    size_t n, alloc;
    size_t vsize;
    size_t max;                         /* cap on entries */
};

void mesh_strmap_init(struct mesh_strmap *m, size_t vsize, size_t max);
/* The value for |key|, created zeroed if missing (*created = 1). NULL when out
 * of memory or the map holds |max| entries already. */
void *mesh_strmap_get(struct mesh_strmap *m, const char *key, int *created);
void mesh_strmap_free(struct mesh_strmap *m);

#endif
