/* The aggregator's pipeline (routing rules, parsers per route, enrichment,
 * level normalisation) and the commit tracker (out-of-order completions). */
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_metrics.h"
#include "lp_msgparse.h"
#include "lp_test.h"
#include "lp_time.h"
#include "lp_wire.h"
#include "out_elasticsearch.h"
#include "pipeline.h"
#include "lp_tracker.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define load lp_test_config

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
    CU_ASSERT_STRING_EQUAL(route_name(p, "{\"kubernetes\":{\"namespace\":\"shop\"}}"), "shop-json");
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
    struct lp_wire_record r = {.ts_ns = 1795860000LL * LP_NS_PER_SEC,
                               .stream = "stdout",
                               .offset = 4096,
                               .message = line,
                               .message_len = strlen(line)};
    struct lp_buf scratch;
    lp_buf_init(&scratch, 0);
    size_t route;
    int failed;
    enum agg_verdict verdict;
    json_t *ev = agg_pipeline_event(p, &src, &r, NULL, lp_time_real_ns(), &scratch, &route,
                                    &verdict, &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(route, 0);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(json_integer_value(lp_json_get_path(ev, "http.response.status_code")), 404);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "@timestamp")),
                           "2026-11-28T09:11:12.000000000Z");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "kubernetes.namespace")), "shop");
    CU_ASSERT_EQUAL(json_integer_value(lp_json_get_path(ev, "log.offset")), 4096);
    CU_ASSERT_EQUAL(json_string_length(lp_json_get_path(ev, "event.id")), 32);
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "event.ingested")); /* ingest_time: false */
    json_decref(ev);

    /* the same record through a failing parser: kept, with the reason */
    const char *bad = "this is not an access log line";
    r.message = bad;
    r.message_len = strlen(bad);
    ev = agg_pipeline_event(p, &src, &r, NULL, lp_time_real_ns(), &scratch, &route, &verdict,
                            &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(failed, 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "message")), bad);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "event.original")), bad);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(json_string_value(lp_json_get_path(ev, "error.message")), "access"));
    json_decref(ev);

    /* a plain line on a json route (on_failure: keep, the default): a plain
     * event, counted as a failed parse but not marked */
    src.k8s_container_name = "shop-api";
    ev = agg_pipeline_event(p, &src, &r, NULL, lp_time_real_ns(), &scratch, &route, &verdict,
                            &failed);
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

/* #29 item 9: a pod's logpipe.io/parser picks only what its route allows
 * (hint_parsers; default none): an access parser picked by a tenant would
 * move @timestamp into another day's index. Unknown and refused hints are
 * counted apart; a name in hint_parsers that is no parser is a config
 * error at its place. */
