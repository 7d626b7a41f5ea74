/* The Elasticsearch output against a scripted fake cluster on loopback
 * (libmicrohttpd): per-item 201/409/429/400, whole-request 503 and
 * connection refused, 413 splitting, 401 halting with readiness false, gzip
 * bodies, and the commit tracker releasing exactly when items are final. */
#include "lp_deadletter.h"
#include "lp_buf.h"
#include "lp_codec.h"
#include "lp_config.h"
#include "lp_http.h"
#include "lp_metrics.h"
#include "lp_json.h"
#include "lp_test.h"
#include "lp_time.h"
#include "lp_es_conn.h"
#include "out_elasticsearch.h"
#include "lp_tracker.h"

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the fake cluster ---- */

enum mode { M_NORMAL, M_413_OVER_4, M_401, M_503 };

static struct {
    pthread_mutex_t mu;
    enum mode mode;
    int requests;
    int gzip_requests;
    int root_gets;
    int created; /* distinct ids indexed */
    char ids[512][40];
    int n_ids;
    int seen_429[512]; /* by doc number: answered 429 once already */
    int refused[512];  /* by doc number: answered 400 once, refused whatever it holds */
    int healed;        /* documents accepted after a mapping conflict */
    int template_puts;
    char auth[256];        /* Authorization of the last bulk request */
    char filter_path[128]; /* its filter_path query argument */
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct upload {
    struct lp_buf body;
    int gzip;
};

static int known_id(const char *id)
{
    for (int i = 0; i < fake.n_ids; i++)
        if (strcmp(fake.ids[i], id) == 0)
            return 1;
    return 0;
}

static char *answer_bulk(const char *body, size_t len, unsigned *status)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += body[i] == '\n';
    n /= 2;
    if (fake.mode == M_401) {
        *status = 401;
        return strdup("{\"error\":{\"type\":\"security_exception\",\"reason\":\"missing "
                      "authentication credentials\"},\"status\":401}");
    }
    if (fake.mode == M_503) {
        *status = 503;
        return strdup("{\"error\":\"unavailable\"}");
    }
    if (fake.mode == M_413_OVER_4 && n > 4) {
        *status = 413;
        return strdup("");
    }
    json_t *items = json_array();
    const char *p = body;
    int errors = 0;
    for (int k = 0; k < n; k++) {
        const char *nl = strchr(p, '\n');
        json_t *action = json_loadb(p, (size_t)(nl - p), 0, NULL);
        p = nl + 1;
        nl = strchr(p, '\n');
        json_t *doc = json_loadb(p, (size_t)(nl - p), 0, NULL);
        p = nl + 1;
        const char *id =
            json_string_value(json_object_get(json_object_get(action, "create"), "_id"));
        int num = (int)json_integer_value(json_object_get(doc, "n"));
        const char *want = json_string_value(json_object_get(doc, "want"));
        int st;
        json_t *err = NULL;
        if ((want && strcmp(want, "400") == 0) || (num < 512 && fake.refused[num])) {
            /* a mapping error that no move of a field cures */
            fake.refused[num] = 1;
            st = 400;
            err = json_pack("{s:s, s:s}", "type", "mapper_parsing_exception", "reason",
                            "failed to parse field [n] of type [long]");
        } else if (want && strcmp(want, "heal") == 0) {
            /* a conflict on the field "want" itself: cured by moving it */
            st = 400;
            err = json_pack("{s:s, s:s}", "type", "mapper_parsing_exception", "reason",
                            "failed to parse field [want] of type [long] in document");
        } else if (want && strcmp(want, "429") == 0 && num < 512 && !fake.seen_429[num]) {
            fake.seen_429[num] = 1;
            st = 429;
            err = json_pack("{s:s, s:s}", "type", "es_rejected_execution_exception", "reason",
                            "rejected execution");
        } else if (known_id(id)) {
            st = 409;
            err = json_pack("{s:s, s:s}", "type", "version_conflict_engine_exception", "reason",
                            "document already exists");
        } else {
            st = 201;
            snprintf(fake.ids[fake.n_ids++], sizeof(fake.ids[0]), "%s", id);
            fake.created++;
            json_t *kept = lp_json_get_path(doc, "logpipe.kept");
            if (json_array_size(kept) == 1 &&
                !strcmp(json_string_value(json_object_get(json_array_get(kept, 0), "field")),
                        "want") &&
                !strcmp(json_string_value(json_object_get(json_array_get(kept, 0), "value")),
                        "heal") &&
                !json_object_get(doc, "want"))
                fake.healed++;
        }
        errors |= st >= 300;
        json_t *res = json_pack("{s:s, s:i}", "_id", id, "status", st);
        if (err)
            json_object_set_new(res, "error", err);
        json_array_append_new(items, json_pack("{s:o}", "create", res));
        json_decref(action);
        json_decref(doc);
    }
    json_t *resp = json_pack("{s:i, s:b, s:o}", "took", 1, "errors", errors, "items", items);
    char *s = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    *status = 200;
    return s;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **ctx)
{
    (void)cls;
    (void)version;
    struct upload *u = *ctx;
    if (!u) {
        u = calloc(1, sizeof(*u));
        lp_buf_init(&u->body, 0);
        const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
        u->gzip = ce && strcmp(ce, "gzip") == 0;
        *ctx = u;
        return MHD_YES;
    }
    if (*size) {
        lp_buf_append(&u->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&fake.mu);
    unsigned status = 200;
    char *out;
    if (strcmp(method, "PUT") == 0 && strstr(url, "/_index_template/")) {
        fake.template_puts++;
        out = strdup("{\"acknowledged\":true}");
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/") == 0) {
        fake.root_gets++; /* which labels mapping the cluster has */
        out = strdup("{\"version\":{\"distribution\":\"opensearch\",\"number\":\"2.19.0\"}}");
    } else {
        fake.requests++;
        const char *au = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        snprintf(fake.auth, sizeof(fake.auth), "%s", au ? au : "");
        const char *fp = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "filter_path");
        snprintf(fake.filter_path, sizeof(fake.filter_path), "%s", fp ? fp : "");
        struct lp_buf plain;
        lp_buf_init(&plain, 0);
        if (u->gzip) {
            fake.gzip_requests++;
            lp_codec_decompress(NULL, LP_CODEC_GZIP, u->body.data, u->body.len, 64u << 20, &plain);
        } else {
            lp_buf_append(&plain, u->body.data, u->body.len);
        }
        out = answer_bulk(plain.data, plain.len, &status);
        lp_buf_release(&plain);
    }
    pthread_mutex_unlock(&fake.mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct upload *u = *ctx;
    if (u) {
        lp_buf_release(&u->body);
        free(u);
    }
}

static struct MHD_Daemon *fake_start(unsigned *port)
{
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
    if (!d)
        return NULL;
    *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

/* ---- harness ---- */

static const char *tmpdir;

struct rig {
    struct lp_config *cfg;
    struct lp_metrics *metrics;
    struct lp_http *http;
    struct lp_ready *ready;
    struct lp_dlq *dlq;
    struct lp_es *es;
    struct lp_part *part;
};

static void rig_start(struct rig *r, unsigned port, const char *extra)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "aggregator:\n"
             "  dead_letter_dir: %s/dlq\n"
             "  outputs:\n"
             "    - name: es\n"
             "      type: elasticsearch\n"
             "      url: http://127.0.0.1:%u\n"
             "      index: logs-%%Y\n"
             "      flush_interval: 20ms\n"
             "      retry_initial: 10ms\n"
             "      retry_max: 200ms\n"
             "      max_inflight_requests: 2\n"
             "%s",
             tmpdir, port, extra);
    r->cfg = lp_test_config(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->cfg);
    r->metrics = lp_metrics_new();
    char err[512];
    r->http = lp_http_start("127.0.0.1:0", r->metrics, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->http);
    r->ready = lp_http_ready_check_external(r->http, "output:es", 1);
    r->dlq = lp_dlq_new(r->cfg, r->metrics, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->dlq);
    r->es = lp_es_new(&r->cfg->aggregator.outputs[0], "topic", r->dlq, r->metrics, r->ready, err,
                      sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->es);
    CU_ASSERT_EQUAL_FATAL(lp_es_start(r->es), 0);
    r->part = lp_part_new(0);
}

