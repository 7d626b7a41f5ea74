/* The Kafka producer: configuration, sending batches, delivery reports,
 * and rebuilding after a fatal error (librdkafka 2.0.2's idempotence bug).
 *
 * Ordering matters downstream (the file output skips offsets at or below a
 * source's watermark), so by default: no idempotence, one request in
 * flight per connection, unlimited retries and no message timeout. A
 * broker outage then stalls delivery instead of failing it, and the
 * in-flight cap stops reading (the files are the buffer). */
#define LP_LOG_MODULE "produce"
#include "shipper_int.h"

#include "lp_alloc.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_http.h"
#include "lp_kafka.h"
#include "lp_log.h"
#include "lp_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct lp_shipper *s = opaque;
    struct inflight *e = m->_private;
    if (!e)
        return;
    s->inflight_bytes -= e->bytes;
    lp_gauge_set(s->m.inflight_bytes, (int64_t)s->inflight_bytes);
    if (m->err) {
        lp_log_ratelimited(LP_LOG_WARN, "delivery failed", "error=\"%s\" code=%d",
                           rd_kafka_err2str(m->err), (int)m->err);
        char name[64];
        snprintf(name, sizeof(name), "code=\"%s\"", rd_kafka_err2name(m->err));
        struct lp_counter *c =
            lp_metrics_counter(s->metrics, "logpipe_shipper_delivery_errors_total",
                               "Failed deliveries by librdkafka error code.", name);
        if (c)
            lp_counter_inc(c);
    } else {
        lp_counter_inc(s->m.records_produced);
        s->kafka_up = 1;
        lp_ready_set(s->kafka_ready, 1);
    }
    batch_delivered(e, m->err);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct lp_shipper *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        lp_log(LP_LOG_ERROR, "fatal producer error; rebuilding the producer and replaying",
               "error=\"%s\" cause=\"%s\"", rd_kafka_err2name(orig), why);
        s->fatal = 1;
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        s->kafka_up = 0;
        lp_ready_set(s->kafka_ready, 0);
        lp_log_ratelimited(LP_LOG_WARN,
                           "all brokers down; reading pauses when the in-flight "
                           "cap is reached",
                           "reason=\"%s\"", reason);
        return;
    }
    lp_log_ratelimited(LP_LOG_WARN, "kafka client error", "error=\"%s\" reason=\"%s\"",
                       rd_kafka_err2name(err), reason);
}

int produce_init(struct lp_shipper *s, char *err, size_t errlen)
{
    const struct lp_config *cfg = s->cfg;
    struct lp_kvlist props = {0};
    char num[32];
    lp_kvlist_set(&props, "bootstrap.servers", cfg->kafka.brokers);
    lp_kvlist_set(&props, "client.id", cfg->kafka.client_id);
    lp_kvlist_set(&props, "acks", "all");
    lp_kvlist_set(&props, "enable.idempotence", "false");
    lp_kvlist_set(&props, "max.in.flight.requests.per.connection", "1");
    lp_kvlist_set(&props, "message.send.max.retries", "2147483647");
    lp_kvlist_set(&props, "retry.backoff.ms", "250");
    lp_kvlist_set(&props, "message.timeout.ms", "0");
    lp_kvlist_set(&props, "linger.ms", "5");
    /* our batches are already compressed buffers: pass them by reference
     * instead of copying them into request buffers (halves in-flight memory) */
    lp_kvlist_set(&props, "message.copy.max.bytes", "1024");
    lp_kvlist_set(&props, "compression.codec", s->record_mode ? "zstd" : "none");
    snprintf(num, sizeof(num), "%lld", (long long)(cfg->kafka.max_message_bytes + 65536));
    lp_kvlist_set(&props, "message.max.bytes", num);
    /* librdkafka's own queue holds more than our in-flight cap, so the cap
     * (not QUEUE_FULL) is what stops reading */
    snprintf(num, sizeof(num), "%lld",
             (long long)(cfg->shipper.max_inflight_bytes / 1024 * 2 + 1024));
    lp_kvlist_set(&props, "queue.buffering.max.kbytes", num);
    lp_kvlist_set(&props, "queue.buffering.max.messages", "1000000");
    for (size_t i = 0; i < cfg->kafka.properties.n; i++)
        lp_kvlist_set(&props, cfg->kafka.properties.items[i].key,
                      cfg->kafka.properties.items[i].value);
    rd_kafka_conf_t *conf = lp_kafka_conf_new(&props, err, errlen);
    lp_kvlist_release(&props);
    if (!conf)
        return LP_EKAFKA;
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char why[512];
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create the Kafka producer: %s", why);
        return LP_EKAFKA;
    }
    s->fatal = 0;
    return 0;
}

