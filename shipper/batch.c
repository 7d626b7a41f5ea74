/* Events → batches → in-flight entries; delivery reports → checkpoint
 * advance or replay. A message that cannot be produced at all (librdkafka's
 * queue full, which the in-flight cap normally prevents) is treated like a
 * failed delivery: the tail replays from its checkpoint. Slower, never lossy. */
#define LP_LOG_MODULE "batch"
#include "shipper_int.h"

#include "lp_config.h"
#include "lp_error.h"
#include "lp_log.h"
#include "lp_time.h"

#include <stdlib.h>
#include <string.h>

static void send_or_replay(struct tail *t, struct lp_buf *value, const struct lp_wire_meta *meta,
                           uint64_t resume)
{
    if (produce_send(t->s, t, value, meta, resume) != 0)
        t->replay = 1;
}

/* Closes the open batch; resume is the offset from which re-reading
 * reproduces every event not in it or an earlier batch. */
static void close_at(struct tail *t, uint64_t resume)
{
    struct lp_shipper *s = t->s;
    int had = t->batch_open && t->enc.records > 0;
    t->batch_open = 0;
    if (!had || t->replay)
        return;
    struct lp_buf value = LP_BUF_INIT;
    struct lp_wire_meta meta;
    lp_wire_encoder_finish(&t->enc, &s->cctx, s->codec, (int)s->cfg->shipper.compression_level,
                           &value, &meta);
    lp_counter_inc(s->m.batches);
    lp_counter_add(s->m.batch_bytes, value.len);
    send_or_replay(t, &value, &meta, resume);
    lp_buf_release(&value);
}

int batch_on_event(void *ctx, const struct lp_event *ev)
{
    struct tail *t = ctx;
    struct lp_shipper *s = t->s;
    lp_counter_inc(s->m.events);
    if (t->replay)
        return 0; /* everything after the checkpoint will be read again */
    if (!t->batch_open)
        tail_meta_refresh(t); /* a batch carries the pod's metadata as it is now */
    if (t->excluded) {
        lp_counter_inc(s->m.excluded);
        if (t->ns)
            lp_counter_inc(t->ns[NS_EXCLUDED]);
        return 0; /* batch_after_line checkpoints past it */
    }
    if (t->ns) {
        lp_counter_inc(t->ns[NS_EVENTS]);
        lp_counter_add(t->ns[NS_BYTES], ev->len);
    }
    struct lp_wire_record r = {ev->ts_ns,  lp_stream_name(ev->stream),
                               ev->offset, ev->msg,
                               ev->len,    ev->flags,
                               ev->lines,  NULL,
                               0};
    if (s->record_mode) {
        lp_buf_reset(&s->evbuf);
        lp_wire_ecs_event(&t->src, &r, &s->evbuf);
        struct lp_wire_meta meta = {LP_WIRE_FORMAT, 0, LP_CODEC_IDENTITY, 1};
        /* the next event starts after this one; batch_after_line lifts the
         * last message's resume offset once the line is consumed */
        send_or_replay(t, &s->evbuf, &meta, ev->offset);
        t->sent_in_feed = 1;
        return 0;
    }
    if (!t->batch_open) {
        /* one allocation of the batch's size (+ one line), not a doubling
         * series that ends at twice it */
        lp_buf_reserve(&t->enc.ndjson,
                       (size_t)s->cfg->shipper.batch_max_bytes + ev->len * 2 + 4096);
        lp_wire_encoder_begin(&t->enc, &t->src);
        t->batch_open = 1;
        t->batch_started_ns = lp_time_mono_ns();
    }
    if (lp_wire_encoder_add(&t->enc, &r) == LP_ETOOBIG) {
        /* full in the middle of a feed: every event not in the batch starts
         * at or after this one (events come in offset order) */
        close_at(t, ev->offset);
        lp_wire_encoder_begin(&t->enc, &t->src);
        t->batch_open = 1;
        t->batch_started_ns = lp_time_mono_ns();
        if (lp_wire_encoder_add(&t->enc, &r) != 0)
            lp_log(LP_LOG_ERROR, "event larger than a batch", "path=\"%s\" offset=%llu", t->path,
                   (unsigned long long)ev->offset); /* the raw limit prevents it */
    }
    return 0;
}

