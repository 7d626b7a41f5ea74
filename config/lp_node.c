/* YAML (libyaml events) → lp_node tree with positions; ${...} substitution;
 * deep merge of later files over earlier ones. */
#include "lp_node.h"
#include "lp_alloc.h"
#include "lp_error.h"

#include "lp_buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_DEPTH 64
#define MAX_SECRET_FILE (64 * 1024)

void lp_node_error(struct lp_buf *errs, const struct lp_node *n, const char *fmt, ...)
{
    va_list ap;
    lp_buf_appendf(errs, "%s:%d:%d: ", n->file, n->line, n->col);
    va_start(ap, fmt);
    lp_buf_vappendf(errs, fmt, ap);
    va_end(ap);
    lp_buf_putc(errs, '\n');
}

const char *lp_node_type_name(enum lp_node_type t)
{
    switch (t) {
    case LP_NODE_SCALAR: return "a scalar";
    case LP_NODE_MAP: return "a mapping";
    case LP_NODE_SEQ: return "a list";
    default: return "nothing";
    }
}

static struct lp_node *node_new(enum lp_node_type t, const char *file, yaml_mark_t m)
{
    struct lp_node *n = lp_xcalloc(1, sizeof(*n));
    n->type = t;
    n->file = file;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

void lp_node_free(struct lp_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            lp_node_free(n->keys[i]);
        lp_node_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->text);
    free(n);
}

static void node_push(struct lp_node *parent, struct lp_node *key, struct lp_node *val)
{
    if (parent->n == parent->cap) {
        parent->cap = lp_alloc_nr(parent->cap, parent->n + 1, 8);
        parent->items = lp_xreallocarray(parent->items, parent->cap, sizeof(*parent->items));
        if (parent->type == LP_NODE_MAP)
            parent->keys = lp_xreallocarray(parent->keys, parent->cap, sizeof(*parent->keys));
    }
    if (parent->type == LP_NODE_MAP)
        parent->keys[parent->n] = key;
    parent->items[parent->n++] = val;
}

struct lp_node *lp_node_get(const struct lp_node *map, const char *key)
{
    if (!map || map->type != LP_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0)
            return map->items[i];
    return NULL;
}

/* ---- substitution ---- */

struct subst {
    const char *path; /* the config file, for relative ${file:...} */
    lp_getenv_fn env;
    struct lp_buf *errs;
    int unused; /* in a top-level section this daemon does not read: a secret or a
                 * variable it cannot resolve is empty, not an error */
};

static const char *const *used_sections; /* NULL: every section is used */

void lp_node_set_used_sections(const char *const *sections)
{
    used_sections = sections;
}

int lp_node_section_used(const char *key)
{
    if (!used_sections)
        return 1;
    for (size_t i = 0; used_sections[i]; i++)
        if (strcmp(used_sections[i], key) == 0)
            return 1;
    return 0;
}

static int read_secret_file(struct subst *s, const struct lp_node *n, const char *name,
                            struct lp_buf *out)
{
    char full[4096];
    if (name[0] != '/' && strchr(s->path, '/')) {
        const char *slash = strrchr(s->path, '/');
        snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - s->path), s->path, name);
    } else {
        snprintf(full, sizeof(full), "%s", name);
    }
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && s->unused)
        return 0; /* another daemon's secret: not mounted here */
    if (fd < 0) {
        lp_node_error(s->errs, n, "cannot read ${file:%s}: %s", name, lp_strerror(-errno));
        return LP_ECONFIG;
    }
    char buf[MAX_SECRET_FILE + 1];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            lp_node_error(s->errs, n, "cannot read ${file:%s}: %s", name, lp_strerror(-errno));
            close(fd);
            return LP_ECONFIG;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > MAX_SECRET_FILE) {
            lp_node_error(s->errs, n, "${file:%s} is larger than %d bytes", name, MAX_SECRET_FILE);
            close(fd);
            return LP_ECONFIG;
        }
    }
    close(fd);
    /* A secret file usually ends with one newline that is not part of it. */
    if (got && buf[got - 1] == '\n')
        got--;
    if (got && buf[got - 1] == '\r')
        got--;
    lp_buf_append(out, buf, got);
    return 0;
}

