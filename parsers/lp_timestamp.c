/* Timestamp parsing without locale or TZ dependence (no strptime: it reads
 * the locale and mktime reads TZ). */
#include "lp_timestamp.h"

#include "lp_error.h"
#include "lp_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_epoch(const char *fmt, const char *s, size_t n, int64_t *out)
{
    char buf[48];
    if (n == 0 || n >= sizeof(buf))
        return LP_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long whole = strtoll(buf, &end, 10);
    if (end == buf || whole < 0 || errno == ERANGE || !isdigit((unsigned char)buf[0]))
        return LP_EINVAL;
    /* the fraction: digits only (no exponent: "1.5e300" is no time), up to
     * nanoseconds of the unit */
    int64_t frac = 0, frac_den = 1;
    if (*end == '.') {
        end++;
        if (!isdigit((unsigned char)*end))
            return LP_EINVAL;
        for (; isdigit((unsigned char)*end); end++)
            if (frac_den < 1000000000) {
                frac = frac * 10 + (*end - '0');
                frac_den *= 10;
            }
    }
    if (*end)
        return LP_EINVAL;
    int64_t scale; /* ns per unit */
    if (!strcmp(fmt, "epoch_s"))
        scale = LP_NS_PER_SEC;
    else if (!strcmp(fmt, "epoch_ms"))
        scale = LP_NS_PER_MS;
    else if (!strcmp(fmt, "epoch_us"))
        scale = 1000;
    else if (!strcmp(fmt, "epoch_ns"))
        scale = 1;
    else /* "epoch": by magnitude (valid for dates between 1973 and 2286) */
        scale = whole < 100000000000LL         ? LP_NS_PER_SEC
                : whole < 100000000000000LL    ? LP_NS_PER_MS
                : whole < 100000000000000000LL ? 1000
                                               : 1;
    if (whole > INT64_MAX / scale)
        return LP_EINVAL;
    int64_t ns = (int64_t)whole * scale;
    /* frac/frac_den of a unit in ns; both at most 1e9: no overflow */
    int64_t frac_ns = frac * scale / frac_den;
    if (frac_ns > INT64_MAX - ns)
        return LP_EINVAL;
    *out = ns + frac_ns;
    return 0;
}

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};

static int digits(const char **p, const char *end, int min, int max, int *v)
{
    int n = 0, x = 0;
    while (*p < end && n < max && isdigit((unsigned char)**p)) {
        x = x * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n < min)
        return LP_ECORRUPT;
    *v = x;
    return 0;
}

