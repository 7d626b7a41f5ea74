/* The output interface (outputs/lp_output.h): the registry against the
 * config's type list, and the file and stdout outputs driven through their
 * ops tables as the engine drives them (lanes, partitions, replays, a
 * failed write, sync and reset). */
#include "lp_config.h"
#include "lp_metrics.h"
#include "lp_output.h"
#include "lp_test.h"
#include "lp_time.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root;
static const int64_t NOW = 1795850460LL * 1000000000LL; /* 2026-11-28T07:21:00Z */
#define SID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void test_registry_matches_config(void)
{
    char types[] = LP_CONFIG_OUTPUT_TYPES;
    size_t n_types = 0;
    for (char *save = NULL, *t = strtok_r(types, "|", &save); t; t = strtok_r(NULL, "|", &save)) {
        const struct lp_output_ops *ops = lp_output_find(t);
        CU_ASSERT_PTR_NOT_NULL(ops);
        if (ops)
            CU_ASSERT_STRING_EQUAL(ops->name, t);
        n_types++;
    }
    size_t n_reg = 0;
    for (const struct lp_output_ops *const *r = lp_output_registry; *r; r++, n_reg++) {
        const struct lp_output_ops *ops = *r;
        CU_ASSERT_PTR_NOT_NULL(strstr("|" LP_CONFIG_OUTPUT_TYPES "|", ops->name));
        CU_ASSERT_PTR_NOT_NULL(ops->create);
        CU_ASSERT_PTR_NOT_NULL(ops->submit);
        CU_ASSERT_PTR_NOT_NULL(ops->close);
        CU_ASSERT_EQUAL(ops->lane_new == NULL, ops->lane_free == NULL);
        if (ops->flags & LP_OUTPUT_SYNCED)
            CU_ASSERT_PTR_NOT_NULL(ops->sync);
    }
    CU_ASSERT_EQUAL(n_reg, n_types);
    CU_ASSERT_PTR_NULL(lp_output_find("nope"));
    CU_ASSERT_PTR_NULL(lp_output_find(NULL));
    CU_ASSERT_PTR_NULL(lp_output_find("fil"));
}

static struct lp_output_doc doc(const char *route, int32_t partition, uint64_t off, char *buf,
                                size_t cap)
{
    int n = snprintf(buf, cap, "{\"message\":\"m %llu\",\"log\":{\"offset\":%llu}}",
                     (unsigned long long)off, (unsigned long long)off);
    return (struct lp_output_doc){.partition = partition,
                                  .kafka_offset = (int64_t)off + 1000,
                                  .route = route,
                                  .source_id = SID,
                                  .offset = off,
                                  .id = "0123456789abcdef0123456789abcdef",
                                  .text = buf,
                                  .len = (size_t)n,
                                  .ts_ns = NOW,
                                  .now_ns = NOW};
}

/* Lines in the closed (*.ndjson) segments under dir, recursively. */
static size_t closed_lines(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st))
            continue;
        if (S_ISDIR(st.st_mode)) {
            n += closed_lines(p);
            continue;
        }
        size_t l = strlen(e->d_name);
        if (l < 7 || strcmp(e->d_name + l - 7, ".ndjson") != 0)
            continue;
        FILE *f = fopen(p, "r");
        for (int c; f && (c = fgetc(f)) != EOF;)
            n += c == '\n';
        if (f)
            fclose(f);
    }
    closedir(d);
    return n;
}

static uint64_t counter(struct lp_metrics *m, const char *name, const char *labels)
{
    return atomic_load(&lp_metrics_counter(m, name, "", labels)->v);
}

