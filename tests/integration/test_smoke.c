/* Smoke test against the real services started by scripts/services:
 * wire-format batches produced to and consumed from Kafka through
 * librdkafka (delivery reports, consumer group, manual offset store and a
 * synchronous commit), and ECS events indexed into OpenSearch over libcurl
 * with op_type=create and the event id, where a replay answers 409.
 * Endpoints: LP_KAFKA_BROKERS (127.0.0.1:9092), LP_OPENSEARCH_URL
 * (http://127.0.0.1:9200). Every wait is bounded. */
#include "lp_arena.h"
#include "lp_buf.h"
#include "lp_eventid.h"
#include "lp_kafka.h"
#include "lp_test.h"
#include "lp_test_http.h"
#include "lp_time.h"
#include "lp_wire.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCHES 20
#define PER_BATCH 50
#define SOURCES 4

static char topic[128];
static const char *brokers;
static const char *es_url;

static void source_of(int s, char sid[LP_ID_HEX_LEN + 1], struct lp_wire_source *src)
{
    lp_source_id("smoke-host", 2049, 1000 + (uint64_t)s, 0xabcdef, 0, sid);
    memset(src, 0, sizeof(*src));
    src->source_id = sid;
    src->host = "smoke-host";
    src->path = "/var/log/containers/smoke.log";
    src->format = "cri";
    src->k8s_namespace = "smoke";
}

static int delivered_ok, delivered_err;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err) {
        delivered_err++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered_ok++;
    }
}

static void create_topic(void)
{
    char err[512];
    struct lp_kvlist props = {0};
    lp_kvlist_set(&props, "bootstrap.servers", brokers);
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 3, 1, err, sizeof(err));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1 && rd_kafka_topic_result_error(tr[0]))
        fprintf(stderr, "create topic: %s\n", rd_kafka_topic_result_error_string(tr[0]));
    CU_ASSERT_EQUAL(n == 1 ? rd_kafka_topic_result_error(tr[0]) : -1, RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    lp_kvlist_release(&props);
}

