/* The aggregator's engine (aggregator.h) against librdkafka's mock cluster:
 * offset storing, draining on shutdown and pause/resume under a small
 * memory budget, without a real broker or
 * OpenSearch (file outputs into a temporary directory). The real broker is
 * tests/integration's; this is for what must be deterministic. */
#include "aggregator.h"
#include "lp_buf.h"
#include "lp_codec.h"
#include "lp_config.h"
#include "lp_eventid.h"
#include "lp_kafka.h"
#include "lp_metrics.h"
#include "lp_test.h"
#include "lp_time.h"
#include "lp_wire.h"

#include <dirent.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PARTITIONS 4

static const char *tmpdir;

struct mock {
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mc;
    const char *brokers;
};

static void mock_start(struct mock *m, const char *topic)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    m->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->host);
    m->mc = rd_kafka_mock_cluster_new(m->host, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m->mc);
    m->brokers = rd_kafka_mock_cluster_bootstraps(m->mc);
    rd_kafka_mock_topic_create(m->mc, topic, PARTITIONS, 1);
}

static void mock_stop(struct mock *m)
{
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->host);
}

/* Produces `batches` wire batches of `per` records to each partition; the
 * source of partition p has the id 0...0p, record offsets continue from *next[p]. */
static void produce(const struct mock *m, const char *topic, int batches, int per,
                    uint64_t next[PARTITIONS])
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", m->brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct lp_wire_encoder e;
    lp_wire_encoder_init(&e, 1 << 20);
    for (int part = 0; part < PARTITIONS; part++) {
        char sid[LP_ID_HEX_LEN + 1], path[64];
        snprintf(sid, sizeof(sid), "%0*d", LP_ID_HEX_LEN, part); /* hex, as the shipper's */
        snprintf(path, sizeof(path), "/var/log/containers/p%d_ns_c-0.log", part);
        struct lp_wire_source src = {
            .source_id = sid, .host = "node-1", .path = path, .format = "cri"};
        for (int b = 0; b < batches; b++) {
            CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_begin(&e, &src), 0);
            for (int i = 0; i < per; i++) {
                char msg[64];
                int n = snprintf(msg, sizeof(msg), "line %llu of src-%d",
                                 (unsigned long long)next[part], part);
                struct lp_wire_record r = {.ts_ns = 1764666000LL * LP_NS_PER_SEC,
                                           .stream = "stdout",
                                           .offset = next[part] * 100,
                                           .message = msg,
                                           .message_len = (size_t)n};
                CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_add(&e, &r), 0);
                next[part]++;
            }
            struct lp_buf value = LP_BUF_INIT;
            struct lp_wire_meta meta;
            CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_finish(&e, NULL, LP_CODEC_ZSTD, 0, &value, &meta),
                                  0);
            rd_kafka_resp_err_t rc = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                RD_KAFKA_V_VALUE(value.data, value.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADERS(lp_kafka_wire_headers(&meta)), RD_KAFKA_V_END);
            CU_ASSERT_EQUAL(rc, RD_KAFKA_RESP_ERR_NO_ERROR);
            lp_buf_release(&value);
        }
    }
    CU_ASSERT_EQUAL(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    lp_wire_encoder_release(&e);
    rd_kafka_destroy(p);
}

/* seen[p][k]: how often record k of partition p is in the files under dir */
#define MAXREC 4096
static unsigned seen[PARTITIONS][MAXREC];

static void count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st))
            continue;
        if (S_ISDIR(st.st_mode)) {
            count_dir(p);
            continue;
        }
        if (!strstr(de->d_name, ".ndjson"))
            continue;
        FILE *f = fopen(p, "r");
        char line[8192];
        while (f && fgets(line, sizeof(line), f)) {
            json_t *j = json_loads(line, 0, NULL);
            const char *msg = json_string_value(json_object_get(j, "message"));
            unsigned long long k;
            int part;
            if (msg && sscanf(msg, "line %llu of src-%d", &k, &part) == 2 && part >= 0 &&
                part < PARTITIONS && k < MAXREC)
                seen[part][k]++;
            json_decref(j);
        }
        if (f)
            fclose(f);
    }
    closedir(d);
}

/* Records of the first total[p] of each partition seen: (missing, extra) */
static void tally(const char *const *dirs, size_t n_dirs, const uint64_t total[PARTITIONS],
                  size_t *missing, size_t *dups, size_t *count)
{
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n_dirs; i++)
        count_dir(dirs[i]);
    *missing = *dups = *count = 0;
    for (int p = 0; p < PARTITIONS; p++)
        for (uint64_t k = 0; k < total[p]; k++) {
            *missing += seen[p][k] == 0;
            *dups += seen[p][k] > 1 ? seen[p][k] - 1 : 0;
            *count += seen[p][k];
        }
}

/* The group's committed offset of each partition (-1: none). */
static void committed(const struct mock *m, const char *topic, const char *group,
                      int64_t out[PARTITIONS])
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", m->brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    CU_ASSERT_EQUAL(rd_kafka_committed(c, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int p = 0; p < PARTITIONS; p++)
        out[p] = l->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
}

