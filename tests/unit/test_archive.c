/* Archiving a segment: round trip for zstd and gzip, a crash after each
 * step (a forked child exits from the step hook) followed by a rerun, an
 * archive that does not match its source, leftovers cleaned. */
#include "archive.h"
#include "lp_error.h"
#include "lp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *root;

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* A segment of n NDJSON lines; returns its hash and size. */
static void make_segment(const char *path, int n, uint64_t *hash, uint64_t *size)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"@timestamp\":\"2026-11-28T10:00:00Z\",\"message\":\"line %d %08x\"}\n", i,
                (unsigned)i * 2654435761u);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(lp_archive_hash_file(path, hash, size), 0);
}

static void test_round_trip(void)
{
    const enum lp_codec codecs[] = {LP_CODEC_ZSTD, LP_CODEC_GZIP};
    for (int c = 0; c < 2; c++) {
        char src[256], arch[512], dst[256];
        snprintf(src, sizeof(src), "%s/0-%d.ndjson", root, c);
        snprintf(dst, sizeof(dst), "%s/archive/day", root);
        uint64_t h, n;
        make_segment(src, 50000, &h, &n);
        struct lp_archive_stats st;
        char err[512];
        CU_ASSERT_EQUAL_FATAL(lp_archive_file(src, dst, codecs[c], 3, &st, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(st.bytes_in, n);
        CU_ASSERT(st.bytes_out > 0 && st.bytes_out < n / 3);
        CU_ASSERT_FALSE(exists(src));
        lp_archive_name(src, dst, codecs[c], arch, sizeof(arch));
        CU_ASSERT_PTR_NOT_NULL(
            strstr(arch, codecs[c] == LP_CODEC_GZIP ? ".ndjson.gz" : ".ndjson.zst"));
        uint64_t ah, an;
        CU_ASSERT_EQUAL(lp_archive_verify(arch, codecs[c], &ah, &an), 0);
        CU_ASSERT_EQUAL(ah, h);
        CU_ASSERT_EQUAL(an, n);
        /* the wrong codec does not verify */
        CU_ASSERT_EQUAL(lp_archive_verify(arch, codecs[1 - c], &ah, &an), LP_ECORRUPT);
    }
}

static int crash_at;
static void crash_hook(int step)
{
    if (step == crash_at)
        _exit(0); /* as abrupt as a kill: nothing after this step happens */
}

static void test_crash_each_step(void)
{
    for (int s = 1; s <= 3; s++) {
        char src[256], arch[512], tmp[600], dst[256];
        snprintf(src, sizeof(src), "%s/1-%d.ndjson", root, s);
        snprintf(dst, sizeof(dst), "%s/archive/crash", root);
        uint64_t h, n;
        make_segment(src, 20000, &h, &n);
        lp_archive_name(src, dst, LP_CODEC_ZSTD, arch, sizeof(arch));
        snprintf(tmp, sizeof(tmp), "%s%s", arch, LP_ARCHIVE_TMP_SUFFIX);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            crash_at = s;
            lp_archive_step_hook = crash_hook;
            struct lp_archive_stats st;
            char err[512];
            lp_archive_file(src, dst, LP_CODEC_ZSTD, 3, &st, err, sizeof(err));
            _exit(1);
        }
        int status;
        waitpid(pid, &status, 0);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* never neither; never a partial archive under the final name */
        CU_ASSERT_TRUE(exists(src));
        CU_ASSERT_EQUAL(exists(tmp), s < 3);
        CU_ASSERT_EQUAL(exists(arch), s == 3);
        /* the rerun: leftovers cleaned, the job finished, content intact */
        int cleaned = lp_archive_clean_temps(root);
        CU_ASSERT_EQUAL(cleaned, s < 3 ? 1 : 0);
        struct lp_archive_stats st;
        char err[512];
        CU_ASSERT_EQUAL(lp_archive_file(src, dst, LP_CODEC_ZSTD, 3, &st, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(st.resumed, s == 3);
        CU_ASSERT_FALSE(exists(src));
        CU_ASSERT_FALSE(exists(tmp));
        uint64_t ah, an;
        CU_ASSERT_EQUAL(lp_archive_verify(arch, LP_CODEC_ZSTD, &ah, &an), 0);
        CU_ASSERT_EQUAL(ah, h);
        CU_ASSERT_EQUAL(an, n);
    }
}

static void test_mismatch_kept(void)
{
    char src[256], arch[512], dst[256];
    snprintf(src, sizeof(src), "%s/2-0.ndjson", root);
    snprintf(dst, sizeof(dst), "%s/archive/bad", root);
    uint64_t h, n;
    make_segment(src, 100, &h, &n);
    lp_archive_name(src, dst, LP_CODEC_ZSTD, arch, sizeof(arch));
    mkdir(dst, 0750);
    /* a file under the final name that is not this segment's archive */
    FILE *f = fopen(arch, "w");
    fputs("garbage", f);
    fclose(f);
    struct lp_archive_stats st;
    char err[512];
    CU_ASSERT_EQUAL(lp_archive_file(src, dst, LP_CODEC_ZSTD, 3, &st, err, sizeof(err)),
                    LP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "both kept"));
    CU_ASSERT_TRUE(exists(src));
    CU_ASSERT_TRUE(exists(arch));
    /* an unreadable source: an error, nothing created */
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/nope.ndjson", root);
    CU_ASSERT(lp_archive_file(missing, dst, LP_CODEC_ZSTD, 3, &st, err, sizeof(err)) < 0);
    CU_ASSERT_EQUAL(lp_archive_file(src, dst, LP_CODEC_IDENTITY, 0, &st, err, sizeof(err)),
                    LP_EINVAL);
}

int main(void)
{
    root = lp_test_tmpdir("archive");
    static const struct lp_test tests[] = {
        {"zstd and gzip round trip", test_round_trip},
        {"a crash after each step, then a rerun", test_crash_each_step},
        {"a mismatching archive keeps both", test_mismatch_kept},
        {NULL, NULL},
    };
    int rc = lp_test_run("archive", tests);
    return rc;
}
