/* The aggregator's pipeline (routing rules, parsers per route, enrichment,
 * level normalisation) and the commit tracker (out-of-order completions). */
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_msgparse.h"
#include "lp_test.h"
#include "lp_time.h"
#include "lp_wire.h"
#include "out_es.h"
#include "pipeline.h"
#include "tracker.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct lp_config *load(const char *yaml)
{
    struct lp_buf errs;
    lp_buf_init(&errs, 0);
    const char *names[] = {"test.yaml"};
    const char *texts[] = {yaml};
    struct lp_config *c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    if (!c)
        fprintf(stderr, "config errors:\n%s", errs.data);
    lp_buf_release(&errs);
    return c;
}

static const char *const OUTS[] = {"es", "files", "debug"};

static const char *ROUTES_YAML =
    "aggregator:\n"
    "  parsers:\n"
    "    - {name: nginx, kind: access, on_failure: mark}\n"
    "    - {name: js, kind: json}\n"
    "  routes:\n"
    "    - name: web\n"
    "      match:\n"
    "        - {field: kubernetes.container.name, equals: nginx}\n"
    "      parser: nginx\n"
    "      outputs: [es, files]\n"
    "    - name: shop-json\n"
    "      match:\n"
    "        - {field: kubernetes.namespace, prefix: shop}\n"
    "        - {field: stream, equals: stderr, not: true}\n"
    "      parser: js\n"
    "      outputs: [files]\n"
    "    - name: by-regex\n"
    "      match: [{field: log.file.path, regex: '/batch-[0-9]+\\.log$'}]\n"
    "      outputs: [debug]\n"
    "    - name: has-container\n"
    "      match: [{field: container.id, exists: true}]\n"
    "      outputs: [es]\n"
    "  default_route: {outputs: [files]}\n"
    "  enrich:\n"
    "    ingest_time: false\n"
    "  outputs:\n"
    "    - {name: es, type: elasticsearch, url: 'http://127.0.0.1:9200'}\n"
    "    - {name: files, type: file, path: /tmp/x}\n"
    "    - {name: debug, type: stdout}\n";

static json_t *ev_of(const char *json)
{
    json_error_t e;
    json_t *v = json_loads(json, 0, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    return v;
}

static const char *route_name(struct agg_pipeline *p, const char *json)
{
    json_t *ev = ev_of(json);
    const char *n = agg_pipeline_route(p, agg_pipeline_match(p, ev))->name;
    json_decref(ev);
    return n;
}

static void test_routing(void)
{
    struct lp_config *c = load(ROUTES_YAML);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, OUTS, 3, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(agg_pipeline_routes(p), 5);
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"kubernetes\":{\"container\":{\"name\":\"nginx\"}}}"),
                           "web");
    /* equals is exact */
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"kubernetes\":{\"container\":{\"name\":\"nginx2\"}}}"),
                           "default");
    /* all conditions must hold; `not` negates */
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"kubernetes\":{\"namespace\":\"shop-eu\"},"
                                         "\"stream\":\"stdout\"}"),
                           "shop-json");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"kubernetes\":{\"namespace\":\"shop-eu\"},"
                                         "\"stream\":\"stderr\"}"),
                           "default");
    /* a missing field: `not equals` holds */
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"kubernetes\":{\"namespace\":\"shop\"}}"),
                           "shop-json");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"log\":{\"file\":{\"path\":\"/v/batch-12.log\"}}}"),
                           "by-regex");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"log\":{\"file\":{\"path\":\"/v/batch-x.log\"}}}"),
                           "default");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"container\":{\"id\":\"abc\"}}"), "has-container");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"container\":{\"id\":null}}"), "default");
    /* rule order: the first match wins */
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"kubernetes\":{\"container\":{\"name\":\"nginx\"}},"
                                         "\"container\":{\"id\":\"abc\"}}"),
                           "web");
    /* outputs resolved to indexes; the default route's list */
    const struct agg_route_info *web = agg_pipeline_route(p, 0);
    CU_ASSERT_EQUAL(web->n_outputs, 2);
    CU_ASSERT_EQUAL(web->outputs[0], 0);
    CU_ASSERT_EQUAL(web->outputs[1], 1);
    const struct agg_route_info *def = agg_pipeline_route(p, 4);
    CU_ASSERT_STRING_EQUAL(def->name, "default");
    CU_ASSERT_EQUAL(def->n_outputs, 1);
    CU_ASSERT_EQUAL(def->outputs[0], 1);
    CU_ASSERT_STRING_EQUAL(agg_pipeline_route_parser(p, 0), "nginx");
    CU_ASSERT_PTR_NULL(agg_pipeline_route_parser(p, 4));
    agg_pipeline_free(p);
    lp_config_free(c);
}

