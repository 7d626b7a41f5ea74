/* Per-namespace counters with bounded series (lp_tenants.h). */
#include "lp_tenants.h"

#include "lp_alloc.h"
#include "lp_metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tenant {
    char *ns; /* NULL: a free slot */
    struct lp_counter *c[LP_TENANTS_MAX_FAMILIES];
};

struct lp_tenants {
    pthread_mutex_t mu;
    struct lp_metrics *m;
    const char *const *families, *const *helps;
    size_t nf, max, n;
    struct tenant *slots; /* open addressing, never rehashed: entries stay put */
    size_t cap;
    struct tenant other, none;
};

static void make(struct lp_tenants *t, struct tenant *e, const char *ns)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "log_namespace=\"%s\"", ns);
    for (size_t i = 0; i < t->nf; i++)
        e->c[i] = lp_metrics_counter(t->m, t->families[i], t->helps[i], labels);
}

struct lp_tenants *lp_tenants_new(struct lp_metrics *m, const char *const *families,
                                  const char *const *helps, size_t n_families, size_t max)
{
    if (!max || !n_families || n_families > LP_TENANTS_MAX_FAMILIES)
        return NULL;
    struct lp_tenants *t = lp_xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    t->m = m;
    t->families = families;
    t->helps = helps;
    t->nf = n_families;
    t->max = max;
    t->cap = lp_alloc_nr(0, 2 * max + 2, 16); /* at most half full */
    t->slots = lp_xcalloc(t->cap, sizeof(*t->slots));
    make(t, &t->other, "_other");
    make(t, &t->none, "_none");
    return t;
}

void lp_tenants_free(struct lp_tenants *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].ns);
    free(t->slots);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* A Kubernetes namespace name: a DNS label (RFC 1123), at most 63. */
static int dns_label(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n == 63 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return n > 0 && s[0] != '-' && s[n - 1] != '-';
}

struct lp_counter *const *lp_tenants_get(struct lp_tenants *t, const char *ns)
{
    if (!t)
        return NULL;
    if (!ns || !*ns)
        return t->none.c;
    if (!dns_label(ns))
        return t->other.c;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = ns; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    pthread_mutex_lock(&t->mu);
    struct tenant *e = NULL;
    for (size_t i = (size_t)h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slots[i].ns) {
            if (t->n < t->max) {
                e = &t->slots[i];
                make(t, e, ns);
                e->ns = lp_xstrdup(ns);
                t->n++;
            }
            break;
        }
        if (strcmp(t->slots[i].ns, ns) == 0) {
            e = &t->slots[i];
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return e ? e->c : t->other.c;
}

size_t lp_tenants_count(struct lp_tenants *t)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
