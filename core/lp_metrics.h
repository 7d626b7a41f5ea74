/* Metrics registry: counters, gauges and histograms, rendered in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * Threads: create handles at start-up (any thread; registration locks);
 * update them from any thread with relaxed atomics (no lock, no allocation);
 * lp_metrics_render may run concurrently with updates (the HTTP thread).
 * Handles live as long as the registry. */
#ifndef LP_METRICS_H
#define LP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct lp_buf;
struct lp_metrics;

struct lp_counter {
    _Atomic uint64_t v;
};
struct lp_gauge {
    _Atomic int64_t v;
    _Atomic int unset; /* not rendered until the next set (lp_gauge_unset) */
};
struct lp_histogram; /* buckets are fixed at creation */

/* Returns a new, empty registry (free with lp_metrics_free). */
struct lp_metrics *lp_metrics_new(void);
void lp_metrics_free(struct lp_metrics *m);

/* Registers a series of family `name` (e.g. logpipe_shipper_lines_total)
 * with an optional fixed label set `labels` in exposition syntax, such as
 * `reason="deleted"` (NULL or "" for none). The same name with the same
 * labels returns the existing handle; the same name with another type, or an
 * invalid name, returns NULL. help is copied. */
struct lp_counter *lp_metrics_counter(struct lp_metrics *m, const char *name, const char *help,
                                      const char *labels);
struct lp_gauge *lp_metrics_gauge(struct lp_metrics *m, const char *name, const char *help,
                                  const char *labels);
/* bounds: n ascending upper bounds (copied); +Inf is implicit. */
struct lp_histogram *lp_metrics_histogram(struct lp_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t n);

static inline void lp_counter_add(struct lp_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}
static inline void lp_counter_inc(struct lp_counter *c)
{
    lp_counter_add(c, 1);
}
static inline uint64_t lp_counter_get(struct lp_counter *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}
static inline void lp_gauge_set(struct lp_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
    atomic_store_explicit(&g->unset, 0, memory_order_relaxed);
}
/* Takes the series out of the exposition until the next lp_gauge_set (a
 * per-partition gauge of a partition this process gave away: sum() over
 * processes must not count its last value). The handle stays valid. */
static inline void lp_gauge_unset(struct lp_gauge *g)
{
    atomic_store_explicit(&g->unset, 1, memory_order_relaxed);
}
static inline void lp_gauge_add(struct lp_gauge *g, int64_t d)
{
    atomic_fetch_add_explicit(&g->v, d, memory_order_relaxed);
}
static inline int64_t lp_gauge_get(struct lp_gauge *g)
{
    return atomic_load_explicit(&g->v, memory_order_relaxed);
}
/* Lock-free: a bucket increment plus a CAS loop on the sum. */
void lp_histogram_observe(struct lp_histogram *h, double v);

/* Appends the exposition text of every series to out. 0 or LP_ETOOBIG. */
int lp_metrics_render(struct lp_metrics *m, struct lp_buf *out);

/* 1 when name is a valid Prometheus metric name. */
int lp_metrics_name_valid(const char *name);

#endif