/* Fails every queued and in-flight message (their reports mark the tails
 * for replay) and destroys the producer. */
static void purge_and_destroy(struct lp_shipper *s)
{
    if (!s->rk)
        return;
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (int i = 0; i < 100 && rd_kafka_outq_len(s->rk) > 0; i++)
        rd_kafka_poll(s->rk, 50);
    rd_kafka_poll(s->rk, 0);
    rd_kafka_destroy(s->rk);
    s->rk = NULL;
    /* A message whose report did not come before the destroy never will:
     * fail it here, or its tail would wait for it forever. */
    for (struct tail *t = s->tails; t; t = t->next) {
        size_t n = 0;
        for (struct inflight *e = t->fifo; e; e = e->next)
            n += e->state == ENTRY_PENDING;
        if (!n)
            continue;
        struct inflight **pending = lp_xmalloc(n * sizeof(*pending));
        n = 0;
        for (struct inflight *e = t->fifo; e; e = e->next)
            if (e->state == ENTRY_PENDING)
                pending[n++] = e;
        /* in FIFO order: each call frees only entries already reported */
        for (size_t i = 0; i < n; i++) {
            s->inflight_bytes -= pending[i]->bytes;
            batch_delivered(pending[i], RD_KAFKA_RESP_ERR__PURGE_QUEUE);
        }
        free(pending);
    }
    lp_gauge_set(s->m.inflight_bytes, (int64_t)s->inflight_bytes);
}

void produce_free(struct lp_shipper *s)
{
    purge_and_destroy(s);
}

void produce_rebuild_if_fatal(struct lp_shipper *s)
{
    if (!s->fatal)
        return;
    lp_counter_inc(s->m.fatal_rebuilds);
    purge_and_destroy(s);
    char err[512];
    if (produce_init(s, err, sizeof(err)))
        lp_log(LP_LOG_ERROR, "cannot rebuild the producer; retrying", "error=\"%s\"", err);
    /* tails were marked for replay by the purge reports */
}

int produce_send(struct lp_shipper *s, struct tail *t, struct lp_buf *value,
                 const struct lp_wire_meta *meta, uint64_t resume_off)
{
    if (!s->rk)
        return LP_EKAFKA;
    struct inflight *e = lp_xcalloc(1, sizeof(*e));
    e->t = t;
    e->gen = t->gen;
    e->resume_off = resume_off;
    e->bytes = value->len;
    rd_kafka_headers_t *h = lp_kafka_wire_headers(meta);
    size_t len;
    char *payload = lp_buf_detach(value, &len);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(s->cfg->kafka.topic), RD_KAFKA_V_KEY(t->sid, LP_ID_HEX_LEN),
        RD_KAFKA_V_VALUE(payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h);
        free(payload);
        free(e);
        lp_log_ratelimited(LP_LOG_WARN, "produce refused; the file will be replayed",
                           "path=\"%s\" error=\"%s\"", t->path, rd_kafka_err2str(err));
        return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? LP_EAGAIN : LP_EKAFKA;
    }
    if (t->fifo_last)
        t->fifo_last->next = e;
    else
        t->fifo = e;
    t->fifo_last = e;
    t->ninflight++;
    s->inflight_bytes += e->bytes;
    lp_gauge_set(s->m.inflight_bytes, (int64_t)s->inflight_bytes);
    return 0;
}

void produce_poll(struct lp_shipper *s, int timeout_ms)
{
    if (!s->rk)
        return;
    rd_kafka_poll(s->rk, timeout_ms);
    /* ready once the cluster answered (a known controller), without
     * blocking; not ready again after "all brokers down" */
    if (!s->kafka_up && rd_kafka_controllerid(s->rk, 0) >= 0) {
        s->kafka_up = 1;
        lp_ready_set(s->kafka_ready, 1);
    }
}