static void test_numbers_match_as_text(void)
{
    struct lp_config *c = load("aggregator:\n"
                               "  routes:\n"
                               "    - {name: errors, match: [{field: http.status, prefix: '5'}],"
                               " outputs: [files]}\n"
                               "    - {name: flag, match: [{field: ok, equals: 'true'}],"
                               " outputs: [files]}\n"
                               "  outputs: [{name: files, type: file, path: /tmp/x}]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    const char *outs[] = {"files"};
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, outs, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"http\":{\"status\":503}}"), "errors");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"http\":{\"status\":200}}"), "default");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"ok\":true}"), "flag");
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"ok\":{\"x\":1}}"), "default");
    /* the default route without outputs: every output */
    CU_ASSERT_EQUAL(agg_pipeline_route(p, 2)->n_outputs, 1);
    agg_pipeline_free(p);
    lp_config_free(c);
}

static void test_event_parse_and_fail(void)
{
    struct lp_config *c = load(ROUTES_YAML);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, OUTS, 3, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct lp_wire_source src = {.source_id = "0123456789abcdef0123456789abcdef",
                                 .host = "node-1",
                                 .path = "/var/log/containers/web_shop_nginx-1.log",
                                 .k8s_namespace = "shop",
                                 .k8s_container_name = "nginx"};
    const char *line = "10.1.2.3 - bob [28/Nov/2026:10:11:12 +0100] \"GET /cart?id=1 HTTP/1.1\" "
                       "404 512 \"-\" \"curl/8.0\"";
    struct lp_wire_record r = {.ts_ns = 1795860000LL * LP_NS_PER_SEC, .stream = "stdout",
                               .offset = 4096, .message = line, .message_len = strlen(line)};
    struct lp_buf scratch;
    lp_buf_init(&scratch, 0);
    size_t route;
    int failed;
    json_t *ev = agg_pipeline_event(p, &src, &r, lp_time_real_ns(), &scratch, &route, &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(route, 0);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(json_integer_value(lp_json_get_path(ev, "http.response.status_code")), 404);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "@timestamp")),
                           "2026-11-28T09:11:12.000000000Z");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "kubernetes.namespace")),
                           "shop");
    CU_ASSERT_EQUAL(json_integer_value(lp_json_get_path(ev, "log.offset")), 4096);
    CU_ASSERT_EQUAL(json_string_length(lp_json_get_path(ev, "event.id")), 32);
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "event.ingested")); /* ingest_time: false */
    json_decref(ev);

    /* the same record through a failing parser: kept, with the reason */
    const char *bad = "this is not an access log line";
    r.message = bad;
    r.message_len = strlen(bad);
    ev = agg_pipeline_event(p, &src, &r, lp_time_real_ns(), &scratch, &route, &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(failed, 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "message")), bad);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "event.original")), bad);
    CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(lp_json_get_path(ev, "error.message")),
                                  "access"));
    json_decref(ev);

    /* a plain line on a json route (on_failure: keep, the default): a plain
     * event, counted as a failed parse but not marked */
    src.k8s_container_name = "shop-api";
    ev = agg_pipeline_event(p, &src, &r, lp_time_real_ns(), &scratch, &route, &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(route, 1);
    CU_ASSERT_EQUAL(failed, 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "message")), bad);
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "event.original"));
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "error"));
    json_decref(ev);
    lp_buf_release(&scratch);
    agg_pipeline_free(p);
    lp_config_free(c);
}

