/* Built-in stack-trace rules and custom PCRE2 (JIT) patterns. */
#include "lp_multiline.h"
#include "lp_alloc.h"
#include "lp_regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int starts(const char *s, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    return n >= pl && memcmp(s, prefix, pl) == 0;
}

static int indented(const char *s, size_t n)
{
    return n > 0 && (s[0] == ' ' || s[0] == '\t');
}

struct lp_multiline *lp_multiline_new(const char *mode, const char *start_pattern,
                                      const char *continue_pattern, uint32_t max_lines,
                                      size_t max_bytes, int64_t flush_ns, char *err, size_t errlen)
{
    static const char *const modes[] = {"off", "java", "python", "go", "custom"};
    struct lp_multiline *m = lp_xcalloc(1, sizeof(*m));
    m->mode = (enum lp_ml_mode) - 1;
    for (int i = 0; i < 5; i++)
        if (strcmp(mode, modes[i]) == 0)
            m->mode = (enum lp_ml_mode)i;
    m->max_lines = max_lines ? max_lines : 500;
    m->max_bytes = max_bytes ? max_bytes : 1 << 20;
    m->flush_ns = flush_ns;
    if ((int)m->mode < 0) {
        snprintf(err, errlen, "unknown multiline mode '%s'", mode);
        goto fail;
    }
    if (m->mode == LP_ML_CUSTOM) {
        if (!start_pattern || !*start_pattern) {
            snprintf(err, errlen, "multiline mode custom needs start_pattern");
            goto fail;
        }
        if (!(m->start = lp_regex_compile(start_pattern, "start_pattern", err, errlen)))
            goto fail;
        if (continue_pattern && *continue_pattern &&
            !(m->cont = lp_regex_compile(continue_pattern, "continue_pattern", err, errlen)))
            goto fail;
    }
    return m;
fail:
    lp_multiline_free(m);
    return NULL;
}

void lp_multiline_free(struct lp_multiline *m)
{
    if (!m)
        return;
    pcre2_code_free(m->start);
    pcre2_code_free(m->cont);
    pcre2_match_context_free(m->mctx);
    free(m);
}

void lp_multiline_set_limits(struct lp_multiline *m, uint32_t match_limit, uint32_t depth_limit)
{
    pcre2_match_context_free(m->mctx);
    m->mctx = lp_regex_context(match_limit, depth_limit);
}

static int matches(const struct lp_multiline *m, void *re, const char *s, size_t n)
{
    /* a line that costs the pattern more than the match limit counts as
     * not matching (counted by lp_regex): it is kept either way */
    return lp_regex_match_in(re, s, n, NULL, m->mctx) >= 0;
}

/* "main.main()" or "net/http.(*conn).serve(0xc000, {0x7f..})": a Go frame. */
static int go_frame(const char *s, size_t n)
{
    return n > 2 && memchr(s, '(', n) && s[n - 1] == ')' && s[0] != ' ';
}

enum lp_ml_verdict lp_multiline_classify(const struct lp_multiline *m, struct lp_ml_state *st,
                                         const char *s, size_t n)
{
    switch (m->mode) {
    case LP_ML_JAVA:
        /* "\tat com.x.Y.z(Y.java:10)", "Caused by: ...", "\t... 12 more" */
        if (indented(s, n) || starts(s, n, "Caused by: ") || starts(s, n, "Suppressed: "))
            return LP_ML_CONT;
        return LP_ML_START;
    case LP_ML_PYTHON:
        if (starts(s, n, "Traceback (most recent call last):")) {
            st->in_trace = 1;
            return LP_ML_START;
        }
        if (st->in_trace && indented(s, n))
            return LP_ML_CONT;
        if (st->in_trace) {
            /* "ValueError: bad" ends the traceback and belongs to it */
            st->in_trace = 0;
            return LP_ML_CONT_END;
        }
        return LP_ML_START;
    case LP_ML_GO:
        if (starts(s, n, "panic: ") || starts(s, n, "fatal error: ")) {
            st->in_trace = 1;
            return LP_ML_START;
        }
        if (st->in_trace &&
            (n == 0 || s[0] == '\t' || starts(s, n, "goroutine ") || starts(s, n, "created by ") ||
             starts(s, n, "[signal ") || starts(s, n, "exit status ") || go_frame(s, n)))
            return LP_ML_CONT;
        st->in_trace = 0;
        return LP_ML_START;
    case LP_ML_CUSTOM:
        if (matches(m, m->start, s, n))
            return LP_ML_START;
        if (m->cont && !matches(m, m->cont, s, n))
            return LP_ML_START;
        return LP_ML_CONT;
    default: return LP_ML_START;
    }
}