static void test_kafka_round_trip(void)
{
    create_topic();
    char err[512];
    struct lp_kvlist props = {0};
    lp_kvlist_set(&props, "bootstrap.servers", brokers);
    lp_kvlist_set(&props, "acks", "all");
    lp_kvlist_set(&props, "enable.idempotence", "false"); /* see delivery-semantics notes */
    /* order within a partition survives retries (a just-created topic answers
     * NOT_LEADER at first) only with one request in flight, as the shipper runs */
    lp_kvlist_set(&props, "max.in.flight.requests.per.connection", "1");
    lp_kvlist_set(&props, "message.timeout.ms", "30000");
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    /* a bad property is reported with its name */
    CU_ASSERT_NOT_EQUAL(lp_kafka_conf_set(conf, "no.such.property", "1", err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no.such.property:"));
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);

    struct lp_codec_ctx cctx = LP_CODEC_CTX_INIT;
    struct lp_wire_encoder enc;
    lp_wire_encoder_init(&enc, 1 << 20);
    char sids[SOURCES][LP_ID_HEX_LEN + 1];
    struct lp_wire_source srcs[SOURCES];
    for (int s = 0; s < SOURCES; s++)
        source_of(s, sids[s], &srcs[s]);
    uint64_t next_off[SOURCES] = {0};
    for (int b = 0; b < BATCHES; b++) {
        int s = b % SOURCES;
        CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_begin(&enc, &srcs[s]), 0);
        for (int i = 0; i < PER_BATCH; i++) {
            char msg[64];
            int n = snprintf(msg, sizeof(msg), "smoke line %d of batch %d", i, b);
            struct lp_wire_record r = {
                lp_time_real_ns(), "stdout", next_off[s], msg, (size_t)n, 0, 0, NULL, 0};
            next_off[s] += (uint64_t)n + 1;
            CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_add(&enc, &r), 0);
        }
        struct lp_buf value = LP_BUF_INIT;
        struct lp_wire_meta meta;
        CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_finish(&enc, &cctx, LP_CODEC_ZSTD, 3, &value, &meta),
                              0);
        rd_kafka_headers_t *h = lp_kafka_wire_headers(&meta);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(sids[s], LP_ID_HEX_LEN),
            RD_KAFKA_V_VALUE(value.data, value.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        CU_ASSERT_EQUAL(e, RD_KAFKA_RESP_ERR_NO_ERROR);
        if (e)
            rd_kafka_headers_destroy(h);
        lp_buf_release(&value);
        rd_kafka_poll(p, 0);
    }
    CU_ASSERT_EQUAL(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    CU_ASSERT_EQUAL(delivered_ok, BATCHES);
    CU_ASSERT_EQUAL(delivered_err, 0);
    rd_kafka_destroy(p);
    lp_wire_encoder_release(&enc);

    /* consume them back as a group member with manual offset storage */
    struct lp_kvlist cprops = {0};
    char group[160];
    snprintf(group, sizeof(group), "%s-group", topic);
    lp_kvlist_set(&cprops, "bootstrap.servers", brokers);
    lp_kvlist_set(&cprops, "group.id", group);
    lp_kvlist_set(&cprops, "auto.offset.reset", "earliest");
    lp_kvlist_set(&cprops, "enable.auto.offset.store", "false");
    lp_kvlist_set(&cprops, "partition.assignment.strategy", "range");
    rd_kafka_conf_t *cconf = lp_kafka_conf_new(&cprops, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cconf);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    CU_ASSERT_EQUAL(rd_kafka_subscribe(c, sub), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(sub);

    int got = 0, records = 0, bad = 0;
    uint64_t seen_bytes[SOURCES] = {0};
    struct lp_buf scratch = LP_BUF_INIT;
    struct lp_arena arena;
    lp_arena_init(&arena, 0, 64 << 20);
    int64_t deadline = lp_time_mono_ns() + 60 * LP_NS_PER_SEC;
    while (got < BATCHES && lp_time_mono_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        struct lp_wire_meta meta;
        struct lp_wire_batch batch;
        char why[256];
        lp_arena_reset(&arena);
        if (lp_kafka_wire_meta(m, &meta, why, sizeof(why)) ||
            lp_wire_decode(&meta, m->payload, m->len, 16 << 20, NULL, &scratch, &arena, &batch, why,
                           sizeof(why))) {
            fprintf(stderr, "decode: %s\n", why);
            bad++;
        } else {
            got++;
            records += (int)batch.n;
            CU_ASSERT_EQUAL(m->key_len, LP_ID_HEX_LEN);
            CU_ASSERT_EQUAL(memcmp(m->key, batch.src.source_id, LP_ID_HEX_LEN), 0);
            for (int s = 0; s < SOURCES; s++)
                if (strcmp(batch.src.source_id, sids[s]) == 0) {
                    /* per-source order: each batch starts where the last ended */
                    CU_ASSERT_EQUAL(batch.recs[0].offset, seen_bytes[s]);
                    const struct lp_wire_record *last = &batch.recs[batch.n - 1];
                    seen_bytes[s] = last->offset + last->message_len + 1;
                }
            rd_kafka_topic_partition_list_t *o = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(o, topic, m->partition)->offset = m->offset + 1;
            CU_ASSERT_EQUAL(rd_kafka_offsets_store(c, o), RD_KAFKA_RESP_ERR_NO_ERROR);
            rd_kafka_topic_partition_list_destroy(o);
        }
        rd_kafka_message_destroy(m);
    }
    CU_ASSERT_EQUAL(got, BATCHES);
    CU_ASSERT_EQUAL(records, BATCHES * PER_BATCH);
    CU_ASSERT_EQUAL(bad, 0);
    for (int s = 0; s < SOURCES; s++)
        CU_ASSERT_EQUAL(seen_bytes[s], next_off[s]);
    CU_ASSERT_EQUAL(rd_kafka_commit(c, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);

    /* the committed offsets cover everything consumed */
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(3);
    for (int i = 0; i < 3; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i);
    CU_ASSERT_EQUAL(rd_kafka_committed(c, parts, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t committed = 0;
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset > 0)
            committed += parts->elems[i].offset;
    CU_ASSERT_EQUAL(committed, BATCHES);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    lp_arena_release(&arena);
    lp_buf_release(&scratch);
    lp_codec_ctx_release(&cctx);
    lp_kvlist_release(&props);
    lp_kvlist_release(&cprops);
}

/* A JSON request to OpenSearch; the status, the body in out. */
static long http(const char *method, const char *url, const char *body, struct lp_buf *out)
{
    return lp_test_http(method, url, "application/json", NULL, body, body ? strlen(body) : 0, out);
}

static void test_opensearch_index_and_search(void)
{
    char sid[LP_ID_HEX_LEN + 1], id[LP_ID_HEX_LEN + 1], url[512], index[160];
    struct lp_wire_source src;
    source_of(0, sid, &src);
    struct lp_wire_record r = {
        lp_time_real_ns(), "stdout", 4242, "smoke document for search", 25, 0, 0, NULL, 0};
    lp_event_id(sid, strlen(sid), r.offset, id);
    struct lp_buf doc = LP_BUF_INIT, out = LP_BUF_INIT;
    CU_ASSERT_EQUAL_FATAL(lp_wire_ecs_event(&src, &r, &doc), 0);
    snprintf(index, sizeof(index), "%s", topic); /* unique, lowercase */

    snprintf(url, sizeof(url), "%s/%s/_create/%s?refresh=true", es_url, index, id);
    CU_ASSERT_EQUAL(http("PUT", url, doc.data, &out), 201);
    /* the same event again: 409, i.e. "already there" — the dedup promise */
    CU_ASSERT_EQUAL(http("PUT", url, doc.data, &out), 409);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "version_conflict_engine_exception"));

    snprintf(url, sizeof(url), "%s/%s/_search", es_url, index);
    char q[256];
    snprintf(q, sizeof(q), "{\"query\":{\"match\":{\"message\":\"search\"}}}");
    CU_ASSERT_EQUAL(http("POST", url, q, &out), 200);
    json_error_t je;
    json_t *res = json_loads(out.data, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res);
    json_t *hits = json_object_get(json_object_get(res, "hits"), "hits");
    CU_ASSERT_EQUAL(json_array_size(hits), 1);
    json_t *hit = json_array_get(hits, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(hit, "_id")), id);
    json_t *srcdoc = json_object_get(hit, "_source");
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(srcdoc, "event"), "id")), id);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(srcdoc, "log"), "offset")),
                    4242);
    json_decref(res);

    snprintf(url, sizeof(url), "%s/%s", es_url, index);
    CU_ASSERT_EQUAL(http("DELETE", url, NULL, &out), 200);
    lp_buf_release(&doc);
    lp_buf_release(&out);
}

int main(void)
{
    brokers = getenv("LP_KAFKA_BROKERS") ? getenv("LP_KAFKA_BROKERS") : "127.0.0.1:9092";
    es_url = getenv("LP_OPENSEARCH_URL") ? getenv("LP_OPENSEARCH_URL") : "http://127.0.0.1:9200";
    snprintf(topic, sizeof(topic), "logpipe-smoke-%d-%lld", (int)getpid(),
             (long long)(lp_time_real_ns() / LP_NS_PER_SEC));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const struct lp_test tests[] = {
        {"kafka round trip", test_kafka_round_trip},
        {"opensearch index and search", test_opensearch_index_and_search},
        {NULL, NULL},
    };
    int rc = lp_test_run("smoke", tests);
    curl_global_cleanup();
    return rc;
}
