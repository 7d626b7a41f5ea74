/* The per-event pipeline: ECS event, route, parse, enrich (pipeline.h). */
#include "pipeline.h"
#include "lp_error.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_ecs.h"
#include "lp_eventid.h"
#include "lp_idmap.h"
#include "lp_metrics.h"
#include "lp_msgparse.h"
#include "lp_regex.h"
#include "lp_time.h"
#include "lp_wire.h"
#include "redact.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

enum match_op { OP_EQUALS, OP_PREFIX, OP_REGEX, OP_EXISTS };

struct cond {
    char *field;
    int rec_field; /* rec_field_of(field) */
    enum match_op op;
    char *value;
    size_t value_len;
    pcre2_code *re;
    int negate;
};

struct named_parser;

enum rl_per { RL_NAMESPACE, RL_POD, RL_CONTAINER, RL_SOURCE, RL_ROUTE };

/* One key's window of a rate limit. */
struct rl_win {
    uint64_t h1, h2; /* the key's hash */
    int64_t sec;     /* the second of the lines' time it counts */
    int64_t count;
    uint64_t used; /* the limiter's clock at the last use */
};

/* A route's rate limit: windows by key, looked up by the key's hash. */
struct ratelimit {
    int64_t eps;
    enum rl_per per;
    size_t max_keys;
    pthread_mutex_t mu;
    struct lp_idmap map; /* (h1, h2) -> index + 1 in wins */
    struct rl_win *wins;
    size_t n, cap;
    uint64_t clock;
};

struct route {
    struct agg_route_info info;
    char *name;
    struct cond *conds;
    size_t n_conds;
    const struct lp_msgparser *parser; /* borrowed from the pipeline's list */
    const struct named_parser *np;
    const char *parser_name;
    const struct named_parser **hints; /* what logpipe.io/parser may pick here */
    size_t n_hints;
    size_t *outputs;
    int fast; /* rendered straight from the record (no parser, no object edits) */
    int drop;
    uint64_t sample_below; /* kept when the id's first 64 bits are below (UINT64_MAX: all) */
    struct ratelimit *rl;  /* NULL: none */
};

struct named_parser {
    char *name;
    struct lp_msgparser *p;
    char **message_keys;
    size_t n_message_keys;
    int keep_original;
    int mark_failures;
};

struct agg_pipeline {
    struct named_parser *parsers;
    size_t n_parsers;
    struct route *routes; /* n_routes + 1: the default route last */
    size_t n_routes;
    struct lp_kvlist add; /* field → value (env already resolved) */
    struct lp_kvlist rename;
    struct lp_kvlist copy;
    char **remove;
    size_t n_remove;
    int normalize_level;
    int ingest_time;
    int match_fast; /* every condition can be decided on the record */
    char *extra;    /* the static fields, rendered once: `"k":v,...` */
    size_t extra_len;
    /* what content may do (aggregator.content) */
    struct lp_ecs_merge_opts merge;
    char *kept_field;
    int64_t max_future_skew_ns;
    int64_t max_age_ns;         /* 0: none */
    struct lp_metrics *metrics; /* NULL: not counted */
    struct lp_counter *c_kept_reason[5];
    struct lp_counter *c_time_refused[3]; /* future, past, unparsable */
    struct agg_redactor *redact;          /* NULL: no rules */
    struct lp_counter *c_hint_unknown, *c_hint_refused;
};

const char *const agg_verdict_names[AGG_VERDICTS] = {"", "route", "sample", "rate_limit"};

static const struct named_parser *find_parser(const struct agg_pipeline *p, const char *name)
{
    for (size_t i = 0; name && i < p->n_parsers; i++)
        if (strcmp(p->parsers[i].name, name) == 0)
            return &p->parsers[i];
    return NULL;
}

static int resolve_outputs(struct route *r, char *const *names, size_t n,
                           const char *const *output_names, size_t n_outputs, char *err,
                           size_t errlen)
{
    size_t count = n ? n : n_outputs;
    r->outputs = lp_xcalloc(count ? count : 1, sizeof(size_t));
    for (size_t i = 0; i < count; i++) {
        if (!n) {
            r->outputs[i] = i;
            continue;
        }
        size_t k = 0;
        while (k < n_outputs && strcmp(output_names[k], names[i]) != 0)
            k++;
        if (k == n_outputs) {
            snprintf(err, errlen, "route %s: no output named '%s'", r->name, names[i]);
            return LP_ECONFIG;
        }
        r->outputs[i] = k;
    }
    r->info.outputs = r->outputs;
    r->info.n_outputs = count;
    return 0;
}

/* ---- the fast path ----
 * Most events need no parser and no object-level edits: they are the ECS
 * rendering of the record plus event.ingested and the static fields. Those
 * are written straight from the record (no JSON object built, parsed or
 * dumped), and routes whose conditions name the record's own fields are
 * decided on the record. The result is the event the general path produces,
 * member for member and in the same order (tests/unit/test_pipeline.c
 * compares them; only the letter case of \u escapes may differ). */