static void test_parser_hint_allow_list(void)
{
    const char *yaml = "aggregator:\n"
                       "  parsers: [{name: js, kind: json}, {name: acc, kind: access}]\n"
                       "  routes:\n"
                       "    - {name: open, match: [{field: kubernetes.namespace, equals: a}], "
                       "hint_parsers: [js], outputs: [files]}\n"
                       "  default_route: {outputs: [files]}\n"
                       "  enrich: {ingest_time: false}\n"
                       "  outputs: [{name: files, type: file, path: /tmp/x}]\n";
    struct lp_config *c = load(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const char *outs[] = {"files"};
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, outs, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct lp_metrics *m = lp_metrics_new();
    agg_pipeline_set_metrics(p, m);
    struct lp_wire_source src = {.source_id = "0123456789abcdef0123456789abcdef",
                                 .host = "n",
                                 .k8s_namespace = "a",
                                 .parser = "js"};
    const char *line = "{\"seq\":7}";
    struct lp_wire_record r = {
        .ts_ns = 1795860000LL * LP_NS_PER_SEC, .message = line, .message_len = strlen(line)};
    struct lp_buf scratch = LP_BUF_INIT;
    size_t route;
    int failed;
    enum agg_verdict verdict;
    /* allowed on its route: parsed, not the fast path */
    json_t *ev = agg_pipeline_event(p, &src, &r, NULL, 0, &scratch, &route, &verdict, &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(json_integer_value(lp_json_get_path(ev, "seq")), 7);
    CU_ASSERT_FALSE(agg_pipeline_fast(p, route, &src));
    json_decref(ev);
    /* a parser the route does not allow: unparsed, refused */
    src.parser = "acc";
    ev = agg_pipeline_event(p, &src, &r, NULL, 0, &scratch, &route, &verdict, &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "seq"));
    CU_ASSERT_EQUAL(failed, 0);
    json_decref(ev);
    /* the default route allows none */
    src.parser = "js";
    src.k8s_namespace = "b";
    ev = agg_pipeline_event(p, &src, &r, NULL, 0, &scratch, &route, &verdict, &failed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "seq"));
    json_decref(ev);
    /* no such parser */
    src.parser = "nope";
    ev = agg_pipeline_event(p, &src, &r, NULL, 0, &scratch, &route, &verdict, &failed);
    json_decref(ev);
    CU_ASSERT_EQUAL(lp_counter_get(lp_metrics_counter(
                        m, "logpipe_aggregator_parser_hint_refused_total", "", NULL)),
                    2);
    CU_ASSERT_EQUAL(lp_counter_get(lp_metrics_counter(
                        m, "logpipe_aggregator_parser_hint_unknown_total", "", NULL)),
                    1);
    lp_buf_release(&scratch);
    agg_pipeline_free(p);
    lp_metrics_free(m);
    lp_config_free(c);

    struct lp_buf errs = LP_BUF_INIT;
    const char *names[] = {"h.yaml"};
    const char *texts[] = {"aggregator:\n"
                           "  parsers: [{name: js, kind: json}]\n"
                           "  default_route: {outputs: [f], hint_parsers: [js, jsn]}\n"
                           "  outputs: [{name: f, type: file, path: /tmp/x}]\n"};
    c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    CU_ASSERT_PTR_NULL(c);
    if (!strstr(errs.data, "h.yaml:3:52: aggregator.default_route: hint_parsers"))
        fprintf(stderr, "\n%s\n", errs.data);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data,
                                  "h.yaml:3:52: aggregator.default_route: hint_parsers: no "
                                  "parser named 'jsn'"));
    lp_config_free(c);
    lp_buf_release(&errs);
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
    char *s = lp_es_template_body("logs-{kubernetes.namespace}-%Y.%m.%d", 0, NULL, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    json_error_t e;
    json_t *t = json_loads(s, 0, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_array_get(json_object_get(t, "index_patterns"), 0)), "logs-*");
    json_t *props = lp_json_get_path(t, "template.mappings.properties");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(lp_json_get_path(json_object_get(props, "@timestamp"), "type")),
        "date_nanos");
    CU_ASSERT_PTR_NULL(json_object_get(t, "data_stream"));
    json_decref(t);
    free(s);
    s = lp_es_template_body("logs-app", 1, NULL, NULL, 0);
    t = json_loads(s, 0, &e);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_array_get(json_object_get(t, "index_patterns"), 0)), "logs-app*");
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
        {.source_id = "0123456789abcdef0123456789abcdef",
         .host = "node-1",
         .path = "/var/log/containers/web_shop_nginx-1.log",
         .format = "docker",
         .container_id = "c0ffee",
         .k8s_namespace = "shop",
         .k8s_pod_name = "web",
         .k8s_pod_uid = "uid-1",
         .k8s_container_name = "nginx"},
        {.source_id = "fedcba9876543210fedcba9876543210", .path = "/x/raw.log"},
    };
    static const char msg3[] =
        "ctl \x01\x1f \"quoted\" \\ tab\t nl\n uni \xc3\xa9 \xe2\x82\xac / end";
    struct lp_wire_record recs[] = {
        {.ts_ns = 1795860000LL * LP_NS_PER_SEC + 123456789,
         .stream = "stdout",
         .offset = 0,
         .message = "GET /x 200",
         .message_len = 10},
        {.ts_ns = 1,
         .stream = "stderr",
         .offset = 1844674407370955161ULL,
         .message = "boom",
         .message_len = 4,
         .flags = LP_REC_TRUNCATED | LP_REC_PARTIAL,
         .lines = 3},
        {.ts_ns = 1795860000LL * LP_NS_PER_SEC,
         .offset = 77,
         .message = msg3,
         .message_len = sizeof(msg3) - 1,
         .flags = LP_REC_UTF8_REPLACED},
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
            enum agg_verdict verdict;
            json_t *ev = agg_pipeline_event(p, &srcs[si], &recs[ri], NULL, now, &b, &route,
                                            &verdict, &failed);
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
    check_fast_equals_slow(
        "aggregator:\n"
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
    check_fast_equals_slow(
        "aggregator:\n"
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
    struct lp_part *p = lp_part_new(3);
    struct lp_msg *m[6];
    for (int i = 0; i < 6; i++)
        m[i] = lp_part_push(p, 100 + i, 10, 1);
    CU_ASSERT_EQUAL(p->pending_bytes, 60);
    /* two outputs hold message 0: the worker and a bulk item */
    lp_msg_hold(m[0], 1);
    CU_ASSERT_EQUAL(lp_part_advance(p), 0);
    CU_ASSERT_EQUAL(p->next_store, -1);
    /* later messages finish first: nothing may be stored past message 0 */
    lp_msg_release(m[2]);
    lp_msg_release(m[1]);
    lp_msg_release(m[5]);
    CU_ASSERT_EQUAL(lp_part_advance(p), 0);
    CU_ASSERT_EQUAL(p->next_store, -1);
    lp_msg_release(m[0]); /* the worker */
    CU_ASSERT_EQUAL(lp_part_advance(p), 0);
    lp_msg_release(m[0]); /* the bulk item */
    CU_ASSERT_EQUAL(lp_part_advance(p), 1);
    CU_ASSERT_EQUAL(p->next_store, 103); /* 100..102 done; 103 still in flight */
    CU_ASSERT_EQUAL(p->pending_bytes, 30);
    CU_ASSERT_EQUAL(p->in_flight, 3);
    CU_ASSERT_FALSE(lp_part_idle(p));
    lp_msg_release(m[3]);
    lp_msg_release(m[4]);
    CU_ASSERT_EQUAL(lp_part_advance(p), 1);
    CU_ASSERT_EQUAL(p->next_store, 106);
    CU_ASSERT_TRUE(lp_part_idle(p));
    CU_ASSERT_EQUAL(p->pending_bytes, 0);
    /* offsets with gaps (compacted or transactional topics) */
    struct lp_msg *a = lp_part_push(p, 110, 1, 1);
    struct lp_msg *b = lp_part_push(p, 115, 1, 1);
    lp_msg_release(b);
    CU_ASSERT_EQUAL(lp_part_advance(p), 0);
    lp_msg_release(a);
    CU_ASSERT_EQUAL(lp_part_advance(p), 1);
    CU_ASSERT_EQUAL(p->next_store, 116);
    lp_part_free(p);
}

struct releaser {
    struct lp_msg **msgs;
    size_t n;
    size_t start, step;
};

static void *release_some(void *arg)
{
    struct releaser *r = arg;
    for (size_t i = r->start; i < r->n; i += r->step)
        lp_msg_release(r->msgs[i]);
    return NULL;
}

static void test_tracker_threads(void)
{
    enum { N = 20000 };
    struct lp_part *p = lp_part_new(0);
    struct lp_msg **msgs = calloc(N, sizeof(*msgs));
    for (size_t i = 0; i < N; i++)
        msgs[i] = lp_part_push(p, (int64_t)i, 1, 2);
    /* each message released once by each of two threads, in different orders */
    struct releaser r1 = {msgs, N, 0, 1}, r2 = {msgs, N, 0, 1};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, release_some, &r1);
    pthread_create(&t2, NULL, release_some, &r2);
    int64_t last = -1;
    int monotonic = 1;
    while (!lp_part_idle(p)) {
        lp_part_advance(p);
        if (p->next_store < last)
            monotonic = 0;
        last = p->next_store;
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CU_ASSERT_TRUE(monotonic);
    CU_ASSERT_EQUAL(p->next_store, N);
    free(msgs);
    lp_part_free(p);
}

/* ---- cost controls: drop, sample, rate limit ---- */

static const char *const FILES[] = {"files"};

static struct agg_pipeline *controls(const char *route_extra)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "aggregator:\n"
             "  routes:\n"
             "    - {name: noisy, match: [{field: kubernetes.namespace, prefix: noisy}], %s}\n"
             "  outputs: [{name: files, type: file, path: /tmp/x}]\n",
             route_extra);
    struct lp_config *c = load(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, FILES, 1, err, sizeof(err));
    lp_config_free(c); /* the pipeline keeps what it needs */
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static void test_drop_and_config(void)
{
    struct agg_pipeline *p = controls("drop: true");
    struct lp_wire_source noisy = {.source_id = "s1", .k8s_namespace = "noisy-batch"};
    struct lp_wire_source other = {.source_id = "s2", .k8s_namespace = "shop"};
    struct lp_wire_record r = {.ts_ns = 1, .message = "x", .message_len = 1};
    size_t route = agg_pipeline_match_record(p, &noisy, &r);
    CU_ASSERT_EQUAL(route, 0);
    CU_ASSERT_EQUAL(agg_pipeline_route(p, 0)->n_outputs, 0);
    CU_ASSERT_EQUAL(agg_pipeline_keep(p, route, &noisy, &r, NULL), AGG_DROP_ROUTE);
    route = agg_pipeline_match_record(p, &other, &r);
    CU_ASSERT_EQUAL(route, 1); /* default */
    CU_ASSERT_EQUAL(agg_pipeline_keep(p, route, &other, &r, NULL), AGG_KEEP);
    agg_pipeline_free(p);

    struct lp_buf errs;
    lp_buf_init(&errs, 0);
    const char *names[] = {"t.yaml"};
    const char *bad[] = {
        "aggregator:\n  routes:\n    - {name: a, drop: true, outputs: [files]}\n",
        "aggregator:\n  routes:\n    - {name: a}\n",
        "aggregator:\n  routes:\n    - {name: a, drop: true, sample: 1.5}\n",
        "aggregator:\n  routes:\n    - {name: a, drop: true, sample: 0.0000001}\n",
        "aggregator:\n  routes:\n    - {name: a, drop: true, rate_limit: {per: user}}\n",
    };
    const char *want[] = {
        "t.yaml:3:23: aggregator.routes[0]: a route that drops has no outputs",
        "t.yaml:3:7: aggregator.routes[0]: needs at least one output (or drop: true",
        "aggregator.routes[0].sample: '1.5' is out of range [0, 1]",
        "aggregator.routes[0].sample: expected a ratio (e.g. 0.1 or 10%), got '0.0000001'",
        "'user' is not one of namespace|pod|container|source|route",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lp_buf_reset(&errs);
        struct lp_config *c = lp_config_load_texts(names, &bad[i], 1, NULL, &errs);
        CU_ASSERT_PTR_NULL(c);
        lp_buf_putc(&errs, '\0');
        if (!strstr(errs.data, want[i]))
            fprintf(stderr, "\nwanted '%s' in:\n%s", want[i], errs.data);
        CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, want[i]));
        lp_config_free(c);
    }
    /* ratios: decimals and percentages, dumped as the shortest decimal */
    const char *ok[] = {"aggregator:\n  routes:\n    - {name: a, drop: true, sample: '10%'}\n"
                        "    - {name: b, drop: true, sample: .25}\n"
                        "    - {name: c, drop: true, sample: 0.000001}\n"
                        "    - {name: d, drop: true, sample: 0.5%}\n"};
    lp_buf_reset(&errs);
    struct lp_config *c = lp_config_load_texts(names, ok, 1, NULL, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->aggregator.routes[0].sample_ppm, 100000);
    CU_ASSERT_EQUAL(c->aggregator.routes[1].sample_ppm, 250000);
    CU_ASSERT_EQUAL(c->aggregator.routes[2].sample_ppm, 1);
    CU_ASSERT_EQUAL(c->aggregator.routes[3].sample_ppm, 5000);
    struct lp_buf dump;
    lp_buf_init(&dump, 0);
    lp_config_dump(c, "aggregator", 0, &dump);
    lp_buf_putc(&dump, '\0');
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "sample: 0.1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "sample: 0.25\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "sample: 0.000001\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "sample: 0.005\n"));
    lp_buf_release(&dump);
    lp_config_free(c);
    lp_buf_release(&errs);
}

