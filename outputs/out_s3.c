/* The object-storage output: NDJSON objects in S3 or an S3-compatible
 * store, exactly once across any number of aggregators with no shared disk.
 *
 * Batches. A partition's documents are cut into batches: a batch starts at
 * the Kafka offset of its first document and closes at max_object_bytes,
 * max_object_records or max_object_age (or when the partition is revoked).
 * A closed batch is one object per (route, hour of the events' time):
 *     <prefix>/<route>/YYYY/MM/DD/HH/<topic>-<partition>-<first offset>.ndjson.zst
 * The output holds every message of a batch (lp_msg_hold) until all of its
 * objects are written, so an offset is stored only after the objects that
 * hold its lines are durable (a 2xx to a body whose SHA-256 and MD5 the
 * store checked).
 *
 * The ledger. Before the objects, the batch's record is written:
 *     <prefix>/_logpipe/ledger/<output>/<topic>/<partition>/<first>-<end>.json
 * (its offsets and its object keys). Whoever owns the partition next reads
 * the partition's ledger before its first document: the batches recorded
 * from that document's offset on were written (or begun) but not committed.
 * It cuts its own batches at the same first offsets, so their objects get
 * the same keys and replace the old ones, and it deletes the keys of an old
 * batch its new one did not write again. Whatever the boundaries were
 * (age is wall-clock time), every line ends up in exactly one object: the
 * keys are a function of (route, hour, first offset), and a first offset
 * either is in the ledger or was never written. Ledger records the group
 * has committed past are deleted as commits come in.
 *
 * Threads. Lanes (one per worker) build batches: a lane owns the batches of
 * its worker's partitions, so building takes no lock. A closed batch goes to
 * the output's queue; max_inflight_requests uploader threads write it,
 * retrying with backoff for ever (a store that is down pauses the
 * partitions: the queued batches count as held bytes against
 * max_pending_bytes). The queue and the per-partition prune lists are under
 * the output's mutex. */
#define LP_LOG_MODULE "aggregator"
#include "lp_alloc.h"
#include "lp_codec.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_http.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_output.h"
#include "lp_s3.h"
#include "lp_time.h"
#include "lp_tracker.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK_BYTES ((size_t)256 << 10) /* raw bytes compressed at once (one frame) */
#define MAX_UPLOADERS 64
#define PRUNE_MAX_PER_RECOVERY 1000

/* ---- batches ---- */

struct obj {
    const char *route;  /* one of out_s3.routes */
    int64_t hour;       /* hours since the epoch of its events */
    struct lp_buf raw;  /* lines not compressed yet */
    struct lp_buf data; /* the object's bytes (compressed frames) */
    uint64_t records;
    char *key;
};

/* An old ledger record this owner replaces. */
struct old {
    int64_t first, end;
    char **ledger_keys; /* one or more records of the same first offset */
    size_t n_ledger;
    char **keys; /* the objects they name */
    size_t n_keys;
};

struct batch {
    int32_t partition;
    struct lp_part *part; /* alive while the batch holds a message */
    int64_t first, last;  /* Kafka offsets of its first and last document */
    struct obj *objs;
    size_t n_objs, cap_objs;
    size_t raw_bytes;
    uint64_t records;
    int64_t opened_mono;
    struct lp_msg **msgs; /* one hold each */
    size_t n_msgs, cap_msgs;
    struct old *replaces; /* owned; NULL: a new first offset */
    json_t *wm;           /* the partition's watermarks at its end (the ledger keeps them) */
    size_t acct;          /* bytes counted in lp_part_held once closed */
    int cancelled;        /* under the output's mutex: the partition was lost */
    struct batch *next;
};

struct pstate {
    int32_t partition;
    int recovered;    /* the ledger was read for this assignment */
    struct old *olds; /* old records not yet reached, by first offset */
    size_t n_olds, i_old;
    /* Documents of messages below this offset are in a previous owner's
     * objects already (a batch that began before the first message this
     * owner got: it was written whole, see recover): skipped. */
    int64_t skip_below;
    /* Per source id, the highest line offset in the objects (written, or in
     * the open batch): a shipper's replay of a line puts it in Kafka again
     * at another offset; it is recognised here and skipped, as the file
     * output's watermarks do. Loaded from the ledger at recovery. */
    json_t *wm;
    struct batch *open;
};

struct lane {
    struct pstate *ps;
    size_t n_ps, cap_ps;
    struct lp_codec_ctx codec;
    struct lp_s3_client client; /* the ledger at recovery */
};

/* ledger records written and not yet committed past, per partition */
struct done_rec {
    int32_t partition;
    int64_t end;
    char *key;
};

struct out_s3 {
    struct lp_output base;
    struct lp_s3 s3;
    char *topic;
    char *pfx;        /* "" or "<prefix>/" */
    char *ledger_pfx; /* <pfx>_logpipe/ledger/<output>/<topic>/ */
    const char **routes;
    size_t n_routes;
    enum lp_codec codec;
    const char *ext; /* .ndjson.zst ... */
    const char *content_encoding;
    size_t max_bytes;
    uint64_t max_records;
    int64_t max_age_ns;
    int64_t retry_initial_ns, retry_max_ns;
    struct lp_ready *ready;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *qhead, *qtail;
    struct batch **uploading; /* one slot per uploader thread */
    struct done_rec *done;
    size_t n_done, cap_done;
    int stopping;
    size_t n_threads;
    pthread_t *threads;
    int started;
    _Atomic size_t queued_bytes; /* closed batches not yet written */
    _Atomic size_t open_bytes;   /* batches being built, all lanes */

    struct lp_counter *c_objects, *c_bytes, *c_records, *c_errors, *c_batches, *c_replaced,
        *c_stale_deleted, *c_abandoned, *c_skipped;
};

