/* Validation beyond the field tables (lp_config_int.h): names and
 * references, patterns, each output type's keys and cross-key rules,
 * retention policies that must not overlap. Every mistake is reported at
 * its position, all of them in one run. */
#include "lp_config_int.h"

#include "lp_alloc.h"
#include "lp_error.h"
#include "lp_charset.h"
#include "lp_ecs.h"
#include "lp_glob.h"
#include "lp_redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct lp_node *item_at(const struct lp_node *map, const char *key, size_t i,
                                     const struct lp_node *fallback)
{
    const struct lp_node *l = lp_node_get(map, key);
    if (l && l->type == LP_NODE_SEQ && i < l->n)
        return l->items[i];
    return l ? l : fallback;
}

static const struct lp_node *key_at(const struct lp_node *map, const char *key,
                                    const struct lp_node *fallback)
{
    const struct lp_node *n = lp_node_get(map, key);
    return n ? n : fallback;
}

static void check_regex(struct ctx *c, const struct lp_node *at, const char *what,
                        const char *pattern)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    if (re) {
        pcre2_code_free(re);
        return;
    }
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(code, msg, sizeof(msg));
    lp_node_error(c->errs, at, "%s: bad pattern at offset %zu: %s", what, (size_t)off,
                  (const char *)msg);
}

static int name_ok(const char *s)
{
    if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

static int find_name(const void *arr, size_t n, size_t elem, size_t name_off, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const char *x = *(char *const *)((const char *)arr + i * elem + name_off);
        if (x && name && strcmp(x, name) == 0)
            return (int)i;
    }
    return LP_ENOTFOUND;
}

/* Reports a bad or repeated name of list item `what` (a `kind`). */
static void check_item_name(struct ctx *c, const struct lp_node *at, const char *what,
                            const char *kind, const char *name, int first_index, size_t index)
{
    if (!name_ok(name))
        lp_node_error(c->errs, key_at(at, "name", at),
                      "%s: needs a name of letters, digits, '-', '_', '.'", what);
    else if (first_index != (int)index)
        lp_node_error(c->errs, key_at(at, "name", at), "%s: %s '%s' is defined twice", what, kind,
                      name);
}

#define FIND_PARSER(a, nm)                                         \
    find_name((a)->parsers, (a)->n_parsers, sizeof(*(a)->parsers), \
              offsetof(struct lp_config_parser, name), nm)
#define FIND_OUTPUT(a, nm)                                         \
    find_name((a)->outputs, (a)->n_outputs, sizeof(*(a)->outputs), \
              offsetof(struct lp_config_output, name), nm)

/* An index name's {field} placeholders may name owned fields (a line cannot
 * set them) or fields aggregator.content.index_fields allows: no log line
 * chooses an index otherwise. */
static void check_index_fields(struct ctx *c, const struct lp_config_aggregator *a,
                               const struct lp_node *at, const char *what, const char *index)
{
    const char *s = index;
    while ((s = strchr(s, '{')) != NULL) {
        const char *e = strchr(s, '}');
        if (!e)
            break;
        char f[128];
        size_t n = (size_t)(e - s - 1);
        if (n >= sizeof(f))
            n = sizeof(f) - 1;
        memcpy(f, s + 1, n);
        f[n] = '\0';
        int ok = lp_ecs_owned(f);
        for (size_t i = 0; !ok && i < a->content.n_index_fields; i++)
            ok = strcmp(a->content.index_fields[i], f) == 0;
        if (!ok)
            lp_node_error(c->errs, at,
                          "%s: index uses {%s}, which a log line can set; use owned fields "
                          "(kubernetes.namespace, container.name, host.name, ...) or allow it "
                          "in aggregator.content.index_fields",
                          what, f);
        s = e + 1;
    }
}

static void check_refs(struct ctx *c, const struct lp_config_aggregator *a,
                       const struct lp_node *at, const char *what, const char *parser,
                       char *const *hints, size_t n_hints, char *const *outputs, size_t n_outputs)
{
    if (parser && FIND_PARSER(a, parser) < 0)
        lp_node_error(c->errs, key_at(at, "parser", at), "%s: no parser named '%s'", what, parser);
    for (size_t k = 0; k < n_hints; k++)
        if (FIND_PARSER(a, hints[k]) < 0)
            lp_node_error(c->errs, item_at(at, "hint_parsers", k, at),
                          "%s: hint_parsers: no parser named '%s'", what, hints[k]);
    for (size_t k = 0; k < n_outputs; k++)
        if (FIND_OUTPUT(a, outputs[k]) < 0)
            lp_node_error(c->errs, item_at(at, "outputs", k, at), "%s: no output named '%s'", what,
                          outputs[k]);
}

/* The groups a redaction replacement refers to ($1, ${2}, ${name}; $$ is a
 * dollar) exist in its pattern: PCRE2 only finds out at the first match. */
