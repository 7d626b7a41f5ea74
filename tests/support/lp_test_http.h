/* Test support: one blocking HTTP request over libcurl (integration tests
 * talking to OpenSearch). Bounded: 5 s to connect, 30 s in all. */
#ifndef LP_TEST_HTTP_H
#define LP_TEST_HTTP_H

#include "lp_buf.h"

#include <stddef.h>

/* Sends method url with body[0..len) (NULL: none) as Content-Type ctype
 * and, when encoding is set, Content-Encoding encoding. Returns the HTTP
 * status with the response body in out, or 0 when no response came (the
 * reason on stderr). */
long lp_test_http(const char *method, const char *url, const char *ctype, const char *encoding,
                  const void *body, size_t len, struct lp_buf *out);

#endif
