/* Retention: glob overlap, the planner's rules with a fake clock, index
 * dates from names, policy config errors with FILE:LINE:COL, and whole
 * runs over a temp tree (archive, delete, corrupt archive kept, full
 * archive disk, open segments untouched, the lock, dry run changes
 * nothing). */
#include "archive.h"
#include "indices.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_glob.h"
#include "lp_test.h"
#include "lp_time.h"
#include "plan.h"
#include "retention.h"
#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY (86400LL * LP_NS_PER_SEC)
#define NOW (lp_time_days_from_civil(2026, 11, 28) * DAY + 12 * 3600 * LP_NS_PER_SEC)

static int isect(const char *a, const char *b, char *w)
{
    const char *v[2] = {a, b};
    return lp_glob_intersect(v, 2, w, 256);
}

static void test_glob_intersect(void)
{
    char w[256];
    CU_ASSERT_EQUAL(isect("a/*", "b/*", w), 0);
    CU_ASSERT_EQUAL(isect("a/*", "*/x", w), 1);
    CU_ASSERT_STRING_EQUAL(w, "a/x");
    CU_ASSERT_EQUAL(isect("*/2026-*", "*/2025-*", w), 0); /* '*' stays in a directory */
    CU_ASSERT_EQUAL(isect("**/2026-*", "*/2025-**", w), 1);
    CU_ASSERT_EQUAL(isect("a/*", "a/b/c", w), 0);
    CU_ASSERT_EQUAL(isect("a/**", "a/b/c", w), 1);
    CU_ASSERT_EQUAL(isect("a?b", "a/b", w), 0);
    CU_ASSERT(lp_glob_match("a/**", "a/b/c"));
    CU_ASSERT(lp_glob_match("a/*/c", "a/b/c"));
    CU_ASSERT_FALSE(lp_glob_match("a/*", "a/b/c"));
    CU_ASSERT_FALSE(lp_glob_match("a?b", "a/b"));
    CU_ASSERT(lp_glob_match("a\\*", "a*"));
    CU_ASSERT_FALSE(lp_glob_match("a\\*", "ab"));
    CU_ASSERT(lp_glob_match("x-[0-9][!a]", "x-5b"));
    CU_ASSERT_FALSE(lp_glob_match("x-[0-9][!a]", "x-5a"));
    CU_ASSERT(lp_glob_match("*", ""));
    CU_ASSERT_EQUAL(isect("[0-9]*", "x*", w), 0);
    CU_ASSERT_EQUAL(isect("[!x]*", "x*", w), 0);
    CU_ASSERT_EQUAL(isect("[a-c]b", "?b", w), 1);
    CU_ASSERT_EQUAL(w[1], 'b');
    CU_ASSERT(w[0] >= 'a' && w[0] <= 'c');
    CU_ASSERT_EQUAL(isect("*.ndjson", "*.zst", w), 0);
    CU_ASSERT_EQUAL(isect("a\\*", "a?", w), 1);
    CU_ASSERT_STRING_EQUAL(w, "a*");
    CU_ASSERT_EQUAL(isect("a\\*", "ab", w), 0);
    CU_ASSERT_EQUAL(isect("logs-*", "logs-app-*", w), 1);
    CU_ASSERT_STRING_EQUAL(w, "logs-app-");
    CU_ASSERT_EQUAL(isect("*-2026.*", "*-2025.*", w), 1); /* "-2026.-2025." */
    CU_ASSERT_EQUAL(isect("web-2026.*", "web-2025.*", w), 0);
    const char *three[3] = {"/d/seg/**", "/d/seg/app/**", "/d/seg/web/2026-*"};
    CU_ASSERT_EQUAL(lp_glob_intersect(three, 3, w, sizeof(w)), 0);
    const char *four[4] = {"/d/seg/**", "/d/seg/app/**", "/d/seg/*/2026-11-*", "**.ndjson"};
    CU_ASSERT_EQUAL(lp_glob_intersect(four, 4, w, sizeof(w)), 1);
    CU_ASSERT_STRING_EQUAL(w, "/d/seg/app/2026-11-.ndjson");
    char e[64];
    CU_ASSERT(lp_glob_escape("/a*b[c]?\\", e, sizeof(e)) > 0);
    CU_ASSERT_STRING_EQUAL(e, "/a\\*b\\[c\\]\\?\\\\");
    CU_ASSERT_EQUAL(isect(e, "/a*", w), 1);
    CU_ASSERT_STRING_EQUAL(w, "/a*b[c]?\\");
}

static struct lp_rt_file mk(const char *path, enum lp_rt_kind kind, uint64_t size, int64_t age,
                            int policy)
{
    struct lp_rt_file f = {.path = (char *)path,
                           .rel = (char *)path,
                           .policy = policy,
                           .kind = kind,
                           .size = size,
                           .disk = size,
                           .mtime_ns = NOW - age,
                           .codec = LP_CODEC_ZSTD,
                           .volume = 0};
    return f;
}