static void test_enrich(void)
{
    setenv("LP_TEST_CLUSTER", "prod-eu-1", 1);
    struct lp_config *c = load("aggregator:\n"
                               "  enrich:\n"
                               "    add_fields: {service.environment: production, team: core}\n"
                               "    env_fields: {orchestrator.cluster.name: LP_TEST_CLUSTER,"
                               " missing.field: LP_TEST_SURELY_UNSET_VAR}\n"
                               "    rename: {msg: message, user.name: user.id}\n"
                               "    copy: {trace_id: trace.id}\n"
                               "    remove: [secret, a.b]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    const char *outs[] = {"files"};
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, outs, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    json_t *ev = ev_of("{\"message\":\"raw\",\"msg\":\"parsed\",\"user\":{\"name\":\"bob\"},"
                       "\"trace_id\":\"t1\",\"secret\":\"s\",\"a\":{\"b\":1},"
                       "\"level\":\"WARNING\"}");
    int64_t now = 1795860000LL * LP_NS_PER_SEC + 123 * LP_NS_PER_MS;
    agg_pipeline_enrich(p, ev, now);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "service.environment")),
                           "production");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "team")), "core");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "orchestrator.cluster.name")),
                           "prod-eu-1");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "missing"));
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "message")), "parsed");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "msg"));
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "user.id")), "bob");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "user.name"));
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "trace.id")), "t1");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "trace_id")), "t1");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "secret"));
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "a")); /* emptied parent removed too */
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "log.level")), "warn");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "level"));
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "event.ingested")),
                           "2026-11-28T10:00:00.123Z");
    json_decref(ev);
    agg_pipeline_free(p);
    lp_config_free(c);
}

static void test_levels(void)
{
    CU_ASSERT_STRING_EQUAL(agg_level_normalize("WARNING"), "warn");
    CU_ASSERT_STRING_EQUAL(agg_level_normalize("Err"), "error");
    CU_ASSERT_STRING_EQUAL(agg_level_normalize("CRITICAL"), "fatal");
    CU_ASSERT_STRING_EQUAL(agg_level_normalize("informational"), "info");
    CU_ASSERT_STRING_EQUAL(agg_level_normalize("dbg"), "debug");
    CU_ASSERT_STRING_EQUAL(agg_level_normalize("3"), "error"); /* syslog severity */
    CU_ASSERT_STRING_EQUAL(agg_level_normalize("finest"), "trace");
    CU_ASSERT_PTR_NULL(agg_level_normalize("loud"));
    CU_ASSERT_PTR_NULL(agg_level_normalize("12"));
    /* an unknown level is left as it is */
    struct lp_config *c = load("");
    const char *outs[] = {"files"};
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, outs, 1, err, sizeof(err));
    json_t *ev = ev_of("{\"log\":{\"level\":\"LOUD\"}}");
    agg_pipeline_enrich(p, ev, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "log.level")), "LOUD");
    json_decref(ev);
    ev = ev_of("{\"severity\":\"E\"}");
    agg_pipeline_enrich(p, ev, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "log.level")), "error");
    json_decref(ev);
    agg_pipeline_free(p);
    lp_config_free(c);
}

