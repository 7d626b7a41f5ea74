/* logpipe-replay: reads a time range of events back — from the bucket of an
 * s3 output, from a directory of file-output segments and retention
 * archives, or from Kafka by time — and writes them to an elasticsearch
 * output of the same configuration with their original event ids, so what
 * the cluster has already answers 409 and is counted "already present",
 * never doubled.
 *
 *   logpipe-replay -c logpipe.yaml --from archive --to search \
 *       --since 2026-12-01 --until 2026-12-02 [--namespace NS] [--pod P]
 *       [--container C] [--dry-run] [--prefix P] [--bucket B]
 *   logpipe-replay -c logpipe.yaml --path /var/lib/logpipe/segments --to search ...
 *   logpipe-replay -c logpipe.yaml --from-kafka --to search --since ...
 *
 * Objects are chosen by the hour in their key (the runtime's time of the
 * line) within [since - slack, until + slack); lines by their @timestamp
 * within [since, until). From Kafka, each partition is read from the first
 * message at or after since - slack (the broker's offsets for times) to
 * the first at or after until + slack (or the end the partition had when
 * the replay started); its records go through the aggregator's pipeline
 * (routes, parsers, enrichment, redaction: the same configuration gives
 * the same events and ids) and those whose route sends them to --to are
 * written. Writing goes through the elasticsearch output itself (index
 * names, template, retries, 429s, mapping healing, dead letter), so a
 * replayed line is indexed as the aggregator would have. */
#define LP_LOG_MODULE "replay"
#include "lp_alloc.h"
#include "lp_arena.h"
#include "lp_cli.h"
#include "lp_codec.h"
#include "lp_config.h"
#include "lp_deadletter.h"
#include "lp_bulk.h"
#include "lp_error.h"
#include "lp_eventid.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_s3.h"
#include "lp_signal.h"
#include "lp_time.h"
#include "lp_tracker.h"
#include "lp_kafka.h"
#include "out_elasticsearch.h"
#include "pipeline.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_OBJECT_BYTES ((size_t)4 << 30) /* a decompressed object's cap */
#define MAX_HELD_BYTES ((size_t)256 << 20) /* documents in flight before reading more */

struct replay {
    const struct lp_config *cfg;
    const struct lp_config_output *to;
    const char *ns, *pod, *container;
    const char *prefix, *bucket; /* overrides of the s3 output's (NULL: its own) */
    int64_t since, until, slack;
    int dry_run;
    struct lp_es *es;
    struct lp_part *part;
    int64_t seq;
    struct lp_metrics *metrics;
    struct lp_codec_ctx codec;
    /* counts */
    uint64_t objects, objects_total, lines, in_range, out_of_range, filtered, unreadable, submitted,
        not_routed;
    const char *unit; /* what objects counts: "objects" or "messages" */
    uint64_t bytes;
    int tty;
    int64_t started;
    int failed;
};

static const struct lp_config_output *output_named(const struct lp_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->aggregator.n_outputs; i++)
        if (strcmp(cfg->aggregator.outputs[i].name, name) == 0)
            return &cfg->aggregator.outputs[i];
    return NULL;
}

/* "2026-12-01" (midnight UTC) or RFC 3339. */
static int parse_time(const char *s, int64_t *ns)
{
    int y, m, d;
    char tail;
    if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
        char full[32];
        snprintf(full, sizeof(full), "%sT00:00:00Z", s);
        return lp_time_parse_rfc3339(full, strlen(full), ns);
    }
    return lp_time_parse_rfc3339(s, strlen(s), ns);
}

static uint64_t counter(struct replay *r, const char *result)
{
    char l[256];
    snprintf(l, sizeof(l), "output=\"%s\",result=\"%s\"", r->to->name, result);
    struct lp_counter *c =
        lp_metrics_counter(r->metrics, "logpipe_aggregator_bulk_items_total", "", l);
    return c ? lp_counter_get(c) : 0;
}