static const char *codec_ext(enum lp_codec c)
{
    return c == LP_CODEC_ZSTD ? ".ndjson.zst" : c == LP_CODEC_GZIP ? ".ndjson.gz" : ".ndjson";
}

static void old_free(struct old *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_ledger; i++)
        free(o->ledger_keys[i]);
    free(o->ledger_keys);
    for (size_t i = 0; i < o->n_keys; i++)
        free(o->keys[i]);
    free(o->keys);
}

static void batch_free(struct out_s3 *s, struct batch *b, int release)
{
    if (!b)
        return;
    if (b->acct) {
        lp_part_held(b->part, b->acct, 0);
        atomic_fetch_sub_explicit(&s->queued_bytes, b->acct, memory_order_relaxed);
    }
    if (release)
        for (size_t i = 0; i < b->n_msgs; i++)
            lp_msg_release(b->msgs[i]);
    for (size_t i = 0; i < b->n_objs; i++) {
        lp_buf_release(&b->objs[i].raw);
        lp_buf_release(&b->objs[i].data);
        free(b->objs[i].key);
    }
    free(b->objs);
    free(b->msgs);
    json_decref(b->wm);
    old_free(b->replaces);
    free(b->replaces);
    free(b);
}

/* ---- keys ---- */

static char *object_key(const struct out_s3 *s, const char *route, int64_t hour, int32_t partition,
                        int64_t first)
{
    time_t t = (time_t)(hour * 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    struct lp_buf b = LP_BUF_INIT;
    lp_buf_appendf(&b, "%s%s/%04d/%02d/%02d/%02d/%s-%d-%020" PRId64 "%s", s->pfx, route,
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, s->topic,
                   (int)partition, first, s->ext);
    return lp_buf_detach(&b, NULL);
}

static char *ledger_key(const struct out_s3 *s, int32_t partition, int64_t first, int64_t end)
{
    struct lp_buf b = LP_BUF_INIT;
    lp_buf_appendf(&b, "%s%d/%020" PRId64 "-%020" PRId64 ".json", s->ledger_pfx, (int)partition,
                   first, end);
    return lp_buf_detach(&b, NULL);
}

/* ---- the ledger at assignment ---- */

struct listed {
    struct out_s3 *s;
    int64_t from; /* the first document's offset */
    struct old *olds;
    size_t n, cap;
    char **stale; /* records committed past: deleted */
    size_t n_stale, cap_stale;
    char *base; /* the newest record committed past: its watermarks, kept */
    int64_t base_end;
};

static int on_ledger(const struct lp_s3_object *o, void *arg)
{
    struct listed *l = arg;
    const char *name = strrchr(o->key, '/');
    name = name ? name + 1 : o->key;
    long long first, end;
    char tail[8];
    if (sscanf(name, "%20lld-%20lld%7s", &first, &end, tail) != 3 || strcmp(tail, ".json") != 0)
        return 0; /* not ours */
    if (end <= l->from) {
        char *k = lp_xstrdup(o->key);
        if (!l->base || end > l->base_end) { /* the newest so far: kept */
            char *t = l->base;
            l->base = k;
            l->base_end = end;
            k = t;
        }
        if (k && l->n_stale < PRUNE_MAX_PER_RECOVERY) {
            LP_ALLOC_GROW(l->stale, l->n_stale + 1, l->cap_stale, 16);
            l->stale[l->n_stale++] = k;
        } else {
            free(k);
        }
        return 0;
    }
    struct old *cur = l->n ? &l->olds[l->n - 1] : NULL;
    if (!cur || cur->first != first) { /* listed in key order: same first offsets are adjacent */
        LP_ALLOC_GROW(l->olds, l->n + 1, l->cap, 4);
        cur = &l->olds[l->n++];
        memset(cur, 0, sizeof(*cur));
        cur->first = first;
    }
    if (end > cur->end)
        cur->end = end;
    cur->ledger_keys = lp_xreallocarray(cur->ledger_keys, cur->n_ledger + 1, sizeof(char *));
    cur->ledger_keys[cur->n_ledger++] = lp_xstrdup(o->key);
    return 0;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / LP_NS_PER_SEC, ns % LP_NS_PER_SEC};
    nanosleep(&ts, NULL);
}

static int64_t next_backoff(const struct out_s3 *s, int64_t cur)
{
    int64_t n = cur ? cur * 2 : s->retry_initial_ns;
    return n > s->retry_max_ns ? s->retry_max_ns : n;
}