/* The members lp_wire_ecs_event writes at the top level. */
static const char *const ecs_top[] = {"@timestamp", "message",   "stream",     "event",  "log",
                                      "host",       "container", "kubernetes", "logpipe"};

/* Fields whose value is a plain scalar of the record: the record's own
 * (below) or a string member of the source (lp_wire_source_fields, whose
 * row is the field's id + RF_SOURCE). */
enum rec_field { RF_NONE = -1, RF_MESSAGE, RF_STREAM, RF_OFFSET, RF_SOURCE };

static int rec_field_of(const char *f)
{
    if (strcmp(f, "message") == 0)
        return RF_MESSAGE;
    if (strcmp(f, "stream") == 0)
        return RF_STREAM;
    if (strcmp(f, "log.offset") == 0)
        return RF_OFFSET;
    const struct lp_wire_field *wf = lp_wire_source_field(f);
    if (wf && wf->kind == LP_WF_STR)
        return RF_SOURCE + (int)(wf - lp_wire_source_fields);
    return RF_NONE;
}

/* 1 when a condition on f can be decided on the record: a scalar of it, or a
 * path outside every member the ECS writer renders (always missing there).
 * Anything else under those members — objects, computed members such as
 * @timestamp, event.id, logpipe.flags, maps such as container.labels.* —
 * needs the event. */
static int field_decidable(const char *f)
{
    if (rec_field_of(f) != RF_NONE)
        return 1;
    size_t top = strcspn(f, ".");
    for (size_t i = 0; i < sizeof(ecs_top) / sizeof(ecs_top[0]); i++)
        if (strlen(ecs_top[i]) == top && strncmp(f, ecs_top[i], top) == 0)
            return 0;
    return 1;
}

static void plan_fast_path(struct agg_pipeline *p)
{
    int object_edits = p->rename.n || p->copy.n || p->n_remove;
    json_t *extra = json_object();
    for (size_t i = 0; i < p->add.n && !object_edits; i++) {
        const char *k = p->add.items[i].key;
        size_t top = strcspn(k, ".");
        for (size_t t = 0; t < sizeof(ecs_top) / sizeof(ecs_top[0]); t++)
            if (strlen(ecs_top[t]) == top && strncmp(k, ecs_top[t], top) == 0)
                object_edits = 1; /* merges into a rendered object */
        static const char *const levels[] = {"level", "severity", "loglevel", "lvl"};
        for (size_t t = 0; p->normalize_level && t < sizeof(levels) / sizeof(levels[0]); t++)
            if (strcmp(k, levels[t]) == 0)
                object_edits = 1; /* would be normalised into log.level */
        lp_json_set_path(extra, k, json_string(p->add.items[i].value));
    }
    if (!object_edits && json_object_size(extra)) {
        char *s = json_dumps(extra, JSON_COMPACT);
        if (!s)
            abort();
        size_t n = strlen(s);
        p->extra_len = n - 2; /* without the braces */
        p->extra = lp_xmalloc(n);
        memcpy(p->extra, s + 1, p->extra_len);
        free(s);
    }
    json_decref(extra);
    p->match_fast = 1;
    for (size_t i = 0; i < p->n_routes; i++) {
        struct route *r = &p->routes[i];
        r->fast = !r->parser && !object_edits;
        for (size_t k = 0; k < r->n_conds; k++)
            p->match_fast &= field_decidable(r->conds[k].field);
    }
}

static int rec_value(const struct lp_wire_source *s, const struct lp_wire_record *r, int f,
                     const char **v, size_t *n, char *tmp, size_t tmplen)
{
    const char *x;
    switch (f) {
    case RF_NONE: return 0;
    case RF_MESSAGE:
        *v = r->message;
        *n = r->message_len;
        return 1;
    case RF_OFFSET:
        *n = (size_t)snprintf(tmp, tmplen, "%llu", (unsigned long long)r->offset);
        *v = tmp;
        return 1;
    case RF_STREAM: x = r->stream; break;
    default: x = lp_wire_field_str(s, &lp_wire_source_fields[f - RF_SOURCE]); break;
    }
    if (!x)
        return 0;
    *v = x;
    *n = strlen(x);
    return 1;
}

/* A condition on a field's scalar text v[0..n) (found = 0: the field is
 * missing), shared by the record and the event paths. */
static int cond_test(const struct cond *c, int found, const char *v, size_t n)
{
    int res;
    if (c->op == OP_EXISTS)
        res = found;
    else if (!found)
        res = 0;
    else if (c->op == OP_EQUALS)
        res = n == c->value_len && memcmp(v, c->value, n) == 0;
    else if (c->op == OP_PREFIX)
        res = n >= c->value_len && memcmp(v, c->value, c->value_len) == 0;
    else {
        res = lp_regex_match(c->re, v, n, NULL) >= 0; /* over the limit: no match */
    }
    return c->negate ? !res : res;
}

static int cond_holds_rec(const struct cond *c, const struct lp_wire_source *s,
                          const struct lp_wire_record *r)
{
    const char *v = NULL;
    size_t n = 0;
    char tmp[32];
    int found = rec_value(s, r, c->rec_field, &v, &n, tmp, sizeof(tmp));
    return cond_test(c, found, v, n);
}

