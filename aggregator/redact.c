/* Redaction rules over event content (redact.h). */
#include "redact.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_ecs.h"
#include "lp_metrics.h"
#include "lp_regex.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*valid_fn)(const char *s, size_t n);

/* IPv4: four octets of at most 255. */
static int valid_ipv4(const char *s, size_t n)
{
    unsigned v = 0, digits = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!digits || v > 255)
                return 0;
            v = digits = 0;
        } else {
            v = v * 10 + (unsigned)(s[i] - '0');
            digits++;
        }
    }
    return 1;
}

/* IPv6 (possibly with an IPv4 tail) as inet_pton reads it, with at least
 * one hex digit: "::" alone is a separator more often than an address. */
static int valid_ipv6(const char *s, size_t n)
{
    char tmp[64];
    struct in6_addr a;
    if (n >= sizeof(tmp))
        return 0;
    memcpy(tmp, s, n); /* s is the subject: not NUL-terminated */
    tmp[n] = '\0';
    return strspn(tmp, ":") < n && inet_pton(AF_INET6, tmp, &a) == 1;
}

/* A payment card number: 13-19 digits (spaces or dashes between), a major
 * network's first digit (2-6) and the Luhn checksum. */
static int valid_card(const char *s, size_t n)
{
    int d[19];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (k == 19)
                return 0;
            d[k++] = s[i] - '0';
        }
    }
    if (k < 13 || d[0] < 2 || d[0] > 6)
        return 0;
    int sum = 0;
    for (size_t i = 0; i < k; i++) {
        int x = d[k - 1 - i];
        if (i & 1) {
            x *= 2;
            if (x > 9)
                x -= 9;
        }
        sum += x;
    }
    return sum % 10 == 0;
}

/* The built-in detectors. Each pattern is linear in the subject: a match
 * can only start where the previous character cannot continue it
 * (lookbehind), repetitions are bounded or possessive. A validator runs
 * inside the match (a callout at the pattern's end): a span that fails it
 * makes the engine backtrack to shorter spans and later starts, so a card
 * number next to another number ("card 4111111111111111 100") is still
 * found within the longer digit run. */
static const struct detector {
    const char *name;
    const char *pattern;
    valid_fn valid;
} detectors[] = {
    /* any local part length (logs carry longer ones than RFC 5321's 64),
     * and the URL-encoded form alice%40example.com */
    {"email",
     "(?<![A-Za-z0-9._%+-])(?:[A-Za-z0-9._%+-]++@|[A-Za-z0-9._+-]++%40)"
     "(?:[A-Za-z0-9-]{1,63}\\.){1,10}[A-Za-z]{2,24}",
     NULL},
    {"ipv4", "(?<![0-9.])(?:[0-9]{1,3}\\.){3}[0-9]{1,3}(?![0-9])", valid_ipv4},
    {"ipv6",
     "(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){1,7}"
     "(?:(?:[0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4}|:)(?![0-9A-Za-z])",
     valid_ipv6},
    {"card", "(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])", valid_card},
    {"bearer", "(?i)\\bbearer\\s++[A-Za-z0-9._~+/-]{8,}+=*+", NULL},
    {"jwt", "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}+\\.eyJ[A-Za-z0-9_-]{4,}+\\.[A-Za-z0-9_-]*+",
     NULL},
    {"aws_key", "(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])", NULL},
};

struct rule {
    char *name;
    pcre2_code *re;
    pcre2_match_context *mctx; /* limits, and the validator as substitute callout */
    valid_fn valid;
    int literal; /* detectors: the replacement is literal */
    char *repl;
    size_t repl_len;
    char *closed; /* what a value becomes when a limit stops matching */
    size_t closed_len;
    char **fields; /* none: content */
    size_t n_fields;
    int message; /* applies to the message */
    struct lp_counter *c_redacted, *c_limited;
};

struct agg_redactor {
    struct rule *rules;
    size_t n_rules;
    char *kept;
    size_t kept_len;
    uint32_t max_pairs; /* ovector pairs any rule needs */
    pthread_key_t key;  /* a thread's struct scratch */
};

/* A thread's match data and two result buffers (one rule reads one and
 * writes the other). */
struct scratch {
    pcre2_match_data *md;
    uint32_t pairs;
    struct lp_buf buf[2];
};

