/* Docker json-file and CRI line decoding. Docker lines go through jansson;
 * CRI lines are split by hand (three space-separated fields, then bytes). */
#include "lp_container.h"

#include "lp_buf.h"
#include "lp_error.h"
#include "lp_time.h"

#include <jansson.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

int lp_cfmt_parse(const char *name)
{
    static const char *const names[] = {"auto", "docker", "cri", "raw"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return LP_EINVAL;
}

const char *lp_cfmt_name(enum lp_cfmt f)
{
    static const char *const names[] = {"auto", "docker", "cri", "raw"};
    return f <= LP_CFMT_RAW ? names[f] : "raw";
}

const char *lp_stream_name(enum lp_stream s)
{
    return s == LP_STREAM_STDOUT ? "stdout" : s == LP_STREAM_STDERR ? "stderr" : NULL;
}

static int cri_split(const char *line, size_t n, struct lp_cline *out, char *why, size_t whylen)
{
    const char *sp1 = memchr(line, ' ', n);
    if (!sp1) {
        snprintf(why, whylen, "CRI line without fields");
        return LP_ECORRUPT;
    }
    if (lp_time_parse_rfc3339(line, (size_t)(sp1 - line), &out->ts_ns)) {
        snprintf(why, whylen, "CRI line with an invalid timestamp");
        return LP_ECORRUPT;
    }
    const char *p = sp1 + 1, *end = line + n;
    if ((size_t)(end - p) >= 7 && memcmp(p, "stdout ", 7) == 0)
        out->stream = LP_STREAM_STDOUT;
    else if ((size_t)(end - p) >= 7 && memcmp(p, "stderr ", 7) == 0)
        out->stream = LP_STREAM_STDERR;
    else {
        snprintf(why, whylen, "CRI line with an unknown stream");
        return LP_ECORRUPT;
    }
    p += 7;
    /* tag: P or F, possibly followed by more ':'-separated tags */
    if (p >= end || (*p != 'P' && *p != 'F')) {
        snprintf(why, whylen, "CRI line without a P/F tag");
        return LP_ECORRUPT;
    }
    out->partial = *p == 'P';
    while (p < end && *p != ' ')
        p++;
    if (p < end)
        p++; /* the single space before the message */
    out->msg = p;
    out->len = (size_t)(end - p);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return LP_ECORRUPT;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return LP_ECORRUPT;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return LP_ECORRUPT;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Fast path for dockerd's own output, which is always
 *   {"log":"<escaped>","stream":"stdout|stderr","time":"<RFC 3339>"}
 * in this order without spaces. jansson would build an object tree and
 * allocate per line: it was 40% of the shipper's CPU on Docker files.
 * Anything else (other key order, spaces, odd escapes) returns -1 and
 * takes the jansson path, which also produces the error reasons. */
static int docker_fast(const char *line, size_t n, struct lp_buf *scratch, struct lp_cline *out)
{
    static const char pfx[] = "{\"log\":\"", mid[] = "\",\"stream\":\"", tm[] = "\",\"time\":\"";
    const char *p = line, *end = line + n;
    if (n < sizeof(pfx) - 1 || memcmp(p, pfx, sizeof(pfx) - 1) != 0)
        return LP_ECORRUPT;
    p += sizeof(pfx) - 1;
    lp_buf_reset(scratch);
    if (lp_buf_reserve(scratch, (size_t)(end - p)))
        return LP_ECORRUPT;
    char *w = scratch->data;
    while (p < end && *p != '"') {
        /* copy 8 bytes at a time while none is a control byte, '"' or '\\'
         * (SWAR tests, as in lp_buf_append_json_string): most of a line */
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
            uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\');
            if ((((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high)
                break;
            memcpy(w, p, 8);
            w += 8;
            p += 8;
        }
        if (p >= end || *p == '"')
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            if (end - p < 2)
                return LP_ECORRUPT;
            char e = p[1];
            p += 2;
            switch (e) {
            case 'n': *w++ = '\n'; break;
            case 't': *w++ = '\t'; break;
            case 'r': *w++ = '\r'; break;
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '/': *w++ = '/'; break;
            case 'b': *w++ = '\b'; break;
            case 'f': *w++ = '\f'; break;
            case 'u': {
                unsigned cp, lo;
                if (hex4(p, end, &cp))
                    return LP_ECORRUPT;
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return LP_ECORRUPT;
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return LP_ECORRUPT;
                }
                /* UTF-8 encoding is never longer than the \u escape it replaces */
                if (cp < 0x80) {
                    *w++ = (char)cp;
                } else if (cp < 0x800) {
                    *w++ = (char)(0xC0 | cp >> 6);
                    *w++ = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    *w++ = (char)(0xE0 | cp >> 12);
                    *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *w++ = (char)(0x80 | (cp & 0x3F));
                } else {
                    *w++ = (char)(0xF0 | cp >> 18);
                    *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                    *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *w++ = (char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: return LP_ECORRUPT;
            }
            continue;
        }
        if (c < 0x20)
            return LP_ECORRUPT;
        *w++ = (char)c;
        p++;
    }
    if (p >= end)
        return LP_ECORRUPT;
    size_t len = (size_t)(w - scratch->data);
    if ((size_t)(end - p) < sizeof(mid) - 1 || memcmp(p, mid, sizeof(mid) - 1) != 0)
        return LP_ECORRUPT;
    p += sizeof(mid) - 1;
    if (end - p >= 6 && memcmp(p, "stdout", 6) == 0)
        out->stream = LP_STREAM_STDOUT;
    else if (end - p >= 6 && memcmp(p, "stderr", 6) == 0)
        out->stream = LP_STREAM_STDERR;
    else
        return LP_ECORRUPT;
    p += 6;
    if ((size_t)(end - p) < sizeof(tm) - 1 || memcmp(p, tm, sizeof(tm) - 1) != 0)
        return LP_ECORRUPT;
    p += sizeof(tm) - 1;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q || end - q != 2 || q[1] != '}' || lp_time_parse_rfc3339(p, (size_t)(q - p), &out->ts_ns))
        return LP_ECORRUPT;
    out->partial = !(len && scratch->data[len - 1] == '\n');
    if (!out->partial)
        len--;
    lp_buf_truncate(scratch, len);
    out->msg = scratch->data;
    out->len = len;
    return 0;
}

static int docker_decode(const char *line, size_t n, struct lp_buf *scratch, struct lp_cline *out,
                         char *why, size_t whylen)
{
    out->ts_ns = 0;
    out->partial = 0;
    json_error_t err;
    json_t *o = json_loadb(line, n, JSON_ALLOW_NUL, &err);
    if (!o || !json_is_object(o)) {
        snprintf(why, whylen, "Docker line is not a JSON object: %s", o ? "other JSON" : err.text);
        json_decref(o);
        return LP_ECORRUPT;
    }
    int rc = 0;
    json_t *log = json_object_get(o, "log");
    json_t *stream = json_object_get(o, "stream");
    json_t *t = json_object_get(o, "time");
    if (!json_is_string(log)) {
        snprintf(why, whylen, "Docker line without a \"log\" string");
        rc = LP_ECORRUPT;
        goto out;
    }
    const char *s = json_string_value(stream);
    out->stream = !s                         ? LP_STREAM_NONE
                  : strcmp(s, "stderr") == 0 ? LP_STREAM_STDERR
                                             : LP_STREAM_STDOUT;
    if (json_is_string(t) &&
        lp_time_parse_rfc3339(json_string_value(t), json_string_length(t), &out->ts_ns)) {
        snprintf(why, whylen, "Docker line with an invalid time");
        rc = LP_ECORRUPT;
        goto out;
    }
    size_t len = json_string_length(log);
    const char *v = json_string_value(log);
    out->partial = !(len && v[len - 1] == '\n');
    if (!out->partial)
        len--;
    lp_buf_reset(scratch);
    if (lp_buf_append(scratch, v, len)) {
        snprintf(why, whylen, "Docker line larger than the scratch limit");
        rc = LP_ETOOBIG;
        goto out;
    }
    out->msg = scratch->data;
    out->len = len;
out:
    json_decref(o);
    return rc;
}

int lp_docker_decode_slow(const char *line, size_t n, struct lp_buf *scratch, struct lp_cline *out,
                          char *why, size_t whylen)
{
    return docker_decode(line, n, scratch, out, why, whylen);
}

int lp_cline_decode(enum lp_cfmt fmt, const char *line, size_t n, struct lp_buf *scratch,
                    struct lp_cline *out, char *why, size_t whylen)
{
    out->ts_ns = 0;
    out->stream = LP_STREAM_NONE;
    out->partial = 0;
    out->msg = line;
    out->len = n;
    switch (fmt) {
    case LP_CFMT_DOCKER: {
        if (docker_fast(line, n, scratch, out) == 0)
            return 0;
        int rc = docker_decode(line, n, scratch, out, why, whylen);
        if (rc) {
            out->msg = line;
            out->len = n;
            out->partial = 0;
        }
        return rc;
    }
    case LP_CFMT_CRI: {
        int rc = cri_split(line, n, out, why, whylen);
        if (rc) {
            out->msg = line;
            out->len = n;
            out->partial = 0;
            out->stream = LP_STREAM_NONE;
            out->ts_ns = 0;
        }
        return rc;
    }
    default: return 0;
    }
}

enum lp_cfmt lp_cfmt_detect(const char *line, size_t n)
{
    struct lp_cline c;
    char why[8];
    if (n && line[0] == '{') {
        struct lp_buf scratch = LP_BUF_INIT;
        int rc = docker_decode(line, n, &scratch, &c, why, sizeof(why));
        lp_buf_release(&scratch);
        if (rc == 0)
            return LP_CFMT_DOCKER;
    }
    if (cri_split(line, n, &c, why, sizeof(why)) == 0)
        return LP_CFMT_CRI;
    return LP_CFMT_RAW;
}

enum lp_cfmt lp_cfmt_detect_cut(const char *line, size_t n)
{
    static const char pfx[] = "{\"log\":\"";
    if (n >= sizeof(pfx) - 1 && memcmp(line, pfx, sizeof(pfx) - 1) == 0)
        return LP_CFMT_DOCKER;
    return lp_cfmt_detect(line, n);
}
