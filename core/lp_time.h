/* Clocks and RFC 3339 timestamps. All functions are thread-safe. */
#ifndef LP_TIME_H
#define LP_TIME_H

#include <stddef.h>
#include <stdint.h>

#define LP_NS_PER_SEC 1000000000LL
#define LP_NS_PER_MS 1000000LL

/* Monotonic nanoseconds (CLOCK_MONOTONIC): for intervals and timeouts. */
int64_t lp_time_mono_ns(void);
/* Wall-clock nanoseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t lp_time_real_ns(void);

#define LP_RFC3339_MAX 40
/* Formats ns since the epoch as UTC "YYYY-MM-DDTHH:MM:SS.fffffffffZ" with
 * digits fractional digits (0, 3, 6 or 9). Returns the length written into
 * out (at least LP_RFC3339_MAX bytes). */
size_t lp_time_format_rfc3339(int64_t ns, int digits, char *out);
/* Parses RFC 3339 (fraction up to 9 digits, 'Z' or +hh:mm offset) into ns
 * since the epoch (years 1678 to 2261: what fits 64-bit nanoseconds). 0 or
 * LP_EINVAL. s need not be NUL-terminated. */
int lp_time_parse_rfc3339(const char *s, size_t n, int64_t *ns);

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
int64_t lp_time_days_from_civil(int64_t y, int m, int d);

#endif
