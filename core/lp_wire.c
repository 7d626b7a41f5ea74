/* Batch wire format: NDJSON writer (hand-rolled for speed on the shipper's
 * hot path; the escaper guarantees valid JSON) and a jansson-based decoder
 * that validates every field it uses and names the first problem it sees. */
#include "lp_wire.h"
#include "lp_kv.h"

#include "lp_arena.h"
#include "lp_error.h"
#include "lp_eventid.h"
#include "lp_time.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

void lp_wire_meta_init(struct lp_wire_meta *m)
{
    m->format = 0;
    m->batch = 1;
    m->encoding = LP_CODEC_IDENTITY;
    m->records = 0;
}

static int header_is(const char *name, const char *want)
{
    return strcasecmp(name, want) == 0;
}

static int value_is(const void *v, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(v, want, len) == 0;
}

int lp_wire_meta_header(struct lp_wire_meta *m, const char *name, const void *value, size_t len,
                        char *why, size_t whylen)
{
    char tmp[32];
    if (header_is(name, LP_WIRE_H_FORMAT)) {
        if (!value_is(value, len, "1")) {
            snprintf(why, whylen, "unsupported %s header '%.*s'", LP_WIRE_H_FORMAT,
                     (int)(len > 16 ? 16 : len), (const char *)value);
            return LP_EUNSUPP;
        }
        m->format = LP_WIRE_FORMAT;
    } else if (header_is(name, LP_WIRE_H_CONTENT_TYPE)) {
        if (value_is(value, len, LP_WIRE_CT_BATCH))
            m->batch = 1;
        else if (value_is(value, len, LP_WIRE_CT_RECORD))
            m->batch = 0;
        else {
            snprintf(why, whylen, "unsupported content-type '%.*s'", (int)(len > 40 ? 40 : len),
                     (const char *)value);
            return LP_EUNSUPP;
        }
    } else if (header_is(name, LP_WIRE_H_ENCODING)) {
        if (len >= sizeof(tmp) || (memcpy(tmp, value, len), tmp[len] = '\0',
                                   lp_codec_parse(tmp, &m->encoding) != 0)) {
            snprintf(why, whylen, "unsupported content-encoding '%.*s'",
                     (int)(len > 16 ? 16 : len), (const char *)value);
            return LP_EUNSUPP;
        }
    } else if (header_is(name, LP_WIRE_H_RECORDS)) {
        unsigned long long v = 0;
        if (len == 0 || len > 10)
            goto bad_records;
        for (size_t i = 0; i < len; i++) {
            char c = ((const char *)value)[i];
            if (c < '0' || c > '9')
                goto bad_records;
            v = v * 10 + (unsigned)(c - '0');
        }
        if (v > UINT32_MAX)
            goto bad_records;
        m->records = (uint32_t)v;
    }
    return 0;
bad_records:
    snprintf(why, whylen, "bad %s header", LP_WIRE_H_RECORDS);
    return LP_ECORRUPT;
}

void lp_wire_encoder_init(struct lp_wire_encoder *e, size_t raw_limit)
{
    lp_buf_init(&e->ndjson, raw_limit);
    e->records = 0;
}

void lp_wire_encoder_release(struct lp_wire_encoder *e)
{
    if (!e)
        return;
    lp_buf_release(&e->ndjson);
}

/* ,"key":"value" when value is set. */
static int put_str(struct lp_buf *b, int *first, const char *key, const char *v)
{
    int rc;
    if (!v)
        return 0;
    if (!*first && (rc = lp_buf_putc(b, ',')))
        return rc;
    *first = 0;
    if ((rc = lp_buf_putc(b, '"')) || (rc = lp_buf_puts(b, key)) || (rc = lp_buf_puts(b, "\":")))
        return rc;
    return lp_buf_append_json_string(b, v, strlen(v));
}

/* ,"key":{"k":"v",...} (nothing when n is 0). */
static int put_labels(struct lp_buf *b, const char *key, const struct lp_kv *l, size_t n)
{
    int rc, first = 1;
    if (!n)
        return 0;
    if ((rc = lp_buf_puts(b, ",\"")) || (rc = lp_buf_puts(b, key)) ||
        (rc = lp_buf_puts(b, "\":{")))
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = put_str(b, &first, l[i].key, l[i].value)))
            return rc;
    return lp_buf_putc(b, '}');
}

const char *const lp_wire_owner_kinds[LP_WIRE_OWNER_KINDS] = {
    "deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob"};

static int owner_kind_ok(const char *k)
{
    for (size_t i = 0; k && i < LP_WIRE_OWNER_KINDS; i++)
        if (strcmp(k, lp_wire_owner_kinds[i]) == 0)
            return 1;
    return 0;
}

