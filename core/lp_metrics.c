/* Metrics registry and Prometheus text exposition. Series are kept in
 * registration order; a family's HELP/TYPE lines are written once, before
 * its first series, and its other series follow it. */
#include "lp_metrics.h"

#include "lp_alloc.h"
#include "lp_buf.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

struct lp_histogram {
    size_t n;
    double *bounds;
    _Atomic uint64_t *buckets; /* n + 1, the last is +Inf; not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits; /* a double */
};

struct series {
    enum kind kind;
    char *name;
    char *help;
    char *labels;
    union {
        struct lp_counter counter;
        struct lp_gauge gauge;
        struct lp_histogram hist;
    } u;
};

struct lp_metrics {
    pthread_mutex_t lock;
    struct series **s;
    size_t n, cap;
};

struct lp_metrics *lp_metrics_new(void)
{
    struct lp_metrics *m = lp_xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void lp_metrics_free(struct lp_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct series *s = m->s[i];
        if (s->kind == K_HISTOGRAM) {
            free(s->u.hist.bounds);
            free((void *)s->u.hist.buckets);
        }
        free(s->name);
        free(s->help);
        free(s->labels);
        free(s);
    }
    free(m->s);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int lp_metrics_name_valid(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (p != name && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Finds or creates a series; NULL on a type clash or bad name. Locked. */
static struct series *lookup(struct lp_metrics *m, enum kind kind, const char *name,
                             const char *help, const char *labels, int *created)
{
    *created = 0;
    if (!lp_metrics_name_valid(name))
        return NULL;
    if (!labels)
        labels = "";
    for (size_t i = 0; i < m->n; i++) {
        struct series *s = m->s[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (s->kind != kind)
            return NULL;
        if (strcmp(s->labels, labels) == 0)
            return s;
    }
    LP_ALLOC_GROW(m->s, m->n + 1, m->cap, 32);
    struct series *s = lp_xcalloc(1, sizeof(*s));
    s->kind = kind;
    s->name = lp_xstrdup(name);
    s->help = lp_xstrdup(help ? help : "");
    s->labels = lp_xstrdup(labels);
    m->s[m->n++] = s;
    *created = 1;
    return s;
}

struct lp_counter *lp_metrics_counter(struct lp_metrics *m, const char *name, const char *help,
                                      const char *labels)
{
    int created;
    pthread_mutex_lock(&m->lock);
    struct series *s = lookup(m, K_COUNTER, name, help, labels, &created);
    pthread_mutex_unlock(&m->lock);
    return s ? &s->u.counter : NULL;
}

struct lp_gauge *lp_metrics_gauge(struct lp_metrics *m, const char *name, const char *help,
                                  const char *labels)
{
    int created;
    pthread_mutex_lock(&m->lock);
    struct series *s = lookup(m, K_GAUGE, name, help, labels, &created);
    pthread_mutex_unlock(&m->lock);
    return s ? &s->u.gauge : NULL;
}

struct lp_histogram *lp_metrics_histogram(struct lp_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return NULL;
    int created;
    pthread_mutex_lock(&m->lock);
    struct series *s = lookup(m, K_HISTOGRAM, name, help, labels, &created);
    if (s && created) {
        struct lp_histogram *h = &s->u.hist;
        h->n = n;
        h->bounds = lp_xmalloc((n ? n : 1) * sizeof(double));
        h->buckets = lp_xcalloc(n + 1, sizeof(*h->buckets));
        if (n)
            memcpy(h->bounds, bounds, n * sizeof(double));
        double zero = 0;
        uint64_t zb;
        memcpy(&zb, &zero, sizeof(zb));
        atomic_init(&h->sum_bits, zb);
    }
    pthread_mutex_unlock(&m->lock);
    return s ? &s->u.hist : NULL;
}

void lp_histogram_observe(struct lp_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed), nw;
    do {
        double d;
        memcpy(&d, &old, sizeof(d));
        d += v;
        memcpy(&nw, &d, sizeof(nw));
    } while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static void put_double(struct lp_buf *out, double d)
{
    if (isinf(d))
        lp_buf_puts(out, d > 0 ? "+Inf" : "-Inf");
    else if (isnan(d))
        lp_buf_puts(out, "NaN");
    else if (d == floor(d) && fabs(d) < 1e15)
        lp_buf_appendf(out, "%.0f", d);
    else {
        /* shortest form that reads back exactly: 0.1, not 0.10000000000000001 */
        char tmp[32];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        lp_buf_puts(out, tmp);
    }
}

/* name{labels[,extra]} */
static void put_series_name(struct lp_buf *out, const char *name, const char *suffix,
                            const char *labels, const char *extra)
{
    lp_buf_puts(out, name);
    lp_buf_puts(out, suffix);
    if (*labels || extra) {
        lp_buf_putc(out, '{');
        lp_buf_puts(out, labels);
        if (extra) {
            if (*labels)
                lp_buf_putc(out, ',');
            lp_buf_puts(out, extra);
        }
        lp_buf_putc(out, '}');
    }
    lp_buf_putc(out, ' ');
}

static void put_help(struct lp_buf *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            lp_buf_puts(out, "\\\\");
        else if (*p == '\n')
            lp_buf_puts(out, "\\n");
        else
            lp_buf_putc(out, *p);
    }
}

static void render_series(struct lp_buf *out, struct series *s)
{
    switch (s->kind) {
    case K_COUNTER:
        put_series_name(out, s->name, "", s->labels, NULL);
        lp_buf_appendf(out, "%llu\n", (unsigned long long)lp_counter_get(&s->u.counter));
        break;
    case K_GAUGE:
        if (atomic_load_explicit(&s->u.gauge.unset, memory_order_relaxed))
            break;
        put_series_name(out, s->name, "", s->labels, NULL);
        lp_buf_appendf(out, "%lld\n", (long long)lp_gauge_get(&s->u.gauge));
        break;
    case K_HISTOGRAM: {
        struct lp_histogram *h = &s->u.hist;
        uint64_t cum = 0;
        char le[64];
        for (size_t i = 0; i <= h->n; i++) {
            cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
            if (i < h->n) {
                struct lp_buf tmp = LP_BUF_INIT;
                put_double(&tmp, h->bounds[i]);
                snprintf(le, sizeof(le), "le=\"%s\"", tmp.data);
                lp_buf_release(&tmp);
            } else {
                snprintf(le, sizeof(le), "le=\"+Inf\"");
            }
            put_series_name(out, s->name, "_bucket", s->labels, le);
            lp_buf_appendf(out, "%llu\n", (unsigned long long)cum);
        }
        uint64_t bits = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
        double sum;
        memcpy(&sum, &bits, sizeof(sum));
        put_series_name(out, s->name, "_sum", s->labels, NULL);
        put_double(out, sum);
        lp_buf_putc(out, '\n');
        /* count = the +Inf bucket, so the two always agree in one scrape */
        put_series_name(out, s->name, "_count", s->labels, NULL);
        lp_buf_appendf(out, "%llu\n", (unsigned long long)cum);
        break;
    }
    }
}

int lp_metrics_render(struct lp_metrics *m, struct lp_buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->lock);
    char *done = lp_xcalloc(m->n ? m->n : 1, 1);
    for (size_t i = 0; i < m->n; i++) {
        if (done[i])
            continue;
        struct series *f = m->s[i];
        lp_buf_appendf(out, "# HELP %s ", f->name);
        put_help(out, f->help);
        lp_buf_appendf(out, "\n# TYPE %s %s\n", f->name, types[f->kind]);
        for (size_t j = i; j < m->n; j++) {
            if (!done[j] && strcmp(m->s[j]->name, f->name) == 0) {
                render_series(out, m->s[j]);
                done[j] = 1;
            }
        }
    }
    free(done);
    pthread_mutex_unlock(&m->lock);
    return 0;
}
