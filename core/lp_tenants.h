/* Per-namespace counters (what each tenant sends, drops, ...) with a
 * bound on their series: the first `max` namespaces a daemon sees get
 * series of their own, every later one counts under log_namespace="_other",
 * and lines without a namespace (no Kubernetes path) under "_none". Totals
 * stay exact and the series count stays at most (max + 2) x families,
 * however many namespaces a cluster has; which namespaces have their own
 * series is decided by arrival, not by volume (a counter cannot move from
 * one series to another), and resets when the daemon restarts
 * (docs/metrics.md "Per-namespace volume"). Namespace names are Kubernetes
 * DNS labels; anything else counts as "_other". The label is log_namespace:
 * "namespace" is the scrape target's own label (the daemon pod's).
 *
 * Threads: lp_tenants_get from any thread (a mutex around a fixed table:
 * call it once per batch or source, not per line); the returned counters
 * are updated lock-free (lp_counter_add) and live as long as the
 * registry. */
#ifndef LP_TENANTS_H
#define LP_TENANTS_H

#include <stddef.h>

struct lp_metrics;
struct lp_counter;
struct lp_tenants;

#define LP_TENANTS_MAX_FAMILIES 8

/* families[i]/helps[i]: counter names (a `namespace` label is added);
 * both arrays are borrowed for the table's life. max == 0: off (get
 * returns NULL). */
struct lp_tenants *lp_tenants_new(struct lp_metrics *m, const char *const *families,
                                  const char *const *helps, size_t n_families, size_t max);
void lp_tenants_free(struct lp_tenants *t);
/* The counters of namespace ns (NULL or "": "_none"), in the order of
 * families; NULL when t is NULL (off). */
struct lp_counter *const *lp_tenants_get(struct lp_tenants *t, const char *ns);
/* How many namespaces have their own series. */
size_t lp_tenants_count(struct lp_tenants *t);

#endif
