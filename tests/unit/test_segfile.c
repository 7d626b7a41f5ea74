/* File-output segments: layout, rolling, watermark dedup of replays, and
 * recovery after a crash (torn last line, .open segments, lost in-memory
 * watermarks). */
#include "lp_segfile.h"
#include "lp_file.h"
#include "lp_test.h"
#include "lp_time.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *root;
static const int64_t NOW = 1795850460LL * 1000000000LL; /* 2026-11-28T07:21:00Z */
#define SID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int put(struct lp_segfile *s, const char *sid, uint64_t off, int64_t koff)
{
    char line[256];
    int n = snprintf(
        line, sizeof(line),
        "{\"message\":\"m %llu\",\"log\":{\"offset\":%llu},\"logpipe\":{\"source_id\":\"%s\"}}",
        (unsigned long long)off, (unsigned long long)off, sid);
    return lp_segfile_write(s, sid, off, koff, line, (size_t)n, NOW);
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return (size_t)-1;
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void test_write_dedup_roll(void)
{
    struct lp_segfile_config cfg = {root, "default", 400, 3600 * LP_NS_PER_SEC};
    char err[256];
    struct lp_segfile *s = lp_segfile_open(&cfg, 3, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(put(s, SID_A, 0, 100), 1);
    CU_ASSERT_EQUAL(put(s, SID_A, 50, 101), 1);
    CU_ASSERT_EQUAL(put(s, SID_B, 0, 102), 1);
    CU_ASSERT_EQUAL(put(s, SID_A, 50, 103), 0); /* a replay: skipped */
    CU_ASSERT_EQUAL(put(s, SID_A, 10, 104), 0); /* older: skipped */
    char expect[256];
    snprintf(expect, sizeof(expect), "%s/default/2026-11-28/07/3-100.ndjson.open", root);
    CU_ASSERT_STRING_EQUAL(lp_segfile_current_path(s), expect);
    CU_ASSERT_EQUAL(lp_segfile_sync(s), 0);
    CU_ASSERT_EQUAL(count_lines(expect), 3);
    /* ~90 bytes per line: the 5th line passes 400 bytes and the tick rolls */
    CU_ASSERT_EQUAL(put(s, SID_A, 100, 105), 1);
    CU_ASSERT_EQUAL(put(s, SID_B, 100, 106), 1);
    CU_ASSERT_EQUAL(lp_segfile_tick(s, NOW), 0);
    CU_ASSERT_PTR_NULL(lp_segfile_current_path(s));
    snprintf(expect, sizeof(expect), "%s/default/2026-11-28/07/3-100.ndjson", root);
    CU_ASSERT_EQUAL(count_lines(expect), 5);
    CU_ASSERT_EQUAL(put(s, SID_B, 200, 107), 1);
    snprintf(expect, sizeof(expect), "%s/default/2026-11-28/07/3-107.ndjson.open", root);
    CU_ASSERT_STRING_EQUAL(lp_segfile_current_path(s), expect);
    /* age roll */
    CU_ASSERT_EQUAL(lp_segfile_tick(s, NOW + 3600 * LP_NS_PER_SEC), 0);
    CU_ASSERT_PTR_NULL(lp_segfile_current_path(s));
    CU_ASSERT_EQUAL(lp_segfile_close(s), 0);

    /* reopened (another owner of partition 3): the watermarks came along */
    s = lp_segfile_open(&cfg, 3, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    int found;
    CU_ASSERT_EQUAL(lp_segfile_watermark(s, SID_A, &found), 100);
    CU_ASSERT(found);
    CU_ASSERT_EQUAL(lp_segfile_watermark(s, SID_B, &found), 200);
    CU_ASSERT_EQUAL(put(s, SID_B, 200, 108), 0);
    CU_ASSERT_EQUAL(put(s, SID_B, 201, 109), 1);
    CU_ASSERT_EQUAL(lp_segfile_close(s), 0);
}

static void test_crash_recovery(void)
{
    struct lp_segfile_config cfg = {root, "crash", 1 << 20, 3600 * LP_NS_PER_SEC};
    char err[256];
    struct lp_segfile *s = lp_segfile_open(&cfg, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (uint64_t i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(put(s, SID_A, i * 10, (int64_t)(500 + i)), 1);
    CU_ASSERT_EQUAL(lp_segfile_sync(s), 0); /* watermark A=90 saved */
    for (uint64_t i = 10; i < 15; i++)
        CU_ASSERT_EQUAL(put(s, SID_A, i * 10, (int64_t)(500 + i)), 1);
    CU_ASSERT_EQUAL(lp_segfile_sync(s), 0);
    char open_path[256];
    snprintf(open_path, sizeof(open_path), "%s", lp_segfile_current_path(s));
    /* kill -9 in the middle of the next write: half a line on disk, and the
     * watermark file older than the segment */
    int fd = open(open_path, O_WRONLY | O_APPEND);
    CU_ASSERT(write(fd, "{\"message\":\"torn", 16) == 16);
    close(fd);
    char wm[256];
    snprintf(wm, sizeof(wm), "%s/crash/.state/0.watermarks.json", root);
    FILE *f = fopen(wm, "w");
    fprintf(f, "{\"version\":1,\"sources\":{\"%s\":[90,%lld]}}\n", SID_A,
            (long long)(NOW / LP_NS_PER_SEC));
    fclose(f);
    lp_segfile_abandon(s);

    s = lp_segfile_open(&cfg, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char final_path[256];
    snprintf(final_path, sizeof(final_path), "%s/crash/2026-11-28/07/0-500.ndjson", root);
    CU_ASSERT_EQUAL(access(open_path, F_OK), -1); /* recovered and closed */
    CU_ASSERT_EQUAL(count_lines(final_path), 15); /* the torn line is gone */
    struct stat st;
    CU_ASSERT_EQUAL(stat(final_path, &st), 0);
    int found;
    CU_ASSERT_EQUAL(lp_segfile_watermark(s, SID_A, &found), 140); /* from the segment */
    /* the consumer resumes at its last committed offset and replays 5 lines */
    for (uint64_t i = 10; i < 15; i++)
        CU_ASSERT_EQUAL(put(s, SID_A, i * 10, (int64_t)(500 + i)), 0);
    CU_ASSERT_EQUAL(put(s, SID_A, 150, 515), 1);
    CU_ASSERT_EQUAL(lp_segfile_close(s), 0);
    /* every line of source A is in the files exactly once */
    size_t total = count_lines(final_path);
    char second[256];
    snprintf(second, sizeof(second), "%s/crash/2026-11-28/07/0-515.ndjson", root);
    total += count_lines(second);
    CU_ASSERT_EQUAL(total, 16);
}

/* Recovery never reads sources or offsets out of documents: a line whose
 * text claims another source (or an absurd offset) raises nothing, lines
 * after the last sync are cut (their messages come again from Kafka) and
 * implausible saved watermarks are refused. */
static void test_recovery_trusts_no_line(void)
{
    struct lp_segfile_config cfg = {root, "forge", 1 << 20, 3600 * LP_NS_PER_SEC};
    char err[256];
    struct lp_segfile *s = lp_segfile_open(&cfg, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (uint64_t i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(put(s, SID_A, i * 10, (int64_t)(700 + i)), 1);
    const char *forged =
        "{\"message\":\"x\",\"log\":{\"offset\":-2},"
        "\"logpipe\":{\"source_id\":\"" SID_B "\"},\"z\":{\"log\":{\"offset\":999999}}}";
    CU_ASSERT_EQUAL(lp_segfile_write(s, SID_A, 50, 705, forged, strlen(forged), NOW), 1);
    CU_ASSERT_EQUAL(lp_segfile_sync(s), 0);
    char open_path[256];
    snprintf(open_path, sizeof(open_path), "%s", lp_segfile_current_path(s));
    /* written after the sync, then kill -9: two whole lines and a torn one */
    int fd = open(open_path, O_WRONLY | O_APPEND);
    const char *tail =
        "{\"log\":{\"offset\":60},\"logpipe\":{\"source_id\":\"" SID_A "\"}}\n"
        "{\"log\":{\"offset\":5000},\"logpipe\":{\"source_id\":\"" SID_B "\"}}\n{\"tor";
    CU_ASSERT(write(fd, tail, strlen(tail)) == (ssize_t)strlen(tail));
    close(fd);
    lp_segfile_abandon(s);

    s = lp_segfile_open(&cfg, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    int found;
    CU_ASSERT_EQUAL(lp_segfile_watermark(s, SID_A, &found), 50);
    CU_ASSERT(found);
    lp_segfile_watermark(s, SID_B, &found);
    CU_ASSERT(!found); /* no line made B's later lines look like replays */
    char final_path[256];
    snprintf(final_path, sizeof(final_path), "%s/forge/2026-11-28/07/1-700.ndjson", root);
    CU_ASSERT_EQUAL(count_lines(final_path), 6); /* cut back to the sync */
    CU_ASSERT_EQUAL(put(s, SID_A, 60, 706), 1);  /* the replay writes it, once */
    CU_ASSERT_EQUAL(put(s, SID_B, 0, 707), 1);
    CU_ASSERT_EQUAL(lp_segfile_close(s), 0);

    /* saved state with implausible entries: refused, the rest kept */
    char wm[256];
    snprintf(wm, sizeof(wm), "%s/forge/.state/1.watermarks.json", root);
    FILE *f = fopen(wm, "w");
    fprintf(f,
            "{\"version\":2,\"sources\":{\"%s\":[80,%lld],\"%s\":[-2,%lld],"
            "\"not-a-source\":[5,%lld],\"%s\":[9223372036854775807,%lld]},\"open\":{}}\n",
            SID_A, (long long)(NOW / LP_NS_PER_SEC), SID_B, (long long)(NOW / LP_NS_PER_SEC),
            (long long)(NOW / LP_NS_PER_SEC), "cccccccccccccccccccccccccccccccc",
            (long long)(NOW / LP_NS_PER_SEC));
    fclose(f);
    s = lp_segfile_open(&cfg, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(lp_segfile_watermark(s, SID_A, &found), 80);
    lp_segfile_watermark(s, SID_B, &found);
    CU_ASSERT(!found);
    lp_segfile_watermark(s, "cccccccccccccccccccccccccccccccc", &found);
    CU_ASSERT(!found);
    lp_segfile_abandon(s);
}

static void test_errors(void)
{
    char err[256], longroute[1100];
    memset(longroute, 'r', sizeof(longroute) - 1);
    longroute[sizeof(longroute) - 1] = '\0';
    struct lp_segfile_config cfg = {root, longroute, 0, 0};
    CU_ASSERT_PTR_NULL(lp_segfile_open(&cfg, 0, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too long"));
    struct lp_segfile_config bad = {"/proc/nope", "r", 0, 0};
    CU_ASSERT_PTR_NULL(lp_segfile_open(&bad, 0, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot create"));
    /* a corrupt watermark file is an error, not a silent reset */
    char dir[256], wm[300];
    snprintf(dir, sizeof(dir), "%s/corrupt/.state", root);
    char mk[320];
    snprintf(mk, sizeof(mk), "mkdir -p %s", dir);
    CU_ASSERT_EQUAL(system(mk), 0);
    snprintf(wm, sizeof(wm), "%s/0.watermarks.json", dir);
    FILE *f = fopen(wm, "w");
    fputs("{not json", f);
    fclose(f);
    struct lp_segfile_config c2 = {root, "corrupt", 0, 0};
    CU_ASSERT_PTR_NULL(lp_segfile_open(&c2, 0, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is corrupt"));
}

/* A recovered segment is closed only after the watermarks it raised are
 * saved: when saving fails (a full disk), it stays open and is recovered
 * again, so its lines are never forgotten (found by the chaos suite). */
static void test_recovery_save_fails(void)
{
    struct lp_segfile_config cfg = {root, "nospace", 1 << 20, 3600 * LP_NS_PER_SEC};
    char err[256];
    struct lp_segfile *s = lp_segfile_open(&cfg, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (uint64_t i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(put(s, SID_A, i * 10, (int64_t)(700 + i)), 1);
    CU_ASSERT_EQUAL(lp_segfile_sync(s), 0);
    char open_path[256];
    snprintf(open_path, sizeof(open_path), "%s", lp_segfile_current_path(s));
    lp_segfile_abandon(s); /* a crash; the watermark file says nothing newer */
    char wm[256], tmp[300];
    snprintf(wm, sizeof(wm), "%s/nospace/.state/0.watermarks.json", root);
    CU_ASSERT_EQUAL(unlink(wm), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", wm);
    CU_ASSERT_EQUAL(mkdir(tmp, 0700), 0); /* saving the watermarks fails */
    CU_ASSERT_PTR_NULL(lp_segfile_open(&cfg, 0, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot save watermarks"));
    CU_ASSERT_EQUAL(access(open_path, F_OK), 0); /* still open: recovered again later */
    CU_ASSERT_EQUAL(rmdir(tmp), 0);
    s = lp_segfile_open(&cfg, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(access(open_path, F_OK), -1);
    int found;
    CU_ASSERT_EQUAL(lp_segfile_watermark(s, SID_A, &found), 40);
    for (uint64_t i = 0; i < 5; i++) /* the replay writes nothing */
        CU_ASSERT_EQUAL(put(s, SID_A, i * 10, (int64_t)(700 + i)), 0);
    CU_ASSERT_EQUAL(lp_segfile_close(s), 0);
}

/* After a rollback to the same committed offset, a new segment never takes
 * the name of an existing one or of its archive. */
static void test_unique_names(void)
{
    struct lp_segfile_config cfg = {root, "names", 1 << 20, 3600 * LP_NS_PER_SEC};
    char err[256], p[256];
    snprintf(p, sizeof(p), "%s/names/2026-11-28/07", root);
    CU_ASSERT_EQUAL(lp_mkdirs(p, 0750), 0);
    snprintf(p, sizeof(p), "%s/names/2026-11-28/07/2-40.ndjson.zst", root);
    FILE *f = fopen(p, "w");
    fclose(f);
    snprintf(p, sizeof(p), "%s/names/2026-11-28/07/2-40-1.ndjson", root);
    f = fopen(p, "w");
    fclose(f);
    struct lp_segfile *s = lp_segfile_open(&cfg, 2, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(put(s, SID_B, 1, 40), 1);
    snprintf(p, sizeof(p), "%s/names/2026-11-28/07/2-40-2.ndjson.open", root);
    CU_ASSERT_STRING_EQUAL(lp_segfile_current_path(s), p);
    CU_ASSERT_EQUAL(lp_segfile_close(s), 0);
}

/* One writer per partition store: a second open (in this process or in
 * another one sharing the volume, as the next owner after a revoke) fails
 * until the first closes or abandons its store, or its process dies; the
 * next writer then sees what the first wrote and skips it. */
static void test_one_writer(void)
{
    struct lp_segfile_config cfg = {root, "owner", 1 << 20, 3600 * LP_NS_PER_SEC};
    char err[256];
    struct lp_segfile *a = lp_segfile_open(&cfg, 5, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(put(a, SID_A, 1, 10), 1);
    CU_ASSERT_EQUAL(lp_segfile_sync(a), 0);
    err[0] = 0;
    CU_ASSERT_PTR_NULL(lp_segfile_open(&cfg, 5, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another writer"));
    struct lp_segfile *other = lp_segfile_open(&cfg, 6, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(other); /* partitions do not share the lock */
    lp_segfile_abandon(other);

    /* another process: refused while we hold it */
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* the answer goes through the pipe and the child dies by SIGKILL:
         * under valgrind an exit would report the parent's heap as leaked */
        char e[256];
        char got = lp_segfile_open(&cfg, 5, e, sizeof(e)) ? 'y' : 'n';
        if (write(fds[1], &got, 1) != 1)
            _exit(2);
        raise(SIGKILL);
    }
    char ok = 0;
    CU_ASSERT_EQUAL(read(fds[0], &ok, 1), 1);
    CU_ASSERT_EQUAL(ok, 'n');
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);

    /* the first writer goes on (a slow revoke), then closes */
    CU_ASSERT_EQUAL(put(a, SID_A, 2, 11), 1);
    CU_ASSERT_EQUAL(lp_segfile_close(a), 0);
    struct lp_segfile *b = lp_segfile_open(&cfg, 5, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(put(b, SID_A, 2, 11), 0); /* the replay is skipped */
    CU_ASSERT_EQUAL(put(b, SID_A, 3, 12), 1);

    /* a child that holds the lock and dies: the kernel releases it */
    lp_segfile_abandon(b);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        char e[256];
        struct lp_segfile *c = lp_segfile_open(&cfg, 5, e, sizeof(e));
        char got = c ? 'y' : 'n';
        if (write(fds[1], &got, 1) != 1)
            _exit(2);
        for (;;)
            pause(); /* killed while holding the store */
    }
    ok = 0;
    CU_ASSERT_EQUAL(read(fds[0], &ok, 1), 1);
    CU_ASSERT_EQUAL(ok, 'y');
    CU_ASSERT_PTR_NULL(lp_segfile_open(&cfg, 5, err, sizeof(err)));
    kill(pid, SIGKILL);
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    b = lp_segfile_open(&cfg, 5, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(b);
    lp_segfile_abandon(b);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    root = lp_test_tmpdir("seg");
    static const struct lp_test tests[] = {
        {"write, dedup, roll", test_write_dedup_roll},
        {"crash recovery", test_crash_recovery},
        {"recovery trusts no line", test_recovery_trusts_no_line},
        {"errors", test_errors},
        {"recovery when watermarks cannot be saved", test_recovery_save_fails},
        {"unique segment names", test_unique_names},
        {"one writer per partition store", test_one_writer},
        {NULL, NULL},
    };
    int rc = lp_test_run("segfile", tests);
    return rc;
}