/* ,"kubernetes.<kind>.name":"..." for a known kind. */
static int put_owner(struct lp_buf *b, const struct lp_wire_source *s)
{
    if (!s->k8s_owner_name || !owner_kind_ok(s->k8s_owner_kind))
        return 0;
    char key[64];
    snprintf(key, sizeof(key), "kubernetes.%s.name", s->k8s_owner_kind);
    int first = 0;
    return put_str(b, &first, key, s->k8s_owner_name);
}

size_t lp_wire_labels_normalize(struct lp_kv *in, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < LP_WIRE_MAX_LABELS; i++) {
        char *key = in[i].key;
        size_t kl = key ? strlen(key) : 0;
        if (!kl || kl > LP_WIRE_MAX_LABEL_KEY || !in[i].value ||
            strlen(in[i].value) > LP_WIRE_MAX_LABEL_VALUE)
            continue;
        for (char *c = key; *c; c++)
            if (*c == '.')
                *c = '_';
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++)
            dup = strcmp(in[j].key, key) == 0;
        if (dup)
            continue;
        struct lp_kv keep = in[i];
        in[i] = in[k];
        in[k++] = keep;
    }
    return k;
}

int lp_wire_encoder_begin(struct lp_wire_encoder *e, const struct lp_wire_source *s)
{
    lp_buf_reset(&e->ndjson);
    e->records = 0;
    if (!s->source_id || !*s->source_id)
        return LP_EINVAL;
    struct lp_buf *b = &e->ndjson;
    int first = 0, rc;
    if ((rc = lp_buf_appendf(b, "{\"logpipe.format\":%d", LP_WIRE_FORMAT)) ||
        (rc = put_str(b, &first, "logpipe.source_id", s->source_id)) ||
        (rc = put_str(b, &first, "logpipe.input_format", s->format)) ||
        (rc = put_str(b, &first, "host.name", s->host)) ||
        (rc = put_str(b, &first, "log.file.path", s->path)) ||
        (rc = put_str(b, &first, "container.id", s->container_id)) ||
        (rc = put_str(b, &first, "container.name", s->container_name)) ||
        (rc = put_str(b, &first, "container.image.name", s->container_image)) ||
        (rc = put_labels(b, "container.labels", s->container_labels, s->n_container_labels)) ||
        (rc = put_str(b, &first, "kubernetes.node.name", s->k8s_node_name)) ||
        (rc = put_str(b, &first, "kubernetes.pod.ip", s->k8s_pod_ip)) || (rc = put_owner(b, s)) ||
        (rc = put_labels(b, "kubernetes.labels", s->k8s_labels, s->n_k8s_labels)) ||
        (rc = put_labels(b, "kubernetes.annotations", s->k8s_annotations, s->n_k8s_annotations)) ||
        (rc = put_str(b, &first, "logpipe.parser", s->parser)) ||
        (rc = put_str(b, &first, "logpipe.metadata", s->meta_state)) ||
        (rc = put_str(b, &first, "kubernetes.namespace", s->k8s_namespace)) ||
        (rc = put_str(b, &first, "kubernetes.pod.name", s->k8s_pod_name)) ||
        (rc = put_str(b, &first, "kubernetes.pod.uid", s->k8s_pod_uid)) ||
        (rc = put_str(b, &first, "kubernetes.container.name", s->k8s_container_name)) ||
        (rc = lp_buf_puts(b, "}\n"))) {
        lp_buf_reset(b);
        return rc;
    }
    return 0;
}

const char *const lp_wire_flag_names[LP_REC_FLAG_COUNT] = {"truncated", "partial",
                                                        "utf8_replaced", "malformed"};

/* ["truncated","partial",...] for the set bits of flags. */
static int put_flag_array(struct lp_buf *b, unsigned flags)
{
    int rc = lp_buf_putc(b, '[');
    const char *sep = "";
    for (unsigned i = 0; !rc && i < LP_REC_FLAG_COUNT; i++) {
        if (!(flags & (1u << i)))
            continue;
        rc = lp_buf_appendf(b, "%s\"%s\"", sep, lp_wire_flag_names[i]);
        sep = ",";
    }
    return rc ? rc : lp_buf_putc(b, ']');
}

static int put_flags(struct lp_buf *b, unsigned flags)
{
    int rc;
    if (!flags)
        return 0;
    if ((rc = lp_buf_puts(b, ",\"logpipe.flags\":")))
        return rc;
    return put_flag_array(b, flags);
}

/* Decimal digits of v into out (no NUL); returns the length. */
static size_t put_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