static const char *path_of(const struct lp_rt_plan *pl, const struct lp_rt_file *f, size_t i)
{
    return f[pl->a[i].file].path;
}

static void test_plan_age(void)
{
    struct lp_rt_policy p = {.name = "p",
                             .archive_after_ns = 2 * DAY,
                             .delete_after_ns = 10 * DAY,
                             .volume = 0,
                             .archive_volume = 0};
    struct lp_rt_file f[] = {
        mk("s-1d", LP_RT_SEGMENT, 100, 1 * DAY, 0),
        mk("s-3d", LP_RT_SEGMENT, 100, 3 * DAY, 0),
        mk("s-11d", LP_RT_SEGMENT, 100, 11 * DAY, 0),
        mk("a-12d", LP_RT_ARCHIVE, 10, 12 * DAY, 0),
        mk("a-5d", LP_RT_ARCHIVE, 10, 5 * DAY, 0),
        mk("s-2d-exactly", LP_RT_SEGMENT, 100, 2 * DAY, 0),
        mk("s-just-under", LP_RT_SEGMENT, 100, 2 * DAY - 1, 0),
    };
    struct lp_rt_volume v = {1ULL << 40};
    struct lp_rt_plan pl = {0};
    lp_rt_plan(&p, 1, f, 7, &v, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 4);
    /* oldest first */
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 0), "a-12d");
    CU_ASSERT_EQUAL(pl.a[0].act, LP_RT_DO_DELETE);
    CU_ASSERT_EQUAL(pl.a[0].why, LP_RT_WHY_DELETE_AFTER);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 1), "s-11d"); /* past both: deleted, not archived */
    CU_ASSERT_EQUAL(pl.a[1].act, LP_RT_DO_DELETE);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 2), "s-3d");
    CU_ASSERT_EQUAL(pl.a[2].act, LP_RT_DO_ARCHIVE);
    CU_ASSERT_EQUAL(pl.a[2].why, LP_RT_WHY_ARCHIVE_AFTER);
    CU_ASSERT_EQUAL(pl.a[2].est_out, 0); /* no archive tells the ratio */
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 3), "s-2d-exactly");
    lp_rt_plan_release(&pl);

    /* without archiving, delete_after applies to segments */
    struct lp_rt_policy d = {.name = "d", .delete_after_ns = 3 * DAY};
    struct lp_rt_file g[] = {mk("x", LP_RT_SEGMENT, 1, 4 * DAY, 0),
                             mk("y", LP_RT_SEGMENT, 1, 2 * DAY, 0)};
    lp_rt_plan(&d, 1, g, 2, &v, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 1);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, g, 0), "x");
    lp_rt_plan_release(&pl);

    /* the age phase alone plans no size rule */
    struct lp_rt_policy s = {.name = "s", .max_total_bytes = 1};
    lp_rt_plan(&s, 1, g, 2, &v, 1, NOW, LP_RT_PHASE_AGE, &pl);
    CU_ASSERT_EQUAL(pl.n, 0);
    lp_rt_plan_release(&pl);
}

static void test_plan_size(void)
{
    struct lp_rt_volume v = {1ULL << 40};
    struct lp_rt_plan pl = {0};
    /* four 50-byte segments, cap 100: the two oldest go */
    struct lp_rt_policy p = {.name = "p", .max_total_bytes = 100};
    struct lp_rt_file f[] = {
        mk("d1", LP_RT_SEGMENT, 50, 1 * DAY, 0), mk("d3", LP_RT_SEGMENT, 50, 3 * DAY, 0),
        mk("d2", LP_RT_SEGMENT, 50, 2 * DAY, 0), mk("d4", LP_RT_SEGMENT, 50, 4 * DAY, 0)};
    lp_rt_plan(&p, 1, f, 4, &v, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 2);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 0), "d4");
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 1), "d3");
    CU_ASSERT_EQUAL(pl.a[0].why, LP_RT_WHY_MAX_TOTAL);
    lp_rt_plan_release(&pl);

    /* exactly at the cap: nothing */
    p.max_total_bytes = 200;
    lp_rt_plan(&p, 1, f, 4, &v, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL(pl.n, 0);
    lp_rt_plan_release(&pl);

    /* archives-to-be count at the policy's ratio (an archive of 1000
     * content bytes in 100): a 1000-byte segment becomes ~101 */
    struct lp_rt_policy q = {.name = "q", .archive_after_ns = DAY, .max_total_bytes = 250};
    struct lp_rt_file g[] = {mk("old.zst", LP_RT_ARCHIVE, 100, 5 * DAY, 0),
                             mk("seg", LP_RT_SEGMENT, 1000, 2 * DAY, 0)};
    g[0].orig_size = 1000;
    lp_rt_plan(&q, 1, g, 2, &v, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 1);
    CU_ASSERT_EQUAL(pl.a[0].act, LP_RT_DO_ARCHIVE);
    CU_ASSERT_EQUAL(pl.a[0].est_out, 101);
    lp_rt_plan_release(&pl);
    /* a tighter cap deletes the old archive first, then turns the archive
     * of the segment into its deletion (not both) */
    q.max_total_bytes = 50;
    lp_rt_plan(&q, 1, g, 2, &v, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 2);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, g, 0), "old.zst");
    CU_ASSERT_STRING_EQUAL(path_of(&pl, g, 1), "seg");
    CU_ASSERT_EQUAL(pl.a[0].act, LP_RT_DO_DELETE);
    CU_ASSERT_EQUAL(pl.a[1].act, LP_RT_DO_DELETE);
    CU_ASSERT_EQUAL(pl.a[1].why, LP_RT_WHY_MAX_TOTAL);
    lp_rt_plan_release(&pl);
}