static int stopping(struct out_s3 *s)
{
    pthread_mutex_lock(&s->mu);
    int st = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* Reads one ledger record's object keys into o. 0, or a negative code. */
static int read_record(struct out_s3 *s, struct lp_s3_client *c, const char *key, struct old *o,
                       json_t **wm, struct lp_s3_result *r)
{
    struct lp_buf body = LP_BUF_INIT;
    int rc = lp_s3_get(c, key, &body, r);
    if (rc == -ENOENT) { /* pruned or replaced meanwhile */
        lp_buf_release(&body);
        return 0;
    }
    if (rc) {
        lp_buf_release(&body);
        return rc;
    }
    json_error_t je;
    json_t *j = json_loadb(body.data, body.len, 0, &je);
    lp_buf_release(&body);
    json_t *objs = j ? json_object_get(j, "objects") : NULL;
    json_t *w = j ? json_object_get(j, "watermarks") : NULL;
    if (wm && json_is_object(w)) {
        json_decref(*wm);
        *wm = json_incref(w);
    }
    if (!o) {
        json_decref(j);
        return 0;
    }
    if (!json_is_array(objs)) {
        lp_log(LP_LOG_WARN, "ledger record unreadable; its keys are not cleaned up",
               "output=%s key=\"%s\"", s->base.name, key);
        json_decref(j);
        return 0;
    }
    size_t i;
    json_t *v;
    json_array_foreach(objs, i, v)
    {
        const char *k = json_string_value(json_object_get(v, "key"));
        if (!k)
            continue;
        o->keys = lp_xreallocarray(o->keys, o->n_keys + 1, sizeof(char *));
        o->keys[o->n_keys++] = lp_xstrdup(k);
    }
    json_decref(j);
    return 0;
}

/* Reads the partition's ledger from the first document's offset on: the
 * batches to cut again at the same first offsets. Retries until the store
 * answers (the worker waits: its partitions pause) or the output stops
 * (LP_EAGAIN). */
static int recover(struct out_s3 *s, struct lane *l, struct pstate *ps, int64_t from)
{
    struct lp_buf pfx = LP_BUF_INIT;
    lp_buf_appendf(&pfx, "%s%d/", s->ledger_pfx, (int)ps->partition);
    int64_t backoff = 0;
    for (;;) {
        struct listed li = {s, from, NULL, 0, 0, NULL, 0, 0, NULL, -1};
        struct lp_s3_result r = {0};
        int rc = lp_s3_list(&l->client, pfx.data, NULL, on_ledger, &li, &r);
        /* the watermarks: of the newest record committed past, or of the
         * newest batch written whole before `from` (read below) */
        json_t *wm = NULL;
        if (li.base)
            rc = read_record(s, &l->client, li.base, NULL, &wm, &r);
        for (size_t i = 0; rc == 0 && i < li.n; i++)
            for (size_t k = 0; rc == 0 && k < li.olds[i].n_ledger; k++)
                rc = read_record(s, &l->client, li.olds[i].ledger_keys[k], &li.olds[i],
                                 li.olds[i].first < from ? &wm : NULL, &r);
        for (size_t i = 0; rc == 0 && i < li.n_stale; i++)
            lp_s3_delete(&l->client, li.stale[i], NULL); /* best effort: found again later */
        for (size_t i = 0; i < li.n_stale; i++)
            free(li.stale[i]);
        free(li.stale);
        if (rc == 0 && li.base) { /* pruned once a newer record is committed past */
            pthread_mutex_lock(&s->mu);
            LP_ALLOC_GROW(s->done, s->n_done + 1, s->cap_done, 16);
            s->done[s->n_done++] = (struct done_rec){ps->partition, li.base_end, li.base};
            pthread_mutex_unlock(&s->mu);
            li.base = NULL;
        }
        free(li.base);
        if (rc == 0) {
            json_decref(ps->wm);
            ps->wm = wm ? wm : json_object();
            wm = NULL;
            /* A record that began before `from` was written whole: the
             * message at its first offset had a document in it, and that
             * message is behind the committed offset, so every hold on
             * it, the batch's included (released only when all its objects
             * are written), was released. Its objects stand; the rest of
             * its messages that come again are skipped. The others are
             * cut again at their first offsets. */
            size_t k = 0;
            ps->skip_below = -1;
            for (size_t i = 0; i < li.n; i++) {
                if (li.olds[i].first < from) {
                    if (li.olds[i].end > ps->skip_below)
                        ps->skip_below = li.olds[i].end;
                    pthread_mutex_lock(&s->mu);
                    for (size_t j = 0; j < li.olds[i].n_ledger; j++) {
                        LP_ALLOC_GROW(s->done, s->n_done + 1, s->cap_done, 16);
                        s->done[s->n_done++] = (struct done_rec){ps->partition, li.olds[i].end,
                                                                 li.olds[i].ledger_keys[j]};
                        li.olds[i].ledger_keys[j] = NULL;
                    }
                    pthread_mutex_unlock(&s->mu);
                    old_free(&li.olds[i]);
                } else {
                    li.olds[k++] = li.olds[i];
                }
            }
            li.n = k;
            ps->olds = li.olds;
            ps->n_olds = li.n;
            ps->i_old = 0;
            ps->recovered = 1;
            if (ps->skip_below > from)
                lp_log(LP_LOG_INFO,
                       "partition resumes inside a batch already written; its "
                       "messages are skipped",
                       "output=%s partition=%d from=%" PRId64 " skip_below=%" PRId64, s->base.name,
                       (int)ps->partition, from, ps->skip_below);
            if (li.n)
                lp_log(LP_LOG_INFO, "partition's unfinished batches found; cutting them again",
                       "output=%s partition=%d batches=%zu first=%" PRId64, s->base.name,
                       (int)ps->partition, li.n, li.olds[0].first);
            lp_buf_release(&pfx);
            lp_ready_set(s->ready, 1);
            return 0;
        }
        json_decref(wm);
        for (size_t i = 0; i < li.n; i++)
            old_free(&li.olds[i]);
        free(li.olds);
        lp_counter_inc(s->c_errors);
        lp_ready_set(s->ready, 0);
        lp_log_ratelimited(LP_LOG_WARN, "cannot read the partition's ledger; retrying",
                           "output=%s partition=%d status=%ld code=\"%s\" error=\"%s\"",
                           s->base.name, (int)ps->partition, r.status, r.code, r.message);
        if (stopping(s)) {
            lp_buf_release(&pfx);
            return LP_EAGAIN;
        }
        backoff = next_backoff(s, backoff);
        sleep_ns(backoff);
    }
}

/* ---- building ---- */

static struct pstate *pstate_of(struct lane *l, int32_t partition, int create)
{
    for (size_t i = 0; i < l->n_ps; i++)
        if (l->ps[i].partition == partition)
            return &l->ps[i];
    if (!create)
        return NULL;
    LP_ALLOC_GROW(l->ps, l->n_ps + 1, l->cap_ps, 4);
    struct pstate *ps = &l->ps[l->n_ps++];
    memset(ps, 0, sizeof(*ps));
    ps->partition = partition;
    return ps;
}

static void pstate_reset(struct out_s3 *s, struct pstate *ps)
{
    (void)s;
    for (size_t i = 0; i < ps->n_olds; i++)
        old_free(&ps->olds[i]);
    free(ps->olds);
    ps->olds = NULL;
    ps->n_olds = ps->i_old = 0;
    ps->recovered = 0;
    ps->skip_below = -1;
    json_decref(ps->wm);
    ps->wm = NULL;
}

static int compress_raw(struct out_s3 *s, struct lane *l, struct obj *o)
{
    if (!o->raw.len)
        return 0;
    size_t before = o->data.len;
    int rc = lp_codec_compress(&l->codec, s->codec, s->codec == LP_CODEC_ZSTD ? 3 : 0, o->raw.data,
                               o->raw.len, &o->data);
    if (rc)
        return rc;
    atomic_fetch_add_explicit(&s->open_bytes, o->data.len - before, memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->open_bytes, o->raw.len, memory_order_relaxed);
    lp_buf_reset(&o->raw);
    if (o->raw.cap > 2 * CHUNK_BYTES)
        lp_buf_release(&o->raw);
    return 0;
}

/* Closes ps's open batch: its objects finished and named, the batch queued
 * for the uploaders. */
static void close_batch(struct out_s3 *s, struct lane *l, struct pstate *ps)
{
    struct batch *b = ps->open;
    if (!b)
        return;
    ps->open = NULL;
    b->wm = json_deep_copy(ps->wm);
    size_t acct = sizeof(*b) + b->n_msgs * sizeof(void *) + 64 * json_object_size(b->wm);
    for (size_t i = 0; i < b->n_objs; i++) {
        struct obj *o = &b->objs[i];
        if (compress_raw(s, l, o))
            abort(); /* no limit on the buffer: only an invalid codec fails */
        o->key = object_key(s, o->route, o->hour, b->partition, b->first);
        acct += o->data.len + strlen(o->key) + sizeof(*o);
    }
    for (size_t i = 0; i < b->n_objs; i++)
        atomic_fetch_sub_explicit(&s->open_bytes, b->objs[i].data.len, memory_order_relaxed);
    b->acct = acct;
    lp_part_held(b->part, acct, 1);
    atomic_fetch_add_explicit(&s->queued_bytes, acct, memory_order_relaxed);
    pthread_mutex_lock(&s->mu);
    if (s->qtail)
        s->qtail->next = b;
    else
        s->qhead = b;
    s->qtail = b;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    lp_counter_inc(s->c_batches);
}

static struct batch *open_batch(struct pstate *ps, struct lp_part *part, int64_t first)
{
    struct batch *b = lp_xcalloc(1, sizeof(*b));
    b->partition = ps->partition;
    b->part = part;
    b->first = first;
    b->last = first;
    b->opened_mono = lp_time_mono_ns();
    if (ps->i_old < ps->n_olds && ps->olds[ps->i_old].first == first) {
        b->replaces = lp_xmalloc(sizeof(*b->replaces));
        *b->replaces = ps->olds[ps->i_old];
        memset(&ps->olds[ps->i_old], 0, sizeof(ps->olds[ps->i_old]));
        ps->i_old++;
    }
    ps->open = b;
    return b;
}

/* Bytes an open batch holds (counted in open_bytes). */
static size_t open_size(const struct batch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n_objs; i++)
        n += b->objs[i].raw.len + b->objs[i].data.len;
    return n;
}

