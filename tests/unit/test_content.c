/* What a log line's content may do to its event (core/lp_ecs.h and the
 * aggregator's content rules): owned fields stay the pipeline's, objects
 * merge key by key, collisions and caps are kept, never dropped; time only
 * through time_field within bounds; message from the message keys. */
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_ecs.h"
#include "lp_eventid.h"
#include "lp_msgparse.h"
#include "lp_test.h"
#include "lp_time.h"
#include "lp_wire.h"
#include "out_elasticsearch.h"
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct lp_config *load(const char *yaml, struct lp_buf *errs)
{
    const char *names[] = {"test.yaml"};
    const char *texts[] = {yaml};
    return lp_config_load_texts(names, texts, 1, NULL, errs);
}

static const char *CONTENT_YAML = "aggregator:\n"
                                  "  parsers:\n"
                                  "    - {name: js, kind: json, time_field: time}\n"
                                  "    - {name: raw, kind: json, keep_original: true}\n"
                                  "  routes:\n"
                                  "    - name: raw\n"
                                  "      match: [{field: kubernetes.container.name, equals: raw}]\n"
                                  "      parser: raw\n"
                                  "      outputs: [files]\n"
                                  "  default_route: {parser: js}\n"
                                  "  enrich: {ingest_time: false}\n"
                                  "  outputs:\n"
                                  "    - {name: files, type: file, path: /tmp/x}\n";

struct rig {
    struct lp_config *cfg;
    struct agg_pipeline *p;
    struct lp_buf scratch;
    struct lp_wire_source src;
    struct lp_wire_record rec;
};

#define RUNTIME_NS (1795860000LL * LP_NS_PER_SEC) /* 2026-11-28T10:00:00Z */
#define RUNTIME_TS "2026-11-28T10:00:00.000000000Z"

static void rig_init(struct rig *r, const char *yaml)
{
    struct lp_buf errs;
    lp_buf_init(&errs, 0);
    r->cfg = load(yaml, &errs);
    if (!r->cfg)
        fprintf(stderr, "config errors:\n%s", errs.data);
    lp_buf_release(&errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->cfg);
    char err[256];
    const char *outs[] = {"files"};
    r->p = agg_pipeline_new(&r->cfg->aggregator, outs, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    lp_buf_init(&r->scratch, 0);
    memset(&r->src, 0, sizeof(r->src));
    r->src.source_id = "0123456789abcdef0123456789abcdef";
    r->src.host = "node-1";
    r->src.path = "/var/log/containers/api-7d9_tenant-a_app-1234.log";
    r->src.k8s_namespace = "tenant-a";
    r->src.k8s_pod_name = "api-7d9";
    r->src.k8s_container_name = "app";
    r->src.format = "cri";
    memset(&r->rec, 0, sizeof(r->rec));
    r->rec.ts_ns = RUNTIME_NS;
    r->rec.stream = "stdout";
    r->rec.offset = 4096;
}

static void rig_release(struct rig *r)
{
    lp_buf_release(&r->scratch);
    agg_pipeline_free(r->p);
    lp_config_free(r->cfg);
}

static json_t *event(struct rig *r, const char *line, int *failed)
{
    r->rec.message = line;
    r->rec.message_len = strlen(line);
    size_t route;
    int f = 0;
    enum agg_verdict verdict;
    json_t *ev = agg_pipeline_event(r->p, &r->src, &r->rec, NULL, RUNTIME_NS, &r->scratch, &route,
                                    &verdict, &f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    if (failed)
        *failed = f;
    /* whatever the content, the event is valid JSON text */
    char *s = json_dumps(ev, JSON_COMPACT);
    CU_ASSERT_PTR_NOT_NULL(s);
    json_t *back = s ? json_loads(s, 0, NULL) : NULL;
    CU_ASSERT_PTR_NOT_NULL(back);
    json_decref(back);
    free(s);
    return ev;
}

static const char *str(json_t *ev, const char *path)
{
    const char *s = json_string_value(lp_json_get_path(ev, path));
    return s ? s : "(missing)";
}

/* The owned fields are what the source and the record say. */
static void assert_owned(struct rig *r, json_t *ev)
{
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), RUNTIME_TS);
    CU_ASSERT_STRING_EQUAL(str(ev, "kubernetes.namespace"), "tenant-a");
    CU_ASSERT_STRING_EQUAL(str(ev, "kubernetes.pod.name"), "api-7d9");
    CU_ASSERT_STRING_EQUAL(str(ev, "kubernetes.container.name"), "app");
    CU_ASSERT_STRING_EQUAL(str(ev, "host.name"), "node-1");
    CU_ASSERT_STRING_EQUAL(str(ev, "log.file.path"), r->src.path);
    CU_ASSERT_EQUAL(json_integer_value(lp_json_get_path(ev, "log.offset")), 4096);
    CU_ASSERT_STRING_EQUAL(str(ev, "logpipe.source_id"), r->src.source_id);
    char id[LP_ID_HEX_LEN + 1];
    lp_event_id(r->src.source_id, strlen(r->src.source_id), 4096, id);
    CU_ASSERT_STRING_EQUAL(str(ev, "event.id"), id);
    CU_ASSERT_STRING_EQUAL(str(ev, "stream"), "stdout");
}

