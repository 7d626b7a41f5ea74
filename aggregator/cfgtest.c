/* logpipe-aggregator --test (cfgtest.h). */
#include "cfgtest.h"
#include "pipeline.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_eventid.h"
#include "lp_json.h"
#include "lp_kv.h"
#include "lp_node.h"
#include "lp_time.h"
#include "lp_wire.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS LP_WIRE_MAX_LABELS
#define DEFAULT_SOURCE_ID "00000000000000000000000000c0ffee"

/* One case's source: the table's members, with label lists of its own. */
struct source {
    struct lp_wire_source src;
    struct lp_kv labels[3][MAX_LABELS];
    char *owner_kind;
};

/* What a scalar node says as text; NULL for null. */
static const char *text_of(const struct lp_node *n)
{
    return n && n->type == LP_NODE_SCALAR ? n->text : NULL;
}

static void set_labels(struct source *s, const struct lp_wire_field *f, size_t slot,
                       const struct lp_node *v, struct lp_buf *errs)
{
    if (v->type != LP_NODE_MAP) {
        lp_node_error(errs, v, "source.%s: expected a mapping of labels", f->key);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < v->n && n < MAX_LABELS; i++) {
        if (v->items[i]->type != LP_NODE_SCALAR) {
            lp_node_error(errs, v->items[i], "%s.%s: expected a string", f->key, v->keys[i]->text);
            continue;
        }
        s->labels[slot][n].key = v->keys[i]->text;
        s->labels[slot][n].value = v->items[i]->text;
        n++;
    }
    n = lp_wire_labels_normalize(s->labels[slot], n);
    *(const struct lp_kv **)(void *)((char *)&s->src + f->off) = s->labels[slot];
    *(size_t *)(void *)((char *)&s->src + f->aux) = n;
}

/* source: {<field path>: value, ...}, the paths of lp_wire_source_fields. */
static void read_source(struct source *s, const struct lp_node *map, struct lp_buf *errs)
{
    memset(s, 0, sizeof(*s));
    s->src.source_id = DEFAULT_SOURCE_ID;
    s->src.format = "cri";
    if (!map)
        return;
    if (map->type != LP_NODE_MAP) {
        lp_node_error(errs, map, "source: expected a mapping of event fields");
        return;
    }
    size_t slot = 0;
    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->keys[i]->text;
        const struct lp_node *v = map->items[i];
        const struct lp_wire_field *f = lp_wire_source_field(key);
        if (f && f->kind == LP_WF_LABELS) {
            set_labels(s, f, slot++, v, errs);
            continue;
        }
        const char *t = text_of(v);
        if (!t) {
            lp_node_error(errs, v, "source.%s: expected a string", key);
            continue;
        }
        if (f) {
            *(const char **)(void *)((char *)&s->src + f->off) = t;
            continue;
        }
        int owner = 0;
        for (size_t k = 0; k < LP_WIRE_OWNER_KINDS && !owner; k++) {
            char ok[64];
            snprintf(ok, sizeof(ok), "kubernetes.%s.name", lp_wire_owner_kinds[k]);
            if (strcmp(key, ok) == 0) {
                s->src.k8s_owner_kind = lp_wire_owner_kinds[k];
                s->src.k8s_owner_name = t;
                owner = 1;
            }
        }
        if (!owner)
            lp_node_error(errs, map->keys[i],
                          "source: '%s' is not a field the shipper sets (kubernetes.namespace, "
                          "kubernetes.pod.name, kubernetes.container.name, kubernetes.labels, "
                          "container.name, log.file.path, logpipe.parser, ...: docs/fields.md)",
                          key);
    }
}

struct expect {
    const char *route;
    const char *outcome; /* keep, route, sample, rate_limit */
    int parse_failed;    /* -1: not checked */
    const struct lp_node *fields, *absent, *not_contains;
};