static struct lp_config *config_for(const struct mock *m, const char *topic, const char *group,
                                    const char *name, const char *extra)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "kafka: {brokers: \"%s\", topic: %s}\n"
             "aggregator:\n"
             "  group_id: %s\n"
             "  workers: 2\n"
             "  commit_interval: 100ms\n"
             "  drain_timeout: 10s\n"
             "  dead_letter_dir: %s/%s/dead-letter\n"
             "  outputs: [{name: files, type: file, path: %s/%s/segments, "
             "max_segment_age: 1s}]\n"
             "%s"
             "log: {level: warn}\n",
             m->brokers, topic, group, tmpdir, name, tmpdir, name, extra ? extra : "");
    return lp_test_config(yaml);
}

struct member {
    struct lp_config *cfg;
    struct lp_metrics *metrics;
    struct lp_aggregator *a;
    char dir[512];
};

static void member_start(struct member *w, const struct mock *m, const char *topic,
                         const char *group, const char *name, const char *extra)
{
    char err[512] = "";
    w->cfg = config_for(m, topic, group, name, extra);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->cfg);
    w->metrics = lp_metrics_new();
    w->a = lp_aggregator_new(w->cfg, w->metrics, NULL, err, sizeof(err));
    if (!w->a)
        fprintf(stderr, "\naggregator: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->a);
    snprintf(w->dir, sizeof(w->dir), "%s/%s/segments", tmpdir, name);
}

static int member_stop(struct member *w)
{
    int rc = lp_aggregator_shutdown(w->a);
    lp_aggregator_free(w->a);
    lp_metrics_free(w->metrics);
    lp_config_free(w->cfg);
    return rc;
}

/* Steps w until its files hold every record of total (or the deadline). */
static void run_until(struct member *w, const uint64_t total[PARTITIONS], int seconds)
{
    const char *dirs[] = {w->dir};
    size_t missing = 1, dups, count;
    int64_t deadline = lp_time_mono_ns() + (int64_t)seconds * LP_NS_PER_SEC;
    while (missing && lp_time_mono_ns() < deadline) {
        lp_aggregator_step(w->a, 50);
        tally(dirs, 1, total, &missing, &dups, &count);
    }
}

static double metric(struct lp_metrics *m, const char *name)
{
    struct lp_buf b = LP_BUF_INIT;
    lp_metrics_render(m, &b);
    double sum = 0;
    size_t nl = strlen(name);
    for (char *l = b.data; l && *l;) {
        char *e = strchr(l, '\n');
        if (strncmp(l, name, nl) == 0 && (l[nl] == ' ' || l[nl] == '{'))
            sum += strtod(strrchr(l, ' ') + 1, NULL);
        l = e ? e + 1 : NULL;
    }
    lp_buf_release(&b);
    return sum;
}

/* Every record once in the files; after shutdown the committed offset of
 * each partition is its end (each message durable), and a restart reads
 * nothing again. */
static void test_offsets_and_drain(void)
{
    struct mock m;
    mock_start(&m, "logs");
    uint64_t next[PARTITIONS] = {0};
    produce(&m, "logs", 10, 50, next);
    struct member w;
    member_start(&w, &m, "logs", "g-offsets", "offsets", NULL);
    run_until(&w, next, 60);
    CU_ASSERT_EQUAL(member_stop(&w), 0);
    const char *dirs[] = {w.dir};
    size_t missing, dups, count;
    tally(dirs, 1, next, &missing, &dups, &count);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    int64_t off[PARTITIONS];
    committed(&m, "logs", "g-offsets", off);
    for (int p = 0; p < PARTITIONS; p++)
        CU_ASSERT_EQUAL(off[p], 10); /* ten messages per partition, all durable */
    /* a restart with the same group and directory finds nothing to do */
    member_start(&w, &m, "logs", "g-offsets", "offsets", NULL);
    for (int i = 0; i < 40; i++)
        lp_aggregator_step(w.a, 50);
    CU_ASSERT_EQUAL(member_stop(&w), 0);
    tally(dirs, 1, next, &missing, &dups, &count);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    mock_stop(&m);
}

/* A budget far below what is waiting: consumption pauses (the paused
 * metric rises) and resumes as the files take the records; all arrive. */
static void test_pause_resume(void)
{
    struct mock m;
    mock_start(&m, "logs");
    uint64_t next[PARTITIONS] = {0};
    produce(&m, "logs", 40, 100, next);
    struct member w;
    member_start(&w, &m, "logs", "g-pause", "pause", "  max_pending_bytes: 4MiB\n");
    double paused = 0;
    const char *dirs[] = {w.dir};
    size_t missing = 1, dups = 0, count = 0;
    int64_t deadline = lp_time_mono_ns() + 90 * LP_NS_PER_SEC;
    while (lp_time_mono_ns() < deadline && missing) {
        lp_aggregator_step(w.a, 50);
        double now = metric(w.metrics, "logpipe_aggregator_partition_pauses_total");
        if (now > paused)
            paused = now;
        tally(dirs, 1, next, &missing, &dups, &count);
    }
    CU_ASSERT_EQUAL(member_stop(&w), 0);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT(paused > 0); /* it did pause */
    if (paused <= 0)
        fprintf(stderr, "\nno partition pause under a 4 MiB budget\n");
    mock_stop(&m);
}

int main(void)
{
    tmpdir = lp_test_tmpdir("aggmock");
    static const struct lp_test tests[] = {
        {"offsets stored when durable, drained on shutdown", test_offsets_and_drain},
        {"pause and resume under a small budget", test_pause_resume},
        {NULL, NULL},
    };
    int rc = lp_test_run("aggregator_mock", tests);
    return rc;
}
