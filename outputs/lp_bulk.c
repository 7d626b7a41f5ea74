/* _bulk bodies, response classification and index names. */
#include "lp_bulk.h"

#include "lp_error.h"
#include "lp_json.h"
#include "lp_time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void lp_bulk_init(struct lp_bulk *b, size_t max_body_bytes)
{
    lp_buf_init(&b->body, max_body_bytes);
    b->n = 0;
}

void lp_bulk_release(struct lp_bulk *b)
{
    lp_buf_release(&b->body);
    b->n = 0;
}

void lp_bulk_reset(struct lp_bulk *b)
{
    lp_buf_reset(&b->body);
    b->n = 0;
}

int lp_bulk_add(struct lp_bulk *b, const char *index, const char *id, const char *doc, size_t len)
{
    if (strlen(id) > 512 || memchr(doc, '\n', len))
        return LP_EINVAL;
    size_t start = b->body.len;
    int rc;
    if ((rc = lp_buf_puts(&b->body, "{\"create\":{\"_index\":")) ||
        (rc = lp_buf_append_json_string(&b->body, index, strlen(index))) ||
        (rc = lp_buf_puts(&b->body, ",\"_id\":")) ||
        (rc = lp_buf_append_json_string(&b->body, id, strlen(id))) ||
        (rc = lp_buf_puts(&b->body, "}}\n")) || (rc = lp_buf_append(&b->body, doc, len)) ||
        (rc = lp_buf_putc(&b->body, '\n'))) {
        lp_buf_truncate(&b->body, start);
        return rc;
    }
    b->n++;
    return 0;
}

static void item_reason(json_t *err, char *out, size_t outlen)
{
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *reason = json_string_value(json_object_get(err, "reason"));
    if (!type && json_is_string(err))
        type = json_string_value(err);
    snprintf(out, outlen, "%s%s%s", type ? type : "error", reason ? ": " : "",
             reason ? reason : "");
}

static enum lp_item_verdict item_verdict(int status, const char *type)
{
    if (status == 200 || status == 201 || status == 409)
        return LP_ITEM_OK;
    if (status == 429 || status == 408 || status >= 500)
        return LP_ITEM_RETRY;
    /* index blocks (read-only after a full disk) clear when space is freed */
    if (status == 403 && type && !strcmp(type, "cluster_block_exception"))
        return LP_ITEM_RETRY;
    return LP_ITEM_DROP;
}

/* The fast path of a 200: the top-level "errors" (before "items", as
 * Elasticsearch and OpenSearch write it) is false and there are exactly n
 * "status" members, one per item. Then every item was created and nothing
 * needs parsing: the answer the output asks for with LP_BULK_FILTER_PATH
 * is [{"create":{"status":201}},...]. Anything else takes the full parse. */