static int valid_var_name(const char *p, size_t n)
{
    if (n == 0 || !((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z') || p[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') || p[i] == '_' ||
              (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

/* Replaces node->text with its substituted form. -1 on error (reported). */
static int substitute(struct subst *s, struct lp_node *n)
{
    if (!strchr(n->text, '$'))
        return 0;
    struct lp_buf out = LP_BUF_INIT;
    const char *p = n->text, *end = n->text + n->len;
    int rc = 0;
    while (p < end) {
        if (p[0] == '$' && p + 2 < end && p[1] == '$' && p[2] == '{') {
            lp_buf_append(&out, "${", 2); /* $${ escapes a literal ${ */
            p += 3;
            continue;
        }
        if (!(p[0] == '$' && p + 1 < end && p[1] == '{')) {
            lp_buf_putc(&out, *p++);
            continue;
        }
        /* Point errors at the "${" itself when the scalar is on one line. */
        struct lp_node at = *n;
        if (!memchr(n->text, '\n', (size_t)(p - n->text)))
            at.col = n->col + (n->quoted ? 1 : 0) + (int)(p - n->text);
        const char *close = memchr(p, '}', (size_t)(end - p));
        if (!close) {
            lp_node_error(s->errs, &at, "unterminated ${ (missing '}')");
            rc = LP_ECONFIG;
            break;
        }
        const char *body = p + 2;
        size_t blen = (size_t)(close - body);
        if (blen > 5 && memcmp(body, "file:", 5) == 0) {
            char name[1024];
            snprintf(name, sizeof(name), "%.*s", (int)(blen - 5), body + 5);
            if (read_secret_file(s, &at, name, &out)) {
                rc = LP_ECONFIG;
                break;
            }
        } else {
            const char *dflt = NULL;
            size_t vlen = blen;
            const char *sep = NULL;
            for (const char *q = body; q + 1 < close; q++)
                if (q[0] == ':' && q[1] == '-') {
                    sep = q;
                    break;
                }
            if (sep) {
                vlen = (size_t)(sep - body);
                dflt = sep + 2;
            }
            if (!valid_var_name(body, vlen)) {
                lp_node_error(s->errs, &at,
                              "invalid substitution '${%.*s}': expected ${VAR}, "
                              "${VAR:-default} or ${file:PATH}",
                              (int)blen, body);
                rc = LP_ECONFIG;
                break;
            }
            char var[256];
            snprintf(var, sizeof(var), "%.*s", (int)vlen, body);
            const char *val = s->env(var);
            if (val && *val) {
                lp_buf_puts(&out, val);
            } else if (dflt) {
                lp_buf_append(&out, dflt, (size_t)(close - dflt));
            } else if (val || s->unused) {
                /* set but empty, no default: keep it empty; or another
                 * daemon's variable, not set here */
            } else {
                lp_node_error(s->errs, &at,
                              "environment variable %s is not set (write ${%s:-default} to give "
                              "a default)",
                              var, var);
                rc = LP_ECONFIG;
                break;
            }
        }
        p = close + 1;
    }
    if (rc == 0) {
        free(n->text);
        n->text = lp_buf_detach(&out, &n->len);
    }
    lp_buf_release(&out);
    return rc;
}

/* ---- parsing ---- */

struct parser {
    yaml_parser_t yp;
    const char *path;
    struct lp_buf *errs;
    struct subst subst;
    int subst_failed; /* a substitution failed (reported): the tree is still whole */
};

static void yaml_failure(struct parser *ps)
{
    yaml_mark_t m = ps->yp.problem_mark;
    if (ps->yp.error == YAML_READER_ERROR)
        m = (yaml_mark_t){ps->yp.problem_offset, 0, 0};
    lp_buf_appendf(ps->errs, "%s:%zu:%zu: invalid YAML: %s", ps->path, m.line + 1, m.column + 1,
                   ps->yp.problem ? ps->yp.problem : "parse error");
    if (ps->yp.context)
        lp_buf_appendf(ps->errs, " (%s at line %zu)", ps->yp.context, ps->yp.context_mark.line + 1);
    lp_buf_putc(ps->errs, '\n');
}

/* Parses the node that starts with event ev (consumed by the caller). */
static struct lp_node *parse_node(struct parser *ps, yaml_event_t *ev, int depth);

static int next(struct parser *ps, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ps->yp, ev)) {
        yaml_failure(ps);
        return LP_ECONFIG;
    }
    return 0;
}

static struct lp_node *parse_node(struct parser *ps, yaml_event_t *ev, int depth)
{
    struct lp_node *n = NULL;
    if (depth > MAX_DEPTH) {
        lp_buf_appendf(ps->errs, "%s:%zu:%zu: nesting deeper than %d levels\n", ps->path,
                       ev->start_mark.line + 1, ev->start_mark.column + 1, MAX_DEPTH);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (plain && (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
                      strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0))
            return node_new(LP_NODE_NULL, ps->path, ev->start_mark);
        n = node_new(LP_NODE_SCALAR, ps->path, ev->start_mark);
        n->text = lp_xmalloc(len + 1);
        memcpy(n->text, v, len);
        n->text[len] = '\0';
        n->len = len;
        n->quoted = !plain;
        if (substitute(&ps->subst, n)) {
            /* reported; the value is empty and the parse goes on, so that
             * the file's other mistakes are reported in the same run */
            free(n->text);
            n->text = lp_xstrdup("");
            n->len = 0;
            ps->subst_failed = 1;
        }
        return n;
    }
    case YAML_ALIAS_EVENT:
        lp_buf_appendf(ps->errs, "%s:%zu:%zu: YAML aliases (*%s) are not supported\n", ps->path,
                       ev->start_mark.line + 1, ev->start_mark.column + 1,
                       (const char *)ev->data.alias.anchor);
        return NULL;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        n = node_new(is_map ? LP_NODE_MAP : LP_NODE_SEQ, ps->path, ev->start_mark);
        for (;;) {
            yaml_event_t ce;
            if (next(ps, &ce))
                goto fail;
            if (ce.type == YAML_SEQUENCE_END_EVENT || ce.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&ce);
                return n;
            }
            struct lp_node *key = NULL;
            if (is_map) {
                if (ce.type != YAML_SCALAR_EVENT) {
                    lp_buf_appendf(ps->errs, "%s:%zu:%zu: mapping keys must be plain strings\n",
                                   ps->path, ce.start_mark.line + 1, ce.start_mark.column + 1);
                    yaml_event_delete(&ce);
                    goto fail;
                }
                key = node_new(LP_NODE_SCALAR, ps->path, ce.start_mark);
                key->text = lp_xstrdup((const char *)ce.data.scalar.value);
                key->len = strlen(key->text);
                yaml_event_delete(&ce);
                struct lp_node *dup = lp_node_get(n, key->text);
                if (dup) {
                    lp_node_error(ps->errs, key, "duplicate key '%s' (first at line %d)", key->text,
                                  dup->line);
                    lp_node_free(key);
                    goto fail;
                }
                if (next(ps, &ce)) {
                    lp_node_free(key);
                    goto fail;
                }
            }
            if (depth == 0 && key) /* a top-level section: does this daemon read it? */
                ps->subst.unused = !lp_node_section_used(key->text);
            struct lp_node *child = parse_node(ps, &ce, depth + 1);
            if (depth == 0)
                ps->subst.unused = 0;
            yaml_event_delete(&ce);
            if (!child) {
                lp_node_free(key);
                goto fail;
            }
            node_push(n, key, child);
        }
    }
    default:
        lp_buf_appendf(ps->errs, "%s:%zu:%zu: unexpected YAML event\n", ps->path,
                       ev->start_mark.line + 1, ev->start_mark.column + 1);
        return NULL;
    }
