/* lp_kvlist: small ordered string map; linear lookups (tens of entries). */
#include "lp_kv.h"
#include "lp_alloc.h"

#include <stdlib.h>
#include <string.h>

void lp_kvlist_set(struct lp_kvlist *l, const char *key, const char *value)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) {
            free(l->items[i].value);
            l->items[i].value = lp_xstrdup(value);
            return;
        }
    }
    struct lp_kv *p = lp_xreallocarray(l->items, (l->n + 1), sizeof(*p));
    l->items = p;
    l->items[l->n].key = lp_xstrdup(key);
    l->items[l->n].value = lp_xstrdup(value);
    l->n++;
}

const char *lp_kvlist_get(const struct lp_kvlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].value;
    return NULL;
}

void lp_kvlist_release(struct lp_kvlist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}