static void rig_stop(struct rig *r)
{
    lp_es_stop(r->es, lp_time_mono_ns());
    lp_part_free(r->part);
    lp_dlq_free(r->dlq);
    lp_http_stop(r->http);
    lp_metrics_free(r->metrics);
    lp_config_free(r->cfg);
}

/* Submits n messages with one document each; doc i carries want[i]. */
static void submit(struct rig *r, int first, int n, const char *const *want)
{
    struct lp_es_doc *h = NULL, *t = NULL;
    for (int i = 0; i < n; i++) {
        struct lp_msg *m = lp_part_push(r->part, first + i, 100, 1);
        char id[40], doc[200];
        snprintf(id, sizeof(id), "id-%d", first + i);
        snprintf(doc, sizeof(doc), "{\"n\":%d%s%s%s}", first + i,
                 want && want[i] ? ",\"want\":\"" : "", want && want[i] ? want[i] : "",
                 want && want[i] ? "\"" : "");
        lp_es_doc_link(&h, &t, lp_es_doc_new(m, 0, first + i, "logs-2026", id, doc, strlen(doc)));
        lp_msg_release(m); /* the worker's own hold */
    }
    lp_es_submit(r->es, h, t, (size_t)n);
}

/* Waits until the partition is idle (every message final). */
static int wait_idle(struct rig *r, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        lp_part_advance(r->part);
        if (lp_part_idle(r->part))
            return 1;
        usleep(10000);
    }
    return 0;
}

