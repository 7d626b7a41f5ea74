/* The table-driven configuration engine: node tree → typed structs with
 * defaults and validation; dump (with redaction); Markdown reference. */
#include "lp_config.h"
#include "lp_error.h"
#include "lp_alloc.h"
#include "lp_base64.h"
#include "lp_ecs.h"

#include "lp_buf.h"
#include "lp_redact.h"
#include "lp_fields.h"
#include "lp_glob.h"
#include "lp_node.h"

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

#define FIELD(base, f, type) ((type *)((char *)(base) + (f)->offset))
#define CFIELD(base, f, type) ((const type *)((const char *)(base) + (f)->offset))

/* ---- units ---- */

static int parse_number_unit(const char *s, int64_t *num, const char **unit)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    if (!isdigit((unsigned char)*p))
        return LP_EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno || v > INT64_MAX)
        return LP_EINVAL;
    while (*end == ' ')
        end++;
    *num = (int64_t)v;
    *unit = end;
    return 0;
}

/* A unit suffix: value * mul / div in the base unit (ms or bytes). */
struct unit {
    const char *suffix;
    int64_t mul, div;
};

static const struct unit duration_units[] = {
    {"ms", 1, 1}, {"s", 1000, 1}, {"m", 60000, 1}, {"h", 3600000, 1}, {"d", 86400000, 1},
    {"w", 7 * 86400000LL, 1}, {"us", 1, 1000}, {"ns", 1, 1000000}, {NULL, 0, 0},
};

static const struct unit size_units[] = {
    {"", 1, 1}, {"B", 1, 1}, {"KiB", 1LL << 10, 1}, {"MiB", 1LL << 20, 1},
    {"GiB", 1LL << 30, 1}, {"TiB", 1LL << 40, 1}, {"KB", 1000, 1}, {"kB", 1000, 1},
    {"MB", 1000000, 1}, {"GB", 1000000000, 1}, {"TB", 1000000000000LL, 1},
    {"K", 1LL << 10, 1}, {"M", 1LL << 20, 1}, {"G", 1LL << 30, 1}, {NULL, 0, 0},
};

/* Largest exact units first, for printing values back in config syntax. */
static const struct unit duration_print[] = {
    {"d", 86400000, 1}, {"h", 3600000, 1}, {"m", 60000, 1}, {"s", 1000, 1}, {"ms", 1, 1},
    {NULL, 0, 0}};
static const struct unit size_print[] = {
    {"TiB", 1LL << 40, 1}, {"GiB", 1LL << 30, 1}, {"MiB", 1LL << 20, 1}, {"KiB", 1LL << 10, 1},
    {"", 1, 1}, {NULL, 0, 0}};

static int parse_units(const char *s, const struct unit *units, int64_t *out)
{
    int64_t v;
    const char *u;
    if (parse_number_unit(s, &v, &u))
        return LP_EINVAL;
    for (; units->suffix; units++) {
        if (strcmp(u, units->suffix) == 0) {
            if (v > INT64_MAX / units->mul)
                return LP_EINVAL;
            *out = v * units->mul / units->div;
            return 0;
        }
    }
    return LP_EINVAL;
}

static void format_units(int64_t v, const struct unit *units, char *out, size_t n)
{
    for (; units->suffix; units++)
        if ((v && v % units->mul == 0) || units->mul == 1) {
            snprintf(out, n, "%" PRId64 "%s", v / units->mul, units->suffix);
            return;
        }
}

int lp_parse_duration_ms(const char *s, int64_t *ms)
{
    /* a bare number is ambiguous for a duration: the table demands a unit */
    return parse_units(s, duration_units, ms);
}

int lp_parse_size(const char *s, int64_t *bytes)
{
    return parse_units(s, size_units, bytes);
}

static void format_duration(int64_t ms, char *out, size_t n)
{
    format_units(ms, duration_print, out, n);
}

static void format_size(int64_t b, char *out, size_t n)
{
    format_units(b, size_print, out, n);
}

/* A field's bound in config syntax (5s, 64KiB, 12). */
static void format_bound(const struct lp_field *f, int64_t v, char *out, size_t n);

/* ---- did you mean ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                        tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

static const char *suggest(const struct lp_field *table, const char *key)
{
    const char *best = NULL;
    size_t bestd = 99, len = strlen(key);
    size_t maxd = len / 3 > 2 ? len / 3 : 2;
    for (const struct lp_field *f = table; f->name; f++) {
        size_t d = edit_distance(key, f->name);
        if (d < bestd) {
            bestd = d;
            best = f->name;
        }
    }
    return bestd <= maxd ? best : NULL;
}

/* A ratio in millionths as the shortest decimal: 1, 0.1, 0.000001. */
static void format_ratio(int64_t ppm, char *out, size_t n)
{
    int64_t whole = ppm / LP_RATIO_ONE, frac = ppm % LP_RATIO_ONE;
    if (!frac) {
        snprintf(out, n, "%" PRId64, whole);
        return;
    }
    char digits[8];
    snprintf(digits, sizeof(digits), "%06" PRId64, frac);
    size_t k = strlen(digits);
    while (k > 1 && digits[k - 1] == '0')
        digits[--k] = '\0';
    snprintf(out, n, "%" PRId64 ".%s", whole, digits);
}

/* "0.1", ".25", "1", "10%", "0.5%" → millionths (at most six decimals of
 * the ratio). 0 or -1. */
static int parse_ratio(const char *s, int64_t *ppm)
{
    size_t len = strlen(s);
    int pct = len && s[len - 1] == '%';
    if (pct)
        len--;
    int64_t whole = 0, frac = 0;
    size_t i = 0, digits = 0, fdigits = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (whole > 1000000)
            return LP_EINVAL;
        whole = whole * 10 + (s[i] - '0');
    }
    int scale = pct ? 4 : 6; /* decimals that fit in millionths */
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, fdigits++) {
            if ((int)fdigits >= scale) {
                if (s[i] != '0')
                    return LP_EINVAL; /* finer than a millionth */
                continue;
            }
            frac = frac * 10 + (s[i] - '0');
        }
        for (size_t k = fdigits; (int)k < scale; k++)
            frac *= 10;
    }
    if (i != len || digits + fdigits == 0)
        return LP_EINVAL;
    int64_t unit = pct ? 10000 : LP_RATIO_ONE;
    *ppm = whole * unit + frac;
    return 0;
}