/* Sampling is a function of the event id: the share holds, and a second
 * pipeline (a restarted aggregator replaying) keeps exactly the same events. */
static void test_sample_deterministic(void)
{
    struct agg_pipeline *a = controls("outputs: [files], sample: 0.1");
    struct agg_pipeline *b = controls("outputs: [files], sample: 0.1");
    struct agg_pipeline *none = controls("outputs: [files], sample: 0");
    struct lp_wire_source src = {.source_id = "0123456789abcdef0123456789abcdef",
                                 .k8s_namespace = "noisy"};
    size_t kept = 0, n = 100000;
    for (size_t i = 0; i < n; i++) {
        struct lp_wire_record r = {.ts_ns = 1, .offset = i * 97, .message = "x", .message_len = 1};
        enum agg_verdict va = agg_pipeline_keep(a, 0, &src, &r, NULL);
        CU_ASSERT_EQUAL(va, agg_pipeline_keep(b, 0, &src, &r, NULL));
        CU_ASSERT_EQUAL(agg_pipeline_keep(none, 0, &src, &r, NULL), AGG_DROP_SAMPLE);
        CU_ASSERT_EQUAL(agg_pipeline_keep(a, 1, &src, &r, NULL), AGG_KEEP); /* default */
        kept += va == AGG_KEEP;
        if (va != AGG_KEEP)
            CU_ASSERT_EQUAL(va, AGG_DROP_SAMPLE);
    }
    fprintf(stderr, " [kept %zu of %zu] ", kept, n);
    CU_ASSERT_TRUE(kept > n / 10 - n / 100 && kept < n / 10 + n / 100);
    agg_pipeline_free(a);
    agg_pipeline_free(b);
    agg_pipeline_free(none);
}

