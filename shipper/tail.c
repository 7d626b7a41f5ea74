/* Tailing one file: identity and resume, reading and line framing,
 * rotation / deletion / truncation checks, checkpoint entries. */
#define LP_LOG_MODULE "tail"
#include "shipper_int.h"

#include "lp_alloc.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_log.h"
#include "lp_time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct tail *tail_open(struct lp_shipper *s, const char *path, int input_idx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        lp_log_ratelimited(LP_LOG_WARN, "cannot open file", "path=\"%s\" error=\"%s\"", path,
                           lp_strerror(-e));
        errno = e; /* the caller tells a descriptor shortage from the rest */
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    struct tail *t = lp_xcalloc(1, sizeof(*t));
    t->s = s;
    t->path = lp_xstrdup(path);
    t->input_idx = input_idx;
    t->fd = fd;
    t->dev = (uint64_t)st.st_dev;
    t->ino = (uint64_t)st.st_ino;
    t->wd = -1;
    t->size_seen = (uint64_t)st.st_size;
    t->dirty = 1;
    t->last_growth_ns = lp_time_mono_ns();
    lp_buf_init(&t->line, 0);
    lp_wire_encoder_init(&t->enc, s->batch_raw_limit);
    t->ml_want = t->ml_have = shipper_multiline(s, input_idx);
    t->as = lp_assembler_new(
        t->ml_want, (size_t)s->cfg->shipper.max_line_bytes,
        lp_config_input_multiline(&s->cfg->shipper, input_idx)->flush_timeout_ms * LP_NS_PER_MS);
    const char *fmt = input_idx >= 0 ? s->cfg->shipper.inputs[input_idx].format : "auto";
    t->fmt = (enum lp_cfmt)lp_cfmt_parse(fmt);
    if (input_idx >= 0)
        t->cs = lp_charset_open(s->cfg->shipper.inputs[input_idx].encoding);
    lp_path_meta(path, &t->meta);
    if (t->meta.container_id[0] && !t->meta.k8s_namespace[0]) {
        char why[256];
        if (lp_docker_meta_read(path, &t->docker, why, sizeof(why)))
            lp_log(LP_LOG_DEBUG, "no Docker metadata for the file", "path=\"%s\" reason=\"%s\"",
                   path, why);
    }
    t->tokens = (double)s->cfg->shipper.rate_limit_bytes_per_sec;
    t->tokens_ns = lp_time_mono_ns();

    /* watch the directory of the file itself (a /var/log/containers link
     * points into /var/log/pods, where the writes happen) */
    char *real = realpath(path, NULL);
    if (real) {
        char *slash = strrchr(real, '/');
        if (slash) {
            t->base = lp_xstrdup(slash + 1);
            *slash = '\0';
            t->wd = shipper_watch(s, *real ? real : "/",
                                  IN_MODIFY | IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |
                                      IN_ATTRIB | IN_CLOSE_WRITE);
        }
    }
    free(real);
    return t;
}

void tail_free(struct tail *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    lp_charset_close(t->cs);
    struct inflight *e = t->fifo;
    while (e) {
        struct inflight *n = e->next;
        e->t = NULL; /* a report may still come: it must not touch us */
        e = n;
    }
    lp_assembler_free(t->as);
    lp_wire_encoder_release(&t->enc);
    lp_buf_release(&t->line);
    free(t->path);
    free(t->base);
    lp_docker_meta_release(&t->docker);
    lp_k8s_pod_release(t->pod);
    free(t);
}