/* The kept entry for field (its value, or NULL), and its reason. */
static const char *kept(json_t *ev, const char *field, const char **reason)
{
    json_t *list = lp_json_get_path(ev, "logpipe.kept");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0) {
            if (reason)
                *reason = json_string_value(json_object_get(e, "reason"));
            return json_string_value(json_object_get(e, "value"));
        }
    }
    return NULL;
}

static void test_forged_owned_fields(void)
{
    struct rig r;
    rig_init(&r, CONTENT_YAML);
    json_t *ev = event(&r,
                       "{\"@timestamp\":\"2261-12-31T00:00:00Z\",\"kubernetes\":{\"namespace\":"
                       "\"kube-system\",\"pod\":{\"name\":\"etcd-0\"}},\"logpipe\":{\"source_id\":"
                       "\"00\"},\"log.offset\":-1,\"event.id\":\"x\",\"host.name\":\"evil\","
                       "\"container\":\"c\",\"msg\":\"forged\"}",
                       NULL);
    assert_owned(&r, ev);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "forged");
    const char *why = NULL;
    CU_ASSERT_PTR_NOT_NULL(strstr(kept(ev, "kubernetes", &why), "kube-system"));
    CU_ASSERT_STRING_EQUAL(why, "owned");
    CU_ASSERT_STRING_EQUAL(kept(ev, "@timestamp", NULL), "2261-12-31T00:00:00Z");
    CU_ASSERT_PTR_NOT_NULL(kept(ev, "logpipe", NULL));
    CU_ASSERT_STRING_EQUAL(kept(ev, "log.offset", NULL), "-1");
    CU_ASSERT_STRING_EQUAL(kept(ev, "event.id", NULL), "x");
    CU_ASSERT_STRING_EQUAL(kept(ev, "host.name", NULL), "evil");
    CU_ASSERT_STRING_EQUAL(kept(ev, "container", NULL), "c");
    json_decref(ev);
    rig_release(&r);
}

static void test_app_keys_keep_data(void)
{
    struct rig r;
    rig_init(&r, CONTENT_YAML);
    /* logrus/zap/pino keys: error and host are objects in the template */
    json_t *ev = event(&r,
                       "{\"error\":\"connection refused\",\"host\":\"db-1\",\"msg\":\"x\","
                       "\"level\":\"warning\"}",
                       NULL);
    assert_owned(&r, ev);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "x");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "msg"));
    const char *why = NULL;
    CU_ASSERT_STRING_EQUAL(kept(ev, "error", &why), "connection refused");
    CU_ASSERT_STRING_EQUAL(why, "type");
    CU_ASSERT_STRING_EQUAL(kept(ev, "host", NULL), "db-1");
    CU_ASSERT(json_is_object(lp_json_get_path(ev, "error")) || !lp_json_get_path(ev, "error"));
    CU_ASSERT_STRING_EQUAL(str(ev, "log.level"), "warn");
    json_decref(ev);
    /* an object where the template maps objects merges: error.message is free */
    ev = event(&r, "{\"error\":{\"message\":\"boom\",\"stack_trace\":\"at x\"},\"msg\":\"y\"}",
               NULL);
    CU_ASSERT_STRING_EQUAL(str(ev, "error.message"), "boom");
    CU_ASSERT_STRING_EQUAL(str(ev, "error.stack_trace"), "at x");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "logpipe.kept"));
    json_decref(ev);
    /* a long mapped field gets text: kept; a number string fits */
    ev =
        event(&r, "{\"http\":{\"response\":{\"status_code\":\"abc\",\"body\":{\"bytes\":\"12\"}}}}",
              NULL);
    CU_ASSERT_STRING_EQUAL(kept(ev, "http.response.status_code", NULL), "abc");
    CU_ASSERT_STRING_EQUAL(str(ev, "http.response.body.bytes"), "12");
    json_decref(ev);
    rig_release(&r);
}

