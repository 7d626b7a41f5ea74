/* logpipe-aggregator's engine (aggregator.h). */
#define LP_LOG_MODULE "aggregator"
#include "aggregator.h"
#include "lp_alloc.h"
#include "lp_error.h"

#include "lp_deadletter.h"
#include "lp_arena.h"
#include "lp_buf.h"
#include "lp_bulk.h"
#include "lp_codec.h"
#include "lp_config.h"
#include "lp_eventid.h"
#include "lp_http.h"
#include "lp_kafka.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_tenants.h"
#include "lp_time.h"
#include "lp_wire.h"
#include "lp_output.h"
#include "lp_regex.h"
#include "pipeline.h"
#include "redact.h"
#include "lp_tracker.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A configured output: its implementation and the object it made. */
struct output {
    const struct lp_output_ops *ops;
    struct lp_output *o;
    struct lp_ready *ready;
    const char **routes; /* names of the routes that send here (env.routes) */
    size_t n_routes;
};

enum item_kind { IT_MSG, IT_OPEN, IT_CLOSE, IT_ABANDON };

struct item {
    struct item *next;
    enum item_kind kind;
    rd_kafka_message_t *rkm;
    struct lp_msg *m;
    int32_t partition;
    atomic_int *done; /* IT_CLOSE / IT_ABANDON: set (release) by the worker when handled */
};

struct unsynced {
    rd_kafka_message_t *rkm;
    struct lp_msg *m;
};

struct worker {
    struct lp_aggregator *a;
    struct lp_counter *const *ns; /* the batch in hand's namespace counters (NULL: off) */
    int started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *head, *tail;
    /* set (release) by lp_aggregator_free under mu; read by the worker, also
     * outside mu (a failing disk's retry loop, the dead letter's): acquire */
    atomic_int stop;
    /* worker thread only */
    struct lp_arena arena;
    struct lp_buf scratch;
    struct lp_buf doc; /* the event being written */
    struct lp_codec_ctx codec;
    size_t decode_held; /* what this worker counts in decode_total now */
    void **lanes;       /* [output]: this worker's lane of each output */
    struct unsynced *uns;
    size_t n_uns, cap_uns;
    size_t uns_bytes;
    int64_t first_uns; /* monotonic time of the oldest unsynced message */
    int64_t last_tick;
    int sync_failed; /* a synced output's submit failed: replays stop, sync fails */
};

struct lp_aggregator {
    const struct lp_config *cfg;
    struct lp_metrics *metrics;
    rd_kafka_t *rk;
    char *topic;
    struct output *outs;
    size_t n_outs;
    const char **out_names;
    struct agg_pipeline *pipe;
    struct lp_dlq *dlq;
    struct worker *workers;
    size_t n_workers;
    struct lp_part **parts; /* by partition number; NULL = not ours */
    size_t n_parts;
    size_t n_assigned;
    struct lp_part *detached;
    atomic_int stopping; /* set by lp_aggregator_shutdown (main thread); read by the workers */
    _Atomic size_t held_total;   /* bytes the outputs hold, decoded and rendered (lp_part_held) */
    _Atomic size_t decode_total; /* the workers' decode working sets (count_decode) */
    size_t prefetch_bytes;       /* librdkafka's prefetch queue (queued.max.messages.kbytes) */
    size_t work_budget;          /* max_pending_bytes less the prefetch and the baseline */
    int64_t last_tick, last_commit, commit_started, last_lag;
    int stored_since_commit;
    struct lp_ready *kafka_ready;
    /* metrics */
    struct lp_counter *c_messages, *c_records, *c_bytes;
    struct lp_tenants *tenants;       /* per-namespace volume (metrics.max_namespaces) */
    struct lp_counter **c_route;      /* [route] */
    struct lp_counter **c_route_out;  /* [route * n_outs + output] */
    struct lp_counter **c_parse_fail; /* [route] */
    struct lp_counter **c_dropped;    /* [route * AGG_VERDICTS + verdict] */
    struct lp_counter *c_decode_fail, *c_commits, *c_commit_errors, *c_pauses, *c_rebalances;
    struct lp_gauge *g_paused, *g_pending, *g_assigned, *g_held, *g_decode, *g_out_buffers;
    struct lp_counter *c_budget_waits;
    struct lp_histogram *h_commit;
};

/* ---- workers ---- */