static long readyz(struct rig *r)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/readyz?strict=1", lp_http_port(r->http));
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    return st;
}

static void reset_fake(enum mode m)
{
    pthread_mutex_lock(&fake.mu);
    fake.mode = m;
    fake.requests = fake.gzip_requests = fake.created = fake.n_ids = fake.root_gets = 0;
    memset(fake.seen_429, 0, sizeof(fake.seen_429));
    memset(fake.refused, 0, sizeof(fake.refused));
    fake.healed = 0;
    pthread_mutex_unlock(&fake.mu);
}

static unsigned port;
static struct MHD_Daemon *daemon_;

static void test_items_mixed(void)
{
    reset_fake(M_NORMAL);
    struct rig r;
    rig_start(&r, port, "");
    const char *want[] = {NULL, "429", NULL, "400", "heal", "429"};
    submit(&r, 0, 6, want);
    CU_ASSERT_TRUE(wait_idle(&r, 5000));
    CU_ASSERT_EQUAL(r.part->next_store, 6);
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.created, 5); /* every doc but the 400 */
    /* the answer is asked for what the classifier reads, nothing more */
    CU_ASSERT_STRING_EQUAL(fake.filter_path, "errors,items.*.status,items.*.error");
    CU_ASSERT_EQUAL(fake.healed, 1); /* the conflict, sent again with its field kept */
    CU_ASSERT(fake.requests >= 2);   /* the 429s went again, alone */
    CU_ASSERT_EQUAL(fake.gzip_requests, fake.requests);
    CU_ASSERT_EQUAL(fake.template_puts, 1);
    CU_ASSERT_EQUAL(fake.root_gets, 1); /* asked once which labels mapping it has */
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_EQUAL(lp_dlq_count(r.dlq), 1);
    /* a replay of the same ids: 409 = already there, done */
    submit(&r, 0, 3, NULL);
    CU_ASSERT_TRUE(wait_idle(&r, 5000));
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.created, 5);
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_EQUAL(readyz(&r), 200);
    rig_stop(&r);
    /* the dead letter holds the refused document with its reason */
    char path[256];
    snprintf(path, sizeof(path), "%s/dlq", tmpdir);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cat %s/dead-letter-*.ndjson", path);
    FILE *f = popen(cmd, "r");
    char line[4096] = "";
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), f));
    pclose(f);
    json_t *dl = json_loads(line, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(dl, "stage")), "output");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(dl, "output")), "es");
    CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(dl, "reason")),
                                  "HTTP 400: mapper_parsing_exception"));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(dl, "event"), "n")), 3);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(dl, "kafka"), "offset")), 3);
    json_decref(dl);
}

static void test_413_split(void)
{
    reset_fake(M_413_OVER_4);
    struct rig r;
    rig_start(&r, port, "      compression: none\n");
    submit(&r, 100, 20, NULL);
    CU_ASSERT_TRUE(wait_idle(&r, 10000));
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.created, 20);
    CU_ASSERT_EQUAL(fake.gzip_requests, 0);
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_EQUAL(lp_dlq_count(r.dlq), 0);
    rig_stop(&r);
}