static int64_t hour_of(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return ns / (3600 * LP_NS_PER_SEC);
}

static int submit(struct lp_output *o, void *lane, struct lp_output_doc *d, int replay)
{
    (void)replay; /* not a synced output: never replayed */
    struct out_s3 *s = (struct out_s3 *)o;
    struct lane *l = lane;
    struct pstate *ps = pstate_of(l, d->partition, 1);
    if (!ps->recovered && recover(s, l, ps, d->kafka_offset)) {
        /* stopping before the store answered: the message stays held
         * (never stored), read again by the next owner */
        lp_msg_hold(d->m, 1);
        return LP_OUTPUT_OK;
    }
    int64_t off = d->kafka_offset;
    if (off < ps->skip_below) {
        lp_counter_inc(s->c_skipped);
        return LP_OUTPUT_SKIPPED;
    }
    json_t *w = json_object_get(ps->wm, d->source_id);
    if (w && json_integer_value(w) >= (json_int_t)d->offset) {
        lp_counter_inc(s->c_skipped); /* a shipper's replay: in the objects already */
        return LP_OUTPUT_SKIPPED;
    }
    struct batch *b = ps->open;
    /* Batches are cut between Kafka messages, never inside one: a message
     * is in one batch, so its offset is stored exactly when that batch is
     * written, and the ledger's offset ranges do not overlap. */
    if (!b || b->msgs[b->n_msgs - 1] != d->m) {
        /* old batches this message is past: nothing of them came again
         * (their objects stand) */
        while (ps->i_old < ps->n_olds && off >= ps->olds[ps->i_old].end) {
            old_free(&ps->olds[ps->i_old]);
            ps->i_old++;
        }
        int cut = b && ((b->replaces && off >= b->replaces->end) ||
                        /* an old batch's first offset starts a batch */
                        (ps->i_old < ps->n_olds && off >= ps->olds[ps->i_old].first) ||
                        b->raw_bytes + d->len + 1 > s->max_bytes || b->records >= s->max_records);
        if (cut) {
            close_batch(s, l, ps);
            b = NULL;
        }
        if (!b) {
            int64_t first = off;
            if (ps->i_old < ps->n_olds && off >= ps->olds[ps->i_old].first)
                first = ps->olds[ps->i_old].first;
            b = open_batch(ps, d->m->part, first);
        }
    }
    int64_t hour = hour_of(d->ts_ns);
    struct obj *ob = NULL;
    for (size_t i = b->n_objs; i-- > 0;)
        if (b->objs[i].hour == hour &&
            (b->objs[i].route == d->route || strcmp(b->objs[i].route, d->route) == 0)) {
            ob = &b->objs[i];
            break;
        }
    if (!ob) {
        const char *name = NULL;
        for (size_t i = 0; i < s->n_routes && !name; i++)
            if (strcmp(s->routes[i], d->route) == 0)
                name = s->routes[i];
        if (!name)
            name = s->routes[0]; /* the engine sends only this output's routes */
        LP_ALLOC_GROW(b->objs, b->n_objs + 1, b->cap_objs, 2);
        ob = &b->objs[b->n_objs++];
        memset(ob, 0, sizeof(*ob));
        lp_buf_init(&ob->raw, 0);
        lp_buf_init(&ob->data, 0);
        ob->route = name;
        ob->hour = hour;
    }
    if (w)
        json_integer_set(w, (json_int_t)d->offset);
    else
        json_object_set_new(ps->wm, d->source_id, json_integer((json_int_t)d->offset));
    lp_buf_append(&ob->raw, d->text, d->len);
    lp_buf_putc(&ob->raw, '\n');
    atomic_fetch_add_explicit(&s->open_bytes, d->len + 1, memory_order_relaxed);
    ob->records++;
    b->records++;
    b->raw_bytes += d->len + 1;
    b->last = off;
    if (!b->n_msgs || b->msgs[b->n_msgs - 1] != d->m) {
        lp_msg_hold(d->m, 1);
        LP_ALLOC_GROW(b->msgs, b->n_msgs + 1, b->cap_msgs, 64);
        b->msgs[b->n_msgs++] = d->m;
    }
    if (ob->raw.len >= CHUNK_BYTES && compress_raw(s, l, ob))
        abort();
    /* never LP_OUTPUT_HANDED: the budget is waited for between messages
     * (the queued batches count as held); waiting here, mid-message, would
     * wait on what other outputs' lanes hold until the message ends */
    return LP_OUTPUT_OK;
}