size_t agg_pipeline_match_record(const struct agg_pipeline *p, const struct lp_wire_source *s,
                                 const struct lp_wire_record *r)
{
    if (!p->match_fast)
        return SIZE_MAX;
    for (size_t i = 0; i + 1 < p->n_routes; i++) {
        const struct route *rt = &p->routes[i];
        size_t k = 0;
        while (k < rt->n_conds && cond_holds_rec(&rt->conds[k], s, r))
            k++;
        if (k == rt->n_conds)
            return i;
    }
    return p->n_routes - 1;
}

int agg_pipeline_route_fast(const struct agg_pipeline *p, size_t route)
{
    return p->routes[route].fast;
}

/* The parser a source's hint names for route rt: NULL when there is no
 * hint, the route has its own parser, the aggregator knows no such parser
 * (*why = "unknown") or the route does not let pods pick it (*why =
 * "refused": hint_parsers). */
static const struct named_parser *hinted_parser(const struct agg_pipeline *p,
                                                const struct route *rt,
                                                const struct lp_wire_source *src, const char **why)
{
    *why = NULL;
    if (rt->parser || !src->parser)
        return NULL;
    const struct named_parser *np = find_parser(p, src->parser);
    if (!np) {
        *why = "unknown";
        return NULL;
    }
    for (size_t i = 0; i < rt->n_hints; i++)
        if (rt->hints[i] == np)
            return np;
    *why = "refused";
    return NULL;
}

int agg_pipeline_fast(const struct agg_pipeline *p, size_t route, const struct lp_wire_source *src)
{
    const char *why;
    return p->routes[route].fast && !hinted_parser(p, &p->routes[route], src, &why);
}

const char *agg_pipeline_ingested(const struct agg_pipeline *p, int64_t now_ns,
                                  char buf[LP_RFC3339_MAX])
{
    if (!p->ingest_time)
        return NULL;
    lp_time_format_rfc3339(now_ns, 3, buf);
    return buf;
}

int agg_pipeline_render(const struct agg_pipeline *p, const struct lp_wire_source *src,
                        const struct lp_wire_record *r, const char *event_id, const char *ingested,
                        struct lp_buf *out)
{
    const char *m;
    size_t mn;
    if (p->redact && agg_redact_message(p->redact, r->message, r->message_len, &m, &mn)) {
        struct lp_wire_record red = *r;
        red.message = m;
        red.message_len = mn;
        red.message_json = NULL; /* the escaped copy is of the original */
        red.message_json_len = 0;
        return lp_wire_ecs_event_ext(src, &red, event_id, ingested, p->extra, p->extra_len, out);
    }
    return lp_wire_ecs_event_ext(src, r, event_id, ingested, p->extra, p->extra_len, out);
}

const struct agg_redactor *agg_pipeline_redactor(const struct agg_pipeline *p)
{
    return p->redact;
}

/* ---- cost controls ---- */