static void test_file_output(void)
{
    struct lp_metrics *m = lp_metrics_new();
    struct lp_config_output cfg = {.name = "files",
                                   .type = "file",
                                   .path = (char *)root,
                                   .max_segment_bytes = 1 << 20,
                                   .max_segment_age_ms = 3600 * 1000};
    const char *routes[] = {"app", "default"};
    struct lp_output_env env = {.topic = "logs", .metrics = m, .routes = routes, .n_routes = 2};
    char err[256] = "";
    const struct lp_output_ops *ops = lp_output_find("file");
    CU_ASSERT_FATAL(ops && (ops->flags & LP_OUTPUT_SYNCED));
    struct lp_output *o = ops->create(&cfg, &env, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_EQUAL(o->ops, ops);
    CU_ASSERT_STRING_EQUAL(o->name, "files");
    void *lane = ops->lane_new(o);
    ops->partition(o, lane, 3, LP_OUTPUT_OPEN);
    /* every route of the output has its store once the partition opens */
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/app", root);
    struct stat st;
    CU_ASSERT_EQUAL(stat(dir, &st), 0);
    snprintf(dir, sizeof(dir), "%s/default", root);
    CU_ASSERT_EQUAL(stat(dir, &st), 0);

    char buf[256];
    struct lp_output_doc d;
    for (uint64_t off = 0; off < 300; off += 100) {
        d = doc("app", 3, off, buf, sizeof(buf));
        CU_ASSERT_EQUAL(ops->submit(o, lane, &d, 0), LP_OUTPUT_OK);
    }
    d = doc("default", 3, 0, buf, sizeof(buf));
    CU_ASSERT_EQUAL(ops->submit(o, lane, &d, 0), LP_OUTPUT_OK);
    /* a replay of what the files hold is skipped and counted */
    d = doc("app", 3, 100, buf, sizeof(buf));
    CU_ASSERT_EQUAL(ops->submit(o, lane, &d, 1), LP_OUTPUT_SKIPPED);
    CU_ASSERT_EQUAL(counter(m, "logpipe_aggregator_file_replays_skipped_total", "output=\"files\""),
                    1);
    CU_ASSERT_EQUAL(ops->sync(o, lane), 0);
    CU_ASSERT_EQUAL(closed_lines(root), 0); /* synced, still .open */

    /* a write that fails breaks the lane: every write and the sync fail
     * until the worker resets it; after the reset the lines go again */
    char app[256], moved[256];
    snprintf(app, sizeof(app), "%s/app", root);
    snprintf(moved, sizeof(moved), "%s/app.away", root);
    ops->partition(o, lane, 3, LP_OUTPUT_CLOSE); /* the next write opens a new segment */
    CU_ASSERT_EQUAL(closed_lines(root), 4);
    CU_ASSERT_EQUAL(rename(app, moved), 0);
    FILE *f = fopen(app, "w"); /* a file where the route's directory was */
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    d = doc("app", 3, 300, buf, sizeof(buf));
    CU_ASSERT(ops->submit(o, lane, &d, 0) < 0);
    d = doc("default", 3, 100, buf, sizeof(buf));
    CU_ASSERT(ops->submit(o, lane, &d, 0) < 0); /* broken: nothing more */
    CU_ASSERT(ops->sync(o, lane) < 0);
    CU_ASSERT_EQUAL(unlink(app), 0);
    CU_ASSERT_EQUAL(rename(moved, app), 0);
    ops->partition(o, lane, -1, LP_OUTPUT_ABANDON);
    d = doc("app", 3, 300, buf, sizeof(buf));
    CU_ASSERT_EQUAL(ops->submit(o, lane, &d, 1), LP_OUTPUT_OK);
    d = doc("default", 3, 100, buf, sizeof(buf));
    CU_ASSERT_EQUAL(ops->submit(o, lane, &d, 1), LP_OUTPUT_OK);
    d = doc("app", 3, 200, buf, sizeof(buf)); /* from before the failure: skipped */
    CU_ASSERT_EQUAL(ops->submit(o, lane, &d, 1), LP_OUTPUT_SKIPPED);
    CU_ASSERT_EQUAL(ops->sync(o, lane), 0);
    ops->tick(o, lane, NOW + 2 * 3600 * LP_NS_PER_SEC); /* too old: rolled */
    CU_ASSERT_EQUAL(closed_lines(root), 6);
    ops->lane_free(o, lane);
    ops->close(o, 0);
    ops->close(NULL, 0);
    lp_metrics_free(m);
}

static void test_stdout_output(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/stdout.txt", root);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = freopen(path, "w", stdout);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct lp_metrics *m = lp_metrics_new();
    struct lp_config_output cfg = {.name = "out", .type = "stdout"};
    struct lp_output_env env = {.metrics = m};
    const struct lp_output_ops *ops = lp_output_find("stdout");
    char err[64];
    struct lp_output *o = ops->create(&cfg, &env, err, sizeof(err));
    char buf[256];
    struct lp_output_doc d = doc("default", 0, 7, buf, sizeof(buf));
    CU_ASSERT_EQUAL(ops->submit(o, NULL, &d, 0), LP_OUTPUT_OK);
    CU_ASSERT_EQUAL(ops->submit(o, NULL, &d, 0), LP_OUTPUT_OK);
    ops->close(o, 0);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *in = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char line[300];
    int lines = 0;
    while (fgets(line, sizeof(line), in)) {
        lines++;
        CU_ASSERT_STRING_EQUAL(line, "{\"message\":\"m 7\",\"log\":{\"offset\":7}}\n");
    }
    fclose(in);
    CU_ASSERT_EQUAL(lines, 2);
    lp_metrics_free(m);
}

int main(void)
{
    root = lp_test_tmpdir("outputs");
    static const struct lp_test tests[] = {
        {"registry matches the config's types", test_registry_matches_config},
        {"file output through its ops", test_file_output},
        {"stdout output through its ops", test_stdout_output},
        {NULL, NULL},
    };
    int rc = lp_test_run("outputs", tests);
    return rc;
}
