/* Partial reassembly, multiline grouping and offset ordering.
 *
 * DESIGN: per stream there are two stages, a partial line being rejoined
 * (P chunks until F) and a multiline group being built. Finished events
 * wait in a small queue sorted by start offset until no stage of any stream
 * holds an earlier offset, then go to the callback. In the common case
 * (no partials, no multiline) an event goes straight to the callback
 * without a copy. The queue is bounded: past its cap every stage is
 * flushed, which keeps order and memory at the cost of splitting a group. */
#include "lp_assemble.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_wire.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX_EVENTS 16384
#define QUEUE_MAX_BYTES (16u << 20)

struct stage {
    int active;
    uint64_t off;
    int64_t ts;
    unsigned flags;
    uint32_t lines;  /* group: physical lines; partial: chunks */
    int64_t last_ns; /* when it last grew */
    struct lp_buf buf;
};

struct ready {
    uint64_t off;
    int64_t ts;
    enum lp_stream stream;
    unsigned flags;
    uint32_t lines;
    char *msg;
    size_t len;
};

struct lp_assembler {
    const struct lp_multiline *ml;
    size_t max_line;
    int64_t partial_timeout_ns;
    struct {
        struct stage part;
        struct stage group;
        struct lp_ml_state st;
        int seen_start; /* a start line seen since the file (or a rewind) began */
    } s[LP_STREAM_COUNT];
    struct ready *q;
    size_t nq, capq, qbytes;
    uint64_t match_ns; /* classify time with a tenant's rules (ml->mctx) */
};

struct lp_assembler *lp_assembler_new(const struct lp_multiline *ml, size_t max_line_bytes,
                                      int64_t partial_timeout_ns)
{
    struct lp_assembler *a = lp_xcalloc(1, sizeof(*a));
    a->ml = ml && ml->mode != LP_ML_OFF ? ml : NULL;
    a->max_line = max_line_bytes ? max_line_bytes : 256 * 1024;
    a->partial_timeout_ns = partial_timeout_ns;
    for (size_t i = 0; i < LP_STREAM_COUNT; i++) {
        lp_buf_init(&a->s[i].part.buf, 0);
        lp_buf_init(&a->s[i].group.buf, 0);
    }
    return a;
}

uint64_t lp_assembler_take_match_ns(struct lp_assembler *a)
{
    uint64_t n = a->match_ns;
    a->match_ns = 0;
    return n;
}

void lp_assembler_reset(struct lp_assembler *a)
{
    for (int i = 0; i < LP_STREAM_COUNT; i++) {
        a->s[i].part.active = 0;
        lp_buf_reset(&a->s[i].part.buf);
        a->s[i].group.active = 0;
        lp_buf_reset(&a->s[i].group.buf);
        a->s[i].st.in_trace = 0;
        a->s[i].seen_start = 0;
    }
    for (size_t i = 0; i < a->nq; i++)
        free(a->q[i].msg);
    a->nq = 0;
    a->qbytes = 0;
}

void lp_assembler_free(struct lp_assembler *a)
{
    if (!a)
        return;
    lp_assembler_reset(a);
    for (int i = 0; i < LP_STREAM_COUNT; i++) {
        lp_buf_release(&a->s[i].part.buf);
        lp_buf_release(&a->s[i].group.buf);
    }
    free(a->q);
    free(a);
}

/* Offset below which nothing can still appear: stages only (not the queue). */
static uint64_t stage_min(const struct lp_assembler *a)
{
    uint64_t min = UINT64_MAX;
    for (int i = 0; i < LP_STREAM_COUNT; i++) {
        if (a->s[i].part.active && a->s[i].part.off < min)
            min = a->s[i].part.off;
        if (a->s[i].group.active && a->s[i].group.off < min)
            min = a->s[i].group.off;
    }
    return min;
}

uint64_t lp_assembler_pending_offset(const struct lp_assembler *a)
{
    uint64_t min = stage_min(a);
    return a->nq && a->q[0].off < min ? a->q[0].off : min;
}

/* Longest prefix of s[0..n) that is at most cap bytes and does not split
 * a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t cap)
{
    if (n <= cap)
        return n;
    size_t cut = cap;
    /* step back over continuation bytes (at most 3) to a sequence start */
    for (int i = 0; i < 3 && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80; i++)
        cut--;
    return cut;
}

static unsigned utf8_flag(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    /* most log lines are ASCII: test 8 bytes at a time */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL)
            break;
    }
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t sl;
        if (!lp_utf8_next(p + i, n - i, &sl))
            return LP_REC_UTF8_REPLACED;
        i += sl;
    }
    return 0;
}

