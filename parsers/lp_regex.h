/* PCRE2 compilation shared by the parsers: UTF mode that tolerates invalid
 * UTF-8 in subjects, JIT when available, errors as "<what>: <reason> at
 * offset N". Compiled patterns are immutable and may be shared by threads. */
#ifndef LP_REGEX_H
#define LP_REGEX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>

/* Returns the compiled pattern (free with pcre2_code_free) or NULL with the
 * reason in err. */
pcre2_code *lp_regex_compile(const char *pattern, const char *what, char *err, size_t errlen);

#endif