static struct ratelimit *ratelimit_new(const struct lp_config_rate_limit *c)
{
    if (c->events_per_second <= 0)
        return NULL;
    struct ratelimit *rl = lp_xcalloc(1, sizeof(*rl));
    rl->eps = c->events_per_second;
    static const char *const pers[] = {"namespace", "pod", "container", "source", "route"};
    for (size_t i = 0; i < sizeof(pers) / sizeof(pers[0]); i++)
        if (c->per && strcmp(c->per, pers[i]) == 0)
            rl->per = (enum rl_per)i;
    rl->max_keys = c->max_keys > 0 ? (size_t)c->max_keys : 10000;
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

static void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    lp_idmap_release(&rl->map);
    free(rl->wins);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Full: forgets the half of the keys idle longest (amortised: one sort per
 * max_keys / 2 new keys). Under rl->mu. */
static void ratelimit_evict(struct ratelimit *rl)
{
    uint64_t *used = lp_xreallocarray(NULL, rl->n, sizeof(*used));
    for (size_t i = 0; i < rl->n; i++)
        used[i] = rl->wins[i].used;
    qsort(used, rl->n, sizeof(*used), cmp_u64_desc);
    uint64_t keep_from = used[rl->n / 2 > 0 ? rl->n / 2 - 1 : 0];
    free(used);
    size_t k = 0;
    for (size_t i = 0; i < rl->n; i++)
        if (rl->wins[i].used >= keep_from && k < rl->max_keys / 2 + 1)
            rl->wins[k++] = rl->wins[i];
    rl->n = k;
    lp_idmap_clear(&rl->map);
    for (size_t i = 0; i < rl->n; i++)
        lp_idmap_put(&rl->map, rl->wins[i].h1, rl->wins[i].h2, i + 1);
}

/* 1 when the record fits in its key's window. */
static int ratelimit_admit(struct ratelimit *rl, const struct lp_wire_source *src,
                           const struct lp_wire_record *r)
{
    char key[600];
    const char *sid = src->source_id ? src->source_id : "";
    switch (rl->per) {
    case RL_NAMESPACE:
        snprintf(key, sizeof(key), "n|%s", src->k8s_namespace ? src->k8s_namespace : sid);
        break;
    case RL_POD:
        if (src->k8s_namespace && src->k8s_pod_name)
            snprintf(key, sizeof(key), "p|%s/%s", src->k8s_namespace, src->k8s_pod_name);
        else
            snprintf(key, sizeof(key), "p|%s", sid);
        break;
    case RL_CONTAINER:
        snprintf(key, sizeof(key), "c|%s", src->container_id ? src->container_id : sid);
        break;
    case RL_SOURCE: snprintf(key, sizeof(key), "s|%s", sid); break;
    case RL_ROUTE: snprintf(key, sizeof(key), "r|"); break;
    }
    XXH128_hash_t h = XXH3_128bits(key, strlen(key));
    /* the second of the line's own time, floored */
    int64_t sec = r->ts_ns / 1000000000 - (r->ts_ns % 1000000000 < 0);
    pthread_mutex_lock(&rl->mu);
    size_t i = lp_idmap_get(&rl->map, h.low64, h.high64);
    if (!i) {
        if (rl->n >= rl->max_keys)
            ratelimit_evict(rl);
        LP_ALLOC_GROW(rl->wins, rl->n + 1, rl->cap, 64);
        rl->wins[rl->n] = (struct rl_win){h.low64, h.high64, sec, 0, 0};
        i = ++rl->n;
        lp_idmap_put(&rl->map, h.low64, h.high64, i);
    }
    struct rl_win *w = &rl->wins[i - 1];
    w->used = ++rl->clock;
    if (sec > w->sec) {
        w->sec = sec;
        w->count = 0;
    }
    int ok = w->count < rl->eps; /* a late line counts in the newest window */
    if (ok)
        w->count++;
    pthread_mutex_unlock(&rl->mu);
    return ok;
}

/* The first 64 bits of a hex event id. */
static uint64_t id_bits(const char *id)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 16 && id[i]; i++) {
        char c = id[i];
        v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
    }
    return v;
}

enum agg_verdict agg_pipeline_keep(const struct agg_pipeline *p, size_t route,
                                   const struct lp_wire_source *src, const struct lp_wire_record *r,
                                   const char *event_id)
{
    const struct route *rt = &p->routes[route];
    if (rt->drop)
        return AGG_DROP_ROUTE;
    if (rt->sample_below != UINT64_MAX) {
        char id[LP_ID_HEX_LEN + 1];
        if (!event_id) {
            const char *sid = src->source_id ? src->source_id : "";
            lp_event_id(sid, strlen(sid), r->offset, id);
            event_id = id;
        }
        if (id_bits(event_id) >= rt->sample_below)
            return AGG_DROP_SAMPLE;
    }
    if (rt->rl && !ratelimit_admit(rt->rl, src, r))
        return AGG_DROP_RATE;
    return AGG_KEEP;
}

/* The id bits below which an event is in a sample of ppm millionths. */
static uint64_t sample_threshold(int64_t ppm)
{
    if (ppm >= LP_RATIO_ONE)
        return UINT64_MAX;
    if (ppm <= 0)
        return 0;
    return (uint64_t)ppm * (UINT64_MAX / LP_RATIO_ONE);
}

static int add_parser(struct agg_pipeline *p, const struct lp_config_parser *c, char *err,
                      size_t errlen)
{
    struct lp_msgparser_config pc = {c->kind, c->pattern, c->target, c->time_field, c->time_format};
    char why[256];
    struct lp_msgparser *mp = lp_msgparser_new(&pc, why, sizeof(why));
    if (!mp) {
        snprintf(err, errlen, "parser %s: %s", c->name, why);
        return LP_ECONFIG;
    }
    struct named_parser *np = &p->parsers[p->n_parsers++];
    np->name = lp_xstrdup(c->name);
    np->p = mp;
    static const char *const def_keys[] = LP_DEFAULT_MESSAGE_KEYS;
    size_t nk = c->n_message_keys ? c->n_message_keys : sizeof(def_keys) / sizeof(def_keys[0]);
    np->message_keys = lp_xcalloc(nk, sizeof(char *));
    for (size_t k = 0; k < nk; k++)
        np->message_keys[k] = lp_xstrdup(c->n_message_keys ? c->message_keys[k] : def_keys[k]);
    np->n_message_keys = nk;
    np->keep_original = c->keep_original;
    np->mark_failures = c->on_failure && strcmp(c->on_failure, "mark") == 0;
    return 0;
}

