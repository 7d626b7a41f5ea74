/* Index retention (indices.h): _cat/indices and _data_stream over libcurl,
 * one DELETE per index. */
#include "indices.h"
#include "lp_error.h"

#include "lp_alloc.h"
#include "lp_es_conn.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_glob.h"
#include "lp_redact.h"
#include "lp_time.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct lp_buf *b = ud;
    return lp_buf_append(b, p, sz * n) ? 0 : sz * n;
}

/* One request; *status the HTTP status. 0 or -1 (transport error in err). */
static int request(const struct lp_config_index_policy *p, const char *method, const char *path,
                   long *status, struct lp_buf *body, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "curl_easy_init failed");
        return LP_EHTTP;
    }
    struct lp_es_conn conn;
    lp_es_conn_init(&conn,
                    &(struct lp_es_conn_cfg){p->url, p->username, p->password, p->api_key,
                                             p->ca_file, p->tls_verify, p->request_timeout_ms});
    char *url = lp_es_conn_url(&conn, path);
    struct curl_slist *h =
        lp_es_conn_headers(&conn, curl_slist_append(NULL, "Accept: application/json"));
    lp_es_conn_setup(&conn, e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(e);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    } else {
        char shown[4096];
        lp_redact_url(url, shown, sizeof(shown)); /* never the userinfo in a log */
        snprintf(err, errlen, "%s %s: %s", method, shown, curl_easy_strerror(rc));
    }
    curl_slist_free_all(h);
    free(url);
    lp_es_conn_release(&conn);
    curl_easy_cleanup(e);
    return rc == CURLE_OK ? 0 : LP_EHTTP;
}

/* The cluster's reason from an error body, or the body's start. */
static void error_reason(const struct lp_buf *b, long status, char *out, size_t outlen)
{
    json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    json_t *r = json_object_get(json_object_get(j, "error"), "reason");
    if (json_is_string(r))
        snprintf(out, outlen, "HTTP %ld: %s", status, json_string_value(r));
    else
        snprintf(out, outlen, "HTTP %ld: %.200s", status, b->len ? b->data : "");
    json_decref(j);
}

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int64_t lp_rt_index_name_end(const char *name)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t n = strlen(name);
    for (size_t i = 0; i + 10 <= n; i++) {
        const char *s = name + i;
        if (i > 0 && isdigit((unsigned char)s[-1]))
            continue;
        if (!digits(s, 4) || (s[4] != '.' && s[4] != '-') || s[7] != s[4] || !digits(s + 5, 2) ||
            !digits(s + 8, 2) || isdigit((unsigned char)s[10]))
            continue;
        int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
        if (y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
            continue;
        if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
            continue;
        int64_t start = lp_time_days_from_civil(y, m, d) * 86400 * LP_NS_PER_SEC;
        if (s[10] == s[4] && digits(s + 11, 2) && !isdigit((unsigned char)s[13])) {
            int hh = num(s + 11, 2);
            if (hh < 24)
                return start + (int64_t)(hh + 1) * 3600 * LP_NS_PER_SEC;
        }
        return start + 86400 * LP_NS_PER_SEC;
    }
    return 0;
}

static int pattern_match(const char *patterns, const char *name)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", patterns);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        while (*t == ' ')
            t++;
        if (lp_glob_match(t, name))
            return 1;
    }
    return 0;
}

static int by_end(const void *a, const void *b)
{
    const struct lp_rt_index *x = a, *y = b;
    if (x->end_ns != y->end_ns)
        return x->end_ns < y->end_ns ? -1 : 1;
    return strcmp(x->name, y->name);
}

struct cat_row {
    const char *name;
    int64_t created_ns;
    uint64_t bytes;
    int64_t docs;
};

/* A number of _cat's answer (a number or a numeric string), or dflt. */
static int64_t jnum(json_t *v, int64_t dflt)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return dflt;
}