/* Appends bytes to a stage within the cap; past it, flags truncation. */
static void stage_append(struct lp_assembler *a, struct stage *st, size_t cap, const char *s,
                         size_t n)
{
    size_t room = st->buf.len < cap ? cap - st->buf.len : 0;
    size_t take = utf8_cut(s, n, room);
    if (take < n)
        st->flags |= LP_REC_TRUNCATED;
    if (take)
        lp_buf_append(&st->buf, s, take);
    (void)a;
}

static int emit_queue(struct lp_assembler *a, lp_event_fn fn, void *ctx)
{
    uint64_t limit = stage_min(a);
    size_t i = 0;
    int rc = 0;
    while (i < a->nq && a->q[i].off < limit) {
        struct ready *r = &a->q[i];
        struct lp_event ev = {r->ts, r->stream, r->off, r->msg, r->len, r->flags, r->lines};
        rc = fn(ctx, &ev);
        a->qbytes -= r->len;
        free(r->msg);
        i++;
        if (rc)
            break;
    }
    if (i) {
        memmove(a->q, a->q + i, (a->nq - i) * sizeof(*a->q));
        a->nq -= i;
    }
    return rc;
}

static int flush_all_stages(struct lp_assembler *a, int64_t now_ns, lp_event_fn fn, void *ctx);

/* A finished event: straight to the callback when nothing earlier is
 * pending, else into the sorted queue. */
static int finish(struct lp_assembler *a, enum lp_stream stream, uint64_t off, int64_t ts,
                  const char *msg, size_t len, unsigned flags, uint32_t lines, lp_event_fn fn,
                  void *ctx)
{
    flags |= utf8_flag(msg, len);
    if (a->nq == 0 && off < stage_min(a)) {
        struct lp_event ev = {ts, stream, off, msg, len, flags, lines};
        return fn(ctx, &ev);
    }
    LP_ALLOC_GROW(a->q, a->nq + 1, a->capq, 16);
    size_t pos = a->nq;
    while (pos > 0 && a->q[pos - 1].off > off)
        pos--;
    memmove(a->q + pos + 1, a->q + pos, (a->nq - pos) * sizeof(*a->q));
    char *copy = lp_xmalloc(len ? len : 1);
    memcpy(copy, msg, len);
    a->q[pos] = (struct ready){off, ts, stream, flags, lines, copy, len};
    a->nq++;
    a->qbytes += len;
    return 0;
}

static int finish_group(struct lp_assembler *a, enum lp_stream s, lp_event_fn fn, void *ctx)
{
    struct stage *g = &a->s[s].group;
    if (!g->active)
        return 0;
    g->active = 0;
    return finish(a, s, g->off, g->ts, g->buf.data, g->buf.len, g->flags, g->lines, fn, ctx);
}

