/* The owned-field table and the content merge (lp_ecs.h). */
#include "lp_ecs.h"
#include "lp_alloc.h"
#include "lp_metrics.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OWN LP_ECS_OWNED
#define OWN_KEYED (LP_ECS_OWNED | LP_ECS_KEYED)

const struct lp_ecs_field lp_ecs_table[] = {
    {"@timestamp", LP_ECS_DATE_NANOS, OWN,
     "Event time: the runtime's time of the line, or the parser's time_field within the "
     "configured bounds."},
    {"message", LP_ECS_TEXT, OWN,
     "The line, or for structured lines the value of the first of the parser's message_keys."},
    {"stream", LP_ECS_KEYWORD, OWN, "stdout or stderr."},
    {"event", LP_ECS_OBJECT, 0, NULL},
    {"event.id", LP_ECS_KEYWORD, OWN, "Deterministic id of the line (source id, offset); the _id."},
    {"event.ingested", LP_ECS_DATE, OWN, "When the aggregator processed the line."},
    {"event.original", LP_ECS_STORED, OWN,
     "The raw line, when the parser has keep_original or marks failures (not indexed)."},
    {"event.dataset", LP_ECS_KEYWORD, 0, "Free for applications (ECS)."},
    {"log", LP_ECS_OBJECT, 0, NULL},
    {"log.level", LP_ECS_KEYWORD, 0, "Normalised level (trace, debug, info, warn, error, fatal)."},
    {"log.offset", LP_ECS_LONG, OWN, "Byte offset of the line in its file."},
    {"log.file", LP_ECS_OBJECT, OWN, NULL},
    {"log.file.path", LP_ECS_KEYWORD, OWN, "The container log file."},
    {"error", LP_ECS_OBJECT, 0, NULL},
    {"error.message", LP_ECS_TEXT, 0,
     "Free for applications (ECS); a failed parse with on_failure: mark writes it."},
    {"http", LP_ECS_OBJECT, 0, NULL},
    {"http.response", LP_ECS_OBJECT, 0, NULL},
    {"http.response.status_code", LP_ECS_LONG, 0, "Access logs; free for applications."},
    {"http.response.body", LP_ECS_OBJECT, 0, NULL},
    {"http.response.body.bytes", LP_ECS_LONG, 0, "Access logs; free for applications."},
    {"host", LP_ECS_OBJECT, 0, NULL},
    {"host.name", LP_ECS_KEYWORD, OWN, "The node the shipper runs on."},
    {"container", LP_ECS_OBJECT, OWN, NULL},
    {"container.id", LP_ECS_KEYWORD, OWN, "From the log path."},
    {"container.name", LP_ECS_KEYWORD, OWN,
     "From the log path, or the runtime (Docker's config.v2.json, without Kubernetes)."},
    {"container.image", LP_ECS_OBJECT, OWN, NULL},
    {"container.image.name", LP_ECS_KEYWORD, OWN, "The image, from the runtime (Docker)."},
    {"container.labels", LP_ECS_OBJECT, OWN_KEYED,
     "The runtime's labels (Docker, Compose: com_docker_compose_project, "
     "com_docker_compose_service, ...), '.' in keys replaced by '_'."},
    {"kubernetes", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.namespace", LP_ECS_KEYWORD, OWN, "From the log path."},
    {"kubernetes.pod", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.pod.name", LP_ECS_KEYWORD, OWN, "From the log path."},
    {"kubernetes.pod.uid", LP_ECS_KEYWORD, OWN, "From the log path."},
    {"kubernetes.container", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.container.name", LP_ECS_KEYWORD, OWN, "From the log path."},
    {"kubernetes.pod.ip", LP_ECS_KEYWORD, OWN, "From the API server (shipper.kubernetes)."},
    {"kubernetes.node", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.node.name", LP_ECS_KEYWORD, OWN, "From the API server."},
    {"kubernetes.labels", LP_ECS_OBJECT, OWN_KEYED,
     "The pod's labels, from the API server, '.' in keys replaced by '_'."},
    {"kubernetes.annotations", LP_ECS_OBJECT, OWN_KEYED,
     "The pod's annotations that shipper.kubernetes.annotations allows, '.' in keys replaced "
     "by '_'."},
    {"kubernetes.deployment", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.deployment.name", LP_ECS_KEYWORD, OWN,
     "The owning workload (one of deployment, replicaset, statefulset, daemonset, job, "
     "cronjob), from the API server."},
    {"kubernetes.replicaset", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.replicaset.name", LP_ECS_KEYWORD, OWN, "A ReplicaSet no Deployment owns."},
    {"kubernetes.statefulset", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.statefulset.name", LP_ECS_KEYWORD, OWN, "The owning StatefulSet."},
    {"kubernetes.daemonset", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.daemonset.name", LP_ECS_KEYWORD, OWN, "The owning DaemonSet."},
    {"kubernetes.job", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.job.name", LP_ECS_KEYWORD, OWN, "The owning Job (not made by a CronJob)."},
    {"kubernetes.cronjob", LP_ECS_OBJECT, OWN, NULL},
    {"kubernetes.cronjob.name", LP_ECS_KEYWORD, OWN, "The CronJob whose Job owns the pod."},
    {"logpipe", LP_ECS_OBJECT, OWN, NULL},
    {"logpipe.source_id", LP_ECS_KEYWORD, OWN, "The source (host, file identity, generation)."},
    {"logpipe.input_format", LP_ECS_KEYWORD, OWN, "docker, cri or raw."},
    {"logpipe.flags", LP_ECS_KEYWORD, OWN,
     "truncated, partial, utf8_replaced, malformed (set by the shipper)."},
    {"logpipe.lines", LP_ECS_LONG, OWN, "Physical lines joined by multiline."},
    {"logpipe.parser", LP_ECS_KEYWORD, OWN,
     "The pod's parser hint (annotation logpipe.io/parser), used on routes without a parser."},
    {"logpipe.metadata", LP_ECS_KEYWORD, OWN,
     "pending: the pod was not in the shipper's API cache yet (path metadata only)."},
    {"logpipe.kept", LP_ECS_OBJECT, OWN,
     "Values a line could not put where it wanted (an owned field, a type the template maps "
     "differently, a mapping conflict, over a cap): a list of {field, value, reason}. Three "
     "mapped fields whatever the content, so the kept place never conflicts or explodes."},
    {"logpipe.kept.field", LP_ECS_KEYWORD, OWN, "The dotted path the line wanted."},
    {"logpipe.kept.value", LP_ECS_TEXT, OWN,
     "The value as a string (JSON text when it was not a string)."},
    {"logpipe.kept.reason", LP_ECS_KEYWORD, OWN,
     "owned, type, depth, fields, name, mapping (the cluster refused it) or time (a "
     "time_field value out of bounds)."},
};
const size_t lp_ecs_count = sizeof(lp_ecs_table) / sizeof(lp_ecs_table[0]);

const struct lp_ecs_field *lp_ecs_lookup(const char *path)
{
    for (size_t i = 0; i < lp_ecs_count; i++)
        if (strcmp(lp_ecs_table[i].path, path) == 0)
            return &lp_ecs_table[i];
    return NULL;
}

/* The entry at or above path[0..n). */
static const struct lp_ecs_field *nearest_n(const char *path, size_t n)
{
    const struct lp_ecs_field *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < lp_ecs_count; i++) {
        const char *p = lp_ecs_table[i].path;
        size_t l = strlen(p);
        if (l <= n && memcmp(p, path, l) == 0 && (l == n || path[l] == '.') && l > best_len) {
            best = &lp_ecs_table[i];
            best_len = l;
        }
    }
    return best;
}

const struct lp_ecs_field *lp_ecs_nearest(const char *path)
{
    return nearest_n(path, strlen(path));
}

int lp_ecs_owned(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < lp_ecs_count; i++) {
        const char *p = lp_ecs_table[i].path;
        size_t l = strlen(p);
        if (lp_ecs_table[i].owned && l <= n && memcmp(p, path, l) == 0 &&
            (l == n || path[l] == '.'))
            return 1;
    }
    return 0;
}

static json_t *leaf_mapping(enum lp_ecs_type t)
{
    switch (t) {
    case LP_ECS_KEYWORD: return json_pack("{s:s}", "type", "keyword");
    case LP_ECS_TEXT: return json_pack("{s:s}", "type", "text");
    case LP_ECS_LONG: return json_pack("{s:s}", "type", "long");
    case LP_ECS_DATE: return json_pack("{s:s}", "type", "date");
    case LP_ECS_DATE_NANOS: return json_pack("{s:s}", "type", "date_nanos");
    case LP_ECS_STORED:
        return json_pack("{s:s,s:b,s:b}", "type", "keyword", "index", 0, "doc_values", 0);
    case LP_ECS_OBJECT: break;
    }
    return json_object();
}

json_t *lp_ecs_template_properties(const char *kept, const char *flat_type)
{
    json_t *props = json_object();
    for (size_t i = 0; i < lp_ecs_count; i++) {
        const struct lp_ecs_field *d = &lp_ecs_table[i];
        /* the kept entries go where the configuration puts them */
        char moved[256];
        const char *path = d->path;
        if (kept && strncmp(path, LP_ECS_KEPT_DEFAULT, strlen(LP_ECS_KEPT_DEFAULT)) == 0) {
            snprintf(moved, sizeof(moved), "%s%s", kept, path + strlen(LP_ECS_KEPT_DEFAULT));
            path = moved;
        }
        /* walk to the parent's properties, creating objects on the way */
        json_t *cur = props;
        const char *p = path, *dot;
        char key[128];
        while ((dot = strchr(p, '.')) != NULL) {
            size_t n = (size_t)(dot - p);
            memcpy(key, p, n);
            key[n] = '\0';
            json_t *node = json_object_get(cur, key);
            if (!node) {
                node = json_object();
                json_object_set_new(cur, key, node);
            }
            json_t *sub = json_object_get(node, "properties");
            if (!sub) {
                sub = json_object();
                json_object_set_new(node, "properties", sub);
            }
            cur = sub;
            p = dot + 1;
        }
        if (d->type == LP_ECS_OBJECT && (d->owned & LP_ECS_KEYED) && flat_type) {
            json_object_set_new(cur, p, json_pack("{s:s}", "type", flat_type));
        } else if (d->type == LP_ECS_OBJECT) {
            if (!json_object_get(cur, p))
                json_object_set_new(cur, p, json_pack("{s:{}}", "properties"));
        } else {
            json_object_set_new(cur, p, leaf_mapping(d->type));
        }
    }
    return props;
}

/* ---- the merge ---- */

struct mctx {
    json_t *ev;
    const struct lp_ecs_merge_opts *o;
    lp_ecs_kept_fn on_kept;
    void *ud;
    size_t fields;
    size_t kept;
    char path[512]; /* the dotted path being merged; longer paths are kept */
};

#define KEPT_FIELD_MAX 256

/* The object at a dotted path of obj, made (replacing what is not an
 * object) where missing. */
static json_t *get_or_make_object(json_t *obj, const char *path)
{
    char key[128];
    const char *dot;
    while (1) {
        dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(key))
            n = sizeof(key) - 1;
        memcpy(key, path, n);
        key[n] = '\0';
        json_t *next = json_object_get(obj, key);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(obj, key, next);
        }
        obj = next;
        if (!dot)
            return obj;
        path = dot + 1;
    }
}

void lp_ecs_keep(json_t *ev, const char *kept, const char *path, json_t *value, const char *reason)
{
    /* the field as the line named it, cut (on a UTF-8 boundary) when absurd */
    size_t n = strlen(path);
    if (n > KEPT_FIELD_MAX) {
        n = KEPT_FIELD_MAX;
        while (n > 0 && ((unsigned char)path[n] & 0xC0) == 0x80)
            n--;
    }
    json_t *s;
    if (json_is_string(value))
        s = json_incref(value);
    else if (!value || json_is_null(value))
        s = json_string("null");
    else {
        char *t = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        s = json_string(t ? t : "");
        free(t);
    }
    /* the kept list is the last component of the kept path */
    json_t *parent = ev;
    const char *last = strrchr(kept, '.');
    if (last) {
        char head[128];
        size_t hn = (size_t)(last - kept);
        if (hn >= sizeof(head))
            hn = sizeof(head) - 1;
        memcpy(head, kept, hn);
        head[hn] = '\0';
        parent = get_or_make_object(ev, head);
        last++;
    } else {
        last = kept;
    }
    json_t *list = json_object_get(parent, last);
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(parent, last, list);
    }
    json_array_append_new(
        list, json_pack("{s:s%,s:o,s:s}", "field", path, n, "value", s, "reason", reason));
}

static void keep(struct mctx *m, const char *path, json_t *v, const char *reason)
{
    lp_ecs_keep(m->ev, m->o->kept, path, v, reason);
    m->kept++;
    if (m->on_kept)
        m->on_kept(m->ud, path, reason);
}

/* 1 when a scalar (or an array of scalars) can go where t is mapped. */
static int numeric_text(const char *s)
{
    if (*s == '-')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

static int scalar_fits(enum lp_ecs_type t, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY: return 0;
    case JSON_NULL: return 1;
    default: break;
    }
    switch (t) {
    case LP_ECS_KEYWORD:
    case LP_ECS_TEXT:
    case LP_ECS_STORED: return 1;
    case LP_ECS_LONG:
        if (json_is_integer(v))
            return 1;
        if (json_is_real(v))
            return json_real_value(v) > -9.2e18 && json_real_value(v) < 9.2e18;
        return json_is_string(v) && numeric_text(json_string_value(v)) &&
               json_string_length(v) < 19;
    default: return 0; /* dates are owned */
    }
}

static int leaf_fits(enum lp_ecs_type t, json_t *v)
{
    if (!json_is_array(v))
        return scalar_fits(t, v);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!scalar_fits(t, x)) return 0;
    return 1;
}

/* Leaves and object depth of v (arrays looked into), stopping at the caps. */
static void measure(json_t *v, size_t depth, size_t *leaves, size_t *max_depth, size_t cap)
{
    if (*leaves > cap)
        return;
    if (depth > *max_depth)
        *max_depth = depth;
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x) measure(x, depth + 1, leaves, max_depth, cap);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) measure(x, depth, leaves, max_depth, cap);
    } else {
        (*leaves)++;
    }
}

