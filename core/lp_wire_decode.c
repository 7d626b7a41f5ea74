/* The wire's decoder (lp_wire.h): jansson-based for source objects and
 * anything unusual, validating every field it uses and naming the first
 * problem it sees; a fast path for the encoder's own record lines. */
#include "lp_wire.h"
#include "lp_wire_int.h"

#include "lp_arena.h"
#include "lp_error.h"
#include "lp_json.h"
#include "lp_kv.h"
#include "lp_time.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dec {
    struct lp_arena *arena;
    char *why;
    size_t whylen;
    size_t line; /* 1-based line within the NDJSON, for reasons */
};

__attribute__((format(printf, 3, 4))) static int fail(struct dec *d, int rc, const char *fmt, ...)
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

static int opt_path_str(struct dec *d, json_t *obj, const char *key, const char **out)
{
    json_t *v = lp_json_get_path(obj, key);
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
    json_t *v = lp_json_get_path(obj, key);
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

/* kubernetes.<kind>.name for the first known kind present. */
static int opt_owner(struct dec *d, json_t *o, const char **name, const char **kind)
{
    *name = *kind = NULL;
    for (size_t i = 0; i < LP_WIRE_OWNER_KINDS && !*name; i++) {
        char key[64];
        snprintf(key, sizeof(key), "kubernetes.%s.name", lp_wire_owner_kinds[i]);
        int rc = opt_path_str(d, o, key, name);
        if (rc)
            return rc;
        if (*name)
            *kind = lp_wire_owner_kinds[i];
    }
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
    for (size_t i = 0; i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        void *slot = (char *)s + f->off;
        if (f->kind == LP_WF_STR)
            rc = opt_path_str(d, o, f->key, (const char **)slot);
        else if (f->kind == LP_WF_LABELS)
            rc = opt_labels(d, o, f->key, (const struct lp_kv **)slot,
                            (size_t *)(void *)((char *)s + f->aux));
        else
            rc = opt_owner(d, o, (const char **)slot, (const char **)(void *)((char *)s + f->aux));
        if (rc)
            return rc;
    }
    if (!s->source_id || !*s->source_id)
        return fail(d, LP_ECORRUPT, "%s", "missing logpipe.source_id");
    /* the source's part of every event of the batch, rendered once */
    struct lp_buf ecs;
    lp_buf_init(&ecs, 0);
    if (lp_wire_ecs_source(s, &ecs) == 0 && ecs.len) {
        s->ecs = lp_arena_strndup(d->arena, ecs.data, ecs.len);
        s->ecs_len = s->ecs ? ecs.len : 0;
    }
    lp_buf_release(&ecs);
    return 0;
}

static int decode_record(struct dec *d, json_t *o, struct lp_wire_record *r)
{
    memset(r, 0, sizeof(*r));
    json_t *ts = json_object_get(o, "@timestamp");
    if (!json_is_string(ts) ||
        lp_time_parse_rfc3339(json_string_value(ts), json_string_length(ts), &r->ts_ns))
        return fail(d, LP_ECORRUPT, "%s", "@timestamp missing or not RFC 3339");
    json_t *off = lp_json_get_path(o, "log.offset");
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
    json_t *flags = lp_json_get_path(o, "logpipe.flags");
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
    json_t *lines = lp_json_get_path(o, "log.lines");
    if (!lines)
        lines = lp_json_get_path(o, "logpipe.lines");
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
    if (q == end || *q < '0' || *q > '9' ||
        (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9'))
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
    [0 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 1,
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
        case '/':
            out[k++] = '/';
            *canonical = 0;
            break;
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
        return fail(&d, rc, "%s decompressed size exceeds the cap", lp_codec_name(meta->encoding));
    if (rc)
        return fail(&d, rc, "%s payload is corrupt or truncated", lp_codec_name(meta->encoding));
    const char *p = scratch->data;
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