static void tick(struct lp_output *o, void *lane, int64_t now_ns)
{
    (void)now_ns;
    struct out_s3 *s = (struct out_s3 *)o;
    struct lane *l = lane;
    int64_t now = lp_time_mono_ns();
    for (size_t i = 0; i < l->n_ps; i++) {
        struct pstate *ps = &l->ps[i];
        if (ps->open && now - ps->open->opened_mono >= s->max_age_ns)
            close_batch(s, l, ps);
    }
}

/* Drops the queued batches of a partition that is not ours any more (their
 * holds go: the partition is detached, nothing of it is stored). */
static void cancel_queued(struct out_s3 *s, int32_t partition)
{
    pthread_mutex_lock(&s->mu);
    struct batch **pp = &s->qhead, *drop = NULL;
    s->qtail = NULL;
    while (*pp) {
        struct batch *b = *pp;
        if (partition < 0 || b->partition == partition) {
            *pp = b->next;
            b->next = drop;
            drop = b;
        } else {
            s->qtail = b;
            pp = &b->next;
        }
    }
    for (size_t i = 0; i < s->n_threads; i++)
        if (s->uploading[i] && (partition < 0 || s->uploading[i]->partition == partition))
            s->uploading[i]->cancelled = 1;
    size_t k = 0;
    for (size_t i = 0; i < s->n_done; i++) {
        if (partition < 0 || s->done[i].partition == partition)
            free(s->done[i].key);
        else
            s->done[k++] = s->done[i];
    }
    s->n_done = k;
    pthread_mutex_unlock(&s->mu);
    while (drop) {
        struct batch *n = drop->next;
        lp_counter_inc(s->c_abandoned);
        batch_free(s, drop, 1);
        drop = n;
    }
}

/* Forgets the records to prune of an earlier assignment of the partition
 * (uploads that finished after it was revoked): the recovery's listing
 * finds them again, so the list stays bounded across rebalances. */
static void forget_done(struct out_s3 *s, int32_t partition)
{
    pthread_mutex_lock(&s->mu);
    size_t k = 0;
    for (size_t i = 0; i < s->n_done; i++) {
        if (s->done[i].partition == partition)
            free(s->done[i].key);
        else
            s->done[k++] = s->done[i];
    }
    s->n_done = k;
    pthread_mutex_unlock(&s->mu);
}

static void partition_ev(struct lp_output *o, void *lane, int32_t p, enum lp_output_part ev)
{
    struct out_s3 *s = (struct out_s3 *)o;
    struct lane *l = lane;
    /* partition -1 is a synced output's failed sync (a full disk): the
     * worker replays to the synced outputs only, so what this output holds
     * stays; dropping it would release messages it never wrote */
    if (p < 0)
        return;
    for (size_t i = 0; i < l->n_ps; i++) {
        struct pstate *ps = &l->ps[i];
        if (p >= 0 && ps->partition != p)
            continue;
        switch (ev) {
        case LP_OUTPUT_OPEN: pstate_reset(s, ps); break;
        case LP_OUTPUT_CLOSE: /* revoked: what it built goes up; the drain waits */
            close_batch(s, l, ps);
            pstate_reset(s, ps);
            break;
        case LP_OUTPUT_ABANDON:
            if (ps->open) {
                lp_counter_inc(s->c_abandoned);
                atomic_fetch_sub_explicit(&s->open_bytes, open_size(ps->open),
                                          memory_order_relaxed);
                batch_free(s, ps->open, 1);
                ps->open = NULL;
            }
            pstate_reset(s, ps);
            break;
        }
    }
    if (ev == LP_OUTPUT_ABANDON)
        cancel_queued(s, p);
    if (ev == LP_OUTPUT_OPEN)
        forget_done(s, p);
}

