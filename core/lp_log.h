/* Leveled logs on stderr as logfmt (default) or JSON lines:
 *   ts=2026-11-28T07:00:00.123Z level=info module=http msg="listening" addr=127.0.0.1:9464
 * Call as lp_log(LP_LOG_INFO, "listening", "addr=%s", addr): the message is a
 * fixed phrase, the key=value part a printf format (pass "" for none). The
 * level is checked before any argument is evaluated. Thread-safe: each line is
 * one write(2). Define LP_LOG_MODULE before including this header. */
#ifndef LP_LOG_H
#define LP_LOG_H

#include <stdatomic.h>
#include <stdint.h>

#ifndef LP_LOG_MODULE
#define LP_LOG_MODULE "logpipe"
#endif

enum lp_log_level { LP_LOG_ERROR = 0, LP_LOG_WARN, LP_LOG_INFO, LP_LOG_DEBUG };
enum lp_log_format { LP_LOG_LOGFMT = 0, LP_LOG_JSON };

extern _Atomic int lp_log_threshold;

/* Sets level and format; may be called at any time (SIGHUP reload). */
void lp_log_setup(enum lp_log_level level, enum lp_log_format format);
/* "error", "warn", "info", "debug" → level; LP_EINVAL when unknown. */
int lp_log_level_parse(const char *s);
/* Writes one line; use the lp_log macro instead. */
void lp_log_emit(int level, const char *module, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));

#define lp_log_enabled(level) \
    ((int)(level) <= atomic_load_explicit(&lp_log_threshold, memory_order_relaxed))

#define lp_log(level, msg, ...)                                    \
    do {                                                           \
        if (lp_log_enabled(level))                                 \
            lp_log_emit((level), LP_LOG_MODULE, msg, __VA_ARGS__); \
    } while (0)

/* Per-call-site rate limit for per-record errors: at most `burst` lines per
 * `window_ns`; the next line after a quiet period reports how many were
 * suppressed. */
struct lp_ratelimit {
    _Atomic int64_t window_start;
    _Atomic uint32_t count;
    _Atomic uint32_t suppressed;
};
/* Returns 1 when the caller may log; *suppressed gets the lines dropped since
 * the last allowed one. Thread-safe. */
int lp_ratelimit_allow(struct lp_ratelimit *rl, uint32_t burst, int64_t window_ns,
                       uint32_t *suppressed);

#define lp_log_ratelimited(level, msg, kvfmt, ...)                                                 \
    do {                                                                                           \
        static struct lp_ratelimit lp_rl_;                                                         \
        uint32_t lp_sup_;                                                                          \
        if (lp_log_enabled(level) && lp_ratelimit_allow(&lp_rl_, 10, 10 * 1000000000LL, &lp_sup_)) \
            lp_log_emit((level), LP_LOG_MODULE, msg, kvfmt " suppressed=%u", __VA_ARGS__,          \
                        lp_sup_);                                                                  \
    } while (0)

#endif