static void scratch_free(void *p)
{
    struct scratch *s = p;
    if (!s)
        return;
    pcre2_match_data_free(s->md);
    lp_buf_release(&s->buf[0]);
    lp_buf_release(&s->buf[1]);
    free(s);
}

static struct scratch *scratch_of(const struct agg_redactor *rd)
{
    struct scratch *s = pthread_getspecific(rd->key);
    if (!s) {
        s = lp_xcalloc(1, sizeof(*s));
        lp_buf_init(&s->buf[0], 0);
        lp_buf_init(&s->buf[1], 0);
        if (pthread_setspecific(rd->key, s))
            abort();
    }
    if (s->pairs < rd->max_pairs) {
        pcre2_match_data_free(s->md);
        s->md = pcre2_match_data_create(rd->max_pairs, NULL);
        if (!s->md)
            abort();
        s->pairs = rd->max_pairs;
    }
    return s;
}

/* The detector's callout (?C1) at its pattern's end: 0 accepts the span
 * from the match's start to here, 1 fails it (PCRE2 backtracks). */
static int valid_callout(pcre2_callout_block *b, void *data)
{
    const struct rule *r = data;
    PCRE2_SIZE from = b->start_match, to = b->current_position;
    return r->valid((const char *)b->subject + from, to - from) ? 0 : 1;
}

static int is_limit(int rc)
{
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
           rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* One rule over s[0..n) into out (reset first). 1 changed, 0 not (out
 * unspecified). A limit or another matching error replaces the whole value
 * (fails closed). */
static int apply_rule(const struct rule *r, struct scratch *sc, const char *s, size_t n,
                      struct lp_buf *out)
{
    int rc = pcre2_match(r->re, (PCRE2_SPTR)s, n, 0, 0, sc->md, r->mctx);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    uint32_t opts = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
                    (r->literal ? PCRE2_SUBSTITUTE_LITERAL : 0);
    if (rc >= 0) {
        lp_buf_reset(out);
        PCRE2_SIZE cap = n + n / 2 + r->repl_len + 64;
        for (int attempt = 0; attempt < 2; attempt++) {
            if (lp_buf_reserve(out, cap + 1))
                abort();
            PCRE2_SIZE len = out->cap - out->len;
            rc = pcre2_substitute(
                r->re, (PCRE2_SPTR)s, n, 0, opts | (attempt == 0 ? PCRE2_SUBSTITUTE_MATCHED : 0),
                sc->md, r->mctx, (PCRE2_SPTR)r->repl, r->repl_len, (PCRE2_UCHAR *)out->data, &len);
            if (rc == PCRE2_ERROR_NOMEMORY) {
                cap = len; /* the length it needs; matched again from the start */
                continue;
            }
            if (rc >= 0) {
                out->len = len;
                return len != n || memcmp(out->data, s, n) != 0;
            }
            break;
        }
    }
    if (r->c_limited && is_limit(rc))
        lp_counter_inc(r->c_limited);
    lp_buf_reset(out);
    if (lp_buf_append(out, r->closed, r->closed_len))
        abort();
    return 1;
}

/* The rules that pass `want` (NULL: all) over s[0..n); the result in
 * res, res_n (s itself when nothing changed). */
typedef int (*want_fn)(const struct rule *r, const void *ud);

static int run_rules(const struct agg_redactor *rd, want_fn want, const void *ud, const char *s,
                     size_t n, const char **res, size_t *res_n)
{
    struct scratch *sc = scratch_of(rd);
    const char *cur = s;
    size_t cur_n = n;
    int changed = 0, into = 0;
    for (size_t i = 0; i < rd->n_rules; i++) {
        const struct rule *r = &rd->rules[i];
        if (want && !want(r, ud))
            continue;
        struct lp_buf *out = &sc->buf[into];
        if (!apply_rule(r, sc, cur, cur_n, out))
            continue;
        if (r->c_redacted)
            lp_counter_inc(r->c_redacted);
        changed = 1;
        cur = out->data;
        cur_n = out->len;
        into ^= 1;
    }
    *res = cur;
    *res_n = cur_n;
    return changed;
}

static int want_message(const struct rule *r, const void *ud)
{
    (void)ud;
    return r->message;
}

int agg_redact_message(const struct agg_redactor *rd, const char *s, size_t n, const char **res,
                       size_t *res_n)
{
    return run_rules(rd, want_message, NULL, s, n, res, res_n);
}

int agg_redact_bytes(const struct agg_redactor *rd, const void *s, size_t n, const char **res,
                     size_t *res_n)
{
    return run_rules(rd, NULL, NULL, s, n, res, res_n);
}

/* ---- events ---- */

/* Where a value sits: its dotted path (cut: the path is longer than any a
 * rule or the field table names) and whether content put it there. */
struct at {
    const char *path;
    int cut;
    int content;
};

static int path_under(const char *path, const char *f)
{
    size_t n = strlen(f);
    return strncmp(path, f, n) == 0 && (path[n] == '\0' || path[n] == '.');
}

static int want_at(const struct rule *r, const void *ud)
{
    const struct at *a = ud;
    if (!r->n_fields)
        return a->content;
    if (a->cut)
        return 0;
    for (size_t i = 0; i < r->n_fields; i++)
        if (path_under(a->path, r->fields[i]))
            return 1;
    return 0;
}

/* 1 when the value at path came from the line: the message and the
 * original, the kept list, anything outside the owned fields. */
static int is_content(const struct agg_redactor *rd, const char *path)
{
    if (path_under(path, "message") || path_under(path, "event.original"))
        return 1;
    if (path_under(path, rd->kept))
        return 1;
    return !lp_ecs_owned(path);
}

struct walk {
    const struct agg_redactor *rd;
    size_t changed;
};

static json_t *walk_value(struct walk *w, json_t *v, const struct at *a);

/* A string value in place (jansson strings are set whole). */
static void redact_string(struct walk *w, json_t *v, const struct at *a)
{
    const char *res;
    size_t n;
    if (run_rules(w->rd, want_at, a, json_string_value(v), json_string_length(v), &res, &n)) {
        /* a pattern matches whole characters, but a replacement may
         * still leave what is not UTF-8 (an invalid tail kept around it) */
        if (json_string_setn(v, res, n))
            json_string_set(v, "[redacted]");
        w->changed++;
    }
}

/* A number's decimal text through the rules: a card number or an id a
 * pattern names is as much a secret as its string ({"card":4111111111111111},
 * logfmt's card=4111111111111111). Integral reals (beyond int64) print
 * without an exponent. The result, a string, or NULL when nothing matched. */
static json_t *redact_number(struct walk *w, json_t *v, const struct at *a)
{
    char text[64];
    if (json_is_integer(v)) {
        snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e21)
            snprintf(text, sizeof(text), "%.0f", d);
        else
            snprintf(text, sizeof(text), "%.17g", d);
    }
    const char *res;
    size_t n;
    if (!run_rules(w->rd, want_at, a, text, strlen(text), &res, &n))
        return NULL;
    w->changed++;
    json_t *s = json_stringn(res, n);
    return s ? s : json_string("[redacted]");
}

