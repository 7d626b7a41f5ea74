/* Allocation that cannot fail (Git's xmalloc family and ALLOC_GROW).
 *
 * logpipe does not try to run on in an out-of-memory state: every bounded
 * input is capped before it is allocated (max_pending_bytes, line and field
 * caps), so a failed allocation is a bug or the kernel's verdict, and the
 * process aborts at once rather than carry a NULL into later code. Memory
 * that content can make large is bounded by the callers, never here.
 * All functions are safe from any thread. */
#ifndef LP_ALLOC_H
#define LP_ALLOC_H

#include <stddef.h>

void *lp_xmalloc(size_t n);
void *lp_xcalloc(size_t count, size_t size);
void *lp_xrealloc(void *p, size_t n);
/* realloc to count * size bytes; aborts on overflow as on failure */
void *lp_xreallocarray(void *p, size_t count, size_t size);
/* A copy of s, or NULL when s is NULL (callers that want "" say so). */
char *lp_xstrdup(const char *s);
char *lp_xstrndup(const char *s, size_t n);

/* The capacity after cap when at least need is wanted: doubling from
 * cap (or first when cap is 0); aborts on overflow. */
size_t lp_alloc_nr(size_t cap, size_t need, size_t first);

/* Makes room for need elements in the array ptr of capacity cap (both
 * lvalues; cap a size_t), growing by doubling from first:
 *     LP_ALLOC_GROW(v->items, v->n + 1, v->cap, 16);
 *     v->items[v->n++] = x;
 * New slots are uninitialised. */
#define LP_ALLOC_GROW(ptr, need, cap, first)                         \
    do {                                                             \
        if ((need) > (cap)) {                                        \
            size_t lp_nc_ = lp_alloc_nr((cap), (need), (first));     \
            (ptr) = lp_xreallocarray((ptr), lp_nc_, sizeof(*(ptr))); \
            (cap) = lp_nc_;                                          \
        }                                                            \
    } while (0)

#endif
