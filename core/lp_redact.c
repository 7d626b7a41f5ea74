/* URL userinfo redaction (lp_redact.h). */
#include "lp_redact.h"

#include <stdio.h>
#include <string.h>

int lp_redact_url(const char *url, char *out, size_t outlen)
{
    if (outlen == 0)
        return 0;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        const char *host = scheme + 3;
        size_t auth_len = strcspn(host, "/?#");
        const char *at = NULL;
        for (const char *p = host; p < host + auth_len; p++)
            if (*p == '@')
                at = p; /* the last '@': a password may hold one */
        if (at) {
            snprintf(out, outlen, "%.*s<redacted>%s", (int)(host - url), url, at);
            return 1;
        }
    }
    snprintf(out, outlen, "%s", url);
    return 0;
}
