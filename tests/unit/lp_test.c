/* CUnit boilerplate: one suite per executable, non-zero exit on failure. */
#include "lp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lp_test_run(const char *suite, const struct lp_test *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    const char *only = getenv("LP_TEST_ONLY"); /* run the tests whose name has this */
    for (const struct lp_test *t = tests; t->name; t++)
        if (!only || strstr(t->name, only))
            CU_add_test(s, t->name, t->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0)
        return 3;
    return failed ? 1 : 0;
}

char *lp_test_read_source(const char *rel, size_t *len)
{
    const char *root = getenv("LP_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        fclose(f);
        return NULL;
    }
    p[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return p;
}