static void worker_push(struct worker *w, struct item *it)
{
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The memory budget (max_pending_bytes) is the whole process's. Fixed costs
 * are set aside first (set_budget): librdkafka's prefetch queue, each
 * elasticsearch output's request bodies (max_inflight_requests + 1 of
 * bulk_max_bytes) and a baseline for the rest (libraries, thread stacks,
 * metrics, buffers kept between messages, the allocator's slack); what
 * remains, never less than half of the budget, is the work budget. It
 * covers what the outputs hold, rendered (held_total), and the workers'
 * decode working sets while they process a message (decode_total: the
 * decompressed message and its records, up to about
 * max_decompressed_bytes x 2 each).
 *
 * While held + decode (+ extra: what the worker is about to decode) exceed
 * the work budget and the outputs hold anything, the worker waits before
 * decoding or rendering more: one Kafka message can decode into a million
 * documents, and pausing the partitions only stops the next ones. When the
 * outputs hold nothing it goes on even over the budget (a single message
 * bigger than the budget is still processed; nothing else is rendered
 * meanwhile). It also gives up waiting when it must stop or a partition is
 * being closed, so a rebalance during an outage is not held up. */
static void wait_for_budget(struct worker *w, size_t extra)
{
    struct lp_aggregator *a = w->a;
    size_t budget = a->work_budget;
    int counted = 0;
    for (;;) {
        size_t held = atomic_load_explicit(&a->held_total, memory_order_relaxed);
        size_t dec = atomic_load_explicit(&a->decode_total, memory_order_relaxed);
        if (held == 0 || held + dec + extra <= budget)
            return;
        pthread_mutex_lock(&w->mu);
        int leave = atomic_load_explicit(&w->stop, memory_order_acquire) ||
                    atomic_load_explicit(&a->stopping, memory_order_acquire);
        for (struct item *it = w->head; it && !leave; it = it->next)
            leave = it->kind == IT_CLOSE || it->kind == IT_ABANDON;
        pthread_mutex_unlock(&w->mu);
        if (leave)
            return;
        if (!counted++)
            lp_counter_inc(a->c_budget_waits);
        struct timespec ts = {0, 5 * LP_NS_PER_MS};
        nanosleep(&ts, NULL);
    }
}

/* What the outputs' buffers hold now (a gauge), and their bound (set aside
 * in set_budget) in *reserved. */
static size_t out_buffers(struct lp_aggregator *a, size_t *reserved)
{
    size_t n = 0, r = 0;
    for (size_t i = 0; i < a->n_outs; i++) {
        size_t ri = 0;
        if (a->outs[i].ops->memory)
            n += a->outs[i].ops->memory(a->outs[i].o, &ri);
        r += ri;
    }
    if (reserved)
        *reserved = r;
    return n;
}

#define BASELINE_BYTES (16u << 20)

static void set_budget(struct lp_aggregator *a)
{
    size_t budget = (size_t)a->cfg->aggregator.max_pending_bytes;
    a->prefetch_bytes = budget / 8 < (32u << 20) ? budget / 8 : (32u << 20);
    if (a->prefetch_bytes < (1u << 20))
        a->prefetch_bytes = 1u << 20;
    size_t outs;
    out_buffers(a, &outs);
    size_t reserve = a->prefetch_bytes + BASELINE_BYTES + outs;
    a->work_budget = reserve < budget / 2 ? budget - reserve : budget - budget / 2;
}

/* Counts the worker's decode working set (the decompressed message, the
 * decoded records, the render buffer) in decode_total: bytes = what it
 * holds now, 0 when the message is done. */
static void count_decode(struct worker *w, size_t bytes)
{
    struct lp_aggregator *a = w->a;
    if (bytes > w->decode_held)
        atomic_fetch_add_explicit(&a->decode_total, bytes - w->decode_held, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&a->decode_total, w->decode_held - bytes, memory_order_relaxed);
    w->decode_held = bytes;
}

/* A worker's decode arena holds a message's records and strings: up to
 * twice the decompressed cap plus this. */
#define ARENA_SLACK (16u << 20)

/* After a message: buffers grown past this are given back, so one huge
 * message does not keep its working set for the life of the worker. */
#define KEEP_BUF_BYTES (8u << 20)

static void trim_buffers(struct worker *w)
{
    if (w->scratch.cap > KEEP_BUF_BYTES)
        lp_buf_release(&w->scratch);
    if (w->doc.cap > KEEP_BUF_BYTES)
        lp_buf_release(&w->doc);
    lp_arena_reset(&w->arena);
    count_decode(w, 0); /* what is kept (at most KEEP_BUF_BYTES each) is baseline */
}

/* A record a route's cost controls dropped: decoded and taken by its route
 * like any other (records_in_total, route_records_total), then dropped. */
/* The aggregator's per-namespace counters (lp_tenants), in this order; a
 * verdict's counter is NS_DROPPED + verdict - 1. */
enum { NS_RECORDS, NS_BYTES, NS_DROPPED, NS_SAMPLED, NS_RATE_LIMITED, NS_FAMILIES };
static const char *const ns_families[NS_FAMILIES] = {
    "logpipe_aggregator_namespace_records_total", "logpipe_aggregator_namespace_bytes_total",
    "logpipe_aggregator_namespace_dropped_total", "logpipe_aggregator_namespace_sampled_out_total",
    "logpipe_aggregator_namespace_rate_limited_total"};
static const char *const ns_helps[NS_FAMILIES] = {
    "Records decoded, by namespace (metrics.max_namespaces series; later ones: _other).",
    "Bytes of the records' messages, by namespace.",
    "Records a route that drops dropped, by namespace.",
    "Records outside their route's sample, by namespace.",
    "Records over their route's rate limit, by namespace."};

static void count_dropped(struct worker *w, size_t route, enum agg_verdict v)
{
    struct lp_aggregator *a = w->a;
    lp_counter_inc(a->c_records);
    lp_counter_inc(a->c_route[route]);
    lp_counter_inc(a->c_dropped[route * AGG_VERDICTS + v]);
    if (w->ns && v != AGG_KEEP)
        lp_counter_inc(w->ns[NS_DROPPED + (int)v - 1]);
}

/* An undecodable message dead-lettered under redaction rules: the rules can
 * only see into its value decompressed, so a compressed value that
 * decompresses (within max_decompressed_bytes) is stored so, redacted, and
 * the reason says it. One that does not stays as it is: counted, since no
 * rule could read it. */
static void redactable_payload(struct worker *w, rd_kafka_message_t *rkm,
                               const struct lp_wire_meta *meta, struct lp_dlq_entry *e,
                               struct lp_buf *plain, char *reason, size_t reason_len)
{
    struct lp_aggregator *a = w->a;
    if (!rkm->payload || meta->encoding == LP_CODEC_IDENTITY)
        return;
    size_t cap = (size_t)a->cfg->aggregator.max_decompressed_bytes;
    if (lp_codec_decompress(&w->codec, meta->encoding, rkm->payload, rkm->len, cap, plain) == 0) {
        snprintf(reason, reason_len, "%s; raw_base64 is the value decompressed (%s) for redaction",
                 e->reason, lp_codec_name(meta->encoding));
        e->reason = reason;
        e->raw = plain->data;
        e->raw_len = plain->len;
        return;
    }
    lp_counter_inc(lp_metrics_counter(
        a->metrics, "logpipe_aggregator_redact_opaque_total",
        "Undecodable messages dead-lettered compressed as they came, under redaction rules: the "
        "value does not decompress, so no rule could read it.",
        NULL));
}

/* Decodes one message into batch (the worker's arena and scratch), within
 * the memory budget. 0, or an error with why set. */
static int decode(struct worker *w, rd_kafka_message_t *rkm, struct lp_wire_meta *meta,
                  struct lp_wire_batch *batch, char *why, size_t whylen)
{
    struct lp_aggregator *a = w->a;
    lp_arena_reset(&w->arena);
    int rc = lp_kafka_wire_meta(rkm, meta, why, whylen);
    if (!rc) {
        /* room for what the message will decode into, before decoding it:
         * the size its frames state (else a guess) and its records */
        size_t cap = (size_t)a->cfg->aggregator.max_decompressed_bytes;
        size_t expect = lp_codec_stated_size(meta->encoding, rkm->payload, rkm->len);
        if (!expect)
            expect = rkm->len * 4;
        if (expect > cap)
            expect = cap;
        /* the record count is the header's claim: at most what the arena
         * allows; each record and its smallest string copy */
        size_t recs =
            (size_t)(meta->batch ? meta->records : 1) * (sizeof(struct lp_wire_record) + 16);
        expect += recs < 2 * cap + ARENA_SLACK ? recs : 2 * cap + ARENA_SLACK;
        wait_for_budget(w, expect); /* between messages the worker counts nothing */
        count_decode(w, expect);
        rc = lp_wire_decode(meta, rkm->payload, rkm->len, cap, &w->codec, &w->scratch, &w->arena,
                            batch, why, whylen);
    }
    count_decode(w, w->scratch.cap + w->doc.cap + lp_arena_bytes(&w->arena));
    return rc;
}

/* A message that does not decode: counted and dead-lettered whole. */
static void dead_letter_message(struct worker *w, rd_kafka_message_t *rkm,
                                const struct lp_wire_meta *meta, const char *why)
{
    struct lp_aggregator *a = w->a;
    lp_counter_inc(a->c_decode_fail);
    lp_log_ratelimited(LP_LOG_WARN, "undecodable message; dead-lettered",
                       "partition=%d offset=%lld reason=\"%s\"", (int)rkm->partition,
                       (long long)rkm->offset, why);
    struct lp_dlq_entry e = {"decode",
                             why,
                             NULL,
                             a->topic,
                             rkm->partition,
                             rkm->offset,
                             NULL,
                             0,
                             rkm->payload ? rkm->payload : "",
                             rkm->len};
    struct lp_buf plain;
    lp_buf_init(&plain, 0);
    char reason[700];
    if (agg_pipeline_redactor(a->pipe))
        redactable_payload(w, rkm, meta, &e, &plain, reason, sizeof(reason));
    lp_dlq_write(a->dlq, &e, &w->stop);
    lp_buf_release(&plain);
}

/* One record rendered: its event as text (and parsed, off the fast path). */
struct rendered {
    size_t route;
    char *text; /* w->doc.data or json_dumps's (freed by done_record) */
    size_t len;
    json_t *ev;
    int failed; /* its parser failed */
};

/* Renders record r of batch: 1 with *out set, 0 when it goes nowhere (its
 * route's cost controls dropped it, counted; or it could not be rendered:
 * dead-lettered). replay: counts nothing, writes no dead letter. */
static int render(struct worker *w, rd_kafka_message_t *rkm, const struct lp_wire_batch *batch,
                  const struct lp_wire_record *r, const char *id, const char *ingested, int64_t now,
                  int replay, struct rendered *out)
{
    struct lp_aggregator *a = w->a;
    *out = (struct rendered){agg_pipeline_match_record(a->pipe, &batch->src, r), NULL, 0, NULL, 0};
    enum agg_verdict verdict = AGG_KEEP;
    if (out->route != SIZE_MAX && agg_pipeline_fast(a->pipe, out->route, &batch->src)) {
        /* the verdict once per record (a rate limit counts it): here on the
         * fast path, in agg_pipeline_event otherwise */
        verdict = agg_pipeline_keep(a->pipe, out->route, &batch->src, r, id);
        if (verdict != AGG_KEEP) {
            if (!replay)
                count_dropped(w, out->route, verdict);
            return 0;
        }
        lp_buf_reset(&w->doc);
        if (agg_pipeline_render(a->pipe, &batch->src, r, id, ingested, &w->doc))
            abort(); /* out of memory: the buffer has no limit */
        out->text = w->doc.data;
        out->len = w->doc.len;
        return 1;
    }
    out->ev = agg_pipeline_event(a->pipe, &batch->src, r, id, now, &w->doc, &out->route, &verdict,
                                 &out->failed);
    if (out->ev && verdict != AGG_KEEP) {
        if (!replay)
            count_dropped(w, out->route, verdict);
        json_decref(out->ev);
        return 0;
    }
    if (!out->ev) {
        /* the record could not be rendered as an event (out of memory):
         * keep its message, raw */
        if (!replay) {
            struct lp_dlq_entry e = {"parse",        "the record could not be rendered as an event",
                                     NULL,           a->topic,
                                     rkm->partition, rkm->offset,
                                     NULL,           0,
                                     r->message,     r->message_len};
            lp_dlq_write(a->dlq, &e, &w->stop);
        }
        return 0;
    }
    out->text = json_dumps(out->ev, JSON_COMPACT);
    if (!out->text)
        abort();
    out->len = strlen(out->text);
    return 1;
}

/* Hands a rendered record to its route's outputs (replay: the synced ones
 * only, counting nothing). */
static void deliver(struct worker *w, struct lp_output_doc *d, size_t route, int replay)
{
    struct lp_aggregator *a = w->a;
    const struct agg_route_info *ri = agg_pipeline_route(a->pipe, route);
    for (size_t k = 0; k < ri->n_outputs; k++) {
        size_t oi = ri->outputs[k];
        const struct output *o = &a->outs[oi];
        int synced = (o->ops->flags & LP_OUTPUT_SYNCED) != 0;
        if (replay && !synced)
            continue;
        int rc = o->ops->submit(o->o, w->lanes[oi], d, replay);
        if (rc < 0) {
            if (synced)
                w->sync_failed = 1; /* the worker syncs, fails, replays */
            continue;
        }
        if (rc != LP_OUTPUT_SKIPPED && !replay)
            lp_counter_inc(a->c_route_out[route * a->n_outs + oi]);
        if (rc == LP_OUTPUT_HANDED)
            wait_for_budget(w, 0);
    }
}

/* Runs one message through decode, pipeline and outputs. replay: again,
 * to the synced outputs only, after one of them failed (everything else
 * was already handed over). */
static void process(struct worker *w, rd_kafka_message_t *rkm, struct lp_msg *m, int replay)
{
    struct lp_aggregator *a = w->a;
    char why[512];
    struct lp_wire_meta meta;
    struct lp_wire_batch batch;
    if (decode(w, rkm, &meta, &batch, why, sizeof(why))) {
        trim_buffers(w);
        if (!replay)
            dead_letter_message(w, rkm, &meta, why);
        return;
    }
    int64_t now = lp_time_real_ns();
    char ingested_buf[LP_RFC3339_MAX];
    const char *ingested = agg_pipeline_ingested(a->pipe, now, ingested_buf);
    size_t sid_len = strlen(batch.src.source_id);
    w->ns = replay ? NULL : lp_tenants_get(a->tenants, batch.src.k8s_namespace);
    for (size_t i = 0; i < batch.n; i++) {
        const struct lp_wire_record *r = &batch.recs[i];
        if (w->ns) {
            lp_counter_inc(w->ns[NS_RECORDS]);
            lp_counter_add(w->ns[NS_BYTES], r->message_len);
        }
        char id[LP_ID_HEX_LEN + 1];
        lp_event_id(batch.src.source_id, sid_len, r->offset, id);
        struct rendered rd;
        if (!render(w, rkm, &batch, r, id, ingested, now, replay, &rd))
            continue;
        if (!replay) {
            lp_counter_inc(a->c_records);
            lp_counter_inc(a->c_route[rd.route]);
            if (rd.failed)
                lp_counter_inc(a->c_parse_fail[rd.route]);
        }
        struct lp_output_doc d = {m,
                                  rkm->partition,
                                  rkm->offset,
                                  agg_pipeline_route(a->pipe, rd.route)->name,
                                  batch.src.source_id,
                                  r->offset,
                                  id,
                                  rd.text,
                                  rd.len,
                                  rd.ev,
                                  r->stream,
                                  r->ts_ns,
                                  now};
        deliver(w, &d, rd.route, replay);
        if (rd.text != w->doc.data)
            free(rd.text);
        json_decref(d.ev); /* rd.ev, or what an output parsed */
    }
    for (size_t oi = 0; oi < a->n_outs; oi++)
        if (a->outs[oi].ops->flush)
            a->outs[oi].ops->flush(a->outs[oi].o, w->lanes[oi]);
    trim_buffers(w);
}

/* Tells every output's lane of this worker about a partition. */
static void lanes_partition(struct worker *w, int32_t partition, enum lp_output_part ev)
{
    struct lp_aggregator *a = w->a;
    for (size_t oi = 0; oi < a->n_outs; oi++)
        if (a->outs[oi].ops->partition)
            a->outs[oi].ops->partition(a->outs[oi].o, w->lanes[oi], partition, ev);
}

/* Syncs every synced output's lane: 0, or the first failure. */
static int sync_lanes(struct worker *w)
{
    struct lp_aggregator *a = w->a;
    int rc = w->sync_failed ? -EIO : 0;
    for (size_t oi = 0; oi < a->n_outs && !rc; oi++)
        if (a->outs[oi].ops->flags & LP_OUTPUT_SYNCED)
            rc = a->outs[oi].ops->sync(a->outs[oi].o, w->lanes[oi]);
    return rc;
}

/* Makes every unsynced message durable in the synced outputs (retrying
 * through disk errors: their lanes are reset, which reopens and recovers
 * the segments, and the messages written since the last sync are written
 * again — the watermarks skip what made it), then releases the worker's
 * holds. */
static void flush_unsynced(struct worker *w)
{
    int64_t backoff_ns = 0;
    for (;;) {
        if (sync_lanes(w) == 0)
            break;
        if (atomic_load_explicit(&w->stop, memory_order_acquire))
            return; /* keep the holds: not durable, not stored */
        lanes_partition(w, -1, LP_OUTPUT_ABANDON);
        w->sync_failed = 0;
        backoff_ns = backoff_ns ? backoff_ns * 2 : 100 * LP_NS_PER_MS;
        if (backoff_ns > 5 * LP_NS_PER_SEC)
            backoff_ns = 5 * LP_NS_PER_SEC;
        struct timespec ts = {backoff_ns / LP_NS_PER_SEC, backoff_ns % LP_NS_PER_SEC};
        nanosleep(&ts, NULL);
        for (size_t i = 0; i < w->n_uns && !w->sync_failed; i++)
            process(w, w->uns[i].rkm, w->uns[i].m, 1);
    }
    for (size_t i = 0; i < w->n_uns; i++) {
        rd_kafka_message_destroy(w->uns[i].rkm);
        lp_msg_release(w->uns[i].m);
    }
    w->n_uns = 0;
    w->uns_bytes = 0;
}

/* Drops the unsynced messages of a lost partition: their holds are released
 * (the partition is detached: nothing of it is stored). */
static void drop_unsynced(struct worker *w, int32_t partition)
{
    size_t k = 0;
    for (size_t i = 0; i < w->n_uns; i++) {
        if (w->uns[i].rkm->partition == partition) {
            rd_kafka_message_destroy(w->uns[i].rkm);
            lp_msg_release(w->uns[i].m);
        } else {
            w->uns[k++] = w->uns[i];
        }
    }
    w->n_uns = k;
}

static void handle(struct worker *w, struct item *it)
{
    switch (it->kind) {
    case IT_MSG:
        LP_ALLOC_GROW(w->uns, w->n_uns + 1, w->cap_uns, 64);
        if (w->n_uns == 0)
            w->first_uns = lp_time_mono_ns();
        w->uns[w->n_uns++] = (struct unsynced){it->rkm, it->m};
        w->uns_bytes += it->rkm->len;
        process(w, it->rkm, it->m, 0);
        break;
    case IT_OPEN: lanes_partition(w, it->partition, LP_OUTPUT_OPEN); break;
    case IT_CLOSE:
        flush_unsynced(w);
        lanes_partition(w, it->partition, LP_OUTPUT_CLOSE);
        break;
    case IT_ABANDON:
        drop_unsynced(w, it->partition);
        lanes_partition(w, it->partition, LP_OUTPUT_ABANDON);
        break;
    }
    if (it->done)
        atomic_store_explicit(it->done, 1, memory_order_release);
    free(it);
}

/* The outputs' periodic work (the file output rolls old segments). Unsynced
 * messages are made durable first: a roll fsyncs and renames the segment
 * they were written to. */
static void tick_lanes(struct worker *w)
{
    struct lp_aggregator *a = w->a;
    flush_unsynced(w);
    int64_t now = lp_time_real_ns();
    for (size_t oi = 0; oi < a->n_outs; oi++)
        if (a->outs[oi].ops->tick)
            a->outs[oi].ops->tick(a->outs[oi].o, w->lanes[oi], now);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const int64_t sync_ns = 200 * LP_NS_PER_MS;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !atomic_load_explicit(&w->stop, memory_order_acquire)) {
            if (w->n_uns) {
                pthread_mutex_unlock(&w->mu);
                int64_t now = lp_time_mono_ns();
                if (now - w->first_uns >= sync_ns) {
                    flush_unsynced(w);
                } else {
                    struct timespec ts = {0, 20 * 1000 * 1000};
                    nanosleep(&ts, NULL);
                }
                pthread_mutex_lock(&w->mu);
                continue;
            }
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 1;
            pthread_cond_timedwait(&w->cv, &w->mu, &dl);
            if (!w->head) {
                pthread_mutex_unlock(&w->mu);
                tick_lanes(w);
                pthread_mutex_lock(&w->mu);
            }
        }
        if (!w->head && atomic_load_explicit(&w->stop, memory_order_acquire))
            break;
        struct item *it = w->head;
        w->head = it->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        handle(w, it);
        int64_t now = lp_time_mono_ns();
        if (w->n_uns && (now - w->first_uns >= sync_ns || w->uns_bytes >= (8u << 20)))
            flush_unsynced(w);
        if (now - w->last_tick >= LP_NS_PER_SEC) {
            w->last_tick = now;
            tick_lanes(w);
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- consumer side ---- */

static struct lp_part *part_of(struct lp_aggregator *a, int32_t p)
{
    return p >= 0 && (size_t)p < a->n_parts ? a->parts[p] : NULL;
}

static struct worker *worker_of(struct lp_aggregator *a, int32_t p)
{
    return &a->workers[(size_t)p % a->n_workers];
}

static void set_part(struct lp_aggregator *a, int32_t p, struct lp_part *v)
{
    if ((size_t)p >= a->n_parts) {
        size_t n = (size_t)p + 16;
        a->parts = lp_xreallocarray(a->parts, n, sizeof(*a->parts));
        memset(a->parts + a->n_parts, 0, (n - a->n_parts) * sizeof(*a->parts));
        a->n_parts = n;
    }
    a->parts[p] = v;
}

static void detach(struct lp_aggregator *a, struct lp_part *p)
{
    lp_part_advance(p);
    if (lp_part_idle(p)) {
        lp_part_free(p);
        return;
    }
    p->next = a->detached;
    a->detached = p;
}

static void sweep_detached(struct lp_aggregator *a)
{
    struct lp_part **pp = &a->detached;
    while (*pp) {
        struct lp_part *p = *pp;
        lp_part_advance(p);
        if (lp_part_idle(p)) {
            *pp = p->next;
            lp_part_free(p);
        } else {
            pp = &p->next;
        }
    }
}

/* Stores the offsets that moved. */
static void store_offsets(struct lp_aggregator *a)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (size_t i = 0; i < a->n_parts; i++) {
        struct lp_part *p = a->parts[i];
        if (!p)
            continue;
        lp_part_advance(p);
        if (p->next_store >= 0 && p->next_store != p->stored) {
            if (!l)
                l = rd_kafka_topic_partition_list_new(8);
            rd_kafka_topic_partition_list_add(l, a->topic, p->partition)->offset = p->next_store;
            p->stored = p->next_store;
        }
    }
    if (!l)
        return;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(a->rk, l);
    if (err)
        lp_log_ratelimited(LP_LOG_WARN, "storing offsets failed", "error=\"%s\"",
                           rd_kafka_err2str(err));
    a->stored_since_commit = 1;
    rd_kafka_topic_partition_list_destroy(l);
}

static void pause_resume(struct lp_aggregator *a)
{
    size_t limit = a->work_budget / (a->n_assigned ? a->n_assigned : 1);
    int64_t paused = 0, pending = 0;
    for (size_t i = 0; i < a->n_parts; i++) {
        struct lp_part *p = a->parts[i];
        if (!p)
            continue;
        /* what this partition costs: its compressed messages in flight and
         * the documents rendered from them that the outputs still hold */
        size_t cost = p->pending_bytes + atomic_load_explicit(&p->held_bytes, memory_order_relaxed);
        pending += (int64_t)cost;
        int want = p->paused ? cost > limit / 2 : cost > limit;
        if (want != p->paused) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, a->topic, p->partition);
            rd_kafka_resp_err_t err =
                want ? rd_kafka_pause_partitions(a->rk, l) : rd_kafka_resume_partitions(a->rk, l);
            rd_kafka_topic_partition_list_destroy(l);
            if (!err) {
                p->paused = want;
                if (want)
                    lp_counter_inc(a->c_pauses);
                lp_log(LP_LOG_INFO,
                       want ? "partition paused: outputs are behind" : "partition resumed",
                       "partition=%d pending_bytes=%zu", (int)p->partition, cost);
            }
        }
        paused += p->paused;
    }
    lp_gauge_set(a->g_paused, paused);
    lp_gauge_set(a->g_pending, pending);
    lp_gauge_set(a->g_held, (int64_t)atomic_load_explicit(&a->held_total, memory_order_relaxed));
    lp_gauge_set(a->g_decode,
                 (int64_t)atomic_load_explicit(&a->decode_total, memory_order_relaxed));
    lp_gauge_set(a->g_out_buffers, (int64_t)out_buffers(a, NULL));
}