static enum agg_verdict at(struct agg_pipeline *p, const char *ns, const char *sid, double sec)
{
    struct lp_wire_source src = {.source_id = sid, .k8s_namespace = ns};
    struct lp_wire_record r = {.ts_ns = (int64_t)(sec * 1e9), .message = "x", .message_len = 1};
    return agg_pipeline_keep(p, 0, &src, &r, NULL);
}

static void test_rate_limit(void)
{
    struct agg_pipeline *p = controls("outputs: [files], rate_limit: {events_per_second: 5}");
    int kept_a = 0, kept_b = 0;
    for (int i = 0; i < 20; i++) {
        kept_a += at(p, "noisy-a", "s1", 1000.1 + i * 0.01) == AGG_KEEP;
        kept_b += at(p, "noisy-b", "s2", 1000.1 + i * 0.01) == AGG_KEEP;
    }
    CU_ASSERT_EQUAL(kept_a, 5); /* per namespace */
    CU_ASSERT_EQUAL(kept_b, 5);
    /* another source of the same namespace shares its window */
    CU_ASSERT_EQUAL(at(p, "noisy-a", "s3", 1000.9), AGG_DROP_RATE);
    /* the next second of the lines' time opens a new window; a late line
     * counts in the newest */
    CU_ASSERT_EQUAL(at(p, "noisy-a", "s1", 1001.0), AGG_KEEP);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(at(p, "noisy-a", "s1", 1000.5), AGG_KEEP);
    CU_ASSERT_EQUAL(at(p, "noisy-a", "s1", 1001.5), AGG_DROP_RATE);
    /* times before 1970 floor into their own second */
    CU_ASSERT_EQUAL(at(p, "noisy-c", "s4", -0.5), AGG_KEEP);
    agg_pipeline_free(p);

    /* per source, and a bounded number of keys: 50 sources through a
     * table of 8 keep working (the idle ones are forgotten) */
    p = controls("outputs: [files], rate_limit: {events_per_second: 1, per: source, max_keys: 8}");
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 50; k++) {
            char sid[16];
            snprintf(sid, sizeof(sid), "src-%d", k);
            CU_ASSERT_EQUAL(at(p, "noisy", sid, 5000 + round), AGG_KEEP);
            CU_ASSERT_EQUAL(at(p, "noisy", sid, 5000 + round), AGG_DROP_RATE);
        }
    agg_pipeline_free(p);
}