/* A complete logical line (partials rejoined) enters the multiline stage. */
static int logical_line(struct lp_assembler *a, enum lp_stream s, uint64_t off, int64_t ts,
                        const char *msg, size_t len, unsigned flags, int64_t now_ns, lp_event_fn fn,
                        void *ctx)
{
    if (!a->ml) {
        size_t take = utf8_cut(msg, len, a->max_line);
        if (take < len)
            flags |= LP_REC_TRUNCATED;
        return finish(a, s, off, ts, msg, take, flags, 1, fn, ctx);
    }
    struct stage *g = &a->s[s].group;
    enum lp_ml_verdict v;
    if (a->ml->mctx) { /* a tenant's pattern: its cost is metered */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        v = lp_multiline_classify(a->ml, &a->s[s].st, msg, len);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        a->match_ns +=
            (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    } else {
        v = lp_multiline_classify(a->ml, &a->s[s].st, msg, len);
    }
    size_t cap = a->ml->max_bytes < a->max_line ? a->ml->max_bytes : a->max_line;
    int rc = 0;
    if (v == LP_ML_START)
        a->s[s].seen_start = 1;
    else if (!a->s[s].seen_start)
        v = LP_ML_START_END; /* before the first start line: one event each
                              * (what Fluent Bit's first-line detection does) */
    if (g->active && v != LP_ML_START &&
        (g->lines >= a->ml->max_lines || g->buf.len + 1 + len > cap)) {
        /* the group is full: close it; this line starts the next one */
        if ((rc = finish_group(a, s, fn, ctx)))
            return rc;
    }
    if (v == LP_ML_START || v == LP_ML_START_END || !g->active) {
        if ((rc = finish_group(a, s, fn, ctx)))
            return rc;
        g->active = 1;
        g->off = off;
        g->ts = ts;
        g->flags = flags;
        g->lines = 1;
        lp_buf_reset(&g->buf);
        stage_append(a, g, cap, msg, len);
    } else {
        lp_buf_putc(&g->buf, '\n');
        stage_append(a, g, cap, msg, len);
        g->flags |= flags;
        g->lines++;
    }
    g->last_ns = now_ns;
    if (v == LP_ML_CONT_END || v == LP_ML_START_END)
        rc = finish_group(a, s, fn, ctx);
    return rc;
}

static int finish_partial(struct lp_assembler *a, enum lp_stream s, int64_t now_ns, lp_event_fn fn,
                          void *ctx)
{
    struct stage *p = &a->s[s].part;
    if (!p->active)
        return 0;
    p->active = 0;
    unsigned flags = p->flags | (p->lines > 1 ? LP_REC_PARTIAL : 0);
    return logical_line(a, s, p->off, p->ts, p->buf.data, p->buf.len, flags, now_ns, fn, ctx);
}

int lp_assembler_feed(struct lp_assembler *a, const struct lp_cline *c, uint64_t off,
                      unsigned extra_flags, int64_t now_ns, lp_event_fn fn, void *ctx)
{
    enum lp_stream s = c->stream < LP_STREAM_COUNT ? c->stream : LP_STREAM_NONE;
    struct stage *p = &a->s[s].part;
    int rc;
    if (!p->active && !c->partial) {
        rc = logical_line(a, s, off, c->ts_ns, c->msg, c->len, extra_flags, now_ns, fn, ctx);
    } else {
        if (!p->active) {
            p->active = 1;
            p->off = off;
            p->ts = c->ts_ns;
            p->flags = 0;
            p->lines = 0;
            lp_buf_reset(&p->buf);
        }
        p->flags |= extra_flags;
        p->lines++;
        p->last_ns = now_ns;
        /* one byte over the cap so the truncation flag is set at the end */
        stage_append(a, p, a->max_line, c->msg, c->len);
        rc = c->partial ? 0 : finish_partial(a, s, now_ns, fn, ctx);
    }
    if (rc)
        return rc;
    if (a->nq > QUEUE_MAX_EVENTS || a->qbytes > QUEUE_MAX_BYTES)
        return flush_all_stages(a, now_ns, fn, ctx);
    return a->nq ? emit_queue(a, fn, ctx) : 0;
}

static int flush_all_stages(struct lp_assembler *a, int64_t now_ns, lp_event_fn fn, void *ctx)
{
    int rc = 0;
    for (int s = 0; s < LP_STREAM_COUNT && !rc; s++) {
        rc = finish_partial(a, (enum lp_stream)s, now_ns, fn, ctx);
        if (!rc)
            rc = finish_group(a, (enum lp_stream)s, fn, ctx);
    }
    return rc ? rc : emit_queue(a, fn, ctx);
}

int lp_assembler_set_multiline(struct lp_assembler *a, const struct lp_multiline *ml,
                               lp_event_fn fn, void *ctx)
{
    ml = ml && ml->mode != LP_ML_OFF ? ml : NULL;
    if (ml == a->ml)
        return 0;
    int rc = 0;
    for (int s = 0; s < LP_STREAM_COUNT && !rc; s++)
        rc = finish_group(a, (enum lp_stream)s, fn, ctx);
    if (!rc)
        rc = emit_queue(a, fn, ctx);
    if (rc)
        return rc;
    a->ml = ml;
    for (int s = 0; s < LP_STREAM_COUNT; s++) {
        a->s[s].st.in_trace = 0;
        a->s[s].seen_start = 0;
    }
    return 0;
}

int lp_assembler_flush(struct lp_assembler *a, int64_t now_ns, int all, lp_event_fn fn, void *ctx)
{
    if (all)
        return flush_all_stages(a, now_ns, fn, ctx);
    int rc = 0;
    for (int s = 0; s < LP_STREAM_COUNT && !rc; s++) {
        struct stage *p = &a->s[s].part, *g = &a->s[s].group;
        if (p->active && now_ns - p->last_ns >= a->partial_timeout_ns)
            rc = finish_partial(a, (enum lp_stream)s, now_ns, fn, ctx);
        if (!rc && g->active && a->ml && now_ns - g->last_ns >= a->ml->flush_ns)
            rc = finish_group(a, (enum lp_stream)s, fn, ctx);
    }
    return rc ? rc : emit_queue(a, fn, ctx);
}
