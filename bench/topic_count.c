/* lp-topic-count BROKERS TOPIC [--create PARTITIONS]: prints the number of
 * messages in a topic (sum of high minus low watermarks over its
 * partitions), or -1 when it does not exist; --create makes it first (so a
 * benchmark does not time the broker's topic creation). */
#include "lp_kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--create"))) {
        fprintf(stderr, "usage: %s BROKERS TOPIC [--create PARTITIONS]\n", argv[0]);
        return 2;
    }
    char err[512];
    struct lp_kvlist props = {0};
    lp_kvlist_set(&props, "bootstrap.servers", argv[1]);
    lp_kvlist_set(&props, "log_level", "0");
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, err, sizeof(err));
    lp_kvlist_release(&props);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)) : NULL;
    if (!rk) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (argc == 5) {
        rd_kafka_NewTopic_t *nt =
            rd_kafka_NewTopic_new(argv[2], atoi(argv[4]), 1, err, sizeof(err));
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_queue_destroy(q);
        /* wait until every partition has a leader */
        for (int i = 0; i < 100; i++) {
            const struct rd_kafka_metadata *m = NULL;
            rd_kafka_topic_t *tt = rd_kafka_topic_new(rk, argv[2], NULL);
            int ok = rd_kafka_metadata(rk, 0, tt, &m, 5000) == 0 && m->topic_cnt == 1 &&
                     m->topics[0].err == 0 && m->topics[0].partition_cnt > 0;
            for (int p = 0; ok && p < m->topics[0].partition_cnt; p++)
                ok = m->topics[0].partitions[p].leader >= 0;
            if (m)
                rd_kafka_metadata_destroy(m);
            rd_kafka_topic_destroy(tt);
            if (ok)
                break;
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, argv[2], NULL);
    const struct rd_kafka_metadata *md;
    long long total = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == 0) {
        if (md->topic_cnt == 1 && md->topics[0].err == 0) {
            total = 0;
            for (int i = 0; i < md->topics[0].partition_cnt; i++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, argv[2], i, &lo, &hi, 5000) == 0)
                    total += hi - lo;
            }
        }
        rd_kafka_metadata_destroy(md);
    }
    printf("%lld\n", total);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    return 0;
}