static void test_ecs_shaped_merges_deep(void)
{
    struct rig r;
    rig_init(&r, CONTENT_YAML);
    json_t *ev = event(&r,
                       "{\"log\":{\"logger\":\"com.shop.Cart\",\"level\":\"ERROR\"},\"event\":"
                       "{\"dataset\":\"shop.cart\"},\"message\":\"checkout failed\","
                       "\"service.name\":\"cart\",\"ecs.version\":\"1.6.0\"}",
                       NULL);
    assert_owned(&r, ev);
    CU_ASSERT_STRING_EQUAL(str(ev, "log.logger"), "com.shop.Cart");
    CU_ASSERT_STRING_EQUAL(str(ev, "log.level"), "error");
    CU_ASSERT_STRING_EQUAL(str(ev, "event.dataset"), "shop.cart");
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "checkout failed");
    CU_ASSERT_STRING_EQUAL(str(ev, "service.name"), "cart");
    CU_ASSERT_STRING_EQUAL(str(ev, "ecs.version"), "1.6.0");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "logpipe.kept"));
    json_decref(ev);
    rig_release(&r);
}

static void test_message_and_plain_lines(void)
{
    struct rig r;
    rig_init(&r, CONTENT_YAML);
    int failed = 0;
    /* a plain line on a json route: a plain event, nothing added */
    json_t *ev = event(&r, "GET /healthz 200", &failed);
    CU_ASSERT_EQUAL(failed, 1);
    assert_owned(&r, ev);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "GET /healthz 200");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "error"));
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "event.original"));
    json_decref(ev);
    /* JSON that is not an object is plain text too */
    ev = event(&r, "[1,2,3]", &failed);
    CU_ASSERT_EQUAL(failed, 1);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "[1,2,3]");
    json_decref(ev);
    /* a JSON line: message from msg, no raw copy */
    ev = event(&r, "{\"msg\":\"ok\",\"n\":1}", &failed);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "ok");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "event.original"));
    json_decref(ev);
    /* message keys in order; a non-string message is kept, the raw line stays */
    ev = event(&r, "{\"message\":{\"a\":1},\"msg\":\"second\"}", NULL);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "second");
    CU_ASSERT_STRING_EQUAL(kept(ev, "message", NULL), "{\"a\":1}");
    json_decref(ev);
    ev = event(&r, "{\"n\":1}", NULL);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "{\"n\":1}");
    json_decref(ev);
    /* keep_original (route raw) */
    r.src.k8s_container_name = "raw";
    ev = event(&r, "{\"msg\":\"ok\"}", NULL);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "ok");
    CU_ASSERT_STRING_EQUAL(str(ev, "event.original"), "{\"msg\":\"ok\"}");
    json_decref(ev);
    rig_release(&r);
}

static void test_time_bounds(void)
{
    struct rig r;
    rig_init(&r, CONTENT_YAML);
    /* within bounds: the line's time */
    json_t *ev = event(&r, "{\"time\":\"2026-11-28T09:59:59.5Z\",\"msg\":\"a\"}", NULL);
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-11-28T09:59:59.500000000Z");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "time"));
    json_decref(ev);
    /* far future, far past, unparsable: the runtime's time, the value kept */
    const char *bad[] = {"2261-12-31T00:00:00Z", "1999-01-01T00:00:00Z", "yesterday"};
    for (size_t i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof(line), "{\"time\":\"%s\",\"msg\":\"b\"}", bad[i]);
        ev = event(&r, line, NULL);
        assert_owned(&r, ev);
        const char *why = NULL;
        CU_ASSERT_STRING_EQUAL(kept(ev, "time", &why), bad[i]);
        CU_ASSERT_STRING_EQUAL(why, "time");
        CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "time"));
        json_decref(ev);
    }
    /* a day ahead is the default skew: 23 h passes */
    ev = event(&r, "{\"time\":\"2026-11-29T09:00:00Z\"}", NULL);
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-11-29T09:00:00.000000000Z");
    json_decref(ev);
    /* the record's own time is content too (the fuzzer's case): a shipper
     * time in 1862 and a line time in 2261 are 2^63 ns apart and more; the
     * distance must not overflow, and the line's time is refused as future */
    r.rec.ts_ns = -3411036000000000000LL;
    ev = event(&r, "{\"time\":\"2261-01-01T00:00:00Z\"}", NULL);
    const char *why = NULL;
    CU_ASSERT_STRING_EQUAL(kept(ev, "time", &why), "2261-01-01T00:00:00Z");
    json_decref(ev);
    r.rec.ts_ns = INT64_MAX;
    ev = event(&r, "{\"time\":\"1700-01-01T00:00:00Z\"}", NULL);
    CU_ASSERT_PTR_NOT_NULL(kept(ev, "time", &why));
    json_decref(ev);
    r.rec.ts_ns = RUNTIME_NS;
    rig_release(&r);
}