/* The consumer-lag series of one partition. */
static struct lp_gauge *lag_gauge(struct lp_aggregator *a, int32_t partition)
{
    char l[48];
    snprintf(l, sizeof(l), "partition=\"%d\"", (int)partition);
    return lp_metrics_gauge(a->metrics, "logpipe_aggregator_consumer_lag",
                            "Messages between the high watermark and the offset stored "
                            "(durable), per partition this process owns.",
                            l);
}

static void update_lag(struct lp_aggregator *a)
{
    for (size_t i = 0; i < a->n_parts; i++) {
        struct lp_part *p = a->parts[i];
        if (!p)
            continue;
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(a->rk, a->topic, p->partition, &lo, &hi) || hi < 0)
            continue;
        int64_t pos = p->next_store >= 0 ? p->next_store : p->committed >= 0 ? p->committed : lo;
        lp_gauge_set(lag_gauge(a, p->partition), hi > pos ? hi - pos : 0);
    }
}

static void tick(struct lp_aggregator *a, int force_commit)
{
    int64_t now = lp_time_mono_ns();
    if (!force_commit && now - a->last_tick < 20 * LP_NS_PER_MS)
        return;
    a->last_tick = now;
    store_offsets(a);
    sweep_detached(a);
    pause_resume(a);
    if (a->stored_since_commit &&
        (force_commit ||
         now - a->last_commit >= a->cfg->aggregator.commit_interval_ms * LP_NS_PER_MS)) {
        a->last_commit = now;
        a->commit_started = now;
        a->stored_since_commit = 0;
        rd_kafka_commit(a->rk, NULL, 1);
    }
    if (force_commit || now - a->last_lag >= LP_NS_PER_SEC) {
        a->last_lag = now;
        update_lag(a);
    }
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    struct lp_aggregator *a = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &offsets->elems[i];
        struct lp_part *p = strcmp(t->topic, a->topic) == 0 ? part_of(a, t->partition) : NULL;
        if (p && !t->err && t->offset >= 0)
            atomic_store_explicit(&p->group_committed, t->offset, memory_order_release);
    }
    if (err) {
        lp_counter_inc(a->c_commit_errors);
        lp_log_ratelimited(LP_LOG_WARN, "offset commit failed (retried with the next one)",
                           "error=\"%s\"", rd_kafka_err2str(err));
        return;
    }
    lp_counter_inc(a->c_commits);
    if (a->commit_started)
        lp_histogram_observe(a->h_commit, (double)(lp_time_mono_ns() - a->commit_started) / 1e9);
}