struct rename {
    char *from, *to;
};

/* Renames the keys of obj as rn says (then frees rn's strings); two keys
 * that redact alike stay apart. */
static void rename_keys(struct walk *w, json_t *obj, struct rename *rn, size_t n_rn);

/* The keys of content objects, whole: a rule must see "alice@example.com"
 * before a dotted key is split into nested objects (agg_redact_keys). */
static int key_rules(struct walk *w, const struct at *a, const char *k, struct rename **rn,
                     size_t *n_rn, size_t *cap_rn)
{
    const char *res;
    size_t rl;
    if (!run_rules(w->rd, want_at, a, k, strlen(k), &res, &rl))
        return 0;
    LP_ALLOC_GROW(*rn, *n_rn + 1, *cap_rn, 4);
    (*rn)[*n_rn].from = lp_xstrdup(k);
    (*rn)[*n_rn].to = lp_xstrndup(res, rl);
    (*n_rn)++;
    return 1;
}

static void walk_object(struct walk *w, json_t *obj, const char *prefix)
{
    struct rename *rn = NULL;
    size_t n_rn = 0, cap_rn = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        char path[512];
        int len = prefix ? snprintf(path, sizeof(path), "%s.%s", prefix, k)
                         : snprintf(path, sizeof(path), "%s", k);
        struct at a = {path, len < 0 || (size_t)len >= sizeof(path), 0};
        a.content = a.cut || is_content(w->rd, path);
        json_t *nv = walk_value(w, v, &a);
        if (nv)
            json_object_set_new(obj, k, nv); /* an existing key: iteration stays valid */
        /* a content key the field table does not name may itself be what
         * a rule looks for ({"alice@example.com": 3}) */
        if (!a.content || (!a.cut && (lp_ecs_lookup(path) || strcmp(path, w->rd->kept) == 0)))
            continue;
        key_rules(w, &a, k, &rn, &n_rn, &cap_rn);
    }
    rename_keys(w, obj, rn, n_rn);
}