static void progress(struct replay *r, int final)
{
    if (!r->tty && !final)
        return;
    double secs = (double)(lp_time_mono_ns() - r->started) / 1e9;
    fprintf(stderr,
            "\rreplay: %s %" PRIu64 "/%" PRIu64 "  lines %" PRIu64 "  in range %" PRIu64
            "  indexed %" PRIu64 "  already present %" PRIu64 "  refused %" PRIu64 "  %.0fs   %s",
            r->unit, r->objects, r->objects_total, r->lines, r->in_range,
            r->es ? counter(r, "created") : 0, r->es ? counter(r, "conflict") : 0,
            r->es ? counter(r, "dead_letter") : 0, secs, final ? "\n" : "");
    fflush(stderr);
}

static const char *str_at(json_t *ev, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(ev, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return json_string_value(v);
}

static int matches(const struct replay *r, json_t *ev)
{
    const char *v;
    if (r->ns && (!(v = str_at(ev, "kubernetes", "namespace", NULL)) || strcmp(v, r->ns)))
        return 0;
    if (r->pod && (!(v = str_at(ev, "kubernetes", "pod", "name")) || strcmp(v, r->pod)))
        return 0;
    if (r->container &&
        (!(v = str_at(ev, "kubernetes", "container", "name")) || strcmp(v, r->container)))
        return 0;
    return 1;
}

/* Waits until the documents in flight hold less than max (0: none left). */
static void wait_held(struct replay *r, size_t max)
{
    for (;;) {
        lp_part_advance(r->part);
        size_t held = atomic_load_explicit(&r->part->held_bytes, memory_order_relaxed);
        if ((max == 0 && lp_part_idle(r->part)) || (max && held < max))
            return;
        if (lp_signals_wait(0) == SIGINT || lp_signals_wait(0) == SIGTERM) {
            r->failed = 1;
            return;
        }
        progress(r, 0);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* One event (a rendered line): counted, filtered by range and metadata,
 * and linked into the chain to submit. */
static void replay_line(struct replay *r, struct lp_msg *m, const char *line, size_t ll,
                        struct lp_es_doc **head, struct lp_es_doc **tail, size_t *n)
{
    r->lines++;
    json_error_t je;
    json_t *ev = json_loadb(line, ll, 0, &je);
    const char *ts = ev ? str_at(ev, "@timestamp", NULL, NULL) : NULL;
    const char *id = ev ? str_at(ev, "event", "id", NULL) : NULL;
    int64_t t;
    if (!ev || !ts || !id || lp_time_parse_rfc3339(ts, strlen(ts), &t)) {
        r->unreadable++; /* a torn last line of an open segment, or not ours */
        json_decref(ev);
        return;
    }
    if (t < r->since || t >= r->until) {
        r->out_of_range++;
    } else if (!matches(r, ev)) {
        r->filtered++;
    } else {
        r->in_range++;
        if (!r->dry_run) {
            char index[256];
            if (lp_index_name(r->to->index, ev, t, index, sizeof(index))) {
                r->unreadable++;
            } else {
                lp_es_doc_link(head, tail, lp_es_doc_new(m, 0, m->offset, index, id, line, ll));
                (*n)++;
                r->submitted++;
            }
        }
    }
    json_decref(ev);
}

/* The lines of one object or file (decompressed by its name). */
static void replay_bytes(struct replay *r, const char *name, const char *data, size_t len)
{
    enum lp_codec codec = LP_CODEC_IDENTITY;
    size_t nl = strlen(name);
    if (nl > 4 && strcmp(name + nl - 4, ".zst") == 0)
        codec = LP_CODEC_ZSTD;
    else if (nl > 3 && strcmp(name + nl - 3, ".gz") == 0)
        codec = LP_CODEC_GZIP;
    struct lp_buf plain = LP_BUF_INIT;
    if (codec != LP_CODEC_IDENTITY) {
        int rc = lp_codec_decompress(&r->codec, codec, data, len, MAX_OBJECT_BYTES, &plain);
        if (rc) {
            lp_log(LP_LOG_ERROR, "cannot decompress; skipped", "object=\"%s\" error=\"%s\"", name,
                   lp_strerror(rc));
            r->unreadable++;
            lp_buf_release(&plain);
            return;
        }
        data = plain.data;
        len = plain.len;
    }
    r->bytes += len;
    struct lp_msg *m = r->dry_run ? NULL : lp_part_push(r->part, r->seq++, len, 1);
    struct lp_es_doc *head = NULL, *tail = NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *nlp = memchr(data + i, '\n', len - i);
        size_t end = nlp ? (size_t)(nlp - data) : len;
        const char *line = data + i;
        size_t ll = end - i;
        i = end + 1;
        if (ll)
            replay_line(r, m, line, ll, &head, &tail, &n);
    }
    if (n)
        lp_es_submit(r->es, head, tail, n);
    if (m)
        lp_msg_release(m);
    lp_buf_release(&plain);
    r->objects++;
    progress(r, 0);
    if (!r->dry_run)
        wait_held(r, MAX_HELD_BYTES);
}

/* ---- from a bucket ---- */

struct keys {
    char **v;
    size_t n, cap;
};

static void keys_add(struct keys *k, const char *s)
{
    LP_ALLOC_GROW(k->v, k->n + 1, k->cap, 64);
    k->v[k->n++] = lp_xstrdup(s);
}

static int on_dir(const char *dir, void *arg)
{
    keys_add(arg, dir);
    return 0;
}

static int on_key(const struct lp_s3_object *o, void *arg)
{
    keys_add(arg, o->key);
    return 0;
}

static int from_bucket(struct replay *r, const struct lp_config_output *from)
{
    struct lp_s3_cfg sc;
    lp_s3_output_cfg(from, &sc);
    sc.storage_class = NULL; /* reads only */
    if (r->bucket)
        sc.bucket = r->bucket;
    struct lp_s3 s3;
    char err[256];
    if (lp_s3_init(&s3, &sc, err, sizeof(err))) {
        fprintf(stderr, "logpipe-replay: %s: %s\n", from->name, err);
        return 1;
    }
    struct lp_s3_client c;
    lp_s3_client_init(&c, &s3);
    struct lp_buf pfx = LP_BUF_INIT;
    char *p = r->prefix ? lp_s3_norm_prefix(r->prefix) : lp_s3_output_prefix(from);
    lp_buf_puts(&pfx, p);
    free(p);
    struct keys routes = {0}, objs = {0};
    struct lp_s3_result res = {0};
    int rc = lp_s3_list_dirs(&c, pfx.data, on_dir, &routes, &res);
    /* the hours the range touches, with slack for lines whose own time is
     * not the runtime's */
    int64_t hour_ns = 3600 * LP_NS_PER_SEC;
    int64_t h0 = (r->since - r->slack) / hour_ns, h1 = (r->until + r->slack - 1) / hour_ns;
    for (size_t i = 0; rc == 0 && i < routes.n; i++) {
        const char *route = routes.v[i] + pfx.len;
        if (strncmp(route, "_logpipe/", 9) == 0)
            continue;
        for (int64_t h = h0; rc == 0 && h <= h1; h++) {
            time_t t = (time_t)(h * 3600);
            struct tm tm;
            gmtime_r(&t, &tm);
            char hp[1200];
            snprintf(hp, sizeof(hp), "%s%04d/%02d/%02d/%02d/", routes.v[i], tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
            rc = lp_s3_list(&c, hp, NULL, on_key, &objs, &res);
        }
    }
    if (rc) {
        fprintf(stderr, "logpipe-replay: cannot list the bucket: HTTP %ld %s %s\n", res.status,
                res.code, res.message);
        r->failed = 1;
    }
    r->objects_total = objs.n;
    struct lp_buf body = LP_BUF_INIT;
    for (size_t i = 0; rc == 0 && i < objs.n && !r->failed; i++) {
        int attempt = 0;
        while ((rc = lp_s3_get(&c, objs.v[i], &body, &res)) && res.retryable && attempt++ < 5) {
            struct timespec ts = {attempt, 0};
            nanosleep(&ts, NULL);
        }
        if (rc) {
            fprintf(stderr, "logpipe-replay: cannot read %s: HTTP %ld %s\n", objs.v[i], res.status,
                    res.code);
            r->failed = 1;
            break;
        }
        replay_bytes(r, objs.v[i], body.data, body.len);
    }
    lp_buf_release(&body);
    for (size_t i = 0; i < routes.n; i++)
        free(routes.v[i]);
    for (size_t i = 0; i < objs.n; i++)
        free(objs.v[i]);
    free(routes.v);
    free(objs.v);
    lp_buf_release(&pfx);
    lp_s3_client_release(&c);
    lp_s3_release(&s3);
    return r->failed;
}

/* ---- from Kafka, by time ---- */

#define KAFKA_TIMEOUT_MS 10000
#define KAFKA_IDLE_NS (60 * LP_NS_PER_SEC) /* no message for this long: give up */

struct kpart {
    int32_t id;
    int64_t start, end; /* [start, end) */
    int done;
};

struct kafka_src {
    struct replay *r;
    struct agg_pipeline *pipe;
    size_t to_index; /* the --to output's index (SIZE_MAX: any, a dry run without --to) */
    struct lp_buf scratch, doc;
    struct lp_arena arena;
    uint64_t cap;
};

/* 1 when route sends to the --to output. */
static int routed_to(const struct kafka_src *k, size_t route)
{
    if (k->to_index == SIZE_MAX)
        return 1;
    const struct agg_route_info *ri = agg_pipeline_route(k->pipe, route);
    for (size_t i = 0; i < ri->n_outputs; i++)
        if (ri->outputs[i] == k->to_index)
            return 1;
    return 0;
}

/* One message: decoded and rendered as the aggregator does. */
static void replay_message(struct kafka_src *k, const rd_kafka_message_t *rkm)
{
    struct replay *r = k->r;
    struct lp_wire_meta meta;
    struct lp_wire_batch batch;
    char why[512];
    lp_arena_reset(&k->arena);
    if (lp_kafka_wire_meta(rkm, &meta, why, sizeof(why)) ||
        lp_wire_decode(&meta, rkm->payload, rkm->len, k->cap, &r->codec, &k->scratch, &k->arena,
                       &batch, why, sizeof(why))) {
        lp_log(LP_LOG_WARN, "undecodable message skipped (the aggregator dead-lettered it)",
               "partition=%d offset=%lld reason=\"%s\"", (int)rkm->partition,
               (long long)rkm->offset, why);
        r->unreadable++;
        r->objects++;
        return;
    }
    r->bytes += rkm->len;
    struct lp_msg *m = r->dry_run ? NULL : lp_part_push(r->part, r->seq++, rkm->len, 1);
    struct lp_es_doc *head = NULL, *tail = NULL;
    size_t n = 0;
    int64_t now = lp_time_real_ns();
    char ingested_buf[LP_RFC3339_MAX];
    const char *ingested = agg_pipeline_ingested(k->pipe, now, ingested_buf);
    size_t sid_len = strlen(batch.src.source_id);
    for (size_t i = 0; i < batch.n; i++) {
        const struct lp_wire_record *rec = &batch.recs[i];
        char id[LP_ID_HEX_LEN + 1];
        lp_event_id(batch.src.source_id, sid_len, rec->offset, id);
        size_t route = agg_pipeline_match_record(k->pipe, &batch.src, rec);
        enum agg_verdict verdict = AGG_KEEP;
        char *text = NULL;
        size_t len = 0;
        json_t *ev = NULL;
        if (route != SIZE_MAX && agg_pipeline_fast(k->pipe, route, &batch.src)) {
            verdict = agg_pipeline_keep(k->pipe, route, &batch.src, rec, id);
            if (verdict == AGG_KEEP) {
                lp_buf_reset(&k->doc);
                if (agg_pipeline_render(k->pipe, &batch.src, rec, id, ingested, &k->doc))
                    abort(); /* out of memory: the buffer has no limit */
                text = k->doc.data;
                len = k->doc.len;
            }
        } else {
            int failed;
            ev = agg_pipeline_event(k->pipe, &batch.src, rec, id, now, &k->doc, &route, &verdict,
                                    &failed);
            if (ev && verdict == AGG_KEEP) {
                text = json_dumps(ev, JSON_COMPACT);
                if (!text)
                    abort();
                len = strlen(text);
            }
        }
        if (!text) {
            r->filtered++; /* dropped or sampled out by its route, as the aggregator did */
        } else if (!routed_to(k, route)) {
            r->not_routed++;
        } else {
            replay_line(r, m, text, len, &head, &tail, &n);
        }
        if (ev) {
            if (text)
                free(text);
            json_decref(ev);
        }
    }
    if (n)
        lp_es_submit(r->es, head, tail, n);
    if (m)
        lp_msg_release(m);
    r->objects++;
    progress(r, 0);
    if (!r->dry_run)
        wait_held(r, MAX_HELD_BYTES);
}

/* offsets_for_times at ts for every partition of parts (in place). */
static int offsets_at(rd_kafka_t *rk, const char *topic, const struct kpart *parts, size_t n,
                      int64_t ts_ns, int64_t *out)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, parts[i].id)->offset =
            ts_ns > 0 ? ts_ns / LP_NS_PER_MS : 0;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, KAFKA_TIMEOUT_MS);
    for (size_t i = 0; !err && i < n; i++) {
        rd_kafka_topic_partition_t *p = &l->elems[i];
        if (p->err) {
            err = p->err;
            break;
        }
        out[i] = p->offset; /* -1: no message at or after ts */
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        fprintf(stderr, "logpipe-replay: offsets for times: %s\n", rd_kafka_err2str(err));
        return LP_EKAFKA;
    }
    return 0;
}