static void test_plan_free(void)
{
    struct lp_rt_plan pl = {0};
    /* 10 bytes free, 100 wanted, 40 per file: three oldest go */
    struct lp_rt_volume v[2] = {{10}, {1000}};
    struct lp_rt_policy p = {.name = "p", .min_free_bytes = 100, .volume = 0, .archive_volume = 0};
    struct lp_rt_file f[] = {
        mk("a", LP_RT_SEGMENT, 40, 5 * DAY, 0), mk("b", LP_RT_SEGMENT, 40, 4 * DAY, 0),
        mk("c", LP_RT_SEGMENT, 40, 3 * DAY, 0), mk("d", LP_RT_SEGMENT, 40, 2 * DAY, 0),
        mk("other-vol", LP_RT_ARCHIVE, 40, 9 * DAY, 0)};
    f[4].volume = 1; /* on another volume: deleting it frees nothing here */
    lp_rt_plan(&p, 1, f, 5, v, 2, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 3);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 0), "a");
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 2), "c");
    CU_ASSERT_EQUAL(pl.a[2].why, LP_RT_WHY_MIN_FREE);
    CU_ASSERT_EQUAL(v[0].free_bytes, 130);
    lp_rt_plan_release(&pl);

    /* deletions by age count as freed before emergency pruning starts */
    struct lp_rt_volume w = {10};
    struct lp_rt_policy q = {.name = "q", .delete_after_ns = 4 * DAY + 1, .min_free_bytes = 80};
    struct lp_rt_file g[] = {mk("a", LP_RT_SEGMENT, 40, 5 * DAY, 0),
                             mk("b", LP_RT_SEGMENT, 40, 4 * DAY, 0),
                             mk("c", LP_RT_SEGMENT, 40, 3 * DAY, 0)};
    lp_rt_plan(&q, 1, g, 3, &w, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 2);
    CU_ASSERT_EQUAL(pl.a[0].why, LP_RT_WHY_DELETE_AFTER);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, g, 1), "b");
    CU_ASSERT_EQUAL(pl.a[1].why, LP_RT_WHY_MIN_FREE);
    lp_rt_plan_release(&pl);
}

static void test_plan_policies_apart(void)
{
    /* two policies: each applies its own rules to its own files */
    struct lp_rt_policy p[2] = {{.name = "a", .delete_after_ns = DAY},
                                {.name = "b", .delete_after_ns = 10 * DAY}};
    struct lp_rt_file f[] = {mk("b-5d", LP_RT_SEGMENT, 1, 5 * DAY, 1),
                             mk("a-5d", LP_RT_SEGMENT, 1, 5 * DAY, 0),
                             mk("a-0d", LP_RT_SEGMENT, 1, 0, 0)};
    struct lp_rt_volume v = {1 << 30};
    struct lp_rt_plan pl = {0};
    lp_rt_plan(p, 2, f, 3, &v, 1, NOW, LP_RT_PHASE_ALL, &pl);
    CU_ASSERT_EQUAL_FATAL(pl.n, 1);
    CU_ASSERT_STRING_EQUAL(path_of(&pl, f, 0), "a-5d");
    CU_ASSERT_EQUAL(pl.a[0].policy, 0);
    lp_rt_plan_release(&pl);
}

static void test_index_name_dates(void)
{
    int64_t d1102 = lp_time_days_from_civil(2026, 11, 2) * DAY;
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-2026.11.01"), d1102);
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-app-2026-11-01"), d1102);
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-2026.11.01.13"),
                    d1102 - DAY + 14 * 3600 * LP_NS_PER_SEC);
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-2024.02.29"),
                    lp_time_days_from_civil(2024, 3, 1) * DAY);
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-2026.02.29"), 0); /* not a leap year */
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-2026.13.01"), 0);
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-20261101"), 0);
    CU_ASSERT_EQUAL(lp_rt_index_name_end("logs-2026.11-01"), 0); /* mixed separators */
    CU_ASSERT_EQUAL(lp_rt_index_name_end(".ds-logs-000001"), 0);
    CU_ASSERT_EQUAL(lp_rt_index_name_end("v12026.11.01"), 0); /* digits run on */
}