static const char *replacement_problem(const char *pattern, const char *repl, char *tmp,
                                       size_t tmplen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    if (!re)
        return NULL; /* check_regex reports it */
    uint32_t groups = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
    const char *problem = NULL;
    for (const char *p = repl; *p && !problem; p++) {
        if (*p != '$')
            continue;
        p++;
        if (*p == '$')
            continue;
        int braced = *p == '{';
        const char *q = p + braced;
        size_t n = 0;
        while (q[n] && (isalnum((unsigned char)q[n]) || q[n] == '_'))
            n++;
        if (n == 0 || (braced && q[n] != '}')) {
            problem = "a '$' not followed by a group number, {number} or {name} (write $$ for $)";
            break;
        }
        if (n >= tmplen)
            n = tmplen - 1;
        memcpy(tmp, q, n);
        tmp[n] = '\0';
        if (isdigit((unsigned char)tmp[0])) {
            if (strspn(tmp, "0123456789") != n || strtoul(tmp, NULL, 10) > groups)
                problem = "refers to a group the pattern does not have";
        } else if (pcre2_substring_number_from_name(re, (PCRE2_SPTR)tmp) < 0) {
            problem = "refers to a named group the pattern does not have";
        }
        p = q + n + braced - 1;
    }
    pcre2_code_free(re);
    return problem;
}

static void validate_redact(struct ctx *c, const struct lp_config_aggregator *a,
                            const struct lp_node *agg)
{
    for (size_t i = 0; i < a->n_redact; i++) {
        const struct lp_config_redact *r = &a->redact[i];
        const struct lp_node *at = item_at(agg, "redact", i, agg);
        char what[64];
        snprintf(what, sizeof(what), "aggregator.redact[%zu]", i);
        check_item_name(c, at, what, "rule", r->name,
                        find_name(a->redact, a->n_redact, sizeof(*a->redact),
                                  offsetof(struct lp_config_redact, name), r->name),
                        i);
        if ((r->detector != NULL) == (r->pattern != NULL))
            lp_node_error(c->errs, at, "%s: needs exactly one of detector, pattern", what);
        if (r->pattern)
            check_regex(c, key_at(at, "pattern", at), what, r->pattern);
        char grp[64];
        const char *why = r->pattern && r->replacement
                              ? replacement_problem(r->pattern, r->replacement, grp, sizeof(grp))
                              : NULL;
        if (why)
            lp_node_error(c->errs, key_at(at, "replacement", at), "%s: replacement %s", what, why);
        for (size_t k = 0; k < r->n_fields; k++) {
            const char *f = r->fields[k];
            if (!*f || f[0] == '.' || f[strlen(f) - 1] == '.' || strstr(f, ".."))
                lp_node_error(c->errs, item_at(at, "fields", k, at),
                              "%s: '%s' is not a dotted field path", what, f);
        }
    }
}

/* What each output type requires of its options, beyond the field table's
 * types and ranges. One line per type of LP_CONFIG_OUTPUT_TYPES (a unit test
 * holds it to the outputs' registry, outputs/lp_output.c). */
const char *const lp_output_kind_name[LP_OUTPUT_KINDS] = {"elasticsearch", "file", "s3", "stdout"};
const unsigned lp_cfg_output_kind_flag[LP_OUTPUT_KINDS] = {LP_F_OUT_ES, LP_F_OUT_FILE, LP_F_OUT_S3,
                                                           LP_F_OUT_STDOUT};

enum lp_output_kind lp_config_output_kind(const struct lp_config_output *o)
{
    for (size_t k = 0; o->type && k < LP_OUTPUT_KINDS; k++)
        if (strcmp(o->type, lp_output_kind_name[k]) == 0)
            return (enum lp_output_kind)k;
    return LP_OUTPUT_KINDS;
}

/* Keys the output's type does not take: refused where they stand. */
static void check_output_keys(struct ctx *c, const struct lp_node *at, const char *what,
                              enum lp_output_kind kind)
{
    if (!at || at->type != LP_NODE_MAP)
        return;
    for (size_t i = 0; i < at->n; i++) {
        const struct lp_field *f = lp_config_output_fields;
        while (f->name && strcmp(f->name, at->keys[i]->text) != 0)
            f++;
        if (!f->name || !(f->flags & LP_F_OUT_ANY) || (f->flags & lp_cfg_output_kind_flag[kind]))
            continue;
        char types[64] = "";
        for (size_t t = 0; t < LP_OUTPUT_KINDS; t++)
            if (f->flags & lp_cfg_output_kind_flag[t])
                snprintf(types + strlen(types), sizeof(types) - strlen(types), "%s%s",
                         *types ? ", " : "", lp_output_kind_name[t]);
        lp_node_error(c->errs, at->keys[i], "%s.%s: a key of %s outputs; this output is type %s",
                      what, f->name, types, lp_output_kind_name[kind]);
    }
}

static void check_es_output(struct ctx *c, const struct lp_config_aggregator *a,
                            const struct lp_node *at, const char *what,
                            const struct lp_config_output *o)
{
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0))
        lp_node_error(c->errs, key_at(at, "url", at),
                      "%s: elasticsearch needs a url starting with http:// or https://", what);
    if (!o->index || !*o->index)
        lp_node_error(c->errs, key_at(at, "index", at), "%s: needs an index", what);
    else
        check_index_fields(c, a, key_at(at, "index", at), what, o->index);
    if (o->password && *o->password && (!o->username || !*o->username))
        lp_node_error(c->errs, key_at(at, "password", at), "%s: password without username", what);
    if (o->retry_initial_ms > o->retry_max_ms)
        lp_node_error(c->errs, key_at(at, "retry_initial", at),
                      "%s: retry_initial is longer than retry_max", what);
}

