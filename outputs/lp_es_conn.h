/* One way to talk to an Elasticsearch/OpenSearch cluster over libcurl,
 * shared by the aggregator's elasticsearch output and retention's index
 * retention (they had two set-ups with different protocol, timeout and
 * empty-value rules).
 *
 * The rules, in one place:
 * - the base URL loses trailing '/'; paths are appended as given;
 * - only http and https, also on redirects (never file:, gopher:, ...);
 * - the whole request is bounded by request_timeout, the connection by the
 *   smaller of it and 10 s;
 * - an empty username, api_key or ca_file is unset (a ${VAR:-} left empty
 *   in a configuration shared by several daemons); username+password is
 *   HTTP basic, api_key the "Authorization: ApiKey" header;
 * - tls_verify false turns off peer and host verification (the
 *   configuration warns about it).
 * A connection is immutable after lp_es_conn_init: any thread may use it to
 * set up its own easy handles. */
#ifndef LP_ES_CONN_H
#define LP_ES_CONN_H

#include <stdint.h>

#include <curl/curl.h>

struct lp_es_conn_cfg {
    const char *url;
    const char *username;
    const char *password;
    const char *api_key;
    const char *ca_file;
    int tls_verify;
    int64_t request_timeout_ms;
};

struct lp_es_conn {
    char *base;        /* the URL without trailing '/' */
    char *userpwd;     /* "user:password", or NULL */
    char *auth_header; /* "Authorization: ApiKey ...", or NULL */
    char *ca_file;     /* NULL when unset */
    int tls_verify;
    long timeout_ms;
    long connect_timeout_ms;
};

#define LP_ES_CONNECT_TIMEOUT_MS 10000

void lp_es_conn_init(struct lp_es_conn *c, const struct lp_es_conn_cfg *cfg);
void lp_es_conn_release(struct lp_es_conn *c);
/* base + path (heap; the caller frees it). */
char *lp_es_conn_url(const struct lp_es_conn *c, const char *path);
/* Appends the authentication header, if any, to h; returns the list. */
struct curl_slist *lp_es_conn_headers(const struct lp_es_conn *c, struct curl_slist *h);
/* Sets on e what every request needs: protocols, timeouts, no signals,
 * credentials and TLS. The caller sets URL, method, body and headers. */
void lp_es_conn_setup(const struct lp_es_conn *c, CURL *e);

#endif
