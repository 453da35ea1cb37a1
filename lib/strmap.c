#include "mesh/strmap.h"

#include <stdlib.h>
#include <string.h>

void mesh_strmap_init(struct mesh_strmap *m, size_t vsize, size_t max)
{
    memset(m, 0, sizeof(*m));
    m->vsize = vsize;
    m->max = max;
}

static size_t hash_str(const char *s)
{
    size_t h = 5381;
    while (*s)
        h = h * 33 ^ (unsigned char)*s++;
    return h;
}

static int grow(struct mesh_strmap *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 64;
    struct mesh_strmap_entry **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        struct mesh_strmap_entry *e = m->order[i];
        size_t h = hash_str(e->key) & (nb - 1);
        e->hnext = b[h];
        b[h] = e;
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

void *mesh_strmap_get(struct mesh_strmap *m, const char *key, int *created)
{
    if (created)
        *created = 0;
    if (m->nbuckets) {
        for (struct mesh_strmap_entry *e = m->buckets[hash_str(key) & (m->nbuckets - 1)]; e;
             e = e->hnext)
            if (strcmp(e->key, key) == 0)
                return e->val;
    }
    if (m->n >= m->max)
        return NULL;
    if ((m->n + 1) * 2 > m->nbuckets && grow(m) != 0)
        return NULL;
    if (m->n == m->alloc) {
        size_t na = m->alloc ? m->alloc * 2 : 32;
        struct mesh_strmap_entry **o = realloc(m->order, na * sizeof(*o));
        if (o == NULL)
            return NULL;
        m->order = o;
        m->alloc = na;
    }
    size_t klen = strlen(key) + 1;
    struct mesh_strmap_entry *e = malloc(sizeof(*e) + klen);
    void *val = calloc(1, m->vsize);
    if (e == NULL || val == NULL) {
        free(e);
        free(val);
        return NULL;
    }
    e->key = memcpy((char *)(e + 1), key, klen);
    e->val = val;
    size_t h = hash_str(key) & (m->nbuckets - 1);
    e->hnext = m->buckets[h];
    m->buckets[h] = e;
    m->order[m->n++] = e;
    if (created)
        *created = 1;
    return val;
}

void mesh_strmap_free(struct mesh_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->order[i]->val);
        free(m->order[i]);
    }
    free(m->order);
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}