/* A route's match conditions, compiled. */
static int add_conds(struct route *r, const struct lp_config_route *cr, char *err, size_t errlen)
{
    r->conds = lp_xcalloc(cr->n_match + 1, sizeof(*r->conds));
    for (size_t k = 0; k < cr->n_match; k++) {
        const struct lp_config_match *m = &cr->match[k];
        struct cond *c = &r->conds[r->n_conds++];
        c->field = lp_xstrdup(m->field);
        c->rec_field = rec_field_of(c->field);
        c->negate = m->negate;
        if (m->equals) {
            c->op = OP_EQUALS;
            c->value = lp_xstrdup(m->equals);
        } else if (m->prefix) {
            c->op = OP_PREFIX;
            c->value = lp_xstrdup(m->prefix);
        } else if (m->regex) {
            char what[128];
            snprintf(what, sizeof(what), "route %s match %zu", r->name, k);
            c->op = OP_REGEX;
            c->re = lp_regex_compile(m->regex, what, err, errlen);
            if (!c->re)
                return LP_ECONFIG;
        } else {
            c->op = OP_EXISTS;
        }
        c->value_len = c->value ? strlen(c->value) : 0;
    }
    return 0;
}

/* Route i of the configuration, or the default route (i == n_routes). */
static int add_route(struct agg_pipeline *p, const struct lp_config_aggregator *cfg, size_t i,
                     const char *const *output_names, size_t n_outputs, char *err, size_t errlen)
{
    struct route *r = &p->routes[i];
    p->n_routes = i + 1;
    int is_default = i == cfg->n_routes;
    const char *pname = is_default ? cfg->default_route.parser : cfg->routes[i].parser;
    r->name = lp_xstrdup(is_default ? "default" : cfg->routes[i].name);
    r->info.name = r->name;
    r->np = find_parser(p, pname);
    r->parser = r->np ? r->np->p : NULL;
    r->parser_name = r->np ? r->np->name : NULL;
    if (pname && !r->parser) {
        snprintf(err, errlen, "route %s: no parser named '%s'", r->name, pname);
        return LP_ECONFIG;
    }
    char *const *hints = is_default ? cfg->default_route.hint_parsers : cfg->routes[i].hint_parsers;
    size_t n_hints = is_default ? cfg->default_route.n_hint_parsers : cfg->routes[i].n_hint_parsers;
    r->hints = lp_xcalloc(n_hints + 1, sizeof(*r->hints));
    for (size_t k = 0; k < n_hints; k++) {
        if (!(r->hints[r->n_hints] = find_parser(p, hints[k]))) {
            snprintf(err, errlen, "route %s: hint_parsers: no parser named '%s'", r->name,
                     hints[k]);
            return LP_ECONFIG;
        }
        r->n_hints++;
    }
    if (is_default) {
        r->sample_below = UINT64_MAX;
        return resolve_outputs(r, cfg->default_route.outputs, cfg->default_route.n_outputs,
                               output_names, n_outputs, err, errlen);
    }
    const struct lp_config_route *cr = &cfg->routes[i];
    r->drop = cr->drop;
    r->sample_below = sample_threshold(cr->sample_ppm);
    r->rl = ratelimit_new(&cr->rate_limit);
    if (cr->drop) {
        r->outputs = lp_xcalloc(1, sizeof(size_t));
        r->info.outputs = r->outputs;
        r->info.n_outputs = 0;
    } else if (resolve_outputs(r, cr->outputs, cr->n_outputs, output_names, n_outputs, err,
                               errlen)) {
        return LP_ECONFIG;
    }
    return add_conds(r, cr, err, errlen);
}

static void setup_enrich(struct agg_pipeline *p, const struct lp_config_enrich *e)
{
    for (size_t i = 0; i < e->add_fields.n; i++)
        lp_kvlist_set(&p->add, e->add_fields.items[i].key, e->add_fields.items[i].value);
    for (size_t i = 0; i < e->env_fields.n; i++) {
        const char *v = getenv(e->env_fields.items[i].value);
        if (v)
            lp_kvlist_set(&p->add, e->env_fields.items[i].key, v);
    }
    for (size_t i = 0; i < e->rename.n; i++)
        lp_kvlist_set(&p->rename, e->rename.items[i].key, e->rename.items[i].value);
    for (size_t i = 0; i < e->copy.n; i++)
        lp_kvlist_set(&p->copy, e->copy.items[i].key, e->copy.items[i].value);
    p->remove = lp_xcalloc(e->n_remove + 1, sizeof(char *));
    for (size_t i = 0; i < e->n_remove; i++)
        p->remove[p->n_remove++] = lp_xstrdup(e->remove[i]);
    p->normalize_level = e->normalize_level;
    p->ingest_time = e->ingest_time;
}

