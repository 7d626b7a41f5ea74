/* The Elasticsearch/OpenSearch output (out_elasticsearch.h), and its
 * lp_output_ops (at the end). */
#define LP_LOG_MODULE "es"
#include "out_elasticsearch.h"

#include "lp_deadletter.h"
#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_bulk.h"
#include "lp_es_conn.h"
#include "lp_codec.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_http.h"
#include "lp_idmap.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_time.h"
#include "lp_tracker.h"

#include "lp_ecs.h"
#include "lp_output.h"

#include <curl/curl.h>
#include <pthread.h>
#include <xxhash.h>
#include <stdatomic.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lp_es_doc {
    struct lp_es_doc *next;
    struct lp_msg *m;
    int32_t partition;
    int64_t kafka_offset;
    int64_t not_before; /* monotonic ns: retry not before */
    uint32_t attempts;
    int healed;  /* times sent again after a mapping conflict (heal_doc) */
    size_t acct; /* bytes counted as held for the message's partition (lp_part_held) */
    char id[40];
    char *index;
    size_t len;
    const char *orig; /* healed: the document as first sent (the dead letter's) */
    size_t orig_len;
    char data[]; /* doc NUL, index NUL[, original doc NUL] */
};

struct list {
    struct lp_es_doc *head, *tail;
    size_t n;
    size_t bytes;
};

static void list_push(struct list *l, struct lp_es_doc *d)
{
    d->next = NULL;
    if (l->tail)
        l->tail->next = d;
    else
        l->head = d;
    l->tail = d;
    l->n++;
    l->bytes += d->len;
}

static struct lp_es_doc *list_pop(struct list *l)
{
    struct lp_es_doc *d = l->head;
    if (!d)
        return NULL;
    l->head = d->next;
    if (!l->head)
        l->tail = NULL;
    l->n--;
    l->bytes -= d->len;
    d->next = NULL;
    return d;
}

/* Appends b to the front of a. */
static void list_prepend(struct list *a, struct list *b)
{
    if (!b->head)
        return;
    b->tail->next = a->head;
    if (!a->tail)
        a->tail = b->tail;
    a->head = b->head;
    a->n += b->n;
    a->bytes += b->bytes;
    b->head = b->tail = NULL;
    b->n = 0;
    b->bytes = 0;
}

struct request {
    struct lp_es *es;
    CURL *easy;
    struct curl_slist *headers;
    struct lp_es_doc **docs;
    size_t n;
    size_t raw_bytes;
    struct lp_buf body;
    struct lp_buf resp;
    int64_t started;
    int in_use;
};

/* What an index name template needs of a fast-path event (one without ev):
 * nothing (no {field}), the batch's source-level fields (and stream), or the
 * event itself. */
enum index_mode { IDX_NONE, IDX_BATCH, IDX_RECORD };

struct lp_es {
    struct lp_output base; /* first: the output interface */
    enum index_mode index_mode;
    char *name;
    char *url_bulk;
    char *url_template;
    char *index;
    char *template_name;
    int data_stream;
    int gzip;
    int install_template;
    struct lp_es_conn conn; /* URL, credentials, TLS, timeouts (shared with retention) */
    size_t max_inflight;
    size_t bulk_max_bytes;
    size_t cur_max_bytes; /* halved on 413, grows back on success */
    size_t bulk_max_actions;
    size_t cur_max_actions; /* likewise */
    int64_t flush_ns;
    int64_t retry_initial_ns, retry_max_ns;
    const char *topic;
    struct lp_dlq *dlq;
    struct lp_ready *ready;
    /* metrics */
    struct lp_counter *c_items[5]; /* created, conflict (409), retried, dead letter, ok */
    struct lp_counter *c_healed;
    char *kept_field;       /* where a conflicting value goes (aggregator.content.kept_field) */
    int labels_auto;        /* labels_mapping: auto */
    int scalars_as_keyword; /* dynamic_scalars: keyword */
    int flat_known;         /* detect_flat_type asked (budget_mu) */
    const char *flat_type;  /* what the cluster has (NULL: objects); budget_mu */
    /* field_budget: new (unmapped) field paths per (index, source), as
     * 128-bit hashes; the count per (index, source) stored + 1. Workers'
     * (es_submit), under budget_mu. */
    size_t field_budget;
    pthread_mutex_t budget_mu;
    struct lp_idmap budget_paths, budget_counts;
    struct lp_counter *c_budget_kept;
    struct lp_counter *c_requests, *c_request_errors, *c_retries, *c_bytes;
    struct lp_gauge *g_queued, *g_up;
    struct lp_histogram *h_latency;
    struct lp_metrics *metrics;

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    struct list in; /* from workers, under mu */
    /* lp_es_stop (the aggregator's thread) writes stop_deadline, then
     * stop (release); the output's thread reads stop (acquire) and only
     * then the deadline */
    atomic_int stop;
    int64_t stop_deadline;
    atomic_size_t queued;
    atomic_size_t freed_since_trim; /* document bytes freed since the last malloc_trim */
    atomic_size_t buffer_bytes;     /* request and response buffers (account_buffers) */

    /* sender thread only */
    CURLM *multi;
    struct request *reqs;
    size_t inflight;
    struct list ready_docs;
    struct list retry; /* per-item retries, not_before set */
    int64_t retry_min;
    int64_t hold_until; /* output-wide backoff after a request failure */
    uint32_t fail_streak;
    int halted;
    int template_done;
    int64_t oldest_ready; /* when the first doc of ready_docs arrived */
    struct lp_codec_ctx codec;
    struct lp_bulk bulk;
    struct lp_bulk_item *items;
    size_t items_cap;
    uint64_t rng;
};

enum { IT_CREATED, IT_CONFLICT, IT_RETRY, IT_DEAD, IT_OK };

static enum index_mode index_mode_of(const char *tmpl)
{
    static const char *const per_record[] = {"message", "@timestamp",    "log.offset",
                                             "event",   "logpipe.flags", "logpipe.lines"};
    enum index_mode m = IDX_NONE;
    for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (!e)
            break;
        m = IDX_BATCH;
        size_t n = (size_t)(e - p - 1);
        for (size_t i = 0; i < sizeof(per_record) / sizeof(per_record[0]); i++) {
            size_t k = strlen(per_record[i]);
            if (n >= k && strncmp(p + 1, per_record[i], k) == 0 && (n == k || p[1 + k] == '.'))
                return IDX_RECORD;
        }
    }
    return m;
}

/* a sep b, newly allocated */
static char *join3(const char *a, const char *sep, const char *b)
{
    size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
    char *s = lp_xmalloc(n);
    snprintf(s, n, "%s%s%s", a, sep, b);
    return s;
}

