/* PCRE2 compilation with JIT and readable errors. */
#include "lp_regex.h"

#include <stdio.h>
#include <stdlib.h>

pcre2_code *lp_regex_compile(const char *pattern, const char *what, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "%s: %s at offset %zu", what, (const char *)msg, (size_t)off);
        return NULL;
    }
    /* falls back to the interpreter without JIT. LP_REGEX_NO_JIT=1 is for
     * valgrind runs: JIT code reads ahead within the subject's allocation,
     * which memcheck reports as uninitialised (ASan covers the JIT path). */
    if (!getenv("LP_REGEX_NO_JIT"))
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}
