/* json, logfmt, regex, syslog and access-log message parsers. */
#include "lp_msgparse.h"
#include "lp_alloc.h"
#include "lp_regex.h"

#include "lp_buf.h"
#include "lp_error.h"
#include "lp_time.h"
#include "lp_timestamp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_JSON, K_LOGFMT, K_REGEX, K_SYSLOG, K_ACCESS };

struct lp_msgparser {
    enum kind kind;
    char *name;
    char *target;
    char *time_field;
    char *time_format;
    pcre2_code *re;
    uint32_t ngroups;
};

/* common and combined log format; "__" stands for "." in field names */
static const char access_pattern[] =
    "^(?<source__address>\\S+) \\S+ (?<user__name>\\S+) \\[(?<time>[^\\]]+)\\] "
    "\"(?<http__request__method>[A-Z]+) (?<url__original>\\S+)(?: "
    "HTTP/(?<http__version>[0-9.]+))?\" "
    "(?<http__response__status_code>\\d{3}) (?<http__response__body__bytes>\\d+|-)"
    "(?: \"(?<http__request__referrer>[^\"]*)\" \"(?<user_agent__original>[^\"]*)\")?.*$";

static char *dup_or_null(const char *s)
{
    if (!s || !*s)
        return NULL;
    char *p = lp_xstrdup(s);
    return p;
}

struct lp_msgparser *lp_msgparser_new(const struct lp_msgparser_config *cfg, char *err,
                                      size_t errlen)
{
    static const char *const kinds[] = {"json", "logfmt", "regex", "syslog", "access"};
    struct lp_msgparser *p = lp_xcalloc(1, sizeof(*p));
    int k = -1;
    for (int i = 0; i < 5; i++)
        if (cfg->kind && !strcmp(cfg->kind, kinds[i]))
            k = i;
    if (k < 0) {
        snprintf(err, errlen, "unknown parser '%s' (json, logfmt, regex, syslog, access)",
                 cfg->kind ? cfg->kind : "");
        goto fail;
    }
    p->kind = (enum kind)k;
    p->name = dup_or_null(kinds[k]);
    p->target = dup_or_null(cfg->target);
    p->time_field = dup_or_null(cfg->time_field);
    p->time_format = dup_or_null(cfg->time_format);
    if (p->kind == K_ACCESS) {
        if (!p->time_field)
            p->time_field = dup_or_null("time");
        if (!p->time_format)
            p->time_format = dup_or_null("%d/%b/%Y:%H:%M:%S %z");
    }
    if (p->kind == K_SYSLOG && !p->time_field) {
        /* the parser writes the line's own time as RFC 3339 */
        p->time_field = dup_or_null("@timestamp");
        p->time_format = dup_or_null("rfc3339");
    }
    if (p->time_field && !p->time_format)
        p->time_format = dup_or_null("rfc3339");
    if (p->time_format && !lp_timestamp_format_valid(p->time_format)) {
        snprintf(err, errlen, "unsupported time format '%s'", p->time_format);
        goto fail;
    }
    if (p->kind == K_REGEX || p->kind == K_ACCESS) {
        const char *pat = p->kind == K_ACCESS ? access_pattern : cfg->pattern;
        if (!pat || !*pat) {
            snprintf(err, errlen, "the regex parser needs a pattern");
            goto fail;
        }
        if (!(p->re = lp_regex_compile(pat, "regex", err, errlen)))
            goto fail;
        pcre2_pattern_info(p->re, PCRE2_INFO_NAMECOUNT, &p->ngroups);
        if (p->ngroups == 0) {
            snprintf(err, errlen, "regex: the pattern has no named groups (?<name>...)");
            goto fail;
        }
    }
    return p;
fail:
    lp_msgparser_free(p);
    return NULL;
}

void lp_msgparser_free(struct lp_msgparser *p)
{
    if (!p)
        return;
    pcre2_code_free(p->re);
    free(p->name);
    free(p->target);
    free(p->time_field);
    free(p->time_format);
    free(p);
}

static int fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return LP_ECORRUPT;
}