static void set_source(struct tail *t)
{
    struct lp_shipper *s = t->s;
    struct lp_wire_source *src = &t->src;
    memset(src, 0, sizeof(*src));
    src->source_id = t->sid;
    t->ns = lp_tenants_get(s->tenants, t->meta.k8s_namespace);
    src->host = s->host;
    src->path = t->path;
    src->format = lp_cfmt_name(t->fmt);
    src->container_id = t->meta.container_id[0] ? t->meta.container_id : NULL;
    src->container_name = t->meta.k8s_container_name[0] ? t->meta.k8s_container_name : NULL;
    src->k8s_namespace = t->meta.k8s_namespace[0] ? t->meta.k8s_namespace : NULL;
    src->k8s_pod_name = t->meta.k8s_pod_name[0] ? t->meta.k8s_pod_name : NULL;
    src->k8s_pod_uid = t->meta.k8s_pod_uid[0] ? t->meta.k8s_pod_uid : NULL;
    src->k8s_container_name = src->container_name;
    if (t->docker.name)
        src->container_name = t->docker.name; /* "shop-web-1", not a 64-hex id */
    src->container_image = t->docker.image;
    src->container_labels = t->docker.labels.items;
    src->n_container_labels = t->docker.labels.n;
    const struct lp_k8s_pod *p = t->pod;
    if (p) {
        src->k8s_labels = p->labels.items;
        src->n_k8s_labels = p->labels.n;
        src->k8s_annotations = p->annotations.items;
        src->n_k8s_annotations = p->annotations.n;
        src->k8s_node_name = p->node;
        src->k8s_pod_ip = p->ip;
        src->k8s_owner_kind = p->owner_kind;
        src->k8s_owner_name = p->owner_name;
        src->parser = p->parser;
        if (!src->container_image)
            src->container_image = lp_k8s_pod_image(p, src->k8s_container_name);
    } else if (s->k8s && src->k8s_namespace && src->k8s_pod_name) {
        src->meta_state = "pending"; /* shipped now, with what the path says */
    }
}

void tail_meta_refresh(struct tail *t)
{
    struct lp_k8s *k = t->s->k8s;
    if (!k || !t->meta.k8s_namespace[0] || !t->meta.k8s_pod_name[0])
        return;
    uint64_t g = lp_k8s_generation(k);
    int hint_back = t->hint_off_until_ns && lp_time_mono_ns() >= t->hint_off_until_ns;
    if (t->pod_looked && g == t->pod_gen && !hint_back)
        return; /* nothing changed: the common case, one atomic load */
    if (hint_back)
        t->hint_off_until_ns = 0; /* the pause is over: the hint may apply again */
    t->pod_looked = 1;
    t->pod_gen = g;
    struct lp_k8s_pod *p = lp_k8s_lookup(k, t->meta.k8s_namespace, t->meta.k8s_pod_name,
                                         t->meta.k8s_pod_uid[0] ? t->meta.k8s_pod_uid : NULL);
    struct lp_k8s_pod *old = t->pod;
    t->pod = p;
    t->excluded = p && p->exclude;
    /* the hint's multiline rules (the input's when it has none) take over at
     * the next line (physical_line), after the open groups are finished */
    const struct lp_multiline *ml = shipper_multiline(t->s, t->input_idx);
    if (p && p->multiline && lp_time_mono_ns() >= t->hint_off_until_ns) {
        int ok;
        ml = shipper_hint_multiline(t->s, t->input_idx, p->multiline, &ok);
    }
    if (ml != t->ml_want) {
        t->ml_want = ml;
        t->ml_change = 1;
    }
    if (p != old && t->sid[0])
        set_source(t); /* batches begun from now on carry it */
    lp_k8s_pod_release(old);
}

/* A pod's multiline pattern runs on the node's shared shipper: a token
 * bucket of hint_cpu per second (HINT_BURST seconds' worth) meters its
 * matching; past it the input's own rules take over for HINT_OFF_NS. */
#define HINT_BURST 10
#define HINT_OFF_NS (60 * LP_NS_PER_SEC)

static void meter_hint(struct tail *t, int64_t now_ns)
{
    struct lp_shipper *s = t->s;
    int64_t rate = s->cfg->shipper.kubernetes.hint_cpu_ms; /* ns per ms of wall time */
    int64_t cap = HINT_BURST * rate * LP_NS_PER_MS;
    if (now_ns > t->hint_refill_ns) {
        int64_t add = (now_ns - t->hint_refill_ns) / LP_NS_PER_MS * rate;
        t->hint_tokens_ns = t->hint_tokens_ns + add > cap ? cap : t->hint_tokens_ns + add;
        t->hint_refill_ns = now_ns;
    }
    t->hint_tokens_ns -= (int64_t)lp_assembler_take_match_ns(t->as);
    if (t->hint_tokens_ns >= 0)
        return;
    lp_counter_inc(s->m.hint_throttled);
    lp_log_ratelimited(LP_LOG_WARN,
                       "a pod's logpipe.io/multiline pattern is over its CPU budget; its "
                       "lines use the input's own rules for a minute",
                       "namespace=%s pod=%s path=\"%s\" hint_cpu_ms=%lld", t->meta.k8s_namespace,
                       t->meta.k8s_pod_name, t->path, (long long)rate);
    t->hint_off_until_ns = lp_time_mono_ns() + HINT_OFF_NS;
    t->ml_want = shipper_multiline(s, t->input_idx);
    t->ml_change = 1;
    t->ml_hinted = 0;
    t->pod_looked = 0; /* looked up again after the pause */
}