static size_t leaves(json_t *v)
{
    size_t n = 0, i;
    const char *k;
    json_t *x;
    if (json_is_object(v))
        json_object_foreach(v, k, x) n += leaves(x);
    else if (json_is_array(v))
        json_array_foreach(v, i, x) n += leaves(x);
    else
        n = 1;
    return n;
}

static size_t depth(json_t *v)
{
    size_t d = 0, i;
    const char *k;
    json_t *x;
    if (json_is_object(v))
        json_object_foreach(v, k, x)
        {
            size_t e = depth(x) + 1;
            d = e > d ? e : d;
        }
    else if (json_is_array(v))
        json_array_foreach(v, i, x)
        {
            size_t e = depth(x);
            d = e > d ? e : d;
        }
    return d;
}

static void test_caps(void)
{
    struct rig r;
    rig_init(&r, CONTENT_YAML);
    /* 30,000 dotted segments: depth capped, the value kept, no crash */
    struct lp_buf b;
    lp_buf_init(&b, 0);
    lp_buf_puts(&b, "{\"");
    for (int i = 0; i < 30000; i++)
        lp_buf_puts(&b, i ? ".a" : "a");
    lp_buf_puts(&b, "\":1,\"msg\":\"deep\"}");
    lp_buf_putc(&b, '\0');
    json_t *ev = event(&r, b.data, NULL);
    assert_owned(&r, ev);
    CU_ASSERT(depth(ev) <= 22);
    json_t *list = lp_json_get_path(ev, "logpipe.kept");
    CU_ASSERT_EQUAL(json_array_size(list), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(list, 0), "reason")),
                           "depth");
    CU_ASSERT(json_string_length(json_object_get(json_array_get(list, 0), "field")) <= 256);
    json_decref(ev);
    /* nested objects 200 deep (real nesting, not dots) */
    lp_buf_reset(&b);
    for (int i = 0; i < 200; i++)
        lp_buf_puts(&b, "{\"x\":");
    lp_buf_puts(&b, "1");
    for (int i = 0; i < 200; i++)
        lp_buf_putc(&b, '}');
    lp_buf_putc(&b, '\0');
    ev = event(&r, b.data, NULL);
    CU_ASSERT(depth(ev) <= 22);
    list = lp_json_get_path(ev, "logpipe.kept");
    CU_ASSERT_EQUAL(json_array_size(list), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(list, 0), "reason")),
                           "depth");
    CU_ASSERT_EQUAL(strncmp(json_string_value(json_object_get(json_array_get(list, 0), "field")),
                            "x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x", 41),
                    0);
    json_decref(ev);
    /* 10,000 fields: 1,000 merged, the rest kept (no new mapped fields) */
    lp_buf_reset(&b);
    lp_buf_putc(&b, '{');
    for (int i = 0; i < 10000; i++) {
        char f[32];
        snprintf(f, sizeof(f), "%s\"f%d\":%d", i ? "," : "", i, i);
        lp_buf_puts(&b, f);
    }
    lp_buf_puts(&b, "}");
    lp_buf_putc(&b, '\0');
    ev = event(&r, b.data, NULL);
    assert_owned(&r, ev);
    size_t top = 0;
    const char *k;
    json_t *x;
    json_object_foreach(ev, k, x) if (k[0] == 'f') top++;
    CU_ASSERT_EQUAL(top, 1000);
    CU_ASSERT_EQUAL(json_array_size(lp_json_get_path(ev, "logpipe.kept")), 9000);
    CU_ASSERT(leaves(ev) < 1000 + 9000 * 3 + 50);
    json_decref(ev);
    /* names OpenSearch refuses: empty, blank, a leading '_' at the top */
    ev = event(&r, "{\"\":1,\" \":2,\"_id\":\"x\",\"a..b\":3,\"c.\":4,\"ok\":5}", NULL);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "ok")), 5);
    CU_ASSERT_PTR_NULL(json_object_get(ev, "_id"));
    CU_ASSERT_PTR_NULL(json_object_get(ev, ""));
    CU_ASSERT_EQUAL(json_array_size(lp_json_get_path(ev, "logpipe.kept")), 5);
    json_decref(ev);
    lp_buf_release(&b);
    rig_release(&r);
}

