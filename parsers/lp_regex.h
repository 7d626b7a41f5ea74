/* PCRE2 compilation shared by the parsers: UTF mode that tolerates invalid
 * UTF-8 in subjects, JIT when available, errors as "<what>: <reason> at
 * offset N". Compiled patterns are immutable and may be shared by threads. */
#ifndef LP_REGEX_H
#define LP_REGEX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

/* Returns the compiled pattern (free with pcre2_code_free) or NULL with the
 * reason in err. */
pcre2_code *lp_regex_compile(const char *pattern, const char *what, char *err, size_t errlen);

/* The work one match may do, for every lp_regex_match of the process:
 * PCRE2's match limit (calls of its internal match function: backtracking)
 * and depth limit (nested backtracking, heap it may use). limited, when not
 * NULL, counts the matches a limit stopped. Call before any thread matches
 * (a daemon's start-up); defaults: LP_REGEX_MATCH_LIMIT, LP_REGEX_DEPTH_LIMIT. */
#define LP_REGEX_MATCH_LIMIT 100000
#define LP_REGEX_DEPTH_LIMIT 10000
struct lp_counter;
void lp_regex_setup(uint32_t match_limit, uint32_t depth_limit, struct lp_counter *limited);

/* pcre2_match of s[0..n) under the limits: >= 0 on a match,
 * PCRE2_ERROR_NOMATCH, LP_REGEX_LIMITED when a limit stopped it (counted),
 * another negative PCRE2 error otherwise. md may be NULL (a match data for
 * the pattern is made and freed). Any thread. */
#define LP_REGEX_LIMITED (-1000)
int lp_regex_match(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md);

/* A match context with its own limits (0: the process's), for rules that
 * carry theirs (a shipper input's multiline section). Free it with
 * pcre2_match_context_free. lp_regex_match_in is lp_regex_match under ctx
 * (NULL: the process's limits). */
pcre2_match_context *lp_regex_context(uint32_t match_limit, uint32_t depth_limit);
int lp_regex_match_in(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md,
                      const pcre2_match_context *ctx);

#endif