static void format_bound(const struct lp_field *f, int64_t v, char *out, size_t n)
{
    if (f->type == LP_FT_RATIO)
        format_ratio(v, out, n);
    else if (f->type == LP_FT_DURATION)
        format_duration(v, out, n);
    else if (f->type == LP_FT_SIZE)
        format_size(v, out, n);
    else
        snprintf(out, n, "%" PRId64, v);
}

/* ---- applying values ---- */

struct ctx {
    struct lp_buf *errs;
};

static void apply_table(struct ctx *c, const struct lp_field *table, void *base,
                        const struct lp_node *map, const char *prefix);

static const char *kind_hint(const struct lp_field *f)
{
    switch (f->type) {
    case LP_FT_DURATION: return "a duration (e.g. 250ms, 5s, 1h, 30d)";
    case LP_FT_SIZE: return "a size (e.g. 512, 64KiB, 5MiB, 1GB)";
    case LP_FT_INT: return "an integer";
    case LP_FT_RATIO:
        return "a ratio (e.g. 0.1 or 10%)";
    case LP_FT_BOOL: return "true or false";
    case LP_FT_STRING: return "a string";
    case LP_FT_ENUM: return "one of the listed values";
    case LP_FT_STRLIST: return "a list of strings";
    case LP_FT_MAP: return "a mapping of string values";
    case LP_FT_LIST: return "a list of mappings";
    case LP_FT_SECTION: return "a mapping";
    }
    return "?";
}

/* Converts a scalar for field f into base; node may be NULL when applying
 * a default (then problems are bugs in the table, reported against the
 * key). Returns 0 or -1 (reported). */
static int set_scalar(struct ctx *c, const struct lp_field *f, void *base, const char *text,
                      const struct lp_node *at, const char *path)
{
    int64_t v = 0;
    switch (f->type) {
    case LP_FT_STRING:
        free(*FIELD(base, f, char *));
        *FIELD(base, f, char *) = lp_xstrdup(text);
        return 0;
    case LP_FT_ENUM: {
        size_t tl = strlen(text);
        for (const char *p = f->choices; *p;) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            if (n == tl && strncmp(p, text, n) == 0) {
                free(*FIELD(base, f, char *));
                *FIELD(base, f, char *) = lp_xstrdup(text);
                return 0;
            }
            p += n + (bar ? 1 : 0);
        }
        lp_node_error(c->errs, at, "%s: '%s' is not one of %s", path, text, f->choices);
        return LP_ECONFIG;
    }
    case LP_FT_BOOL:
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcasecmp(text, "on"))
            *FIELD(base, f, int) = 1;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") ||
                 !strcasecmp(text, "off"))
            *FIELD(base, f, int) = 0;
        else {
            lp_node_error(c->errs, at, "%s: expected true or false, got '%s'", path, text);
            return LP_ECONFIG;
        }
        return 0;
    case LP_FT_INT: {
        char *end;
        errno = 0;
        long long ll = strtoll(text, &end, 10);
        if (errno || end == text || *end) {
            lp_node_error(c->errs, at, "%s: expected an integer, got '%s'", path, text);
            return LP_ECONFIG;
        }
        v = ll;
        break;
    }
    case LP_FT_DURATION:
        if (lp_parse_duration_ms(text, &v)) {
            lp_node_error(c->errs, at, "%s: expected %s, got '%s'", path, kind_hint(f), text);
            return LP_ECONFIG;
        }
        break;
    case LP_FT_SIZE:
        if (lp_parse_size(text, &v)) {
            lp_node_error(c->errs, at, "%s: expected %s, got '%s'", path, kind_hint(f), text);
            return LP_ECONFIG;
        }
        break;
    case LP_FT_RATIO:
        if (parse_ratio(text, &v)) {
            lp_node_error(c->errs, at, "%s: expected %s, got '%s'", path, kind_hint(f), text);
            return LP_ECONFIG;
        }
        break;
    default:
        lp_node_error(c->errs, at, "%s: expected %s, got a scalar", path, kind_hint(f));
        return LP_ECONFIG;
    }
    if (v < f->min || v > f->max) {
        char lo[32], hi[32];
        format_bound(f, f->min, lo, sizeof(lo));
        format_bound(f, f->max, hi, sizeof(hi));
        lp_node_error(c->errs, at, "%s: '%s' is out of range [%s, %s]", path, text, lo, hi);
        return LP_ECONFIG;
    }
    *FIELD(base, f, int64_t) = v;
    return 0;
}