/* ---- uploading ---- */

/* The batch's ledger record. */
static char *record_json(const struct out_s3 *s, const struct batch *b)
{
    json_t *objs = json_array();
    for (size_t i = 0; i < b->n_objs; i++)
        json_array_append_new(objs, json_pack("{s:s, s:I, s:I}", "key", b->objs[i].key, "records",
                                              (json_int_t)b->objs[i].records, "bytes",
                                              (json_int_t)b->objs[i].data.len));
    json_t *j = json_pack("{s:i, s:s, s:i, s:I, s:I, s:I, s:o, s:O}", "v", 1, "topic", s->topic,
                          "partition", (int)b->partition, "first", (json_int_t)b->first, "end",
                          (json_int_t)(b->last + 1), "records", (json_int_t)b->records, "objects",
                          objs, "watermarks", b->wm ? b->wm : json_object());
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        abort();
    return text;
}

static int cancelled(struct out_s3 *s, struct batch *b)
{
    pthread_mutex_lock(&s->mu);
    int c = b->cancelled || s->stopping;
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* One request, retried with backoff until it succeeds or the batch is
 * cancelled (then 1). fn(c, arg, r) does the request. */
static int retry(struct out_s3 *s, struct batch *b, struct lp_s3_client *c, const char *what,
                 const char *key, int (*fn)(struct lp_s3_client *, void *, struct lp_s3_result *),
                 void *arg)
{
    int64_t backoff = 0;
    for (;;) {
        if (cancelled(s, b))
            return 1;
        struct lp_s3_result r = {0};
        if (fn(c, arg, &r) == 0) {
            lp_ready_set(s->ready, 1);
            return 0;
        }
        lp_counter_inc(s->c_errors);
        if (!r.retryable)
            lp_ready_set(s->ready, 0);
        lp_log_ratelimited(r.retryable ? LP_LOG_WARN : LP_LOG_ERROR,
                           "object store request failed; retrying",
                           "output=%s what=%s key=\"%s\" status=%ld code=\"%s\" error=\"%s\"",
                           s->base.name, what, key, r.status, r.code, r.message);
        backoff = next_backoff(s, backoff);
        /* jitter: 50..100% of the delay, so pods do not retry in step */
        int64_t d = backoff / 2 + (int64_t)((uint64_t)rand() % (uint64_t)(backoff / 2 + 1));
        for (int64_t slept = 0; slept < d && !cancelled(s, b); slept += 100 * LP_NS_PER_MS)
            sleep_ns(d - slept < 100 * LP_NS_PER_MS ? d - slept : 100 * LP_NS_PER_MS);
    }
}

struct put_arg {
    const char *key;
    const void *data;
    size_t len;
    const char *ct, *ce;
};

static int do_put(struct lp_s3_client *c, void *arg, struct lp_s3_result *r)
{
    struct put_arg *p = arg;
    return lp_s3_put(c, p->key, p->data, p->len, p->ct, p->ce, r);
}

static int do_delete(struct lp_s3_client *c, void *arg, struct lp_s3_result *r)
{
    return lp_s3_delete(c, arg, r);
}

static int has_key(const struct batch *b, const char *key)
{
    for (size_t i = 0; i < b->n_objs; i++)
        if (strcmp(b->objs[i].key, key) == 0)
            return 1;
    return 0;
}

/* Deletes the ledger records of this partition the group has committed
 * past (the ledger is for the next owner, who starts at the committed
 * offset). */
static void prune(struct out_s3 *s, struct lp_s3_client *c, struct batch *b)
{
    int64_t committed = atomic_load_explicit(&b->part->group_committed, memory_order_acquire);
    if (committed < 0)
        return;
    char *keys[64];
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    /* the newest record committed past stays: its watermarks are where the
     * next owner starts */
    int64_t newest = -1;
    for (size_t i = 0; i < s->n_done; i++)
        if (s->done[i].partition == b->partition && s->done[i].end <= committed &&
            s->done[i].end > newest)
            newest = s->done[i].end;
    size_t k = 0;
    for (size_t i = 0; i < s->n_done; i++) {
        struct done_rec *dr = &s->done[i];
        if (dr->partition == b->partition && dr->end < newest && n < 64)
            keys[n++] = dr->key;
        else
            s->done[k++] = *dr;
    }
    s->n_done = k;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        lp_s3_delete(c, keys[i], NULL); /* best effort: the next owner prunes too */
        free(keys[i]);
    }
}

