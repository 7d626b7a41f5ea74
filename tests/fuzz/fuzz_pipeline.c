/* libFuzzer: the aggregator's whole per-record path on an untrusted Kafka
 * message value: wire decode -> route -> parse -> enrich -> render -> bulk
 * action + document and segment line, under a configuration the first byte
 * picks. Traps when a rendered event is not valid JSON, when an owned field
 * differs from what the record and its source say, or when the bulk body
 * cannot be built, or when content a redaction rule takes survives it. The value is an NDJSON batch
 * (content-encoding identity: what the fuzzer can shape; the codecs have their own target). */
#include "lp_arena.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_ecs.h"
#include "lp_bulk.h"
#include "lp_error.h"
#include "lp_eventid.h"
#include "lp_msgparse.h"
#include "lp_time.h"
#include "lp_wire.h"
#include "pipeline.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const configs[] = {
    /* json everywhere, time from the line */
    "aggregator:\n"
    "  parsers: [{name: js, kind: json, time_field: time}]\n"
    "  default_route: {parser: js, outputs: [o]}\n"
    "  outputs: [{name: o, type: stdout}]\n",
    /* routes on the record, logfmt and regex parsers, enrichment */
    "aggregator:\n"
    "  parsers:\n"
    "    - {name: lf, kind: logfmt, time_field: ts, time_format: epoch}\n"
    "    - {name: re, kind: regex, pattern: '^(?<log__level>[A-Z]+) (?<msg>(a|aa)+.*)$'}\n"
    "  routes:\n"
    "    - {name: a, match: [{field: kubernetes.container.name, equals: nginx}], parser: lf, "
    "outputs: [o]}\n"
    "    - {name: b, match: [{field: message, regex: '^[A-Z]'}], parser: re, outputs: [o]}\n"
    "  default_route: {outputs: [o]}\n"
    "  enrich:\n"
    "    add_fields: {service.environment: fuzz}\n"
    "    rename: {msg: message.text}\n"
    "  outputs: [{name: o, type: stdout}]\n",
    /* syslog, marked failures, the raw line kept, tight caps */
    "aggregator:\n"
    "  parsers: [{name: sl, kind: syslog, on_failure: mark, keep_original: true}]\n"
    "  default_route: {parser: sl, outputs: [o]}\n"
    "  content: {max_fields: 20, max_depth: 3, max_future_skew: 1h, max_age: 1h}\n"
    "  outputs: [{name: o, type: stdout}]\n",
    /* json under a target, access logs, conditions on parsed-looking paths */
    "aggregator:\n"
    "  parsers:\n"
    "    - {name: js, kind: json, target: app, message_keys: [text]}\n"
    "    - {name: ac, kind: access}\n"
    "  routes:\n"
    "    - {name: web, match: [{field: stream, equals: stdout}], parser: ac, outputs: [o]}\n"
    "  default_route: {parser: js, outputs: [o]}\n"
    "  content: {kept_field: logpipe.app_kept}\n"
    "  outputs: [{name: o, type: stdout}]\n",
    /* cost controls and redaction: every detector, a pattern with groups,
     * a rule on named fields; SECRET never survives in content (below) */
    "aggregator:\n"
    "  parsers: [{name: js, kind: json, keep_original: true, on_failure: mark}]\n"
    "  routes:\n"
    "    - {name: gone, match: [{field: stream, equals: stderr}], drop: true}\n"
    "    - {name: some, match: [{field: message, prefix: s}], sample: 0.5, outputs: [o]}\n"
    "    - {name: limited, match: [{field: message, prefix: r}], outputs: [o],\n"
    "       rate_limit: {events_per_second: 3, per: pod, max_keys: 4}}\n"
    "  default_route: {parser: js, outputs: [o]}\n"
    "  redact:\n"
    "    - {name: s, pattern: 'SECRET'}\n"
    "    - {name: e, detector: email}\n"
    "    - {name: i4, detector: ipv4}\n"
    "    - {name: i6, detector: ipv6}\n"
    "    - {name: c, detector: card}\n"
    "    - {name: b, detector: bearer}\n"
    "    - {name: j, detector: jwt}\n"
    "    - {name: k, detector: aws_key}\n"
    "    - {name: g, pattern: '(?<k>pw|pass)=(\\S+)', replacement: '$${k}=*** $1'}\n"
    "    - {name: f, pattern: '[0-9]+', fields: [user, http]}\n"
    "  outputs: [{name: o, type: stdout}]\n",
};
#define N_CONFIGS (sizeof(configs) / sizeof(configs[0]))
#define REDACT_CONFIG 4 /* the one whose rules take SECRET */

static struct lp_config *cfgs[N_CONFIGS];
static struct agg_pipeline *pipes[N_CONFIGS];

static void init(void)
{
    for (size_t i = 0; i < N_CONFIGS; i++) {
        struct lp_buf errs = LP_BUF_INIT;
        const char *names[] = {"fuzz.yaml"};
        const char *texts[] = {configs[i]};
        cfgs[i] = lp_config_load_texts(names, texts, 1, NULL, &errs);
        if (!cfgs[i]) {
            fprintf(stderr, "config %zu: %s\n", i, errs.data);
            abort();
        }
        lp_buf_release(&errs);
        const char *outs[] = {"o"};
        char err[256];
        if (!(pipes[i] = agg_pipeline_new(&cfgs[i]->aggregator, outs, 1, err, sizeof(err)))) {
            fprintf(stderr, "pipeline %zu: %s\n", i, err);
            abort();
        }
    }
}