static int parse_pattern(const char *fmt, const char *s, size_t n, int64_t now_ns, int64_t *out)
{
    const char *p = s, *end = s + n;
    int Y = -1, M = 1, D = 1, h = 0, m = 0, sec = 0;
    int64_t frac = 0, off = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (*f == ' ') { /* one space in the format matches one or more */
                if (p >= end || *p != ' ')
                    return LP_EINVAL;
                while (p < end && *p == ' ')
                    p++;
                continue;
            }
            if (p >= end || *p != *f)
                return LP_EINVAL;
            p++;
            continue;
        }
        f++;
        switch (*f) {
        case 'Y':
            if (digits(&p, end, 4, 4, &Y))
                return LP_EINVAL;
            break;
        case 'm':
            if (digits(&p, end, 1, 2, &M))
                return LP_EINVAL;
            break;
        case 'd':
            if (digits(&p, end, 1, 2, &D))
                return LP_EINVAL;
            break;
        case 'e':
            while (p < end && *p == ' ')
                p++;
            if (digits(&p, end, 1, 2, &D))
                return LP_EINVAL;
            break;
        case 'H':
            if (digits(&p, end, 1, 2, &h))
                return LP_EINVAL;
            break;
        case 'M':
            if (digits(&p, end, 1, 2, &m))
                return LP_EINVAL;
            break;
        case 'S':
            if (digits(&p, end, 1, 2, &sec))
                return LP_EINVAL;
            break;
        case 'f': {
            int nd = 0;
            frac = 0;
            while (p < end && isdigit((unsigned char)*p)) {
                if (nd < 9) {
                    frac = frac * 10 + (*p - '0');
                    nd++;
                }
                p++;
            }
            if (!nd)
                return LP_EINVAL;
            for (; nd < 9; nd++)
                frac *= 10;
            break;
        }
        case 'b': {
            if (end - p < 3)
                return LP_EINVAL;
            int found = -1;
            for (int i = 0; i < 12; i++)
                if (!strncasecmp(p, months[i], 3))
                    found = i;
            if (found < 0)
                return LP_EINVAL;
            M = found + 1;
            p += 3;
            break;
        }
        case 'z': {
            if (p < end && (*p == 'Z' || *p == 'z')) {
                p++;
                break;
            }
            if (end - p < 5 || (*p != '+' && *p != '-'))
                return LP_EINVAL;
            int sign = *p == '+' ? 1 : -1, oh, om;
            p++;
            if (digits(&p, end, 2, 2, &oh))
                return LP_EINVAL;
            if (p < end && *p == ':')
                p++;
            if (digits(&p, end, 2, 2, &om))
                return LP_EINVAL;
            off = sign * (oh * 3600 + om * 60);
            break;
        }
        case '%':
            if (p >= end || *p != '%')
                return LP_EINVAL;
            p++;
            break;
        default: return LP_EINVAL;
        }
    }
    if (p != end || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return LP_EINVAL;
    int64_t secs_of_day = h * 3600 + m * 60 + (sec == 60 ? 59 : sec) - off;
    /* nanoseconds since 1970 in 64 bits reach years 1678 to 2261 */
    const int64_t max_s = INT64_MAX / LP_NS_PER_SEC - 1, min_s = INT64_MIN / LP_NS_PER_SEC + 1;
    if (Y < 0) {
        /* no year: logs describe the past, so take the latest year that
         * puts the time no later than now (plus two days of clock skew) */
        int64_t now_s = now_ns / LP_NS_PER_SEC, best = 0;
        int64_t y0 = 1970 + (now_s / 86400) / 365 + 1; /* at or just after this year */
        for (int64_t y = y0 + 1; y >= y0 - 3; y--) {
            int64_t t = lp_time_days_from_civil(y, M, D) * 86400 + secs_of_day;
            if (t <= now_s + 2 * 86400) {
                best = t;
                break;
            }
        }
        if (best > max_s || best < min_s)
            return LP_EINVAL;
        *out = best * LP_NS_PER_SEC + frac;
        return 0;
    }
    int64_t t = lp_time_days_from_civil(Y, M, D) * 86400 + secs_of_day;
    if (t > max_s || t < min_s)
        return LP_EINVAL;
    *out = t * LP_NS_PER_SEC + frac;
    return 0;
}

int lp_timestamp_parse(const char *format, const char *s, size_t n, int64_t now_ns, int64_t *out_ns)
{
    if (!strcmp(format, "rfc3339"))
        return lp_time_parse_rfc3339(s, n, out_ns);
    if (!strncmp(format, "epoch", 5) && !strchr(format, '%'))
        return parse_epoch(format, s, n, out_ns);
    return parse_pattern(format, s, n, now_ns, out_ns);
}

int lp_timestamp_format_valid(const char *format)
{
    static const char *const names[] = {"rfc3339",  "epoch",    "epoch_s",
                                        "epoch_ms", "epoch_us", "epoch_ns"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(format, names[i]))
            return 1;
    int conversions = 0;
    for (const char *f = format; *f; f++) {
        if (*f != '%')
            continue;
        f++;
        if (!*f || !strchr("YmdeHMSfbz%", *f))
            return 0;
        conversions++;
    }
    return conversions > 0;
}
