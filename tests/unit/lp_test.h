/* Minimal CUnit runner shared by the test executables. */
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

#endif
