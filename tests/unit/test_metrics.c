/* Metrics registry: exposition format, families, histograms, concurrency;
 * the HTTP endpoint serves it with /healthz and /readyz. */
#include "lp_buf.h"
#include "lp_http.h"
#include "lp_metrics.h"
#include "lp_tenants.h"
#include "lp_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_exposition(void)
{
    struct lp_metrics *m = lp_metrics_new();
    struct lp_counter *lines =
        lp_metrics_counter(m, "logpipe_test_lines_total", "Lines read.", NULL);
    struct lp_counter *lost_del =
        lp_metrics_counter(m, "logpipe_test_bytes_lost_total", "Bytes lost.", "reason=\"deleted\"");
    struct lp_gauge *g = lp_metrics_gauge(m, "logpipe_test_open_files", "Open files.\nNow.", NULL);
    struct lp_counter *lost_trunc = lp_metrics_counter(m, "logpipe_test_bytes_lost_total",
                                                       "Bytes lost.", "reason=\"truncated\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(lines);
    CU_ASSERT_PTR_EQUAL(lp_metrics_counter(m, "logpipe_test_lines_total", "x", ""), lines);
    CU_ASSERT_PTR_NULL(lp_metrics_gauge(m, "logpipe_test_lines_total", "x", NULL)); /* type clash */
    CU_ASSERT_PTR_NULL(lp_metrics_counter(m, "bad-name", "x", NULL));
    CU_ASSERT_PTR_NULL(lp_metrics_counter(m, "9lives", "x", NULL));
    lp_counter_add(lines, 41);
    lp_counter_inc(lines);
    lp_counter_add(lost_del, 7);
    lp_counter_add(lost_trunc, 3);
    lp_gauge_set(g, 5);
    lp_gauge_add(g, -2);
    struct lp_buf out = LP_BUF_INIT;
    lp_metrics_render(m, &out);
    const char *want = "# HELP logpipe_test_lines_total Lines read.\n"
                       "# TYPE logpipe_test_lines_total counter\n"
                       "logpipe_test_lines_total 42\n"
                       "# HELP logpipe_test_bytes_lost_total Bytes lost.\n"
                       "# TYPE logpipe_test_bytes_lost_total counter\n"
                       "logpipe_test_bytes_lost_total{reason=\"deleted\"} 7\n"
                       "logpipe_test_bytes_lost_total{reason=\"truncated\"} 3\n"
                       "# HELP logpipe_test_open_files Open files.\\nNow.\n"
                       "# TYPE logpipe_test_open_files gauge\n"
                       "logpipe_test_open_files 3\n";
    CU_ASSERT_STRING_EQUAL(out.data, want);
    lp_buf_release(&out);
    lp_metrics_free(m);
}

static void test_histogram(void)
{
    struct lp_metrics *m = lp_metrics_new();
    const double bounds[] = {0.01, 0.1, 1};
    struct lp_histogram *h = lp_metrics_histogram(m, "logpipe_test_latency_seconds", "Latency.",
                                                  "output=\"es\"", bounds, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const double bad[] = {1, 0.5};
    CU_ASSERT_PTR_NULL(lp_metrics_histogram(m, "logpipe_test_bad", "x", NULL, bad, 2));
    lp_histogram_observe(h, 0.005);
    lp_histogram_observe(h, 0.01); /* le is inclusive */
    lp_histogram_observe(h, 0.5);
    lp_histogram_observe(h, 7);
    struct lp_buf out = LP_BUF_INIT;
    lp_metrics_render(m, &out);
    const char *want = "# HELP logpipe_test_latency_seconds Latency.\n"
                       "# TYPE logpipe_test_latency_seconds histogram\n"
                       "logpipe_test_latency_seconds_bucket{output=\"es\",le=\"0.01\"} 2\n"
                       "logpipe_test_latency_seconds_bucket{output=\"es\",le=\"0.1\"} 2\n"
                       "logpipe_test_latency_seconds_bucket{output=\"es\",le=\"1\"} 3\n"
                       "logpipe_test_latency_seconds_bucket{output=\"es\",le=\"+Inf\"} 4\n"
                       "logpipe_test_latency_seconds_sum{output=\"es\"} 7.515\n"
                       "logpipe_test_latency_seconds_count{output=\"es\"} 4\n";
    CU_ASSERT_STRING_EQUAL(out.data, want);
    lp_buf_release(&out);
    lp_metrics_free(m);
}

struct worker {
    struct lp_counter *c;
    struct lp_histogram *h;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 100000; i++) {
        lp_counter_inc(w->c);
        lp_histogram_observe(w->h, 1.0);
    }
    return NULL;
}

static void test_concurrent_updates(void)
{
    struct lp_metrics *m = lp_metrics_new();
    const double bounds[] = {0.5, 2};
    struct worker w = {lp_metrics_counter(m, "logpipe_test_c_total", "c", NULL),
                       lp_metrics_histogram(m, "logpipe_test_h", "h", NULL, bounds, 2)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, &w);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(lp_counter_get(w.c), 400000);
    struct lp_buf out = LP_BUF_INIT;
    lp_metrics_render(m, &out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "logpipe_test_h_sum 400000\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "logpipe_test_h_bucket{le=\"2\"} 400000\n"));
    lp_buf_release(&out);
    lp_metrics_free(m);
}

/* Minimal HTTP GET over loopback; returns the status, body in out. */
static int http_get(unsigned port, const char *path, struct lp_buf *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[4096];
    ssize_t r;
    lp_buf_reset(out);
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        lp_buf_append(out, buf, (size_t)r);
    close(fd);
    int status = -1;
    sscanf(out->data, "HTTP/1.%*d %d", &status);
    return status;
}

static void test_http_endpoint(void)
{
    struct lp_metrics *m = lp_metrics_new();
    lp_counter_add(lp_metrics_counter(m, "logpipe_test_served_total", "x", NULL), 3);
    char err[256];
    CU_ASSERT_PTR_NULL(lp_http_start("nonsense", m, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "host:port"));
    struct lp_http *h = lp_http_start("127.0.0.1:0", m, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    unsigned port = lp_http_port(h);
    CU_ASSERT(port > 0);
    struct lp_buf body = LP_BUF_INIT;
    CU_ASSERT_EQUAL(http_get(port, "/metrics", &body), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body.data, "text/plain; version=0.0.4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body.data, "\r\n\r\n# HELP logpipe_test_served_total x\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(body.data, "logpipe_test_served_total 3\n"));
    CU_ASSERT_EQUAL(http_get(port, "/healthz", &body), 200);
    CU_ASSERT_EQUAL(http_get(port, "/readyz", &body), 200); /* no checks: ready */
    struct lp_ready *kafka = lp_http_ready_check(h, "kafka");
    struct lp_ready *es = lp_http_ready_check(h, "elasticsearch");
    lp_ready_set(kafka, 1);
    CU_ASSERT_EQUAL(http_get(port, "/readyz", &body), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(body.data, "not ready: elasticsearch"));
    CU_ASSERT_PTR_NULL(strstr(body.data, "not ready: kafka"));
    lp_ready_set(es, 1);
    CU_ASSERT_EQUAL(http_get(port, "/readyz", &body), 200);
    /* an external dependency down: listed, counted by ?strict=1 only */
    struct lp_ready *sink = lp_http_ready_check_external(h, "output:search", 1);
    CU_ASSERT_EQUAL(http_get(port, "/readyz", &body), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body.data, "down, not counted: output:search"));
    CU_ASSERT_EQUAL(http_get(port, "/readyz?strict=1", &body), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(body.data, "not ready: output:search"));
    lp_ready_set(sink, 1);
    CU_ASSERT_EQUAL(http_get(port, "/readyz?strict=1", &body), 200);
    lp_ready_set(kafka, 0); /* its own dependency (the group): counted */
    CU_ASSERT_EQUAL(http_get(port, "/readyz", &body), 503);
    CU_ASSERT_EQUAL(http_get(port, "/nope", &body), 404);
    lp_buf_release(&body);
    lp_http_stop(h);
    lp_metrics_free(m);
}

/* The endpoint keeps answering when the process has thousands of files
 * open (a busy node's shipper): its sockets are then above FD_SETSIZE, where
 * select() cannot go. */
static void test_http_many_fds(void)
{
    enum { WANT = 5000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < WANT + 100 && rl.rlim_max >= WANT + 100) {
        rl.rlim_cur = WANT + 100;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static int fds[WANT];
    int n = 0;
    while (n < WANT && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    if (n < WANT) {
        /* valgrind keeps the limit it started with */
        printf("(only %d files could be opened: %d wanted; skipped)\n", n, WANT);
        while (n > 0)
            close(fds[--n]);
        return;
    }
    struct lp_metrics *m = lp_metrics_new();
    char err[256];
    struct lp_http *h = lp_http_start("127.0.0.1:0", m, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    struct lp_buf body = LP_BUF_INIT;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(http_get(lp_http_port(h), "/healthz", &body), 200);
        CU_ASSERT_EQUAL(http_get(lp_http_port(h), "/metrics", &body), 200);
    }
    lp_buf_release(&body);
    lp_http_stop(h);
    lp_metrics_free(m);
    while (n > 0)
        close(fds[--n]);
}

/* Per-namespace counters stay at (max + 2) series per family with 10,000
 * namespaces, and the totals stay exact (the rest under _other). */
static void test_tenants_bounded(void)
{
    struct lp_metrics *m = lp_metrics_new();
    static const char *const fam[] = {"t_events_total", "t_bytes_total"};
    static const char *const help[] = {"Events.", "Bytes."};
    struct lp_tenants *t = lp_tenants_new(m, fam, help, 2, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    uint64_t want = 0;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 10000; i++) {
            char ns[32];
            snprintf(ns, sizeof(ns), "team-%d", i);
            struct lp_counter *const *c = lp_tenants_get(t, ns);
            lp_counter_inc(c[0]);
            lp_counter_add(c[1], 10);
            want++;
        }
    lp_counter_inc(lp_tenants_get(t, NULL)[0]);
    lp_counter_inc(lp_tenants_get(t, "")[0]);
    lp_counter_inc(lp_tenants_get(t, "Not_A_Label")[0]); /* not a DNS label: _other */
    CU_ASSERT_EQUAL(lp_tenants_count(t), 200);
    /* the first 200 kept their own series across rounds */
    CU_ASSERT_PTR_EQUAL(lp_tenants_get(t, "team-0"), lp_tenants_get(t, "team-0"));
    CU_ASSERT_PTR_EQUAL(lp_tenants_get(t, "team-9999"), lp_tenants_get(t, "team-5000"));
    struct lp_buf out = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_metrics_render(m, &out), 0);
    size_t series = 0;
    uint64_t total = 0, other = 0, none = 0;
    for (char *l = out.data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, "t_events_total{", 15) != 0)
            continue;
        series++;
        unsigned long long v = strtoull(strchr(l, ' ') + 1, NULL, 10);
        total += v;
        if (strncmp(l + 15, "log_namespace=\"_other\"", 22) == 0)
            other = v;
        if (strncmp(l + 15, "log_namespace=\"_none\"", 21) == 0)
            none = v;
    }
    printf("\n  10,000 namespaces: %zu series of t_events_total (max 200 + _other + _none)\n",
           series);
    CU_ASSERT_EQUAL(series, 202);
    CU_ASSERT_EQUAL(total, want + 3);
    CU_ASSERT_EQUAL(other, 2 * 9800 + 1);
    CU_ASSERT_EQUAL(none, 2);
    lp_buf_release(&out);
    lp_tenants_free(t);
    CU_ASSERT_PTR_NULL(lp_tenants_new(m, fam, help, 2, 0)); /* 0: off */
    CU_ASSERT_PTR_NULL(lp_tenants_get(NULL, "x"));
    lp_metrics_free(m);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"exposition", test_exposition},
        {"histogram", test_histogram},
        {"concurrent updates", test_concurrent_updates},
        {"http endpoint", test_http_endpoint},
        {"http endpoint with 5,000 open files", test_http_many_fds},
        {"per-namespace series stay bounded", test_tenants_bounded},
        {NULL, NULL},
    };
    return lp_test_run("metrics", tests);
}