/* ---- config ---- */

#define load_errors lp_test_config_errors

static void test_config_errors(void)
{
    char *e = load_errors("retention:\n"
                          "  policies:\n"
                          "    - name: app\n"
                          "      path: /data/seg\n"
                          "      routes: [app, web]\n"
                          "      archive_after: 1d\n"
                          "    - name: web-old\n"
                          "      path: /data/seg/\n"
                          "      glob: \"web/2026-*\"\n"
                          "      delete_after: 2d\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "test.yaml:7:7: retention.policies[1] 'web-old' overlaps "
                                     "policy 'app' (test.yaml:3:7): both select e.g. "
                                     "'/data/seg/web/2026-'"));
    free(e);
    /* the same routes kept apart by glob: fine */
    e = load_errors("retention:\n"
                    "  policies:\n"
                    "    - {name: new, path: /s, glob: \"*/2026-*\", archive_after: 1d}\n"
                    "    - {name: old, path: /s, glob: \"*/2025-*\", delete_after: 1d}\n"
                    "    - {name: db, path: /s2, routes: [db], max_total_bytes: 1GiB}\n"
                    "    - {name: dbarch, path: /s2, routes: [dbx], archive_after: 1h,\n"
                    "       archive_root: /arch/dbx, archive_codec: gzip, archive_level: 9}\n");
    if (*e)
        fprintf(stderr, "unexpected: %s\n", e);
    CU_ASSERT_STRING_EQUAL(e, "");
    free(e);
    e = load_errors("retention:\n"
                    "  policies:\n"
                    "    - name: a\n"
                    "      path: /s\n"
                    "      delete_after: 1d\n"
                    "      archive_after: 2d\n"
                    "    - name: b\n"
                    "      output: nosuch\n"
                    "      archive_codec: gzip\n"
                    "      max_total_bytes: 1GiB\n"
                    "    - {name: c, path: /t}\n"
                    "    - {name: d, path: /u, archive_after: 1d, archive_root: /u/arch}\n"
                    "    - {name: a, path: /v, output: files, delete_after: 1d}\n"
                    "    - {name: e, path: /w, archive_after: 1d, archive_codec: gzip, "
                    "archive_level: 12}\n"
                    "  elasticsearch:\n"
                    "    - {name: i1, url: http://h:9200, index_pattern: \"logs-*\", "
                    "delete_after: 7d}\n"
                    "    - {name: i2, url: \"http://h:9200/\", index_pattern: \"logs-app-*\", "
                    "delete_after: 3d}\n"
                    "    - {name: i3, url: ftp://h, index_pattern: \"-x,_all\"}\n");
    static const char *const want[] = {
        "test.yaml:5:21: retention.policies[0]: delete_after must be longer than archive_after",
        "test.yaml:8:15: retention.policies[1]: no aggregator output of type file or s3 named "
        "'nosuch'",
        "test.yaml:9:22: retention.policies[1]: archive_codec without archive_after",
        "test.yaml:11:7: retention.policies[2]: does nothing",
        "retention.policies[3]: archive_root lies inside the policy's own root",
        "test.yaml:13:14: retention.policies[4]: policy 'a' is defined twice",
        "test.yaml:13:7: retention.policies[4]: needs exactly one of output",
        "retention.policies[5]: gzip levels are 1-9",
        "retention.elasticsearch[1]: index_pattern overlaps policy 'i1' (test.yaml:16:7) on the "
        "same cluster: both select e.g. 'logs-app-'",
        "retention.elasticsearch[2]: needs a url starting with http:// or https://",
        "retention.elasticsearch[2]: needs delete_after",
        "retention.elasticsearch[2]: '-x' is not an index name",
        "retention.elasticsearch[2]: '_all' is not an index name",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        if (!strstr(e, want[i]))
            fprintf(stderr, "missing: %s\nin:\n%s\n", want[i], e);
        CU_ASSERT_PTR_NOT_NULL(strstr(e, want[i]));
    }
    free(e);
    /* output: resolves to the aggregator's file output */
    const char *names[] = {"ok.yaml"};
    const char *texts[] = {"aggregator:\n"
                           "  outputs:\n"
                           "    - {name: es, type: elasticsearch, url: \"http://x:9200\"}\n"
                           "    - {name: arch, type: file, path: /data/segments}\n"
                           "retention:\n"
                           "  policies:\n"
                           "    - {name: p, output: arch, archive_after: 1d}\n"};
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(lp_config_policy_root(c, &c->retention.policies[0]), "/data/segments");
    lp_config_free(c);
    lp_buf_release(&errs);
    /* bucket policies: what applies to disks is refused, archiving needs a
     * destination, two policies on the same prefix overlap */
    static const char s3out[] = "aggregator:\n"
                                "  outputs:\n"
                                "    - {name: b, type: s3, bucket: logs, prefix: live,\n"
                                "       access_key_id: k, secret_access_key: s}\n"
                                "    - {name: f, type: file, path: /seg}\n";
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "%sretention:\n"
             "  policies:\n"
             "    - {name: b1, output: b, routes: [app], archive_after: 7d, min_free_bytes: 1GiB,\n"
             "       archive_root: /x, archive_codec: gzip}\n"
             "    - {name: b2, output: b, routes: [web], archive_after: 7d}\n"
             "    - {name: b3, output: b, routes: [db], archive_after: 1d,\n"
             "       archive_prefix: live/old}\n"
             "    - {name: f1, output: f, archive_after: 1d, archive_storage_class: GLACIER}\n"
             "    - {name: b4, output: b, routes: [app, x], delete_after: 1d,\n"
             "       archive_bucket: other}\n",
             s3out);
    e = load_errors(yaml);
    static const char *const want_b[] = {
        "test.yaml:8:79: retention.policies[0]: min_free_bytes is for local segments; policy 'b1' "
        "covers the bucket of s3 output 'b'",
        "test.yaml:9:22: retention.policies[0]: archive_root is for local segments",
        "test.yaml:9:41: retention.policies[0]: archive_codec is for local segments",
        "test.yaml:10:59: retention.policies[1]: archiving an object needs archive_prefix (move "
        "it) "
        "or archive_storage_class (change its class)",
        "test.yaml:12:24: retention.policies[2]: archive_prefix 'live/old' overlaps the output's "
        "prefix 'live'",
        "test.yaml:13:71: retention.policies[3]: archive_storage_class is for bucket retention",
        "test.yaml:15:24: retention.policies[4]: archive_bucket without archive_after",
        "retention.policies[4] 'b4' overlaps policy 'b1'",
    };
    for (size_t i = 0; i < sizeof(want_b) / sizeof(*want_b); i++) {
        if (!strstr(e, want_b[i]))
            fprintf(stderr, "missing: %s\nin:\n%s\n", want_b[i], e);
        CU_ASSERT_PTR_NOT_NULL(strstr(e, want_b[i]));
    }
    free(e);
    snprintf(yaml, sizeof(yaml),
             "%sretention:\n"
             "  policies:\n"
             "    - {name: b1, output: b, routes: [app], archive_after: 7d, delete_after: 90d,\n"
             "       archive_prefix: cold, archive_bucket: logs-cold,\n"
             "       archive_storage_class: GLACIER_IR, max_total_bytes: 1TiB}\n"
             "    - {name: b2, output: b, routes: [web], archive_after: 2d,\n"
             "       archive_storage_class: STANDARD_IA}\n"
             "    - {name: f1, output: f, archive_after: 1d}\n",
             s3out);
    e = load_errors(yaml);
    if (*e)
        fprintf(stderr, "unexpected: %s\n", e);
    CU_ASSERT_STRING_EQUAL(e, "");
    free(e);
}

