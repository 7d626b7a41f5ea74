/* Path glob patterns: '*' matches any sequence without '/', '**' any
 * sequence (across directories), '?' one character but '/', "[...]" a class
 * (with '!' or '^' negation and ranges; never '/'), '\' escapes the next
 * character. (fnmatch(3) with FNM_PATHNAME, plus '**'.)
 *
 * lp_glob_intersect decides whether some string matches every pattern at
 * once — how the configuration proves two retention policies can never
 * select the same file. Exact for ASCII; every byte >= 0x80 is treated as
 * one character class (conservative: may report an overlap that needs a
 * particular non-ASCII byte). */
#ifndef LP_GLOB_H
#define LP_GLOB_H

#include <stddef.h>

#define LP_GLOB_MAX_PATTERNS 4

/* 1 when some string matches all n (1..LP_GLOB_MAX_PATTERNS) patterns, with
 * a shortest such string in witness (NUL-terminated, truncated to
 * witness_len); 0 when none does; LP_ETOOBIG when the search passed its state
 * bound (callers should treat that as an overlap). */
int lp_glob_intersect(const char *const *patterns, size_t n, char *witness, size_t witness_len);

/* 1 when s matches the whole pattern. */
int lp_glob_match(const char *pattern, const char *s);

/* Appends s to out with glob metacharacters escaped, so that the pattern
 * matches s literally. Returns the length written (excluding the NUL), or
 * LP_ETOOBIG when out is too small. */
int lp_glob_escape(const char *s, char *out, size_t outlen);

#endif
