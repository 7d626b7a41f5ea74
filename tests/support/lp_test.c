/* The C tests' kit (lp_test.h): one suite per executable, non-zero exit
 * on failure; source files; temporary directories. */
#include "lp_test.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TMPDIRS 16
static char tmpdirs[MAX_TMPDIRS][4096];
static size_t n_tmpdirs;

const char *lp_test_tmpdir(const char *tag)
{
    if (n_tmpdirs == MAX_TMPDIRS)
        abort();
    const char *base = getenv("TMPDIR");
    char *d = tmpdirs[n_tmpdirs];
    snprintf(d, sizeof(tmpdirs[0]), "%s/lp-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(d)) {
        perror("lp_test_tmpdir");
        abort();
    }
    n_tmpdirs++;
    return d;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -errno;
}

int lp_test_rmtree(const char *path)
{
    int rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc < 0 ? -errno : rc;
}

static void remove_tmpdirs(void)
{
    const char *keep = getenv("LP_TEST_KEEP");
    for (size_t i = 0; i < n_tmpdirs; i++) {
        if (keep && *keep)
            fprintf(stderr, "kept: %s\n", tmpdirs[i]);
        else
            lp_test_rmtree(tmpdirs[i]);
    }
    n_tmpdirs = 0;
}

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
    remove_tmpdirs();
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