static void test_index_fields_checked(void)
{
    struct lp_buf errs;
    lp_buf_init(&errs, 0);
    struct lp_config *c =
        load("aggregator:\n"
             "  outputs:\n"
             "    - {name: es, type: elasticsearch, url: 'http://127.0.0.1:9200',\n"
             "       index: 'logs-{service.name}-%Y.%m.%d'}\n",
             &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "test.yaml:4:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "{service.name}, which a log line can set"));
    lp_buf_reset(&errs);
    c = load("aggregator:\n"
             "  content: {index_fields: [service.name]}\n"
             "  outputs:\n"
             "    - {name: es, type: elasticsearch, url: 'http://127.0.0.1:9200',\n"
             "       index: 'logs-{service.name}-{kubernetes.namespace}-%Y.%m.%d'}\n",
             &errs);
    CU_ASSERT_PTR_NOT_NULL(c);
    lp_config_free(c);
    lp_buf_reset(&errs);
    c = load("aggregator:\n  content: {kept_field: app}\n", &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "must be a path under logpipe."));
    lp_buf_release(&errs);
}

static void test_template_and_conflicts(void)
{
    char *s = lp_es_template_body("logs-x", 0, NULL, NULL, 0);
    json_t *t = json_loads(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    json_t *props = lp_json_get_path(t, "template.mappings.properties");
    json_t *kp = lp_json_get_path(props, "logpipe.properties.kept.properties");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(kp, "value.type")), "text");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(kp, "field.type")), "keyword");
    /* every table field is in the template with its type */
    for (size_t i = 0; i < lp_ecs_count; i++)
        CU_ASSERT_PTR_NOT_NULL(lp_ecs_nearest(lp_ecs_table[i].path));
    json_decref(t);
    free(s);
    s = lp_es_template_body("logs-x", 0, "logpipe.app", NULL, 0);
    t = json_loads(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL(lp_json_get_path(
        t, "template.mappings.properties.logpipe.properties.app.properties.value"));
    /* without a one-field type, labels are objects with dynamic keys */
    CU_ASSERT_PTR_NOT_NULL(lp_json_get_path(
        t, "template.mappings.properties.kubernetes.properties.labels.properties"));
    json_decref(t);
    free(s);
    /* with one, every keyed object is one field: a new label adds none */
    s = lp_es_template_body("logs-x", 0, NULL, "flat_object", 1);
    t = json_loads(s, 0, NULL);
    props = lp_json_get_path(t, "template.mappings.properties");
    static const char *const keyed[] = {"kubernetes.properties.labels.type",
                                        "kubernetes.properties.annotations.type",
                                        "container.properties.labels.type"};
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(props, keyed[i])), "flat_object");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(lp_json_get_path(props, "kubernetes.properties.namespace.type")),
        "keyword");
    /* dynamic_scalars: keyword: numbers and booleans one type everywhere */
    json_t *dts = lp_json_get_path(t, "template.mappings.dynamic_templates");
    CU_ASSERT_EQUAL(json_array_size(dts), 4);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(json_array_get(dts, 1),
                                                              "longs_as_keyword.mapping.type")),
                           "keyword");
    CU_ASSERT(json_is_false(lp_json_get_path(t, "template.mappings.date_detection")));
    json_decref(t);
    free(s);
    /* which type a cluster has, from its GET / */
    static const struct {
        const char *root;
        const char *want;
    } roots[] = {
        {"{\"version\":{\"distribution\":\"opensearch\",\"number\":\"2.19.6\"}}", "flat_object"},
        {"{\"version\":{\"distribution\":\"opensearch\",\"number\":\"2.7.0\"}}", "flat_object"},
        {"{\"version\":{\"distribution\":\"opensearch\",\"number\":\"2.6.0\"}}", NULL},
        {"{\"version\":{\"distribution\":\"opensearch\",\"number\":\"3.0.0\"}}", "flat_object"},
        {"{\"version\":{\"number\":\"8.15.1\",\"build_flavor\":\"default\"}}", "flattened"},
        {"{\"version\":{\"number\":\"7.2.0\"}}", NULL},
        {"{\"version\":{\"number\":\"7.10.2\"}}", "flattened"},
        {"{\"version\":{\"number\":\"7.10.2\",\"build_flavor\":\"oss\"}}", NULL},
        {"not json", NULL},
        {"{}", NULL},
    };
    for (size_t i = 0; i < sizeof(roots) / sizeof(*roots); i++) {
        const char *got = lp_es_flat_type(roots[i].root, strlen(roots[i].root));
        CU_ASSERT(got == roots[i].want || (got && roots[i].want && !strcmp(got, roots[i].want)));
    }

    char f[64];
    CU_ASSERT_EQUAL(lp_es_conflict_field("mapper_parsing_exception: object mapping for [error] "
                                         "tried to parse field [error] as object, but found a "
                                         "concrete value",
                                         f, sizeof(f)),
                    1);
    CU_ASSERT_STRING_EQUAL(f, "error");
    CU_ASSERT_EQUAL(lp_es_conflict_field("mapper_parsing_exception: failed to parse field "
                                         "[user.id] of type [long] in document with id 'x'",
                                         f, sizeof(f)),
                    1);
    CU_ASSERT_STRING_EQUAL(f, "user.id");
    CU_ASSERT_EQUAL(lp_es_conflict_field("version_conflict_engine_exception: [x]", f, sizeof(f)),
                    0);
}