struct agg_pipeline *agg_pipeline_new(const struct lp_config_aggregator *cfg,
                                      const char *const *output_names, size_t n_outputs, char *err,
                                      size_t errlen)
{
    struct agg_pipeline *p = lp_xcalloc(1, sizeof(*p));
    p->parsers = lp_xcalloc(cfg->n_parsers + 1, sizeof(*p->parsers));
    p->routes = lp_xcalloc(cfg->n_routes + 1, sizeof(*p->routes));
    for (size_t i = 0; i < cfg->n_parsers; i++)
        if (add_parser(p, &cfg->parsers[i], err, errlen))
            goto fail;
    for (size_t i = 0; i <= cfg->n_routes; i++)
        if (add_route(p, cfg, i, output_names, n_outputs, err, errlen))
            goto fail;
    setup_enrich(p, &cfg->enrich);
    const struct lp_config_content *ct = &cfg->content;
    p->kept_field = lp_xstrdup(ct->kept_field ? ct->kept_field : "logpipe.kept");
    p->merge.kept = p->kept_field;
    p->merge.max_fields = ct->max_fields > 0 ? (size_t)ct->max_fields : 1000;
    p->merge.max_depth = ct->max_depth > 0 ? (size_t)ct->max_depth : 20;
    p->max_future_skew_ns = ct->max_future_skew_ms * 1000000;
    p->max_age_ns = ct->max_age_ms * 1000000;
    if (cfg->n_redact) {
        p->redact = agg_redactor_new(cfg->redact, cfg->n_redact, p->kept_field,
                                     (uint32_t)ct->regex_match_limit,
                                     (uint32_t)ct->regex_depth_limit, err, errlen);
        if (!p->redact)
            goto fail;
    }
    plan_fast_path(p);
    return p;
fail:
    agg_pipeline_free(p);
    return NULL;
}

void agg_pipeline_free(struct agg_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_parsers; i++) {
        free(p->parsers[i].name);
        lp_msgparser_free(p->parsers[i].p);
        for (size_t k = 0; k < p->parsers[i].n_message_keys; k++)
            free(p->parsers[i].message_keys[k]);
        free(p->parsers[i].message_keys);
    }
    free(p->kept_field);
    free(p->parsers);
    for (size_t i = 0; i < p->n_routes; i++) {
        struct route *r = &p->routes[i];
        for (size_t k = 0; k < r->n_conds; k++) {
            free(r->conds[k].field);
            free(r->conds[k].value);
            if (r->conds[k].re)
                pcre2_code_free(r->conds[k].re);
        }
        free(r->conds);
        free(r->outputs);
        free(r->name);
        free(r->hints);
        ratelimit_free(r->rl);
    }
    free(p->routes);
    lp_kvlist_release(&p->add);
    lp_kvlist_release(&p->rename);
    lp_kvlist_release(&p->copy);
    for (size_t i = 0; i < p->n_remove; i++)
        free(p->remove[i]);
    free(p->remove);
    free(p->extra);
    agg_redactor_free(p->redact);
    free(p);
}

size_t agg_pipeline_routes(const struct agg_pipeline *p)
{
    return p->n_routes;
}

const struct agg_route_info *agg_pipeline_route(const struct agg_pipeline *p, size_t i)
{
    return &p->routes[i].info;
}

const char *agg_pipeline_route_parser(const struct agg_pipeline *p, size_t i)
{
    return p->routes[i].parser_name;
}

static int cond_holds(const struct cond *c, json_t *ev)
{
    json_t *v = lp_json_get_path(ev, c->field);
    if (c->op == OP_EXISTS)
        return cond_test(c, v != NULL && !json_is_null(v), NULL, 0);
    const char *s = NULL;
    size_t n = 0;
    char tmp[64];
    int found = v && lp_json_scalar_text(v, &s, &n, tmp, sizeof(tmp)); /* before s, n are read */
    return cond_test(c, found, s, n);
}

size_t agg_pipeline_match(const struct agg_pipeline *p, json_t *ev)
{
    for (size_t i = 0; i + 1 < p->n_routes; i++) {
        const struct route *r = &p->routes[i];
        size_t k = 0;
        while (k < r->n_conds && cond_holds(&r->conds[k], ev))
            k++;
        if (k == r->n_conds)
            return i;
    }
    return p->n_routes - 1;
}

const char *agg_level_normalize(const char *s)
{
    static const struct {
        const char *in, *out;
    } map[] = {
        {"trace", "trace"},    {"trc", "trace"},        {"finest", "trace"},
        {"finer", "trace"},    {"debug", "debug"},      {"dbg", "debug"},
        {"fine", "debug"},     {"d", "debug"},          {"info", "info"},
        {"inf", "info"},       {"information", "info"}, {"informational", "info"},
        {"notice", "info"},    {"i", "info"},           {"config", "info"},
        {"warn", "warn"},      {"warning", "warn"},     {"wrn", "warn"},
        {"w", "warn"},         {"error", "error"},      {"err", "error"},
        {"e", "error"},        {"severe", "error"},     {"fatal", "fatal"},
        {"critical", "fatal"}, {"crit", "fatal"},       {"alert", "fatal"},
        {"emerg", "fatal"},    {"emergency", "fatal"},  {"panic", "fatal"},
        {"f", "fatal"},
    };
    if (!s)
        return NULL;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(s, map[i].in) == 0)
            return map[i].out;
    /* syslog severities as numbers */
    if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0') {
        static const char *const sev[] = {"fatal", "fatal", "fatal", "error",
                                          "warn",  "info",  "info",  "debug"};
        return sev[s[0] - '0'];
    }
    return NULL;
}

