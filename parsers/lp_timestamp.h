/* Timestamp extraction for message parsers: a value and a format name →
 * nanoseconds since the epoch. Pure; any thread. */
#ifndef LP_TIMESTAMP_H
#define LP_TIMESTAMP_H

#include <stddef.h>
#include <stdint.h>

/* format: "rfc3339" (also ISO 8601 with a space), "epoch" (seconds,
 * milliseconds, microseconds or nanoseconds told apart by magnitude, with
 * an optional fraction), "epoch_s", "epoch_ms", "epoch_us", "epoch_ns", or a
 * strptime-style pattern with %Y %m %d %H %M %S %b %e %z %f (fraction) and
 * literal characters, e.g. "%d/%b/%Y:%H:%M:%S %z" (access logs) or
 * "%b %e %H:%M:%S" (syslog; without %Y the year is the latest one that puts
 * the time no later than now_ns plus two days of clock skew, so December
 * lines read in January land in the previous year). Returns 0 or LP_EINVAL. */
int lp_timestamp_parse(const char *format, const char *s, size_t n, int64_t now_ns,
                       int64_t *out_ns);

/* 1 when format is one of the names above or a pattern using only the
 * supported conversions (config validation). */
int lp_timestamp_format_valid(const char *format);

#endif