static void test_config_errors(void)
{
    struct lp_buf errs;
    lp_buf_init(&errs, 0);
    const char *names[] = {"agg.yaml"};
    const char *texts[] = {"aggregator:\n"
                           "  parsers:\n"
                           "    - {name: re, kind: regex, pattern: '(?<x>['}\n"
                           "    - {name: re, kind: json}\n"
                           "  routes:\n"
                           "    - name: web\n"
                           "      match: [{field: a, equals: b, prefix: c}]\n"
                           "      parser: nope\n"
                           "      outputs: [es, nowhere]\n"
                           "    - {name: default, outputs: [es]}\n"
                           "  outputs:\n"
                           "    - {name: es, type: elasticsearch, url: 'localhost:9200'}\n"
                           "    - {name: f, type: file}\n"};
    struct lp_config *c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:3:40: aggregator.parsers[0]: bad pattern"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:4:14: aggregator.parsers[1]: parser 're' "
                                             "is defined twice"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:7:15: aggregator.routes[0].match[0]: "
                                             "needs exactly one of"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:8:15: aggregator.routes[0]: no parser "
                                             "named 'nope'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:9:21: aggregator.routes[0]: no output "
                                             "named 'nowhere'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:10:14: aggregator.routes[1]: needs a name"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:12:44: aggregator.outputs[0]: "
                                             "elasticsearch needs a url"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "agg.yaml:13:7: aggregator.outputs[1]: type file "
                                             "needs a path"));
    if (c)
        lp_config_free(c);
    lp_buf_release(&errs);
}

static void test_template_body(void)
{
    char *s = agg_es_template_body("logs-{kubernetes.namespace}-%Y.%m.%d", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    json_error_t e;
    json_t *t = json_loads(s, 0, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(t, "index_patterns"), 0)),
                           "logs-*");
    json_t *props = lp_json_get_path(t, "template.mappings.properties");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(
                               json_object_get(props, "@timestamp"), "type")),
                           "date_nanos");
    CU_ASSERT_PTR_NULL(json_object_get(t, "data_stream"));
    json_decref(t);
    free(s);
    s = agg_es_template_body("logs-app", 1, NULL);
    t = json_loads(s, 0, &e);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(t, "index_patterns"), 0)),
                           "logs-app*");
    CU_ASSERT_PTR_NOT_NULL(json_object_get(t, "data_stream"));
    json_decref(t);
    free(s);
}