int lp_wire_encoder_add(struct lp_wire_encoder *e, const struct lp_wire_record *r)
{
    /* the hot path of the shipper: no printf */
    struct lp_buf *b = &e->ndjson;
    size_t start = b->len;
    char head[96 + LP_RFC3339_MAX];
    size_t h = 0;
    memcpy(head, "{\"@timestamp\":\"", 15);
    h = 15;
    h += lp_time_format_rfc3339(r->ts_ns, 9, head + h);
    head[h++] = '"';
    int rc;
    if ((rc = lp_buf_append(b, head, h)))
        goto fail;
    if (r->stream && ((rc = lp_buf_append(b, ",\"stream\":", 10)) ||
                      (rc = lp_buf_append_json_string(b, r->stream, strlen(r->stream)))))
        goto fail;
    h = 0;
    memcpy(head, ",\"log.offset\":", 14);
    h = 14;
    h += put_u64(head + h, r->offset);
    memcpy(head + h, ",\"message\":", 11);
    h += 11;
    if ((rc = lp_buf_append(b, head, h)) ||
        (rc = lp_buf_append_json_string(b, r->message, r->message_len)) ||
        (rc = put_flags(b, r->flags)))
        goto fail;
    if (r->lines > 1 && (rc = lp_buf_appendf(b, ",\"log.lines\":%u", r->lines)))
        goto fail;
    if ((rc = lp_buf_append(b, "}\n", 2)))
        goto fail;
    e->records++;
    return 0;
fail:
    b->len = start;
    if (b->data)
        b->data[start] = '\0';
    return rc;
}

int lp_wire_encoder_finish(struct lp_wire_encoder *e, struct lp_codec_ctx *ctx,
                           enum lp_codec codec, int level, struct lp_buf *value,
                           struct lp_wire_meta *meta)
{
    int rc = lp_codec_compress(ctx, codec, level, e->ndjson.data ? e->ndjson.data : "",
                               e->ndjson.len, value);
    if (rc)
        return rc;
    meta->format = LP_WIRE_FORMAT;
    meta->batch = 1;
    meta->encoding = codec;
    meta->records = e->records;
    return 0;
}

int lp_wire_ecs_event(const struct lp_wire_source *s, const struct lp_wire_record *r,
                      struct lp_buf *b)
{
    return lp_wire_ecs_event_ext(s, r, NULL, NULL, NULL, 0, b);
}