/* ---- whole runs over a temp tree ---- */

static const char *root;

static void write_file(const char *rel, int lines, int64_t age_ns)
{
    char p[512], dir[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    snprintf(dir, sizeof(dir), "%s", p);
    *strrchr(dir, '/') = '\0';
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    FILE *f = fopen(p, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < lines; i++)
        fprintf(f, "{\"message\":\"%s line %d\"}\n", rel, i);
    fclose(f);
    int64_t t = lp_time_real_ns() - age_ns;
    struct timespec ts[2] = {{t / LP_NS_PER_SEC, t % LP_NS_PER_SEC},
                             {t / LP_NS_PER_SEC, t % LP_NS_PER_SEC}};
    CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static int exists(const char *rel)
{
    char p[512];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    return stat(p, &sb) == 0;
}

#define config lp_test_config

static int run(struct lp_config *c, int dry, char **report)
{
    char err[256];
    struct lp_retention *r = lp_retention_new(c, NULL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    struct lp_rt_opts o = {.dry_run = dry, .json = 1, .report = out};
    int rc = lp_retention_run(r, &o);
    fclose(out);
    lp_retention_free(r);
    if (report)
        *report = buf;
    else
        free(buf);
    return rc;
}

/* Only index policies: no file policy at all (the daemon's set-up and
 * teardown read none; ASan caught a read past the roots once). */
static void test_index_only(void)
{
    struct lp_config *c = config("retention:\n"
                                 "  elasticsearch:\n"
                                 "    - {name: dated, url: \"http://127.0.0.1:9\", "
                                 "index_pattern: \"x-*\", delete_after: 10d}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->retention.n_policies, 0);
    char err[256];
    struct lp_retention *r = lp_retention_new(c, NULL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(r);
    lp_retention_free(r);
    lp_config_free(c);
}

static int nospc(void)
{
    return -ENOSPC;
}

static void test_runs(void)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "retention:\n"
             "  audit_log: %s/audit.ndjson\n"
             "  policies:\n"
             "    - {name: app, path: %s/seg, routes: [app], archive_after: 2d, "
             "delete_after: 10d}\n"
             "    - {name: web, path: %s/seg, routes: [web], delete_after: 1d}\n",
             root, root, root);
    struct lp_config *c = config(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    write_file("seg/app/d1/0-0.ndjson", 1000, 3 * DAY);
    write_file("seg/app/d1/0-1000.ndjson", 1000, 11 * DAY);
    write_file("seg/app/d1/0-2000.ndjson", 1000, 1 * DAY);
    write_file("seg/app/d1/0-3000.ndjson.open", 1000, 30 * DAY); /* never touched */
    write_file("seg/web/d1/1-0.ndjson", 10, 2 * DAY);
    write_file("seg/web/d1/1-10.ndjson", 10, 0);
    write_file("seg/other/d1/2-0.ndjson", 10, 90 * DAY);      /* no policy */
    write_file("seg/app/d1/0-9.ndjson.zst.archiving", 10, 0); /* crash leftover */
    uint64_t h0, n0;
    char p[512];
    snprintf(p, sizeof(p), "%s/seg/app/d1/0-0.ndjson", root);
    CU_ASSERT_EQUAL(lp_archive_hash_file(p, &h0, &n0), 0);

    /* a dry run changes nothing */
    char *rep;
    CU_ASSERT_EQUAL(run(c, 1, &rep), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "\"dry_run\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "\"action\":\"archive\",\"result\":\"planned\""));
    CU_ASSERT_PTR_NULL(strstr(rep, "0-3000"));
    CU_ASSERT_PTR_NULL(strstr(rep, "other"));
    free(rep);
    CU_ASSERT(exists("seg/app/d1/0-0.ndjson") && exists("seg/app/d1/0-1000.ndjson"));
    CU_ASSERT(exists("seg/app/d1/0-9.ndjson.zst.archiving"));
    CU_ASSERT_FALSE(exists("audit.ndjson"));

    CU_ASSERT_EQUAL(run(c, 0, &rep), 0);
    free(rep);
    CU_ASSERT_FALSE(exists("seg/app/d1/0-0.ndjson"));
    CU_ASSERT(exists("seg/app/d1/0-0.ndjson.zst"));
    CU_ASSERT_FALSE(exists("seg/app/d1/0-1000.ndjson"));
    CU_ASSERT_FALSE(exists("seg/app/d1/0-1000.ndjson.zst"));
    CU_ASSERT(exists("seg/app/d1/0-2000.ndjson"));
    CU_ASSERT(exists("seg/app/d1/0-3000.ndjson.open"));
    CU_ASSERT_FALSE(exists("seg/web/d1/1-0.ndjson"));
    CU_ASSERT(exists("seg/web/d1/1-10.ndjson"));
    CU_ASSERT(exists("seg/other/d1/2-0.ndjson"));
    CU_ASSERT_FALSE(exists("seg/app/d1/0-9.ndjson.zst.archiving"));
    uint64_t h1, n1;
    snprintf(p, sizeof(p), "%s/seg/app/d1/0-0.ndjson.zst", root);
    CU_ASSERT_EQUAL(lp_archive_verify(p, LP_CODEC_ZSTD, &h1, &n1), 0);
    CU_ASSERT_EQUAL(h1, h0);
    CU_ASSERT_EQUAL(n1, n0);
    uint64_t cs;
    CU_ASSERT_EQUAL(lp_archive_content_size(p, LP_CODEC_ZSTD, &cs), 0);
    CU_ASSERT_EQUAL(cs, n0);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(p, &sb), 0);
    CU_ASSERT(lp_time_real_ns() - ((int64_t)sb.st_mtim.tv_sec * LP_NS_PER_SEC) >
              3 * DAY - 60 * LP_NS_PER_SEC);
    /* the audit log has one line per action */
    snprintf(p, sizeof(p), "%s/audit.ndjson", root);
    FILE *a = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    char line[2048];
    int archives = 0, deletes = 0, cleanups = 0;
    while (fgets(line, sizeof(line), a)) {
        archives += strstr(line, "\"action\":\"archive\",\"result\":\"ok\"") != NULL;
        deletes += strstr(line, "\"action\":\"delete\",\"result\":\"ok\"") != NULL;
        cleanups += strstr(line, "\"action\":\"cleanup\"") != NULL;
    }
    fclose(a);
    CU_ASSERT_EQUAL(archives, 1);
    CU_ASSERT_EQUAL(deletes, 2);
    CU_ASSERT_EQUAL(cleanups, 1);

    /* a second run has nothing to do (idempotent) */
    CU_ASSERT_EQUAL(run(c, 0, &rep), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "\"actions\":[]"));
    free(rep);

    /* the lock: a held audit log makes a run fail without doing anything */
    int fd = open(p, O_RDONLY);
    CU_ASSERT_EQUAL(flock(fd, LOCK_EX), 0);
    write_file("seg/web/d1/1-20.ndjson", 10, 5 * DAY);
    CU_ASSERT_EQUAL(run(c, 0, NULL), 1);
    CU_ASSERT(exists("seg/web/d1/1-20.ndjson"));
    close(fd);
    CU_ASSERT_EQUAL(run(c, 0, NULL), 0);
    CU_ASSERT_FALSE(exists("seg/web/d1/1-20.ndjson"));
    lp_config_free(c);
}

/* The (action, target) pairs of a JSON report's actions or of audit lines,
 * one per line, cleanups left out. */
static void steps_of(const char *text, struct lp_buf *out)
{
    for (const char *p = text; (p = strstr(p, "\"action\":\"")) != NULL;) {
        p += 10;
        const char *e = strchr(p, '"');
        const char *t = strstr(p, "\"target\":\"");
        if (!e || !t)
            break;
        t += 10;
        const char *te = strchr(t, '"');
        if (!te)
            break;
        if (strncmp(p, "cleanup", 7) != 0)
            lp_buf_appendf(out, "%.*s %.*s\n", (int)(e - p), p, (int)(te - t), t);
        p = te;
    }
}

/* max_total_bytes deletes what was archived, never a segment that was not
 * (unless prune_unarchived), and a dry run shows exactly the steps the run
 * then takes: archive by age first, then the archive deleted by size. */
static void test_dry_run_is_the_run(void)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "retention:\n"
             "  audit_log: %s/audit3.ndjson\n"
             "  policies:\n"
             "    - {name: capped, path: %s/seg3, routes: [a], archive_after: 1d,\n"
             "       max_total_bytes: 1}\n"
             "    - {name: pruned, path: %s/seg3, routes: [b], archive_after: 1d,\n"
             "       max_total_bytes: 1, prune_unarchived: true}\n",
             root, root, root);
    struct lp_config *c = config(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    write_file("seg3/a/d/0-0.ndjson", 2000, 5 * DAY);    /* archived, then over the cap */
    write_file("seg3/a/d/0-2000.ndjson", 2000, 3 * DAY); /* the same */
    write_file("seg3/a/d/0-4000.ndjson", 2000, 0);       /* not archived yet: kept */
    write_file("seg3/b/d/0-0.ndjson", 2000, 5 * DAY);
    write_file("seg3/b/d/0-2000.ndjson", 2000, 0); /* prune_unarchived: deleted */
    char *dry, *rep;
    CU_ASSERT_EQUAL(run(c, 1, &dry), 0);
    CU_ASSERT_EQUAL(run(c, 0, &rep), 0);
    char p[512];
    snprintf(p, sizeof(p), "%s/audit3.ndjson", root);
    FILE *af = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(af);
    char *audit = NULL;
    size_t alen = 0;
    FILE *mem = open_memstream(&audit, &alen);
    for (int ch; (ch = fgetc(af)) != EOF;)
        fputc(ch, mem);
    fclose(mem);
    fclose(af);
    struct lp_buf a = LP_BUF_INIT, b = LP_BUF_INIT;
    steps_of(dry, &a);
    steps_of(audit, &b);
    CU_ASSERT_STRING_EQUAL(a.data, b.data);
    if (!a.data || !b.data || strcmp(a.data, b.data))
        fprintf(stderr, "dry run:\n%s\nrun:\n%s\n", a.data, b.data);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.data, "archive "));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.data, "0-0.ndjson.zst\n"));
    CU_ASSERT(exists("seg3/a/d/0-4000.ndjson"));        /* never archived: kept */
    CU_ASSERT_FALSE(exists("seg3/a/d/0-0.ndjson.zst")); /* archived, then over the cap */
    CU_ASSERT_FALSE(exists("seg3/a/d/0-2000.ndjson.zst"));
    CU_ASSERT_FALSE(exists("seg3/b/d/0-2000.ndjson")); /* prune_unarchived */
    lp_buf_release(&a);
    lp_buf_release(&b);
    free(dry);
    free(rep);
    free(audit);
    lp_config_free(c);
}