/* A field name OpenSearch takes: no empty or blank component, no leading
 * '_' at the top level (metadata fields). */
static int name_ok(const char *key, size_t depth)
{
    if (!*key || (depth == 0 && key[0] == '_'))
        return 0;
    for (const char *c = key; *c; c++)
        if (!isspace((unsigned char)*c))
            return 1;
    return 0;
}

static void merge_object(struct mctx *m, json_t *dst, size_t plen, json_t *src, size_t depth);

/* a[0..an) "." b into out (cut at outlen; a cut path still names the field) */
static void join(char *out, size_t outlen, const char *a, size_t an, const char *b)
{
    size_t n = an < outlen - 1 ? an : outlen - 1;
    memcpy(out, a, n);
    if (an && n < outlen - 1)
        out[n++] = '.';
    size_t bn = strlen(b);
    if (bn > outlen - 1 - n)
        bn = outlen - 1 - n;
    memcpy(out + n, b, bn);
    out[n + bn] = '\0';
}

/* Places v (borrowed) at key (one component, or a dotted key) of dst,
 * which is the object at m->path[0..plen). */
static void place(struct mctx *m, json_t *dst, size_t plen, const char *key, json_t *v,
                  size_t depth)
{
    const char *dot = strchr(key, '.');
    size_t klen = dot ? (size_t)(dot - key) : strlen(key);
    /* the full path, for messages and the kept key */
    size_t need = plen + (plen ? 1 : 0) + klen;
    if (need >= sizeof(m->path) || klen == 0 || (dot && dot[1] == '\0')) {
        char tmp[sizeof(m->path)];
        join(tmp, sizeof(tmp), m->path, plen, key);
        keep(m, tmp, v, klen == 0 || (dot && dot[1] == '\0') ? "name" : "depth");
        return;
    }
    size_t at = plen;
    if (plen)
        m->path[at++] = '.';
    memcpy(m->path + at, key, klen);
    size_t nlen = at + klen;
    m->path[nlen] = '\0';
    char comp[sizeof(m->path)];
    memcpy(comp, key, klen);
    comp[klen] = '\0';
    if (!name_ok(comp, depth)) {
        keep(m, m->path, v, "name");
        goto out;
    }
    if (dot) {
        /* a dotted key is the same as nested objects: {"a.b": v} = {"a": {"b": v}} */
        if (depth + 1 > m->o->max_depth) {
            char tmp[sizeof(m->path)];
            join(tmp, sizeof(tmp), m->path, nlen, dot + 1);
            keep(m, tmp, v, "depth");
            goto out;
        }
        json_t *wrap = json_object();
        json_object_set(wrap, dot + 1, v);
        /* continue as if the value at comp were an object */
        const struct lp_ecs_field *d = lp_ecs_lookup(m->path);
        if (lp_ecs_owned(m->path)) {
            keep(m, m->path, wrap, "owned");
        } else if (d && d->type != LP_ECS_OBJECT) {
            keep(m, m->path, wrap, "type");
        } else {
            json_t *cur = json_object_get(dst, comp);
            if (cur && !json_is_object(cur)) {
                keep(m, m->path, wrap, "type");
            } else {
                if (!cur) {
                    cur = json_object();
                    json_object_set_new(dst, comp, cur);
                }
                merge_object(m, cur, nlen, wrap, depth + 1);
                if (json_object_size(cur) == 0)
                    json_object_del(dst, comp);
            }
        }
        json_decref(wrap);
        goto out;
    }
    if (lp_ecs_owned(m->path)) {
        keep(m, m->path, v, "owned");
        goto out;
    }
    const struct lp_ecs_field *d = lp_ecs_lookup(m->path);
    json_t *cur = json_object_get(dst, comp);
    if (json_is_object(v)) {
        if ((d && d->type != LP_ECS_OBJECT) || (cur && !json_is_object(cur))) {
            keep(m, m->path, v, "type");
            goto out;
        }
        if (depth + 1 > m->o->max_depth) {
            keep(m, m->path, v, "depth");
            goto out;
        }
        if (!cur) {
            cur = json_object();
            json_object_set_new(dst, comp, cur);
        }
        merge_object(m, cur, nlen, v, depth + 1);
        if (json_object_size(cur) == 0)
            json_object_del(dst, comp);
        goto out;
    }
    if ((d && (d->type == LP_ECS_OBJECT || !leaf_fits(d->type, v))) || json_is_object(cur)) {
        keep(m, m->path, v, "type");
        goto out;
    }
    size_t leaves = 0, vdepth = depth;
    measure(v, depth, &leaves, &vdepth, m->o->max_fields);
    if (vdepth > m->o->max_depth) {
        keep(m, m->path, v, "depth");
        goto out;
    }
    if (m->fields + (leaves ? leaves : 1) > m->o->max_fields) {
        keep(m, m->path, v, "fields");
        goto out;
    }
    m->fields += leaves ? leaves : 1;
    json_object_set(dst, comp, v);
out:
    m->path[plen] = '\0';
}