int lp_wire_ecs_event_ext(const struct lp_wire_source *s, const struct lp_wire_record *r,
                          const char *event_id, const char *ingested, const char *extra,
                          size_t extra_len, struct lp_buf *b)
{
    char ts[LP_RFC3339_MAX], idbuf[LP_ID_HEX_LEN + 1];
    const char *id = event_id;
    lp_time_format_rfc3339(r->ts_ns, 9, ts);
    if (!id) {
        lp_event_id(s->source_id, strlen(s->source_id), r->offset, idbuf);
        id = idbuf;
    }
    int rc, first;
#define TRY(x)            \
    do {                  \
        if ((rc = (x)))   \
            return rc;    \
    } while (0)
    TRY(lp_buf_puts(b, "{\"@timestamp\":\""));
    TRY(lp_buf_puts(b, ts));
    TRY(lp_buf_puts(b, "\",\"message\":"));
    if (r->message_json) {
        TRY(lp_buf_putc(b, '"'));
        TRY(lp_buf_append(b, r->message_json, r->message_json_len));
        TRY(lp_buf_putc(b, '"'));
    } else {
        TRY(lp_buf_append_json_string(b, r->message, r->message_len));
    }
    if (r->stream) {
        TRY(lp_buf_puts(b, ",\"stream\":"));
        TRY(lp_buf_append_json_string(b, r->stream, strlen(r->stream)));
    }
    TRY(lp_buf_puts(b, ",\"event\":{\"id\":\""));
    TRY(lp_buf_puts(b, id));
    if (ingested) {
        TRY(lp_buf_puts(b, "\",\"ingested\":\""));
        TRY(lp_buf_puts(b, ingested));
    }
    TRY(lp_buf_puts(b, "\"}"));
    {
        char num[24];
        size_t k = sizeof(num);
        uint64_t v = r->offset;
        do {
            num[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        TRY(lp_buf_puts(b, ",\"log\":{\"offset\":"));
        TRY(lp_buf_append(b, num + k, sizeof(num) - k));
    }
    if (s->path) {
        TRY(lp_buf_puts(b, ",\"file\":{\"path\":"));
        TRY(lp_buf_append_json_string(b, s->path, strlen(s->path)));
        TRY(lp_buf_putc(b, '}'));
    }
    TRY(lp_buf_putc(b, '}'));
    if (s->host) {
        TRY(lp_buf_puts(b, ",\"host\":{\"name\":"));
        TRY(lp_buf_append_json_string(b, s->host, strlen(s->host)));
        TRY(lp_buf_putc(b, '}'));
    }
    if (s->container_id || s->container_name || s->container_image || s->n_container_labels) {
        first = 1;
        TRY(lp_buf_puts(b, ",\"container\":{"));
        TRY(put_str(b, &first, "id", s->container_id));
        TRY(put_str(b, &first, "name", s->container_name));
        if (s->container_image) {
            TRY(lp_buf_puts(b, first ? "\"image\":{\"name\":" : ",\"image\":{\"name\":"));
            TRY(lp_buf_append_json_string(b, s->container_image, strlen(s->container_image)));
            TRY(lp_buf_putc(b, '}'));
            first = 0;
        }
        if (s->n_container_labels) {
            int lf = 1;
            TRY(lp_buf_puts(b, first ? "\"labels\":{" : ",\"labels\":{"));
            for (size_t i = 0; i < s->n_container_labels; i++)
                TRY(put_str(b, &lf, s->container_labels[i].key, s->container_labels[i].value));
            TRY(lp_buf_putc(b, '}'));
        }
        TRY(lp_buf_putc(b, '}'));
    }
    int owner = s->k8s_owner_name && owner_kind_ok(s->k8s_owner_kind);
    if (s->k8s_namespace || s->k8s_pod_name || s->k8s_pod_uid || s->k8s_container_name ||
        s->k8s_node_name || s->k8s_pod_ip || owner || s->n_k8s_labels || s->n_k8s_annotations) {
        first = 1;
        TRY(lp_buf_puts(b, ",\"kubernetes\":{"));
        TRY(put_str(b, &first, "namespace", s->k8s_namespace));
        if (s->k8s_pod_name || s->k8s_pod_uid || s->k8s_pod_ip) {
            int pf = 1;
            TRY(lp_buf_puts(b, first ? "\"pod\":{" : ",\"pod\":{"));
            first = 0;
            TRY(put_str(b, &pf, "name", s->k8s_pod_name));
            TRY(put_str(b, &pf, "uid", s->k8s_pod_uid));
            TRY(put_str(b, &pf, "ip", s->k8s_pod_ip));
            TRY(lp_buf_putc(b, '}'));
        }
        if (s->k8s_node_name) {
            TRY(lp_buf_puts(b, first ? "\"node\":{\"name\":" : ",\"node\":{\"name\":"));
            first = 0;
            TRY(lp_buf_append_json_string(b, s->k8s_node_name, strlen(s->k8s_node_name)));
            TRY(lp_buf_putc(b, '}'));
        }
        if (owner) {
            TRY(lp_buf_appendf(b, "%s\"%s\":{\"name\":", first ? "" : ",", s->k8s_owner_kind));
            first = 0;
            TRY(lp_buf_append_json_string(b, s->k8s_owner_name, strlen(s->k8s_owner_name)));
            TRY(lp_buf_putc(b, '}'));
        }
        if (s->n_k8s_labels) {
            int lf = 1;
            TRY(lp_buf_puts(b, first ? "\"labels\":{" : ",\"labels\":{"));
            first = 0;
            for (size_t i = 0; i < s->n_k8s_labels; i++)
                TRY(put_str(b, &lf, s->k8s_labels[i].key, s->k8s_labels[i].value));
            TRY(lp_buf_putc(b, '}'));
        }
        if (s->n_k8s_annotations) {
            int lf = 1;
            TRY(lp_buf_puts(b, first ? "\"annotations\":{" : ",\"annotations\":{"));
            first = 0;
            for (size_t i = 0; i < s->n_k8s_annotations; i++)
                TRY(put_str(b, &lf, s->k8s_annotations[i].key, s->k8s_annotations[i].value));
            TRY(lp_buf_putc(b, '}'));
        }
        if (s->k8s_container_name) {
            int cf = 1;
            TRY(lp_buf_puts(b, first ? "\"container\":{" : ",\"container\":{"));
            first = 0;
            TRY(put_str(b, &cf, "name", s->k8s_container_name));
            TRY(lp_buf_putc(b, '}'));
        }
        TRY(lp_buf_putc(b, '}'));
    }
    TRY(lp_buf_puts(b, ",\"logpipe\":{\"source_id\":"));
    TRY(lp_buf_append_json_string(b, s->source_id, strlen(s->source_id)));
    if (s->format) {
        TRY(lp_buf_puts(b, ",\"input_format\":"));
        TRY(lp_buf_append_json_string(b, s->format, strlen(s->format)));
    }
    if (r->flags) {
        TRY(lp_buf_puts(b, ",\"flags\":"));
        TRY(put_flag_array(b, r->flags));
    }
    if (r->lines > 1)
        TRY(lp_buf_appendf(b, ",\"lines\":%u", r->lines));
    if (s->parser) {
        TRY(lp_buf_puts(b, ",\"parser\":"));
        TRY(lp_buf_append_json_string(b, s->parser, strlen(s->parser)));
    }
    if (s->meta_state) {
        TRY(lp_buf_puts(b, ",\"metadata\":"));
        TRY(lp_buf_append_json_string(b, s->meta_state, strlen(s->meta_state)));
    }
    TRY(lp_buf_putc(b, '}'));
    if (extra_len) {
        TRY(lp_buf_putc(b, ','));
        TRY(lp_buf_append(b, extra, extra_len));
    }
    TRY(lp_buf_putc(b, '}'));
#undef TRY
    return 0;
}

/* ---- decoding ---- */

struct dec {
    struct lp_arena *arena;
    char *why;
    size_t whylen;
    size_t line; /* 1-based line within the NDJSON, for reasons */
};

__attribute__((format(printf, 3, 4))) static int fail(struct dec *d, int rc,
                                                      const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->line)
        snprintf(d->why, d->whylen, "line %zu: %s", d->line, msg);
    else
        snprintf(d->why, d->whylen, "%s", msg);
    return rc;
}

/* Copies an optional string member into the arena. -1 wrong type / no
 * memory (reason set), 0 ok. */
static int opt_str(struct dec *d, json_t *obj, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(d, LP_ECORRUPT, "%s is not a string", key);
    *out = lp_arena_strndup(d->arena, json_string_value(v), json_string_length(v));
    if (!*out)
        return fail(d, LP_ETOOBIG, "decoded batch exceeds memory cap at %s", key);
    return 0;
}

static json_t *path_get(json_t *obj, const char *dotted)
{
    /* ECS events nest ("log":{"offset":..}); batches use dotted keys. */
    json_t *v = json_object_get(obj, dotted);
    if (v)
        return v;
    char key[64];
    const char *p = dotted;
    while (obj && json_is_object(obj)) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        if (!dot)
            return obj;
        p = dot + 1;
    }
    return NULL;
}

