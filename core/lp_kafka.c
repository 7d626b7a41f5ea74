/* librdkafka configuration, logging and wire headers. */
#define LP_LOG_MODULE "kafka"
#include "lp_kafka.h"

#include "lp_alloc.h"
#include "lp_error.h"
#include "lp_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
    int lv = level <= 3   ? LP_LOG_ERROR
             : level == 4 ? LP_LOG_WARN
             : level <= 6 ? LP_LOG_INFO
                          : LP_LOG_DEBUG;
    lp_log(lv, "librdkafka", "client=%s facility=%s detail=\"%s\"", rk ? rd_kafka_name(rk) : "-",
           fac, buf);
}

int lp_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                      size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "%s: %s", key, why);
        return LP_EKAFKA;
    }
    return 0;
}

rd_kafka_conf_t *lp_kafka_conf_new(const struct lp_kvlist *props, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    for (size_t i = 0; props && i < props->n; i++) {
        if (lp_kafka_conf_set(conf, props->items[i].key, props->items[i].value, err, errlen)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

rd_kafka_headers_t *lp_kafka_wire_headers(const struct lp_wire_meta *meta)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    char n[16];
    snprintf(n, sizeof(n), "%d", LP_WIRE_FORMAT);
    rd_kafka_header_add(h, LP_WIRE_H_FORMAT, -1, n, -1);
    rd_kafka_header_add(h, LP_WIRE_H_CONTENT_TYPE, -1,
                        meta->batch ? LP_WIRE_CT_BATCH : LP_WIRE_CT_RECORD, -1);
    rd_kafka_header_add(h, LP_WIRE_H_ENCODING, -1, lp_codec_name(meta->encoding), -1);
    snprintf(n, sizeof(n), "%u", meta->records);
    rd_kafka_header_add(h, LP_WIRE_H_RECORDS, -1, n, -1);
    return h;
}

int lp_kafka_wire_meta(const rd_kafka_message_t *m, struct lp_wire_meta *meta, char *why,
                       size_t whylen)
{
    rd_kafka_headers_t *h = NULL;
    lp_wire_meta_init(meta);
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || !h) {
        snprintf(why, whylen, "message has no headers (not a logpipe message)");
        return LP_EUNSUPP;
    }
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0;
         rd_kafka_header_get_all(h, i, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        int rc = lp_wire_meta_header(meta, name, val ? val : "", val ? len : 0, why, whylen);
        if (rc)
            return rc;
    }
    if (meta->format != LP_WIRE_FORMAT) {
        snprintf(why, whylen, "missing %s header (not a logpipe message)", LP_WIRE_H_FORMAT);
        return LP_EUNSUPP;
    }
    return 0;
}

int lp_kafka_create_topics(rd_kafka_t *rk, struct lp_kafka_new_topic *topics, size_t n,
                           int timeout_ms, char *err, size_t errlen)
{
    int rc = 0;
    if (err && errlen)
        err[0] = '\0';
    if (n == 0)
        return 0;
    rd_kafka_NewTopic_t **nt = lp_xcalloc(n, sizeof(*nt));
    char kerr[256];
    for (size_t i = 0; i < n; i++) {
        topics[i].created = -1;
        nt[i] = rd_kafka_NewTopic_new(topics[i].name, topics[i].partitions,
                                      topics[i].replication_factor, kerr, sizeof(kerr));
        if (!nt[i]) {
            snprintf(err, errlen, "topic %s: %s", topics[i].name, kerr);
            rc = LP_EKAFKA;
            goto out;
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, kerr, sizeof(kerr));
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, kerr, sizeof(kerr));
    rd_kafka_CreateTopics(rk, nt, n, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (!ev || !res || rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "create topics: %s",
                 !ev                        ? "no answer in time"
                 : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                                            : "no result");
        rc = LP_EKAFKA;
    } else {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t k = 0; k < cnt; k++) {
            const char *name = rd_kafka_topic_result_name(tr[k]);
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[k]);
            for (size_t i = 0; i < n; i++) {
                if (strcmp(topics[i].name, name) != 0)
                    continue;
                if (!e) {
                    topics[i].created = 1;
                    lp_log(LP_LOG_INFO, "topic created", "topic=%s partitions=%d replication=%d",
                           name, topics[i].partitions, topics[i].replication_factor);
                } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                    topics[i].created = 0;
                } else {
                    const char *why = rd_kafka_topic_result_error_string(tr[k]);
                    lp_log(LP_LOG_WARN, "cannot create topic", "topic=%s reason=\"%s\"", name,
                           why ? why : rd_kafka_err2str(e));
                    if (rc == 0)
                        snprintf(err, errlen, "topic %s: %s", name,
                                 why ? why : rd_kafka_err2str(e));
                    rc = LP_EKAFKA;
                }
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
out:
    for (size_t i = 0; i < n; i++)
        if (nt[i])
            rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    return rc;
}