static void merge_object(struct mctx *m, json_t *dst, size_t plen, json_t *src, size_t depth)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) place(m, dst, plen, k, v, depth);
}

size_t lp_ecs_merge(json_t *ev, json_t *fields, const struct lp_ecs_merge_opts *o,
                    lp_ecs_kept_fn on_kept, void *ud)
{
    if (!json_is_object(fields))
        return 0;
    struct mctx *m = lp_xmalloc(sizeof(*m));
    m->ev = ev;
    m->o = o;
    m->on_kept = on_kept;
    m->ud = ud;
    m->fields = 0;
    m->kept = 0;
    m->path[0] = '\0';
    merge_object(m, ev, 0, fields, 0);
    size_t kept = m->kept;
    free(m);
    return kept;
}

json_t *lp_ecs_take(json_t *ev, const char *path)
{
    json_t *v = json_object_get(ev, path);
    if (v) {
        json_incref(v);
        json_object_del(ev, path);
        return v;
    }
    const char *dot = strchr(path, '.');
    if (!dot)
        return NULL;
    char head[256];
    size_t n = (size_t)(dot - path);
    if (n >= sizeof(head))
        return NULL;
    memcpy(head, path, n);
    head[n] = '\0';
    json_t *sub = json_object_get(ev, head);
    if (!json_is_object(sub))
        return NULL;
    v = lp_ecs_take(sub, dot + 1);
    if (v && json_object_size(sub) == 0)
        json_object_del(ev, head);
    return v;
}