/* Removes a dotted path from obj (nested objects or a literal dotted key). */
static void del_path(json_t *obj, const char *path)
{
    if (json_object_get(obj, path)) {
        json_object_del(obj, path);
        return;
    }
    const char *dot = strchr(path, '.');
    if (!dot)
        return;
    char head[256];
    size_t n = (size_t)(dot - path);
    if (n >= sizeof(head))
        return;
    memcpy(head, path, n);
    head[n] = '\0';
    json_t *sub = json_object_get(obj, head);
    if (json_is_object(sub)) {
        del_path(sub, dot + 1);
        if (json_object_size(sub) == 0)
            json_object_del(obj, head);
    }
}

static void normalize_level(json_t *ev)
{
    json_t *lvl = lp_json_get_path(ev, "log.level");
    const char *from = NULL;
    if (!lvl) {
        static const char *const alt[] = {"level", "severity", "loglevel", "lvl"};
        for (size_t i = 0; i < sizeof(alt) / sizeof(alt[0]) && !lvl; i++) {
            json_t *v = json_object_get(ev, alt[i]);
            if (json_is_string(v)) {
                lvl = v;
                from = alt[i];
            }
        }
        if (!lvl)
            return;
    }
    char tmp[32];
    const char *s;
    size_t n;
    if (!lp_json_scalar_text(lvl, &s, &n, tmp, sizeof(tmp)))
        return;
    const char *canon = agg_level_normalize(s);
    if (!canon)
        return; /* unknown: leave it as it is */
    lp_json_set_path(ev, "log.level", json_string(canon));
    if (from)
        json_object_del(ev, from);
}

void agg_pipeline_enrich(const struct agg_pipeline *p, json_t *ev, int64_t now_ns)
{
    for (size_t i = 0; i < p->add.n; i++)
        lp_json_set_path(ev, p->add.items[i].key, json_string(p->add.items[i].value));
    for (size_t i = 0; i < p->rename.n; i++) {
        json_t *v = lp_json_get_path(ev, p->rename.items[i].key);
        if (!v)
            continue;
        json_incref(v);
        del_path(ev, p->rename.items[i].key);
        lp_json_set_path(ev, p->rename.items[i].value, v);
    }
    for (size_t i = 0; i < p->copy.n; i++) {
        json_t *v = lp_json_get_path(ev, p->copy.items[i].key);
        if (v)
            lp_json_set_path(ev, p->copy.items[i].value, json_deep_copy(v));
    }
    for (size_t i = 0; i < p->n_remove; i++)
        del_path(ev, p->remove[i]);
    if (p->normalize_level)
        normalize_level(ev);
    if (p->ingest_time) {
        char ts[LP_RFC3339_MAX];
        lp_time_format_rfc3339(now_ns, 3, ts);
        lp_json_set_path(ev, "event.ingested", json_string(ts));
    }
}

static void apply_parser(const struct agg_pipeline *p, const struct named_parser *np,
                         const struct lp_wire_record *r, json_t *ev, int64_t now_ns,
                         int *parse_failed);

json_t *agg_pipeline_event(const struct agg_pipeline *p, const struct lp_wire_source *src,
                           const struct lp_wire_record *r, const char *event_id, int64_t now_ns,
                           struct lp_buf *scratch, size_t *route, enum agg_verdict *verdict,
                           int *parse_failed)
{
    lp_buf_reset(scratch);
    *parse_failed = 0;
    *verdict = AGG_KEEP;
    if (lp_wire_ecs_event(src, r, scratch))
        return NULL;
    json_error_t je;
    json_t *ev = json_loadb(scratch->data, scratch->len, JSON_ALLOW_NUL, &je);
    if (!ev)
        return NULL;
    size_t ri = agg_pipeline_match(p, ev);
    *route = ri;
    *verdict = agg_pipeline_keep(p, ri, src, r, event_id);
    if (*verdict != AGG_KEEP)
        return ev;
    const struct route *rt = &p->routes[ri];
    const char *why = NULL;
    const struct named_parser *np = rt->parser ? rt->np : hinted_parser(p, rt, src, &why);
    if (why && p->metrics)
        lp_counter_inc(strcmp(why, "unknown") == 0 ? p->c_hint_unknown : p->c_hint_refused);
    if (np)
        apply_parser(p, np, r, ev, now_ns, parse_failed);
    agg_pipeline_enrich(p, ev, now_ns);
    if (p->redact)
        agg_redact_event(p->redact, ev);
    return ev;
}

/* ---- content ---- */

static const char *const kept_reasons[] = {"owned", "type", "depth", "fields", "name"};

/* One counter per reason label of a metric, into out[0..n). */
static void reason_counters(struct lp_metrics *m, const char *name, const char *help,
                            const char *const *reasons, size_t n, struct lp_counter **out)
{
    for (size_t i = 0; i < n; i++) {
        char l[64];
        snprintf(l, sizeof(l), "reason=\"%s\"", reasons[i]);
        out[i] = lp_metrics_counter(m, name, help, l);
    }
}