static rd_kafka_t *replay_consumer(const struct lp_config *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *kc = lp_kafka_conf_new(&cfg->kafka.properties, err, errlen);
    if (!kc)
        return NULL;
    /* assign only: the group id is never joined nor committed to */
    if (lp_kafka_conf_set(kc, "bootstrap.servers", cfg->kafka.brokers, err, errlen) ||
        lp_kafka_conf_set(kc, "client.id", "logpipe-replay", err, errlen) ||
        lp_kafka_conf_set(kc, "group.id", "logpipe-replay", err, errlen) ||
        lp_kafka_conf_set(kc, "enable.auto.commit", "false", err, errlen) ||
        lp_kafka_conf_set(kc, "enable.auto.offset.store", "false", err, errlen) ||
        lp_kafka_conf_set(kc, "enable.partition.eof", "true", err, errlen)) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    char kerr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, kerr, sizeof(kerr));
    if (!rk) {
        snprintf(err, errlen, "kafka consumer: %s", kerr);
        rd_kafka_conf_destroy(kc);
    }
    return rk;
}

static int from_kafka(struct replay *r)
{
    const struct lp_config *cfg = r->cfg;
    const char *topic = cfg->kafka.topic;
    const struct lp_config_aggregator *ac = &cfg->aggregator;
    struct kafka_src k = {.r = r,
                          .to_index = SIZE_MAX,
                          .scratch = LP_BUF_INIT,
                          .doc = LP_BUF_INIT,
                          .cap = (uint64_t)ac->max_decompressed_bytes};
    const char **names = lp_xcalloc(ac->n_outputs ? ac->n_outputs : 1, sizeof(*names));
    for (size_t i = 0; i < ac->n_outputs; i++) {
        names[i] = ac->outputs[i].name;
        if (r->to && &ac->outputs[i] == r->to)
            k.to_index = i;
    }
    char err[1024];
    k.pipe = agg_pipeline_new(ac, names, ac->n_outputs, err, sizeof(err));
    free(names);
    if (!k.pipe) {
        fprintf(stderr, "logpipe-replay: pipeline: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = replay_consumer(cfg, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "logpipe-replay: %s\n", err);
        agg_pipeline_free(k.pipe);
        return 1;
    }
    lp_buf_init(&k.scratch, 0);
    lp_buf_init(&k.doc, 0);
    lp_arena_init(&k.arena, 64 << 10, 2 * (size_t)k.cap + (1 << 20));
    struct kpart *parts = NULL;
    size_t np = 0;
    int rc = 0;
    {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, KAFKA_TIMEOUT_MS);
        if (!e && (md->topic_cnt != 1 || md->topics[0].err))
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (e) {
            fprintf(stderr, "logpipe-replay: topic %s: %s\n", topic, rd_kafka_err2str(e));
            rc = 1;
        } else {
            np = (size_t)md->topics[0].partition_cnt;
            parts = lp_xcalloc(np ? np : 1, sizeof(*parts));
            for (size_t i = 0; i < np; i++)
                parts[i].id = md->topics[0].partitions[i].id;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    int64_t *from = lp_xcalloc(np ? np : 1, sizeof(*from));
    int64_t *to = lp_xcalloc(np ? np : 1, sizeof(*to));
    if (!rc && (offsets_at(rk, topic, parts, np, r->since - r->slack, from) ||
                offsets_at(rk, topic, parts, np, r->until + r->slack, to)))
        rc = 1;
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new((int)np);
    size_t active = 0;
    for (size_t i = 0; !rc && i < np; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, parts[i].id, &lo, &hi, KAFKA_TIMEOUT_MS);
        if (e) {
            fprintf(stderr, "logpipe-replay: partition %d: %s\n", (int)parts[i].id,
                    rd_kafka_err2str(e));
            rc = 1;
            break;
        }
        parts[i].start = from[i] < 0 ? hi : from[i];
        parts[i].end = to[i] < 0 || to[i] > hi ? hi : to[i];
        if (parts[i].start < lo) {
            /* the range begins before what the topic still holds */
            lp_log(LP_LOG_WARN, "the topic no longer holds the start of the range",
                   "partition=%d first_offset=%lld", (int)parts[i].id, (long long)lo);
            parts[i].start = lo;
        }
        if (parts[i].start >= parts[i].end) {
            parts[i].done = 1;
            continue;
        }
        r->objects_total += (uint64_t)(parts[i].end - parts[i].start);
        rd_kafka_topic_partition_list_add(assign, topic, parts[i].id)->offset = parts[i].start;
        active++;
    }
    free(from);
    free(to);
    if (!rc && active && rd_kafka_assign(rk, assign)) {
        fprintf(stderr, "logpipe-replay: cannot assign the partitions\n");
        rc = 1;
    }
    rd_kafka_topic_partition_list_destroy(assign);
    int64_t last = lp_time_mono_ns();
    while (!rc && active && !r->failed) {
        int sig = lp_signals_wait(0);
        if (sig == SIGINT || sig == SIGTERM) {
            r->failed = 1;
            break;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 500);
        if (!rkm) {
            if (lp_time_mono_ns() - last > KAFKA_IDLE_NS) {
                fprintf(stderr,
                        "logpipe-replay: no message from Kafka for 60 s; %zu "
                        "partition(s) unfinished\n",
                        active);
                rc = 1;
            }
            continue;
        }
        last = lp_time_mono_ns();
        struct kpart *p = NULL;
        for (size_t i = 0; i < np; i++)
            if (parts[i].id == rkm->partition)
                p = &parts[i];
        if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            lp_log(LP_LOG_WARN, "kafka", "error=\"%s\"", rd_kafka_message_errstr(rkm));
        } else if (p && !p->done) {
            if (!rkm->err && rkm->offset < p->end)
                replay_message(&k, rkm);
            if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || rkm->offset + 1 >= p->end) {
                p->done = 1;
                active--;
            }
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(parts);
    lp_arena_release(&k.arena);
    lp_buf_release(&k.scratch);
    lp_buf_release(&k.doc);
    agg_pipeline_free(k.pipe);
    return rc || r->failed;
}

/* ---- from a directory ---- */

static int is_segment(const char *name)
{
    static const char *const ext[] = {".ndjson",      ".ndjson.zst",      ".ndjson.gz",
                                      ".ndjson.open", ".ndjson.zst.open", NULL};
    size_t n = strlen(name);
    for (int i = 0; ext[i]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && strcmp(name + n - e, ext[i]) == 0)
            return 1;
    }
    return 0;
}