static void test_corrupt_and_full(void)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "retention:\n"
             "  audit_log: %s/audit2.ndjson\n"
             "  policies:\n"
             "    - {name: x, path: %s/seg2, archive_after: 1d, delete_after: 5d}\n",
             root, root);
    struct lp_config *c = config(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* an archive past delete_after that does not decompress: kept, reported */
    write_file("seg2/r/d/bad.ndjson.zst", 20, 6 * DAY);
    write_file("seg2/r/d/s1.ndjson", 500, 2 * DAY);
    write_file("seg2/r/d/s2.ndjson", 500, 2 * DAY);
    lp_archive_write_hook = nospc;
    char *rep;
    CU_ASSERT_EQUAL(run(c, 0, &rep), 1);
    lp_archive_write_hook = NULL;
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "archive does not decompress: kept for inspection"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "No space left on device"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "the archive disk was full earlier in this run"));
    free(rep);
    CU_ASSERT(exists("seg2/r/d/bad.ndjson.zst"));
    CU_ASSERT(exists("seg2/r/d/s1.ndjson") && exists("seg2/r/d/s2.ndjson"));
    CU_ASSERT_FALSE(exists("seg2/r/d/s1.ndjson.zst.archiving"));
    CU_ASSERT_FALSE(exists("seg2/r/d/s1.ndjson.zst"));
    /* space again: archived; the corrupt archive still kept */
    CU_ASSERT_EQUAL(run(c, 0, NULL), 1);
    CU_ASSERT(exists("seg2/r/d/s1.ndjson.zst") && exists("seg2/r/d/s2.ndjson.zst"));
    CU_ASSERT(exists("seg2/r/d/bad.ndjson.zst"));
    lp_config_free(c);
}

