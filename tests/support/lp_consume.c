/* Whole-topic reader for tests: assign all partitions at the beginning,
 * read to the end of each, decode with the production decoder. */
#include "lp_consume.h"

#include "lp_arena.h"
#include "lp_buf.h"
#include "lp_kafka.h"
#include "lp_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long lp_consume_all(const char *brokers, const char *topic, int timeout_ms, lp_consume_fn fn,
                    void *ctx, long *bad)
{
    char err[512];
    struct lp_kvlist props = {0};
    lp_kvlist_set(&props, "bootstrap.servers", brokers);
    lp_kvlist_set(&props, "group.id", "lp-test-reader"); /* never commits */
    lp_kvlist_set(&props, "enable.auto.commit", "false");
    lp_kvlist_set(&props, "enable.partition.eof", "true");
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, err, sizeof(err));
    lp_kvlist_release(&props);
    if (!conf)
        return -1;
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "consumer: %s\n", err);
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
    long n = -1;
    if (rd_kafka_metadata(c, 0, rkt, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "no metadata for topic %s\n", topic);
        goto out;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++)
        rd_kafka_topic_partition_list_add(list, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, list);
    rd_kafka_topic_partition_list_destroy(list);
    int eof = 0;
    n = 0;
    *bad = 0;
    struct lp_buf scratch = LP_BUF_INIT;
    struct lp_arena arena;
    lp_arena_init(&arena, 0, 256 << 20);
    int64_t deadline = lp_time_mono_ns() + (int64_t)timeout_ms * LP_NS_PER_MS;
    char *seen_eof = calloc((size_t)parts, 1);
    while (eof < parts && lp_time_mono_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < parts && !seen_eof[m->partition]) {
                seen_eof[m->partition] = 1;
                eof++;
            }
        } else if (!m->err) {
            struct lp_wire_meta meta;
            struct lp_wire_batch b;
            char why[256];
            lp_arena_reset(&arena);
            if (lp_kafka_wire_meta(m, &meta, why, sizeof(why)) ||
                lp_wire_decode(&meta, m->payload, m->len, 64 << 20, NULL, &scratch, &arena, &b, why,
                               sizeof(why))) {
                fprintf(stderr, "undecodable message at %d/%lld: %s\n", (int)m->partition,
                        (long long)m->offset, why);
                (*bad)++;
            } else {
                for (size_t i = 0; i < b.n; i++)
                    fn(ctx, &b.src, &b.recs[i]);
            }
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    if (eof < parts) {
        fprintf(stderr, "timed out reading %s (%d of %d partitions at their end)\n", topic, eof,
                parts);
        n = -1;
    }
    free(seen_eof);
    lp_arena_release(&arena);
    lp_buf_release(&scratch);
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}
