/* lp_strerror: one table naming every LP_E* code; -errno goes to strerror. */
#include "lp_error.h"

#include <string.h>

static const char *const messages[] = {
    [-LP_ETOOBIG - LP_EBASE] = "size limit exceeded",
    [-LP_ECORRUPT - LP_EBASE] = "corrupt or truncated data",
    [-LP_EINVAL - LP_EBASE] = "invalid argument",
    [-LP_ECONFIG - LP_EBASE] = "configuration error",
    [-LP_EUNSUPP - LP_EBASE] = "unsupported format",
    [-LP_EKAFKA - LP_EBASE] = "kafka error",
    [-LP_EHTTP - LP_EBASE] = "http error",
    [-LP_EAGAIN - LP_EBASE] = "temporarily unavailable",
    [-LP_ENOTFOUND - LP_EBASE] = "not found",
};

const char *lp_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err < 0 && -err > LP_EBASE && err > LP_ELAST) {
        const char *m = messages[-err - LP_EBASE];
        return m ? m : "unknown error";
    }
    if (err < 0 && -err < LP_EBASE)
        return (strerror)(-err); /* the one allowed call (lp_banned.h); glibc's strerror
                                  * is thread-safe for valid codes */
    return "unknown error";
}