/* Offset of the start of the last complete line at or before size. */
static uint64_t last_line_start(int fd, uint64_t size)
{
    char buf[4096];
    uint64_t end = size;
    while (end > 0) {
        size_t n = end < sizeof(buf) ? (size_t)end : sizeof(buf);
        ssize_t r = pread(fd, buf, n, (off_t)(end - n));
        if (r != (ssize_t)n)
            return 0;
        for (size_t i = n; i > 0; i--)
            if (buf[i - 1] == '\n')
                return end - n + i;
        end -= n;
    }
    return 0;
}

/* The bytes a checkpoint entry had seen but not shipped when its file
 * vanished while we were stopped (deleted, its inode reused; or truncated):
 * counted and logged once (the entry forgets them). Exact for what the
 * checkpoint saw; what the file gained after our last checkpoint and before
 * it went cannot be known, and the log line says so. */
static void count_gone(struct lp_shipper *s, struct lp_ckpt_entry *e, struct lp_counter *c,
                       const char *reason)
{
    if (e->size <= e->offset)
        return;
    lp_counter_add(c, e->size - e->offset);
    lp_log(LP_LOG_ERROR, "file gone while stopped before it was shipped",
           "path=\"%s\" reason=%s "
           "offset=%llu size=%llu unread_bytes_lost=%llu "
           "note=\"what it gained after the last checkpoint is not known\"",
           e->path ? e->path : "", reason, (unsigned long long)e->offset,
           (unsigned long long)e->size, (unsigned long long)(e->size - e->offset));
    e->size = e->offset;
    /* counted once: saved now, or a crash before the next checkpoint would
     * make the next start count the same bytes again */
    shipper_write_checkpoints(s);
}

/* The entry e of t's file had bytes left to ship when the file was
 * truncated (or replaced) while we were stopped: drained from the file's
 * copy when one is next to it (copytruncate: nothing lost), else counted.
 * e may move when the copy is adopted; it is looked up again. */
static void gone_or_copied(struct tail *t, struct lp_ckpt_entry *e, struct lp_counter *c,
                           const char *reason)
{
    struct lp_shipper *s = t->s;
    uint64_t dev = e->dev, ino = e->ino;
    /* tried even when the checkpoint saw nothing unshipped: the file may
     * have grown after our last checkpoint, and its copy holds that too */
    if (shipper_drain_copy(s, t->path, t->input_idx, e)) {
        if ((e = lp_ckpt_find(&s->ckpt, dev, ino)) != NULL && e->size != e->offset) {
            e->size = e->offset; /* the copy holds them: nothing to count, ever */
            s->ckpt.dirty = 1;
        }
        return;
    }
    count_gone(s, e, c, reason);
}

/* 1 when the open file was created before the second when_s (so it is the
 * file a checkpoint entry saw then, rewritten since), 0 when not (a new file
 * on a reused inode, or born in that same second: cannot tell), -1 when the
 * file system does not say. */
static int born_before(int fd, int64_t when_s)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx) != 0 || !(sx.stx_mask & STATX_BTIME))
        return LP_EUNSUPP;
    return (int64_t)sx.stx_btime.tv_sec < when_s;
}