static int opt_path_str(struct dec *d, json_t *obj, const char *key, const char **out)
{
    json_t *v = path_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(d, LP_ECORRUPT, "%s is not a string", key);
    *out = lp_arena_strndup(d->arena, json_string_value(v), json_string_length(v));
    return *out ? 0 : fail(d, LP_ETOOBIG, "decoded batch exceeds memory cap at %s", key);
}

/* An optional object of string labels, normalised (lp_wire_labels_normalize:
 * members that are not strings, or over the caps, are left out). */
static int opt_labels(struct dec *d, json_t *obj, const char *key, const struct lp_kv **out,
                      size_t *n_out)
{
    json_t *v = path_get(obj, key);
    *out = NULL;
    *n_out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail(d, LP_ECORRUPT, "%s is not an object", key);
    size_t n = json_object_size(v), k = 0;
    if (!n)
        return 0;
    if (n > 4 * LP_WIRE_MAX_LABELS)
        n = 4 * LP_WIRE_MAX_LABELS; /* the first ones: normalising keeps at most the cap */
    struct lp_kv *l = lp_arena_alloc(d->arena, n * sizeof(*l));
    if (!l)
        return fail(d, LP_ETOOBIG, "decoded batch exceeds memory cap at %s", key);
    const char *name;
    json_t *val;
    json_object_foreach(v, name, val)
    {
        if (k == n)
            break;
        if (!json_is_string(val) || strlen(name) > LP_WIRE_MAX_LABEL_KEY ||
            json_string_length(val) > LP_WIRE_MAX_LABEL_VALUE)
            continue;
        l[k].key = lp_arena_strndup(d->arena, name, strlen(name));
        l[k].value = lp_arena_strndup(d->arena, json_string_value(val), json_string_length(val));
        if (!l[k].key || !l[k].value)
            return fail(d, LP_ETOOBIG, "decoded batch exceeds memory cap at %s", key);
        if (strlen(l[k].value) != json_string_length(val))
            continue; /* a NUL inside: not a label value */
        k++;
    }
    *out = l;
    *n_out = lp_wire_labels_normalize(l, k);
    return 0;
}