static int same_str(json_t *ev, const char *path, const char *want)
{
    json_t *v = lp_json_get_path(ev, path);
    if (!want)
        return v == NULL;
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* What the pipeline owns is what the record and its source say (the
 * configurations above rename or remove none of it). */
static void check_owned(const struct lp_wire_source *s, const struct lp_wire_record *r, json_t *ev)
{
    char id[LP_ID_HEX_LEN + 1];
    lp_event_id(s->source_id, strlen(s->source_id), r->offset, id);
    json_t *off = lp_json_get_path(ev, "log.offset");
    if (!same_str(ev, "event.id", id) || !json_is_integer(off) ||
        (uint64_t)json_integer_value(off) != r->offset ||
        !same_str(ev, "logpipe.source_id", s->source_id) || !same_str(ev, "host.name", s->host) ||
        !same_str(ev, "log.file.path", s->path) ||
        !same_str(ev, "kubernetes.namespace", s->k8s_namespace) ||
        !same_str(ev, "kubernetes.pod.name", s->k8s_pod_name) ||
        !same_str(ev, "container.id", s->container_id) ||
        !same_str(ev, "container.image.name", s->container_image) ||
        !same_str(ev, "kubernetes.node.name", s->k8s_node_name) ||
        !same_str(ev, "stream", r->stream))
        __builtin_trap(); /* content changed an owned field */
    /* @timestamp: the runtime's, or a time within the configured bounds */
    json_t *ts = json_object_get(ev, "@timestamp");
    int64_t ns;
    if (!json_is_string(ts) ||
        lp_time_parse_rfc3339(json_string_value(ts), json_string_length(ts), &ns))
        __builtin_trap();
    if (ns > r->ts_ns + 366LL * 86400 * LP_NS_PER_SEC)
        __builtin_trap(); /* past every skew bound the configurations allow */
}

/* No string or key the line's content made holds SECRET (what the pipeline
 * owns may: it comes from the source, which no rule touches). */
static void check_redacted(json_t *v, const char *path)
{
    const char *k;
    json_t *x;
    size_t i;
    int content = !path || strcmp(path, "message") == 0 || strcmp(path, "event.original") == 0 ||
                  strncmp(path, "logpipe.kept", 12) == 0 || !lp_ecs_owned(path);
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (content && memmem(json_string_value(v), json_string_length(v), "SECRET", 6))
            __builtin_trap(); /* redaction let content through */
        break;
    case JSON_OBJECT:
        json_object_foreach(v, k, x)
        {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s%s%s", path ? path : "", path ? "." : "", k);
            if (strstr(k, "SECRET") && (!path || content) && !lp_ecs_owned(sub))
                __builtin_trap();
            check_redacted(x, sub);
        }
        break;
    case JSON_ARRAY: json_array_foreach(v, i, x) check_redacted(x, path); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pipes[0])
        init();
    if (size < 1)
        return 0;
    size_t ci = data[0] % N_CONFIGS;
    const struct agg_pipeline *p = pipes[ci];
    struct lp_wire_meta meta = {LP_WIRE_FORMAT, 1, LP_CODEC_IDENTITY, 0};
    struct lp_buf scratch = LP_BUF_INIT, doc = LP_BUF_INIT;
    struct lp_arena arena;
    lp_arena_init(&arena, 0, 8 << 20);
    struct lp_wire_batch b;
    char why[256];
    if (lp_wire_decode(&meta, data + 1, size - 1, 1 << 20, NULL, &scratch, &arena, &b, why,
                       sizeof(why)) == 0) {
        struct lp_bulk bulk;
        lp_bulk_init(&bulk, 64 << 20);
        int64_t now = 1795860000LL * LP_NS_PER_SEC;
        for (size_t i = 0; i < b.n; i++) {
            const struct lp_wire_record *r = &b.recs[i];
            size_t route = agg_pipeline_match_record(p, &b.src, r);
            char *text;
            json_t *ev = NULL;
            int failed;
            enum agg_verdict verdict;
            int fast = route != SIZE_MAX && agg_pipeline_fast(p, route, &b.src);
            if (fast && agg_pipeline_keep(p, route, &b.src, r, NULL) != AGG_KEEP)
                continue;
            if (fast) {
                lp_buf_reset(&doc);
                if (agg_pipeline_render(p, &b.src, r, NULL, NULL, &doc))
                    __builtin_trap();
                text = strndup(doc.data, doc.len);
            } else {
                ev = agg_pipeline_event(p, &b.src, r, NULL, now, &doc, &route, &verdict, &failed);
                if (!ev)
                    __builtin_trap(); /* only out of memory may fail */
                if (verdict != AGG_KEEP) {
                    json_decref(ev);
                    continue;
                }
                text = json_dumps(ev, JSON_COMPACT);
            }
            if (!text)
                __builtin_trap();
            /* valid JSON, whatever the line held: the segment line and the bulk document */
            json_t *back = json_loads(text, JSON_ALLOW_NUL, NULL);
            if (!json_is_object(back))
                __builtin_trap();
            check_owned(&b.src, r, back);
            if (ci == REDACT_CONFIG)
                check_redacted(back, NULL);
            char index[256], id[LP_ID_HEX_LEN + 1];
            lp_event_id(b.src.source_id, strlen(b.src.source_id), r->offset, id);
            if (lp_index_name("logs-{kubernetes.namespace}-%Y.%m.%d", back, now, index,
                              sizeof(index)) == 0 &&
                lp_bulk_add(&bulk, index, id, text, strlen(text)) == LP_EINVAL)
                __builtin_trap();
            json_decref(back);
            json_decref(ev);
            free(text);
        }
        lp_bulk_release(&bulk);
    }
    lp_buf_release(&scratch);
    lp_buf_release(&doc);
    lp_arena_release(&arena);
    return 0;
}