/* A route with a parser decides in agg_pipeline_event: one count per record. */
static void test_rate_limit_event_path(void)
{
    struct lp_config *c =
        load("aggregator:\n"
             "  parsers: [{name: js, kind: json}]\n"
             "  routes:\n"
             "    - {name: noisy, match: [{field: kubernetes.namespace, equals: n}],"
             " parser: js, outputs: [files], rate_limit: {events_per_second: 5}}\n"
             "  outputs: [{name: files, type: file, path: /tmp/x}]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, FILES, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct lp_wire_source src = {.source_id = "s", .k8s_namespace = "n"};
    struct lp_buf scratch;
    lp_buf_init(&scratch, 0);
    int kept = 0;
    for (int i = 0; i < 10; i++) {
        struct lp_wire_record r = {.ts_ns = 5 * LP_NS_PER_SEC,
                                   .offset = (uint64_t)i,
                                   .message = "{\"a\":1}",
                                   .message_len = 7};
        size_t route;
        int failed;
        enum agg_verdict v;
        CU_ASSERT_FALSE(agg_pipeline_route_fast(p, 0));
        json_t *ev = agg_pipeline_event(p, &src, &r, NULL, 0, &scratch, &route, &v, &failed);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        kept += v == AGG_KEEP;
        if (v == AGG_KEEP)
            CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "a")), 1);
        json_decref(ev);
    }
    CU_ASSERT_EQUAL(kept, 5);
    lp_buf_release(&scratch);
    agg_pipeline_free(p);
    lp_config_free(c);
}