struct lp_es *lp_es_new(const struct lp_config_output *cfg, const char *topic, struct lp_dlq *dlq,
                        struct lp_metrics *metrics, struct lp_ready *ready, char *err,
                        size_t errlen)
{
    (void)err;
    (void)errlen;
    struct lp_es *es = lp_xcalloc(1, sizeof(*es));
    es->name = lp_xstrdup(cfg->name);
    es->base = (struct lp_output){&lp_output_elasticsearch, cfg, es->name};
    es->index_mode = index_mode_of(cfg->index);
    lp_es_conn_init(&es->conn, &(struct lp_es_conn_cfg){cfg->url, cfg->username, cfg->password,
                                                        cfg->api_key, cfg->ca_file, cfg->tls_verify,
                                                        cfg->request_timeout_ms});
    es->url_bulk = lp_es_conn_url(&es->conn, "/_bulk?" LP_BULK_FILTER_PATH);
    char *tpath = join3("/_index_template/", cfg->template_name, "");
    es->url_template = lp_es_conn_url(&es->conn, tpath);
    free(tpath);
    es->index = lp_xstrdup(cfg->index);
    es->template_name = lp_xstrdup(cfg->template_name);
    es->data_stream = cfg->data_stream;
    es->gzip = strcmp(cfg->compression, "gzip") == 0;
    es->install_template = cfg->install_template;
    es->max_inflight = (size_t)cfg->max_inflight_requests;
    es->bulk_max_bytes = es->cur_max_bytes = (size_t)cfg->bulk_max_bytes;
    es->bulk_max_actions = es->cur_max_actions = (size_t)cfg->bulk_max_actions;
    es->flush_ns = cfg->flush_interval_ms * LP_NS_PER_MS;
    es->retry_initial_ns = cfg->retry_initial_ms * LP_NS_PER_MS;
    es->retry_max_ns = cfg->retry_max_ms * LP_NS_PER_MS;
    es->topic = topic;
    es->dlq = dlq;
    es->ready = ready;
    es->metrics = metrics;
    char l[256];
    static const char *const item_names[] = {"created", "conflict", "retried", "dead_letter", "ok"};
    for (int i = 0; i < 5; i++) {
        snprintf(l, sizeof(l), "output=\"%s\",result=\"%s\"", es->name, item_names[i]);
        es->c_items[i] = lp_metrics_counter(
            metrics, "logpipe_aggregator_bulk_items_total",
            "Bulk items by outcome: created, conflict (409: already indexed), retried, "
            "dead_letter, ok.",
            l);
    }
    snprintf(l, sizeof(l), "output=\"%s\"", es->name);
    es->c_requests = lp_metrics_counter(metrics, "logpipe_aggregator_bulk_requests_total",
                                        "Bulk requests sent.", l);
    es->c_request_errors =
        lp_metrics_counter(metrics, "logpipe_aggregator_bulk_request_errors_total",
                           "Bulk requests that failed as a whole (retried).", l);
    es->c_retries = lp_metrics_counter(metrics, "logpipe_aggregator_output_retries_total",
                                       "Documents sent again after a failure.", l);
    es->c_bytes = lp_metrics_counter(metrics, "logpipe_aggregator_bulk_bytes_total",
                                     "Uncompressed bulk body bytes sent.", l);
    es->g_queued = lp_metrics_gauge(metrics, "logpipe_aggregator_output_queued",
                                    "Documents queued or in flight in an output.", l);
    es->g_up = lp_metrics_gauge(metrics, "logpipe_aggregator_output_up",
                                "1 when the output's last request succeeded.", l);
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    es->c_healed = lp_metrics_counter(
        metrics, "logpipe_aggregator_mapping_healed_total",
        "Documents the cluster refused for a mapping conflict and accepted after the "
        "offending field moved to the kept field as a string.",
        l);
    es->kept_field = lp_xstrdup(LP_ECS_KEPT_DEFAULT);
    es->labels_auto = !cfg->labels_mapping || strcmp(cfg->labels_mapping, "auto") == 0;
    es->scalars_as_keyword = !cfg->dynamic_scalars || strcmp(cfg->dynamic_scalars, "keyword") == 0;
    es->field_budget = (size_t)cfg->field_budget;
    pthread_mutex_init(&es->budget_mu, NULL);
    es->c_budget_kept = lp_metrics_counter(
        metrics, "logpipe_aggregator_field_budget_kept_total",
        "Fields kept (aggregator.content.kept_field) instead of mapped because their source "
        "had added field_budget new fields to the index.",
        l);
    es->h_latency = lp_metrics_histogram(metrics, "logpipe_aggregator_bulk_latency_seconds",
                                         "Bulk request latency.", l, bounds,
                                         sizeof(bounds) / sizeof(bounds[0]));
    pthread_mutex_init(&es->mu, NULL);
    atomic_init(&es->queued, 0);
    es->reqs = lp_xcalloc(es->max_inflight, sizeof(*es->reqs));
    for (size_t i = 0; i < es->max_inflight; i++) {
        es->reqs[i].es = es;
        lp_buf_init(&es->reqs[i].body, 0);
        lp_buf_init(&es->reqs[i].resp, 64u << 20);
    }
    lp_bulk_init(&es->bulk, es->bulk_max_bytes);
    es->rng = (uint64_t)lp_time_mono_ns() | 1;
    return es;
}

struct lp_es_doc *lp_es_doc_new(struct lp_msg *m, int32_t partition, int64_t kafka_offset,
                                const char *index, const char *id, const char *doc, size_t len)
{
    size_t il = strlen(index);
    struct lp_es_doc *d = lp_xmalloc(sizeof(*d) + il + 1 + len + 1);
    memset(d, 0, sizeof(*d));
    d->m = m;
    d->partition = partition;
    d->kafka_offset = kafka_offset;
    snprintf(d->id, sizeof(d->id), "%s", id);
    memcpy(d->data, doc, len);
    d->data[len] = '\0';
    d->len = len;
    d->index = d->data + len + 1;
    memcpy(d->index, index, il + 1);
    lp_msg_hold(m, 1);
    d->acct = sizeof(*d) + il + 1 + len + 1 + 32; /* + malloc's own */
    lp_part_held(m->part, d->acct, 1);
    return d;
}

void lp_es_doc_link(struct lp_es_doc **head, struct lp_es_doc **tail, struct lp_es_doc *d)
{
    d->next = NULL;
    if (*tail)
        (*tail)->next = d;
    else
        *head = d;
    *tail = d;
}