static void walk(struct replay *r, const char *dir, struct keys *out, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "logpipe-replay: %s: %s\n", dir, lp_strerror(-errno));
        r->failed = 1;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* ., .., .state */
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode) && depth < 16)
            walk(r, path, out, depth + 1);
        else if (S_ISREG(st.st_mode) && is_segment(e->d_name))
            keys_add(out, path);
    }
    closedir(d);
}

static int from_path(struct replay *r, const char *root)
{
    struct keys files = {0};
    walk(r, root, &files, 0);
    r->objects_total = files.n;
    for (size_t i = 0; i < files.n && !r->failed; i++) {
        FILE *f = fopen(files.v[i], "rb");
        struct lp_buf b = LP_BUF_INIT;
        char chunk[65536];
        size_t n;
        while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            lp_buf_append(&b, chunk, n);
        if (!f) {
            fprintf(stderr, "logpipe-replay: %s: %s\n", files.v[i], lp_strerror(-errno));
            r->unreadable++;
        } else {
            fclose(f);
            const char *name = files.v[i];
            char trimmed[4096];
            size_t nl = strlen(name);
            if (nl > 5 && strcmp(name + nl - 5, ".open") == 0) { /* decompress by the real name */
                snprintf(trimmed, sizeof(trimmed), "%.*s", (int)(nl - 5), name);
                name = trimmed;
            }
            replay_bytes(r, name, b.data, b.len);
        }
        lp_buf_release(&b);
    }
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i]);
    free(files.v);
    return r->failed;
}