int lp_rt_indices_list(const struct lp_config_index_policy *p, struct lp_rt_indices *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    /* the selected names and the backing indices of selected data streams */
    char pat[2048] = "", path[4096];
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", p->index_pattern);
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        while (*t == ' ')
            t++;
        size_t l = strlen(pat);
        snprintf(pat + l, sizeof(pat) - l, "%s%s,.ds-%s", l ? "," : "", t, t);
    }
    struct lp_buf b = LP_BUF_INIT;
    long status = 0;
    json_t *cat = NULL, *ds = NULL;
    int rc = LP_EHTTP;
    snprintf(path, sizeof(path),
             "/_cat/indices/%s?format=json&bytes=b&h=index,creation.date,store.size,docs.count"
             "&expand_wildcards=all&ignore_unavailable=true&allow_no_indices=true",
             pat);
    if (request(p, "GET", path, &status, &b, err, errlen))
        goto out;
    if (status != 200) {
        error_reason(&b, status, err, errlen);
        goto out;
    }
    cat = json_loadb(b.data, b.len, 0, NULL);
    if (!json_is_array(cat)) {
        snprintf(err, errlen, "_cat/indices: not a JSON array");
        goto out;
    }
    lp_buf_reset(&b);
    b.len = 0;
    snprintf(buf, sizeof(buf), "%s", p->index_pattern);
    char dpat[1024] = "";
    for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
        while (*t == ' ')
            t++;
        size_t l = strlen(dpat);
        snprintf(dpat + l, sizeof(dpat) - l, "%s%s", l ? "," : "", t);
    }
    snprintf(path, sizeof(path), "/_data_stream/%s", dpat);
    if (request(p, "GET", path, &status, &b, err, errlen))
        goto out;
    if (status == 200) {
        ds = json_loadb(b.data, b.len, 0, NULL);
        if (!json_is_array(json_object_get(ds, "data_streams"))) {
            snprintf(err, errlen, "_data_stream: unexpected answer");
            goto out;
        }
    } else if (status != 404) {
        error_reason(&b, status, err, errlen);
        goto out;
    }
    size_t nrows = json_array_size(cat);
    struct cat_row *rows = lp_xcalloc(nrows ? nrows : 1, sizeof(*rows));
    for (size_t i = 0; i < nrows; i++) {
        json_t *r = json_array_get(cat, i);
        rows[i].name = json_string_value(json_object_get(r, "index"));
        int64_t c = jnum(json_object_get(r, "creation.date"), 0);
        rows[i].created_ns = c > 0 ? c * LP_NS_PER_MS : 0;
        int64_t sz = jnum(json_object_get(r, "store.size"), 0);
        rows[i].bytes = sz > 0 ? (uint64_t)sz : 0;
        rows[i].docs = jnum(json_object_get(r, "docs.count"), -1); /* -1: unknown */
    }
    out->ix = lp_xcalloc(nrows ? nrows : 1, sizeof(*out->ix));
    /* data streams first: their backing indices in generation order */
    json_t *streams = json_object_get(ds, "data_streams");
    unsigned char *taken = lp_xcalloc(nrows ? nrows : 1, 1);
    for (size_t s = 0; s < json_array_size(streams); s++) {
        json_t *st = json_array_get(streams, s);
        const char *sname = json_string_value(json_object_get(st, "name"));
        json_t *ixs = json_object_get(st, "indices");
        if (!sname || !pattern_match(p->index_pattern, sname))
            continue;
        size_t n = json_array_size(ixs);
        for (size_t k = 0; k < n; k++) {
            const char *iname =
                json_string_value(json_object_get(json_array_get(ixs, k), "index_name"));
            if (!iname)
                continue;
            size_t r = 0;
            while (r < nrows && !(rows[r].name && strcmp(rows[r].name, iname) == 0))
                r++;
            if (r < nrows)
                taken[r] = 1;
            struct lp_rt_index *x = &out->ix[out->n];
            if (r == nrows) {
                /* listed by the stream but not by _cat: unknown dates, kept */
                continue;
            }
            out->n++;
            x->name = lp_xstrdup(iname);
            x->stream = lp_xstrdup(sname);
            x->bytes = rows[r].bytes;
            x->docs = rows[r].docs;
            x->date_source = "rollover";
            if (k + 1 == n) {
                x->skip = "write index of its data stream";
                continue;
            }
            const char *next =
                json_string_value(json_object_get(json_array_get(ixs, k + 1), "index_name"));
            for (size_t q = 0; next && q < nrows; q++)
                if (rows[q].name && strcmp(rows[q].name, next) == 0)
                    x->end_ns = rows[q].created_ns;
            if (!x->end_ns)
                x->skip = "the next backing index has no creation date";
        }
    }
    for (size_t r = 0; r < nrows; r++) {
        if (taken[r] || !rows[r].name || rows[r].name[0] == '.' ||
            !pattern_match(p->index_pattern, rows[r].name))
            continue;
        struct lp_rt_index *x = &out->ix[out->n++];
        x->name = lp_xstrdup(rows[r].name);
        x->bytes = rows[r].bytes;
        x->docs = rows[r].docs;
        int64_t by_name = strcmp(p->date_from, "creation") == 0 ? 0 : lp_rt_index_name_end(x->name);
        if (by_name) {
            x->end_ns = by_name;
            x->date_source = "name";
        } else if (strcmp(p->date_from, "name") == 0) {
            x->date_source = "name";
            x->skip = "no date in its name";
        } else {
            x->end_ns = rows[r].created_ns;
            x->date_source = "creation";
            if (!x->end_ns)
                x->skip = "no creation date";
        }
    }
    free(taken);
    free(rows);
    qsort(out->ix, out->n, sizeof(*out->ix), by_end);
    rc = 0;
out:
    json_decref(cat);
    json_decref(ds);
    lp_buf_release(&b);
    if (rc)
        lp_rt_indices_release(out);
    return rc;
}

void lp_rt_indices_release(struct lp_rt_indices *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->ix[i].name);
        free(l->ix[i].stream);
    }
    free(l->ix);
    memset(l, 0, sizeof(*l));
}

int lp_rt_index_delete(const struct lp_config_index_policy *p, const char *index, int *gone,
                       char *err, size_t errlen)
{
    char path[1024];
    struct lp_buf b = LP_BUF_INIT;
    long status = 0;
    *gone = 0;
    /* names come from the cluster; refuse anything that is not a plain name */
    if (!*index || strpbrk(index, "*,/?# ") || strcmp(index, "_all") == 0) {
        snprintf(err, errlen, "refusing to delete '%s'", index);
        return LP_EINVAL;
    }
    snprintf(path, sizeof(path), "/%s", index);
    int rc = request(p, "DELETE", path, &status, &b, err, errlen);
    if (!rc && status == 404) {
        *gone = 1;
    } else if (!rc && status != 200) {
        error_reason(&b, status, err, errlen);
        rc = LP_EHTTP;
    }
    lp_buf_release(&b);
    return rc;
}
