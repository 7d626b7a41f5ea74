/* Multiline rules: decide whether a logical line starts a new event or
 * continues the current one (stack traces of Java, Python, Go; custom PCRE2
 * patterns). A rule set is immutable once built and may be shared by
 * threads; the per-stream state lives in struct lp_ml_state. */
#ifndef LP_MULTILINE_H
#define LP_MULTILINE_H

#include <stddef.h>
#include <stdint.h>

enum lp_ml_mode { LP_ML_OFF = 0, LP_ML_JAVA, LP_ML_PYTHON, LP_ML_GO, LP_ML_CUSTOM };
/* START: begins an event; CONT: joins the current one; CONT_END: joins and
 * ends it. START_END (never from lp_multiline_classify: the assembler's own)
 * is an event by itself. */
enum lp_ml_verdict { LP_ML_START, LP_ML_CONT, LP_ML_CONT_END, LP_ML_START_END };

struct lp_multiline {
    enum lp_ml_mode mode;
    void *start; /* pcre2_code (custom) */
    void *cont;
    uint32_t max_lines;
    size_t max_bytes;
    int64_t flush_ns;
    void *mctx; /* pcre2_match_context with its own limits, or NULL (the process's) */
};

/* Per-stream classification state (what the previous lines established). */
struct lp_ml_state {
    int in_trace;
};

/* Builds rules; mode is "off", "java", "python", "go" or "custom". Returns
 * NULL with the reason (e.g. a PCRE2 error and its offset) in err. Free
 * with lp_multiline_free. */
struct lp_multiline *lp_multiline_new(const char *mode, const char *start_pattern,
                                      const char *continue_pattern, uint32_t max_lines,
                                      size_t max_bytes, int64_t flush_ns, char *err, size_t errlen);
void lp_multiline_free(struct lp_multiline *m);
/* Gives the custom patterns their own PCRE2 match and depth limits instead
 * of the process's (lp_regex_setup). Before any classify. */
void lp_multiline_set_limits(struct lp_multiline *m, uint32_t match_limit, uint32_t depth_limit);

/* Classifies line (without newline) given and updating st. */
enum lp_ml_verdict lp_multiline_classify(const struct lp_multiline *m, struct lp_ml_state *st,
                                         const char *line, size_t n);

#endif