static int decode_source(struct dec *d, json_t *o, struct lp_wire_source *s, int batch)
{
    int rc;
    if (batch) {
        json_t *f = json_object_get(o, "logpipe.format");
        if (!json_is_integer(f))
            return fail(d, LP_ECORRUPT, "%s", "source object without logpipe.format");
        if (json_integer_value(f) != LP_WIRE_FORMAT)
            return fail(d, LP_EUNSUPP, "%s", "unsupported logpipe.format in source object");
    }
    if ((rc = opt_path_str(d, o, "logpipe.source_id", &s->source_id)) ||
        (rc = opt_path_str(d, o, "logpipe.input_format", &s->format)) ||
        (rc = opt_path_str(d, o, "host.name", &s->host)) ||
        (rc = opt_path_str(d, o, "log.file.path", &s->path)) ||
        (rc = opt_path_str(d, o, "container.id", &s->container_id)) ||
        (rc = opt_path_str(d, o, "container.name", &s->container_name)) ||
        (rc = opt_path_str(d, o, "kubernetes.namespace", &s->k8s_namespace)) ||
        (rc = opt_path_str(d, o, "kubernetes.pod.name", &s->k8s_pod_name)) ||
        (rc = opt_path_str(d, o, "kubernetes.pod.uid", &s->k8s_pod_uid)) ||
        (rc = opt_path_str(d, o, "kubernetes.container.name", &s->k8s_container_name)) ||
        (rc = opt_path_str(d, o, "container.image.name", &s->container_image)) ||
        (rc = opt_labels(d, o, "container.labels", &s->container_labels, &s->n_container_labels)) ||
        (rc = opt_path_str(d, o, "kubernetes.node.name", &s->k8s_node_name)) ||
        (rc = opt_path_str(d, o, "kubernetes.pod.ip", &s->k8s_pod_ip)) ||
        (rc = opt_labels(d, o, "kubernetes.labels", &s->k8s_labels, &s->n_k8s_labels)) ||
        (rc = opt_labels(d, o, "kubernetes.annotations", &s->k8s_annotations,
                         &s->n_k8s_annotations)) ||
        (rc = opt_path_str(d, o, "logpipe.parser", &s->parser)) ||
        (rc = opt_path_str(d, o, "logpipe.metadata", &s->meta_state)))
        return rc;
    for (size_t i = 0; i < LP_WIRE_OWNER_KINDS && !s->k8s_owner_name; i++) {
        char key[64];
        snprintf(key, sizeof(key), "kubernetes.%s.name", lp_wire_owner_kinds[i]);
        if ((rc = opt_path_str(d, o, key, &s->k8s_owner_name)))
            return rc;
        if (s->k8s_owner_name)
            s->k8s_owner_kind = lp_wire_owner_kinds[i];
    }
    if (!s->source_id || !*s->source_id)
        return fail(d, LP_ECORRUPT, "%s", "missing logpipe.source_id");
    return 0;
}

static int decode_record(struct dec *d, json_t *o, struct lp_wire_record *r)
{
    memset(r, 0, sizeof(*r));
    json_t *ts = json_object_get(o, "@timestamp");
    if (!json_is_string(ts) ||
        lp_time_parse_rfc3339(json_string_value(ts), json_string_length(ts), &r->ts_ns))
        return fail(d, LP_ECORRUPT, "%s", "@timestamp missing or not RFC 3339");
    json_t *off = path_get(o, "log.offset");
    if (!json_is_integer(off) || json_integer_value(off) < 0)
        return fail(d, LP_ECORRUPT, "%s", "log.offset missing or not a non-negative integer");
    r->offset = (uint64_t)json_integer_value(off);
    json_t *msg = json_object_get(o, "message");
    if (!json_is_string(msg))
        return fail(d, LP_ECORRUPT, "%s", "message missing or not a string");
    r->message_len = json_string_length(msg);
    r->message = lp_arena_strndup(d->arena, json_string_value(msg), r->message_len);
    if (!r->message)
        return fail(d, LP_ETOOBIG, "%s", "decoded batch exceeds memory cap");
    int rc = opt_str(d, o, "stream", &r->stream);
    if (rc)
        return rc;
    json_t *flags = path_get(o, "logpipe.flags");
    if (flags) {
        size_t i;
        json_t *f;
        if (!json_is_array(flags))
            return fail(d, LP_ECORRUPT, "%s", "logpipe.flags is not an array");
        json_array_foreach(flags, i, f)
        {
            const char *fs = json_string_value(f);
            if (!fs)
                return fail(d, LP_ECORRUPT, "%s", "logpipe.flags holds a non-string");
            for (unsigned b = 0; b < LP_REC_FLAG_COUNT; b++)
                if (strcmp(fs, lp_wire_flag_names[b]) == 0)
                    r->flags |= 1u << b;
            /* unknown flags are ignored: newer shippers may add some */
        }
    }
    json_t *lines = path_get(o, "log.lines");
    if (!lines)
        lines = path_get(o, "logpipe.lines");
    if (lines) {
        if (!json_is_integer(lines) || json_integer_value(lines) < 0 ||
            json_integer_value(lines) > UINT32_MAX)
            return fail(d, LP_ECORRUPT, "%s", "log.lines is not a count");
        r->lines = (uint32_t)json_integer_value(lines);
    }
    return 0;
}

/* ---- the fast path for record lines ----
 * Lines written by lp_wire_encoder_add have one fixed shape:
 *   {"@timestamp":"..","stream":"..","log.offset":N,"message":"..",
 *    "logpipe.flags":[..],"log.lines":N}   (stream, flags, lines optional)
 * They are decoded here without building a JSON object (jansson was most of
 * the aggregator's time). Anything else — other key order, whitespace,
 * unusual escapes, invalid UTF-8, an error of any kind — returns 0 and the
 * line goes through jansson, which decides and explains. The fuzz target
 * checks that both paths agree. */

int lp_wire_fast_decode = 1;
atomic_ulong lp_wire_slow_lines;