void batch_close(struct tail *t)
{
    close_at(t, tail_resume_offset(t));
}

void batch_after_line(struct tail *t)
{
    struct lp_shipper *s = t->s;
    if (t->excluded && !t->batch_open && !t->ninflight && !t->replay) {
        /* an excluded pod's lines count as delivered once nothing of it is
         * in flight: the checkpoint moves past them */
        uint64_t resume = tail_resume_offset(t);
        if (resume > t->acked_off)
            t->acked_off = resume;
    }
    if (t->sent_in_feed) {
        t->sent_in_feed = 0;
        uint64_t resume = tail_resume_offset(t);
        if (t->fifo_last && t->fifo_last->gen == t->gen && resume > t->fifo_last->resume_off)
            t->fifo_last->resume_off = resume;
    }
    if (t->batch_open &&
        (t->enc.records >= (uint32_t)s->cfg->shipper.batch_max_records ||
         lp_wire_encoder_raw_size(&t->enc) >= (size_t)s->cfg->shipper.batch_max_bytes))
        batch_close(t);
}

void batch_tick(struct tail *t, int64_t now_ns)
{
    if (t->batch_open &&
        now_ns - t->batch_started_ns >= t->s->cfg->shipper.batch_linger_ms * LP_NS_PER_MS) {
        batch_close(t);
        /* a batch closed by time belongs to a quiet file: give its buffer
         * back, so a thousand idle files cost little memory */
        lp_buf_release(&t->enc.ndjson);
    }
}

void batch_discard(struct tail *t)
{
    t->batch_open = 0;
}

void batch_replay_if_due(struct tail *t)
{
    if (!t->replay || t->ninflight)
        return;
    struct lp_shipper *s = t->s;
    lp_counter_inc(s->m.replays);
    lp_log(LP_LOG_WARN, "replaying from the checkpoint", "path=\"%s\" offset=%llu read_offset=%llu",
           t->path, (unsigned long long)t->acked_off, (unsigned long long)t->read_off);
    t->replay = 0;
    /* a drained rotated file being closed must be read again, not closed
     * with its unacknowledged tail */
    t->closing = 0;
    batch_discard(t);
    uint64_t off = t->acked_off;
    tail_rewind(t, off);
}

void batch_delivered(struct inflight *e, rd_kafka_resp_err_t err)
{
    struct tail *t = e->t;
    if (!t) {
        free(e); /* its tail is gone (shutdown) */
        return;
    }
    struct lp_shipper *s = t->s;
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        /* permanent: replaying would loop forever. Counted, never silent. */
        lp_counter_add(s->m.lost_too_large, e->bytes);
        lp_log(LP_LOG_ERROR, "batch rejected as too large by the broker; skipped",
               "path=\"%s\" bytes=%zu hint=\"raise the topic's max.message.bytes or lower "
               "kafka.max_message_bytes\"",
               t->path, e->bytes);
        e->state = ENTRY_OK;
    } else {
        e->state = err ? ENTRY_FAILED : ENTRY_OK;
    }
    if (e->state == ENTRY_FAILED && e->gen == t->gen)
        t->replay = 1;
    else if (e->state == ENTRY_FAILED) {
        /* from before a truncation: the bytes are gone from the file */
        lp_counter_add(s->m.lost_truncated, e->bytes);
        lp_log(LP_LOG_ERROR, "undeliverable batch from before a truncation: lost",
               "path=\"%s\" compressed_bytes=%zu", t->path, e->bytes);
    }
    /* advance over the unbroken delivered prefix */
    while (t->fifo && t->fifo->state != ENTRY_PENDING) {
        struct inflight *h = t->fifo;
        if (h->state == ENTRY_OK && !t->replay && h->gen == t->gen)
            t->acked_off = h->resume_off;
        t->fifo = h->next;
        if (!t->fifo)
            t->fifo_last = NULL;
        t->ninflight--;
        free(h);
    }
    batch_replay_if_due(t);
}