static void check_file_output(struct ctx *c, const struct lp_config_aggregator *a,
                              const struct lp_node *at, const char *what,
                              const struct lp_config_output *o)
{
    (void)a;
    if (!o->path || !*o->path)
        lp_node_error(c->errs, at, "%s: type file needs a path", what);
}

static void check_s3_output(struct ctx *c, const struct lp_config_aggregator *a,
                            const struct lp_node *at, const char *what,
                            const struct lp_config_output *o)
{
    (void)a;
    if (!o->bucket || !*o->bucket)
        lp_node_error(c->errs, at, "%s: type s3 needs a bucket", what);
    if (o->endpoint && *o->endpoint && strncmp(o->endpoint, "http://", 7) != 0 &&
        strncmp(o->endpoint, "https://", 8) != 0)
        lp_node_error(c->errs, key_at(at, "endpoint", at),
                      "%s: endpoint must start with http:// or https://", what);
    if (o->access_key_id && *o->access_key_id && (!o->secret_access_key || !*o->secret_access_key))
        lp_node_error(c->errs, key_at(at, "access_key_id", at),
                      "%s: access_key_id without secret_access_key", what);
    if (o->prefix && (strstr(o->prefix, "//") || strstr(o->prefix, "_logpipe")))
        lp_node_error(c->errs, key_at(at, "prefix", at),
                      "%s: prefix must not contain '//' nor '_logpipe' (the output's own "
                      "records)",
                      what);
    if (o->retry_initial_ms > o->retry_max_ms)
        lp_node_error(c->errs, key_at(at, "retry_initial", at),
                      "%s: retry_initial is longer than retry_max", what);
}

/* The cross-key checks of each output type. */
static void (*const output_checks[LP_OUTPUT_KINDS])(struct ctx *c,
                                                    const struct lp_config_aggregator *a,
                                                    const struct lp_node *at, const char *what,
                                                    const struct lp_config_output *o) = {
    [LP_OUTPUT_ES] = check_es_output,
    [LP_OUTPUT_FILE] = check_file_output,
    [LP_OUTPUT_S3] = check_s3_output,
};

static void check_output(struct ctx *c, const struct lp_config_aggregator *a,
                         const struct lp_node *agg, size_t i)
{
    const struct lp_config_output *o = &a->outputs[i];
    const struct lp_node *at = item_at(agg, "outputs", i, agg);
    char what[64];
    snprintf(what, sizeof(what), "aggregator.outputs[%zu]", i);
    check_item_name(c, at, what, "output", o->name, FIND_OUTPUT(a, o->name), i);
    if (!o->type) {
        lp_node_error(c->errs, at, "%s: needs a type (one of %s)", what, LP_CONFIG_OUTPUT_TYPES);
        return;
    }
    enum lp_output_kind kind = lp_config_output_kind(o);
    if (kind == LP_OUTPUT_KINDS)
        return; /* the enum check reported it */
    check_output_keys(c, at, what, kind);
    if (output_checks[kind])
        output_checks[kind](c, a, at, what, o);
}

