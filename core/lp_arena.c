/* lp_arena: chunked bump allocator; large requests get a chunk of their own. */
#include "lp_arena.h"
#include "lp_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct lp_arena_chunk {
    struct lp_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(16) unsigned char mem[];
};

void lp_arena_init(struct lp_arena *a, size_t chunk_size, size_t limit)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->used_total = 0;
    a->limit = limit;
}

void lp_arena_release(struct lp_arena *a)
{
    if (!a)
        return;
    struct lp_arena_chunk *c = a->head;
    while (c) {
        struct lp_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used_total = 0;
}

void lp_arena_reset(struct lp_arena *a)
{
    if (!a->head)
        return;
    struct lp_arena_chunk *keep = a->head, *c = keep->next;
    while (c) {
        struct lp_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    keep->next = NULL;
    keep->used = 0;
    a->used_total = keep->size;
}

void *lp_arena_alloc(struct lp_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0)
        size = 16;
    struct lp_arena_chunk *c = a->head;
    if (c && c->size - c->used >= size) {
        void *p = c->mem + c->used;
        c->used += size;
        return p;
    }
    size_t csize = size > a->chunk_size ? size : a->chunk_size;
    if (csize > SIZE_MAX - sizeof(*c))
        return NULL;
    if (a->limit && a->used_total + csize > a->limit)
        return NULL;
    c = lp_xmalloc(sizeof(*c) + csize);
    c->size = csize;
    c->used = size;
    a->used_total += csize;
    if (a->head && size > a->chunk_size) {
        /* An oversized block goes behind the current chunk so the current
         * chunk's free space is still used by the next small requests. */
        c->next = a->head->next;
        a->head->next = c;
    } else {
        c->next = a->head;
        a->head = c;
    }
    return c->mem;
}

char *lp_arena_strndup(struct lp_arena *a, const char *s, size_t n)
{
    char *p = lp_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t lp_arena_bytes(const struct lp_arena *a)
{
    return a->used_total;
}