/* Label values for content field paths: the field table's own paths, the
 * first component of up to FIELD_LABELS_MAX others (the first seen), then
 * "other": a line cannot grow the metrics without bound. */
#define FIELD_LABELS_MAX 100
static pthread_mutex_t field_labels_mu = PTHREAD_MUTEX_INITIALIZER;
static char field_labels[FIELD_LABELS_MAX][64];
static size_t n_field_labels;

static int field_label_admitted(const char *v)
{
    int ok = 0;
    pthread_mutex_lock(&field_labels_mu);
    for (size_t i = 0; i < n_field_labels && !ok; i++)
        ok = strcmp(field_labels[i], v) == 0;
    if (!ok && n_field_labels < FIELD_LABELS_MAX) {
        snprintf(field_labels[n_field_labels++], sizeof(field_labels[0]), "%s", v);
        ok = 1;
    }
    pthread_mutex_unlock(&field_labels_mu);
    return ok;
}

void lp_ecs_count_field(struct lp_metrics *m, const char *metric, const char *help,
                        const char *path)
{
    if (!m)
        return;
    char v[64];
    const struct lp_ecs_field *d = lp_ecs_nearest(path);
    size_t n = 0;
    const char *src = d ? d->path : path;
    size_t lim = d ? strlen(src) : strcspn(src, ".");
    for (; n < lim && n + 1 < sizeof(v); n++) {
        char ch = src[n];
        v[n] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                       ch == '_' || ch == '.' || ch == '@' || ch == '-'
                   ? ch
                   : '_';
    }
    v[n] = '\0';
    if (!d && !field_label_admitted(v))
        snprintf(v, sizeof(v), "other");
    char l[96];
    snprintf(l, sizeof(l), "field=\"%s\"", v);
    struct lp_counter *c = lp_metrics_counter(m, metric, help, l);
    if (c)
        lp_counter_inc(c);
}
