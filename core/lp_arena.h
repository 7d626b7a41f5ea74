/* Bump allocator for per-batch data: many small allocations freed at once.
 * One owning thread. Memory is capped so input-sized use fails cleanly. */
#ifndef LP_ARENA_H
#define LP_ARENA_H

#include <stddef.h>

struct lp_arena_chunk;

/* Embed and lp_arena_init; limit == 0 means no cap on the total bytes. */
struct lp_arena {
    struct lp_arena_chunk *head;
    size_t chunk_size;
    size_t used_total; /* bytes of all chunks */
    size_t limit;
};

void lp_arena_init(struct lp_arena *a, size_t chunk_size, size_t limit);
/* Frees every chunk. NULL is ok. */
void lp_arena_release(struct lp_arena *a);
/* Frees everything but keeps the most recent chunk for reuse. */
void lp_arena_reset(struct lp_arena *a);
/* 16-byte aligned memory valid until reset/release, or NULL when the limit
 * would be exceeded (the caller maps that to LP_ETOOBIG). */
void *lp_arena_alloc(struct lp_arena *a, size_t size);
/* Copies s[0..n) plus a NUL into the arena; NULL when over the limit. */
char *lp_arena_strndup(struct lp_arena *a, const char *s, size_t n);
/* Total bytes held by the arena's chunks. */
size_t lp_arena_bytes(const struct lp_arena *a);

#endif