static int lit(const char **p, const char *end, const char *s, size_t n)
{
    if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* A string without escapes or non-ASCII bytes, after its opening quote. */
static int plain_string(const char **p, const char *end, const char **s, size_t *n)
{
    const char *q = *p;
    while (q < end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c == '\\' || c < 0x20 || c >= 0x80)
            return 0;
        q++;
    }
    if (q == end)
        return 0;
    *s = *p;
    *n = (size_t)(q - *p);
    *p = q + 1;
    return 1;
}

static int uint_value(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    if (q == end || *q < '0' || *q > '9' || (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9'))
        return 0;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        if (v > (max - (uint64_t)(*q - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    *p = q;
    *out = v;
    return 1;
}

static int hex4(const char *q, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = q[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Bytes that end a plain run inside a JSON string: '"', '\\', controls and
 * non-ASCII (checked as UTF-8). */
static const unsigned char str_special[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

/* A JSON string after its opening quote, unescaped into the arena (one
 * pass; the unescaped string is never longer than the rest of the line). */
static int json_string_fast(struct dec *d, const char **p, const char *end, const char **s,
                            size_t *n, int *canonical)
{
    const char *q = *p;
    *canonical = 1;
    char *out = lp_arena_alloc(d->arena, (size_t)(end - q) + 1);
    if (!out)
        return 0;
    size_t k = 0;
    for (;;) {
        const char *run = q;
        /* 8 bytes at a time while none is special ('"', '\\', < 0x20,
         * >= 0x80; a false alarm only drops to the byte loop) */
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        while (end - q >= 8) {
            uint64_t v;
            memcpy(&v, q, 8);
            uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
            uint64_t m = ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash) |
                         ((v - ones * 0x20) & ~v) | v;
            if (m & highs)
                break;
            q += 8;
        }
        while (q < end && !str_special[(unsigned char)*q])
            q++;
        memcpy(out + k, run, (size_t)(q - run));
        k += (size_t)(q - run);
        if (q == end)
            return 0; /* no closing quote */
        unsigned char c = (unsigned char)*q;
        if (c == '"')
            break;
        if (c >= 0x80) {
            size_t len;
            if (!lp_utf8_next((const unsigned char *)q, (size_t)(end - q), &len))
                return 0;
            memcpy(out + k, q, len);
            k += len;
            q += len;
            continue;
        }
        if (c < 0x20 || end - q < 2)
            return 0;
        char e = q[1];
        q += 2;
        switch (e) {
        case '"': out[k++] = '"'; break;
        case '\\': out[k++] = '\\'; break;
        case '/': out[k++] = '/'; *canonical = 0; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'u': {
            unsigned u;
            if (end - q < 4 || !hex4(q, &u) || (u >= 0xD800 && u <= 0xDFFF))
                return 0; /* surrogates: jansson's business */
            /* our escaper writes \u00xx (lowercase) only for controls
             * without a short form */
            if (u >= 0x20 || u == '\n' || u == '\r' || u == '\t' || u == '\b' || u == '\f')
                *canonical = 0;
            for (int h = 0; h < 4; h++)
                if (q[h] >= 'A' && q[h] <= 'F')
                    *canonical = 0;
            q += 4;
            if (u < 0x80) {
                out[k++] = (char)u;
            } else if (u < 0x800) {
                out[k++] = (char)(0xC0 | (u >> 6));
                out[k++] = (char)(0x80 | (u & 0x3F));
            } else {
                out[k++] = (char)(0xE0 | (u >> 12));
                out[k++] = (char)(0x80 | ((u >> 6) & 0x3F));
                out[k++] = (char)(0x80 | (u & 0x3F));
            }
            break;
        }
        default: return 0;
        }
    }
    out[k] = '\0';
    *s = out;
    *n = k;
    *p = q + 1;
    return 1;
}

#define LIT(s) lit(&p, end, s, sizeof(s) - 1)

static int fast_record(struct dec *d, const char *p, size_t n, struct lp_wire_record *r)
{
    const char *end = p + n, *s;
    size_t len;
    uint64_t v;
    memset(r, 0, sizeof(*r));
    if (!LIT("{\"@timestamp\":\"") || !plain_string(&p, end, &s, &len) ||
        lp_time_parse_rfc3339(s, len, &r->ts_ns))
        return 0;
    if (LIT(",\"stream\":\"")) {
        if (!plain_string(&p, end, &s, &len))
            return 0;
        /* the two streams there are need no copy per record */
        if (len == 6 && memcmp(s, "stdout", 6) == 0)
            r->stream = "stdout";
        else if (len == 6 && memcmp(s, "stderr", 6) == 0)
            r->stream = "stderr";
        else if (!(r->stream = lp_arena_strndup(d->arena, s, len)))
            return 0;
    }
    if (!LIT(",\"log.offset\":") || !uint_value(&p, end, INT64_MAX, &v))
        return 0;
    r->offset = v;
    const char *raw = p + 12;
    int canonical;
    if (!LIT(",\"message\":\"") ||
        !json_string_fast(d, &p, end, &r->message, &r->message_len, &canonical))
        return 0;
    if (canonical) {
        r->message_json = raw;
        r->message_json_len = (size_t)(p - 1 - raw);
    }
    if (LIT(",\"logpipe.flags\":[")) {
        if (LIT("]"))
            goto flags_done;
        for (;;) {
            if (!LIT("\"") || !plain_string(&p, end, &s, &len))
                return 0;
            for (unsigned b = 0; b < LP_REC_FLAG_COUNT; b++)
                if (strlen(lp_wire_flag_names[b]) == len &&
                    memcmp(s, lp_wire_flag_names[b], len) == 0)
                    r->flags |= 1u << b;
            if (LIT("]"))
                break;
            if (!LIT(","))
                return 0;
        }
    }
flags_done:
    if (LIT(",\"log.lines\":")) {
        if (!uint_value(&p, end, UINT32_MAX, &v))
            return 0;
        r->lines = (uint32_t)v;
    }
    return LIT("}") && p == end;
}

#undef LIT

static json_t *parse_object(struct dec *d, const char *p, size_t n, int *rc)
{
    json_error_t err;
    json_t *o = json_loadb(p, n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        *rc = fail(d, LP_ECORRUPT, "invalid JSON: %s", err.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        *rc = fail(d, LP_ECORRUPT, "%s", "not a JSON object");
        return NULL;
    }
    return o;
}

int lp_wire_decode(const struct lp_wire_meta *meta, const void *value, size_t len, size_t cap,
                   struct lp_codec_ctx *ctx, struct lp_buf *scratch, struct lp_arena *arena,
                   struct lp_wire_batch *out, char *why, size_t whylen)
{
    struct dec d = {arena, why, whylen, 0};
    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    if (meta->format != LP_WIRE_FORMAT)
        return fail(&d, LP_EUNSUPP, "%s", "missing logpipe-format header");
    lp_buf_reset(scratch);
    int rc = lp_codec_decompress(ctx, meta->encoding, value, len, cap, scratch);
    if (rc == LP_ETOOBIG)
        return fail(&d, rc, "%s decompressed size exceeds the cap",
                    lp_codec_name(meta->encoding));
    if (rc)
        return fail(&d, rc, "%s payload is corrupt or truncated", lp_codec_name(meta->encoding));
    const char *p = scratch->data ? scratch->data : "";
    const char *end = p + scratch->len;
    json_t *o;

    if (!meta->batch) {
        /* per-record: one ECS event */
        if (!(o = parse_object(&d, p, scratch->len, &rc)))
            return rc;
        out->recs = lp_arena_alloc(arena, sizeof(*out->recs));
        if (!out->recs)
            rc = fail(&d, LP_ETOOBIG, "%s", "decoded batch exceeds memory cap");
        else if (!(rc = decode_source(&d, o, &out->src, 0)) &&
                 !(rc = decode_record(&d, o, &out->recs[0])))
            out->n = 1;
        json_decref(o);
        return rc;
    }

    /* batch: count lines first to size the record array once */
    size_t nlines = 0;
    for (const char *q = p; q < end; q++)
        nlines += *q == '\n';
    if (scratch->len && end[-1] != '\n')
        nlines++; /* tolerate a missing final newline */
    if (nlines == 0)
        return fail(&d, LP_ECORRUPT, "%s", "empty batch (no source object)");
    if (meta->records && meta->records != nlines - 1) {
        char n[80];
        snprintf(n, sizeof(n), "%u records in header, %zu in body", meta->records, nlines - 1);
        return fail(&d, LP_ECORRUPT, "record count mismatch: %s", n);
    }
    out->recs = lp_arena_alloc(arena, (nlines - 1 ? nlines - 1 : 1) * sizeof(*out->recs));
    if (!out->recs)
        return fail(&d, LP_ETOOBIG, "%s", "decoded batch exceeds memory cap");
    for (size_t i = 0; p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        d.line = i + 1;
        if (i > 0 && lp_wire_fast_decode && fast_record(&d, p, n, &out->recs[i - 1])) {
            out->n++;
            p += n + (nl ? 1 : 0);
            continue;
        }
        if (i > 0)
            atomic_fetch_add_explicit(&lp_wire_slow_lines, 1, memory_order_relaxed);
        if (!(o = parse_object(&d, p, n, &rc)))
            return rc;
        rc = i == 0 ? decode_source(&d, o, &out->src, 1) : decode_record(&d, o, &out->recs[i - 1]);
        json_decref(o);
        if (rc)
            return rc;
        if (i > 0)
            out->n++;
        p += n + (nl ? 1 : 0);
    }
    return 0;
}