void lp_es_submit(struct lp_es *es, struct lp_es_doc *head, struct lp_es_doc *tail, size_t n)
{
    size_t bytes = 0;
    for (struct lp_es_doc *d = head; d; d = d->next)
        bytes += d->len;
    if (!head)
        return;
    pthread_mutex_lock(&es->mu);
    if (es->in.tail)
        es->in.tail->next = head;
    else
        es->in.head = head;
    es->in.tail = tail;
    es->in.n += n;
    es->in.bytes += bytes;
    pthread_mutex_unlock(&es->mu);
    atomic_fetch_add(&es->queued, n);
}

size_t lp_es_queued(struct lp_es *es)
{
    return atomic_load(&es->queued);
}

/* Documents are many small blocks allocated by the workers and freed here:
 * glibc keeps freed heap memory in its arenas, so after an outage drains the
 * process would keep its peak RSS while new decode buffers come on top.
 * Every TRIM_BYTES freed, the free pages go back to the system. */
#define TRIM_BYTES (32u << 20)

static void doc_final(struct lp_es *es, struct lp_es_doc *d)
{
    size_t acct = d->acct;
    lp_part_held(d->m->part, acct, 0); /* before the release: after it m may be gone */
    lp_msg_release(d->m);
    free(d);
    atomic_fetch_sub(&es->queued, 1);
    size_t freed = atomic_fetch_add_explicit(&es->freed_since_trim, acct, memory_order_relaxed);
    if (freed < TRIM_BYTES && freed + acct >= TRIM_BYTES) {
        atomic_store_explicit(&es->freed_since_trim, 0, memory_order_relaxed);
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
}

static uint64_t rnd(struct lp_es *es)
{
    es->rng ^= es->rng << 13;
    es->rng ^= es->rng >> 7;
    es->rng ^= es->rng << 17;
    return es->rng;
}

/* Capped exponential backoff with full jitter in [d/2, d). */
static int64_t backoff(struct lp_es *es, uint32_t attempt)
{
    int64_t d = es->retry_initial_ns;
    for (uint32_t i = 1; i < attempt && d < es->retry_max_ns; i++)
        d *= 2;
    if (d > es->retry_max_ns)
        d = es->retry_max_ns;
    int64_t half = d / 2 > 0 ? d / 2 : 1;
    return half + (int64_t)(rnd(es) % (uint64_t)half);
}

/* ---- the index template ---- */

/* ECS mappings for what logpipe writes; other strings become keywords. */
static const char template_json[] =
    "{\"priority\":200,"
    "\"_meta\":{\"description\":\"logpipe: ECS mappings for container logs\","
    "\"managed_by\":\"logpipe-aggregator\"},"
    "\"template\":{\"mappings\":{"
    "\"dynamic_templates\":[{\"strings_as_keyword\":{\"match_mapping_type\":\"string\","
    "\"mapping\":{\"type\":\"keyword\",\"ignore_above\":1024}}}],"
    "\"properties\":{}"
    "}}}";

const char *lp_es_flat_type(const char *root_json, size_t len)
{
    json_t *r = json_loadb(root_json, len, 0, NULL);
    json_t *v = json_object_get(r, "version");
    const char *dist = json_string_value(json_object_get(v, "distribution"));
    const char *num = json_string_value(json_object_get(v, "number"));
    const char *flavor = json_string_value(json_object_get(v, "build_flavor"));
    const char *t = NULL;
    int major = 0, minor = 0;
    if (num && sscanf(num, "%d.%d", &major, &minor) == 2) {
        if (dist && strcmp(dist, "opensearch") == 0)
            t = major > 2 || (major == 2 && minor >= 7) ? "flat_object" : NULL;
        else if (!dist && !(flavor && strcmp(flavor, "oss") == 0)) /* OSS builds lack it */
            t = major > 7 || (major == 7 && minor >= 3) ? "flattened" : NULL;
    }
    json_decref(r);
    return t;
}

char *lp_es_template_body(const char *index, int data_stream, const char *kept,
                          const char *flat_type, int scalars_as_keyword)
{
    char prefix[256];
    size_t n = strcspn(index, "{%");
    if (n >= sizeof(prefix) - 2)
        n = sizeof(prefix) - 2;
    memcpy(prefix, index, n);
    prefix[n] = '*';
    prefix[n + 1] = '\0';
    json_t *t = json_loads(template_json, 0, NULL);
    if (!t)
        return NULL;
    json_object_set_new(t, "index_patterns", json_pack("[s]", prefix));
    /* the mapped fields come from the one table of fields (core/lp_ecs.c) */
    json_object_set_new(json_object_get(json_object_get(t, "template"), "mappings"), "properties",
                        lp_ecs_template_properties(kept, flat_type));
    if (scalars_as_keyword) {
        /* every unmapped scalar one type in every index: numbers and
         * booleans as keywords too (their JSON text), no date guessing */
        json_t *m = json_object_get(json_object_get(t, "template"), "mappings");
        json_t *dt = json_object_get(m, "dynamic_templates");
        static const char *const types[] = {"long", "double", "boolean"};
        for (size_t i = 0; i < 3; i++) {
            char name[32];
            snprintf(name, sizeof(name), "%ss_as_keyword", types[i]);
            json_array_append_new(dt, json_pack("{s:{s:s,s:{s:s,s:i}}}", name, "match_mapping_type",
                                                types[i], "mapping", "type", "keyword",
                                                "ignore_above", 1024));
        }
        json_object_set_new(m, "date_detection", json_false());
    }
    if (data_stream)
        json_object_set_new(t, "data_stream", json_object());
    char *s = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    return s;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct lp_buf *b = ud;
    return lp_buf_append(b, p, size * n) ? 0 : size * n;
}

/* One blocking request of the set-up (before any document): method NULL is
 * GET; body, when given, is JSON. The answer in resp, its status in
 * *status (0: none). */
static CURLcode blocking_request(struct lp_es *es, const char *method, const char *url,
                                 const char *body, struct lp_buf *resp, long *status)
{
    CURL *e = curl_easy_init();
    if (!e)
        abort(); /* only fails without memory (lp_alloc.h) */
    struct curl_slist *h = body ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
    h = lp_es_conn_headers(&es->conn, h);
    lp_es_conn_setup(&es->conn, e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (method)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    CURLcode cc = curl_easy_perform(e);
    *status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return cc;
}

/* With labels_mapping auto: asks the cluster (GET /) which one-field type
 * it has for labels. 1 known (es->flat_type set or NULL), 0 retry. */
static int detect_flat_type(struct lp_es *es)
{
    if (!es->labels_auto || es->flat_known)
        return 1;
    struct lp_buf resp;
    lp_buf_init(&resp, 1u << 20);
    char *url = lp_es_conn_url(&es->conn, "/");
    long status = 0;
    CURLcode cc = blocking_request(es, NULL, url, NULL, &resp, &status);
    free(url);
    int done = 1;
    if (cc != CURLE_OK || status >= 500 || status == 0) {
        lp_log_ratelimited(LP_LOG_WARN, "cannot ask the cluster for its version; retrying",
                           "output=%s status=%ld error=\"%s\"", es->name, status,
                           cc != CURLE_OK ? curl_easy_strerror(cc) : "");
        done = 0;
    } else {
        /* under budget_mu: the workers' field budget reads it (apply_budget) */
        pthread_mutex_lock(&es->budget_mu);
        es->flat_type = status == 200 && resp.len ? lp_es_flat_type(resp.data, resp.len) : NULL;
        es->flat_known = 1;
        pthread_mutex_unlock(&es->budget_mu);
        lp_log(LP_LOG_INFO, "labels mapping chosen", "output=%s mapping=%s", es->name,
               es->flat_type ? es->flat_type : "object (the cluster has no one-field type)");
    }
    lp_buf_release(&resp);
    return done;
}

/* PUT the template (blocking; before any document is sent). 1 done, 0 retry. */
static int install_template(struct lp_es *es)
{
    if (!detect_flat_type(es))
        return 0;
    char *body = lp_es_template_body(es->index, es->data_stream, es->kept_field, es->flat_type,
                                     es->scalars_as_keyword);
    struct lp_buf resp;
    lp_buf_init(&resp, 1u << 20);
    long status = 0;
    CURLcode cc = blocking_request(es, "PUT", es->url_template, body, &resp, &status);
    int done = 0;
    if (cc != CURLE_OK) {
        lp_log_ratelimited(LP_LOG_WARN, "cannot install the index template; retrying",
                           "output=%s error=\"%s\"", es->name, curl_easy_strerror(cc));
    } else if (status >= 200 && status < 300) {
        lp_log(LP_LOG_INFO, "index template installed", "output=%s template=%s", es->name,
               es->template_name);
        done = 1;
    } else if (status == 401 || status == 403) {
        lp_log_ratelimited(LP_LOG_ERROR,
                           "not allowed to install the index template: check the credentials "
                           "(or set install_template: false); documents wait",
                           "output=%s status=%ld", es->name, status);
    } else if (status >= 400 && status < 500) {
        lp_log(LP_LOG_ERROR,
               "the cluster refused the index template; continuing without it (Kibana may "
               "see text fields instead of keywords)",
               "output=%s status=%ld response=\"%.300s\"", es->name, status, resp.data);
        done = 1;
    } else {
        lp_log_ratelimited(LP_LOG_WARN, "cannot install the index template; retrying",
                           "output=%s status=%ld", es->name, status);
    }
    lp_buf_release(&resp);
    free(body);
    return done;
}

/* ---- requests ---- */

static struct request *free_request(struct lp_es *es)
{
    for (size_t i = 0; i < es->max_inflight; i++)
        if (!es->reqs[i].in_use)
            return &es->reqs[i];
    return NULL;
}

/* Builds and starts one request from the head of ready_docs. */
/* Publishes what the bulk bodies and responses hold (their capacity: they
 * are reused), which counts in the aggregator's memory budget. Sender
 * thread. */
static void account_buffers(struct lp_es *es)
{
    size_t n = es->bulk.body.cap;
    for (size_t i = 0; i < es->max_inflight; i++)
        n += es->reqs[i].body.cap + es->reqs[i].resp.cap;
    atomic_store_explicit(&es->buffer_bytes, n, memory_order_relaxed);
}

size_t lp_es_buffer_bytes(struct lp_es *es)
{
    return atomic_load_explicit(&es->buffer_bytes, memory_order_relaxed);
}

static void send_request(struct lp_es *es, struct request *r, int64_t now)
{
    lp_bulk_reset(&es->bulk);
    size_t cap = es->cur_max_bytes;
    size_t n = 0;
    r->docs = lp_xreallocarray(r->docs, es->bulk_max_actions, sizeof(*r->docs));
    while (es->ready_docs.head && n < es->cur_max_actions) {
        struct lp_es_doc *d = es->ready_docs.head;
        if (n > 0 && es->bulk.body.len + d->len + strlen(d->index) + 80 > cap)
            break;
        int rc = lp_bulk_add(&es->bulk, d->index, d->id, d->data, d->len);
        if (rc == LP_ETOOBIG && n > 0)
            break;
        list_pop(&es->ready_docs);
        if (rc) {
            char why[160];
            snprintf(why, sizeof(why), "cannot build the bulk action: %s", lp_strerror(rc));
            struct lp_dlq_entry e = {"output",        why,     es->name, es->topic, d->partition,
                                     d->kafka_offset, d->data, d->len,   NULL,      0};
            lp_dlq_write(es->dlq, &e, &es->stop);
            lp_counter_inc(es->c_items[IT_DEAD]);
            doc_final(es, d);
            continue;
        }
        r->docs[n++] = d;
    }
    if (n == 0)
        return;
    es->oldest_ready = es->ready_docs.head ? now : 0;
    r->n = n;
    r->raw_bytes = es->bulk.body.len;
    lp_buf_reset(&r->body);
    lp_buf_reset(&r->resp);
    if (r->headers)
        curl_slist_free_all(r->headers);
    r->headers = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    r->headers = lp_es_conn_headers(&es->conn, r->headers);
    const char *body = es->bulk.body.data;
    size_t blen = es->bulk.body.len;
    if (es->gzip && lp_codec_compress(&es->codec, LP_CODEC_GZIP, 1, body, blen, &r->body) == 0) {
        r->headers = curl_slist_append(r->headers, "Content-Encoding: gzip");
        body = r->body.data;
        blen = r->body.len;
    } else {
        /* uncompressed: the built body itself goes out, and the request's
         * previous buffer builds the next one (no copy) */
        struct lp_buf *b = &es->bulk.body;
        char *data = r->body.data;
        size_t bcap = r->body.cap;
        r->body.data = b->data;
        r->body.len = b->len;
        r->body.cap = b->cap;
        b->data = data;
        b->cap = bcap;
        lp_buf_reset(b);
        body = r->body.data;
    }
    if (!r->easy)
        r->easy = curl_easy_init();
    else
        curl_easy_reset(r->easy);
    CURL *e = r->easy;
    lp_es_conn_setup(&es->conn, e);
    curl_easy_setopt(e, CURLOPT_URL, es->url_bulk);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->resp);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    r->in_use = 1;
    r->started = now;
    es->inflight++;
    lp_counter_inc(es->c_requests);
    lp_counter_add(es->c_bytes, r->raw_bytes);
    curl_multi_add_handle(es->multi, e);
    account_buffers(es);
}

static void retry_doc(struct lp_es *es, struct lp_es_doc *d, int64_t now)
{
    d->attempts++;
    d->not_before = now + backoff(es, d->attempts);
    if (!es->retry.head || d->not_before < es->retry_min)
        es->retry_min = d->not_before;
    list_push(&es->retry, d);
    lp_counter_inc(es->c_retries);
    lp_counter_inc(es->c_items[IT_RETRY]);
}

void lp_es_set_kept_field(struct lp_es *es, const char *kept_field)
{
    free(es->kept_field);
    es->kept_field = lp_xstrdup(kept_field);
}

/* The field a mapping error names: "failed to parse field [x]", "object
 * mapping for [x] tried to parse ...", "mapper [x] cannot be changed ...",
 * "Can't merge a non object mapping [x] ...". 0 when none is named. */
int lp_es_conflict_field(const char *reason, char *field, size_t len)
{
    static const char *const marks[] = {"failed to parse field [", "object mapping for [",
                                        "mapper [", "non object mapping [", "field ["};
    if (!strstr(reason, "mapper_parsing_exception") &&
        !strstr(reason, "illegal_argument_exception") &&
        !strstr(reason, "document_parsing_exception"))
        return 0;
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        const char *s = strstr(reason, marks[i]);
        if (!s)
            continue;
        s += strlen(marks[i]);
        const char *e = strchr(s, ']');
        if (!e || e == s || (size_t)(e - s) >= len)
            continue;
        memcpy(field, s, (size_t)(e - s));
        field[e - s] = '\0';
        return 1;
    }
    return 0;
}

