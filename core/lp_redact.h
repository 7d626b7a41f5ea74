/* Secrets out of what logpipe prints: URL userinfo. Pure, any thread. */
#ifndef LP_REDACT_H
#define LP_REDACT_H

#include <stddef.h>

/* Copies url into out[0..outlen) with any userinfo ("user:pass@" after
 * "scheme://", before the first '/', '?' or '#') replaced by "<redacted>@".
 * Text that is not a URL is copied as it is (cut at outlen). Returns 1 when
 * something was redacted. */
int lp_redact_url(const char *url, char *out, size_t outlen);

#endif