static void upload(struct out_s3 *s, struct lp_s3_client *c, struct batch *b)
{
    int64_t end = b->last + 1;
    char *lkey = ledger_key(s, b->partition, b->first, end);
    char *rec = record_json(s, b);
    struct put_arg pa = {lkey, rec, strlen(rec), "application/json", NULL};
    int gone = retry(s, b, c, "ledger", lkey, do_put, &pa);
    free(rec);
    uint64_t bytes = 0;
    for (size_t i = 0; i < b->n_objs && !gone; i++) {
        struct obj *o = &b->objs[i];
        struct put_arg op = {o->key, o->data.data, o->data.len, "application/x-ndjson",
                             s->content_encoding};
        gone = retry(s, b, c, "object", o->key, do_put, &op);
        bytes += o->data.len;
    }
    if (!gone && b->replaces) {
        /* the old batch's objects this one did not write again, then its
         * records: every line of it is in this batch's objects now or
         * comes again after it */
        for (size_t i = 0; i < b->replaces->n_keys && !gone; i++) {
            if (has_key(b, b->replaces->keys[i]))
                continue;
            gone = retry(s, b, c, "delete", b->replaces->keys[i], do_delete, b->replaces->keys[i]);
            lp_counter_inc(s->c_stale_deleted);
        }
        for (size_t i = 0; i < b->replaces->n_ledger && !gone; i++)
            if (strcmp(b->replaces->ledger_keys[i], lkey) != 0)
                gone = retry(s, b, c, "delete", b->replaces->ledger_keys[i], do_delete,
                             b->replaces->ledger_keys[i]);
        lp_counter_inc(s->c_replaced);
    }
    if (gone) {
        free(lkey);
        lp_counter_inc(s->c_abandoned);
        /* cancelled (the partition was lost: release, nothing is stored) or
         * stopping (keep the holds: nothing stored, read again) */
        pthread_mutex_lock(&s->mu);
        int stop = s->stopping && !b->cancelled;
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            b->n_msgs = 0; /* the holds stay */
        }
        batch_free(s, b, 1);
        return;
    }
    lp_counter_add(s->c_objects, b->n_objs);
    lp_counter_add(s->c_bytes, bytes);
    lp_counter_add(s->c_records, b->records);
    prune(s, c, b);
    pthread_mutex_lock(&s->mu);
    LP_ALLOC_GROW(s->done, s->n_done + 1, s->cap_done, 16);
    s->done[s->n_done++] = (struct done_rec){b->partition, end, lkey};
    pthread_mutex_unlock(&s->mu);
    batch_free(s, b, 1);
}

struct uploader {
    struct out_s3 *s;
    size_t slot;
};

static void *uploader_main(void *arg)
{
    struct uploader *u = arg;
    struct out_s3 *s = u->s;
    struct lp_s3_client c;
    lp_s3_client_init(&c, &s->s3);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->qhead && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping)
            break;
        struct batch *b = s->qhead;
        s->qhead = b->next;
        if (!s->qhead)
            s->qtail = NULL;
        b->next = NULL;
        s->uploading[u->slot] = b;
        pthread_mutex_unlock(&s->mu);
        upload(s, &c, b);
        pthread_mutex_lock(&s->mu);
        s->uploading[u->slot] = NULL;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    lp_s3_client_release(&c);
    free(u);
    return NULL;
}

/* ---- the output ---- */

