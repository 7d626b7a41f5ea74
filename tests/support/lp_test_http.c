/* Blocking libcurl request for integration tests. */
#include "lp_test_http.h"

#include <curl/curl.h>
#include <stdio.h>

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    lp_buf_append(ud, p, sz * n);
    return sz * n;
}

long lp_test_http(const char *method, const char *url, const char *ctype, const char *encoding,
                  const void *body, size_t len, struct lp_buf *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char line[128];
    snprintf(line, sizeof(line), "Content-Type: %s", ctype);
    hdr = curl_slist_append(hdr, line);
    if (encoding) {
        snprintf(line, sizeof(line), "Content-Encoding: %s", encoding);
        hdr = curl_slist_append(hdr, line);
    }
    lp_buf_reset(out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    long status = 0;
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "%s %s: %s\n", method, url, curl_easy_strerror(rc));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}