int lp_msgparse_time(const struct lp_msgparser *p, json_t *fields, int64_t now_ns, int64_t *ns)
{
    if (!p->time_field)
        return 1;
    json_t *v = lp_json_get_path(fields, p->time_field);
    if (!v)
        return 1; /* no time in this message: keep the runtime's */
    char buf[64];
    const char *s;
    size_t n;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        n = (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        s = buf;
    } else if (json_is_real(v)) {
        n = (size_t)snprintf(buf, sizeof(buf), "%.9f", json_real_value(v));
        s = buf;
        if (n >= sizeof(buf))
            return LP_ECORRUPT;
    } else {
        return LP_ECORRUPT;
    }
    return lp_timestamp_parse(p->time_format, s, n, now_ns, ns) ? LP_ECORRUPT : 0;
}

const char *lp_msgparser_time_field(const struct lp_msgparser *p)
{
    return p->time_field;
}

static int parse_json(const char *msg, size_t len, json_t **out, char *why, size_t whylen)
{
    json_error_t err;
    json_t *o = json_loadb(msg, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        snprintf(why, whylen, "invalid JSON at column %d: %s", err.column, err.text);
        return LP_ECORRUPT;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        return fail(why, whylen, "JSON message is not an object");
    }
    *out = o;
    return 0;
}

static json_t *typed_value(const char *s, size_t n)
{
    /* integers stay integers, everything else a string */
    if (n && n < 19) {
        size_t i = s[0] == '-' ? 1 : 0;
        int num = i < n;
        for (; i < n; i++)
            num &= isdigit((unsigned char)s[i]) != 0;
        if (num && !(n > 1 && s[0] == '0')) {
            char buf[24];
            memcpy(buf, s, n);
            buf[n] = '\0';
            return json_integer(strtoll(buf, NULL, 10));
        }
    }
    return json_stringn(s, n);
}

static int parse_logfmt(const char *msg, size_t len, json_t **out, char *why, size_t whylen)
{
    json_t *fields = json_object();
    const char *s = msg, *end = msg + len;
    int pairs = 0, rc = 0;
    struct lp_buf val = LP_BUF_INIT;
    while (s < end) {
        while (s < end && *s == ' ')
            s++;
        if (s >= end)
            break;
        const char *k = s;
        while (s < end && *s != '=' && *s != ' ')
            s++;
        size_t klen = (size_t)(s - k);
        if (klen == 0 || klen >= 128) {
            rc = fail(why, whylen, "logfmt: empty or over-long key");
            goto out;
        }
        char key[128];
        memcpy(key, k, klen);
        key[klen] = '\0';
        if (s >= end || *s == ' ') {
            json_object_set_new(fields, key, json_true()); /* a bare key is a flag */
            pairs++;
            continue;
        }
        s++; /* '=' */
        lp_buf_reset(&val);
        if (s < end && *s == '"') {
            s++;
            while (s < end && *s != '"') {
                if (*s == '\\' && s + 1 < end) {
                    s++;
                    lp_buf_putc(&val, *s == 'n' ? '\n' : *s == 't' ? '\t' : *s);
                } else {
                    lp_buf_putc(&val, *s);
                }
                s++;
            }
            if (s >= end) {
                rc = fail(why, whylen, "logfmt: unterminated quoted value");
                goto out;
            }
            s++;
            json_object_set_new(fields, key, json_stringn(val.data, val.len));
        } else {
            const char *v = s;
            while (s < end && *s != ' ')
                s++;
            json_object_set_new(fields, key, typed_value(v, (size_t)(s - v)));
        }
        pairs++;
    }
    if (!pairs) {
        rc = fail(why, whylen, "logfmt: no key=value pairs");
        goto out;
    }
    *out = json_incref(fields);
out:
    lp_buf_release(&val);
    json_decref(fields);
    return rc;
}

/* Named groups of a match into fields ("__" → "."); numeric ECS fields
 * (status codes, byte counts, pids) become integers. */
