/* Elasticsearch/OpenSearch connection set-up (lp_es_conn.h). */
#include "lp_es_conn.h"

#include "lp_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *set_or_null(const char *s)
{
    return s && *s ? s : NULL;
}

static char *concat(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = lp_xmalloc(n);
    snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

void lp_es_conn_init(struct lp_es_conn *c, const struct lp_es_conn_cfg *cfg)
{
    memset(c, 0, sizeof(*c));
    const char *url = cfg->url ? cfg->url : "";
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    c->base = lp_xstrndup(url, ul);
    if (set_or_null(cfg->username))
        c->userpwd = concat(cfg->username, ":", cfg->password ? cfg->password : "");
    if (set_or_null(cfg->api_key))
        c->auth_header = concat("Authorization: ApiKey ", cfg->api_key, "");
    c->ca_file = lp_xstrdup(set_or_null(cfg->ca_file));
    c->tls_verify = cfg->tls_verify;
    c->timeout_ms = cfg->request_timeout_ms > 0 ? (long)cfg->request_timeout_ms : 0;
    c->connect_timeout_ms = LP_ES_CONNECT_TIMEOUT_MS;
    if (c->timeout_ms > 0 && c->timeout_ms < c->connect_timeout_ms)
        c->connect_timeout_ms = c->timeout_ms;
}

void lp_es_conn_release(struct lp_es_conn *c)
{
    free(c->base);
    free(c->userpwd);
    free(c->auth_header);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}

char *lp_es_conn_url(const struct lp_es_conn *c, const char *path)
{
    return concat(c->base, path, "");
}

struct curl_slist *lp_es_conn_headers(const struct lp_es_conn *c, struct curl_slist *h)
{
    return c->auth_header ? curl_slist_append(h, c->auth_header) : h;
}

void lp_es_conn_setup(const struct lp_es_conn *c, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    if (c->userpwd) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERPWD, c->userpwd);
    }
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (!c->tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}