/* The fast path renders exactly what the general path produces. */
static void check_fast_equals_slow(const char *yaml, int expect_fast)
{
    struct lp_config *c = load(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    const char *outs[] = {"files"};
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, outs, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct lp_wire_source srcs[] = {
        {.source_id = "0123456789abcdef0123456789abcdef", .host = "node-1",
         .path = "/var/log/containers/web_shop_nginx-1.log", .format = "docker",
         .container_id = "c0ffee", .k8s_namespace = "shop", .k8s_pod_name = "web",
         .k8s_pod_uid = "uid-1", .k8s_container_name = "nginx"},
        {.source_id = "fedcba9876543210fedcba9876543210", .path = "/x/raw.log"},
    };
    static const char msg3[] = "ctl \x01\x1f \"quoted\" \\ tab\t nl\n uni \xc3\xa9 \xe2\x82\xac / end";
    struct lp_wire_record recs[] = {
        {.ts_ns = 1795860000LL * LP_NS_PER_SEC + 123456789, .stream = "stdout", .offset = 0,
         .message = "GET /x 200", .message_len = 10},
        {.ts_ns = 1, .stream = "stderr", .offset = 1844674407370955161ULL,
         .message = "boom", .message_len = 4, .flags = LP_REC_TRUNCATED | LP_REC_PARTIAL,
         .lines = 3},
        {.ts_ns = 1795860000LL * LP_NS_PER_SEC, .offset = 77, .message = msg3,
         .message_len = sizeof(msg3) - 1, .flags = LP_REC_UTF8_REPLACED},
    };
    int64_t now = 1795860000LL * LP_NS_PER_SEC + 5 * LP_NS_PER_MS;
    struct lp_buf a, b;
    lp_buf_init(&a, 0);
    lp_buf_init(&b, 0);
    int compared = 0;
    for (size_t si = 0; si < 2; si++)
        for (size_t ri = 0; ri < 3; ri++) {
            size_t route_fast = agg_pipeline_match_record(p, &srcs[si], &recs[ri]);
            size_t route;
            int failed;
            json_t *ev = agg_pipeline_event(p, &srcs[si], &recs[ri], now, &b, &route, &failed);
            CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
            if (route_fast != SIZE_MAX) /* SIZE_MAX: decided on the event instead */
                CU_ASSERT_EQUAL(route_fast, route);
            if (!agg_pipeline_route_fast(p, route)) {
                json_decref(ev);
                continue;
            }
            char *slow = json_dumps(ev, JSON_COMPACT);
            char ib[40];
            lp_buf_reset(&a);
            CU_ASSERT_EQUAL(agg_pipeline_render(p, &srcs[si], &recs[ri], NULL,
                                                agg_pipeline_ingested(p, now, ib), &a),
                            0);
            /* the same members in the same order with the same values (jansson
             * writes \u001F where the fast path writes \u001f) */
            json_t *fast_ev = json_loads(a.data, 0, NULL);
            CU_ASSERT_PTR_NOT_NULL_FATAL(fast_ev);
            char *again = json_dumps(fast_ev, JSON_COMPACT);
            CU_ASSERT_STRING_EQUAL(again, slow);
            if (strcmp(again, slow) != 0)
                fprintf(stderr, "\nfast: %s\nslow: %s\n", a.data, slow);
            free(again);
            json_decref(fast_ev);
            compared++;
            free(slow);
            json_decref(ev);
        }
    CU_ASSERT_EQUAL(compared > 0, expect_fast);
    lp_buf_release(&a);
    lp_buf_release(&b);
    agg_pipeline_free(p);
    lp_config_free(c);
}

static void test_fast_path(void)
{
    /* defaults: ingest time, no static fields */
    check_fast_equals_slow("", 1);
    /* static fields and routes on record fields */
    check_fast_equals_slow("aggregator:\n"
                           "  routes:\n"
                           "    - {name: web, match: [{field: kubernetes.container.name, equals: nginx}],"
                           " outputs: [files]}\n"
                           "    - {name: errs, match: [{field: stream, equals: stderr}, {field: log.offset,"
                           " prefix: '1844'}], outputs: [files]}\n"
                           "    - {name: raw, match: [{field: logpipe.input_format, exists: true, not: true},"
                           " {field: message, regex: 'end$'}], outputs: [files]}\n"
                           "  enrich:\n"
                           "    ingest_time: false\n"
                           "    add_fields: {cluster.name: prod, service.environment: eu, tier: \"1\"}\n"
                           "  outputs: [{name: files, type: file, path: /tmp/x}]\n",
                           1);
    /* a route on an object path needs the event: still the same result */
    check_fast_equals_slow("aggregator:\n"
                           "  routes:\n"
                           "    - {name: k8s, match: [{field: kubernetes, exists: true}], outputs: [files]}\n"
                           "  outputs: [{name: files, type: file, path: /tmp/x}]\n",
                           1);
    /* static fields merging into rendered objects: general path only */
    check_fast_equals_slow("aggregator:\n"
                           "  enrich: {add_fields: {host.region: eu}}\n",
                           0);
    check_fast_equals_slow("aggregator:\n"
                           "  enrich: {rename: {message: msg}}\n",
                           0);
    check_fast_equals_slow("aggregator:\n"
                           "  enrich: {add_fields: {level: WARNING}}\n",
                           0);
}

/* ---- the commit tracker ---- */

static void test_tracker_out_of_order(void)
{
    struct agg_part *p = agg_part_new(3);
    struct agg_msg *m[6];
    for (int i = 0; i < 6; i++)
        m[i] = agg_part_push(p, 100 + i, 10, 1);
    CU_ASSERT_EQUAL(p->pending_bytes, 60);
    /* two outputs hold message 0: the worker and a bulk item */
    agg_msg_hold(m[0], 1);
    CU_ASSERT_EQUAL(agg_part_advance(p), 0);
    CU_ASSERT_EQUAL(p->next_store, -1);
    /* later messages finish first: nothing may be stored past message 0 */
    agg_msg_release(m[2]);
    agg_msg_release(m[1]);
    agg_msg_release(m[5]);
    CU_ASSERT_EQUAL(agg_part_advance(p), 0);
    CU_ASSERT_EQUAL(p->next_store, -1);
    agg_msg_release(m[0]); /* the worker */
    CU_ASSERT_EQUAL(agg_part_advance(p), 0);
    agg_msg_release(m[0]); /* the bulk item */
    CU_ASSERT_EQUAL(agg_part_advance(p), 1);
    CU_ASSERT_EQUAL(p->next_store, 103); /* 100..102 done; 103 still in flight */
    CU_ASSERT_EQUAL(p->pending_bytes, 30);
    CU_ASSERT_EQUAL(p->in_flight, 3);
    CU_ASSERT_FALSE(agg_part_idle(p));
    agg_msg_release(m[3]);
    agg_msg_release(m[4]);
    CU_ASSERT_EQUAL(agg_part_advance(p), 1);
    CU_ASSERT_EQUAL(p->next_store, 106);
    CU_ASSERT_TRUE(agg_part_idle(p));
    CU_ASSERT_EQUAL(p->pending_bytes, 0);
    /* offsets with gaps (compacted or transactional topics) */
    struct agg_msg *a = agg_part_push(p, 110, 1, 1);
    struct agg_msg *b = agg_part_push(p, 115, 1, 1);
    agg_msg_release(b);
    CU_ASSERT_EQUAL(agg_part_advance(p), 0);
    agg_msg_release(a);
    CU_ASSERT_EQUAL(agg_part_advance(p), 1);
    CU_ASSERT_EQUAL(p->next_store, 116);
    agg_part_free(p);
}

struct releaser {
    struct agg_msg **msgs;
    size_t n;
    size_t start, step;
};

static void *release_some(void *arg)
{
    struct releaser *r = arg;
    for (size_t i = r->start; i < r->n; i += r->step)
        agg_msg_release(r->msgs[i]);
    return NULL;
}

static void test_tracker_threads(void)
{
    enum { N = 20000 };
    struct agg_part *p = agg_part_new(0);
    struct agg_msg **msgs = calloc(N, sizeof(*msgs));
    for (size_t i = 0; i < N; i++)
        msgs[i] = agg_part_push(p, (int64_t)i, 1, 2);
    /* each message released once by each of two threads, in different orders */
    struct releaser r1 = {msgs, N, 0, 1}, r2 = {msgs, N, 0, 1};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, release_some, &r1);
    pthread_create(&t2, NULL, release_some, &r2);
    int64_t last = -1;
    int monotonic = 1;
    while (!agg_part_idle(p)) {
        agg_part_advance(p);
        if (p->next_store < last)
            monotonic = 0;
        last = p->next_store;
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CU_ASSERT_TRUE(monotonic);
    CU_ASSERT_EQUAL(p->next_store, N);
    free(msgs);
    agg_part_free(p);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"routing rules", test_routing},
        {"numbers and booleans match as text", test_numbers_match_as_text},
        {"event: route parser, parse failure kept", test_event_parse_and_fail},
        {"enrichment", test_enrich},
        {"level normalisation", test_levels},
        {"aggregator config errors with positions", test_config_errors},
        {"index template body", test_template_body},
        {"fast path renders what the general path does", test_fast_path},
        {"tracker: out-of-order completions", test_tracker_out_of_order},
        {"tracker: completions from threads", test_tracker_threads},
        {NULL, NULL},
    };
    return lp_test_run("pipeline", tests);
}