/* An unreadable directory is reported and the rest proceeds (root reads
 * everything: then there is nothing to show). */
static void test_unreadable(void)
{
    if (geteuid() == 0) {
        fprintf(stderr, "(unreadable: skipped as root, permissions do not apply)\n");
        return;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "retention:\n  audit_log: %s/audit3.ndjson\n  policies:\n"
             "    - {name: u, path: %s/seg3, delete_after: 1d}\n",
             root, root);
    struct lp_config *c = config(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    write_file("seg3/a/locked/x.ndjson", 1, 5 * DAY);
    write_file("seg3/b/y.ndjson", 1, 5 * DAY);
    char p[512];
    snprintf(p, sizeof(p), "%s/seg3/a/locked", root);
    chmod(p, 0);
    char *rep;
    CU_ASSERT_EQUAL(run(c, 0, &rep), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "\"action\":\"skip\",\"result\":\"error\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(rep, "Permission denied"));
    free(rep);
    CU_ASSERT_FALSE(exists("seg3/b/y.ndjson"));
    chmod(p, 0755);
    CU_ASSERT(exists("seg3/a/locked/x.ndjson"));
    lp_config_free(c);
}

static void test_scan_select(void)
{
    char *const routes[] = {"app"};
    struct lp_rt_select s = {routes, 1, "*/2026-11-*"};
    struct lp_rt_select deep = {NULL, 0, "**/0-*.ndjson"};
    CU_ASSERT(lp_rt_selected(&deep, "app/2026-11-28/10/0-0.ndjson"));
    CU_ASSERT_FALSE(lp_rt_selected(&deep, "app/2026-11-28/10/1-0.ndjson"));
    CU_ASSERT(lp_rt_selected(&s, "app/2026-11-28/10/0-0.ndjson"));
    CU_ASSERT_FALSE(lp_rt_selected(&s, "app/2026-10-28/10/0-0.ndjson"));
    CU_ASSERT_FALSE(lp_rt_selected(&s, "web/2026-11-28/10/0-0.ndjson"));
    CU_ASSERT_FALSE(lp_rt_selected(&s, "app")); /* a file named like the route */
    struct lp_rt_select all = {NULL, 0, NULL};
    CU_ASSERT(lp_rt_selected(&all, "x.ndjson"));
}

int main(void)
{
    root = lp_test_tmpdir("retention");
    static const struct lp_test tests[] = {
        {"glob_intersect", test_glob_intersect},
        {"plan_age", test_plan_age},
        {"plan_size", test_plan_size},
        {"plan_free", test_plan_free},
        {"plan_policies_apart", test_plan_policies_apart},
        {"index_name_dates", test_index_name_dates},
        {"config_errors", test_config_errors},
        {"scan_select", test_scan_select},
        {"runs", test_runs},
        {"a dry run is the run; a cap keeps unarchived segments", test_dry_run_is_the_run},
        {"corrupt_and_full", test_corrupt_and_full},
        {"unreadable", test_unreadable},
        {"index_only", test_index_only},
        {NULL, NULL},
    };
    int rc = lp_test_run("retention", tests);
    return rc;
}