static void read_expect(struct expect *e, const struct lp_node *map, struct lp_buf *errs)
{
    memset(e, 0, sizeof(*e));
    e->parse_failed = -1;
    if (!map)
        return;
    if (map->type != LP_NODE_MAP) {
        lp_node_error(errs, map, "expect: expected a mapping");
        return;
    }
    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->keys[i]->text;
        const struct lp_node *v = map->items[i];
        if (strcmp(key, "route") == 0) {
            e->route = text_of(v);
        } else if (strcmp(key, "outcome") == 0) {
            const char *t = text_of(v);
            if (!t || (strcmp(t, "keep") && strcmp(t, "drop") && strcmp(t, "sample") &&
                       strcmp(t, "rate_limit")))
                lp_node_error(errs, v, "expect.outcome: one of keep, drop, sample, rate_limit");
            e->outcome = t;
        } else if (strcmp(key, "parse_failed") == 0) {
            const char *t = text_of(v);
            e->parse_failed = t && strcmp(t, "true") == 0;
            if (!t || (strcmp(t, "true") && strcmp(t, "false")))
                lp_node_error(errs, v, "expect.parse_failed: true or false");
        } else if (strcmp(key, "fields") == 0) {
            if (v->type != LP_NODE_MAP)
                lp_node_error(errs, v, "expect.fields: a mapping of field path to value");
            else
                e->fields = v;
        } else if (strcmp(key, "absent") == 0 || strcmp(key, "not_contains") == 0) {
            if (v->type != LP_NODE_SEQ)
                lp_node_error(errs, v, "expect.%s: a list", key);
            else if (key[0] == 'a')
                e->absent = v;
            else
                e->not_contains = v;
        } else {
            lp_node_error(errs, map->keys[i],
                          "expect: unknown key '%s' (route, outcome, parse_failed, fields, "
                          "absent, not_contains)",
                          key);
        }
    }
}

/* The value at path as a route would match it (lp_json_scalar_text);
 * objects, arrays and null as JSON; NULL when absent. Heap. */
static char *value_text(json_t *v)
{
    const char *s;
    size_t n;
    char tmp[64];
    if (!v)
        return NULL;
    if (lp_json_scalar_text(v, &s, &n, tmp, sizeof(tmp)))
        return lp_xstrndup(s, n);
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *t = lp_xstrdup(d ? d : "?");
    free(d);
    return t;
}

static int check_line(const struct agg_pipeline *p, const struct source *s, const char *msg,
                      const char *stream, size_t lineno, const struct expect *e, struct lp_buf *out)
{
    struct lp_wire_record r = {.ts_ns = lp_time_real_ns(),
                               .stream = stream,
                               .offset = (uint64_t)lineno * 4096,
                               .message = msg,
                               .message_len = strlen(msg)};
    char id[LP_ID_HEX_LEN + 1];
    lp_event_id(s->src.source_id, strlen(s->src.source_id), r.offset, id);
    struct lp_buf scratch = LP_BUF_INIT;
    size_t route = 0;
    enum agg_verdict verdict = AGG_KEEP;
    int failed = 0;
    json_t *ev =
        agg_pipeline_event(p, &s->src, &r, id, r.ts_ns, &scratch, &route, &verdict, &failed);
    lp_buf_release(&scratch);
    if (!ev)
        abort(); /* out of memory */
    int bad = 0;
    const char *got_route = agg_pipeline_route(p, route)->name;
    if (e->route && strcmp(e->route, got_route) != 0) {
        lp_buf_appendf(out, "     line %zu: route: want %s, got %s\n", lineno, e->route, got_route);
        bad++;
    }
    const char *outcome = verdict == AGG_KEEP         ? "keep"
                          : verdict == AGG_DROP_ROUTE ? "drop"
                                                      : agg_verdict_names[verdict];
    if (e->outcome && strcmp(e->outcome, outcome) != 0) {
        lp_buf_appendf(out, "     line %zu: outcome: want %s, got %s\n", lineno, e->outcome,
                       outcome);
        bad++;
    }
    if (e->parse_failed >= 0 && e->parse_failed != (failed != 0)) {
        lp_buf_appendf(out, "     line %zu: parse_failed: want %s, got %s\n", lineno,
                       e->parse_failed ? "true" : "false", failed ? "true" : "false");
        bad++;
    }
    for (size_t i = 0; e->fields && i < e->fields->n; i++) {
        const char *path = e->fields->keys[i]->text;
        const char *want = text_of(e->fields->items[i]);
        char *got = value_text(lp_json_get_path(ev, path));
        if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0)) {
            lp_buf_appendf(out, "     line %zu: %s: want %s%s%s, got %s%s%s\n", lineno, path,
                           want ? "\"" : "", want ? want : "(absent)", want ? "\"" : "",
                           got ? "\"" : "", got ? got : "(absent)", got ? "\"" : "");
            bad++;
        }
        free(got);
    }
    for (size_t i = 0; e->absent && i < e->absent->n; i++) {
        const char *path = text_of(e->absent->items[i]);
        char *got = path ? value_text(lp_json_get_path(ev, path)) : NULL;
        if (got) {
            lp_buf_appendf(out, "     line %zu: %s: want (absent), got \"%s\"\n", lineno, path,
                           got);
            bad++;
        }
        free(got);
    }
    char *text = json_dumps(ev, JSON_COMPACT);
    for (size_t i = 0; e->not_contains && i < e->not_contains->n; i++) {
        const char *needle = text_of(e->not_contains->items[i]);
        if (needle && *needle && text && strstr(text, needle)) {
            lp_buf_appendf(out, "     line %zu: the event contains \"%s\"\n", lineno, needle);
            bad++;
        }
    }
    if (bad)
        lp_buf_appendf(out, "     line %zu: the event: %.2000s\n", lineno, text ? text : "?");
    free(text);
    json_decref(ev);
    return bad;
}