static void rename_keys(struct walk *w, json_t *obj, struct rename *rn, size_t n_rn)
{
    for (size_t i = 0; i < n_rn; i++) {
        json_t *val = json_object_get(obj, rn[i].from);
        json_incref(val);
        json_object_del(obj, rn[i].from);
        /* two keys that redact alike stay apart: "[redacted:email]",
         * "[redacted:email]~2", ... */
        char key[1024];
        snprintf(key, sizeof(key), "%s", rn[i].to);
        for (int d = 2; json_object_get(obj, key) && d < 1000000; d++)
            snprintf(key, sizeof(key), "%s~%d", rn[i].to, d);
        json_object_set_new(obj, key, val);
        w->changed++;
        free(rn[i].from);
        free(rn[i].to);
    }
    free(rn);
}

/* The rules over v in place; a number that must change cannot (its type
 * does): its replacement is returned for the caller to set, else NULL. */
static json_t *walk_value(struct walk *w, json_t *v, const struct at *a)
{
    switch (json_typeof(v)) {
    case JSON_STRING: redact_string(w, v, a); break;
    case JSON_INTEGER:
    case JSON_REAL: return redact_number(w, v, a);
    case JSON_OBJECT: walk_object(w, v, a->cut ? "~" : a->path); break;
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            json_t *nx = walk_value(w, x, a);
            if (nx)
                json_array_set_new(v, i, nx);
        }
        break;
    }
    default: break;
    }
    return NULL;
}

/* Keys of content (a parser's fields) through the content rules, whole
 * and at every depth. */
static void walk_keys(struct walk *w, json_t *obj, size_t depth)
{
    struct rename *rn = NULL;
    size_t n_rn = 0, cap_rn = 0;
    const char *k;
    json_t *v;
    struct at a = {"", 1, 1}; /* content, at no path a field rule names */
    json_object_foreach(obj, k, v)
    {
        if (depth < LP_REDACT_KEY_DEPTH && json_is_object(v))
            walk_keys(w, v, depth + 1);
        else if (depth < LP_REDACT_KEY_DEPTH && json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) if (json_is_object(x)) walk_keys(w, x, depth + 1);
        }
        key_rules(w, &a, k, &rn, &n_rn, &cap_rn);
    }
    rename_keys(w, obj, rn, n_rn);
}

size_t agg_redact_keys(const struct agg_redactor *rd, json_t *fields)
{
    struct walk w = {rd, 0};
    if (rd && json_is_object(fields))
        walk_keys(&w, fields, 0);
    return w.changed;
}

size_t agg_redact_event(const struct agg_redactor *rd, json_t *ev)
{
    struct walk w = {rd, 0};
    if (json_is_object(ev))
        walk_object(&w, ev, NULL);
    return w.changed;
}

/* ---- building ---- */