fail:
    lp_node_free(n);
    return NULL;
}

static char *slurp(const char *path, size_t *len, struct lp_buf *errs)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        lp_buf_appendf(errs, "%s:1:1: cannot open config file: %s\n", path, lp_strerror(-errno));
        return NULL;
    }
    struct lp_buf b;
    lp_buf_init(&b, 16 * 1024 * 1024);
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (lp_buf_append(&b, chunk, r)) {
            lp_buf_appendf(errs, "%s:1:1: config file larger than 16 MiB\n", path);
            fclose(f);
            lp_buf_release(&b);
            return NULL;
        }
    }
    if (ferror(f)) {
        lp_buf_appendf(errs, "%s:1:1: cannot read config file: %s\n", path, lp_strerror(-errno));
        fclose(f);
        lp_buf_release(&b);
        return NULL;
    }
    fclose(f);
    return lp_buf_detach(&b, len);
}

static const char *default_getenv(const char *name)
{
    return getenv(name);
}

struct lp_node *lp_node_parse_file(const char *path, const char *text, size_t textlen,
                                   lp_getenv_fn env, struct lp_buf *errs)
{
    char *owned = NULL;
    if (!text) {
        owned = slurp(path, &textlen, errs);
        if (!owned)
            return NULL;
        text = owned;
    }
    struct parser ps = {.path = path, .errs = errs};
    ps.subst = (struct subst){path, env ? env : default_getenv, errs, 0};
    yaml_parser_initialize(&ps.yp);
    yaml_parser_set_input_string(&ps.yp, (const unsigned char *)text, textlen);
    struct lp_node *root = NULL;
    yaml_event_t ev;
    int docs = 0;
    for (;;) {
        if (next(&ps, &ev))
            goto fail;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            lp_buf_appendf(errs, "%s:%zu:%zu: only one YAML document per file\n", path,
                           ev.start_mark.line + 1, ev.start_mark.column + 1);
            yaml_event_delete(&ev);
            goto fail;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            struct lp_node *n = parse_node(&ps, &ev, 0);
            yaml_event_delete(&ev);
            if (!n)
                goto fail;
            if (n->type == LP_NODE_NULL) {
                lp_node_free(n);
                continue;
            }
            if (n->type != LP_NODE_MAP) {
                lp_node_error(errs, n, "the top level must be a mapping of sections, not %s",
                              lp_node_type_name(n->type));
                lp_node_free(n);
                goto fail;
            }
            root = n;
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ps.yp);
    free(owned);
    if (!root)
        root = node_new(LP_NODE_MAP, path, (yaml_mark_t){0, 0, 0});
    return root;
fail:
    yaml_parser_delete(&ps.yp);
    free(owned);
    lp_node_free(root);
    return NULL;
}

void lp_node_merge(struct lp_node *dst, struct lp_node *src)
{
    for (size_t i = 0; i < src->n; i++) {
        struct lp_node *key = src->keys[i], *val = src->items[i];
        size_t j;
        for (j = 0; j < dst->n; j++)
            if (strcmp(dst->keys[j]->text, key->text) == 0)
                break;
        if (j < dst->n && dst->items[j]->type == LP_NODE_MAP && val->type == LP_NODE_MAP) {
            lp_node_merge(dst->items[j], val); /* frees val */
            lp_node_free(key);
        } else if (j < dst->n) {
            lp_node_free(dst->items[j]);
            lp_node_free(dst->keys[j]);
            dst->items[j] = val;
            dst->keys[j] = key; /* later file's position for later errors */
        } else {
            node_push(dst, key, val);
        }
    }
    free(src->keys);
    free(src->items);
    free(src->text);
    free(src);
}