static void free_strlist(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void release_table(const struct lp_field *table, void *base);

static void apply_defaults(struct ctx *c, const struct lp_field *table, void *base)
{
    static const struct lp_node builtin = {.file = "<built-in default>", .line = 1, .col = 1};
    for (const struct lp_field *f = table; f->name; f++) {
        if (f->type == LP_FT_SECTION)
            apply_defaults(c, f->sub, (char *)base + f->offset);
        else if (f->def && f->type != LP_FT_LIST && f->type != LP_FT_STRLIST &&
                 f->type != LP_FT_MAP)
            set_scalar(c, f, base, f->def, &builtin, f->name);
    }
}

static void apply_field(struct ctx *c, const struct lp_field *f, void *base,
                        const struct lp_node *v, const char *path)
{
    if (v->type == LP_NODE_NULL) {
        /* `key:` with nothing: keep the default */
        return;
    }
    switch (f->type) {
    case LP_FT_SECTION:
        if (v->type != LP_NODE_MAP) {
            lp_node_error(c->errs, v, "%s: expected a mapping, got %s", path,
                          lp_node_type_name(v->type));
            return;
        }
        if (f->flags & LP_F_PRESENCE)
            *(int *)((char *)base + f->count_offset) = 1;
        apply_table(c, f->sub, (char *)base + f->offset, v, path);
        return;
    case LP_FT_LIST: {
        if (v->type != LP_NODE_SEQ) {
            lp_node_error(c->errs, v, "%s: expected a list of mappings, got %s", path,
                          lp_node_type_name(v->type));
            return;
        }
        void **arr = FIELD(base, f, void *);
        size_t *count = (size_t *)((char *)base + f->count_offset);
        for (size_t i = 0; i < *count; i++)
            release_table(f->sub, (char *)*arr + i * f->elem_size);
        free(*arr);
        *arr = lp_xcalloc(v->n ? v->n : 1, f->elem_size);
        *count = v->n;
        for (size_t i = 0; i < v->n; i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%.200s[%zu]", path, i);
            void *elem = (char *)*arr + i * f->elem_size;
            apply_defaults(c, f->sub, elem);
            if (v->items[i]->type != LP_NODE_MAP) {
                lp_node_error(c->errs, v->items[i], "%s: expected a mapping, got %s", sub,
                              lp_node_type_name(v->items[i]->type));
                continue;
            }
            apply_table(c, f->sub, elem, v->items[i], sub);
        }
        return;
    }
    case LP_FT_STRLIST: {
        char ***arr = FIELD(base, f, char **);
        size_t *count = (size_t *)((char *)base + f->count_offset);
        const struct lp_node *const *items = (const struct lp_node *const *)&v;
        size_t n = 1;
        if (v->type == LP_NODE_SEQ) {
            items = (const struct lp_node *const *)v->items;
            n = v->n;
        } else if (v->type != LP_NODE_SCALAR) {
            lp_node_error(c->errs, v, "%s: expected a list of strings, got %s", path,
                          lp_node_type_name(v->type));
            return;
        }
        char **out = lp_xcalloc(n ? n : 1, sizeof(char *));
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (items[i]->type != LP_NODE_SCALAR) {
                lp_node_error(c->errs, items[i], "%s[%zu]: expected a string, got %s", path, i,
                              lp_node_type_name(items[i]->type));
                continue;
            }
            out[k++] = lp_xstrdup(items[i]->text);
        }
        free_strlist(*arr, *count);
        *arr = out;
        *count = k;
        return;
    }
    case LP_FT_MAP: {
        if (v->type != LP_NODE_MAP) {
            lp_node_error(c->errs, v, "%s: expected a mapping of string values, got %s", path,
                          lp_node_type_name(v->type));
            return;
        }
        struct lp_kvlist *kv = FIELD(base, f, struct lp_kvlist);
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i]->type != LP_NODE_SCALAR) {
                lp_node_error(c->errs, v->items[i], "%s.%s: expected a string value, got %s",
                              path, v->keys[i]->text, lp_node_type_name(v->items[i]->type));
                continue;
            }
            lp_kvlist_set(kv, v->keys[i]->text, v->items[i]->text);
        }
        return;
    }
    default:
        if (v->type != LP_NODE_SCALAR) {
            lp_node_error(c->errs, v, "%s: expected %s, got %s", path, kind_hint(f),
                          lp_node_type_name(v->type));
            return;
        }
        set_scalar(c, f, base, v->text, v, path);
    }
}

static void apply_table(struct ctx *c, const struct lp_field *table, void *base,
                        const struct lp_node *map, const char *prefix)
{
    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->keys[i]->text;
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
        const struct lp_field *f;
        for (f = table; f->name; f++)
            if (strcmp(f->name, key) == 0)
                break;
        if (!f->name) {
            const char *s = suggest(table, key);
            if (s)
                lp_node_error(c->errs, map->keys[i], "unknown key '%s'; did you mean '%s'?", path,
                              s);
            else
                lp_node_error(c->errs, map->keys[i], "unknown key '%s'", path);
            continue;
        }
        apply_field(c, f, base, map->items[i], path);
    }
}

static void release_table(const struct lp_field *table, void *base)
{
    for (const struct lp_field *f = table; f->name; f++) {
        switch (f->type) {
        case LP_FT_SECTION:
            release_table(f->sub, (char *)base + f->offset);
            break;
        case LP_FT_LIST: {
            void *arr = *FIELD(base, f, void *);
            size_t n = *(size_t *)((char *)base + f->count_offset);
            for (size_t i = 0; i < n; i++)
                release_table(f->sub, (char *)arr + i * f->elem_size);
            free(arr);
            break;
        }
        case LP_FT_STRLIST:
            free_strlist(*FIELD(base, f, char **), *(size_t *)((char *)base + f->count_offset));
            break;
        case LP_FT_MAP:
            lp_kvlist_release(FIELD(base, f, struct lp_kvlist));
            break;
        case LP_FT_STRING:
        case LP_FT_ENUM:
            free(*FIELD(base, f, char *));
            break;
        default:
            break;
        }
    }
}

void lp_config_free(struct lp_config *cfg)
{
    if (!cfg)
        return;
    lp_k8s_conn_free(cfg->shipper.kubernetes.conn);
    release_table(lp_config_root, cfg);
    free(cfg);
}

/* ---- kubeconfig (shipper.kubernetes.kubeconfig) ---- */

static const char *no_env(const char *name)
{
    (void)name;
    return NULL; /* a kubeconfig is taken as written: no ${...} */
}

/* The `member` map of the item named `name` in the list `list` of a
 * kubeconfig (clusters, users, contexts); errors at the list or the item. */
static const struct lp_node *kc_named(struct ctx *c, const struct lp_node *root, const char *list,
                                      const char *name, const char *member,
                                      const struct lp_node *at)
{
    const struct lp_node *l = lp_node_get(root, list);
    for (size_t i = 0; l && l->type == LP_NODE_SEQ && i < l->n; i++) {
        const struct lp_node *it = l->items[i], *nm = lp_node_get(it, "name");
        if (it->type != LP_NODE_MAP || !nm || nm->type != LP_NODE_SCALAR ||
            strcmp(nm->text, name) != 0)
            continue;
        const struct lp_node *m = lp_node_get(it, member);
        if (!m || m->type != LP_NODE_MAP) {
            lp_node_error(c->errs, m ? m : it, "kubeconfig: %s \"%s\" has no %s mapping", list,
                          name, member);
            return NULL;
        }
        return m;
    }
    lp_node_error(c->errs, at, "kubeconfig: no %s named \"%s\"", list, name);
    return NULL;
}

