/* The table-driven configuration engine: node tree → typed structs with
 * units, defaults and "did you mean"; loading and merging files. Validation
 * is lp_config_check.c, the kubeconfig lp_kubeconfig.c, the dump and the
 * Markdown reference lp_config_doc.c. */
#include "lp_config.h"
#include "lp_config_int.h"
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
    {"ms", 1, 1},      {"s", 1000, 1},     {"m", 60000, 1},
    {"h", 3600000, 1}, {"d", 86400000, 1}, {"w", 7 * 86400000LL, 1},
    {"us", 1, 1000},   {"ns", 1, 1000000}, {NULL, 0, 0},
};

static const struct unit size_units[] = {
    {"", 1, 1},
    {"B", 1, 1},
    {"KiB", 1LL << 10, 1},
    {"MiB", 1LL << 20, 1},
    {"GiB", 1LL << 30, 1},
    {"TiB", 1LL << 40, 1},
    {"KB", 1000, 1},
    {"kB", 1000, 1},
    {"MB", 1000000, 1},
    {"GB", 1000000000, 1},
    {"TB", 1000000000000LL, 1},
    {"K", 1LL << 10, 1},
    {"M", 1LL << 20, 1},
    {"G", 1LL << 30, 1},
    {NULL, 0, 0},
};

/* Largest exact units first, for printing values back in config syntax. */
static const struct unit duration_print[] = {{"d", 86400000, 1}, {"h", 3600000, 1}, {"m", 60000, 1},
                                             {"s", 1000, 1},     {"ms", 1, 1},      {NULL, 0, 0}};
static const struct unit size_print[] = {{"TiB", 1LL << 40, 1},
                                         {"GiB", 1LL << 30, 1},
                                         {"MiB", 1LL << 20, 1},
                                         {"KiB", 1LL << 10, 1},
                                         {"", 1, 1},
                                         {NULL, 0, 0}};

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

void lp_cfg_format_duration(int64_t ms, char *out, size_t n)
{
    format_units(ms, duration_print, out, n);
}

void lp_cfg_format_size(int64_t b, char *out, size_t n)
{
    format_units(b, size_print, out, n);
}

/* A field's bound in config syntax (5s, 64KiB, 12). */

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
            size_t sub = prev[j - 1] +
                         (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
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
void lp_cfg_format_ratio(int64_t ppm, char *out, size_t n)
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

void lp_cfg_format_bound(const struct lp_field *f, int64_t v, char *out, size_t n)
{
    if (f->type == LP_FT_RATIO)
        lp_cfg_format_ratio(v, out, n);
    else if (f->type == LP_FT_DURATION)
        lp_cfg_format_duration(v, out, n);
    else if (f->type == LP_FT_SIZE)
        lp_cfg_format_size(v, out, n);
    else
        snprintf(out, n, "%" PRId64, v);
}

/* ---- applying values ---- */

static void apply_table(struct ctx *c, const struct lp_field *table, void *base,
                        const struct lp_node *map, const char *prefix);

const char *lp_cfg_kind_hint(const struct lp_field *f)
{
    switch (f->type) {
    case LP_FT_DURATION: return "a duration (e.g. 250ms, 5s, 1h, 30d)";
    case LP_FT_SIZE: return "a size (e.g. 512, 64KiB, 5MiB, 1GB)";
    case LP_FT_INT: return "an integer";
    case LP_FT_RATIO: return "a ratio (e.g. 0.1 or 10%)";
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
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcasecmp(text, "off"))
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
            lp_node_error(c->errs, at, "%s: expected %s, got '%s'", path, lp_cfg_kind_hint(f),
                          text);
            return LP_ECONFIG;
        }
        break;
    case LP_FT_SIZE:
        if (lp_parse_size(text, &v)) {
            lp_node_error(c->errs, at, "%s: expected %s, got '%s'", path, lp_cfg_kind_hint(f),
                          text);
            return LP_ECONFIG;
        }
        break;
    case LP_FT_RATIO:
        if (parse_ratio(text, &v)) {
            lp_node_error(c->errs, at, "%s: expected %s, got '%s'", path, lp_cfg_kind_hint(f),
                          text);
            return LP_ECONFIG;
        }
        break;
    default:
        lp_node_error(c->errs, at, "%s: expected %s, got a scalar", path, lp_cfg_kind_hint(f));
        return LP_ECONFIG;
    }
    if (v < f->min || v > f->max) {
        char lo[32], hi[32];
        lp_cfg_format_bound(f, f->min, lo, sizeof(lo));
        lp_cfg_format_bound(f, f->max, hi, sizeof(hi));
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
                lp_node_error(c->errs, v->items[i], "%s.%s: expected a string value, got %s", path,
                              v->keys[i]->text, lp_node_type_name(v->items[i]->type));
                continue;
            }
            lp_kvlist_set(kv, v->keys[i]->text, v->items[i]->text);
        }
        return;
    }
    default:
        if (v->type != LP_NODE_SCALAR) {
            lp_node_error(c->errs, v, "%s: expected %s, got %s", path, lp_cfg_kind_hint(f),
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
        case LP_FT_SECTION: release_table(f->sub, (char *)base + f->offset); break;
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
        case LP_FT_MAP: lp_kvlist_release(FIELD(base, f, struct lp_kvlist)); break;
        case LP_FT_STRING:
        case LP_FT_ENUM: free(*FIELD(base, f, char *)); break;
        default: break;
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
    lp_cfg_validate(&c, cfg, root);
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

struct lp_config *lp_config_load_texts(const char *const *names, const char *const *texts, size_t n,
                                       lp_config_getenv_fn env, struct lp_buf *errs)
{
    return load(names, texts, n, env, errs);
}