int tail_identify(struct tail *t)
{
    struct lp_shipper *s = t->s;
    if (t->identified)
        return 0;
    /* a rotated or deleted file will not grow: its only line may lack a newline */
    int rc = (t->rotated || t->deleted) ? lp_head_read_final(t->fd, &t->head)
                                        : lp_head_read(t->fd, &t->head);
    if (rc)
        return rc; /* LP_EAGAIN: no complete first line yet */
    struct stat st;
    if (fstat(t->fd, &st))
        return -errno;
    uint64_t size = (uint64_t)st.st_size, start = 0;
    t->gen = 0;
    struct lp_ckpt_entry *e = lp_ckpt_find(&s->ckpt, t->dev, t->ino);
    const char *how = "new", *sid = NULL; /* NULL: derived from the identity */
    if (t->inherit) {
        /* a copy of a file truncated while we were stopped: continues it */
        t->gen = t->inherit->gen;
        start = t->inherit->offset;
        sid = t->inherit->sid;
        how = "copy of a file truncated while stopped, from its checkpoint";
    } else if (t->truncated_running) {
        /* our own file, truncated while we read it: counted then */
        t->truncated_running = 0;
        t->gen = e ? e->generation + 1 : 0;
        how = "rewritten after a truncation"; /* prev_head: set by tail_check */
    } else if (e && e->head.len == t->head.len && e->head.hash == t->head.hash) {
        uint64_t th;
        if (size >= e->offset && lp_tail_hash(t->fd, e->offset, &th) == 0 && th == e->tail_hash) {
            t->gen = e->generation;
            t->prev_head = e->prev_head;
            start = e->offset;
            sid = e->source_id; /* a copy's is the copied file's (tail_inherit) */
            how = "resumed";
        } else {
            /* same head, but shorter or different before the offset:
             * truncated and rewritten while we were away */
            t->gen = e->generation + 1;
            t->prev_head = e->head;
            lp_counter_inc(s->m.truncations);
            how = "truncated while stopped";
            gone_or_copied(t, e, s->m.lost_truncated, "truncated");
        }
    } else if (e && born_before(t->fd, e->seen_s) == 1) {
        /* the same file (born before we last saw it) with another first
         * line: truncated and rewritten while we were away (copytruncate) */
        t->gen = e->generation + 1;
        t->prev_head = e->head;
        lp_counter_inc(s->m.truncations);
        how = "truncated and rewritten while stopped";
        gone_or_copied(t, e, s->m.lost_truncated, "truncated");
    } else if (e) {
        /* the inode was reused by another file (or the file system cannot
         * tell us): the one we knew was deleted while we were away, or
         * truncated in its second of birth; its copy, if any, is drained */
        t->gen = e->generation + 1;
        how = "inode reused";
        gone_or_copied(t, e, s->m.lost_deleted, "deleted");
    } else if (s->startup_scan && !t->rotated && !strcmp(s->cfg->shipper.read_from, "tail")) {
        /* (a rotated generation found at start was never shipped: head) */
        start = last_line_start(t->fd, size);
        how = "new, from tail";
    }
    if (t->gen < t->min_gen) {
        t->gen = t->min_gen;
        start = 0;
    }
    t->identified = 1;
    if (sid)
        memcpy(t->sid, sid, sizeof(t->sid));
    else
        lp_source_id(s->host, t->dev, t->ino, t->head.hash, t->gen, t->sid);
    set_source(t);
    tail_rewind(t, start);
    lp_log(LP_LOG_INFO, "tailing", "path=\"%s\" source_id=%s offset=%llu format=%s how=\"%s\"",
           t->path, t->sid, (unsigned long long)start, lp_cfmt_name(t->fmt), how);
    return 0;
}

void tail_rewind(struct tail *t, uint64_t off)
{
    lseek(t->fd, (off_t)off, SEEK_SET);
    t->read_off = off;
    t->line_off = off;
    t->acked_off = off;
    t->skipping = 0;
    lp_buf_reset(&t->line);
    lp_assembler_reset(t->as);
    t->dirty = 1;
}

uint64_t tail_resume_offset(const struct tail *t)
{
    uint64_t p = lp_assembler_pending_offset(t->as);
    return p < t->line_off ? p : t->line_off;
}

/* format: auto is decided on the first whole line read, of any length up
 * to max_line_bytes, not on the fingerprint window (LP_HEAD_MAX): a Docker
 * file whose first line carries a long banner or stack trace is still
 * Docker. A first line cut at the cap is told by its envelope's opening. */
static void detect_format(struct tail *t, const char *p, size_t n, unsigned flags)
{
    t->fmt = (flags & LP_REC_TRUNCATED) ? lp_cfmt_detect_cut(p, n) : lp_cfmt_detect(p, n);
    set_source(t); /* no batch of this file is open before its first line */
    lp_log(LP_LOG_INFO, "format detected", "path=\"%s\" format=%s", t->path, lp_cfmt_name(t->fmt));
}