void agg_pipeline_set_metrics(struct agg_pipeline *p, struct lp_metrics *m)
{
    p->metrics = m;
    agg_redactor_set_metrics(p->redact, m);
    reason_counters(m, "logpipe_aggregator_content_kept_total",
                    "Values of log content kept under the kept field instead of where the line "
                    "put them, by reason (owned field, mapped type, depth, field count, invalid "
                    "name).",
                    kept_reasons, 5, p->c_kept_reason);
    p->c_hint_unknown = lp_metrics_counter(
        m, "logpipe_aggregator_parser_hint_unknown_total",
        "Records whose pod names a parser (logpipe.io/parser) the aggregator does not have: "
        "kept unparsed.",
        NULL);
    p->c_hint_refused = lp_metrics_counter(
        m, "logpipe_aggregator_parser_hint_refused_total",
        "Records whose pod names a parser (logpipe.io/parser) their route does not let pods "
        "pick (hint_parsers): kept unparsed.",
        NULL);
    static const char *const tr[] = {"future", "past", "unparsable"};
    reason_counters(m, "logpipe_aggregator_time_refused_total",
                    "Times from a parser's time_field not used for @timestamp (the runtime's "
                    "time stays; the value is kept).",
                    tr, 3, p->c_time_refused);
}

struct kept_ctx {
    const struct agg_pipeline *p;
};

static void on_kept(void *ud, const char *path, const char *reason)
{
    const struct agg_pipeline *p = ((struct kept_ctx *)ud)->p;
    if (!p->metrics)
        return;
    for (size_t i = 0; i < 5; i++)
        if (strcmp(reason, kept_reasons[i]) == 0)
            lp_counter_inc(p->c_kept_reason[i]);
    /* over a cap or an invalid name: the field is whatever the line made
     * up (10,000 of them in one line), a label would say nothing */
    if (strcmp(reason, "owned") != 0 && strcmp(reason, "type") != 0)
        return;
    lp_ecs_count_field(p->metrics, "logpipe_aggregator_content_kept_by_field_total",
                       "Values of log content kept because they collided with an owned field or "
                       "the template's mapping, by the field the line wanted (the field table's "
                       "paths, up to 100 others by their first component, then other).",
                       path);
}

/* Parses the line with the route's parser and lets what it found join the
 * event under the content rules (lp_ecs.h): time only through time_field and
 * within bounds of the runtime's time of the line (deterministic: a replay
 * gets the same @timestamp, so the same index), message from the message
 * keys, everything else merged key by key around what the pipeline owns. */
static void apply_parser(const struct agg_pipeline *p, const struct named_parser *np,
                         const struct lp_wire_record *r, json_t *ev, int64_t now_ns,
                         int *parse_failed)
{
    char why[256];
    json_t *fields = NULL;
    if (lp_msgparse_fields(np->p, r->message, r->message_len, now_ns, &fields, why, sizeof(why))) {
        *parse_failed = 1;
        if (np->mark_failures)
            lp_msgparse_mark_failed(np->p, ev, r->message, r->message_len, why);
        return;
    }
    int64_t ns;
    int trc = lp_msgparse_time(np->p, fields, now_ns, &ns);
    int refused = -1; /* 0 future, 1 past, 2 unparsable */
    if (trc == 0) {
        /* both times come from content (the wire record's and the line's):
         * their distance can pass INT64_MAX, so it is taken unsigned */
        if (p->max_future_skew_ns && ns > r->ts_ns &&
            (uint64_t)ns - (uint64_t)r->ts_ns > (uint64_t)p->max_future_skew_ns)
            refused = 0;
        else if (p->max_age_ns && ns < r->ts_ns &&
                 (uint64_t)r->ts_ns - (uint64_t)ns > (uint64_t)p->max_age_ns)
            refused = 1;
    } else if (trc < 0) {
        refused = 2;
    }
    if (trc == 0 || trc < 0) {
        /* the time field has done its work (or cannot): it leaves the fields */
        const char *tf = lp_msgparser_time_field(np->p);
        json_t *tv = lp_ecs_take(fields, tf);
        if (refused < 0) {
            char ts[LP_RFC3339_MAX];
            lp_time_format_rfc3339(ns, 9, ts);
            json_object_set_new(ev, "@timestamp", json_string(ts));
        } else {
            /* the runtime's time stays; the line's is recorded */
            lp_ecs_keep(ev, p->kept_field, tf, tv, "time");
            if (p->metrics)
                lp_counter_inc(p->c_time_refused[refused]);
        }
        json_decref(tv);
    }
    for (size_t k = 0; k < np->n_message_keys; k++) {
        json_t *m = json_object_get(fields, np->message_keys[k]);
        if (json_is_string(m)) {
            json_object_set(ev, "message", m);
            json_object_del(fields, np->message_keys[k]);
            break;
        }
    }
    if (np->keep_original)
        lp_json_set_path(ev, "event.original", json_stringn(r->message, r->message_len));
    agg_redact_keys(p->redact, fields); /* whole, before dotted keys are split */
    struct kept_ctx kc = {p};
    lp_ecs_merge(ev, fields, &p->merge, on_kept, &kc);
    json_decref(fields);
}
