/* The file output: NDJSON segments per (route, partition) under its path
 * (lp_segfile.h), synced by the worker before it lets the messages' offsets
 * be stored (LP_OUTPUT_SYNCED). A lane holds its worker's open segments;
 * segment stores are per partition and a partition has one worker, so
 * lanes share nothing. */
#define LP_LOG_MODULE "aggregator"
#include "lp_alloc.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_http.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_output.h"
#include "lp_segfile.h"
#include "lp_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out_file {
    struct lp_output base;
    char *path;
    size_t max_bytes;
    int64_t max_age_ns;
    const char **routes; /* copies of the names of the routes that send here */
    size_t n_routes;
    struct lp_counter *c_skipped; /* replayed lines skipped */
};

struct seg {
    const char *route; /* one of out_file.routes */
    int32_t partition;
    struct lp_segfile *sf; /* NULL: a free slot */
    int dirty;
};

struct lane {
    struct seg *segs;
    size_t n_segs, cap_segs;
    struct seg *last; /* the segment of the last write */
    int broken;       /* a write failed: nothing more until the worker resets */
};

static struct lp_output *create(const struct lp_config_output *cfg, const struct lp_output_env *env,
                                char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct out_file *f = lp_xcalloc(1, sizeof(*f));
    f->base = (struct lp_output){&lp_output_file, cfg, cfg->name};
    f->path = lp_xstrdup(cfg->path);
    f->max_bytes = (size_t)cfg->max_segment_bytes;
    f->max_age_ns = cfg->max_segment_age_ms * LP_NS_PER_MS;
    f->n_routes = env->n_routes;
    f->routes = lp_xcalloc(env->n_routes ? env->n_routes : 1, sizeof(*f->routes));
    for (size_t i = 0; i < env->n_routes; i++)
        f->routes[i] = lp_xstrdup(env->routes[i]);
    char l[160];
    snprintf(l, sizeof(l), "output=\"%s\"", cfg->name);
    f->c_skipped =
        lp_metrics_counter(env->metrics, "logpipe_aggregator_file_replays_skipped_total",
                           "Lines not written because the files already hold them (a replay).", l);
    lp_ready_set(env->ready, 1);
    return &f->base;
}

static void close_out(struct lp_output *o, int64_t deadline_ns)
{
    (void)deadline_ns;
    if (!o)
        return;
    struct out_file *f = (struct out_file *)o;
    for (size_t i = 0; i < f->n_routes; i++)
        free((char *)f->routes[i]);
    free(f->routes);
    free(f->path);
    free(f);
}

static void *lane_new(struct lp_output *o)
{
    (void)o;
    return lp_xcalloc(1, sizeof(struct lane));
}

static void abandon(struct lane *l, int32_t partition)
{
    for (size_t i = 0; i < l->n_segs; i++) {
        struct seg *s = &l->segs[i];
        if (s->sf && (partition < 0 || s->partition == partition)) {
            lp_segfile_abandon(s->sf);
            s->sf = NULL;
        }
    }
    l->last = NULL;
}

static void lane_free(struct lp_output *o, void *lane)
{
    (void)o;
    struct lane *l = lane;
    if (!l)
        return;
    abandon(l, -1);
    free(l->segs);
    free(l);
}

/* The segment store of (route, partition), opened (and so recovered) when
 * the lane has none; NULL when it cannot be opened (logged). */
static struct seg *seg_of(struct out_file *f, struct lane *l, const char *route, int32_t partition)
{
    if (l->last && l->last->sf && l->last->partition == partition &&
        (l->last->route == route || strcmp(l->last->route, route) == 0))
        return l->last;
    struct seg *free_slot = NULL;
    for (size_t i = 0; i < l->n_segs; i++) {
        struct seg *s = &l->segs[i];
        if (!s->sf)
            free_slot = free_slot ? free_slot : s;
        else if (s->partition == partition && strcmp(s->route, route) == 0)
            return l->last = s;
    }
    const char *name = NULL;
    for (size_t i = 0; i < f->n_routes && !name; i++)
        if (strcmp(f->routes[i], route) == 0)
            name = f->routes[i];
    if (!name)
        return NULL; /* the engine sends only this output's routes */
    struct lp_segfile_config sc = {f->path, name, f->max_bytes, f->max_age_ns};
    char err[512];
    struct lp_segfile *sf = lp_segfile_open(&sc, partition, err, sizeof(err));
    if (!sf) {
        lp_log_ratelimited(LP_LOG_ERROR, "cannot open the segment store; retrying",
                           "output=%s partition=%d error=\"%s\"", f->base.name, (int)partition,
                           err);
        return NULL;
    }
    if (!free_slot) {
        LP_ALLOC_GROW(l->segs, l->n_segs + 1, l->cap_segs, 8);
        free_slot = &l->segs[l->n_segs++];
    }
    *free_slot = (struct seg){name, partition, sf, 0};
    return l->last = free_slot;
}

