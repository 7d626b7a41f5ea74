/* --check-config's dump of a loaded configuration (secrets redacted, other
 * output types' keys left out) and --config-reference's Markdown
 * (docs/config.md), both from the field tables. */
#include "lp_config_int.h"

#include "lp_alloc.h"
#include "lp_error.h"
#include "lp_redact.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int lp_config_key_is_secret(const char *key)
{
    /* anywhere in the name: librdkafka's ssl.key.password,
     * ssl.keystore.password, sasl.oauthbearer.client.secret, ... */
    static const char *const anywhere[] = {"password", "passwd",     "secret",
                                           "token",    "passphrase", "credential"};
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
    if (kl >= 3 && strcasecmp(key + kl - 3, "key") == 0 && (kl == 3 || strchr("._-", key[kl - 4])))
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
    case LP_FT_BOOL: lp_buf_appendf(out, " %s\n", *CFIELD(base, f, int) ? "true" : "false"); break;
    case LP_FT_INT: lp_buf_appendf(out, " %" PRId64 "\n", *CFIELD(base, f, int64_t)); break;
    case LP_FT_RATIO:
        lp_cfg_format_ratio(*CFIELD(base, f, int64_t), tmp, sizeof(tmp));
        lp_buf_appendf(out, " %s\n", tmp);
        break;
    case LP_FT_DURATION:
        lp_cfg_format_duration(*CFIELD(base, f, int64_t), tmp, sizeof(tmp));
        lp_buf_appendf(out, " %s\n", tmp);
        break;
    case LP_FT_SIZE:
        lp_cfg_format_size(*CFIELD(base, f, int64_t), tmp, sizeof(tmp));
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
            if (k == LP_OUTPUT_KINDS || !(f->flags & lp_cfg_output_kind_flag[k]))
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
        if (plain_http(o->url) && ((o->password && *o->password) || (o->api_key && *o->api_key) ||
                                   has_userinfo(o->url))) {
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

int lp_config_dump(const struct lp_config *cfg, const char *section, int redact, struct lp_buf *out)
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
    case LP_FT_RATIO: return "ratio";
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
            if (f->flags & lp_cfg_output_kind_flag[t]) {
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
            lp_cfg_format_bound(f, f->min, lo, sizeof(lo));
            lp_cfg_format_bound(f, f->max, hi, sizeof(hi));
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
    lp_buf_puts(out, "# Configuration reference\n\n"
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