static void groups_to_fields(const struct lp_msgparser *p, pcre2_match_data *md, const char *msg,
                             json_t *fields)
{
    PCRE2_SPTR table;
    uint32_t entry;
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMETABLE, &table);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (uint32_t i = 0; i < p->ngroups; i++, table += entry) {
        int g = (table[0] << 8) | table[1];
        const char *name = (const char *)table + 2;
        if (ov[2 * g] == PCRE2_UNSET)
            continue;
        char path[128];
        size_t w = 0;
        for (const char *c = name; *c && w + 1 < sizeof(path); c++) {
            if (c[0] == '_' && c[1] == '_') {
                path[w++] = '.';
                c++;
            } else {
                path[w++] = *c;
            }
        }
        path[w] = '\0';
        const char *v = msg + ov[2 * g];
        size_t n = ov[2 * g + 1] - ov[2 * g];
        if (n == 1 && v[0] == '-' && strstr(path, "bytes"))
            continue; /* access logs write "-" for no body */
        int numeric = strstr(path, "status_code") || strstr(path, "bytes") ||
                      strstr(path, ".pid") || strstr(path, "port");
        json_object_set_new(fields, path, numeric ? typed_value(v, n) : json_stringn(v, n));
    }
}

static int parse_regex(const struct lp_msgparser *p, const char *msg, size_t len, json_t **out,
                       char *why, size_t whylen)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    int m = lp_regex_match(p->re, msg, len, md);
    if (m < 0) {
        pcre2_match_data_free(md);
        return fail(why, whylen,
                    m == PCRE2_ERROR_NOMATCH ? "no match"
                    : m == LP_REGEX_LIMITED
                        ? "regex match limit reached (the line is kept unparsed)"
                        : "regex match error");
    }
    json_t *fields = json_object();
    groups_to_fields(p, md, msg, fields);
    pcre2_match_data_free(md);
    *out = fields;
    return 0;
}

static int parse_pri(const char **s, const char *end, int *pri)
{
    const char *p = *s;
    if (p >= end || *p != '<')
        return LP_ECORRUPT;
    p++;
    int v = 0, n = 0;
    while (p < end && isdigit((unsigned char)*p) && n < 3) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (!n || p >= end || *p != '>' || v > 191)
        return LP_ECORRUPT;
    *pri = v;
    *s = p + 1;
    return 0;
}

static const char *token(const char **s, const char *end, size_t *n)
{
    const char *t = *s;
    while (*s < end && **s != ' ')
        (*s)++;
    *n = (size_t)(*s - t);
    if (*s < end)
        (*s)++;
    return t;
}

static void set_str(json_t *ev, const char *path, const char *s, size_t n)
{
    if (n && !(n == 1 && s[0] == '-'))
        lp_json_set_path(ev, path, json_stringn(s, n));
}