static struct lp_output *create(const struct lp_config_output *cfg, const struct lp_output_env *env,
                                char *err, size_t errlen)
{
    struct lp_s3_cfg sc;
    lp_s3_output_cfg(cfg, &sc);
    if (!sc.access_key_id || !*sc.access_key_id || !sc.secret_access_key ||
        !*sc.secret_access_key) {
        snprintf(err, errlen,
                 "no credentials: set access_key_id and secret_access_key, or "
                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        return NULL;
    }
    struct out_s3 *s = lp_xcalloc(1, sizeof(*s));
    s->base = (struct lp_output){&lp_output_s3, cfg, cfg->name};
    if (lp_s3_init(&s->s3, &sc, err, errlen)) {
        free(s);
        return NULL;
    }
    s->topic = lp_xstrdup(env->topic);
    struct lp_buf b = LP_BUF_INIT;
    s->pfx = lp_s3_output_prefix(cfg);
    lp_buf_appendf(&b, "%s_logpipe/ledger/%s/%s/", s->pfx, cfg->name, s->topic);
    s->ledger_pfx = lp_buf_detach(&b, NULL);
    s->n_routes = env->n_routes;
    s->routes = lp_xcalloc(env->n_routes ? env->n_routes : 1, sizeof(*s->routes));
    for (size_t i = 0; i < env->n_routes; i++)
        s->routes[i] = lp_xstrdup(env->routes[i]);
    if (!env->n_routes)
        s->routes[0] = lp_xstrdup("default");
    if (lp_codec_parse(cfg->object_compression ? cfg->object_compression : "zstd", &s->codec))
        s->codec = LP_CODEC_ZSTD;
    s->ext = codec_ext(s->codec);
    s->content_encoding = NULL; /* the key says the encoding; readers decompress */
    s->max_bytes = (size_t)cfg->max_object_bytes;
    s->max_records = (uint64_t)cfg->max_object_records;
    s->max_age_ns = cfg->max_object_age_ms * LP_NS_PER_MS;
    s->retry_initial_ns = cfg->retry_initial_ms * LP_NS_PER_MS;
    s->retry_max_ns = cfg->retry_max_ms * LP_NS_PER_MS;
    s->ready = env->ready;
    s->n_threads = (size_t)cfg->max_inflight_requests;
    if (s->n_threads < 1)
        s->n_threads = 1;
    if (s->n_threads > MAX_UPLOADERS)
        s->n_threads = MAX_UPLOADERS;
    s->uploading = lp_xcalloc(s->n_threads, sizeof(*s->uploading));
    s->threads = lp_xcalloc(s->n_threads, sizeof(*s->threads));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    char l[160];
    snprintf(l, sizeof(l), "output=\"%s\"", cfg->name);
    struct lp_metrics *m = env->metrics;
    s->c_objects = lp_metrics_counter(m, "logpipe_aggregator_s3_objects_total",
                                      "Objects written to the object store.", l);
    s->c_bytes = lp_metrics_counter(m, "logpipe_aggregator_s3_bytes_total",
                                    "Bytes of objects written (compressed).", l);
    s->c_records = lp_metrics_counter(m, "logpipe_aggregator_s3_records_total",
                                      "Lines in objects written.", l);
    s->c_batches = lp_metrics_counter(m, "logpipe_aggregator_s3_batches_total",
                                      "Batches closed (one object per route and hour each).", l);
    s->c_errors = lp_metrics_counter(m, "logpipe_aggregator_s3_request_errors_total",
                                     "Object store requests that failed (each is retried).", l);
    s->c_replaced = lp_metrics_counter(
        m, "logpipe_aggregator_s3_batches_replaced_total",
        "Batches a previous owner wrote or began, cut again at the same first offset.", l);
    s->c_stale_deleted = lp_metrics_counter(
        m, "logpipe_aggregator_s3_stale_objects_deleted_total",
        "Objects of a previous owner's batch that the batch replacing it did not write again.", l);
    s->c_abandoned = lp_metrics_counter(
        m, "logpipe_aggregator_s3_batches_abandoned_total",
        "Batches not written because their partition was lost (read again by the next owner).", l);
    s->c_skipped = lp_metrics_counter(
        m, "logpipe_aggregator_s3_replays_skipped_total",
        "Lines not written again because a previous owner's objects hold them already.", l);
    lp_ready_set(s->ready, 0);
    return &s->base;
}

static int start(struct lp_output *o)
{
    struct out_s3 *s = (struct out_s3 *)o;
    /* one look at the bucket, so a wrong endpoint, bucket or key shows at
     * start (the output keeps trying: a store that is down at start is
     * not fatal) */
    struct lp_s3_client c;
    lp_s3_client_init(&c, &s->s3);
    struct lp_s3_result r = {0};
    int rc = lp_s3_list(&c, s->ledger_pfx, NULL, NULL, NULL, &r);
    lp_s3_client_release(&c);
    if (rc)
        lp_log(LP_LOG_WARN, "object store not reachable at start; retrying when there is work",
               "output=%s status=%ld code=\"%s\" error=\"%s\"", o->name, r.status, r.code,
               r.message);
    lp_ready_set(s->ready, rc == 0);
    for (size_t i = 0; i < s->n_threads; i++) {
        struct uploader *u = lp_xmalloc(sizeof(*u));
        *u = (struct uploader){s, i};
        if (pthread_create(&s->threads[i], NULL, uploader_main, u)) {
            free(u);
            s->n_threads = i;
            return -EAGAIN;
        }
    }
    s->started = 1;
    return 0;
}

static void *lane_new(struct lp_output *o)
{
    struct out_s3 *s = (struct out_s3 *)o;
    struct lane *l = lp_xcalloc(1, sizeof(*l));
    l->codec = (struct lp_codec_ctx)LP_CODEC_CTX_INIT;
    lp_s3_client_init(&l->client, &s->s3);
    return l;
}

static void lane_free(struct lp_output *o, void *lane)
{
    struct out_s3 *s = (struct out_s3 *)o;
    struct lane *l = lane;
    if (!l)
        return;
    for (size_t i = 0; i < l->n_ps; i++) {
        struct pstate *ps = &l->ps[i];
        if (ps->open) { /* not closed by a revoke: keep its holds (not stored) */
            atomic_fetch_sub_explicit(&s->open_bytes, open_size(ps->open), memory_order_relaxed);
            ps->open->n_msgs = 0;
            batch_free(s, ps->open, 0);
        }
        pstate_reset(s, ps);
    }
    free(l->ps);
    lp_codec_ctx_release(&l->codec);
    lp_s3_client_release(&l->client);
    free(l);
}

static size_t memory(struct lp_output *o, size_t *reserved)
{
    struct out_s3 *s = (struct out_s3 *)o;
    if (reserved)
        *reserved = 0;
    return atomic_load_explicit(&s->open_bytes, memory_order_relaxed) +
           atomic_load_explicit(&s->queued_bytes, memory_order_relaxed);
}

static void close_out(struct lp_output *o, int64_t deadline_ns)
{
    if (!o)
        return;
    struct out_s3 *s = (struct out_s3 *)o;
    pthread_mutex_lock(&s->mu);
    for (;;) { /* what is queued goes up until the deadline */
        int busy = s->qhead != NULL;
        for (size_t i = 0; i < s->n_threads; i++)
            busy |= s->uploading[i] != NULL;
        if (!busy || !s->started || lp_time_mono_ns() >= deadline_ns)
            break;
        pthread_mutex_unlock(&s->mu);
        sleep_ns(20 * LP_NS_PER_MS);
        pthread_mutex_lock(&s->mu);
    }
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n_threads && s->started; i++)
        pthread_join(s->threads[i], NULL);
    while (s->qhead) { /* not written: the holds stay, nothing is stored */
        struct batch *b = s->qhead;
        s->qhead = b->next;
        b->n_msgs = 0;
        batch_free(s, b, 0);
    }
    for (size_t i = 0; i < s->n_done; i++)
        free(s->done[i].key);
    free(s->done);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    for (size_t i = 0; i < s->n_routes; i++)
        free((char *)s->routes[i]);
    free(s->routes);
    free(s->uploading);
    free(s->threads);
    free(s->topic);
    free(s->pfx);
    free(s->ledger_pfx);
    lp_s3_release(&s->s3);
    free(s);
}

const struct lp_output_ops lp_output_s3 = {
    .name = "s3",
    .flags = 0,
    .create = create,
    .start = start,
    .lane_new = lane_new,
    .lane_free = lane_free,
    .submit = submit,
    .tick = tick,
    .partition = partition_ev,
    .memory = memory,
    .close = close_out,
};