/* A mapping conflict heals by moving the value the cluster refused to the
 * kept list as a string, so the line is indexed rather than dead-lettered.
 * The cluster names one field per refusal, so a document with several
 * conflicts takes several rounds: up to HEAL_NAMED rounds move the named
 * field; then (or at once when the reason names no field the document has:
 * a total-fields or depth limit) one round moves every top-level field the
 * template does not map. A refusal after that dead-letters the document as
 * it was first sent. Returns the new document (d is consumed), or NULL when
 * nothing could be moved (d untouched). */
#define HEAL_NAMED 4

static struct lp_es_doc *heal_doc(struct lp_es *es, struct lp_es_doc *d, const char *reason,
                                  char *field, size_t flen)
{
    if (d->healed > HEAL_NAMED)
        return NULL;
    int named = lp_es_conflict_field(reason, field, flen);
    if (!named && !strstr(reason, "Limit of"))
        return NULL;
    if (d->healed == HEAL_NAMED)
        named = 0; /* the last round: everything the template does not map */
    json_t *doc = json_loadb(d->data, d->len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    size_t moved = 0;
    json_t *v = named && !lp_ecs_owned(field) ? lp_ecs_take(doc, field) : NULL;
    if (v) {
        lp_ecs_keep(doc, es->kept_field, field, v, "mapping");
        json_decref(v);
        moved = 1;
    } else {
        const char *k;
        void *tmp;
        json_t *x;
        json_object_foreach_safe(doc, tmp, k, x)
        {
            if (lp_ecs_lookup(k))
                continue; /* logpipe's own and template-mapped fields */
            lp_ecs_keep(doc, es->kept_field, k, x, "mapping");
            json_object_del(doc, k);
            moved++;
        }
        snprintf(field, flen, "all_content_fields");
    }
    if (!moved) {
        json_decref(doc);
        return NULL;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return NULL;
    size_t len = strlen(text), il = strlen(d->index);
    struct lp_es_doc *n =
        lp_xmalloc(sizeof(*n) + len + 1 + il + 1 + (d->orig ? d->orig_len : d->len) + 1);
    *n = *d;
    n->next = NULL;
    n->healed = d->healed + 1;
    memcpy(n->data, text, len + 1);
    n->len = len;
    n->index = n->data + len + 1;
    memcpy(n->index, d->index, il + 1);
    /* the document as first sent, kept for the dead letter */
    const char *first = d->orig ? d->orig : d->data;
    size_t first_len = d->orig ? d->orig_len : d->len;
    char *orig = n->index + il + 1;
    memcpy(orig, first, first_len);
    orig[first_len] = '\0';
    n->orig = orig;
    n->orig_len = first_len;
    free(text);
    n->acct = sizeof(*n) + len + 1 + il + 1 + n->orig_len + 1 + 32;
    lp_part_held(d->m->part, n->acct, 1);
    lp_part_held(d->m->part, d->acct, 0);
    free(d); /* its hold passed to n */
    return n;
}

static void dead_doc(struct lp_es *es, struct lp_es_doc *d, const char *why)
{
    /* a healed document goes there as it was first sent: the record, not our edit */
    struct lp_dlq_entry e = {"output",
                             why,
                             es->name,
                             es->topic,
                             d->partition,
                             d->kafka_offset,
                             d->orig ? d->orig : d->data,
                             d->orig ? d->orig_len : d->len,
                             NULL,
                             0};
    if (lp_dlq_write(es->dlq, &e, &es->stop) == 0) {
        lp_counter_inc(es->c_items[IT_DEAD]);
        doc_final(es, d);
    } else {
        lp_part_held(d->m->part, d->acct, 0); /* the memory goes, the hold stays */
        free(d); /* stopping with the dead letter unwritable: the hold stays */
        atomic_fetch_sub(&es->queued, 1);
    }
}

/* The whole request goes back to the front of the queue, after a pause. */
static void request_again(struct lp_es *es, struct request *r, int64_t now, int64_t pause)
{
    struct list l = {0};
    for (size_t i = 0; i < r->n; i++)
        list_push(&l, r->docs[i]);
    list_prepend(&es->ready_docs, &l);
    if (!es->oldest_ready)
        es->oldest_ready = now;
    es->hold_until = now + pause;
    lp_counter_add(es->c_retries, r->n);
}

static void set_up(struct lp_es *es, int up)
{
    lp_gauge_set(es->g_up, up);
    if (es->ready)
        lp_ready_set(es->ready, up);
}

/* A request the cluster answered item by item: the output is up again, the
 * caps cut after a 413 grow back. */
static void request_succeeded(struct lp_es *es)
{
    es->fail_streak = 0;
    if (es->halted)
        lp_log(LP_LOG_INFO, "output accepted requests again", "output=%s", es->name);
    es->halted = 0;
    set_up(es, 1);
    if (es->cur_max_bytes < es->bulk_max_bytes) {
        es->cur_max_bytes *= 2;
        if (es->cur_max_bytes > es->bulk_max_bytes)
            es->cur_max_bytes = es->bulk_max_bytes;
    }
    if (es->cur_max_actions < es->bulk_max_actions) {
        es->cur_max_actions *= 2;
        if (es->cur_max_actions > es->bulk_max_actions)
            es->cur_max_actions = es->bulk_max_actions;
    }
}

/* One item's answer: final (created, a replay's 409), again later (429,
 * 5xx), again at once with a field moved (a mapping conflict), or the dead
 * letter. */
static void finish_item(struct lp_es *es, struct lp_es_doc *d, const struct lp_bulk_item *it,
                        int64_t now)
{
    char field[256];
    struct lp_es_doc *h;
    if (it->verdict == LP_ITEM_OK) {
        lp_counter_inc(es->c_items[it->status == 201   ? IT_CREATED
                                   : it->status == 409 ? IT_CONFLICT
                                                       : IT_OK]);
        if (d->healed)
            lp_counter_inc(es->c_healed);
        doc_final(es, d);
    } else if (it->verdict == LP_ITEM_RETRY) {
        lp_log_ratelimited(LP_LOG_WARN, "bulk item rejected for now; retrying",
                           "output=%s status=%d reason=\"%s\"", es->name, it->status, it->reason);
        retry_doc(es, d, now);
    } else if (it->status == 400 && (h = heal_doc(es, d, it->reason, field, sizeof(field)))) {
        lp_ecs_count_field(es->metrics, "logpipe_aggregator_mapping_conflicts_total",
                           "Documents the cluster refused for a mapping conflict, by the "
                           "field it refused (moved to the kept field and sent again).",
                           field);
        lp_log_ratelimited(LP_LOG_INFO,
                           "mapping conflict; the field moves to the kept field and the "
                           "document is sent again",
                           "output=%s field=\"%s\" kept=%s", es->name, field, es->kept_field);
        h->not_before = now;
        if (!es->retry.head || h->not_before < es->retry_min)
            es->retry_min = h->not_before;
        list_push(&es->retry, h);
    } else {
        char w[300];
        snprintf(w, sizeof(w), "HTTP %d: %s", it->status, it->reason);
        lp_log_ratelimited(LP_LOG_WARN, "bulk item refused; dead-lettered",
                           "output=%s status=%d reason=\"%s\"", es->name, it->status, it->reason);
        dead_doc(es, d, w);
    }
}

/* A request that failed as a whole and is sent again after a backoff. */
static void request_failed(struct lp_es *es, struct request *r, int64_t now)
{
    es->fail_streak++;
    lp_counter_inc(es->c_request_errors);
    set_up(es, 0);
    request_again(es, r, now, backoff(es, es->fail_streak));
}

static void finish_request(struct lp_es *es, struct request *r, CURLcode cc, int64_t now)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(es->multi, r->easy);
    r->in_use = 0;
    es->inflight--;
    lp_histogram_observe(es->h_latency, (double)(now - r->started) / 1e9);
    if (cc != CURLE_OK) {
        lp_log_ratelimited(LP_LOG_WARN, "bulk request failed; retrying",
                           "output=%s error=\"%s\" docs=%zu", es->name, curl_easy_strerror(cc),
                           r->n);
        request_failed(es, r, now);
        return;
    }
    if (es->items_cap < r->n) {
        es->items = lp_xreallocarray(es->items, r->n, sizeof(*es->items));
        es->items_cap = r->n;
    }
    char why[300];
    enum lp_bulk_verdict v =
        lp_bulk_classify(status, r->resp.data, r->resp.len, r->n, es->items, why, sizeof(why));
    switch (v) {
    case LP_BULK_ITEMS:
        request_succeeded(es);
        for (size_t i = 0; i < r->n; i++)
            finish_item(es, r->docs[i], &es->items[i], now);
        break;
    case LP_BULK_SPLIT:
        if (r->n == 1) {
            dead_doc(es, r->docs[0],
                     "HTTP 413: the document is larger than the cluster accepts "
                     "(http.max_content_length)");
        } else {
            es->cur_max_bytes = r->raw_bytes / 2 ? r->raw_bytes / 2 : 1;
            es->cur_max_actions = r->n / 2;
            lp_log(LP_LOG_WARN, "bulk request too large (413); sending smaller requests",
                   "output=%s bytes=%zu docs=%zu next_max_bytes=%zu", es->name, r->raw_bytes, r->n,
                   es->cur_max_bytes);
            request_again(es, r, now, 0);
        }
        break;
    case LP_BULK_HALT:
        es->halted = 1;
        set_up(es, 0);
        lp_counter_inc(es->c_request_errors);
        lp_log(LP_LOG_ERROR,
               "output halted: the cluster refuses our credentials or permissions; fix them "
               "(tried again every retry_max; documents wait, partitions pause)",
               "output=%s status=%ld reason=\"%s\"", es->name, status, why);
        request_again(es, r, now, es->retry_max_ns);
        break;
    case LP_BULK_FAIL:
        lp_counter_inc(es->c_request_errors);
        for (size_t i = 0; i < r->n; i++)
            dead_doc(es, r->docs[i], why);
        break;
    case LP_BULK_RETRY:
    default:
        lp_log_ratelimited(LP_LOG_WARN, "bulk request failed; retrying",
                           "output=%s status=%ld reason=\"%s\"", es->name, status, why);
        request_failed(es, r, now);
        break;
    }
    r->n = 0;
}

static void take_input(struct lp_es *es, int64_t now)
{
    pthread_mutex_lock(&es->mu);
    struct list in = es->in;
    es->in.head = es->in.tail = NULL;
    es->in.n = 0;
    es->in.bytes = 0;
    pthread_mutex_unlock(&es->mu);
    if (!in.head)
        return;
    if (!es->ready_docs.head)
        es->oldest_ready = now;
    if (es->ready_docs.tail)
        es->ready_docs.tail->next = in.head;
    else
        es->ready_docs.head = in.head;
    es->ready_docs.tail = in.tail;
    es->ready_docs.n += in.n;
    es->ready_docs.bytes += in.bytes;
}

static void take_retries(struct lp_es *es, int64_t now)
{
    if (!es->retry.head || now < es->retry_min)
        return;
    struct list keep = {0};
    int64_t min = INT64_MAX;
    struct lp_es_doc *d;
    while ((d = list_pop(&es->retry))) {
        if (d->not_before <= now) {
            if (!es->ready_docs.head)
                es->oldest_ready = now;
            list_push(&es->ready_docs, d);
        } else {
            if (d->not_before < min)
                min = d->not_before;
            list_push(&keep, d);
        }
    }
    es->retry = keep;
    es->retry_min = min;
}

static void *sender(void *arg)
{
    struct lp_es *es = arg;
    es->multi = curl_multi_init();
    int64_t next_template = 0;
    for (;;) {
        int64_t now = lp_time_mono_ns();
        int stopping = atomic_load_explicit(&es->stop, memory_order_acquire);
        if (stopping && now >= es->stop_deadline)
            break;
        if (es->install_template && !es->template_done) {
            if (now >= next_template) {
                es->template_done = install_template(es);
                if (!es->template_done) {
                    set_up(es, 0);
                    next_template = now + 5 * LP_NS_PER_SEC;
                }
            }
            if (!es->template_done) {
                if (stopping)
                    break;
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
            set_up(es, 1);
        }
        take_input(es, now);
        take_retries(es, now);
        if (stopping && es->inflight == 0 && !es->ready_docs.head && !es->retry.head)
            break;
        while (es->inflight < es->max_inflight && es->ready_docs.head && now >= es->hold_until) {
            int full = es->ready_docs.n >= es->cur_max_actions ||
                       es->ready_docs.bytes >= es->cur_max_bytes;
            int due = stopping || now - es->oldest_ready >= es->flush_ns;
            if (!full && !due)
                break; /* wait for more */
            send_request(es, free_request(es), now);
        }
        lp_gauge_set(es->g_queued, (int64_t)atomic_load(&es->queued));
        int timeout_ms = 50;
        int running = 0;
        curl_multi_perform(es->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(es->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct request *r = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            finish_request(es, r, msg->data.result, lp_time_mono_ns());
            account_buffers(es);
        }
        curl_multi_poll(es->multi, NULL, 0, timeout_ms, NULL);
    }
    return NULL;
}

int lp_es_start(struct lp_es *es)
{
    int e = pthread_create(&es->thread, NULL, sender, es);
    if (e)
        return -e;
    es->started = 1;
    return 0;
}

static void free_docs(struct lp_es_doc *d)
{
    while (d) {
        struct lp_es_doc *n = d->next;
        lp_part_held(d->m->part, d->acct, 0); /* the holds stay: not stored */
        free(d);
        d = n;
    }
}

void lp_es_stop(struct lp_es *es, int64_t deadline_ns)
{
    if (!es)
        return;
    es->stop_deadline = deadline_ns;
    atomic_store_explicit(&es->stop, 1, memory_order_release);
    if (es->started)
        pthread_join(es->thread, NULL);
    /* whatever is left keeps its holds: those offsets are not stored */
    for (size_t i = 0; i < es->max_inflight; i++) {
        struct request *r = &es->reqs[i];
        if (r->in_use)
            curl_multi_remove_handle(es->multi, r->easy);
        for (size_t k = 0; r->in_use && k < r->n; k++) {
            lp_part_held(r->docs[k]->m->part, r->docs[k]->acct, 0);
            free(r->docs[k]);
        }
        if (r->easy)
            curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->docs);
        lp_buf_release(&r->body);
        lp_buf_release(&r->resp);
    }
    free_docs(es->in.head);
    free_docs(es->ready_docs.head);
    free_docs(es->retry.head);
    if (es->multi)
        curl_multi_cleanup(es->multi);
    lp_codec_ctx_release(&es->codec);
    lp_bulk_release(&es->bulk);
    pthread_mutex_destroy(&es->mu);
    pthread_mutex_destroy(&es->budget_mu);
    lp_idmap_release(&es->budget_paths);
    lp_idmap_release(&es->budget_counts);
    free(es->items);
    free(es->reqs);
    free(es->name);
    free(es->url_bulk);
    free(es->url_template);
    free(es->index);
    free(es->template_name);
    free(es->kept_field);
    lp_es_conn_release(&es->conn);
    free(es);
}

/* ---- the output interface ---- */

#define ES_CHUNK 512 /* documents a lane hands over at a time */

/* A worker's documents of the message it is processing, not yet handed to
 * the sender (they are counted as held already). Worker thread only. */
struct es_lane {
    struct lp_es_doc *head, *tail;
    size_t n;
    json_t *batch_ev; /* the message's source-level fields, for index names */
};

static struct lp_output *es_create(const struct lp_config_output *cfg,
                                   const struct lp_output_env *env, char *err, size_t errlen)
{
    struct lp_es *es = lp_es_new(cfg, env->topic, env->dlq, env->metrics, env->ready, err, errlen);
    if (es && env->kept_field)
        lp_es_set_kept_field(es, env->kept_field);
    return es ? &es->base : NULL;
}

static int es_start(struct lp_output *o)
{
    return lp_es_start((struct lp_es *)o) ? LP_EAGAIN : 0;
}

static void *es_lane_new(struct lp_output *o)
{
    (void)o;
    return lp_xcalloc(1, sizeof(struct es_lane));
}

static void es_flush(struct lp_output *o, void *lane)
{
    struct es_lane *l = lane;
    if (l->head)
        lp_es_submit((struct lp_es *)o, l->head, l->tail, l->n);
    l->head = l->tail = NULL;
    l->n = 0;
    json_decref(l->batch_ev);
    l->batch_ev = NULL;
}

static void es_lane_free(struct lp_output *o, void *lane)
{
    struct es_lane *l = lane;
    if (!l)
        return;
    free_docs(l->head); /* none between messages; holds stay */
    json_decref(l->batch_ev);
    free(l);
    (void)o;
}

/* The index time: the event's @timestamp when it has a valid one. */
static int64_t event_time_ns(json_t *ev, int64_t fallback)
{
    json_t *ts = json_object_get(ev, "@timestamp");
    int64_t ns;
    if (json_is_string(ts) &&
        lp_time_parse_rfc3339(json_string_value(ts), json_string_length(ts), &ns) == 0)
        return ns;
    return fallback;
}

/* ---- the field budget ---- */

#define BUDGET_MAX_PATHS 200000 /* tracked per output; past it the counts start over */

static XXH128_hash_t hash3(const char *a, const char *b, const char *c)
{
    struct lp_buf k = LP_BUF_INIT;
    lp_buf_puts(&k, a);
    lp_buf_putc(&k, '\x1f');
    lp_buf_puts(&k, b);
    if (c) {
        lp_buf_putc(&k, '\x1f');
        lp_buf_puts(&k, c);
    }
    XXH128_hash_t h = XXH3_128bits(k.data, k.len);
    lp_buf_release(&k);
    return h;
}

/* 1 when path may be mapped for source in index (seen before, or within
 * the budget: then counted). Under budget_mu. */
static int budget_admit(struct lp_es *es, const char *index, const char *source, const char *path)
{
    XXH128_hash_t hp = hash3(index, source, path);
    if (lp_idmap_get(&es->budget_paths, hp.high64, hp.low64))
        return 1;
    XXH128_hash_t hc = hash3(index, source, NULL);
    uintptr_t stored = lp_idmap_get(&es->budget_counts, hc.high64, hc.low64);
    size_t n = stored ? stored - 1 : 0;
    if (n >= es->field_budget)
        return 0;
    if (es->budget_paths.n >= BUDGET_MAX_PATHS) {
        lp_log(LP_LOG_INFO, "field budget: tracked fields at their cap; counts start over",
               "output=%s fields=%zu", es->name, es->budget_paths.n);
        lp_idmap_clear(&es->budget_paths);
        lp_idmap_clear(&es->budget_counts);
        n = 0;
    }
    lp_idmap_put(&es->budget_paths, hp.high64, hp.low64, 1);
    lp_idmap_put(&es->budget_counts, hc.high64, hc.low64, n + 2);
    return 1;
}

struct bwalk {
    struct lp_es *es;
    const char *index, *source;
    char path[512];
    char **over; /* the paths to move to the kept list */
    size_t n_over, cap_over;
};

static void budget_value(struct bwalk *w, json_t *v, size_t plen);

/* The members of obj under w->path[0..plen). */
static void budget_object(struct bwalk *w, json_t *obj, size_t plen)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        size_t kl = strlen(k);
        if (plen + 1 + kl >= sizeof(w->path))
            continue; /* the content rules keep such paths already */
        size_t l = plen;
        if (l)
            w->path[l++] = '.';
        memcpy(w->path + l, k, kl + 1);
        l += kl;
        const struct lp_ecs_field *d = lp_ecs_lookup(w->path);
        if (d) { /* the template maps it: only its unmapped insides count */
            /* keyed maps are one field each when the cluster has a flat
             * type, which auto assumes until the sender has asked */
            int flat = (d->owned & LP_ECS_KEYED) &&
                       (w->es->flat_type || (w->es->labels_auto && !w->es->flat_known));
            if (d->type == LP_ECS_OBJECT && !flat && !(d->owned & LP_ECS_KEYED) &&
                json_is_object(v))
                budget_object(w, v, l);
            continue;
        }
        if (strcmp(w->path, w->es->kept_field) == 0)
            continue; /* mapped as the kept list */
        if (!budget_admit(w->es, w->index, w->source, w->path)) {
            LP_ALLOC_GROW(w->over, w->n_over + 1, w->cap_over, 16);
            w->over[w->n_over++] = lp_xstrdup(w->path);
            continue;
        }
        budget_value(w, v, l);
    }
    w->path[plen] = '\0';
}