/* One complete physical line at file offset off. */
static void physical_line(struct tail *t, const char *p, size_t n, uint64_t off, unsigned flags,
                          int64_t now_ns)
{
    struct lp_shipper *s = t->s;
    struct lp_cline c;
    char why[160];
    if (n && p[n - 1] == '\r')
        n--; /* CRLF files */
    if (t->fmt == LP_CFMT_AUTO)
        detect_format(t, p, n, flags);
    if (lp_cline_decode(t->fmt, p, n, &s->scratch, &c, why, sizeof(why))) {
        flags |= LP_REC_MALFORMED;
        lp_counter_inc(s->m.malformed);
        lp_log_ratelimited(LP_LOG_WARN, "malformed line kept raw",
                           "path=\"%s\" offset=%llu reason=\"%s\"", t->path,
                           (unsigned long long)off, why);
    }
    if (c.ts_ns == 0)
        c.ts_ns = lp_time_real_ns();
    if (t->cs) { /* the input's encoding to UTF-8 */
        if (lp_charset_to_utf8(t->cs, c.msg, c.len, &s->conv))
            flags |= LP_REC_UTF8_REPLACED;
        c.msg = s->conv.data;
        c.len = s->conv.len;
    }
    lp_counter_inc(s->m.lines_read);
    if (s->k8s && !t->batch_open)
        tail_meta_refresh(t); /* the pod's hints apply from its first line */
    if (t->ml_change) {
        t->ml_change = 0;
        lp_assembler_set_multiline(t->as, t->ml_want, batch_on_event, t);
        t->ml_have = t->ml_want;
        t->ml_hinted = t->ml_have && t->ml_have != shipper_multiline(s, t->input_idx);
        t->hint_tokens_ns = HINT_BURST * s->cfg->shipper.kubernetes.hint_cpu_ms * LP_NS_PER_MS;
        t->hint_refill_ns = now_ns;
    }
    lp_assembler_feed(t->as, &c, off, flags, now_ns, batch_on_event, t);
    if (t->ml_hinted)
        meter_hint(t, now_ns);
    batch_after_line(t);
}

size_t tail_read(struct tail *t, size_t budget, int64_t now_ns)
{
    struct lp_shipper *s = t->s;
    size_t cap = (size_t)s->cfg->shipper.max_line_bytes + 64 * 1024; /* + runtime framing */
    size_t want = budget < s->rbuf_size ? budget : s->rbuf_size;
    ssize_t r = read(t->fd, s->rbuf, want);
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR)
            lp_log_ratelimited(LP_LOG_WARN, "read failed", "path=\"%s\" error=\"%s\"", t->path,
                               lp_strerror(-errno));
        t->dirty = 0;
        return 0;
    }
    if (r == 0) {
        t->dirty = 0;
        return 0;
    }
    t->last_growth_ns = now_ns;
    lp_counter_add(s->m.bytes_read, (uint64_t)r);
    const char *p = s->rbuf, *end = s->rbuf + r;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        /* line_off moves past a line before it is fed: a batch closed
         * after the feed resumes after it (see batch_after_line) */
        uint64_t next = t->read_off + (uint64_t)(p + n + 1 - s->rbuf);
        if (t->skipping) {
            if (nl) {
                t->skipping = 0;
                t->line_off = next;
            }
        } else if (!nl) {
            lp_buf_append(&t->line, p, n);
            if (t->line.len > cap) {
                /* an over-long physical line: ship what we hold, skip the rest */
                physical_line(t, t->line.data, cap, t->line_off, LP_REC_TRUNCATED, now_ns);
                lp_buf_reset(&t->line);
                t->skipping = 1;
            }
        } else if (t->line.len) {
            lp_buf_append(&t->line, p, n);
            size_t len = t->line.len > cap ? cap : t->line.len;
            uint64_t off = t->line_off;
            t->line_off = next;
            physical_line(t, t->line.data, len, off, len < t->line.len ? LP_REC_TRUNCATED : 0,
                          now_ns);
            lp_buf_reset(&t->line);
        } else {
            size_t len = n > cap ? cap : n;
            uint64_t off = t->line_off;
            t->line_off = next;
            physical_line(t, p, len, off, len < n ? LP_REC_TRUNCATED : 0, now_ns);
        }
        p += n + (nl ? 1 : 0);
    }
    t->read_off += (uint64_t)r;
    if ((size_t)r < want)
        t->dirty = 0; /* reached the end for now */
    return (size_t)r;
}

