/* PCRE2 compilation with JIT and readable errors. */
#include "lp_regex.h"

#include "lp_metrics.h"

#include <pthread.h>
#include <stdint.h>
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

/* One match context for the process: written by lp_regex_setup before the
 * threads that match exist, only read by pcre2_match afterwards (PCRE2
 * contexts may be shared by threads as long as nobody changes them). */
static pcre2_match_context *mctx;
static struct lp_counter *limited_counter;
static pthread_once_t mctx_once = PTHREAD_ONCE_INIT;

static void mctx_default(void)
{
    if (mctx)
        return;
    mctx = pcre2_match_context_create(NULL);
    if (!mctx)
        abort();
    pcre2_set_match_limit(mctx, LP_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(mctx, LP_REGEX_DEPTH_LIMIT);
}

void lp_regex_setup(uint32_t match_limit, uint32_t depth_limit, struct lp_counter *limited)
{
    pthread_once(&mctx_once, mctx_default);
    pcre2_set_match_limit(mctx, match_limit ? match_limit : LP_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(mctx, depth_limit ? depth_limit : LP_REGEX_DEPTH_LIMIT);
    limited_counter = limited;
}

pcre2_match_context *lp_regex_context(uint32_t match_limit, uint32_t depth_limit)
{
    pcre2_match_context *c = pcre2_match_context_create(NULL);
    if (!c)
        abort();
    pcre2_set_match_limit(c, match_limit ? match_limit : LP_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(c, depth_limit ? depth_limit : LP_REGEX_DEPTH_LIMIT);
    return c;
}

int lp_regex_match(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md)
{
    return lp_regex_match_in(re, s, n, md, NULL);
}

int lp_regex_match_in(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md,
                      const pcre2_match_context *ctx)
{
    pthread_once(&mctx_once, mctx_default);
    pcre2_match_data *own = NULL;
    if (!md && !(md = own = pcre2_match_data_create_from_pattern(re, NULL)))
        abort();
    /* pcre2_match takes a non-const context it does not change */
    pcre2_match_context *use = ctx ? (pcre2_match_context *)(uintptr_t)ctx : mctx;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, use);
    pcre2_match_data_free(own);
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        if (limited_counter)
            lp_counter_inc(limited_counter);
        return LP_REGEX_LIMITED;
    }
    return rc;
}