static void budget_value(struct bwalk *w, json_t *v, size_t plen)
{
    if (json_is_object(v)) {
        budget_object(w, v, plen);
    } else if (json_is_array(v)) { /* objects in an array map their keys under its path */
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (json_is_object(x))
                budget_object(w, x, plen);
        }
    }
}

/* The event with the fields its source may not add to index moved to the
 * kept list: a new text (heap) when something moved, else NULL. */
static char *apply_budget(struct lp_es *es, json_t *ev, const char *index)
{
    const char *source =
        json_string_value(json_object_get(json_object_get(ev, "kubernetes"), "namespace"));
    if (!source)
        source = json_string_value(json_object_get(json_object_get(ev, "container"), "name"));
    struct bwalk w = {.es = es, .index = index, .source = source ? source : "-"};
    pthread_mutex_lock(&es->budget_mu);
    budget_object(&w, ev, 0);
    pthread_mutex_unlock(&es->budget_mu);
    if (!w.n_over) {
        free(w.over);
        return NULL;
    }
    json_t *copy = json_deep_copy(ev); /* the event is shared with the route's other outputs */
    if (!copy)
        abort();
    for (size_t i = 0; i < w.n_over; i++) {
        json_t *v = lp_ecs_take(copy, w.over[i]);
        if (v) {
            lp_ecs_keep(copy, es->kept_field, w.over[i], v, "field_budget");
            json_decref(v);
            lp_counter_inc(es->c_budget_kept);
        }
        free(w.over[i]);
    }
    free(w.over);
    char *text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    if (!text)
        abort();
    return text;
}