static void test_401_halts_then_recovers(void)
{
    reset_fake(M_401);
    struct rig r;
    rig_start(&r, port, "");
    submit(&r, 200, 5, NULL);
    usleep(400 * 1000);
    lp_part_advance(r.part);
    CU_ASSERT_FALSE(lp_part_idle(r.part)); /* nothing final: nothing may be stored */
    CU_ASSERT_EQUAL(r.part->next_store, -1);
    CU_ASSERT_EQUAL(readyz(&r), 503);
    pthread_mutex_lock(&fake.mu);
    fake.mode = M_NORMAL; /* credentials fixed */
    pthread_mutex_unlock(&fake.mu);
    CU_ASSERT_TRUE(wait_idle(&r, 5000));
    CU_ASSERT_EQUAL(readyz(&r), 200);
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_EQUAL(fake.created, 5);
    pthread_mutex_unlock(&fake.mu);
    rig_stop(&r);
}

static void test_503_and_refused(void)
{
    reset_fake(M_503);
    struct rig r;
    rig_start(&r, port, "");
    submit(&r, 300, 4, NULL);
    usleep(300 * 1000);
    lp_part_advance(r.part);
    CU_ASSERT_FALSE(lp_part_idle(r.part));
    CU_ASSERT_EQUAL(readyz(&r), 503);
    reset_fake(M_NORMAL);
    CU_ASSERT_TRUE(wait_idle(&r, 5000));
    rig_stop(&r);

    /* nothing listening: connection refused, retried until stop; holds kept */
    struct rig r2;
    rig_start(&r2, 1, "      install_template: false\n");
    submit(&r2, 400, 2, NULL);
    usleep(300 * 1000);
    lp_part_advance(r2.part);
    CU_ASSERT_EQUAL(r2.part->in_flight, 2);
    CU_ASSERT_EQUAL(lp_es_queued(r2.es), 2);
    rig_stop(&r2);
}

static void test_auth_headers(void)
{
    reset_fake(M_NORMAL);
    struct rig r;
    rig_start(&r, port, "      username: logpipe\n      password: s3cret\n");
    submit(&r, 500, 1, NULL);
    CU_ASSERT_TRUE(wait_idle(&r, 5000));
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_STRING_EQUAL(fake.auth, "Basic bG9ncGlwZTpzM2NyZXQ="); /* logpipe:s3cret */
    pthread_mutex_unlock(&fake.mu);
    rig_stop(&r);
    reset_fake(M_NORMAL);
    rig_start(&r, port, "      api_key: aWQ6a2V5\n");
    submit(&r, 600, 1, NULL);
    CU_ASSERT_TRUE(wait_idle(&r, 5000));
    pthread_mutex_lock(&fake.mu);
    CU_ASSERT_STRING_EQUAL(fake.auth, "ApiKey aWQ6a2V5");
    pthread_mutex_unlock(&fake.mu);
    rig_stop(&r);
}

/* A record dead-lettered again (a replay, also after a restart) is written
 * once: keyed by stage and event id (raw messages: their Kafka position). */
