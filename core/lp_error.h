/* Error codes shared by every logpipe module: 0 or a negative LP_E* code;
 * -errno values pass through unchanged and lp_strerror() names both. */
#ifndef LP_ERROR_H
#define LP_ERROR_H

enum {
    LP_EBASE = 10000,               /* above every errno value */
    LP_ETOOBIG = -(LP_EBASE + 1),   /* input larger than its configured cap */
    LP_ECORRUPT = -(LP_EBASE + 2),  /* undecodable or truncated data */
    LP_EINVAL = -(LP_EBASE + 3),    /* invalid argument or value */
    LP_ECONFIG = -(LP_EBASE + 4),   /* configuration error (already reported) */
    LP_EUNSUPP = -(LP_EBASE + 5),   /* unsupported format/version/codec */
    LP_EKAFKA = -(LP_EBASE + 6),    /* librdkafka reported an error */
    LP_EHTTP = -(LP_EBASE + 7),     /* HTTP server or client error */
    LP_EAGAIN = -(LP_EBASE + 8),    /* temporary condition, try again */
    LP_ENOTFOUND = -(LP_EBASE + 9), /* no such name (a lookup) */
    LP_ELAST = -(LP_EBASE + 10),
};

/* Returns a static, human-readable description of err (an LP_E* code or
 * -errno). Thread-safe; never NULL. */
const char *lp_strerror(int err);

#endif