/* A scalar member (NULL when absent; an error when not a scalar). */
static const char *kc_str(struct ctx *c, const struct lp_node *map, const char *key)
{
    const struct lp_node *n = lp_node_get(map, key);
    if (!n || n->type == LP_NODE_NULL)
        return NULL;
    if (n->type != LP_NODE_SCALAR) {
        lp_node_error(c->errs, n, "kubeconfig: %s must be a string", key);
        return NULL;
    }
    return n->len ? n->text : NULL;
}

/* A path as kubectl resolves it: relative to the kubeconfig's directory. */
static char *kc_path(const char *kcfile, const char *p)
{
    const char *slash = strrchr(kcfile, '/');
    if (!p)
        return NULL;
    if (p[0] == '/' || !slash)
        return lp_xstrdup(p);
    struct lp_buf b = LP_BUF_INIT;
    lp_buf_append(&b, kcfile, (size_t)(slash - kcfile) + 1);
    lp_buf_puts(&b, p);
    lp_buf_putc(&b, '\0');
    return b.data;
}

/* A *-data member, base64-decoded (NULL when absent or invalid: reported). */
static char *kc_data(struct ctx *c, const struct lp_node *map, const char *key, size_t *len)
{
    const char *v = kc_str(c, map, key);
    if (!v)
        return NULL;
    struct lp_buf b = LP_BUF_INIT;
    if (lp_base64_decode(v, strlen(v), &b) || !b.len) {
        lp_node_error(c->errs, lp_node_get(map, key), "kubeconfig: %s is not base64", key);
        lp_buf_release(&b);
        return NULL;
    }
    *len = b.len;
    lp_buf_putc(&b, '\0');
    return b.data;
}

void lp_k8s_conn_free(struct lp_k8s_conn *k)
{
    if (!k)
        return;
    free(k->server);
    free(k->token);
    free(k->token_file);
    free(k->ca_file);
    free(k->ca_pem);
    free(k->cert_file);
    free(k->key_file);
    free(k->cert_pem);
    free(k->key_pem);
    free(k->context);
    free(k);
}

/* Reads the kubeconfig into k->conn: the context's cluster (server, CA,
 * insecure-skip-tls-verify) and user (token, tokenFile, client certificate
 * and key, as files or -data). Errors point into the kubeconfig. */
static void resolve_kubeconfig(struct ctx *c, struct lp_config_kubernetes *k)
{
    const char *path = k->kubeconfig;
    struct lp_node *root = lp_node_parse_file(path, NULL, 0, no_env, c->errs);
    if (!root)
        return;
    struct lp_k8s_conn *kc = lp_xcalloc(1, sizeof(*kc));
    const char *ctx_name =
        k->context && *k->context ? k->context : kc_str(c, root, "current-context");
    const struct lp_node *cx, *cl, *us;
    if (!ctx_name) {
        lp_node_error(c->errs, root,
                      "kubeconfig %s: no current-context (set "
                      "shipper.kubernetes.context)",
                      path);
        goto out;
    }
    const struct lp_node *cur = lp_node_get(root, "current-context");
    if (!(cx = kc_named(c, root, "contexts", ctx_name, "context",
                        k->context && *k->context ? root : cur)))
        goto out;
    kc->context = lp_xstrdup(ctx_name);
    const char *cluster = kc_str(c, cx, "cluster"), *user = kc_str(c, cx, "user");
    if (!cluster) {
        lp_node_error(c->errs, cx, "kubeconfig: context \"%s\" names no cluster", ctx_name);
        goto out;
    }
    if (!(cl = kc_named(c, root, "clusters", cluster, "cluster", lp_node_get(cx, "cluster"))))
        goto out;
    const char *server = kc_str(c, cl, "server");
    if (!server || (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)) {
        lp_node_error(c->errs, server ? lp_node_get(cl, "server") : cl,
                      "kubeconfig: cluster \"%s\" needs a server (http:// or https://)", cluster);
        goto out;
    }
    kc->server = lp_xstrdup(server);
    kc->ca_file = kc_path(path, kc_str(c, cl, "certificate-authority"));
    kc->ca_pem = kc_data(c, cl, "certificate-authority-data", &kc->ca_pem_len);
    const char *insecure = kc_str(c, cl, "insecure-skip-tls-verify");
    kc->insecure = insecure && strcmp(insecure, "true") == 0;
    if (user) {
        if (!(us = kc_named(c, root, "users", user, "user", lp_node_get(cx, "user"))))
            goto out;
        static const char *const refused[] = {"exec", "auth-provider", "username", "password"};
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
            if (lp_node_get(us, refused[i]))
                lp_node_error(c->errs, lp_node_get(us, refused[i]),
                              "kubeconfig: user \"%s\": %s credentials are not supported (use a "
                              "token, tokenFile or client certificate)",
                              user, refused[i]);
        const char *tok = kc_str(c, us, "token");
        for (const char *q = tok; q && *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                lp_node_error(c->errs, lp_node_get(us, "token"),
                              "kubeconfig: user \"%s\": the token has control characters", user);
                tok = NULL;
                break;
            }
        kc->token = tok ? lp_xstrdup(tok) : NULL;
        kc->token_file = kc_path(path, kc_str(c, us, "tokenFile"));
        kc->cert_file = kc_path(path, kc_str(c, us, "client-certificate"));
        kc->key_file = kc_path(path, kc_str(c, us, "client-key"));
        kc->cert_pem = kc_data(c, us, "client-certificate-data", &kc->cert_pem_len);
        kc->key_pem = kc_data(c, us, "client-key-data", &kc->key_pem_len);
        if (!(kc->cert_file || kc->cert_pem) != !(kc->key_file || kc->key_pem))
            lp_node_error(c->errs, us,
                          "kubeconfig: user \"%s\": a client certificate needs "
                          "its key and the other way round",
                          user);
    }
out:
    lp_node_free(root);
    lp_k8s_conn_free(k->conn);
    k->conn = kc;
}

/* The node of list `key` item i under map (or a fallback), for positions. */
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
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                   &off, NULL);
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
        lp_node_error(c->errs, key_at(at, "name", at), "%s: %s '%s' is defined twice", what,
                      kind, name);
}

