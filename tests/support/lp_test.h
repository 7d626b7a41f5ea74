/* The C tests' kit (unit and integration): a CUnit runner, files of the
 * source tree, temporary directories that go away, configurations from
 * text. */
#ifndef LP_TEST_H
#define LP_TEST_H

#include <CUnit/Basic.h>
#include <stddef.h>

struct lp_test {
    const char *name;
    void (*fn)(void);
};

/* Runs the NULL-terminated tests as one suite (only those whose name
 * contains $LP_TEST_ONLY, when set); returns the process exit status (0 when
 * every assertion passed, 3 when no test ran). */
int lp_test_run(const char *suite, const struct lp_test *tests);

/* Reads a file under the source tree ($LP_SOURCE_DIR/rel) into a malloc'd,
 * NUL-terminated buffer; NULL when missing. */
char *lp_test_read_source(const char *rel, size_t *len);

/* A new directory under $TMPDIR (or /tmp) named lp-<tag>-XXXXXX (static
 * storage: the returned path lives until the process exits). lp_test_run
 * removes every one when the suite ends, unless $LP_TEST_KEEP is set (then
 * it prints where they are). Aborts when it cannot be made. */
const char *lp_test_tmpdir(const char *tag);
/* rm -rf path (no shell). 0 or -errno. */
int lp_test_rmtree(const char *path);

/* A configuration loaded from YAML text (named "test.yaml" in errors);
 * NULL with the errors printed when it does not load (in lp_test_config.c:
 * link lp_config to use it). */
struct lp_config;
struct lp_config *lp_test_config(const char *yaml);
/* The errors loading yaml reports, one per line ("" when it loads);
 * malloc'd, the caller frees it. */
char *lp_test_config_errors(const char *yaml);

#endif
