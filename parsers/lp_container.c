/* Docker json-file and CRI line decoding. Docker lines go through jansson;
 * CRI lines are split by hand (three space-separated fields, then bytes). */
#include "lp_container.h"

#include "lp_buf.h"
#include "lp_error.h"
#include "lp_time.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int lp_cfmt_parse(const char *name)
{
    static const char *const names[] = {"auto", "docker", "cri", "raw"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
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

static int docker_decode(const char *line, size_t n, struct lp_buf *scratch,
                         struct lp_cline *out, char *why, size_t whylen)
{
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
    out->stream = !s ? LP_STREAM_NONE : strcmp(s, "stderr") == 0 ? LP_STREAM_STDERR
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
    out->msg = scratch->data ? scratch->data : "";
    out->len = len;
out:
    json_decref(o);
    return rc;
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
    default:
        return 0;
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