#define FIND_PARSER(a, nm) \
    find_name((a)->parsers, (a)->n_parsers, sizeof(*(a)->parsers), \
              offsetof(struct lp_config_parser, name), nm)
#define FIND_OUTPUT(a, nm) \
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
                       char *const *hints, size_t n_hints, char *const *outputs,
                       size_t n_outputs)
{
    if (parser && FIND_PARSER(a, parser) < 0)
        lp_node_error(c->errs, key_at(at, "parser", at), "%s: no parser named '%s'", what,
                      parser);
    for (size_t k = 0; k < n_hints; k++)
        if (FIND_PARSER(a, hints[k]) < 0)
            lp_node_error(c->errs, item_at(at, "hint_parsers", k, at),
                          "%s: hint_parsers: no parser named '%s'", what, hints[k]);
    for (size_t k = 0; k < n_outputs; k++)
        if (FIND_OUTPUT(a, outputs[k]) < 0)
            lp_node_error(c->errs, item_at(at, "outputs", k, at), "%s: no output named '%s'",
                          what, outputs[k]);
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
const char *const lp_output_kind_name[LP_OUTPUT_KINDS] = {"elasticsearch", "file", "s3",
                                                          "stdout"};
static const unsigned lp_output_kind_flag[LP_OUTPUT_KINDS] = {LP_F_OUT_ES, LP_F_OUT_FILE,
                                                              LP_F_OUT_S3, LP_F_OUT_STDOUT};

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
        if (!f->name || !(f->flags & LP_F_OUT_ANY) || (f->flags & lp_output_kind_flag[kind]))
            continue;
        char types[64] = "";
        for (size_t t = 0; t < LP_OUTPUT_KINDS; t++)
            if (f->flags & lp_output_kind_flag[t])
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
        lp_node_error(c->errs, key_at(at, "password", at), "%s: password without username",
                      what);
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
    if (o->access_key_id && *o->access_key_id &&
        (!o->secret_access_key || !*o->secret_access_key))
        lp_node_error(c->errs, key_at(at, "access_key_id", at),
                      "%s: access_key_id without secret_access_key", what);
    if (o->prefix && (strstr(o->prefix, "//") || strstr(o->prefix, "_logpipe")))
        lp_node_error(c->errs, key_at(at, "prefix", at),
                      "%s: prefix must not contain '//' nor '_logpipe' (the output's own "
                      "records)", what);
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
                          "'default'", what);
        else if (dup)
            lp_node_error(c->errs, key_at(at, "name", at), "%s: route '%s' is defined twice",
                          what, r->name);
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
            k[strlen(k) - 1] == '.' || (lp_ecs_lookup(k) && lp_ecs_lookup(k)->type != LP_ECS_OBJECT))
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
static int policy_patterns(const char *root, const struct lp_config_retention_policy *p,
                           long r, char pats[4][4200])
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
            lp_node_error(c->errs, key_at(at, s3_only[k], at), "%s: %s without archive_after",
                          what, s3_only[k]);
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
static void validate(struct ctx *c, struct lp_config *cfg, const struct lp_node *root)
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
            resolve_kubeconfig(c, &cfg->shipper.kubernetes);
    }
    const struct lp_node *inputs = lp_node_get(ship, "inputs");
    for (size_t i = 0; ship_used && i < cfg->shipper.n_inputs; i++) {
        struct lp_config_input *in = &cfg->shipper.inputs[i];
        const struct lp_node *item = inputs && i < inputs->n ? inputs->items[i] : at;
        if (in->n_paths == 0)
            lp_node_error(c->errs, item, "shipper.inputs[%zu]: needs at least one path", i);
        const struct lp_node *iml = item != at ? lp_node_get(item, "multiline") : NULL;
        if (in->has_multiline && strcmp(in->multiline.mode, "custom") == 0 &&
            (!in->multiline.start_pattern || !*in->multiline.start_pattern))
            lp_node_error(c->errs, iml ? iml : item, "shipper.inputs[%zu].multiline: mode "
                          "custom needs start_pattern", i);
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
static const struct lp_field *list_table(const char *section, const char *list)
{
    for (const struct lp_field *f = lp_config_root; f->name; f++)
        if (f->type == LP_FT_SECTION && strcmp(f->name, section) == 0)
            for (const struct lp_field *g = f->sub; g->name; g++)
                if (g->type == LP_FT_LIST && strcmp(g->name, list) == 0)
                    return g->sub;
    abort(); /* a table and this file disagree: a build-time mistake */
}

/* Sets the scalar field name of a table element from its text form. */
static void set_named(struct ctx *c, const struct lp_field *table, void *base, const char *name,
                      const char *text)
{
    static const struct lp_node builtin = {.file = "<built-in default>", .line = 1, .col = 1};
    for (const struct lp_field *f = table; f->name; f++)
        if (strcmp(f->name, name) == 0) {
            set_scalar(c, f, base, text, &builtin, name);
            return;
        }
    abort();
}

/* What the documentation promises when nothing is configured, made once
 * here so that no daemon special-cases it: without aggregator.outputs, one
 * file output "files" under LP_DEFAULT_SEGMENTS_DIR; without any retention
 * policy (neither files nor indices), one per file output that archives
 * its closed segments after a day. They then pass the same validation,
 * --check-config and code paths as configured ones. */
static void add_implicit(struct ctx *c, struct lp_config *cfg)
{
    struct lp_config_aggregator *a = &cfg->aggregator;
    if (a->n_outputs == 0) {
        const struct lp_field *t = list_table("aggregator", "outputs");
        free(a->outputs);
        a->outputs = lp_xcalloc(1, sizeof(*a->outputs));
        apply_defaults(c, t, &a->outputs[0]);
        set_named(c, t, &a->outputs[0], "name", "files");
        set_named(c, t, &a->outputs[0], "type", "file");
        set_named(c, t, &a->outputs[0], "path", LP_DEFAULT_SEGMENTS_DIR);
        a->n_outputs = 1;
    }
    struct lp_config_retention *r = &cfg->retention;
    if (r->n_policies == 0 && r->n_elasticsearch == 0) {
        const struct lp_field *t = list_table("retention", "policies");
        size_t n = 0;
        for (size_t i = 0; i < a->n_outputs; i++)
            n += lp_config_output_kind(&a->outputs[i]) == LP_OUTPUT_FILE;
        free(r->policies);
        r->policies = lp_xcalloc(n ? n : 1, sizeof(*r->policies));
        for (size_t i = 0; i < a->n_outputs; i++) {
            if (lp_config_output_kind(&a->outputs[i]) != LP_OUTPUT_FILE)
                continue;
            struct lp_config_retention_policy *p = &r->policies[r->n_policies++];
            apply_defaults(c, t, p);
            set_named(c, t, p, "name", a->outputs[i].name ? a->outputs[i].name : "files");
            set_named(c, t, p, "output", a->outputs[i].name ? a->outputs[i].name : "files");
            set_named(c, t, p, "archive_after", "1d");
        }
    }
}

static struct lp_config *load(const char *const *names, const char *const *texts, size_t n,
                              lp_config_getenv_fn env, struct lp_buf *errs)
{
    struct lp_node *root = NULL;
    size_t errs_before = errs->len;
    int unreadable = 0;
    for (size_t i = 0; i < n; i++) {
        struct lp_node *t = lp_node_parse_file(names[i], texts ? texts[i] : NULL,
                                               texts ? strlen(texts[i]) : 0, env, errs);
        if (!t) {
            unreadable = 1;
            continue; /* keep going: report problems of every file at once */
        }
        if (!root)
            root = t;
        else
            lp_node_merge(root, t);
    }
    if (unreadable) { /* YAML that does not parse: nothing to check further */
        lp_node_free(root);
        return NULL;
    }
    if (!root) {
        static const struct lp_node empty = {.type = LP_NODE_MAP, .file = "<defaults>"};
        root = lp_xcalloc(1, sizeof(*root));
        *root = empty;
    }
    struct lp_config *cfg = lp_xcalloc(1, sizeof(*cfg));
    struct ctx c = {errs};
    apply_defaults(&c, lp_config_root, cfg);
    apply_table(&c, lp_config_root, cfg, root, "");
    /* the cross-field checks too, whatever the earlier steps found: a value
     * they refused keeps its default, so the checks see a whole config and
     * every independent mistake is reported in one run */
    add_implicit(&c, cfg);
    validate(&c, cfg, root);
    lp_node_free(root);
    if (errs->len != errs_before) {
        lp_config_free(cfg);
        return NULL;
    }
    return cfg;
}

struct lp_config *lp_config_load(const char *const *files, size_t n, lp_config_getenv_fn env,
                                 struct lp_buf *errs)
{
    return load(files, NULL, n, env, errs);
}

struct lp_config *lp_config_load_texts(const char *const *names, const char *const *texts,
                                       size_t n, lp_config_getenv_fn env, struct lp_buf *errs)
{
    return load(names, texts, n, env, errs);
}

/* ---- dump ---- */

int lp_config_key_is_secret(const char *key)
{
    /* anywhere in the name: librdkafka's ssl.key.password,
     * ssl.keystore.password, sasl.oauthbearer.client.secret, ... */
    static const char *const anywhere[] = {"password", "passwd", "secret", "token",
                                           "passphrase", "credential"};
    if (strncmp(key, "sasl.", 5) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(anywhere) / sizeof(anywhere[0]); i++)
        if (strcasestr(key, anywhere[i]))
            return 1;
    /* the name's last part: api_key, ssl_key, apikey; ssl.key.pem (the key
     * itself; ssl.key.location, a path, stays visible) */
    size_t kl = strlen(key);
    if (kl >= 3 && strcasecmp(key + kl - 3, "pem") == 0)
        return 1;
    if (kl >= 6 && strcasecmp(key + kl - 6, "apikey") == 0)
        return 1;
    if (kl >= 3 && strcasecmp(key + kl - 3, "key") == 0 &&
        (kl == 3 || strchr("._-", key[kl - 4])))
        return 1;
    return 0;
}

static void yaml_string(struct lp_buf *out, const char *s)
{
    /* JSON strings are valid YAML double-quoted scalars; "${" is written as
     * "$${" so the dump loads back to the same value. */
    if (!strstr(s, "${")) {
        lp_buf_append_json_string(out, s, strlen(s));
        return;
    }
    struct lp_buf esc = LP_BUF_INIT;
    for (const char *p = s; *p; p++) {
        if (p[0] == '$' && p[1] == '{')
            lp_buf_putc(&esc, '$');
        lp_buf_putc(&esc, *p);
    }
    lp_buf_append_json_string(out, esc.data, esc.len);
    lp_buf_release(&esc);
}

static void indent(struct lp_buf *out, int depth)
{
    for (int i = 0; i < depth; i++)
        lp_buf_puts(out, "  ");
}

static void dump_table(const struct lp_field *table, const void *base, int depth, int redact,
                       struct lp_buf *out, int first_in_item);

/* s as a YAML string, its URL userinfo redacted when redact is set, at
 * any length (a 2 KiB buffer once let longer URLs through whole). */
static void yaml_maybe_url(struct lp_buf *out, const char *s, int redact)
{
    size_t cap = strlen(s) + 32; /* "<redacted>@" replaces at least "@" */
    char *url = redact ? lp_xmalloc(cap) : NULL;
    if (url && lp_redact_url(s, url, cap))
        yaml_string(out, url);
    else
        yaml_string(out, s);
    free(url);
}

static void dump_value(const struct lp_field *f, const void *base, int depth, int redact,
                       struct lp_buf *out)
{
    char tmp[64];
    int secret = redact && ((f->flags & LP_F_SECRET) || lp_config_key_is_secret(f->name));
    if ((f->type == LP_FT_INT || f->type == LP_FT_DURATION || f->type == LP_FT_SIZE) && !f->def &&
        f->min > 0 && *CFIELD(base, f, int64_t) == 0) {
        /* not set (0 is below its range): null, which loads back as not set */
        lp_buf_puts(out, " null\n");
        return;
    }
    switch (f->type) {
    case LP_FT_STRING:
    case LP_FT_ENUM: {
        const char *s = *CFIELD(base, f, char *);
        if (!s)
            lp_buf_puts(out, " null\n");
        else {
            lp_buf_putc(out, ' ');
            if (secret && *s)
                yaml_string(out, "<redacted>");
            else
                yaml_maybe_url(out, s, redact); /* https://user:pass@host: the userinfo */
            lp_buf_putc(out, '\n');
        }
        break;
    }
    case LP_FT_BOOL:
        lp_buf_appendf(out, " %s\n", *CFIELD(base, f, int) ? "true" : "false");
        break;
    case LP_FT_INT:
        lp_buf_appendf(out, " %" PRId64 "\n", *CFIELD(base, f, int64_t));
        break;
    case LP_FT_RATIO:
        format_ratio(*CFIELD(base, f, int64_t), tmp, sizeof(tmp));
        lp_buf_appendf(out, " %s\n", tmp);
        break;
    case LP_FT_DURATION:
        format_duration(*CFIELD(base, f, int64_t), tmp, sizeof(tmp));
        lp_buf_appendf(out, " %s\n", tmp);
        break;
    case LP_FT_SIZE:
        format_size(*CFIELD(base, f, int64_t), tmp, sizeof(tmp));
        lp_buf_appendf(out, " %s\n", tmp);
        break;
    case LP_FT_STRLIST: {
        char *const *items = *(char **const *)((const char *)base + f->offset);
        size_t n = *(const size_t *)((const char *)base + f->count_offset);
        if (n == 0) {
            lp_buf_puts(out, " []\n");
            break;
        }
        lp_buf_putc(out, '\n');
        for (size_t i = 0; i < n; i++) {
            indent(out, depth + 1);
            lp_buf_puts(out, "- ");
            yaml_string(out, items[i]);
            lp_buf_putc(out, '\n');
        }
        break;
    }
    case LP_FT_MAP: {
        const struct lp_kvlist *kv = CFIELD(base, f, struct lp_kvlist);
        if (kv->n == 0) {
            lp_buf_puts(out, " {}\n");
            break;
        }
        lp_buf_putc(out, '\n');
        for (size_t i = 0; i < kv->n; i++) {
            indent(out, depth + 1);
            yaml_string(out, kv->items[i].key);
            lp_buf_puts(out, ": ");
            int s = redact && lp_config_key_is_secret(kv->items[i].key);
            if (s)
                yaml_string(out, "<redacted>");
            else /* sasl-less brokers lists do not have userinfo, URLs might */
                yaml_maybe_url(out, kv->items[i].value, redact);
            lp_buf_putc(out, '\n');
        }
        break;
    }
    case LP_FT_SECTION:
        lp_buf_putc(out, '\n');
        dump_table(f->sub, (const char *)base + f->offset, depth + 1, redact, out, 0);
        break;
    case LP_FT_LIST: {
        const char *arr = *CFIELD(base, f, char *);
        size_t n = *(const size_t *)((const char *)base + f->count_offset);
        if (n == 0) {
            lp_buf_puts(out, " []\n");
            break;
        }
        lp_buf_putc(out, '\n');
        for (size_t i = 0; i < n; i++)
            dump_table(f->sub, arr + i * f->elem_size, depth + 1, redact, out, 1);
        break;
    }
    }
}

static void dump_table(const struct lp_field *table, const void *base, int depth, int redact,
                       struct lp_buf *out, int list_item)
{
    int first = 1;
    for (const struct lp_field *f = table; f->name; f++) {
        if ((f->flags & LP_F_PRESENCE) && !*(const int *)((const char *)base + f->count_offset))
            continue; /* not given: absent in the dump too */
        if ((f->flags & LP_F_OUT_ANY) && table == lp_config_output_fields) {
            enum lp_output_kind k = lp_config_output_kind(base);
            if (k == LP_OUTPUT_KINDS || !(f->flags & lp_output_kind_flag[k]))
                continue; /* a key of another output type */
        }
        if (list_item && first) {
            indent(out, depth);
            lp_buf_puts(out, "- ");
        } else {
            indent(out, depth + (list_item ? 1 : 0));
        }
        first = 0;
        lp_buf_appendf(out, "%s:", f->name);
        dump_value(f, base, depth + (list_item ? 1 : 0), redact, out);
    }
}

static int plain_http(const char *url)
{
    return url && strncasecmp(url, "http://", 7) == 0;
}

static int has_userinfo(const char *url)
{
    size_t cap = strlen(url) + 32;
    char *tmp = lp_xmalloc(cap);
    int r = lp_redact_url(url, tmp, cap);
    free(tmp);
    return r;
}

/* http://127.0.0.1..., http://localhost..., http://[::1]...: a store on the
 * same host (tests, a sidecar) */
static int is_loopback_url(const char *url)
{
    const char *h = url + 7;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

size_t lp_config_warnings(const struct lp_config *c, struct lp_buf *out)
{
    size_t n = 0;
    const struct lp_config_kubernetes *k = &c->shipper.kubernetes;
    if (k->enabled && k->conn && k->conn->insecure) {
        lp_buf_appendf(out,
                       "warning: shipper.kubernetes.kubeconfig: context '%s' sets "
                       "insecure-skip-tls-verify: the API server's certificate is not checked, "
                       "and whoever answers in its place gets the token\n",
                       k->conn->context ? k->conn->context : "");
        n++;
    }
    const char *server = k->conn ? k->conn->server : k->api_url;
    if (k->enabled && plain_http(server)) {
        lp_buf_appendf(out,
                       "warning: shipper.kubernetes: the API server %s is plain HTTP: its bearer "
                       "token travels in clear\n",
                       k->conn ? "of the kubeconfig" : "(api_url)");
        n++;
    }
    for (size_t i = 0; i < c->aggregator.n_outputs; i++) {
        const struct lp_config_output *o = &c->aggregator.outputs[i];
        if (plain_http(o->url) && ((o->password && *o->password) ||
                                   (o->api_key && *o->api_key) || has_userinfo(o->url))) {
            lp_buf_appendf(out,
                           "warning: aggregator.outputs[%zu] (%s): credentials over plain "
                           "HTTP travel in clear; use https://\n",
                           i, o->name ? o->name : "");
            n++;
        }
        if (lp_config_output_kind(o) == LP_OUTPUT_S3 && plain_http(o->endpoint) &&
            !is_loopback_url(o->endpoint)) {
            lp_buf_appendf(out,
                           "warning: aggregator.outputs[%zu] (%s): the object store is plain "
                           "HTTP: requests are signed (the secret is not sent) but the logs "
                           "travel in clear and can be read on the way; use https://\n",
                           i, o->name ? o->name : "");
            n++;
        }
    }
    return n;
}

int lp_config_dump(const struct lp_config *cfg, const char *section, int redact,
                   struct lp_buf *out)
{
    int found = 0;
    for (const struct lp_field *f = lp_config_root; f->name; f++) {
        if (section && strcmp(section, f->name) != 0)
            continue;
        found = 1;
        lp_buf_appendf(out, "%s:", f->name);
        dump_value(f, cfg, 0, redact, out);
    }
    return found ? 0 : LP_ENOTFOUND;
}

/* ---- reference ---- */

static const char *type_name(const struct lp_field *f)
{
    switch (f->type) {
    case LP_FT_STRING: return "string";
    case LP_FT_ENUM: return "enum";
    case LP_FT_BOOL: return "bool";
    case LP_FT_INT: return "integer";
    case LP_FT_RATIO:
        return "ratio";
    case LP_FT_DURATION: return "duration";
    case LP_FT_SIZE: return "size";
    case LP_FT_STRLIST: return "list of strings";
    case LP_FT_MAP: return "map of strings";
    case LP_FT_LIST: return "list of mappings";
    case LP_FT_SECTION: return "mapping";
    }
    return "?";
}

static void md_cell(struct lp_buf *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            lp_buf_puts(out, "\\|");
        else
            lp_buf_putc(out, *p);
    }
}

static void reference_rows(const struct lp_field *table, const char *prefix, struct lp_buf *out)
{
    for (const struct lp_field *f = table; f->name; f++) {
        char path[256];
        snprintf(path, sizeof(path), "%s.%s", prefix, f->name);
        lp_buf_appendf(out, "| `%s` | %s | ", path, type_name(f));
        if (f->def)
            lp_buf_appendf(out, "`%s`", f->def);
        else if (f->type == LP_FT_STRING)
            lp_buf_puts(out, "(empty)");
        lp_buf_puts(out, " | ");
        const char *sep = "";
        for (size_t t = 0; (f->flags & LP_F_OUT_ANY) && t < LP_OUTPUT_KINDS; t++)
            if (f->flags & lp_output_kind_flag[t]) {
                lp_buf_appendf(out, "%s%s", sep, lp_output_kind_name[t]);
                sep = ", ";
            }
        if (*sep)
            lp_buf_puts(out, ": ");
        md_cell(out, f->doc);
        if (f->type == LP_FT_ENUM) {
            lp_buf_puts(out, " One of: ");
            for (const char *p = f->choices; *p; p++) {
                if (*p == '|')
                    lp_buf_puts(out, ", ");
                else
                    lp_buf_putc(out, *p);
            }
            lp_buf_putc(out, '.');
        }
        if (f->type == LP_FT_INT || f->type == LP_FT_DURATION || f->type == LP_FT_SIZE ||
            f->type == LP_FT_RATIO) {
            char lo[32], hi[32];
            format_bound(f, f->min, lo, sizeof(lo));
            format_bound(f, f->max, hi, sizeof(hi));
            lp_buf_appendf(out, " Range: %s to %s.", lo, hi);
        }
        lp_buf_puts(out, " |\n");
        if (f->type == LP_FT_SECTION)
            reference_rows(f->sub, path, out);
        else if (f->type == LP_FT_LIST) {
            char list[sizeof(path) + 2];
            snprintf(list, sizeof(list), "%s[]", path);
            reference_rows(f->sub, list, out);
        }
    }
}

int lp_config_reference(struct lp_buf *out)
{
    lp_buf_puts(out,
                "# Configuration reference\n\n"
                "<!-- Generated from config/lp_config_fields.c by `logpipe-shipper "
                "--config-reference`; do not edit. A unit test fails when this file is "
                "stale: regenerate with `cmake --build build --target config-doc`. -->\n\n"
                "One YAML file, or several: `-c base.yaml -c prod.yaml` merges later files "
                "over earlier ones (mappings deep-merge; scalars and lists replace). Every "
                "daemon reads the same file and uses its own section plus `kafka`, `metrics` "
                "and `log`.\n\n"
                "- Substitution in values: `${VAR}` (an error names the variable when it is "
                "unset), `${VAR:-default}` (default when unset or empty), `${file:PATH}` "
                "(the file's content without its final newline; relative to the config "
                "file), `$${` for a literal `${`.\n"
                "- One file can serve all three daemons. Each checks the keys and types of "
                "every section (a typo anywhere stops all three, so a broken file never "
                "half-runs), but resolves the secrets and variables, and runs the "
                "cross-field checks, only of the sections it reads: the shipper `kafka` and "
                "`shipper`; the aggregator `kafka` and `aggregator`; retention `retention`, "
                "`aggregator` (its policies name outputs) and `kafka` (all with `metrics` "
                "and `log`). In the others an unset `${VAR}` or a missing `${file:...}` is "
                "empty, so the shipper starts without the aggregator's OpenSearch "
                "password.\n"
                "- A list key given one value (`paths: \"/var/log/app.log\"`) is a list of "
                "that one value.\n"
                "- Durations: a number and a unit: `ms`, `s`, `m`, `h`, `d`, `w` "
                "(`250ms`, `5s`, `30d`).\n"
                "- Sizes: bytes, or with a unit: `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024) "
                "or `KB`, `MB`, `GB`, `TB` (powers of 1000).\n"
                "- Errors are reported as `FILE:LINE:COL: message` (unknown keys with a "
                "suggestion), all at once, and the daemon exits with status 2 before "
                "starting anything. `--check-config` prints the effective configuration "
                "with secrets redacted.\n");
    for (const struct lp_field *s = lp_config_root; s->name; s++) {
        lp_buf_appendf(out, "\n## `%s`\n\n%s\n\n", s->name, s->doc);
        lp_buf_puts(out, "| Key | Type | Default | Description |\n|---|---|---|---|\n");
        reference_rows(s->sub, s->name, out);
    }
    return 0;
}
