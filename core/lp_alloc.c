/* Allocation that cannot fail (lp_alloc.h). */
#include "lp_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The one place that calls the allocator (lp_banned.h bans it elsewhere). */
#undef malloc
#undef calloc
#undef realloc

static void *check(void *p)
{
    if (!p)
        abort();
    return p;
}

void *lp_xmalloc(size_t n)
{
    return check(malloc(n ? n : 1));
}

void *lp_xcalloc(size_t count, size_t size)
{
    return check(calloc(count ? count : 1, size ? size : 1));
}

void *lp_xrealloc(void *p, size_t n)
{
    return check(realloc(p, n ? n : 1));
}

void *lp_xreallocarray(void *p, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        abort();
    return lp_xrealloc(p, count * size);
}

char *lp_xstrdup(const char *s)
{
    return s ? check((strdup)(s)) : NULL; /* (strdup): past lp_banned.h */
}

char *lp_xstrndup(const char *s, size_t n)
{
    return s ? check((strndup)(s, n)) : NULL;
}

size_t lp_alloc_nr(size_t cap, size_t need, size_t first)
{
    size_t nc = cap ? cap : (first ? first : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            abort();
        nc *= 2;
    }
    return nc;
}