static int es_submit(struct lp_output *o, void *lane, struct lp_output_doc *d, int replay)
{
    (void)replay; /* never: not LP_OUTPUT_SYNCED */
    struct lp_es *es = (struct lp_es *)o;
    struct es_lane *l = lane;
    json_t *iev = d->ev;
    json_t *parsed = d->ev; /* a parsed event (the fast path's have no content fields) */
    int64_t its = d->ev ? event_time_ns(d->ev, d->ts_ns) : d->ts_ns;
    if (!iev && es->index_mode == IDX_BATCH) {
        if (!l->batch_ev)
            l->batch_ev = json_loadb(d->text, d->len, 0, NULL);
        if (l->batch_ev && d->stream)
            json_object_set_new(l->batch_ev, "stream", json_string(d->stream));
        iev = l->batch_ev;
    } else if (!iev && es->index_mode == IDX_RECORD) {
        iev = d->ev = json_loadb(d->text, d->len, 0, NULL); /* the engine frees it */
    }
    char index[256];
    if (lp_index_name(es->index, iev, its, index, sizeof(index)))
        snprintf(index, sizeof(index), "logpipe-index-name-too-long");
    char *budgeted = parsed && es->field_budget ? apply_budget(es, parsed, index) : NULL;
    struct lp_es_doc *doc =
        lp_es_doc_new(d->m, d->partition, d->kafka_offset, index, d->id,
                      budgeted ? budgeted : d->text, budgeted ? strlen(budgeted) : d->len);
    free(budgeted);
    lp_es_doc_link(&l->head, &l->tail, doc);
    if (++l->n < ES_CHUNK)
        return LP_OUTPUT_OK;
    /* hand over what this message made so far: the worker renders more
     * only within the memory budget */
    lp_es_submit(es, l->head, l->tail, l->n);
    l->head = l->tail = NULL;
    l->n = 0;
    return LP_OUTPUT_HANDED;
}

static size_t es_memory(struct lp_output *o, size_t *reserved)
{
    struct lp_es *es = (struct lp_es *)o;
    /* max_inflight_requests bodies in flight and one being built */
    *reserved = (es->max_inflight + 1) * es->bulk_max_bytes;
    return lp_es_buffer_bytes(es);
}

static void es_close(struct lp_output *o, int64_t deadline_ns)
{
    lp_es_stop((struct lp_es *)o, deadline_ns);
}

const struct lp_output_ops lp_output_elasticsearch = {
    .name = "elasticsearch",
    .create = es_create,
    .start = es_start,
    .lane_new = es_lane_new,
    .lane_free = es_lane_free,
    .submit = es_submit,
    .flush = es_flush,
    .memory = es_memory,
    .close = es_close,
};
