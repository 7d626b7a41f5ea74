/* Clocks and RFC 3339 formatting/parsing without locale or TZ dependence. */
#include "lp_time.h"

#include "lp_error.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t lp_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * LP_NS_PER_SEC + ts.tv_nsec;
}

int64_t lp_time_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * LP_NS_PER_SEC + ts.tv_nsec;
}

size_t lp_time_format_rfc3339(int64_t ns, int digits, char *out)
{
    /* Consecutive log lines share their second: cache its text per thread
     * (strftime was a visible share of the shipper's CPU). */
    static _Thread_local int64_t cached_sec = INT64_MIN;
    static _Thread_local char cached[24];
    static _Thread_local size_t cached_len;
    int64_t sec = ns / LP_NS_PER_SEC, frac = ns % LP_NS_PER_SEC;
    if (frac < 0) {
        frac += LP_NS_PER_SEC;
        sec--;
    }
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        cached_len = strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = sec;
    }
    memcpy(out, cached, cached_len);
    size_t n = cached_len;
    if (digits == 3 || digits == 6 || digits == 9) {
        int64_t v = digits == 3 ? frac / 1000000 : digits == 6 ? frac / 1000 : frac;
        out[n] = '.';
        for (int i = digits; i > 0; i--) {
            out[n + (size_t)i] = (char)('0' + v % 10);
            v /= 10;
        }
        n += (size_t)digits + 1;
    }
    out[n++] = 'Z';
    out[n] = '\0';
    return n;
}

static int digits_at(const char *s, size_t n, size_t pos, int count, int *val)
{
    int v = 0;
    if (pos + (size_t)count > n)
        return LP_ECORRUPT;
    for (int i = 0; i < count; i++) {
        char c = s[pos + (size_t)i];
        if (c < '0' || c > '9')
            return LP_ECORRUPT;
        v = v * 10 + (c - '0');
    }
    *val = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
int64_t lp_time_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int lp_time_parse_rfc3339(const char *s, size_t n, int64_t *ns)
{
    int Y, M, D, h, m, sec;
    if (digits_at(s, n, 0, 4, &Y) || n < 19 || s[4] != '-' || digits_at(s, n, 5, 2, &M) ||
        s[7] != '-' || digits_at(s, n, 8, 2, &D) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || digits_at(s, n, 11, 2, &h) ||
        s[13] != ':' || digits_at(s, n, 14, 2, &m) || s[16] != ':' || digits_at(s, n, 17, 2, &sec))
        return LP_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return LP_EINVAL;
    size_t i = 19;
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        i++;
        int nd = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (nd < 9) {
                frac = frac * 10 + (s[i] - '0');
                nd++;
            }
            i++;
        }
        if (nd == 0)
            return LP_EINVAL;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (digits_at(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            digits_at(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
            return LP_EINVAL;
        off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return LP_EINVAL;
    }
    if (i != n)
        return LP_EINVAL;
    int64_t days = lp_time_days_from_civil(Y, M, D);
    int64_t secs = days * 86400 + h * 3600 + m * 60 + (sec == 60 ? 59 : sec) - off;
    /* nanoseconds since 1970 in 64 bits: years 1678 to 2261 */
    if (secs > INT64_MAX / LP_NS_PER_SEC - 1 || secs < INT64_MIN / LP_NS_PER_SEC + 1)
        return LP_EINVAL;
    *ns = secs * LP_NS_PER_SEC + frac;
    return 0;
}