/* Waits until the partitions in l have no work in flight (their workers
 * closed their segments first), or the drain timeout. */
static void drain(struct lp_aggregator *a, rd_kafka_topic_partition_list_t *l)
{
    int64_t deadline = lp_time_mono_ns() + a->cfg->aggregator.drain_timeout_ms * LP_NS_PER_MS;
    /* one flag per partition, set by its worker; the array is freed here
     * only when every flag is set (a stuck worker may set one later) */
    atomic_int *done = lp_xcalloc((size_t)l->cnt + 1, sizeof(*done));
    for (int i = 0; i < l->cnt; i++) {
        if (!part_of(a, l->elems[i].partition)) {
            atomic_store_explicit(&done[i], 1, memory_order_relaxed);
            continue;
        }
        struct item *it = lp_xcalloc(1, sizeof(*it));
        it->kind = IT_CLOSE;
        it->partition = l->elems[i].partition;
        it->done = &done[i];
        worker_push(worker_of(a, it->partition), it);
    }
    for (;;) {
        int busy = 0;
        for (int i = 0; i < l->cnt; i++) {
            struct lp_part *p = part_of(a, l->elems[i].partition);
            if (!atomic_load_explicit(&done[i], memory_order_acquire))
                busy = 1;
            else if (p) {
                lp_part_advance(p);
                busy |= !lp_part_idle(p);
            }
        }
        if (!busy)
            break;
        if (lp_time_mono_ns() >= deadline) {
            lp_log(LP_LOG_WARN,
                   "drain timeout: committing what is durable; the rest is read again by the "
                   "next owner (deduplicated downstream)",
                   "partitions=%d", l->cnt);
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int all = 1;
    for (int i = 0; i < l->cnt; i++)
        all &= atomic_load_explicit(&done[i], memory_order_acquire);
    if (all)
        free((void *)done);
    else /* a worker stuck on a failing disk writes to done[] later: leave it */
        lp_log(LP_LOG_ERROR, "a worker could not close its segments in time (disk errors?)",
               "partitions=%d", l->cnt);
}

static void revoke_parts(struct lp_aggregator *a, rd_kafka_topic_partition_list_t *l, int lost)
{
    if (lost) {
        lp_log(LP_LOG_WARN,
               "assignment lost: discarding in-flight work (read again by the "
               "next owner)",
               "partitions=%d", l->cnt);
        for (int i = 0; i < l->cnt; i++) {
            struct lp_part *p = part_of(a, l->elems[i].partition);
            if (!p)
                continue;
            struct item *it = lp_xcalloc(1, sizeof(*it));
            it->kind = IT_ABANDON;
            it->partition = p->partition;
            worker_push(worker_of(a, p->partition), it);
        }
    } else {
        drain(a, l);
        store_offsets(a);
        rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_new(l->cnt);
        for (int i = 0; i < l->cnt; i++) {
            struct lp_part *p = part_of(a, l->elems[i].partition);
            if (p && p->next_store >= 0)
                rd_kafka_topic_partition_list_add(c, a->topic, p->partition)->offset =
                    p->next_store;
        }
        if (c->cnt) {
            int64_t t0 = lp_time_mono_ns();
            rd_kafka_resp_err_t err = rd_kafka_commit(a->rk, c, 0);
            if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                lp_counter_inc(a->c_commit_errors);
                lp_log(LP_LOG_WARN, "commit on revoke failed; the next owner reads again",
                       "error=\"%s\"", rd_kafka_err2str(err));
            } else {
                lp_counter_inc(a->c_commits);
                lp_histogram_observe(a->h_commit, (double)(lp_time_mono_ns() - t0) / 1e9);
            }
        }
        rd_kafka_topic_partition_list_destroy(c);
        /* What did not drain in time is the next owner's: an output still
         * holding it (an upload to a store that is down) must not deliver
         * it after the next owner has started, in boundaries of its own. */
        for (int i = 0; i < l->cnt; i++) {
            struct lp_part *p = part_of(a, l->elems[i].partition);
            if (!p || lp_part_idle(p))
                continue;
            struct item *it = lp_xcalloc(1, sizeof(*it));
            it->kind = IT_ABANDON;
            it->partition = p->partition;
            worker_push(worker_of(a, p->partition), it);
        }
    }
    for (int i = 0; i < l->cnt; i++) {
        struct lp_part *p = part_of(a, l->elems[i].partition);
        if (!p)
            continue;
        /* its lag is the new owner's to report: sum() over pods must not
         * keep this pod's last value */
        lp_gauge_unset(lag_gauge(a, p->partition));
        set_part(a, p->partition, NULL);
        a->n_assigned--;
        detach(a, p);
    }
    lp_gauge_set(a->g_assigned, (int64_t)a->n_assigned);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    struct lp_aggregator *a = opaque;
    lp_counter_inc(a->c_rebalances);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < l->cnt; i++) {
            if (strcmp(l->elems[i].topic, a->topic) != 0)
                continue;
            int32_t p = l->elems[i].partition;
            if (!part_of(a, p)) {
                struct lp_part *np = lp_part_new(p);
                np->total_held = &a->held_total;
                set_part(a, p, np);
                a->n_assigned++;
                struct item *it = lp_xcalloc(1, sizeof(*it));
                it->kind = IT_OPEN;
                it->partition = p;
                worker_push(worker_of(a, p), it);
            }
        }
        lp_gauge_set(a->g_assigned, (int64_t)a->n_assigned);
        /* where each partition starts (for the lag metric until something is
         * stored); a failure only leaves the lag unknown */
        rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
        if (rd_kafka_committed(rk, c, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            for (int i = 0; i < c->cnt; i++) {
                struct lp_part *p = part_of(a, c->elems[i].partition);
                if (p && !c->elems[i].err && c->elems[i].offset >= 0) {
                    p->committed = c->elems[i].offset;
                    atomic_store_explicit(&p->group_committed, p->committed, memory_order_release);
                }
            }
        rd_kafka_topic_partition_list_destroy(c);
        lp_log(LP_LOG_INFO, "partitions assigned", "count=%d", l->cnt);
        rd_kafka_assign(rk, l);
        /* librdkafka keeps a partition's pause across a rebalance (2.0.2),
         * while a new assignment starts unpaused in our view: a partition
         * paused just before a revoke would never be resumed. Start every
         * assigned partition resumed, as our view says. */
        rd_kafka_resume_partitions(rk, l);
        lp_ready_set(a->kafka_ready, 1);
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        lp_log(LP_LOG_INFO, lost ? "partitions lost" : "partitions revoked", "count=%d", l->cnt);
        revoke_parts(a, l, lost);
        rd_kafka_assign(rk, NULL);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        lp_log(LP_LOG_ERROR, "fatal consumer error", "error=\"%s\"", reason);
    else
        lp_log_ratelimited(LP_LOG_WARN, "kafka client error", "error=\"%s\"", reason);
}

static void dispatch(struct lp_aggregator *a, rd_kafka_message_t *rkm)
{
    struct lp_part *p = part_of(a, rkm->partition);
    if (!p || strcmp(rd_kafka_topic_name(rkm->rkt), a->topic) != 0) {
        rd_kafka_message_destroy(rkm); /* not ours any more: read again by the owner */
        return;
    }
    lp_counter_inc(a->c_messages);
    lp_counter_add(a->c_bytes, rkm->len);
    struct item *it = lp_xcalloc(1, sizeof(*it));
    it->kind = IT_MSG;
    it->rkm = rkm;
    it->partition = rkm->partition;
    it->m = lp_part_push(p, rkm->offset, rkm->len + 64, 1);
    worker_push(worker_of(a, rkm->partition), it);
}

void lp_aggregator_step(struct lp_aggregator *a, int timeout_ms)
{
    int64_t until = lp_time_mono_ns() + (int64_t)timeout_ms * LP_NS_PER_MS;
    for (int n = 0; n < 10000 && !atomic_load_explicit(&a->stopping, memory_order_acquire); n++) {
        /* messages in the queue come back at once; only an empty queue waits */
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(a->rk, 0);
        if (!rkm) {
            tick(a, 0);
            int64_t left = (until - lp_time_mono_ns()) / LP_NS_PER_MS;
            if (left <= 0)
                break;
            rkm = rd_kafka_consumer_poll(a->rk, (int)(left < 20 ? left : 20));
            if (!rkm)
                continue;
        }
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                lp_log_ratelimited(LP_LOG_WARN, "consumer error", "error=\"%s\"",
                                   rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        dispatch(a, rkm);
        if ((n & 63) == 63)
            tick(a, 0);
    }
    tick(a, 0);
}

/* ---- life cycle ---- */

/* Creates every configured output (config load added the implicit "files"
 * when none is configured), each told the routes that send to it. */
static int setup_outputs(struct lp_aggregator *a, struct lp_http *http, char *err, size_t errlen)
{
    const struct lp_config_aggregator *ac = &a->cfg->aggregator;
    size_t nr = agg_pipeline_routes(a->pipe);
    a->outs = lp_xcalloc(a->n_outs, sizeof(*a->outs));
    for (size_t i = 0; i < a->n_outs; i++) {
        struct output *o = &a->outs[i];
        const struct lp_config_output *c = &ac->outputs[i];
        o->ops = lp_output_find(c->type);
        if (!o->ops) { /* the config's type list and the registry disagree */
            snprintf(err, errlen, "output %s: no output of type %s", c->name, c->type);
            return LP_EINVAL;
        }
        char l[160];
        snprintf(l, sizeof(l), "output:%s", c->name);
        /* an output's sink down is not this pod's fault: /readyz?strict=1 */
        o->ready = http ? lp_http_ready_check_external(http, l, 1) : NULL;
        o->routes = lp_xcalloc(nr ? nr : 1, sizeof(*o->routes));
        for (size_t r = 0; r < nr; r++) {
            const struct agg_route_info *ri = agg_pipeline_route(a->pipe, r);
            for (size_t k = 0; k < ri->n_outputs; k++)
                if (ri->outputs[k] == i) {
                    o->routes[o->n_routes++] = ri->name;
                    break;
                }
        }
        struct lp_output_env env = {
            a->topic, a->dlq, a->metrics, o->ready, ac->content.kept_field, o->routes, o->n_routes};
        o->o = o->ops->create(c, &env, err, errlen);
        if (!o->o)
            return LP_ECONFIG;
    }
    return 0;
}

static void setup_metrics(struct lp_aggregator *a)
{
    struct lp_metrics *m = a->metrics;
    a->c_messages = lp_metrics_counter(m, "logpipe_aggregator_messages_total",
                                       "Kafka messages consumed.", NULL);
    a->tenants = lp_tenants_new(m, ns_families, ns_helps, NS_FAMILIES,
                                (size_t)a->cfg->metrics.max_namespaces);
    a->c_bytes = lp_metrics_counter(m, "logpipe_aggregator_message_bytes_total",
                                    "Kafka message bytes consumed (compressed).", NULL);
    a->c_records = lp_metrics_counter(m, "logpipe_aggregator_records_in_total",
                                      "Records decoded from consumed messages.", NULL);
    a->c_decode_fail =
        lp_metrics_counter(m, "logpipe_aggregator_decode_failures_total",
                           "Messages that could not be decoded (dead letter).", NULL);
    a->c_commits = lp_metrics_counter(m, "logpipe_aggregator_commits_total",
                                      "Offset commits that succeeded.", NULL);
    a->c_commit_errors = lp_metrics_counter(m, "logpipe_aggregator_commit_errors_total",
                                            "Offset commits that failed.", NULL);
    a->c_pauses = lp_metrics_counter(m, "logpipe_aggregator_partition_pauses_total",
                                     "Times a partition was paused (backpressure).", NULL);
    a->c_rebalances = lp_metrics_counter(m, "logpipe_aggregator_rebalances_total",
                                         "Rebalance callbacks (assign and revoke).", NULL);
    a->g_paused = lp_metrics_gauge(m, "logpipe_aggregator_paused_partitions",
                                   "Partitions paused because outputs are behind.", NULL);
    a->g_held = lp_metrics_gauge(m, "logpipe_aggregator_held_bytes",
                                 "Bytes the outputs hold, decoded and rendered (documents "
                                 "waiting for the cluster).",
                                 NULL);
    a->g_decode = lp_metrics_gauge(m, "logpipe_aggregator_decode_bytes",
                                   "Bytes the workers hold decoding messages (decompressed "
                                   "messages, their records and render buffers); counted in "
                                   "the memory budget with held_bytes.",
                                   NULL);
    a->g_out_buffers = lp_metrics_gauge(m, "logpipe_aggregator_output_buffer_bytes",
                                        "Bytes the outputs' bulk request bodies and response "
                                        "buffers hold; counted in the memory budget.",
                                        NULL);
    a->c_budget_waits = lp_metrics_counter(
        m, "logpipe_aggregator_memory_budget_waits_total",
        "Times a worker waited before decoding or rendering more because the outputs, their "
        "buffers and the decode working sets held more than max_pending_bytes.",
        NULL);
    a->g_pending = lp_metrics_gauge(m, "logpipe_aggregator_pending_bytes",
                                    "Message bytes consumed but not yet durable everywhere.", NULL);
    a->g_assigned = lp_metrics_gauge(m, "logpipe_aggregator_assigned_partitions",
                                     "Partitions assigned to this aggregator.", NULL);
    static const double cb[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
    a->h_commit =
        lp_metrics_histogram(m, "logpipe_aggregator_commit_latency_seconds",
                             "Offset commit latency.", NULL, cb, sizeof(cb) / sizeof(cb[0]));
}

/* The per-route counters (by route, by route and output, by route and
 * drop reason). */
static void setup_route_metrics(struct lp_aggregator *a)
{
    struct lp_metrics *m = a->metrics;
    size_t nr = agg_pipeline_routes(a->pipe);
    a->c_route = lp_xcalloc(nr, sizeof(*a->c_route));
    a->c_parse_fail = lp_xcalloc(nr, sizeof(*a->c_parse_fail));
    a->c_dropped = lp_xcalloc(nr * AGG_VERDICTS, sizeof(*a->c_dropped));
    a->c_route_out = lp_xcalloc(nr * a->n_outs, sizeof(*a->c_route_out));
    for (size_t r = 0; r < nr; r++) {
        const char *rn = agg_pipeline_route(a->pipe, r)->name;
        const char *pn = agg_pipeline_route_parser(a->pipe, r);
        char l[256];
        snprintf(l, sizeof(l), "route=\"%s\"", rn);
        a->c_route[r] = lp_metrics_counter(m, "logpipe_aggregator_route_records_total",
                                           "Records taken by each route.", l);
        snprintf(l, sizeof(l), "parser=\"%s\",route=\"%s\"", pn ? pn : "none", rn);
        a->c_parse_fail[r] =
            lp_metrics_counter(m, "logpipe_aggregator_parse_failures_total",
                               "Records whose parser failed (kept raw, with error.message).", l);
        for (size_t v = 1; v < AGG_VERDICTS; v++) {
            snprintf(l, sizeof(l), "reason=\"%s\",route=\"%s\"", agg_verdict_names[v], rn);
            a->c_dropped[r * AGG_VERDICTS + v] = lp_metrics_counter(
                m, "logpipe_aggregator_dropped_total",
                "Records a route's cost controls dropped on purpose, by route and reason "
                "(route: drop: true; sample; rate_limit). Their offsets are committed.",
                l);
        }
        for (size_t o = 0; o < a->n_outs; o++) {
            snprintf(l, sizeof(l), "output=\"%s\",route=\"%s\"", a->out_names[o], rn);
            a->c_route_out[r * a->n_outs + o] =
                lp_metrics_counter(m, "logpipe_aggregator_records_out_total",
                                   "Records handed to an output, per route.", l);
        }
    }
}

static void setup_workers(struct lp_aggregator *a)
{
    const struct lp_config_aggregator *ac = &a->cfg->aggregator;
    a->n_workers = (size_t)ac->workers;
    a->workers = lp_xcalloc(a->n_workers, sizeof(*a->workers));
    for (size_t i = 0; i < a->n_workers; i++) {
        struct worker *w = &a->workers[i];
        w->a = a;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        lp_arena_init(&w->arena, 1u << 20, (size_t)ac->max_decompressed_bytes * 2 + ARENA_SLACK);
        lp_buf_init(&w->scratch, (size_t)ac->max_decompressed_bytes + (1u << 20));
        lp_buf_init(&w->doc, 0);
        w->lanes = lp_xcalloc(a->n_outs, sizeof(*w->lanes));
        for (size_t oi = 0; oi < a->n_outs; oi++)
            if (a->outs[oi].ops->lane_new)
                w->lanes[oi] = a->outs[oi].ops->lane_new(a->outs[oi].o);
    }
}

/* The consumer: manual offset storing and commits, range assignment (a
 * partition keeps its worker), a prefetch queue within the budget. */
static rd_kafka_t *new_consumer(struct lp_aggregator *a, char *err, size_t errlen)
{
    const struct lp_config *cfg = a->cfg;
    rd_kafka_conf_t *kc = lp_kafka_conf_new(&cfg->kafka.properties, err, errlen);
    if (!kc)
        return NULL;
    char prefetch_kb[32];
    snprintf(prefetch_kb, sizeof(prefetch_kb), "%zu", a->prefetch_bytes >> 10);
    if (lp_kafka_conf_set(kc, "bootstrap.servers", cfg->kafka.brokers, err, errlen) ||
        lp_kafka_conf_set(kc, "client.id", cfg->kafka.client_id, err, errlen) ||
        lp_kafka_conf_set(kc, "group.id", cfg->aggregator.group_id, err, errlen) ||
        lp_kafka_conf_set(kc, "partition.assignment.strategy", "range", err, errlen) ||
        lp_kafka_conf_set(kc, "enable.auto.commit", "false", err, errlen) ||
        lp_kafka_conf_set(kc, "enable.auto.offset.store", "false", err, errlen) ||
        lp_kafka_conf_set(kc, "auto.offset.reset", "earliest", err, errlen) ||
        lp_kafka_conf_set(kc, "queued.max.messages.kbytes", prefetch_kb, err, errlen)) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_conf_set_opaque(kc, a);
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(kc, commit_cb);
    rd_kafka_conf_set_error_cb(kc, error_cb);
    char kerr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, kerr, sizeof(kerr));
    if (!rk) {
        snprintf(err, errlen, "kafka consumer: %s", kerr);
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* kafka.create_topics: the log topic and the dead-letter topic, when
 * missing, before the subscription (which would otherwise wait for them). A
 * refusal (no CREATE right, too few brokers) is logged: the topics may well
 * exist, made by someone who may. */
static void create_topics(struct lp_aggregator *a)
{
    const struct lp_config *cfg = a->cfg;
    struct lp_kafka_new_topic t[2] = {
        {cfg->kafka.topic, (int)cfg->kafka.topic_partitions,
         (int)cfg->kafka.topic_replication_factor, 0},
        {cfg->aggregator.dead_letter_topic, 1, (int)cfg->kafka.topic_replication_factor, 0},
    };
    size_t n = cfg->aggregator.dead_letter_topic && *cfg->aggregator.dead_letter_topic ? 2 : 1;
    char err[512];
    /* a handle of its own, before the dead letter's producer (whose first
     * metadata request would have a broker auto-create its topic) */
    rd_kafka_conf_t *kc = lp_kafka_conf_new(&cfg->kafka.properties, err, sizeof(err));
    rd_kafka_t *rk = NULL;
    if (kc && !lp_kafka_conf_set(kc, "bootstrap.servers", cfg->kafka.brokers, err, sizeof(err)) &&
        !lp_kafka_conf_set(kc, "client.id", cfg->kafka.client_id, err, sizeof(err))) {
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
        if (rk)
            kc = NULL; /* rd_kafka_new took it */
    }
    if (kc)
        rd_kafka_conf_destroy(kc);
    if (!rk || lp_kafka_create_topics(rk, t, n, 30000, err, sizeof(err)))
        lp_log(LP_LOG_WARN, "topics not created", "reason=\"%s\"", err);
    if (rk)
        rd_kafka_destroy(rk);
}

/* Starts the outputs' threads and the workers, then subscribes. */
static int start(struct lp_aggregator *a, char *err, size_t errlen)
{
    for (size_t i = 0; i < a->n_outs; i++)
        if (a->outs[i].ops->start && a->outs[i].ops->start(a->outs[i].o)) {
            snprintf(err, errlen, "cannot start the sender of output %s", a->out_names[i]);
            return LP_EINVAL;
        }
    for (size_t i = 0; i < a->n_workers; i++) {
        if (pthread_create(&a->workers[i].thread, NULL, worker_main, &a->workers[i])) {
            snprintf(err, errlen, "cannot start worker threads");
            return LP_EAGAIN;
        }
        a->workers[i].started = 1;
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, a->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(a->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "subscribe to %s: %s", a->topic, rd_kafka_err2str(e));
        return LP_EKAFKA;
    }
    return 0;
}

struct lp_aggregator *lp_aggregator_new(const struct lp_config *cfg, struct lp_metrics *metrics,
                                        struct lp_http *http, char *err, size_t errlen)
{
    const struct lp_config_aggregator *ac = &cfg->aggregator;
    struct lp_aggregator *a = lp_xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->metrics = metrics;
    a->topic = lp_xstrdup(cfg->kafka.topic);
    a->kafka_ready = http ? lp_http_ready_check(http, "kafka") : NULL;
    if (cfg->kafka.create_topics)
        create_topics(a);
    a->dlq = lp_dlq_new(cfg, metrics, err, errlen);
    if (!a->dlq)
        goto fail;
    /* before any worker matches */
    lp_regex_setup((uint32_t)ac->content.regex_match_limit, (uint32_t)ac->content.regex_depth_limit,
                   lp_metrics_counter(metrics, "logpipe_aggregator_regex_limited_total",
                                      "Regex parses and route conditions given up at the PCRE2 "
                                      "match or depth limit (the event is kept unparsed; the "
                                      "condition does not hold).",
                                      NULL));
    a->n_outs = ac->n_outputs; /* never 0: config load adds the implicit "files" */
    a->out_names = lp_xcalloc(a->n_outs, sizeof(char *));
    for (size_t i = 0; i < a->n_outs; i++)
        a->out_names[i] = ac->outputs[i].name;
    a->pipe = agg_pipeline_new(ac, a->out_names, a->n_outs, err, errlen);
    if (!a->pipe)
        goto fail;
    agg_pipeline_set_metrics(a->pipe, a->metrics);
    struct lp_dlq_redactor dr = agg_redactor_dlq(agg_pipeline_redactor(a->pipe));
    lp_dlq_set_redactor(a->dlq, &dr);
    if (setup_outputs(a, http, err, errlen))
        goto fail;
    setup_metrics(a);
    setup_route_metrics(a);
    set_budget(a);
    setup_workers(a);
    a->rk = new_consumer(a, err, errlen);
    if (!a->rk || start(a, err, errlen))
        goto fail;
    lp_log(LP_LOG_INFO, "consuming", "topic=%s group=%s workers=%zu outputs=%zu", a->topic,
           ac->group_id, a->n_workers, a->n_outs);
    return a;
fail:
    lp_aggregator_free(a);
    return NULL;
}

int lp_aggregator_shutdown(struct lp_aggregator *a)
{
    atomic_store_explicit(&a->stopping, 1, memory_order_release);
    /* leaving the group runs the revoke callback: drain, store, commit */
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(a->rk);
    if (err)
        lp_log(LP_LOG_WARN, "leaving the consumer group failed", "error=\"%s\"",
               rd_kafka_err2str(err));
    int rc = err ? LP_EKAFKA : 0;
    return rc;
}

void lp_aggregator_free(struct lp_aggregator *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_workers; i++) {
        struct worker *w = &a->workers[i];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->mu);
        atomic_store_explicit(&w->stop, 1, memory_order_release);
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    for (size_t i = 0; i < a->n_workers; i++) { /* unsynced: the next owner recovers */
        struct worker *w = &a->workers[i];
        for (size_t oi = 0; oi < a->n_outs && w->lanes; oi++)
            if (a->outs[oi].ops->lane_free)
                a->outs[oi].ops->lane_free(a->outs[oi].o, w->lanes[oi]);
        free(w->lanes);
    }
    /* after the lanes; an output still delivering gets a second */
    for (size_t i = 0; a->outs && i < a->n_outs; i++)
        if (a->outs[i].o)
            a->outs[i].ops->close(a->outs[i].o, lp_time_mono_ns() + LP_NS_PER_SEC);
    if (a->rk)
        rd_kafka_destroy(a->rk);
    for (size_t i = 0; i < a->n_workers; i++) {
        struct worker *w = &a->workers[i];
        while (w->head) {
            struct item *it = w->head;
            w->head = it->next;
            if (it->rkm)
                rd_kafka_message_destroy(it->rkm);
            free(it);
        }
        for (size_t k = 0; k < w->n_uns; k++)
            rd_kafka_message_destroy(w->uns[k].rkm);
        free(w->uns);
        lp_arena_release(&w->arena);
        lp_buf_release(&w->scratch);
        lp_buf_release(&w->doc);
        lp_codec_ctx_release(&w->codec);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    free(a->workers);
    for (size_t i = 0; a->outs && i < a->n_outs; i++)
        free(a->outs[i].routes);
    free(a->outs);
    for (size_t i = 0; i < a->n_parts; i++)
        lp_part_free(a->parts[i]);
    free(a->parts);
    while (a->detached) {
        struct lp_part *p = a->detached;
        a->detached = p->next;
        lp_part_free(p);
    }
    free(a->out_names);
    agg_pipeline_free(a->pipe);
    lp_tenants_free(a->tenants);
    lp_dlq_free(a->dlq);
    free(a->c_route);
    free(a->c_dropped);
    free(a->c_parse_fail);
    free(a->c_route_out);
    free(a->topic);
    free(a);
}