static int parse_syslog(const char *msg, size_t len, int64_t now_ns, json_t **out, char *why,
                        size_t whylen)
{
    const char *s = msg, *end = msg + len;
    int pri = -1;
    int has_pri = parse_pri(&s, end, &pri) == 0;
    json_t *f = json_object();
    int rc = 0;
    int64_t ts;
    if (has_pri && end - s >= 2 && s[0] == '1' && s[1] == ' ') {
        /* RFC 5424: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG] */
        s += 2;
        size_t n;
        const char *t = token(&s, end, &n);
        if (!(n == 1 && t[0] == '-')) {
            if (lp_time_parse_rfc3339(t, n, &ts)) {
                rc = fail(why, whylen, "syslog 5424: invalid timestamp");
                goto out;
            }
            char buf[LP_RFC3339_MAX];
            lp_time_format_rfc3339(ts, 9, buf);
            json_object_set_new(f, "@timestamp", json_string(buf));
        }
        t = token(&s, end, &n);
        set_str(f, "host.hostname", t, n);
        t = token(&s, end, &n);
        set_str(f, "process.name", t, n);
        t = token(&s, end, &n);
        if (n && !(n == 1 && t[0] == '-'))
            lp_json_set_path(f, "process.pid", typed_value(t, n));
        t = token(&s, end, &n);
        set_str(f, "event.code", t, n);
        /* structured data: "-" or one or more [id k="v" ...] */
        if (s < end && *s == '-') {
            s++;
        } else if (s < end && *s == '[') {
            const char *sd = s;
            while (s < end && *s == '[') {
                while (s < end && *s != ']') {
                    if (*s == '\\' && s + 1 < end)
                        s++;
                    s++;
                }
                if (s >= end) {
                    rc = fail(why, whylen, "syslog 5424: unterminated structured data");
                    goto out;
                }
                s++;
            }
            set_str(f, "log.syslog.structured_data", sd, (size_t)(s - sd));
        } else if (s < end) {
            rc = fail(why, whylen, "syslog 5424: missing structured data");
            goto out;
        }
        if (s < end && *s == ' ')
            s++;
        if (end - s >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
            s += 3; /* BOM */
    } else {
        /* RFC 3164: [<PRI>]Mmm dd hh:mm:ss HOSTNAME TAG[pid]: MSG */
        if (end - s < 16 || lp_timestamp_parse("%b %e %H:%M:%S", s, 15, now_ns, &ts)) {
            rc = fail(why, whylen, "neither RFC 5424 nor RFC 3164 syslog");
            goto out;
        }
        char buf[LP_RFC3339_MAX];
        lp_time_format_rfc3339(ts, 9, buf);
        json_object_set_new(f, "@timestamp", json_string(buf));
        s += 15;
        if (s < end && *s == ' ')
            s++;
        size_t n;
        const char *h = token(&s, end, &n);
        set_str(f, "host.hostname", h, n);
        const char *tag = s;
        while (s < end && *s != ':' && *s != '[' && *s != ' ')
            s++;
        size_t tl = (size_t)(s - tag);
        if (s < end && *s == '[') {
            const char *pid = ++s;
            while (s < end && *s != ']')
                s++;
            if (s < end) {
                lp_json_set_path(f, "process.pid", typed_value(pid, (size_t)(s - pid)));
                s++;
            }
        }
        if (s < end && *s == ':') {
            set_str(f, "process.name", tag, tl);
            s++;
            if (s < end && *s == ' ')
                s++;
        } else {
            s = tag; /* no TAG: the rest is the message */
        }
    }
    if (has_pri) {
        lp_json_set_path(f, "log.syslog.facility.code", json_integer(pri / 8));
        lp_json_set_path(f, "log.syslog.severity.code", json_integer(pri % 8));
    }
    json_object_set_new(f, "message", json_stringn(s, (size_t)(end - s)));
    *out = json_incref(f);
out:
    json_decref(f);
    return rc;
}

int lp_msgparse_fields(const struct lp_msgparser *p, const char *msg, size_t len, int64_t now_ns,
                       json_t **fields, char *why, size_t whylen)
{
    json_t *f = NULL;
    int rc = LP_EINVAL;
    *fields = NULL;
    switch (p->kind) {
    case K_JSON: rc = parse_json(msg, len, &f, why, whylen); break;
    case K_LOGFMT: rc = parse_logfmt(msg, len, &f, why, whylen); break;
    case K_REGEX:
    case K_ACCESS: rc = parse_regex(p, msg, len, &f, why, whylen); break;
    case K_SYSLOG: rc = parse_syslog(msg, len, now_ns, &f, why, whylen); break;
    }
    if (rc)
        return rc;
    if (p->target) {
        json_t *w = json_object();
        lp_json_set_path(w, p->target, f);
        f = w;
    }
    *fields = f;
    return 0;
}

int lp_msgparse(const struct lp_msgparser *p, const char *msg, size_t len, json_t *ev,
                int64_t now_ns, char *why, size_t whylen)
{
    json_t *f;
    int rc = lp_msgparse_fields(p, msg, len, now_ns, &f, why, whylen);
    if (rc)
        return rc;
    int64_t ns;
    int trc = lp_msgparse_time(p, f, now_ns, &ns);
    if (trc < 0) {
        json_t *v = lp_json_get_path(f, p->time_field);
        snprintf(why, whylen, "time '%.40s' does not match format '%s'",
                 json_is_string(v) ? json_string_value(v) : "?", p->time_format);
        json_decref(f);
        return LP_ECORRUPT;
    }
    if (trc == 0) {
        char ts[LP_RFC3339_MAX];
        lp_time_format_rfc3339(ns, 9, ts);
        json_object_set_new(ev, "@timestamp", json_string(ts));
        if (p->kind == K_ACCESS || !strcmp(p->time_field, "@timestamp"))
            json_object_del(f, p->time_field);
    }
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v) lp_json_set_path(ev, k, json_incref(v));
    json_decref(f);
    return 0;
}

void lp_msgparse_mark_failed(const struct lp_msgparser *p, json_t *ev, const char *msg, size_t len,
                             const char *why)
{
    char buf[320];
    snprintf(buf, sizeof(buf), "%s parser: %s", p->name, why);
    lp_json_set_path(ev, "error.message", json_string(buf));
    lp_json_set_path(ev, "event.original", json_stringn(msg, len));
}