struct agg_redactor *agg_redactor_new(const struct lp_config_redact *rules, size_t n,
                                      const char *kept, uint32_t match_limit, uint32_t depth_limit,
                                      char *err, size_t errlen)
{
    if (!n)
        return NULL;
    struct agg_redactor *rd = lp_xcalloc(1, sizeof(*rd));
    if (pthread_key_create(&rd->key, scratch_free))
        abort();
    rd->kept = lp_xstrdup(kept ? kept : LP_ECS_KEPT_DEFAULT);
    rd->kept_len = strlen(rd->kept);
    rd->rules = lp_xcalloc(n, sizeof(*rd->rules));
    rd->max_pairs = 1;
    for (size_t i = 0; i < n; i++) {
        const struct lp_config_redact *c = &rules[i];
        struct rule *r = &rd->rules[rd->n_rules++];
        r->name = lp_xstrdup(c->name ? c->name : "rule");
        const char *pattern = c->pattern;
        if (c->detector) {
            const struct detector *d = NULL;
            for (size_t k = 0; k < sizeof(detectors) / sizeof(detectors[0]) && !d; k++)
                if (strcmp(detectors[k].name, c->detector) == 0)
                    d = &detectors[k];
            if (!d) {
                snprintf(err, errlen, "redact rule %s: no detector named '%s'", r->name,
                         c->detector);
                goto fail;
            }
            pattern = d->pattern;
            r->valid = d->valid;
            r->literal = 1;
        }
        char with_callout[512];
        if (r->valid) {
            snprintf(with_callout, sizeof(with_callout), "%s(?C1)", pattern);
            pattern = with_callout;
        }
        if (!pattern) {
            snprintf(err, errlen, "redact rule %s: needs a detector or a pattern", r->name);
            goto fail;
        }
        char what[160];
        snprintf(what, sizeof(what), "redact rule %s", r->name);
        r->re = lp_regex_compile(pattern, what, err, errlen);
        if (!r->re)
            goto fail;
        uint32_t groups = 0;
        pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups + 1 > rd->max_pairs)
            rd->max_pairs = groups + 1;
        r->mctx = lp_regex_context(match_limit, depth_limit);
        if (r->valid)
            pcre2_set_callout(r->mctx, valid_callout, r);
        char closed[192];
        snprintf(closed, sizeof(closed), "[redacted:%s]", r->name);
        r->closed = lp_xstrdup(closed);
        r->closed_len = strlen(closed);
        r->repl = lp_xstrdup(c->replacement ? c->replacement : closed);
        r->repl_len = strlen(r->repl);
        r->fields = lp_xcalloc(c->n_fields + 1, sizeof(char *));
        for (size_t k = 0; k < c->n_fields; k++)
            r->fields[r->n_fields++] = lp_xstrdup(c->fields[k]);
        r->message = !r->n_fields;
        for (size_t k = 0; k < r->n_fields; k++)
            r->message |= path_under("message", r->fields[k]);
    }
    return rd;
fail:
    agg_redactor_free(rd);
    return NULL;
}

void agg_redactor_set_metrics(struct agg_redactor *rd, struct lp_metrics *m)
{
    for (size_t i = 0; rd && i < rd->n_rules; i++) {
        struct rule *r = &rd->rules[i];
        char l[256];
        snprintf(l, sizeof(l), "rule=\"%s\"", r->name);
        r->c_redacted = lp_metrics_counter(
            m, "logpipe_aggregator_redacted_total",
            "Values (strings or keys of an event, dead-lettered payloads) a redaction rule "
            "changed, by rule.",
            l);
        r->c_limited = lp_metrics_counter(
            m, "logpipe_aggregator_redact_limited_total",
            "Values replaced whole by [redacted:RULE] because a PCRE2 limit stopped the rule's "
            "matching (redaction fails closed), by rule.",
            l);
    }
}

void agg_redactor_free(struct agg_redactor *rd)
{
    if (!rd)
        return;
    /* the calling thread's scratch (the workers' went when they exited) */
    scratch_free(pthread_getspecific(rd->key));
    pthread_setspecific(rd->key, NULL);
    pthread_key_delete(rd->key);
    for (size_t i = 0; i < rd->n_rules; i++) {
        struct rule *r = &rd->rules[i];
        free(r->name);
        if (r->re)
            pcre2_code_free(r->re);
        if (r->mctx)
            pcre2_match_context_free(r->mctx);
        free(r->repl);
        free(r->closed);
        for (size_t k = 0; k < r->n_fields; k++)
            free(r->fields[k]);
        free(r->fields);
    }
    free(rd->rules);
    free(rd->kept);
    free(rd);
}

static size_t dlq_event(const void *rules, json_t *ev)
{
    return agg_redact_event(rules, ev);
}

static int dlq_bytes(const void *rules, const void *s, size_t n, const char **res, size_t *res_n)
{
    return agg_redact_bytes(rules, s, n, res, res_n);
}

struct lp_dlq_redactor agg_redactor_dlq(const struct agg_redactor *rd)
{
    return (struct lp_dlq_redactor){rd, dlq_event, dlq_bytes};
}