/* Rotation, deletion and truncation, from stat of the path and fstat. */
void tail_check(struct tail *t, int64_t now_ns)
{
    struct lp_shipper *s = t->s;
    struct stat fst, pst;
    if (fstat(t->fd, &fst) != 0)
        return;
    if (!t->rotated) {
        if (stat(t->path, &pst) != 0 || (uint64_t)pst.st_ino != t->ino ||
            (uint64_t)pst.st_dev != t->dev) {
            t->rotated = 1;
            lp_counter_inc(s->m.rotations);
            lp_log(LP_LOG_INFO, "file rotated; reading the old one to its end",
                   "path=\"%s\" offset=%llu size=%lld", t->path, (unsigned long long)t->read_off,
                   (long long)fst.st_size);
        }
    }
    if (fst.st_nlink == 0 && !t->deleted) {
        t->deleted = 1;
        t->deleted_since_ns = now_ns;
    }
    uint64_t size = (uint64_t)fst.st_size;
    if (size > t->read_off)
        t->dirty = 1;
    if (t->identified && size < t->read_off) {
        /* copytruncate or an overwrite: what was between the last size we
         * saw and our position is gone; restart under a new generation */
        uint64_t lost = t->size_seen > t->read_off ? t->size_seen - t->read_off : 0;
        lp_counter_add(s->m.lost_truncated, lost);
        lp_counter_inc(s->m.truncations);
        lp_log(LP_LOG_WARN, "file truncated; restarting at 0 under a new generation",
               "path=\"%s\" offset=%llu size=%llu unread_bytes_lost=%llu", t->path,
               (unsigned long long)t->read_off, (unsigned long long)size, (unsigned long long)lost);
        lp_assembler_flush(t->as, now_ns, 1, batch_on_event, t);
        batch_after_line(t);
        batch_close(t);
        /* the checkpoint's unshipped bytes are read and in flight (their
         * acks still come) or counted just now: nothing left to count when
         * the rewritten file is identified, whatever its first line */
        struct lp_ckpt_entry *e = lp_ckpt_find(&s->ckpt, t->dev, t->ino);
        if (e)
            e->size = e->offset;
        t->truncated_running = 1;
        t->prev_head = t->head; /* what a copytruncate's copy starts with */
        t->identified = 0;
        t->min_gen = t->gen + 1;
        tail_rewind(t, 0);
        tail_identify(t); /* or later, once the first line is complete */
        /* record the new generation at once so a restart does not reuse it */
        tail_checkpoint(t, lp_time_real_ns() / LP_NS_PER_SEC);
    }
    t->size_seen = size;
}

void tail_checkpoint(struct tail *t, int64_t now_s)
{
    if (!t->identified)
        return;
    struct lp_ckpt_entry e = {0};
    e.dev = t->dev;
    e.ino = t->ino;
    e.head = t->head;
    e.prev_head = t->prev_head;
    e.generation = t->gen;
    e.offset = t->acked_off;
    e.size = t->size_seen > t->read_off ? t->size_seen : t->read_off;
    /* unchanged (and seen recently enough for expiry): nothing to write, so
     * thousands of quiet files cost no checkpoint I/O */
    const struct lp_ckpt_entry *old = lp_ckpt_find(&t->s->ckpt, t->dev, t->ino);
    if (old && !old->closed && old->generation == e.generation && old->offset == e.offset &&
        old->size == e.size && old->head.len == e.head.len && old->head.hash == e.head.hash &&
        now_s - old->seen_s < CKPT_SEEN_REFRESH_S && old->seen_s <= now_s &&
        strcmp(old->path, t->path) == 0)
        return;
    if (lp_tail_hash(t->fd, t->acked_off, &e.tail_hash) != 0)
        return; /* cannot prove the bytes before the offset: keep the old entry */
    memcpy(e.source_id, t->sid, sizeof(e.source_id));
    e.path = t->path;
    e.seen_s = now_s;
    lp_ckpt_put(&t->s->ckpt, &e);
}

void tail_finish_line(struct tail *t, int64_t now_ns)
{
    if (!t->line.len || t->skipping)
        return;
    uint64_t off = t->line_off;
    t->line_off = t->read_off;
    physical_line(t, t->line.data, t->line.len, off, 0, now_ns);
    lp_buf_reset(&t->line);
}