static void validate_aggregator(struct ctx *c, const struct lp_config_aggregator *a,
                                const struct lp_node *agg)
{
    for (size_t i = 0; i < a->n_parsers; i++) {
        const struct lp_config_parser *p = &a->parsers[i];
        const struct lp_node *at = item_at(agg, "parsers", i, agg);
        char what[64];
        snprintf(what, sizeof(what), "aggregator.parsers[%zu]", i);
        check_item_name(c, at, what, "parser", p->name, FIND_PARSER(a, p->name), i);
        if (strcmp(p->kind, "regex") == 0) {
            if (!p->pattern || !*p->pattern)
                lp_node_error(c->errs, at, "%s: kind regex needs a pattern", what);
            else
                check_regex(c, key_at(at, "pattern", at), what, p->pattern);
        }
    }
    for (size_t i = 0; i < a->n_outputs; i++)
        check_output(c, a, agg, i);
    for (size_t i = 0; i < a->n_routes; i++) {
        const struct lp_config_route *r = &a->routes[i];
        const struct lp_node *at = item_at(agg, "routes", i, agg);
        char what[64];
        snprintf(what, sizeof(what), "aggregator.routes[%zu]", i);
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= r->name && a->routes[j].name && strcmp(r->name, a->routes[j].name) == 0;
        if (!name_ok(r->name) || strcmp(r->name, "default") == 0)
            lp_node_error(c->errs, key_at(at, "name", at),
                          "%s: needs a name of letters, digits, '-', '_', '.' other than "
                          "'default'",
                          what);
        else if (dup)
            lp_node_error(c->errs, key_at(at, "name", at), "%s: route '%s' is defined twice", what,
                          r->name);
        if (r->drop && r->n_outputs)
            lp_node_error(c->errs, key_at(at, "drop", at),
                          "%s: a route that drops has no outputs (drop or outputs)", what);
        else if (!r->drop && r->n_outputs == 0)
            lp_node_error(c->errs, at,
                          "%s: needs at least one output (or drop: true to drop its events)", what);
        check_refs(c, a, at, what, r->parser, r->hint_parsers, r->n_hint_parsers, r->outputs,
                   r->n_outputs);
        for (size_t k = 0; k < r->n_match; k++) {
            const struct lp_config_match *m = &r->match[k];
            const struct lp_node *mat = item_at(at, "match", k, at);
            char mw[96];
            snprintf(mw, sizeof(mw), "%s.match[%zu]", what, k);
            if (!m->field || !*m->field)
                lp_node_error(c->errs, mat, "%s: needs a field", mw);
            int ops = (m->equals != NULL) + (m->prefix != NULL) + (m->regex != NULL) + m->exists;
            if (ops != 1)
                lp_node_error(c->errs, mat,
                              "%s: needs exactly one of equals, prefix, regex, exists", mw);
            if (m->regex)
                check_regex(c, key_at(mat, "regex", mat), mw, m->regex);
        }
    }
    {
        const char *k = a->content.kept_field;
        const struct lp_node *cat = key_at(agg, "content", agg);
        if (!k || strncmp(k, "logpipe.", 8) != 0 || !k[8] || strstr(k, "..") ||
            k[strlen(k) - 1] == '.' ||
            (lp_ecs_lookup(k) && lp_ecs_lookup(k)->type != LP_ECS_OBJECT))
            lp_node_error(c->errs, key_at(cat, "kept_field", cat),
                          "aggregator.content.kept_field: '%s' must be a path under logpipe. "
                          "(e.g. logpipe.kept) that logpipe does not use otherwise",
                          k ? k : "");
    }
    validate_redact(c, a, agg);
    const struct lp_node *dr = key_at(agg, "default_route", agg);
    check_refs(c, a, dr, "aggregator.default_route", a->default_route.parser,
               a->default_route.hint_parsers, a->default_route.n_hint_parsers,
               a->default_route.outputs, a->default_route.n_outputs);
}

const char *lp_config_policy_root(const struct lp_config *c,
                                  const struct lp_config_retention_policy *p)
{
    if (p->path && *p->path)
        return p->path;
    if (!p->output)
        return NULL;
    const struct lp_config_aggregator *a = &c->aggregator;
    int i = FIND_OUTPUT(a, p->output);
    if (i < 0 || lp_config_output_kind(&a->outputs[i]) != LP_OUTPUT_FILE)
        return NULL;
    return a->outputs[i].path;
}

const struct lp_config_output *lp_config_policy_bucket(const struct lp_config *c,
                                                       const struct lp_config_retention_policy *p)
{
    if ((p->path && *p->path) || !p->output)
        return NULL;
    const struct lp_config_aggregator *a = &c->aggregator;
    int i = FIND_OUTPUT(a, p->output);
    if (i < 0 || lp_config_output_kind(&a->outputs[i]) != LP_OUTPUT_S3)
        return NULL;
    return &a->outputs[i];
}