int agg_cfgtest_run(const struct lp_config *cfg, const char *path)
{
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_node *root = lp_node_parse_file(path, NULL, 0, NULL, &errs);
    const struct lp_node *cases = root ? lp_node_get(root, "tests") : NULL;
    if (root && (!cases || cases->type != LP_NODE_SEQ))
        lp_node_error(&errs, cases ? cases : root, "expected tests: a list of cases");
    const struct lp_config_aggregator *ac = &cfg->aggregator;
    const char **names = lp_xcalloc(ac->n_outputs ? ac->n_outputs : 1, sizeof(*names));
    for (size_t i = 0; i < ac->n_outputs; i++)
        names[i] = ac->outputs[i].name;
    char err[512] = "";
    struct agg_pipeline *p =
        errs.len ? NULL : agg_pipeline_new(ac, names, ac->n_outputs, err, sizeof(err));
    if (!errs.len && !p)
        lp_buf_appendf(&errs, "%s: the configuration's pipeline: %s\n", path, err);
    size_t n_cases = errs.len ? 0 : cases->n, failed = 0;
    struct source *s = lp_xcalloc(1, sizeof(*s));
    /* check the whole file first: a typo must not pass as a case that
     * expects nothing */
    for (size_t pass = 0; pass < 2 && !errs.len; pass++) {
        for (size_t c = 0; c < n_cases; c++) {
            const struct lp_node *tc = cases->items[c];
            if (tc->type != LP_NODE_MAP) {
                lp_node_error(&errs, tc, "tests[%zu]: expected a mapping", c);
                continue;
            }
            const char *name = text_of(lp_node_get(tc, "name"));
            const struct lp_node *lines = lp_node_get(tc, "lines");
            const char *stream = text_of(lp_node_get(tc, "stream"));
            for (size_t k = 0; pass == 0 && k < tc->n; k++) {
                const char *key = tc->keys[k]->text;
                if (strcmp(key, "name") && strcmp(key, "lines") && strcmp(key, "stream") &&
                    strcmp(key, "source") && strcmp(key, "expect"))
                    lp_node_error(&errs, tc->keys[k],
                                  "tests[%zu]: unknown key '%s' (name, source, lines, stream, "
                                  "expect)",
                                  c, key);
            }
            if (pass == 0 && !name)
                lp_node_error(&errs, tc, "tests[%zu]: needs a name", c);
            if (pass == 0 && (!lines || lines->type != LP_NODE_SEQ || !lines->n))
                lp_node_error(&errs, lines ? lines : tc, "tests[%zu]: needs lines: a list", c);
            read_source(s, lp_node_get(tc, "source"), &errs);
            struct expect e;
            read_expect(&e, lp_node_get(tc, "expect"), &errs);
            if (pass == 0 || errs.len)
                continue;
            struct lp_buf diff = LP_BUF_INIT;
            int bad = 0;
            for (size_t l = 0; l < lines->n; l++)
                bad += check_line(p, s, text_of(lines->items[l]) ? lines->items[l]->text : "",
                                  stream ? stream : "stdout", l + 1, &e, &diff);
            printf("%s %s (%s:%d:%d)\n%s", bad ? "FAIL" : "ok  ", name, tc->file, tc->line, tc->col,
                   diff.data);
            failed += bad != 0;
            lp_buf_release(&diff);
        }
    }
    int rc = 0;
    if (errs.len) {
        fputs(errs.data, stderr);
        rc = 2;
    } else {
        printf("%zu case%s, %zu failed\n", n_cases, n_cases == 1 ? "" : "s", failed);
        rc = failed ? 1 : 0;
    }
    free(s);
    agg_pipeline_free(p);
    free(names);
    lp_node_free(root);
    lp_buf_release(&errs);
    return rc;
}