static void test_dead_letter_once(void)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "aggregator:\n  dead_letter_dir: %s/dlq-once\n", tmpdir);
    struct lp_config *cfg = lp_test_config(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    struct lp_metrics *m = lp_metrics_new();
    char err[256];
    const char *ev1 = "{\"message\":\"a\",\"event\":{\"id\":\"0123456789abcdef0123456789abcdef\"}}";
    const char *ev2 = "{\"message\":\"b\",\"event\":{\"id\":\"fedcba9876543210fedcba9876543210\"}}";
    for (int run = 0; run < 2; run++) { /* the second run is a restart */
        struct lp_dlq *d = lp_dlq_new(cfg, m, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        for (int k = 0; k < 2; k++) { /* the same event at two Kafka offsets */
            struct lp_dlq_entry e = {"output", "HTTP 400: conflict", "es", "t", 0, 10 + k,
                                     ev1,      strlen(ev1),          NULL, 0};
            CU_ASSERT_EQUAL(lp_dlq_write(d, &e, NULL), 0);
        }
        struct lp_dlq_entry e2 = {"output", "HTTP 400", "es",        "t",  0,
                                  12,       ev2,        strlen(ev2), NULL, 0};
        CU_ASSERT_EQUAL(lp_dlq_write(d, &e2, NULL), 0);
        struct lp_dlq_entry raw = {"decode", "corrupt", NULL, "t", 1, 7, NULL, 0, "xyz", 3};
        CU_ASSERT_EQUAL(lp_dlq_write(d, &raw, NULL), 0);
        struct lp_dlq_entry raw2 = {"decode", "corrupt", NULL, "t", 1, 8, NULL, 0, "xyz", 3};
        CU_ASSERT_EQUAL(lp_dlq_write(d, &raw2, NULL), 0); /* another message */
        CU_ASSERT_EQUAL(lp_dlq_count(d), run == 0 ? 4 : 0);
        lp_dlq_free(d);
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "cat %s/dlq-once/*.ndjson | wc -l", tmpdir);
    FILE *p = popen(cmd, "r");
    int lines = -1;
    CU_ASSERT_EQUAL(fscanf(p, "%d", &lines), 1);
    pclose(p);
    CU_ASSERT_EQUAL(lines, 4);
    lp_metrics_free(m);
    lp_config_free(cfg);
}

/* the connection rules shared with retention (lp_es_conn.h) */
static void test_conn_rules(void)
{
    struct lp_es_conn c;
    lp_es_conn_init(&c, &(struct lp_es_conn_cfg){"https://es:9200//", "", "pw", "", "", 1, 30000});
    char *u = lp_es_conn_url(&c, "/_bulk");
    CU_ASSERT_STRING_EQUAL(u, "https://es:9200/_bulk");
    free(u);
    CU_ASSERT_PTR_NULL(c.userpwd); /* empty user: unset, even with a password */
    CU_ASSERT_PTR_NULL(c.auth_header);
    CU_ASSERT_PTR_NULL(c.ca_file); /* empty ca_file: the system CAs */
    CU_ASSERT_EQUAL(c.timeout_ms, 30000);
    CU_ASSERT_EQUAL(c.connect_timeout_ms, LP_ES_CONNECT_TIMEOUT_MS);
    lp_es_conn_release(&c);
    lp_es_conn_init(&c,
                    &(struct lp_es_conn_cfg){"http://es", "u", NULL, "k3y", "/ca.pem", 0, 2000});
    CU_ASSERT_STRING_EQUAL(c.userpwd, "u:");
    CU_ASSERT_STRING_EQUAL(c.auth_header, "Authorization: ApiKey k3y");
    CU_ASSERT_STRING_EQUAL(c.ca_file, "/ca.pem");
    CU_ASSERT_EQUAL(c.connect_timeout_ms, 2000); /* never longer than the request */
    struct curl_slist *h = lp_es_conn_headers(&c, NULL);
    CU_ASSERT_STRING_EQUAL(h->data, "Authorization: ApiKey k3y");
    curl_slist_free_all(h);
    /* only http and https: a file: URL is refused by curl itself */
    lp_es_conn_release(&c);
    lp_es_conn_init(&c, &(struct lp_es_conn_cfg){"file:///etc", NULL, NULL, NULL, NULL, 1, 1000});
    CURL *e = curl_easy_init();
    lp_es_conn_setup(&c, e);
    char *fu = lp_es_conn_url(&c, "/passwd");
    curl_easy_setopt(e, CURLOPT_URL, fu);
    CU_ASSERT_EQUAL(curl_easy_perform(e), CURLE_UNSUPPORTED_PROTOCOL);
    curl_easy_cleanup(e);
    free(fu);
    lp_es_conn_release(&c);
}

int main(void)
{
    tmpdir = lp_test_tmpdir("out-es");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    daemon_ = fake_start(&port);
    if (!daemon_)
        return 1;
    static const struct lp_test tests[] = {
        {"items 201/409/429/400", test_items_mixed},
        {"413 splits the request", test_413_split},
        {"401 halts, readiness false, recovers", test_401_halts_then_recovers},
        {"503 and connection refused are retried", test_503_and_refused},
        {"basic auth and API key", test_auth_headers},
        {"a dead letter is written once", test_dead_letter_once},
        {"connection rules shared with retention", test_conn_rules},
        {NULL, NULL},
    };
    int rc = lp_test_run("out_es", tests);
    MHD_stop_daemon(daemon_);
    curl_global_cleanup();
    return rc;
}
