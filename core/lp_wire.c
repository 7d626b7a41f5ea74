/* Batch wire format: the headers, the source-field table and the NDJSON
 * writer (hand-rolled for speed on the shipper's hot path; the escaper
 * guarantees valid JSON). The ECS renderer is lp_wire_ecs.c, the decoder
 * lp_wire_decode.c. */
#include "lp_wire.h"
#include "lp_wire_int.h"

#include "lp_error.h"
#include "lp_kv.h"
#include "lp_time.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* clang-format off */
#define STR(m, key) {key, LP_WF_STR, offsetof(struct lp_wire_source, m), 0}
#define LABELS(m, n, key)                                                                     \
    {key, LP_WF_LABELS, offsetof(struct lp_wire_source, m), offsetof(struct lp_wire_source, n)}
/* clang-format on */

const struct lp_wire_field lp_wire_source_fields[] = {
    STR(path, "log.file.path"),
    STR(host, "host.name"),
    STR(container_id, "container.id"),
    STR(container_name, "container.name"),
    STR(container_image, "container.image.name"),
    LABELS(container_labels, n_container_labels, "container.labels"),
    STR(k8s_namespace, "kubernetes.namespace"),
    STR(k8s_pod_name, "kubernetes.pod.name"),
    STR(k8s_pod_uid, "kubernetes.pod.uid"),
    STR(k8s_pod_ip, "kubernetes.pod.ip"),
    STR(k8s_node_name, "kubernetes.node.name"),
    {"kubernetes.*.name", LP_WF_OWNER, offsetof(struct lp_wire_source, k8s_owner_name),
     offsetof(struct lp_wire_source, k8s_owner_kind)},
    LABELS(k8s_labels, n_k8s_labels, "kubernetes.labels"),
    LABELS(k8s_annotations, n_k8s_annotations, "kubernetes.annotations"),
    STR(k8s_container_name, "kubernetes.container.name"),
    STR(source_id, "logpipe.source_id"),
    STR(format, "logpipe.input_format"),
    STR(parser, "logpipe.parser"),
    STR(meta_state, "logpipe.metadata"),
};
const size_t lp_wire_n_source_fields =
    sizeof(lp_wire_source_fields) / sizeof(lp_wire_source_fields[0]);

const struct lp_wire_field *lp_wire_source_field(const char *key)
{
    for (size_t i = 0; i < lp_wire_n_source_fields; i++)
        if (lp_wire_source_fields[i].kind != LP_WF_OWNER &&
            strcmp(lp_wire_source_fields[i].key, key) == 0)
            return &lp_wire_source_fields[i];
    return NULL;
}

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
        if (len >= sizeof(tmp) ||
            (memcpy(tmp, value, len), tmp[len] = '\0', lp_codec_parse(tmp, &m->encoding) != 0)) {
            snprintf(why, whylen, "unsupported content-encoding '%.*s'", (int)(len > 16 ? 16 : len),
                     (const char *)value);
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

int lp_wire_put_str(struct lp_buf *b, int *first, const char *key, const char *v)
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
    if ((rc = lp_buf_puts(b, ",\"")) || (rc = lp_buf_puts(b, key)) || (rc = lp_buf_puts(b, "\":{")))
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = lp_wire_put_str(b, &first, l[i].key, l[i].value)))
            return rc;
    return lp_buf_putc(b, '}');
}

const char *const lp_wire_owner_kinds[LP_WIRE_OWNER_KINDS] = {
    "deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob"};

int lp_wire_owner_kind_known(const char *k)
{
    for (size_t i = 0; k && i < LP_WIRE_OWNER_KINDS; i++)
        if (strcmp(k, lp_wire_owner_kinds[i]) == 0)
            return 1;
    return 0;
}

/* ,"kubernetes.<kind>.name":"..." for a known kind. */
static int put_owner(struct lp_buf *b, const struct lp_wire_source *s,
                     const struct lp_wire_field *f)
{
    char key[64];
    const char *name = lp_wire_owner_key(s, f, key);
    int first = 0;
    return name ? lp_wire_put_str(b, &first, key, name) : 0;
}

const char *lp_wire_owner_key(const struct lp_wire_source *s, const struct lp_wire_field *f,
                              char key[64])
{
    const char *name = lp_wire_field_str(s, f);
    const char *kind = *(const char *const *)(const void *)((const char *)s + f->aux);
    if (!name || !lp_wire_owner_kind_known(kind))
        return NULL;
    snprintf(key, 64, "kubernetes.%s.name", kind);
    return name;
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
    int first = 0;
    int rc = lp_buf_appendf(b, "{\"logpipe.format\":%d", LP_WIRE_FORMAT);
    for (size_t i = 0; !rc && i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        size_t n = 0;
        const struct lp_kv *l;
        if (f->kind == LP_WF_STR)
            rc = lp_wire_put_str(b, &first, f->key, lp_wire_field_str(s, f));
        else if (f->kind == LP_WF_LABELS) {
            l = lp_wire_field_labels(s, f, &n);
            rc = put_labels(b, f->key, l, n);
        } else
            rc = put_owner(b, s, f);
    }
    if (!rc)
        rc = lp_buf_puts(b, "}\n");
    if (rc)
        lp_buf_reset(b);
    return rc;
}

const char *const lp_wire_flag_names[LP_REC_FLAG_COUNT] = {"truncated", "partial", "utf8_replaced",
                                                           "malformed"};

int lp_wire_put_flag_array(struct lp_buf *b, unsigned flags)
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
    return lp_wire_put_flag_array(b, flags);
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
    lp_buf_truncate(b, start);
    return rc;
}

int lp_wire_encoder_finish(struct lp_wire_encoder *e, struct lp_codec_ctx *ctx, enum lp_codec codec,
                           int level, struct lp_buf *value, struct lp_wire_meta *meta)
{
    int rc = lp_codec_compress(ctx, codec, level, e->ndjson.data, e->ndjson.len, value);
    if (rc)
        return rc;
    meta->format = LP_WIRE_FORMAT;
    meta->batch = 1;
    meta->encoding = codec;
    meta->records = e->records;
    return 0;
}