static int submit(struct lp_output *o, void *lane, struct lp_output_doc *d, int replay)
{
    (void)replay; /* the watermarks tell a replay's lines apart */
    struct out_file *f = (struct out_file *)o;
    struct lane *l = lane;
    if (l->broken)
        return -EIO;
    struct seg *s = seg_of(f, l, d->route, d->partition);
    int wr = s ? lp_segfile_write(s->sf, d->source_id, d->offset, d->kafka_offset, d->text, d->len,
                                  d->now_ns)
               : -EIO;
    if (wr < 0) {
        if (s)
            lp_log_ratelimited(LP_LOG_ERROR, "segment write failed; will retry the batch",
                               "output=%s error=\"%s\"", o->name, lp_strerror(wr));
        l->broken = 1;
        return wr;
    }
    s->dirty = 1;
    if (wr == 0) {
        lp_counter_inc(f->c_skipped);
        return LP_OUTPUT_SKIPPED;
    }
    return LP_OUTPUT_OK;
}

static int sync_lane(struct lp_output *o, void *lane)
{
    struct lane *l = lane;
    int rc = l->broken ? -EIO : 0;
    for (size_t i = 0; i < l->n_segs && !l->broken; i++) {
        struct seg *s = &l->segs[i];
        if (!s->sf || !s->dirty)
            continue;
        int r = lp_segfile_sync(s->sf);
        if (r) {
            lp_log_ratelimited(LP_LOG_ERROR, "segment fsync failed; will retry",
                               "output=%s partition=%d error=\"%s\"", o->name, (int)s->partition,
                               lp_strerror(r));
            rc = r;
        } else {
            s->dirty = 0;
        }
    }
    return rc;
}

/* Rolls segments that are too old or too big; the worker synced first (a
 * roll fsyncs and renames the segment its messages were written to). */
static void tick(struct lp_output *o, void *lane, int64_t now_ns)
{
    struct lane *l = lane;
    for (size_t i = 0; i < l->n_segs; i++) {
        struct seg *s = &l->segs[i];
        if (s->sf && lp_segfile_tick(s->sf, now_ns)) {
            lp_log_ratelimited(LP_LOG_ERROR, "rolling a segment failed; reopening it",
                               "output=%s partition=%d", o->name, (int)s->partition);
            lp_segfile_abandon(s->sf);
            s->sf = NULL;
            if (l->last == s)
                l->last = NULL;
        }
    }
}

static void partition(struct lp_output *o, void *lane, int32_t p, enum lp_output_part ev)
{
    struct out_file *f = (struct out_file *)o;
    struct lane *l = lane;
    switch (ev) {
    case LP_OUTPUT_OPEN: /* opens (recovers: torn lines cut, watermarks raised,
                            left-over open segments closed) every store of p */
        for (size_t r = 0; r < f->n_routes; r++)
            seg_of(f, l, f->routes[r], p);
        break;
    case LP_OUTPUT_CLOSE:
        for (size_t i = 0; i < l->n_segs; i++) {
            struct seg *s = &l->segs[i];
            if (s->sf && s->partition == p) {
                if (lp_segfile_close(s->sf))
                    lp_log(LP_LOG_ERROR, "closing a segment failed; the next owner recovers it",
                           "output=%s partition=%d", o->name, (int)p);
                s->sf = NULL;
            }
        }
        l->last = NULL;
        break;
    case LP_OUTPUT_ABANDON:
        abandon(l, p);
        if (p < 0) /* every segment reopened: what broke is gone */
            l->broken = 0;
        break;
    }
}

const struct lp_output_ops lp_output_file = {
    .name = "file",
    .flags = LP_OUTPUT_SYNCED,
    .create = create,
    .lane_new = lane_new,
    .lane_free = lane_free,
    .submit = submit,
    .sync = sync_lane,
    .tick = tick,
    .partition = partition,
    .close = close_out,
};
