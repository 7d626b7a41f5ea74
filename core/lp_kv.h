/* A list of string pairs (kafka.properties, static fields, ...). */
#ifndef LP_KV_H
#define LP_KV_H

#include <stddef.h>

struct lp_kv {
    char *key;
    char *value;
};

/* Owns its items and their strings (free with lp_kvlist_release). */
struct lp_kvlist {
    struct lp_kv *items;
    size_t n;
};

/* Sets key to value (copies both), replacing an existing key's value. */
void lp_kvlist_set(struct lp_kvlist *l, const char *key, const char *value);
/* Returns the value of key or NULL (borrowed). */
const char *lp_kvlist_get(const struct lp_kvlist *l, const char *key);
void lp_kvlist_release(struct lp_kvlist *l);

#endif