static const char *type_name(enum lp_ecs_type t)
{
    switch (t) {
    case LP_ECS_OBJECT: return "object";
    case LP_ECS_KEYWORD: return "keyword";
    case LP_ECS_TEXT: return "text";
    case LP_ECS_LONG: return "long";
    case LP_ECS_DATE: return "date";
    case LP_ECS_DATE_NANOS: return "date_nanos";
    case LP_ECS_STORED: return "keyword, not indexed";
    }
    return "?";
}

/* docs/fields.md's table is the field table: same fields, types, owners. */
static void test_fields_doc(void)
{
    struct lp_buf want;
    lp_buf_init(&want, 0);
    lp_buf_puts(&want, "| field | mapping | set by | what |\n|---|---|---|---|\n");
    for (size_t i = 0; i < lp_ecs_count; i++) {
        const struct lp_ecs_field *d = &lp_ecs_table[i];
        if (!d->doc)
            continue;
        char row[1024];
        snprintf(row, sizeof(row), "| `%s` | %s | %s | %s |\n", d->path,
                 (d->owned & LP_ECS_KEYED) ? "flat_object / flattened (labels_mapping)"
                                           : type_name(d->type),
                 lp_ecs_owned(d->path) ? "logpipe" : "application", d->doc);
        lp_buf_puts(&want, row);
    }
    lp_buf_putc(&want, '\0');
    size_t len;
    char *doc = lp_test_read_source("docs/fields.md", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    const char *b = strstr(doc, "<!-- field table: begin -->\n");
    const char *e = strstr(doc, "<!-- field table: end -->");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    b += strlen("<!-- field table: begin -->\n");
    int same = (size_t)(e - b) == strlen(want.data) && memcmp(b, want.data, (size_t)(e - b)) == 0;
    if (!same)
        fprintf(stderr,
                "docs/fields.md's field table differs from core/lp_ecs.c; it should be:\n%s",
                want.data);
    CU_ASSERT_TRUE(same);
    free(doc);
    lp_buf_release(&want);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"forged owned fields stay the pipeline's", test_forged_owned_fields},
        {"app keys that collide are kept, not refused", test_app_keys_keep_data},
        {"ECS-shaped content merges key by key", test_ecs_shaped_merges_deep},
        {"message keys, plain lines on json routes", test_message_and_plain_lines},
        {"time only through time_field, within bounds", test_time_bounds},
        {"depth, field and name caps", test_caps},
        {"index names use owned or allowed fields", test_index_fields_checked},
        {"template from the table; conflict fields", test_template_and_conflicts},
        {"docs/fields.md is the field table", test_fields_doc},
        {NULL, NULL},
    };
    return lp_test_run("content", tests);
}