/* dir without trailing slashes into out. */
static void norm_dir(const char *dir, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", dir);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* 1 when a is b or lies below it (lexically). */
static int dir_within(const char *a, const char *b)
{
    size_t n = strlen(b);
    if (strncmp(a, b, n) != 0)
        return 0;
    return a[n] == '\0' || a[n] == '/' || strcmp(b, "/") == 0;
}

/* The absolute patterns of policy p: [0] its root's tree, [1] its route
 * r's tree (r >= 0), [2] its glob as a file, [3] its glob as a directory.
 * Returns 0 or -1 (too long). */
static int policy_patterns(const char *root, const struct lp_config_retention_policy *p, long r,
                           char pats[4][4200])
{
    char er[4096];
    memset(pats, 0, 4 * sizeof(pats[0]));
    if (lp_glob_escape(root, er, sizeof(er)) < 0)
        return LP_ETOOBIG;
    if (strcmp(er, "/") == 0)
        er[0] = '\0';
    if (snprintf(pats[0], 4200, "%s/**", er) >= 4200)
        return LP_ETOOBIG;
    if (r >= 0) {
        char rr[256];
        if (lp_glob_escape(p->routes[r], rr, sizeof(rr)) < 0 ||
            snprintf(pats[1], 4200, "%s/%s/**", er, rr) >= 4200)
            return LP_ETOOBIG;
    }
    if (p->glob && *p->glob &&
        (snprintf(pats[2], 4200, "%s/%s", er, p->glob) >= 4200 ||
         snprintf(pats[3], 4200, "%s/%s/**", er, p->glob) >= 4200))
        return LP_ETOOBIG;
    return 0;
}

/* 1 (witness set) when policies a and b can select the same path. */
static int policies_overlap(const char *ra, const struct lp_config_retention_policy *a,
                            const char *rb, const struct lp_config_retention_policy *b,
                            char *witness, size_t wlen)
{
    long na = a->n_routes ? (long)a->n_routes : 1, nb = b->n_routes ? (long)b->n_routes : 1;
    int ga = a->glob && *a->glob, gb = b->glob && *b->glob;
    for (long i = 0; i < na; i++)
        for (long j = 0; j < nb; j++) {
            char pa[4][4200], pb[4][4200];
            if (policy_patterns(ra, a, a->n_routes ? i : -1, pa) ||
                policy_patterns(rb, b, b->n_routes ? j : -1, pb))
                return 1;
            /* per side: the route's tree (else the root's) and, with a glob,
             * the glob as a file or as a directory */
            for (int va = 0; va < (ga ? 2 : 1); va++)
                for (int vb = 0; vb < (gb ? 2 : 1); vb++) {
                    const char *v[LP_GLOB_MAX_PATTERNS];
                    size_t k = 0;
                    v[k++] = a->n_routes ? pa[1] : pa[0];
                    if (ga)
                        v[k++] = pa[2 + va];
                    v[k++] = b->n_routes ? pb[1] : pb[0];
                    if (gb)
                        v[k++] = pb[2 + vb];
                    int rc = lp_glob_intersect(v, k, witness, wlen);
                    if (rc != 0) {
                        if (rc < 0)
                            snprintf(witness, wlen, "(patterns too complex to tell apart)");
                        return 1;
                    }
                }
        }
    return 0;
}

/* A directory without trailing slashes, on the heap. */
static char *norm_dir_dup(const char *dir)
{
    char tmp[4096];
    norm_dir(dir, tmp, sizeof(tmp));
    return lp_xstrdup(tmp);
}

/* One segment policy on its own. Returns its normalized root (heap) when it
 * has one, for the checks between policies; NULL otherwise. */
static char *validate_policy(struct ctx *c, const struct lp_config *cfg, const struct lp_node *ret,
                             size_t i)
{
    const struct lp_config_retention *r = &cfg->retention;
    const struct lp_config_retention_policy *p = &r->policies[i];
    const struct lp_node *at = item_at(ret, "policies", i, ret);
    char what[64];
    snprintf(what, sizeof(what), "retention.policies[%zu]", i);
    check_item_name(c, at, what, "policy", p->name,
                    find_name(r->policies, r->n_policies, sizeof(*p),
                              offsetof(struct lp_config_retention_policy, name), p->name),
                    i);
    char *root = NULL;
    const struct lp_config_output *bucket = lp_config_policy_bucket(cfg, p);
    if (!!(p->output && *p->output) == !!(p->path && *p->path)) {
        lp_node_error(c->errs, at,
                      "%s: needs exactly one of output (an aggregator file or s3 "
                      "output) and path (a directory)",
                      what);
    } else if (bucket) {
        /* a pseudo root: s3 policies overlap only on the same bucket and prefix */
        struct lp_buf b = LP_BUF_INIT;
        lp_buf_appendf(&b, "s3://%s/%s", bucket->bucket ? bucket->bucket : "",
                       bucket->prefix ? bucket->prefix : "");
        root = norm_dir_dup(b.data);
        lp_buf_release(&b);
    } else if (!lp_config_policy_root(cfg, p)) {
        lp_node_error(c->errs, key_at(at, "output", at),
                      "%s: no aggregator output of type file or s3 named '%s'", what, p->output);
    } else {
        root = norm_dir_dup(lp_config_policy_root(cfg, p));
    }
    /* by value, not by key: a dump (--print-config) writes every key */
    const char *s3_only[3] = {NULL, NULL, NULL};
    if (p->archive_prefix && *p->archive_prefix)
        s3_only[0] = "archive_prefix";
    if (p->archive_bucket && *p->archive_bucket)
        s3_only[1] = "archive_bucket";
    if (p->archive_storage_class && *p->archive_storage_class)
        s3_only[2] = "archive_storage_class";
    const char *disk_only[4] = {NULL, NULL, NULL, NULL};
    if (p->archive_codec && strcmp(p->archive_codec, "zstd") != 0)
        disk_only[0] = "archive_codec";
    if (p->archive_level)
        disk_only[1] = "archive_level";
    if (p->archive_root && *p->archive_root)
        disk_only[2] = "archive_root";
    if (p->min_free_bytes)
        disk_only[3] = "min_free_bytes";
    for (size_t k = 0; k < 4; k++)
        if (bucket && disk_only[k])
            lp_node_error(c->errs, key_at(at, disk_only[k], at),
                          "%s: %s is for local segments; policy '%s' covers the bucket of s3 "
                          "output '%s' (objects are archived as they are: archive_prefix, "
                          "archive_bucket, archive_storage_class)",
                          what, disk_only[k], p->name ? p->name : "", p->output);
    for (size_t k = 0; k < 3; k++) {
        if (!s3_only[k])
            continue;
        if (!bucket && root)
            lp_node_error(c->errs, key_at(at, s3_only[k], at),
                          "%s: %s is for bucket retention (a policy whose output is an s3 "
                          "output)",
                          what, s3_only[k]);
        if (bucket && !p->archive_after_ms)
            lp_node_error(c->errs, key_at(at, s3_only[k], at), "%s: %s without archive_after", what,
                          s3_only[k]);
    }
    if (bucket && p->archive_after_ms && !(p->archive_prefix && *p->archive_prefix) &&
        !(p->archive_storage_class && *p->archive_storage_class))
        lp_node_error(c->errs, key_at(at, "archive_after", at),
                      "%s: archiving an object needs archive_prefix (move it) or "
                      "archive_storage_class (change its class)",
                      what);
    if (bucket && p->archive_bucket && *p->archive_bucket &&
        !(p->archive_prefix && *p->archive_prefix))
        lp_node_error(c->errs, key_at(at, "archive_bucket", at),
                      "%s: archive_bucket needs archive_prefix (the key prefix there)", what);
    if (bucket && p->archive_prefix && *p->archive_prefix && bucket->prefix &&
        (!p->archive_bucket || !*p->archive_bucket ||
         (bucket->bucket && strcmp(p->archive_bucket, bucket->bucket) == 0))) {
        char *ap = norm_dir_dup(p->archive_prefix), *op = norm_dir_dup(bucket->prefix);
        if (*op && (dir_within(ap, op) || dir_within(op, ap)))
            lp_node_error(c->errs, key_at(at, "archive_prefix", at),
                          "%s: archive_prefix '%s' overlaps the output's prefix '%s'; archived "
                          "objects would be selected again",
                          what, p->archive_prefix, bucket->prefix);
        free(ap);
        free(op);
    }
    if (!p->archive_after_ms && !p->delete_after_ms && !p->max_total_bytes && !p->min_free_bytes)
        lp_node_error(c->errs, at,
                      "%s: does nothing; set archive_after, delete_after, "
                      "max_total_bytes or min_free_bytes",
                      what);
    if (!p->archive_after_ms && !bucket) {
        static const char *const needs[] = {"archive_codec", "archive_level", "archive_root"};
        for (size_t k = 0; k < 3; k++)
            if (lp_node_get(at, needs[k]))
                lp_node_error(c->errs, key_at(at, needs[k], at), "%s: %s without archive_after",
                              what, needs[k]);
    }
    if (p->archive_after_ms && p->delete_after_ms && p->delete_after_ms <= p->archive_after_ms)
        lp_node_error(c->errs, key_at(at, "delete_after", at),
                      "%s: delete_after must be longer than archive_after: segments would "
                      "be deleted before they are archived",
                      what);
    if (strcmp(p->archive_codec, "gzip") == 0 && p->archive_level > 9)
        lp_node_error(c->errs, key_at(at, "archive_level", at), "%s: gzip levels are 1-9", what);
    for (size_t k = 0; k < p->n_routes; k++)
        if (!name_ok(p->routes[k]))
            lp_node_error(c->errs, item_at(at, "routes", k, at), "%s: '%s' is not a route name",
                          what, p->routes[k]);
    if (root && p->archive_root && *p->archive_root) {
        char *ar = norm_dir_dup(p->archive_root);
        if (strcmp(ar, root) != 0 && dir_within(ar, root))
            lp_node_error(c->errs, key_at(at, "archive_root", at),
                          "%s: archive_root lies inside the policy's own root; its "
                          "archives would be selected again",
                          what);
        free(ar);
    }
    return root;
}

/* Two segment policies i and j (both with a root): overlapping selections,
 * archive roots that collide. Called for every ordered pair. */
static void validate_policy_pair(struct ctx *c, const struct lp_config_retention *r,
                                 const struct lp_node *ret, char *const *roots, size_t i, size_t j)
{
    const struct lp_config_retention_policy *a = &r->policies[i], *b = &r->policies[j];
    const struct lp_node *atj = item_at(ret, "policies", j, ret);
    const struct lp_node *ati = item_at(ret, "policies", i, ret);
    char w[512];
    if (i < j && policies_overlap(roots[i], a, roots[j], b, w, sizeof(w)))
        lp_node_error(c->errs, atj,
                      "retention.policies[%zu] '%s' overlaps policy '%s' (%s:%d:%d): both "
                      "select e.g. '%s'; narrow routes or glob so that each file has one policy",
                      j, b->name ? b->name : "", a->name ? a->name : "", ati->file, ati->line,
                      ati->col, w);
    if (!a->archive_root || !*a->archive_root)
        return;
    char *ar = norm_dir_dup(a->archive_root);
    if (strcmp(ar, roots[i]) != 0) { /* equal: the same as next to the segment */
        if (dir_within(ar, roots[j]) || dir_within(roots[j], ar))
            lp_node_error(c->errs, key_at(ati, "archive_root", ati),
                          "retention.policies[%zu]: archive_root '%s' overlaps the root of "
                          "policy '%s' ('%s')",
                          i, a->archive_root, b->name ? b->name : "", roots[j]);
        if (i < j && b->archive_root && *b->archive_root) {
            char *br = norm_dir_dup(b->archive_root);
            if (dir_within(ar, br) || dir_within(br, ar))
                lp_node_error(c->errs, key_at(atj, "archive_root", atj),
                              "retention.policies[%zu]: archive_root '%s' is shared with "
                              "policy '%s'; give each policy its own",
                              j, b->archive_root, a->name ? a->name : "");
            free(br);
        }
    }
    free(ar);
}

/* 1 when two comma-separated index patterns select a common name (an
 * example in w). */
static int index_patterns_overlap(const char *p1, const char *p2, char *w, size_t wlen)
{
    char a1[1024], a2[1024];
    snprintf(a1, sizeof(a1), "%s", p1);
    for (char *s1 = NULL, *t1 = strtok_r(a1, ",", &s1); t1; t1 = strtok_r(NULL, ",", &s1)) {
        snprintf(a2, sizeof(a2), "%s", p2);
        for (char *s2 = NULL, *t2 = strtok_r(a2, ",", &s2); t2; t2 = strtok_r(NULL, ",", &s2)) {
            while (*t1 == ' ')
                t1++;
            while (*t2 == ' ')
                t2++;
            const char *v[2] = {t1, t2};
            if (lp_glob_intersect(v, 2, w, wlen) != 0)
                return 1;
        }
    }
    return 0;
}

/* One index policy, and its overlap with earlier ones on the same cluster. */
static void validate_index_policy(struct ctx *c, const struct lp_config_retention *r,
                                  const struct lp_node *ret, size_t i)
{
    const struct lp_config_index_policy *p = &r->elasticsearch[i];
    const struct lp_node *at = item_at(ret, "elasticsearch", i, ret);
    char what[64];
    snprintf(what, sizeof(what), "retention.elasticsearch[%zu]", i);
    /* one namespace with the segment policies (metrics, audit log) */
    int first = find_name(r->policies, r->n_policies, sizeof(*r->policies),
                          offsetof(struct lp_config_retention_policy, name), p->name) >= 0
                    ? -1
                    : find_name(r->elasticsearch, r->n_elasticsearch, sizeof(*p),
                                offsetof(struct lp_config_index_policy, name), p->name);
    check_item_name(c, at, what, "policy", p->name, first, i);
    if (!p->url || (strncmp(p->url, "http://", 7) != 0 && strncmp(p->url, "https://", 8) != 0))
        lp_node_error(c->errs, key_at(at, "url", at),
                      "%s: needs a url starting with http:// or https://", what);
    if (!p->delete_after_ms)
        lp_node_error(c->errs, at, "%s: needs delete_after", what);
    if (p->password && *p->password && (!p->username || !*p->username))
        lp_node_error(c->errs, key_at(at, "password", at), "%s: password without username", what);
    if (!p->index_pattern || !*p->index_pattern) {
        lp_node_error(c->errs, at, "%s: needs an index_pattern", what);
        return;
    }
    char pat[1024];
    snprintf(pat, sizeof(pat), "%s", p->index_pattern);
    for (char *sv = NULL, *t = strtok_r(pat, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        while (*t == ' ')
            t++;
        if (!*t || *t == '-' || strpbrk(t, "?[]\\/ ") || strcmp(t, "_all") == 0)
            lp_node_error(c->errs, key_at(at, "index_pattern", at),
                          "%s: '%s' is not an index name or '*' pattern (no exclusions, "
                          "'?', '[', '/', spaces or _all)",
                          what, t);
    }
    for (size_t j = 0; j < i; j++) {
        const struct lp_config_index_policy *q = &r->elasticsearch[j];
        if (!q->url || !p->url || !q->index_pattern)
            continue;
        char u1[1024], u2[1024];
        norm_dir(p->url, u1, sizeof(u1));
        norm_dir(q->url, u2, sizeof(u2));
        char w[256] = "";
        if (strcmp(u1, u2) == 0 &&
            index_patterns_overlap(p->index_pattern, q->index_pattern, w, sizeof(w))) {
            const struct lp_node *atj = item_at(ret, "elasticsearch", j, ret);
            lp_node_error(c->errs, key_at(at, "index_pattern", at),
                          "%s: index_pattern overlaps policy '%s' (%s:%d:%d) on the same "
                          "cluster: both select e.g. '%s'",
                          what, q->name ? q->name : "", atj->file, atj->line, atj->col, w);
        }
    }
}

static void validate_retention(struct ctx *c, const struct lp_config *cfg,
                               const struct lp_node *ret)
{
    const struct lp_config_retention *r = &cfg->retention;
    char **roots = lp_xcalloc(r->n_policies, sizeof(*roots)); /* NULL: no root */
    for (size_t i = 0; i < r->n_policies; i++)
        roots[i] = validate_policy(c, cfg, ret, i);
    for (size_t i = 0; i < r->n_policies; i++)
        for (size_t j = 0; j < r->n_policies; j++)
            if (i != j && roots[i] && roots[j])
                validate_policy_pair(c, r, ret, roots, i, j);
    for (size_t i = 0; i < r->n_policies; i++)
        free(roots[i]);
    free(roots);
    for (size_t i = 0; i < r->n_elasticsearch; i++)
        validate_index_policy(c, r, ret, i);
}

const struct lp_config_multiline *lp_config_input_multiline(const struct lp_config_shipper *s,
                                                            int input_index)
{
    if (input_index >= 0 && (size_t)input_index < s->n_inputs &&
        s->inputs[input_index].has_multiline)
        return &s->inputs[input_index].multiline;
    return &s->multiline;
}

/* Cross-field checks that a single row cannot express. */
void lp_cfg_validate(struct ctx *c, struct lp_config *cfg, const struct lp_node *root)
{
    struct lp_node whole = {.file = root->file, .line = 1, .col = 1};
    const struct lp_node *ship = lp_node_get(root, "shipper");
    const struct lp_node *ml = lp_node_get(ship, "multiline");
    const struct lp_node *at = ml ? ml : ship ? ship : &whole;
    struct lp_config_multiline *m = &cfg->shipper.multiline;
    /* a section this daemon does not read is checked for its syntax (types,
     * keys) only: one file serves three daemons (lp_node_set_used_sections) */
    int ship_used = lp_node_section_used("shipper");
    if (ship_used && strcmp(m->mode, "custom") == 0 && (!m->start_pattern || !*m->start_pattern))
        lp_node_error(c->errs, at, "shipper.multiline: mode custom needs start_pattern");
    if (ship_used && cfg->shipper.batch_max_bytes > 64 * cfg->kafka.max_message_bytes) {
        const struct lp_node *b = lp_node_get(ship, "batch_max_bytes");
        lp_node_error(c->errs, b ? b : at,
                      "shipper.batch_max_bytes is more than 64x kafka.max_message_bytes: "
                      "batches would rarely fit one message");
    }
    if (ship_used && cfg->shipper.max_line_bytes * 4 > cfg->kafka.max_message_bytes) {
        const struct lp_node *b = lp_node_get(ship, "max_line_bytes");
        lp_node_error(c->errs, b ? b : at,
                      "shipper.max_line_bytes must be at most a quarter of "
                      "kafka.max_message_bytes, so that one line always fits a message");
    }
    if (ship_used) {
        const struct lp_config_kubernetes *k = &cfg->shipper.kubernetes;
        const struct lp_node *kn = lp_node_get(ship, "kubernetes");
        const struct lp_node *kat = kn ? kn : at;
        if (k->enabled && (!k->node_name || !*k->node_name))
            lp_node_error(c->errs, key_at(kat, "node_name", kat),
                          "shipper.kubernetes.node_name: needed when enabled (set it from the "
                          "downward API: ${NODE_NAME})");
        if (k->api_url && *k->api_url && strncmp(k->api_url, "http://", 7) != 0 &&
            strncmp(k->api_url, "https://", 8) != 0)
            lp_node_error(c->errs, key_at(kat, "api_url", kat),
                          "shipper.kubernetes.api_url: must start with http:// or https://");
        if (k->retry_initial_ms > k->retry_max_ms)
            lp_node_error(c->errs, key_at(kat, "retry_initial", kat),
                          "shipper.kubernetes.retry_initial is longer than retry_max");
        if (k->enabled && k->kubeconfig && *k->kubeconfig)
            lp_cfg_resolve_kubeconfig(c, &cfg->shipper.kubernetes);
    }
    const struct lp_node *inputs = lp_node_get(ship, "inputs");
    for (size_t i = 0; ship_used && i < cfg->shipper.n_inputs; i++) {
        struct lp_config_input *in = &cfg->shipper.inputs[i];
        const struct lp_node *item = inputs && i < inputs->n ? inputs->items[i] : at;
        if (in->n_paths == 0)
            lp_node_error(c->errs, item, "shipper.inputs[%zu]: needs at least one path", i);
        const char *why = lp_charset_check(in->encoding);
        if (why) {
            const struct lp_node *enc = item != at ? lp_node_get(item, "encoding") : NULL;
            lp_node_error(c->errs, enc ? enc : item, "shipper.inputs[%zu].encoding: '%s': %s", i,
                          in->encoding, why);
        }
        const struct lp_node *iml = item != at ? lp_node_get(item, "multiline") : NULL;
        if (in->has_multiline && strcmp(in->multiline.mode, "custom") == 0 &&
            (!in->multiline.start_pattern || !*in->multiline.start_pattern))
            lp_node_error(c->errs, iml ? iml : item,
                          "shipper.inputs[%zu].multiline: mode "
                          "custom needs start_pattern",
                          i);
    }
    const struct lp_node *agg = lp_node_get(root, "aggregator");
    if (lp_node_section_used("aggregator"))
        validate_aggregator(c, &cfg->aggregator, agg ? agg : &whole);
    const struct lp_node *ret = lp_node_get(root, "retention");
    if (lp_node_section_used("retention"))
        validate_retention(c, cfg, ret ? ret : &whole);
    if (!cfg->kafka.brokers || !*cfg->kafka.brokers) {
        const struct lp_node *k = lp_node_get(lp_node_get(root, "kafka"), "brokers");
        lp_node_error(c->errs, k ? k : &whole, "kafka.brokers must not be empty");
    }
}

/* The list table named path[0].path[1] under lp_config_root. */