static const char *curl_version_str(void)
{
    static char v[48];
    snprintf(v, sizeof(v), "libcurl %s", curl_version_info(CURLVERSION_NOW)->version);
    return v;
}

int main(int argc, char **argv)
{
    lp_cli_version_extra = curl_version_str;
    lp_signals_setup();
    const char *from = NULL, *path = NULL, *to = NULL, *since = NULL, *until = NULL, *ns = NULL,
               *pod = NULL, *container = NULL, *slack = NULL, *prefix = NULL, *bucket = NULL;
    int dry_run = 0, from_kafka_flag = 0;
    const struct lp_cli_flag flags[] = {
        {"from", NULL, &from, "an s3 output of the configuration: read its bucket"},
        {"path", NULL, &path, "or a directory of file-output segments and archives"},
        {"from-kafka", &from_kafka_flag, NULL,
         "or the configuration's topic, by time (while Kafka still holds the range)"},
        {"prefix", NULL, &prefix,
         "with --from: read this key prefix instead of the output's "
         "(archived objects: a policy's archive_prefix)"},
        {"bucket", NULL, &bucket, "with --from: read this bucket instead of the output's"},
        {"to", NULL, &to, "the elasticsearch output to write to"},
        {"since", NULL, &since, "start of the range (RFC 3339, or YYYY-MM-DD = 00:00Z)"},
        {"until", NULL, &until, "end of the range, exclusive (default: since + 1 day)"},
        {"namespace", NULL, &ns, "only events of this kubernetes.namespace"},
        {"pod", NULL, &pod, "only events of this kubernetes.pod.name"},
        {"container", NULL, &container, "only events of this kubernetes.container.name"},
        {"slack", NULL, &slack,
         "hours around the range to look for objects (Kafka: messages) in (default 1)"},
        {"dry-run", &dry_run, NULL, "count what would be replayed; write nothing"},
        {NULL, NULL, NULL, NULL},
    };
    struct lp_cli cli = {.section = "aggregator"};
    struct lp_config *cfg = NULL;
    int rc = lp_cli_parse(&cli, argc, argv, flags);
    if (rc < 0)
        rc = lp_cli_load(&cli, &cfg);
    if (rc >= 0) {
        lp_cli_release(&cli);
        return rc;
    }
    struct replay r = {0};
    r.cfg = cfg;
    r.ns = ns;
    r.pod = pod;
    r.container = container;
    r.dry_run = dry_run;
    r.prefix = prefix;
    r.bucket = bucket;
    r.unit = from_kafka_flag ? "messages" : "objects";
    r.slack = (slack ? atoll(slack) : 1) * 3600 * LP_NS_PER_SEC;
    r.codec = (struct lp_codec_ctx)LP_CODEC_CTX_INIT;
    r.tty = isatty(2);
    r.started = lp_time_mono_ns();
    const struct lp_config_output *src = from ? output_named(cfg, from) : NULL;
    r.to = to ? output_named(cfg, to) : NULL;
    const char *usage = NULL;
    if (!!from + !!path + !!from_kafka_flag != 1)
        usage = "give one of --from OUTPUT (an s3 output), --path DIR and --from-kafka";
    else if ((prefix || bucket) && !from)
        usage = "--prefix and --bucket go with --from";
    else if (from && (!src || lp_config_output_kind(src) != LP_OUTPUT_S3))
        usage = "--from must name an output of type s3 in the configuration";
    else if (!dry_run && (!r.to || lp_config_output_kind(r.to) != LP_OUTPUT_ES))
        usage = "--to must name an output of type elasticsearch in the configuration";
    else if (!since || parse_time(since, &r.since))
        usage = "--since is required: RFC 3339 or YYYY-MM-DD";
    else if (until ? parse_time(until, &r.until) != 0 : 0)
        usage = "--until: RFC 3339 or YYYY-MM-DD";
    if (!usage && !until)
        r.until = r.since + 24 * 3600 * LP_NS_PER_SEC;
    if (!usage && r.until <= r.since)
        usage = "--until must be after --since";
    if (usage) {
        fprintf(stderr, "logpipe-replay: %s\n", usage);
        lp_config_free(cfg);
        lp_cli_release(&cli);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    r.metrics = lp_metrics_new();
    struct lp_dlq *dlq = NULL;
    char err[1024];
    rc = 0;
    if (!dry_run) {
        dlq = lp_dlq_new(cfg, r.metrics, err, sizeof(err));
        r.es =
            dlq ? lp_es_new(r.to, cfg->kafka.topic, dlq, r.metrics, NULL, err, sizeof(err)) : NULL;
        if (!r.es || lp_es_start(r.es)) {
            fprintf(stderr, "logpipe-replay: %s\n", err);
            rc = 1;
            goto out;
        }
        lp_es_set_kept_field(r.es, cfg->aggregator.content.kept_field);
        r.part = lp_part_new(0);
    }
    rc = src ? from_bucket(&r, src) : path ? from_path(&r, path) : from_kafka(&r);
    if (!dry_run) {
        wait_held(&r, 0);
        lp_es_stop(r.es, lp_time_mono_ns() + 30 * LP_NS_PER_SEC);
        r.es = NULL;
    }
    {
        uint64_t created = 0, present = 0, refused = 0;
        if (!dry_run) {
            created = counter(&r, "created");
            present = counter(&r, "conflict");
            refused = counter(&r, "dead_letter");
        }
        progress(&r, 1);
        printf("replay %s: %s=%" PRIu64 " lines=%" PRIu64 " in_range=%" PRIu64 " indexed=%" PRIu64
               " already_present=%" PRIu64 " refused=%" PRIu64 " out_of_range=%" PRIu64
               " filtered=%" PRIu64 " unreadable=%" PRIu64 "%s",
               dry_run ? "dry run" : "done", r.unit, r.objects, r.lines, r.in_range, created,
               present, refused, r.out_of_range, r.filtered, r.unreadable,
               from_kafka_flag ? "" : "");
        if (from_kafka_flag)
            printf(" not_routed=%" PRIu64, r.not_routed);
        printf(" seconds=%.1f\n", (double)(lp_time_mono_ns() - r.started) / 1e9);
        if (refused)
            printf("refused lines are in the dead letter (%s) with the cluster's reason\n",
                   cfg->aggregator.dead_letter_dir);
        if (!dry_run && created + present + refused != r.submitted) {
            fprintf(stderr, "logpipe-replay: %" PRIu64 " lines not confirmed by the cluster\n",
                    r.submitted - created - present - refused);
            rc = 1;
        }
        if (r.failed)
            rc = 1;
    }
out:
    if (r.part && lp_part_idle(r.part))
        lp_part_free(r.part);
    lp_dlq_free(dlq);
    lp_codec_ctx_release(&r.codec);
    lp_metrics_free(r.metrics);
    lp_config_free(cfg);
    lp_cli_release(&cli);
    curl_global_cleanup();
    return rc;
}