struct rl_thread {
    struct agg_pipeline *p;
    int kept;
};

static void *rl_hammer(void *arg)
{
    struct rl_thread *t = arg;
    for (int i = 0; i < 5000; i++)
        t->kept += at(t->p, "noisy", "s", 77.0 + (i % 10) * 0.01) == AGG_KEEP;
    return NULL;
}

static void test_rate_limit_threads(void)
{
    struct agg_pipeline *p = controls("outputs: [files], rate_limit: {events_per_second: 1000}");
    pthread_t th[4];
    struct rl_thread t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct rl_thread){p, 0};
        pthread_create(&th[i], NULL, rl_hammer, &t[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += t[i].kept;
    }
    CU_ASSERT_EQUAL(total, 1000); /* exactly the limit, whichever thread */
    agg_pipeline_free(p);
}

/* A route on any string member of the source (lp_wire_source_fields) is
 * decided on the record, and alike on the event. */
static void test_source_fields_route(void)
{
    struct lp_wire_source src = {0};
    char values[32][48];
    CU_ASSERT_FATAL(lp_wire_n_source_fields <= 32);
    for (size_t i = 0; i < lp_wire_n_source_fields; i++) {
        snprintf(values[i], sizeof(values[i]), "v%zu", i);
        if (lp_wire_source_fields[i].kind == LP_WF_STR)
            *(const char **)(void *)((char *)&src + lp_wire_source_fields[i].off) = values[i];
    }
    src.source_id = "0123456789abcdef0123456789abcdef";
    struct lp_wire_record rec = {.ts_ns = 1, .offset = 7, .message = "m", .message_len = 1};
    int tested = 0;
    for (size_t i = 0; i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        if (f->kind != LP_WF_STR)
            continue;
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "aggregator:\n"
                 "  routes:\n"
                 "    - {name: hit, match: [{field: %s, equals: '%s'}], outputs: [files]}\n"
                 "  default_route: {outputs: [files]}\n"
                 "  outputs:\n"
                 "    - {name: files, type: file, path: /tmp/x}\n",
                 f->key, lp_wire_field_str(&src, f));
        struct lp_config *c = load(yaml);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        char err[256];
        struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, FILES, 1, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(agg_pipeline_match_record(p, &src, &rec), 0);
        struct lp_buf b = LP_BUF_INIT;
        size_t route;
        int failed;
        enum agg_verdict verdict;
        json_t *ev = agg_pipeline_event(p, &src, &rec, NULL, 1, &b, &route, &verdict, &failed);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        if (route != 0)
            fprintf(stderr, "\n%s: the event path took route %zu\n", f->key, route);
        CU_ASSERT_EQUAL(route, 0);
        json_decref(ev);
        lp_buf_release(&b);
        agg_pipeline_free(p);
        lp_config_free(c);
        tested++;
    }
    CU_ASSERT(tested >= 15);
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
        {"parser hints: only what the route allows", test_parser_hint_allow_list},
        {"index template body", test_template_body},
        {"fast path renders what the general path does", test_fast_path},
        {"drop routes, ratios", test_drop_and_config},
        {"sampling by event id survives a replay", test_sample_deterministic},
        {"rate limits by key and second of line time", test_rate_limit},
        {"rate limit from threads", test_rate_limit_threads},
        {"rate limit on the event path", test_rate_limit_event_path},
        {"tracker: out-of-order completions", test_tracker_out_of_order},
        {"tracker: completions from threads", test_tracker_threads},
        {"source fields route", test_source_fields_route},
        {NULL, NULL},
    };
    return lp_test_run("pipeline", tests);
}