static int all_created(const char *body, size_t len, size_t n)
{
    if (!body || !len)
        return 0;
    const char *end = body + len;
    const char *items = memmem(body, len, "\"items\"", 7);
    const char *limit = items ? items : end;
    const char *e = memmem(body, (size_t)(limit - body), "\"errors\"", 8);
    if (!e)
        return 0;
    const char *p = e + 8;
    while (p < limit && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p >= limit || *p++ != ':')
        return 0;
    while (p < limit && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (limit - p < 5 || memcmp(p, "false", 5) != 0 || !items)
        return 0;
    /* a "status" key cannot occur inside a JSON string (its quotes would be
     * escaped), so this counts the items' statuses */
    size_t count = 0;
    for (const char *q = items; q < end;) {
        const char *f = memmem(q, (size_t)(end - q), "\"status\"", 8);
        if (!f)
            break;
        if (++count > n)
            return 0;
        q = f + 8;
    }
    return count == n;
}

enum lp_bulk_verdict lp_bulk_classify(long http_status, const char *body, size_t len, size_t n,
                                      struct lp_bulk_item *items, char *why, size_t whylen)
{
    why[0] = '\0';
    if (http_status == 413) {
        snprintf(why, whylen, "413 request entity too large");
        return LP_BULK_SPLIT;
    }
    if (http_status == 401 || http_status == 403) {
        snprintf(why, whylen, "%ld %s: check the credentials and the role's index privileges",
                 http_status, http_status == 401 ? "unauthorized" : "forbidden");
        return LP_BULK_HALT;
    }
    if (http_status == 429 || http_status == 408 || http_status >= 500 || http_status <= 0) {
        snprintf(why, whylen, "HTTP %ld", http_status);
        return LP_BULK_RETRY;
    }
    if (http_status != 200) {
        snprintf(why, whylen, "HTTP %ld: %.150s", http_status, body ? body : "");
        return LP_BULK_FAIL;
    }
    if (all_created(body, len, n)) {
        for (size_t i = 0; i < n; i++) {
            items[i].verdict = LP_ITEM_OK;
            items[i].status = 201;
            items[i].reason[0] = '\0';
        }
        return LP_BULK_ITEMS;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    json_t *arr = root ? json_object_get(root, "items") : NULL;
    if (!json_is_array(arr) || json_array_size(arr) != n) {
        snprintf(why, whylen, "garbled bulk response (%zu items for %zu actions)",
                 json_is_array(arr) ? json_array_size(arr) : (size_t)0, n);
        json_decref(root);
        return LP_BULK_RETRY;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(arr, i);
        /* {"create":{...}}: the single member, whatever the op */
        json_t *res = json_is_object(it) && json_object_size(it) == 1
                          ? json_object_iter_value(json_object_iter(it))
                          : NULL;
        json_t *st = json_object_get(res, "status");
        struct lp_bulk_item *x = &items[i];
        x->reason[0] = '\0';
        if (!json_is_integer(st)) {
            snprintf(why, whylen, "garbled bulk response (item %zu without a status)", i);
            json_decref(root);
            return LP_BULK_RETRY;
        }
        x->status = (int)json_integer_value(st);
        json_t *err = json_object_get(res, "error");
        x->verdict = item_verdict(x->status, json_string_value(json_object_get(err, "type")));
        if (x->verdict != LP_ITEM_OK || x->status == 409)
            item_reason(err, x->reason, sizeof(x->reason));
    }
    json_decref(root);
    return LP_BULK_ITEMS;
}

int lp_index_name(const char *tmpl, json_t *ev, int64_t ts_ns, char *out, size_t outlen)
{
    time_t t = (time_t)(ts_ns / LP_NS_PER_SEC);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t w = 0;
    char tmp[256];
    for (const char *p = tmpl; *p; p++) {
        const char *piece = NULL;
        size_t plen = 0;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close && close - p - 1 < 200) {
                char path[200];
                memcpy(path, p + 1, (size_t)(close - p - 1));
                path[close - p - 1] = '\0';
                json_t *v = lp_json_get_path(ev, path);
                if (json_is_string(v) && json_string_length(v)) {
                    piece = json_string_value(v);
                    plen = json_string_length(v);
                } else if (json_is_integer(v)) {
                    plen = (size_t)snprintf(tmp, sizeof(tmp), "%lld",
                                            (long long)json_integer_value(v));
                    piece = tmp;
                } else {
                    piece = "unknown";
                    plen = 7;
                }
                p = close;
            }
        } else if (*p == '%' && p[1] && strchr("YmdH", p[1])) {
            int v = p[1] == 'Y'   ? tm.tm_year + 1900
                    : p[1] == 'm' ? tm.tm_mon + 1
                    : p[1] == 'd' ? tm.tm_mday
                                  : tm.tm_hour;
            plen = (size_t)snprintf(tmp, sizeof(tmp), p[1] == 'Y' ? "%04d" : "%02d", v);
            piece = tmp;
            p++;
        }
        if (!piece) {
            piece = p;
            plen = 1;
        }
        for (size_t i = 0; i < plen; i++) {
            if (w + 1 >= outlen || w >= 255)
                return LP_ETOOBIG;
            unsigned char c = (unsigned char)piece[i];
            c = (unsigned char)tolower(c);
            if (strchr("\\/*?\"<>| ,#:", c) || c < 0x20)
                c = '_';
            out[w++] = (char)c;
        }
    }
    out[w] = '\0';
    /* names may not start with -, _ or + */
    while (out[0] == '-' || out[0] == '_' || out[0] == '+')
        memmove(out, out + 1, strlen(out));
    if (!out[0] || !strcmp(out, ".") || !strcmp(out, ".."))
        snprintf(out, outlen, "logpipe-unnamed");
    return 0;
}
